//! The world inside a sealed process: the `lan0` bridge in the world root and hosts as
//! network namespaces (held by fd) joined to it by veth pairs.
//!
//! Every host gets explicit sysctls (never inherited from the host kernel's init namespace):
//! `net.ipv4.ip_forward` (1 on nodes, 0 elsewhere, 0 in the world root), `rp_filter` 0 on
//! `all`/`default`, IPv6 disabled (no autoconfiguration noise in captures) and
//! `net.bridge.bridge-nf-call-iptables` as the plan says. Routes are described on [`Plan`].

mod host;
pub mod net;
pub mod plan;
pub mod tcp;

use std::net::Ipv4Addr;
use std::time::Instant;

pub use host::Host;
pub use plan::{Cidr, HostPlan, Plan, Role};

use crate::artifacts::Artifacts;
use crate::error::{Error, Result};
use crate::ns::NetNs;
use crate::timeline::Timeline;
use net::{Netlink, write_sysctl};

/// Name of the world bridge in the world root.
pub const LAN_BRIDGE: &str = "lan0";

/// A built world. Dropping it closes the hosts' namespace fds; everything dies with the
/// sealed process anyway.
#[derive(Debug)]
pub struct World {
    plan: Plan,
    root: Host,
    lan_index: u32,
    hosts: Vec<Host>,
    artifacts: Artifacts,
    timeline: Timeline,
}

fn base_sysctls(forward: bool, bridge_nf: Option<bool>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("net.ipv6.conf.all.disable_ipv6", "1"),
        ("net.ipv6.conf.default.disable_ipv6", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
        ("net.ipv4.ip_forward", if forward { "1" } else { "0" }),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(b) = bridge_nf {
        v.push(("net.bridge.bridge-nf-call-iptables".into(), if b { "1" } else { "0" }.into()));
    }
    v
}

/// Creates a namespace and applies sysctls before any interface exists in it.
fn new_host_ns(sysctls: Vec<(String, String)>) -> Result<NetNs> {
    let ns = NetNs::create()?;
    ns.run(|| apply_sysctls(&sysctls))??;
    Ok(ns)
}

/// Writes sysctls; turning bridge netfilter *off* is skipped when the kernel has no
/// br_netfilter (the setting is then off by construction).
fn apply_sysctls(sysctls: &[(String, String)]) -> Result<()> {
    for (k, v) in sysctls {
        if k.starts_with("net.bridge.") && v == "0" && !std::path::Path::new("/proc/sys/net/bridge").exists() {
            continue;
        }
        write_sysctl(k, v)?;
    }
    Ok(())
}

impl World {
    /// Builds the world of `plan` with a fresh artifacts directory named after `plan.name`.
    /// Must run inside a sealed case process ([`crate::sealed::enter`]) and a tokio runtime.
    pub async fn build(plan: &Plan) -> Result<World> {
        World::build_with(plan, Artifacts::create(&plan.name)?).await
    }

    /// Builds the world of `plan` recording into `artifacts`.
    pub async fn build_with(plan: &Plan, artifacts: Artifacts) -> Result<World> {
        if !crate::sealed::is_sealed() {
            // The world root is the calling process's own network namespace: outside a sealed
            // process that would be the host's.
            return Err(Error::invalid("world", "World::build must run in a sealed case process (harness::sealed::enter)"));
        }
        plan.validate()?;
        let started = Instant::now();
        let timeline = Timeline::open(artifacts.path("timeline.jsonl"))?;
        // The world root: the case process's own network namespace.
        let root_ns = NetNs::current()?;
        root_ns.run(|| apply_sysctls(&base_sysctls(false, Some(false))))??;
        let root_nl = Netlink::open(&root_ns).await?;
        let lo = root_nl.index("lo").await?;
        root_nl.up(lo).await?;
        let lan_index = root_nl.add_bridge(LAN_BRIDGE).await?;
        root_nl.add_addr(lan_index, plan.gateway, plan.lan.prefix).await?;

        // Namespaces are created in parallel (unshare costs dominate).
        let creations = plan.hosts.iter().map(|h| {
            let sys = {
                let mut s = base_sysctls(h.role == Role::Node, Some(h.bridge_nf_call_iptables));
                s.extend(h.sysctls.iter().cloned());
                s
            };
            tokio::task::spawn_blocking(move || new_host_ns(sys))
        });
        let mut namespaces = Vec::new();
        for j in futures::future::join_all(creations).await {
            namespaces.push(j.map_err(|e| Error::Child(format!("namespace thread failed: {e}")))??);
        }

        let configs = plan.hosts.iter().zip(namespaces).map(|(h, ns)| {
            let root_nl = &root_nl;
            let artifacts = artifacts.clone();
            let timeline = timeline.clone();
            async move {
                root_nl.add_veth_into(&format!("v-{}", h.name), "eth0", &ns, Some(lan_index)).await?;
                let nl = Netlink::open(&ns).await?;
                configure_host(plan, h, &nl).await?;
                Ok::<Host, Error>(Host {
                    name: h.name.clone(),
                    role: Some(h.role),
                    ip: h.ip,
                    pod_cidr: h.pod_cidr,
                    ns,
                    netlink: nl,
                    artifacts,
                    timeline,
                })
            }
        });
        let hosts = futures::future::try_join_all(configs).await?;
        for (dst, gw) in client_routes(plan) {
            root_nl.add_route(dst, Some(gw), None).await?;
        }
        let root = Host {
            name: "world".into(),
            role: None,
            ip: plan.gateway,
            pod_cidr: None,
            ns: root_ns,
            netlink: root_nl,
            artifacts: artifacts.clone(),
            timeline: timeline.clone(),
        };
        timeline.record_with(
            "harness",
            "world built",
            serde_json::json!({
                "hosts": plan.hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>(),
                "millis": started.elapsed().as_secs_f64() * 1000.0,
            }),
        );
        Ok(World { plan: plan.clone(), root, lan_index, hosts, artifacts, timeline })
    }

    /// Cuts host `name` off the world's LAN (its bridge port goes down), as a pulled cable or a
    /// powered-off machine looks to everyone else; [`World::reconnect`] undoes it.
    pub async fn disconnect(&self, name: &str) -> Result<()> {
        self.host(name)?;
        let port = self.root.netlink().index(&format!("v-{name}")).await?;
        self.root.netlink().down(port).await?;
        self.timeline.record("harness", format!("{name} disconnected from the LAN"));
        Ok(())
    }

    /// Puts host `name` back on the LAN after [`World::disconnect`].
    pub async fn reconnect(&self, name: &str) -> Result<()> {
        self.host(name)?;
        let port = self.root.netlink().index(&format!("v-{name}")).await?;
        self.root.netlink().up(port).await?;
        self.timeline.record("harness", format!("{name} reconnected to the LAN"));
        Ok(())
    }

    /// A host by name (`world` is the world root).
    pub fn host(&self, name: &str) -> Result<&Host> {
        if name == "world" {
            return Ok(&self.root);
        }
        self.hosts.iter().find(|h| h.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
            Error::NotFound(format!("no host {name:?} in this world (hosts: {names:?}, and \"world\")"))
        })
    }
    /// All hosts of the plan (without the world root).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }
    /// The world root: the case process's own namespace, holding `lan0` and the gateway address.
    pub fn root(&self) -> &Host {
        &self.root
    }
    /// The plan the world was built from.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    /// The artifacts directory.
    pub fn artifacts(&self) -> &Artifacts {
        &self.artifacts
    }
    /// The timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }
    /// Index of `lan0` in the world root.
    pub fn lan_index(&self) -> u32 {
        self.lan_index
    }

    /// Adds a bare "pod" namespace on `node`: a veth `eth0` with `ip`/prefix of the node's pod
    /// CIDR, attached to the node's pod bridge, default route via the bridge address. Useful
    /// to run endpoints without a runtime. `name` is at most 12 characters.
    pub async fn add_pod_host(&self, node: &str, name: &str, ip: Ipv4Addr) -> Result<Host> {
        let n = self.host(node)?;
        let (cidr, bridge) = match (n.pod_cidr, &self.plan.pod_bridge) {
            (Some(c), Some(b)) => (c, b.clone()),
            _ => return Err(Error::invalid(format!("node {node:?}"), "has no pod CIDR or pod bridge")),
        };
        if name.is_empty() || name.len() > 12 || !cidr.contains(ip) {
            return Err(Error::invalid(format!("pod host {name:?}"), format!("name ≤ 12 chars and {ip} in {cidr}")));
        }
        let ns = new_host_ns(base_sysctls(false, None))?;
        let bridge_index = n.netlink.index(&bridge).await?;
        n.netlink.add_veth_into(&format!("p-{name}"), "eth0", &ns, Some(bridge_index)).await?;
        let nl = Netlink::open(&ns).await?;
        nl.up(1).await?;
        let eth0 = nl.index("eth0").await?;
        nl.up(eth0).await?;
        nl.add_addr(eth0, ip, cidr.prefix).await?;
        nl.add_route(Cidr::new(Ipv4Addr::UNSPECIFIED, 0), Some(cidr.nth(1)), None).await?;
        self.timeline.record("harness", format!("pod host {name} {ip} on {node}"));
        Ok(Host {
            name: name.to_string(),
            role: None,
            ip,
            pod_cidr: None,
            ns,
            netlink: nl,
            artifacts: self.artifacts.clone(),
            timeline: self.timeline.clone(),
        })
    }
}

