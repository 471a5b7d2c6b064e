//! The desired proxy state as plain data: services and endpoint slices in, one `ServicePort` per
//! service port out, with endpoints chosen by the upstream rules (no kernel involved).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

/// An L4 protocol a service port can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Parses the Kubernetes spelling ("TCP", "UDP", "SCTP"); `None` means TCP (API default).
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// Lower-case name as nft and iptables spell it.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Identifies one port of one service: `namespace/name:port` plus protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port: String,
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    /// Upstream `ServicePortName.String()`: `ns/name` or `ns/name:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// One port of a Service as read from the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePortIn {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub node_port: Option<u16>,
}

/// The fields of a Service the proxy uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceIn {
    pub namespace: String,
    pub name: String,
    /// IPv4 ClusterIP; `None` for headless / ExternalName / IPv6-only services (skipped).
    pub cluster_ip: Option<Ipv4Addr>,
    pub ports: Vec<ServicePortIn>,
    pub external_ips: Vec<Ipv4Addr>,
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// type NodePort or LoadBalancer.
    pub node_port_type: bool,
    pub internal_traffic_local: bool,
    pub external_traffic_local: bool,
    /// sessionAffinity ClientIP timeout in seconds.
    pub affinity_timeout: Option<u32>,
}

/// One port of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePortIn {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// One endpoint (address) of an EndpointSlice with its conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointIn {
    pub ip: Ipv4Addr,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
}

/// The fields of an (IPv4) EndpointSlice the proxy uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceIn {
    pub namespace: String,
    pub name: String,
    /// Value of the `kubernetes.io/service-name` label.
    pub service: String,
    pub ports: Vec<SlicePortIn>,
    pub endpoints: Vec<EndpointIn>,
}

/// An endpoint chosen for a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// Runs on this node.
    pub local: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// What the proxy must program for one service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub name: ServicePortName,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub protocol: Protocol,
    pub node_port: Option<u16>,
    /// externalIPs and LoadBalancer ingress IPs, sorted, deduplicated.
    pub external_ips: Vec<Ipv4Addr>,
    pub internal_local: bool,
    /// externalTrafficPolicy Local (only set when the service is externally accessible).
    pub external_local: bool,
    pub affinity_timeout: Option<u32>,
    /// Endpoints for Cluster policy (ready, else serving+terminating); empty when unused.
    pub cluster_endpoints: Vec<Endpoint>,
    /// Endpoints on this node for Local policy; empty when unused.
    pub local_endpoints: Vec<Endpoint>,
    /// Some usable endpoint exists anywhere in the cluster.
    pub has_any_endpoints: bool,
}

/// Verdict for traffic that cannot be forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No endpoints at all: reject (ICMP port unreachable / connection refused).
    Reject,
    /// Local policy and no local endpoint: drop.
    Drop,
}

impl ServicePort {
    /// A ClusterIP service port `name` at `cluster_ip:port` with `endpoints` for the Cluster
    /// policy, and nothing else set: no node port, external IPs, affinity or Local policy.
    pub fn cluster(name: ServicePortName, cluster_ip: Ipv4Addr, port: u16, endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            protocol: name.protocol,
            name,
            cluster_ip,
            port,
            node_port: None,
            external_ips: vec![],
            internal_local: false,
            external_local: false,
            affinity_timeout: None,
            has_any_endpoints: !endpoints.is_empty(),
            cluster_endpoints: endpoints,
            local_endpoints: vec![],
        }
    }

    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty()
    }
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || (self.externally_accessible() && !self.external_local)
    }
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_local || (self.externally_accessible() && self.external_local)
    }
    /// Endpoints for traffic to the ClusterIP.
    pub fn internal_endpoints(&self) -> &[Endpoint] {
        if self.internal_local { &self.local_endpoints } else { &self.cluster_endpoints }
    }
    /// Endpoints for traffic to NodePorts / external IPs.
    pub fn external_endpoints(&self) -> &[Endpoint] {
        if self.external_local { &self.local_endpoints } else { &self.cluster_endpoints }
    }
    /// Refusal for ClusterIP traffic, `None` when it is forwarded.
    pub fn internal_refusal(&self) -> Option<Refusal> {
        if !self.has_any_endpoints {
            Some(Refusal::Reject)
        } else if self.internal_endpoints().is_empty() {
            Some(Refusal::Drop)
        } else {
            None
        }
    }
    /// Refusal for external traffic, `None` when it is forwarded.
    pub fn external_refusal(&self) -> Option<Refusal> {
        if !self.has_any_endpoints {
            Some(Refusal::Reject)
        } else if self.external_endpoints().is_empty() {
            Some(Refusal::Drop)
        } else {
            None
        }
    }
    /// Every endpoint traffic may be sent to (cluster ∪ local), sorted.
    pub fn reachable_endpoints(&self) -> Vec<Endpoint> {
        let set: BTreeSet<Endpoint> =
            self.cluster_endpoints.iter().chain(self.local_endpoints.iter()).copied().collect();
        set.into_iter().collect()
    }
}

