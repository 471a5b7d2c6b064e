//! nftables rendering: the fixed base of table `ip kube-proxy` and the per-service fragments
//! (map elements, shared chains, and for session affinity own chains and sets). Diffing and
//! script assembly live in `nft::sync`.
//!
//! Layout (load time linear in the number of services; no anonymous set per service and, for
//! services without session affinity, no per-service chain or set at all):
//! - `service-ips` (`ip . proto . port` → verdict), `service-nodeports` (`proto . port` →
//!   verdict), `no-endpoint-services` / `no-endpoint-nodeports` (→ `goto reject-chain` |
//!   `drop`), `cluster-ips` (off-cluster masquerade), `hairpin-endpoints` (`ip . ip`),
//!   optional interval set `nodeport-ips`;
//! - endpoint maps `cluster-endpoints` / `local-endpoints` (`ip . proto . port . index` →
//!   `ip . port`) and `cluster-nodeport-endpoints` / `local-nodeport-endpoints`
//!   (`proto . port . index` → `ip . port`);
//! - shared chains `cluster-N` / `local-N` (`numgen random mod N` lookup in the endpoint maps:
//!   probability exactly 1/N), `external-cluster-N`, `external-local-M-N`, referenced by the
//!   verdicts and present while some service uses them;
//! - sessionAffinity: per-service `service-…` / `local-…` / `external-…` chains with one
//!   dynamic timeout set `affinity-HASH` per endpoint.

pub mod sync;

use crate::ctx::{MASQ_MARK, RenderCtx};
use crate::model::{Endpoint, Refusal, ServicePort};
use crate::names;

/// Table family and name.
pub const FAMILY: &str = "ip";
pub const TABLE: &str = "kube-proxy";

pub const MAP_SERVICE_IPS: &str = "service-ips";
pub const MAP_SERVICE_NODEPORTS: &str = "service-nodeports";
pub const MAP_NO_EP_SERVICES: &str = "no-endpoint-services";
pub const MAP_NO_EP_NODEPORTS: &str = "no-endpoint-nodeports";
pub const SET_HAIRPIN: &str = "hairpin-endpoints";
pub const SET_NODEPORT_IPS: &str = "nodeport-ips";
pub const SET_CLUSTER_IPS: &str = "cluster-ips";
pub const MAP_CLUSTER_EPS: &str = "cluster-endpoints";
pub const MAP_CLUSTER_NP_EPS: &str = "cluster-nodeport-endpoints";
pub const MAP_LOCAL_EPS: &str = "local-endpoints";
pub const MAP_LOCAL_NP_EPS: &str = "local-nodeport-endpoints";

/// A chain: name, optional base-chain header (`type … hook … priority …;`), rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub hook: Option<String>,
    pub rules: Vec<String>,
}

/// A named set or map: name and the body of its declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDef {
    pub name: String,
    pub body: String,
}

/// One element of a named map or set (`value` empty for sets).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Element {
    pub map: &'static str,
    pub key: String,
    pub value: String,
}

/// Everything one service port contributes to the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    pub chains: Vec<Chain>,
    /// Chains shared between services (`cluster-N`, …): created while referenced.
    pub shared_chains: Vec<Chain>,
    pub sets: Vec<SetDef>,
    pub elements: Vec<Element>,
}

/// The fixed part of the table: base chains, helper chains, the global maps and sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub chains: Vec<Chain>,
    pub sets: Vec<SetDef>,
    pub elements: Vec<Element>,
}

fn chain(name: &str, hook: Option<&str>, rules: &[&str]) -> Chain {
    Chain {
        name: name.to_string(),
        hook: hook.map(str::to_string),
        rules: rules.iter().map(|r| r.to_string()).collect(),
    }
}

/// Match for "destination is a NodePort address of this node".
fn nodeport_match(ctx: &RenderCtx) -> String {
    match &ctx.node_port_cidrs {
        None => "fib daddr type local ip daddr != 127.0.0.0/8".to_string(),
        Some(_) => format!("fib daddr type local ip daddr @{SET_NODEPORT_IPS}"),
    }
}