/// Routes of non-node hosts (and the world root): pod CIDRs via their node, services via the router.
fn client_routes(plan: &Plan) -> Vec<(Cidr, Ipv4Addr)> {
    let mut v: Vec<(Cidr, Ipv4Addr)> =
        plan.hosts.iter().filter_map(|n| n.pod_cidr.map(|c| (c, n.ip))).collect();
    if let Some(r) = plan.service_router.as_ref().and_then(|r| plan.hosts.iter().find(|h| &h.name == r)) {
        v.push((plan.service_cidr, r.ip));
    }
    v
}

async fn configure_host(plan: &Plan, h: &HostPlan, nl: &Netlink) -> Result<()> {
    nl.up(1).await?; // lo is always index 1 in a fresh namespace
    let eth0 = nl.index("eth0").await?;
    nl.up(eth0).await?;
    nl.add_addr(eth0, h.ip, plan.lan.prefix).await?;
    if h.role == Role::Node {
        if let (Some(bridge), Some(cidr)) = (&plan.pod_bridge, h.pod_cidr) {
            let b = nl.add_bridge(bridge).await?;
            nl.add_addr(b, cidr.nth(1), cidr.prefix).await?;
        }
        for other in plan.hosts.iter().filter(|o| o.name != h.name) {
            if let Some(c) = other.pod_cidr {
                nl.add_route(c, Some(other.ip), None).await?;
            }
        }
        nl.add_route(plan.service_cidr, Some(plan.gateway), None).await?;
    } else {
        for (dst, gw) in client_routes(plan) {
            nl.add_route(dst, Some(gw), None).await?;
        }
    }
    Ok(())
}
