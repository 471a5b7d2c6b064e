//! iptables rendering (upstream layout): nat `KUBE-SERVICES` / `KUBE-NODEPORTS` /
//! `KUBE-POSTROUTING` / `KUBE-MARK-MASQ`, per service port `KUBE-SVC-` / `KUBE-SVL-` /
//! `KUBE-EXT-` and per endpoint `KUBE-SEP-` chains (hash names as upstream), filter
//! `KUBE-SERVICES` / `KUBE-EXTERNAL-SERVICES` / `KUBE-FORWARD` for refusals.
//! Restore scripts are assembled in `ipt::sync`.

pub mod sync;

use std::collections::BTreeSet;

use crate::ctx::{MASQ_MARK, RenderCtx};
use crate::model::{Endpoint, Refusal, ServicePort};
use crate::names;

pub const NAT_SERVICES: &str = "KUBE-SERVICES";
pub const NAT_NODEPORTS: &str = "KUBE-NODEPORTS";
pub const NAT_POSTROUTING: &str = "KUBE-POSTROUTING";
pub const MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const FILTER_SERVICES: &str = "KUBE-SERVICES";
pub const FILTER_EXTERNAL: &str = "KUBE-EXTERNAL-SERVICES";
pub const FILTER_FORWARD: &str = "KUBE-FORWARD";

/// Everything one service port contributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// Own nat chains (`KUBE-SVC/SVL/EXT/SEP-…`) with their `-A` rules.
    pub nat_chains: Vec<(String, Vec<String>)>,
    /// Rules for nat `KUBE-SERVICES`.
    pub nat_services: Vec<String>,
    /// Rules for nat `KUBE-NODEPORTS`.
    pub nat_nodeports: Vec<String>,
    /// Rules for filter `KUBE-SERVICES` (ClusterIP refusals).
    pub filter_services: Vec<String>,
    /// Rules for filter `KUBE-EXTERNAL-SERVICES` (NodePort / external IP refusals).
    pub filter_external: Vec<String>,
}

/// A rule in a built-in chain that jumps into ours: (table, chain, rule spec).
pub type Jump = (&'static str, &'static str, Vec<String>);

/// The jumps from built-in chains (ensured with `iptables -C` / `-I`).
pub fn jumps() -> Vec<Jump> {
    let spec = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let new = ["-m", "conntrack", "--ctstate", "NEW"];
    let cat = |a: &[&str], b: &[&str]| spec(&[a, b].concat());
    vec![
        ("nat", "PREROUTING", spec(&["-m", "comment", "--comment", "kubernetes service portals", "-j", NAT_SERVICES])),
        ("nat", "OUTPUT", spec(&["-m", "comment", "--comment", "kubernetes service portals", "-j", NAT_SERVICES])),
        ("nat", "POSTROUTING", spec(&["-m", "comment", "--comment", "kubernetes postrouting rules", "-j", NAT_POSTROUTING])),
        ("filter", "INPUT", cat(&new, &["-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", FILTER_EXTERNAL])),
        ("filter", "FORWARD", spec(&["-m", "comment", "--comment", "kubernetes forwarding rules", "-j", FILTER_FORWARD])),
        ("filter", "FORWARD", cat(&new, &["-m", "comment", "--comment", "kubernetes service portals", "-j", FILTER_SERVICES])),
        ("filter", "FORWARD", cat(&new, &["-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", FILTER_EXTERNAL])),
        ("filter", "OUTPUT", cat(&new, &["-m", "comment", "--comment", "kubernetes service portals", "-j", FILTER_SERVICES])),
    ]
}

/// Fixed rules of the shared nat chains (`KUBE-POSTROUTING`, `KUBE-MARK-MASQ`).
pub fn nat_base_rules() -> Vec<String> {
    let m = format!("{MASQ_MARK:#x}/{MASQ_MARK:#x}");
    vec![
        format!("-A {NAT_POSTROUTING} -m mark ! --mark {m} -j RETURN"),
        format!("-A {NAT_POSTROUTING} -j MARK --xor-mark {MASQ_MARK:#x}"),
        format!(
            "-A {NAT_POSTROUTING} -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
        ),
        format!("-A {MARK_MASQ} -j MARK --or-mark {MASQ_MARK:#x}"),
    ]
}

/// The last rules of nat `KUBE-SERVICES`: the NodePort dispatch.
pub fn nat_nodeport_jump(ctx: &RenderCtx) -> Vec<String> {
    let c = "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\"";
    match &ctx.node_port_cidrs {
        None => vec![format!(
            "-A {NAT_SERVICES} {c} ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {NAT_NODEPORTS}"
        )],
        Some(cidrs) => cidrs
            .iter()
            .map(|cidr| format!("-A {NAT_SERVICES} {c} -d {cidr} -m addrtype --dst-type LOCAL -j {NAT_NODEPORTS}"))
            .collect(),
    }
}

/// Fixed rules of filter `KUBE-FORWARD`.
pub fn filter_base_rules() -> Vec<String> {
    let m = format!("{MASQ_MARK:#x}/{MASQ_MARK:#x}");
    vec![
        format!("-A {FILTER_FORWARD} -m conntrack --ctstate INVALID -j DROP"),
        format!(
            "-A {FILTER_FORWARD} -m comment --comment \"kubernetes forwarding rules\" -m mark --mark {m} -j ACCEPT"
        ),
        format!(
            "-A {FILTER_FORWARD} -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        ),
    ]
}

fn target(r: Refusal) -> &'static str {
    match r {
        Refusal::Reject => "REJECT",
        Refusal::Drop => "DROP",
    }
}

fn proto_port(sp: &ServicePort, port: u16) -> String {
    let p = sp.protocol.lower();
    format!("-p {p} -m {p} --dport {port}")
}

