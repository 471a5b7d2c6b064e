//! Unit tests of the iptables renderer and restore planning (no kernel).

use super::sync::IptApplied;
use super::*;
use crate::ctx::{Cidr, LocalDetect};
use crate::model::{Endpoint, Protocol, ServicePortName, State};

fn ep(ip: &str) -> Endpoint {
    Endpoint { ip: ip.parse().unwrap(), port: 8080, local: false }
}

fn sp(eps: Vec<Endpoint>) -> ServicePort {
    let name = ServicePortName { namespace: "ns".into(), name: "web".into(), port: "http".into(), protocol: Protocol::Tcp };
    ServicePort::cluster(name, "10.96.0.10".parse().unwrap(), 80, eps)
}

fn ctx() -> RenderCtx {
    RenderCtx { local: LocalDetect::Cidr("10.244.0.0/16".parse::<Cidr>().unwrap()), ..Default::default() }
}

#[test]
fn statistic_probabilities_are_one_over_remaining() {
    let s = sp(vec![ep("10.244.1.2"), ep("10.244.1.3"), ep("10.244.1.4"), ep("10.244.1.5")]);
    let f = fragment(&s, &ctx());
    let svc = names::ipt_svc(&s.name);
    let (_, rules) = f.nat_chains.iter().find(|(n, _)| *n == svc).unwrap();
    assert!(rules[0].contains(&format!("! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j {MARK_MASQ}")));
    let probs: Vec<&str> = rules.iter().filter_map(|r| r.split("--probability ").nth(1)).map(|r| &r[..12]).collect();
    assert_eq!(probs, ["0.2500000000", "0.3333333333", "0.5000000000"]);
    assert!(rules.last().unwrap().ends_with(&format!("-j {}", names::ipt_sep(&s.name, &s.cluster_endpoints[3]))));
    assert_eq!(f.nat_services.len(), 1);
    assert!(f.nat_services[0].ends_with(&format!("-j {svc}")));
    let sep = names::ipt_sep(&s.name, &s.cluster_endpoints[0]);
    let (_, sep_rules) = f.nat_chains.iter().find(|(n, _)| *n == sep).unwrap();
    assert!(sep_rules[0].contains("-s 10.244.1.2/32 -j KUBE-MARK-MASQ"), "hairpin: {sep_rules:?}");
    assert!(sep_rules[1].ends_with("-j DNAT --to-destination 10.244.1.2:8080"));
}

#[test]
fn affinity_uses_recent_module() {
    let mut s = sp(vec![ep("10.244.1.2"), ep("10.244.1.3")]);
    s.affinity_timeout = Some(600);
    let f = fragment(&s, &RenderCtx::default());
    let svc = names::ipt_svc(&s.name);
    let sep = names::ipt_sep(&s.name, &s.cluster_endpoints[0]);
    let (_, rules) = f.nat_chains.iter().find(|(n, _)| *n == svc).unwrap();
    assert!(rules[0].contains(&format!("-m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds 600 --reap -j {sep}")));
    let (_, sep_rules) = f.nat_chains.iter().find(|(n, _)| *n == sep).unwrap();
    assert!(sep_rules[1].contains(&format!("-m recent --name {sep} --mask 255.255.255.255 --rsource --set -j DNAT")));
}

#[test]
fn refusals_go_to_filter_and_nodeports_to_ext_chain() {
    let mut s = sp(vec![]);
    s.node_port = Some(30080);
    let f = fragment(&s, &ctx());
    assert!(f.nat_services.is_empty() && f.nat_nodeports.is_empty());
    assert!(f.filter_services[0].ends_with("-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j REJECT"));
    assert!(f.filter_external[0].contains("-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -j REJECT"));

    let mut s = sp(vec![ep("10.244.2.2")]);
    s.node_port = Some(30080);
    let f = fragment(&s, &ctx());
    let ext = names::ipt_ext(&s.name);
    assert!(f.nat_nodeports[0].ends_with(&format!("-p tcp -m tcp --dport 30080 -j {ext}")));
    let (_, rules) = f.nat_chains.iter().find(|(n, _)| *n == ext).unwrap();
    assert!(rules[0].ends_with("-j KUBE-MARK-MASQ") && rules[1].ends_with(&format!("-j {}", names::ipt_svc(&s.name))));
}

#[test]
fn partial_restore_rewrites_shared_chains_and_only_changed_service_chains() {
    let mut a = IptApplied::new();
    let mut other = sp(vec![ep("10.244.9.9")]);
    other.name.name = "other".into();
    other.cluster_ip = "10.96.0.99".parse().unwrap();
    let st = |eps| {
        let mut s = State::default();
        let web = sp(eps);
        s.services.insert(web.name.clone(), web);
        s.services.insert(other.name.clone(), other.clone());
        s
    };
    let p = a.plan(&st(vec![ep("10.244.1.2"), ep("10.244.1.3")]), &ctx(), false, None, None);
    assert!(p.full);
    a.commit(p);
    let p = a.plan(&st(vec![ep("10.244.1.2"), ep("10.244.1.7")]), &ctx(), false, None, None);
    assert!(!p.full && p.changed_services == 1);
    let web = sp(vec![]);
    let old_sep = names::ipt_sep(&web.name, &ep("10.244.1.3"));
    let new_sep = names::ipt_sep(&web.name, &ep("10.244.1.7"));
    let kept_sep = names::ipt_sep(&web.name, &ep("10.244.1.2"));
    assert!(p.script.contains(&format!("-X {old_sep}\n")), "{}", p.script);
    assert!(p.script.contains(&format!(":{new_sep} - [0:0]")));
    assert!(!p.script.contains(&format!(":{kept_sep} - [0:0]")), "unchanged endpoint chain untouched");
    assert!(!p.script.contains(&names::ipt_svc(&other.name)), "other service untouched");
    assert!(!p.script.contains(":KUBE-SERVICES"), "endpoint change leaves shared chains alone: {}", p.script);
    assert!(p.script.starts_with("*nat\n") && p.script.ends_with("COMMIT\n"));
    a.commit(p);
    // Removing a service rewrites the shared chains (still listing the other service).
    let mut only_other = State::default();
    only_other.services.insert(other.name.clone(), other.clone());
    let p = a.plan(&only_other, &ctx(), false, None, None);
    assert!(p.script.contains(":KUBE-SERVICES - [0:0]"), "{}", p.script);
    assert!(p.script.contains(&format!("-j {}", names::ipt_svc(&other.name))), "KUBE-SERVICES still lists it");
    assert!(p.script.contains(&format!("-X {}", names::ipt_svc(&web.name))));
    assert!(p.script.starts_with("*filter\n"));
}