/// The whole desired state: every service port keyed by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub services: BTreeMap<ServicePortName, ServicePort>,
}

impl State {
    /// Computes the state from all services and slices.
    pub fn compute(services: &[ServiceIn], slices: &[SliceIn], node: &str) -> State {
        let mut by_svc: BTreeMap<(&str, &str), Vec<&SliceIn>> = BTreeMap::new();
        for s in slices {
            by_svc.entry((s.namespace.as_str(), s.service.as_str())).or_default().push(s);
        }
        let mut state = State::default();
        for svc in services {
            let sl = by_svc.get(&(svc.namespace.as_str(), svc.name.as_str()));
            let sl: &[&SliceIn] = sl.map(|v| v.as_slice()).unwrap_or(&[]);
            for sp in service_ports(svc, sl, node) {
                state.services.insert(sp.name.clone(), sp);
            }
        }
        state
    }
}

#[derive(Clone, Copy)]
struct Candidate {
    ep: Endpoint,
    ready: bool,
    serving: bool,
    terminating: bool,
}

/// Computes the service ports of one service from its slices (upstream `CategorizeEndpoints`,
/// topology hints ignored).
pub fn service_ports(svc: &ServiceIn, slices: &[&SliceIn], node: &str) -> Vec<ServicePort> {
    let Some(cluster_ip) = svc.cluster_ip else { return Vec::new() };
    let mut ext: Vec<Ipv4Addr> =
        svc.external_ips.iter().chain(svc.load_balancer_ips.iter()).copied().collect();
    ext.sort();
    ext.dedup();
    let mut out = Vec::new();
    for p in &svc.ports {
        let node_port = if svc.node_port_type { p.node_port.filter(|n| *n != 0) } else { None };
        let externally_accessible = node_port.is_some() || !ext.is_empty();
        let mut cands: BTreeMap<(Ipv4Addr, u16), Candidate> = BTreeMap::new();
        for s in slices {
            let Some(sp) = s.ports.iter().find(|sp| sp.name == p.name && sp.protocol == p.protocol)
            else {
                continue;
            };
            for e in &s.endpoints {
                let local = e.node_name.as_deref() == Some(node);
                cands.entry((e.ip, sp.port)).or_insert(Candidate {
                    ep: Endpoint { ip: e.ip, port: sp.port, local },
                    ready: e.ready,
                    serving: e.serving,
                    terminating: e.terminating,
                });
            }
        }
        let all: Vec<Candidate> = cands.into_values().collect();
        let mut sp = ServicePort {
            name: ServicePortName {
                namespace: svc.namespace.clone(),
                name: svc.name.clone(),
                port: p.name.clone(),
                protocol: p.protocol,
            },
            cluster_ip,
            port: p.port,
            protocol: p.protocol,
            node_port,
            external_ips: ext.clone(),
            internal_local: svc.internal_traffic_local,
            external_local: externally_accessible && svc.external_traffic_local,
            affinity_timeout: svc.affinity_timeout,
            cluster_endpoints: Vec::new(),
            local_endpoints: Vec::new(),
            has_any_endpoints: all.iter().any(|c| c.ready || (c.serving && c.terminating)),
        };
        if sp.uses_cluster_endpoints() {
            sp.cluster_endpoints = pick(&all, |_| true);
        }
        if sp.uses_local_endpoints() {
            sp.local_endpoints = pick(&all, |c| c.ep.local);
        }
        out.push(sp);
    }
    out
}

/// Ready endpoints matching `keep`; when there are none, serving-and-terminating ones.
fn pick(all: &[Candidate], keep: impl Fn(&Candidate) -> bool) -> Vec<Endpoint> {
    let ready: Vec<Endpoint> = all.iter().filter(|c| keep(c) && c.ready).map(|c| c.ep).collect();
    if !ready.is_empty() {
        return ready;
    }
    all.iter().filter(|c| keep(c) && c.serving && c.terminating).map(|c| c.ep).collect()
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
