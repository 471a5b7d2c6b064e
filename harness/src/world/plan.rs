//! World plans: which hosts exist, their addresses, pod CIDRs, routes and sysctls.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An IPv4 prefix such as `10.244.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits cleared by [`Cidr::new`]).
    pub addr: Ipv4Addr,
    /// Prefix length, 0–32.
    pub prefix: u8,
}

impl Cidr {
    /// A prefix; host bits of `addr` are cleared.
    pub const fn new(addr: Ipv4Addr, prefix: u8) -> Cidr {
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Cidr { addr: Ipv4Addr::from_bits(addr.to_bits() & mask), prefix }
    }
    /// Whether `ip` is inside the prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Cidr::new(ip, self.prefix).addr == self.addr
    }
    /// The `n`-th address of the prefix (`nth(1)` is the usual gateway).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.addr.to_bits().wrapping_add(n))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cidr> {
        let bad = || Error::invalid("CIDR", format!("{s:?} is not a.b.c.d/n"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Cidr::new(addr, prefix))
    }
}

/// What a host is for; decides forwarding and routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the API server.
    ControlPlane,
    /// A worker node: forwards, owns a pod CIDR and a pod bridge.
    Node,
    /// Generates traffic.
    Client,
}

/// One host of a plan.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// Name, at most 12 characters (the world-side veth is `v-<name>`).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Address on the world LAN.
    pub ip: Ipv4Addr,
    /// Pod CIDR (nodes only).
    pub pod_cidr: Option<Cidr>,
    /// `net.bridge.bridge-nf-call-iptables` in this host (default: on for nodes, off otherwise).
    pub bridge_nf_call_iptables: bool,
    /// Extra sysctls (`net.ipv4.conf.all.rp_filter` = `0` style), applied after the defaults.
    pub sysctls: Vec<(String, String)>,
}

impl HostPlan {
    /// A control-plane host.
    pub fn control_plane(name: &str, ip: Ipv4Addr) -> HostPlan {
        HostPlan::new(name, Role::ControlPlane, ip, None)
    }
    /// A node host with its pod CIDR.
    pub fn node(name: &str, ip: Ipv4Addr, pod_cidr: Cidr) -> HostPlan {
        HostPlan::new(name, Role::Node, ip, Some(pod_cidr))
    }
    /// A client host.
    pub fn client(name: &str, ip: Ipv4Addr) -> HostPlan {
        HostPlan::new(name, Role::Client, ip, None)
    }
    fn new(name: &str, role: Role, ip: Ipv4Addr, pod_cidr: Option<Cidr>) -> HostPlan {
        HostPlan {
            name: name.to_string(),
            role,
            ip,
            pod_cidr,
            bridge_nf_call_iptables: role == Role::Node,
            sysctls: Vec::new(),
        }
    }
    /// Adds a sysctl.
    pub fn sysctl(mut self, key: &str, value: &str) -> HostPlan {
        self.sysctls.push((key.to_string(), value.to_string()));
        self
    }
}

/// The shape of a world.
///
/// Routing (what [`crate::world::World::build`] installs):
/// - every host: `lo` up, `eth0` with `ip/24` on the LAN (bridge `lan0` in the world root,
///   which holds `gateway`, 10.77.0.1, the test's own vantage point);
/// - nodes: a pod bridge (`cbr0`, first address of the pod CIDR) and, for every other node,
///   `<its pod CIDR> via <its ip>`; the service range `10.96.0.0/16 via <gateway>`: the world
///   root does not forward (ip_forward=0), so a packet that no DNAT rewrote fails at once with
///   an ICMP host-unreachable instead of reaching something that answers;
/// - client, control plane and the world root: every node's pod CIDR via that node, and the
///   service range via `service_router` (node-a by default), like an external router would.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name used for the artifacts directory.
    pub name: String,
    /// The LAN prefix (10.77.0.0/24).
    pub lan: Cidr,
    /// The world root's address on `lan0` (10.77.0.1).
    pub gateway: Ipv4Addr,
    /// The service range (10.96.0.0/16).
    pub service_cidr: Cidr,
    /// Host that non-node hosts route the service range through (`node-a`).
    pub service_router: Option<String>,
    /// Name of the pod bridge created on nodes (`cbr0`); `None` to leave it to the runtime.
    pub pod_bridge: Option<String>,
    /// The hosts.
    pub hosts: Vec<HostPlan>,
}

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, d)
}

impl Default for Plan {
    /// cp, node-a, node-b and client.
    fn default() -> Plan {
        Plan::two_nodes()
    }
}

impl Plan {
    /// A plan without hosts (add them with [`Plan::host`]).
    pub fn empty() -> Plan {
        Plan {
            name: "world".into(),
            lan: Cidr::new(ip(0), 24),
            gateway: ip(1),
            service_cidr: Cidr::new(Ipv4Addr::new(10, 96, 0, 0), 16),
            service_router: Some("node-a".into()),
            pod_bridge: Some("cbr0".into()),
            hosts: Vec::new(),
        }
    }
    /// cp 10.77.0.2, node-a 10.77.0.11 (10.244.1.0/24), client 10.77.0.100.
    pub fn single_node() -> Plan {
        Plan::empty()
            .host(HostPlan::control_plane("cp", ip(2)))
            .host(HostPlan::node("node-a", ip(11), Cidr::new(Ipv4Addr::new(10, 244, 1, 0), 24)))
            .host(HostPlan::client("client", ip(100)))
    }
    /// [`Plan::single_node`] plus node-b 10.77.0.12 (10.244.2.0/24).
    pub fn two_nodes() -> Plan {
        let mut p = Plan::single_node();
        p.hosts.insert(2, HostPlan::node("node-b", ip(12), Cidr::new(Ipv4Addr::new(10, 244, 2, 0), 24)));
        p
    }
    /// The most nodes [`Plan::nodes`] plans (node-a … node-z).
    pub const MAX_NODES: usize = 26;