/// Renders the base of the table for `ctx`.
pub fn base(ctx: &RenderCtx) -> Base {
    let np = nodeport_match(ctx);
    let mut services = Vec::new();
    let cip = format!("ip daddr . meta l4proto . th dport @{SET_CLUSTER_IPS}");
    if ctx.masquerade_all {
        services.push(format!("{cip} jump mark-for-masquerade"));
    } else if let Some(nl) = ctx.local.nft_not_local() {
        services.push(format!("{cip} {nl} jump mark-for-masquerade"));
    }
    services.push(format!("ip daddr . meta l4proto . th dport vmap @{MAP_SERVICE_IPS}"));
    services.push(format!("{np} meta l4proto . th dport vmap @{MAP_SERVICE_NODEPORTS}"));
    let check = [
        format!("ip daddr . meta l4proto . th dport vmap @{MAP_NO_EP_SERVICES}"),
        format!("{np} meta l4proto . th dport vmap @{MAP_NO_EP_NODEPORTS}"),
    ];
    let mark = format!("meta mark set meta mark | {MASQ_MARK:#x}");
    let masq = [
        format!("ct status dnat ip saddr . ip daddr @{SET_HAIRPIN} masquerade fully-random"),
        format!("meta mark & {MASQ_MARK:#x} == 0 return"),
        format!("meta mark set meta mark ^ {MASQ_MARK:#x}"),
        "masquerade fully-random".to_string(),
    ];
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let check_jump = "ct state new jump service-endpoints-check";
    let chains = vec![
        chain("nat-prerouting", Some("type nat hook prerouting priority -100; policy accept;"), &["jump services"]),
        chain("nat-output", Some("type nat hook output priority -100; policy accept;"), &["jump services"]),
        chain("nat-postrouting", Some("type nat hook postrouting priority 100; policy accept;"), &["jump masquerading"]),
        chain("filter-input", Some("type filter hook input priority -110; policy accept;"), &[check_jump]),
        chain("filter-forward", Some("type filter hook forward priority -110; policy accept;"), &[check_jump]),
        chain("filter-output", Some("type filter hook output priority -110; policy accept;"), &[check_jump]),
        chain("services", None, &refs(&services)),
        chain("service-endpoints-check", None, &refs(&check)),
        chain("mark-for-masquerade", None, &[mark.as_str()]),
        chain("masquerading", None, &refs(&masq)),
        chain("reject-chain", None, &["reject"]),
    ];
    let vmap3 = "type ipv4_addr . inet_proto . inet_service : verdict;";
    let vmap2 = "type inet_proto . inet_service : verdict;";
    let mut sets = vec![
        SetDef { name: MAP_SERVICE_IPS.into(), body: vmap3.into() },
        SetDef { name: MAP_SERVICE_NODEPORTS.into(), body: vmap2.into() },
        SetDef { name: MAP_NO_EP_SERVICES.into(), body: vmap3.into() },
        SetDef { name: MAP_NO_EP_NODEPORTS.into(), body: vmap2.into() },
        SetDef { name: SET_HAIRPIN.into(), body: "type ipv4_addr . ipv4_addr;".into() },
        SetDef { name: SET_CLUSTER_IPS.into(), body: "type ipv4_addr . inet_proto . inet_service;".into() },
        SetDef {
            name: MAP_CLUSTER_EPS.into(),
            body: "typeof ip daddr . meta l4proto . tcp dport . numgen random mod 1 : ip daddr . tcp dport;".into(),
        },
        SetDef {
            name: MAP_CLUSTER_NP_EPS.into(),
            body: "typeof meta l4proto . tcp dport . numgen random mod 1 : ip daddr . tcp dport;".into(),
        },
        SetDef {
            name: MAP_LOCAL_EPS.into(),
            body: "typeof ip daddr . meta l4proto . tcp dport . numgen random mod 1 : ip daddr . tcp dport;".into(),
        },
        SetDef {
            name: MAP_LOCAL_NP_EPS.into(),
            body: "typeof meta l4proto . tcp dport . numgen random mod 1 : ip daddr . tcp dport;".into(),
        },
    ];
    let mut elements = Vec::new();
    if let Some(cidrs) = &ctx.node_port_cidrs {
        sets.push(SetDef {
            name: SET_NODEPORT_IPS.into(),
            body: "type ipv4_addr; flags interval;".into(),
        });
        for c in cidrs {
            elements.push(Element { map: SET_NODEPORT_IPS, key: c.to_string(), value: String::new() });
        }
    }
    Base { chains, sets, elements }
}

/// Whether a set/map declaration is a map (declared with `add map`).
pub fn is_map(body: &str) -> bool {
    body.contains(':')
}

fn verdict(r: Refusal) -> &'static str {
    match r {
        Refusal::Reject => "goto reject-chain",
        Refusal::Drop => "drop",
    }
}