/// Rules of a `KUBE-SVC`/`KUBE-SVL` chain choosing among `eps`.
fn spread(chain: &str, sp: &ServicePort, eps: &[Endpoint], rules: &mut Vec<String>) {
    let c = format!("-m comment --comment \"{}\"", sp.name);
    if let Some(t) = sp.affinity_timeout {
        for ep in eps {
            let sep = names::ipt_sep(&sp.name, ep);
            rules.push(format!(
                "-A {chain} {c} -m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds {t} --reap -j {sep}"
            ));
        }
    }
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let sep = names::ipt_sep(&sp.name, ep);
        if i + 1 < n {
            let prob = 1.0 / (n - i) as f64;
            rules.push(format!(
                "-A {chain} {c} -m comment --comment \"-> {ep}\" -m statistic --mode random --probability {prob:.10} -j {sep}"
            ));
        } else {
            rules.push(format!("-A {chain} {c} -m comment --comment \"-> {ep}\" -j {sep}"));
        }
    }
}

/// Renders one service port.
pub fn fragment(sp: &ServicePort, ctx: &RenderCtx) -> Fragment {
    let svc = names::ipt_svc(&sp.name);
    let svl = names::ipt_svl(&sp.name);
    let ext = names::ipt_ext(&sp.name);
    let internal = if sp.internal_local { &svl } else { &svc };
    let name = sp.name.to_string();
    let mut f = Fragment::default();
    let dst = |ip: std::net::Ipv4Addr| format!("-d {ip}/32 {}", proto_port(sp, sp.port));

    for (chain, eps, used, is_internal) in [
        (&svc, &sp.cluster_endpoints, sp.uses_cluster_endpoints(), !sp.internal_local),
        (&svl, &sp.local_endpoints, sp.uses_local_endpoints(), sp.internal_local),
    ] {
        if !used {
            continue;
        }
        let mut rules = Vec::new();
        if is_internal {
            let c = format!("-m comment --comment \"{name} cluster IP\"");
            if ctx.masquerade_all {
                rules.push(format!("-A {chain} {c} {} -j {MARK_MASQ}", dst(sp.cluster_ip)));
            } else if let Some(nl) = ctx.local.ipt_not_local() {
                rules.push(format!("-A {chain} {c} {nl} {} -j {MARK_MASQ}", dst(sp.cluster_ip)));
            }
        }
        spread(chain, sp, eps, &mut rules);
        f.nat_chains.push((chain.clone(), rules));
    }
    let mut seps = BTreeSet::new();
    for ep in sp.reachable_endpoints() {
        let sep = names::ipt_sep(&sp.name, &ep);
        if !seps.insert(sep.clone()) {
            continue;
        }
        let c = format!("-m comment --comment \"{name}\"");
        let p = sp.protocol.lower();
        let recent = if sp.affinity_timeout.is_some() {
            format!(" -m recent --name {sep} --mask 255.255.255.255 --rsource --set")
        } else {
            String::new()
        };
        f.nat_chains.push((
            sep.clone(),
            vec![
                format!("-A {sep} {c} -s {}/32 -j {MARK_MASQ}", ep.ip),
                format!("-A {sep} {c} -p {p} -m {p}{recent} -j DNAT --to-destination {ep}"),
            ],
        ));
    }
    if sp.externally_accessible() {
        let mut rules = Vec::new();
        if sp.external_local {
            if let Some(l) = ctx.local.ipt_local() {
                rules.push(format!(
                    "-A {ext} -m comment --comment \"pod traffic for {name} external destinations\" {l} -j {internal}"
                ));
            }
            rules.push(format!(
                "-A {ext} -m comment --comment \"masquerade LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {MARK_MASQ}"
            ));
            rules.push(format!(
                "-A {ext} -m comment --comment \"route LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {internal}"
            ));
            rules.push(format!("-A {ext} -j {svl}"));
        } else {
            rules.push(format!(
                "-A {ext} -m comment --comment \"masquerade traffic for {name} external destinations\" -j {MARK_MASQ}"
            ));
            rules.push(format!("-A {ext} -j {svc}"));
        }
        f.nat_chains.push((ext.clone(), rules));
    }
    match sp.internal_refusal() {
        None => f.nat_services.push(format!(
            "-A {NAT_SERVICES} -m comment --comment \"{name} cluster IP\" {} -j {internal}",
            dst(sp.cluster_ip)
        )),
        Some(r) => f.filter_services.push(format!(
            "-A {FILTER_SERVICES} -m comment --comment \"{name} has no endpoints\" {} -j {}",
            dst(sp.cluster_ip),
            target(r)
        )),
    }
    let ext_refusal = sp.external_refusal();
    for ip in &sp.external_ips {
        match ext_refusal {
            None => f.nat_services.push(format!(
                "-A {NAT_SERVICES} -m comment --comment \"{name} external IP\" {} -j {ext}",
                dst(*ip)
            )),
            Some(r) => f.filter_external.push(format!(
                "-A {FILTER_EXTERNAL} -m comment --comment \"{name} has no endpoints\" {} -j {}",
                dst(*ip),
                target(r)
            )),
        }
    }
    if let Some(np) = sp.node_port {
        match ext_refusal {
            None => f.nat_nodeports.push(format!(
                "-A {NAT_NODEPORTS} -m comment --comment \"{name}\" {} -j {ext}",
                proto_port(sp, np)
            )),
            Some(r) => f.filter_external.push(format!(
                "-A {FILTER_EXTERNAL} -m comment --comment \"{name} has no endpoints\" -m addrtype --dst-type LOCAL {} -j {}",
                proto_port(sp, np),
                target(r)
            )),
        }
    }
    f
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