    /// cp, `n` nodes (node-a, node-b, … at 10.77.0.11, .12, … with pod CIDRs 10.244.1.0/24,
    /// 10.244.2.0/24, …) and client; `n` is 1 to [`Plan::MAX_NODES`].
    pub fn nodes(n: usize) -> Result<Plan> {
        if n == 0 || n > Self::MAX_NODES {
            return Err(Error::invalid("node count", format!("{n} is not between 1 and {}", Self::MAX_NODES)));
        }
        let names: Vec<String> = (0..n as u8).map(|i| format!("node-{}", (b'a' + i) as char)).collect();
        Plan::named_nodes(&names)
    }

    /// The longest node name [`Plan::named_nodes`] takes (the host's LAN port is `v-<name>`,
    /// and a link name has at most 15 bytes).
    pub const MAX_NODE_NAME: usize = 13;

    /// Like [`Plan::nodes`] with the given node names, in order.
    pub fn named_nodes(names: &[String]) -> Result<Plan> {
        if names.is_empty() || names.len() > Self::MAX_NODES {
            return Err(Error::invalid("node count", format!("{} is not between 1 and {}", names.len(), Self::MAX_NODES)));
        }
        let mut p = Plan::empty().host(HostPlan::control_plane("cp", ip(2)));
        p.service_router = Some(names[0].clone());
        for (i, name) in names.iter().enumerate() {
            let fits = !name.is_empty() && name.len() <= Self::MAX_NODE_NAME;
            let reserved = ["cp", "client", "world"].contains(&name.as_str());
            if !fits || reserved || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return Err(Error::invalid(
                    "node name",
                    format!("{name:?}: use 1 to {} lowercase letters, digits and '-', not cp, client or world", Self::MAX_NODE_NAME),
                ));
            }
            let i = i as u8;
            p = p.host(HostPlan::node(name, ip(11 + i), Cidr::new(Ipv4Addr::new(10, 244, 1 + i, 0), 24)));
        }
        let p = p.host(HostPlan::client("client", ip(100)));
        p.validate()?;
        Ok(p)
    }
    /// Adds a host.
    pub fn host(mut self, h: HostPlan) -> Plan {
        self.hosts.push(h);
        self
    }
    /// Sets the artifacts name.
    pub fn named(mut self, name: &str) -> Plan {
        self.name = name.to_string();
        self
    }
    /// Mutable access to a host of the plan.
    pub fn host_mut(&mut self, name: &str) -> Option<&mut HostPlan> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }

    /// Checks names, addresses and references.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for h in &self.hosts {
            let bad = |why: String| Err(Error::invalid(format!("host {:?}", h.name), why));
            if h.name.is_empty() || h.name.len() > 12 || !h.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return bad("names are 1–12 characters of [a-zA-Z0-9-]".into());
            }
            if h.name == "world" {
                return bad("\"world\" is the world root".into());
            }
            if !seen.insert(h.name.clone()) || self.hosts.iter().filter(|o| o.ip == h.ip).count() > 1 {
                return bad("duplicate name or address".into());
            }
            if !self.lan.contains(h.ip) || h.ip == self.gateway {
                return bad(format!("{} is not a free address of {}", h.ip, self.lan));
            }
            if (h.role == Role::Node) != h.pod_cidr.is_some() {
                return bad("nodes, and only nodes, have a pod CIDR".into());
            }
        }
        if let Some(r) = &self.service_router
            && !self.hosts.iter().any(|h| &h.name == r && h.role == Role::Node)
            && self.hosts.iter().any(|h| h.role == Role::Node)
        {
            return Err(Error::invalid("service_router", format!("{r:?} is not a node of the plan")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_node_plans() {
        let p = Plan::nodes(3).unwrap();
        p.validate().unwrap();
        let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cp", "node-a", "node-b", "node-c", "client"]);
        let c = p.hosts.iter().find(|h| h.name == "node-c").unwrap();
        assert_eq!(c.ip, Ipv4Addr::new(10, 77, 0, 13));
        assert_eq!(c.pod_cidr.unwrap().to_string(), "10.244.3.0/24");
        assert_eq!(Plan::nodes(2).unwrap().hosts.len(), Plan::two_nodes().hosts.len());
        Plan::nodes(Plan::MAX_NODES).unwrap().validate().unwrap();
        assert!(Plan::nodes(0).is_err() && Plan::nodes(27).is_err());
        let p = Plan::named_nodes(&["worker-1".into(), "worker-2".into()]).unwrap();
        assert_eq!(p.service_router.as_deref(), Some("worker-1"));
        for bad in ["cp", "Node", "a-very-long-node-name", ""] {
            assert!(Plan::named_nodes(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