/// Endpoint-choosing rules: affinity lookups first, then the random cascade.
fn endpoint_rules(sp: &ServicePort, eps: &[Endpoint], rules: &mut Vec<String>) {
    let proto = sp.protocol.lower();
    let dnat = |ep: &Endpoint| format!("meta l4proto {proto} dnat ip to {}:{}", ep.ip, ep.port);
    if let Some(t) = sp.affinity_timeout {
        for ep in eps {
            let set = names::nft_affinity(&sp.name, ep, t);
            rules.push(format!("ip saddr @{set} update @{set} {{ ip saddr }} {}", dnat(ep)));
        }
    }
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let mut r = String::new();
        if i + 1 < n {
            r.push_str(&format!("numgen random mod {} == 0 ", n - i));
        }
        if let Some(t) = sp.affinity_timeout {
            r.push_str(&format!("update @{} {{ ip saddr }} ", names::nft_affinity(&sp.name, ep, t)));
        }
        r.push_str(&dnat(ep));
        rules.push(r);
    }
}

/// `cluster-N` / `local-N`: DNAT to one of N endpoints through the global endpoint maps.
fn dnat_chain(kind: &str, n: usize) -> Chain {
    let (svc_map, np_map) = if kind == "cluster" {
        (MAP_CLUSTER_EPS, MAP_CLUSTER_NP_EPS)
    } else {
        (MAP_LOCAL_EPS, MAP_LOCAL_NP_EPS)
    };
    let mut rules = Vec::new();
    for proto in ["tcp", "udp", "sctp"] {
        rules.push(format!(
            "meta l4proto {proto} dnat ip to ip daddr . meta l4proto . {proto} dport . numgen random mod {n} map @{svc_map}"
        ));
    }
    for proto in ["tcp", "udp", "sctp"] {
        rules.push(format!(
            "meta l4proto {proto} dnat ip to meta l4proto . {proto} dport . numgen random mod {n} map @{np_map}"
        ));
    }
    Chain { name: format!("{kind}-{n}"), hook: None, rules }
}

/// `external-cluster-N`: external traffic, Cluster policy (always masqueraded).
fn ext_cluster_chain(n: usize) -> Chain {
    Chain {
        name: format!("external-cluster-{n}"),
        hook: None,
        rules: vec!["jump mark-for-masquerade".into(), format!("goto cluster-{n}")],
    }
}

/// `external-local-M-N`: external traffic, Local policy; pods and the node itself go to the M
/// cluster endpoints (node traffic masqueraded), everything else to the N local endpoints.
fn ext_local_chain(ctx: &RenderCtx, m: usize, n: usize) -> Chain {
    let mut rules = Vec::new();
    if m > 0 {
        if let Some(l) = ctx.local.nft_local() {
            rules.push(format!("{l} goto cluster-{m}"));
        }
        rules.push("fib saddr type local jump mark-for-masquerade".into());
        rules.push(format!("fib saddr type local goto cluster-{m}"));
    }
    rules.push(format!("goto local-{n}"));
    Chain { name: format!("external-local-{m}-{n}"), hook: None, rules }
}

/// Renders one service port.
///
/// Services without session affinity use only shared chains (`cluster-N`, `local-N`,
/// `external-cluster-N`, `external-local-M-N`, chosen by endpoint count) and elements of the
/// global maps, so an endpoint change is a map update that needs no chain at all. Services
/// with session affinity get their own chains (per-endpoint affinity sets and rules).
pub fn fragment(sp: &ServicePort, ctx: &RenderCtx) -> Fragment {
    let proto = sp.protocol.lower();
    let mut f = Fragment::default();
    let el = |map, key: String, value: String| Element { map, key, value };
    let entry_ips: Vec<std::net::Ipv4Addr> =
        std::iter::once(sp.cluster_ip).chain(sp.external_ips.iter().copied()).collect();
    let (internal_target, external_target) = if sp.affinity_timeout.is_some() {
        affinity_chains(sp, ctx, &mut f)
    } else {
        let m = sp.cluster_endpoints.len();
        let n = sp.local_endpoints.len();
        // Endpoint map entries, keyed by every address the service is reached on.
        for (eps, svc_map, np_map) in [
            (&sp.cluster_endpoints, MAP_CLUSTER_EPS, MAP_CLUSTER_NP_EPS),
            (&sp.local_endpoints, MAP_LOCAL_EPS, MAP_LOCAL_NP_EPS),
        ] {
            for (i, ep) in eps.iter().enumerate() {
                let value = format!("{} . {}", ep.ip, ep.port);
                for ip in &entry_ips {
                    f.elements.push(el(svc_map, format!("{ip} . {proto} . {} . {i}", sp.port), value.clone()));
                }
                if let Some(np) = sp.node_port {
                    f.elements.push(el(np_map, format!("{proto} . {np} . {i}"), value.clone()));
                }
            }
        }
        if m > 0 {
            f.shared_chains.push(dnat_chain("cluster", m));
        }
        if n > 0 {
            f.shared_chains.push(dnat_chain("local", n));
        }
        let internal = if sp.internal_local { format!("goto local-{n}") } else { format!("goto cluster-{m}") };
        let external = if !sp.externally_accessible() {
            String::new()
        } else if sp.external_local {
            if n > 0 {
                f.shared_chains.push(ext_local_chain(ctx, m, n));
            }
            format!("goto external-local-{m}-{n}")
        } else {
            if m > 0 {
                f.shared_chains.push(ext_cluster_chain(m));
            }
            format!("goto external-cluster-{m}")
        };
        (internal, external)
    };
    let key_cip = format!("{} . {proto} . {}", sp.cluster_ip, sp.port);
    match sp.internal_refusal() {
        None => {
            f.elements.push(el(SET_CLUSTER_IPS, key_cip.clone(), String::new()));
            f.elements.push(el(MAP_SERVICE_IPS, key_cip, internal_target));
        }
        Some(r) => f.elements.push(el(MAP_NO_EP_SERVICES, key_cip, verdict(r).into())),
    }
    let ext_refusal = sp.external_refusal();
    for ip in &sp.external_ips {
        let key = format!("{ip} . {proto} . {}", sp.port);
        match ext_refusal {
            None => f.elements.push(el(MAP_SERVICE_IPS, key, external_target.clone())),
            Some(r) => f.elements.push(el(MAP_NO_EP_SERVICES, key, verdict(r).into())),
        }
    }
    if let Some(np) = sp.node_port {
        let key = format!("{proto} . {np}");
        match ext_refusal {
            None => f.elements.push(el(MAP_SERVICE_NODEPORTS, key, external_target.clone())),
            Some(r) => f.elements.push(el(MAP_NO_EP_NODEPORTS, key, verdict(r).into())),
        }
    }
    for ep in sp.reachable_endpoints() {
        f.elements.push(el(SET_HAIRPIN, format!("{} . {}", ep.ip, ep.ip), String::new()));
    }
    f
}

/// Per-service chains of a service with session affinity; returns the verdicts for internal
/// and external traffic.
fn affinity_chains(sp: &ServicePort, ctx: &RenderCtx, f: &mut Fragment) -> (String, String) {
    let base = names::nft_base(&sp.name);
    let svc_chain = format!("service-{base}");
    let local_chain = format!("local-{base}");
    let ext_chain = format!("external-{base}");
    let internal_chain = if sp.internal_local { &local_chain } else { &svc_chain };
    for (name, eps, used) in [
        (&svc_chain, &sp.cluster_endpoints, sp.uses_cluster_endpoints()),
        (&local_chain, &sp.local_endpoints, sp.uses_local_endpoints()),
    ] {
        if used {
            let mut rules = Vec::new();
            endpoint_rules(sp, eps, &mut rules);
            f.chains.push(Chain { name: name.clone(), hook: None, rules });
        }
    }
    if sp.externally_accessible() {
        let mut rules = Vec::new();
        if sp.external_local {
            if let Some(l) = ctx.local.nft_local() {
                rules.push(format!("{l} goto {internal_chain}"));
            }
            rules.push("fib saddr type local jump mark-for-masquerade".to_string());
            rules.push(format!("fib saddr type local goto {internal_chain}"));
            rules.push(format!("goto {local_chain}"));
        } else {
            rules.push("jump mark-for-masquerade".to_string());
            rules.push(format!("goto {svc_chain}"));
        }
        f.chains.push(Chain { name: ext_chain.clone(), hook: None, rules });
    }
    if let Some(t) = sp.affinity_timeout {
        for ep in sp.reachable_endpoints() {
            f.sets.push(SetDef {
                name: names::nft_affinity(&sp.name, &ep, t),
                body: format!("type ipv4_addr; flags dynamic,timeout; timeout {t}s;"),
            });
        }
    }
    (format!("goto {internal_chain}"), format!("goto {ext_chain}"))
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
