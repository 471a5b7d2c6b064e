//! Unit tests of the nftables renderer and the sync planner (no kernel).

use super::sync::NftApplied;
use super::*;
use crate::ctx::{Cidr, LocalDetect};
use crate::model::{Endpoint, Protocol, ServicePortName, State};

fn ep(ip: &str, local: bool) -> Endpoint {
    Endpoint { ip: ip.parse().unwrap(), port: 8080, local }
}

fn sp(name: &str, eps: Vec<Endpoint>) -> ServicePort {
    let name = ServicePortName { namespace: "ns".into(), name: name.into(), port: "http".into(), protocol: Protocol::Tcp };
    ServicePort::cluster(name, "10.96.0.10".parse().unwrap(), 80, eps)
}

fn ctx() -> RenderCtx {
    RenderCtx { local: LocalDetect::Cidr("10.244.0.0/16".parse::<Cidr>().unwrap()), ..Default::default() }
}

fn has(f: &Fragment, map: &str, key: &str, value: &str) -> bool {
    f.elements.iter().any(|e| e.map == map && e.key == key && e.value == value)
}

#[test]
fn plain_service_is_only_map_elements_and_a_shared_chain() {
    let f = fragment(&sp("web", vec![ep("10.244.1.2", true), ep("10.244.2.2", false), ep("10.244.3.2", false)]), &ctx());
    assert!(f.chains.is_empty() && f.sets.is_empty(), "no per-service chain or set");
    assert!(has(&f, MAP_SERVICE_IPS, "10.96.0.10 . tcp . 80", "goto cluster-3"));
    assert!(has(&f, SET_CLUSTER_IPS, "10.96.0.10 . tcp . 80", ""));
    for (i, ip) in ["10.244.1.2", "10.244.2.2", "10.244.3.2"].iter().enumerate() {
        assert!(has(&f, MAP_CLUSTER_EPS, &format!("10.96.0.10 . tcp . 80 . {i}"), &format!("{ip} . 8080")));
        assert!(has(&f, SET_HAIRPIN, &format!("{ip} . {ip}"), ""));
    }
    assert_eq!(f.shared_chains.len(), 1);
    let c = &f.shared_chains[0];
    assert_eq!(c.name, "cluster-3");
    assert!(c.rules[0].contains("numgen random mod 3 map @cluster-endpoints"), "{:?}", c.rules);
    assert!(c.rules[0].starts_with("meta l4proto tcp dnat ip to"), "{:?}", c.rules);
}

#[test]
fn no_endpoints_rejects_and_local_policy_without_local_endpoints_drops() {
    let f = fragment(&sp("web", vec![]), &ctx());
    assert!(has(&f, MAP_NO_EP_SERVICES, "10.96.0.10 . tcp . 80", "goto reject-chain"));
    assert!(!f.elements.iter().any(|e| e.map == MAP_SERVICE_IPS));

    let mut s = sp("web", vec![ep("10.244.2.2", false)]);
    s.node_port = Some(30080);
    s.external_ips = vec!["192.0.2.1".parse().unwrap()];
    s.external_local = true;
    let f = fragment(&s, &ctx());
    assert!(has(&f, MAP_NO_EP_NODEPORTS, "tcp . 30080", "drop"));
    assert!(has(&f, MAP_NO_EP_SERVICES, "192.0.2.1 . tcp . 80", "drop"));
    assert!(has(&f, MAP_SERVICE_IPS, "10.96.0.10 . tcp . 80", "goto cluster-1"));
}

#[test]
fn nodeport_cluster_policy_masquerades_and_local_policy_keeps_source() {
    let mut s = sp("web", vec![ep("10.244.1.2", true), ep("10.244.2.2", false)]);
    s.node_port = Some(30080);
    let f = fragment(&s, &ctx());
    assert!(has(&f, MAP_SERVICE_NODEPORTS, "tcp . 30080", "goto external-cluster-2"));
    assert!(has(&f, MAP_CLUSTER_NP_EPS, "tcp . 30080 . 1", "10.244.2.2 . 8080"));
    let ext = f.shared_chains.iter().find(|c| c.name == "external-cluster-2").unwrap();
    assert_eq!(ext.rules, ["jump mark-for-masquerade", "goto cluster-2"]);

    s.external_local = true;
    s.local_endpoints = vec![ep("10.244.1.2", true)];
    let f = fragment(&s, &ctx());
    assert!(has(&f, MAP_SERVICE_NODEPORTS, "tcp . 30080", "goto external-local-2-1"));
    assert!(has(&f, MAP_LOCAL_NP_EPS, "tcp . 30080 . 0", "10.244.1.2 . 8080"));
    let ext = f.shared_chains.iter().find(|c| c.name == "external-local-2-1").unwrap();
    assert_eq!(
        ext.rules,
        [
            "ip saddr 10.244.0.0/16 goto cluster-2",
            "fib saddr type local jump mark-for-masquerade",
            "fib saddr type local goto cluster-2",
            "goto local-1",
        ]
    );
    assert!(!ext.rules.iter().any(|r| r == "jump mark-for-masquerade"), "no masquerade for remote clients");
}

#[test]
fn affinity_uses_per_endpoint_timeout_sets() {
    let mut s = sp("web", vec![ep("10.244.1.2", true), ep("10.244.2.2", false)]);
    s.affinity_timeout = Some(600);
    let f = fragment(&s, &ctx());
    assert_eq!(f.sets.len(), 2);
    assert!(f.sets.iter().all(|x| x.body == "type ipv4_addr; flags dynamic,timeout; timeout 600s;"));
    let chain = &f.chains[0];
    assert!(chain.name.starts_with("service-") && chain.name.ends_with("-ns/web/tcp/http"));
    let a0 = &f.sets[0].name;
    let first_set = names::nft_affinity(&s.name, &s.cluster_endpoints[0], 600);
    assert!(chain.rules[0].starts_with(&format!("ip saddr @{first_set} update @{first_set} {{ ip saddr }}")), "{:?}", chain.rules);
    assert!(f.sets.iter().any(|x| &x.name == a0));
    assert!(chain.rules[2].starts_with("numgen random mod 2 == 0 update @"), "{:?}", chain.rules);
    assert!(chain.rules[3].contains("dnat ip to 10.244.2.2:8080") && !chain.rules[3].contains("numgen"));
    assert!(has(&f, MAP_SERVICE_IPS, "10.96.0.10 . tcp . 80", &format!("goto {}", chain.name)));
}

#[test]
fn base_masquerades_off_cluster_cluster_ip_traffic_and_hairpin() {
    let b = base(&ctx());
    let services = b.chains.iter().find(|c| c.name == "services").unwrap();
    assert_eq!(
        services.rules[0],
        "ip daddr . meta l4proto . th dport @cluster-ips ip saddr != 10.244.0.0/16 jump mark-for-masquerade"
    );
    assert!(services.rules[2].starts_with("fib daddr type local ip daddr != 127.0.0.0/8"));
    let masq = b.chains.iter().find(|c| c.name == "masquerading").unwrap();
    assert!(masq.rules[0].contains("@hairpin-endpoints masquerade"));
    let out = b.chains.iter().find(|c| c.name == "nat-output").unwrap();
    assert!(out.hook.as_deref().unwrap().contains("priority -100"), "dstnat is refused on output");
    let b = base(&RenderCtx { node_port_cidrs: Some(vec!["10.77.0.0/24".parse().unwrap()]), ..Default::default() });
    let services = b.chains.iter().find(|c| c.name == "services").unwrap();
    assert_eq!(services.rules.len(), 2, "no masquerade rule without local detection");
    assert!(services.rules[1].contains("@nodeport-ips"));
    assert!(b.elements.iter().any(|e| e.map == SET_NODEPORT_IPS && e.key == "10.77.0.0/24"));
}

fn state(sps: Vec<ServicePort>) -> State {
    let mut s = State::default();
    for p in sps {
        s.services.insert(p.name.clone(), p);
    }
    s
}

#[test]
fn partial_plan_sends_only_changed_elements() {
    let mut a = NftApplied::new();
    let mut other = sp("other", vec![ep("10.244.9.9", false)]);
    other.cluster_ip = "10.96.0.99".parse().unwrap();
    let st = state(vec![sp("web", vec![ep("10.244.1.2", true), ep("10.244.2.2", false)]), other.clone()]);
    let p = a.plan(&st, &ctx(), false, None);
    assert!(p.full && p.script.starts_with("add table ip kube-proxy\ndelete table ip kube-proxy\n"));
    a.commit(p);
    // Same endpoint count, one endpoint replaced: map updates only, no chain touched.
    let st2 = state(vec![sp("web", vec![ep("10.244.1.2", true), ep("10.244.2.7", false)]), other.clone()]);
    let p = a.plan(&st2, &ctx(), false, None);
    assert!(!p.full);
    assert_eq!(p.changed_services, 1);
    let expected = "delete element ip kube-proxy cluster-endpoints { 10.96.0.10 . tcp . 80 . 1 }\n\
                    delete element ip kube-proxy hairpin-endpoints { 10.244.2.2 . 10.244.2.2 }\n\
                    add element ip kube-proxy cluster-endpoints { 10.96.0.10 . tcp . 80 . 1 : 10.244.2.7 . 8080 }\n\
                    add element ip kube-proxy hairpin-endpoints { 10.244.2.7 . 10.244.2.7 }\n";
    assert_eq!(p.script, expected);
    a.commit(p);
    // Endpoint count changes 2 → 1: verdict changes, cluster-2 is no longer used.
    let st3 = state(vec![sp("web", vec![ep("10.244.1.2", true)]), other]);
    let p = a.plan(&st3, &ctx(), false, None);
    assert!(p.script.contains("delete element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 }"), "{}", p.script);
    assert!(p.script.contains("add element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 : goto cluster-1 }"));
    assert!(p.script.contains("flush chain ip kube-proxy cluster-2\n"), "{}", p.script);
    assert!(p.script.ends_with("delete chain ip kube-proxy cluster-2\n"), "{}", p.script);
    assert!(!p.script.contains("add chain"), "cluster-1 already exists (other service): {}", p.script);
    a.commit(p);
    assert!(a.plan(&st3, &ctx(), false, None).script.is_empty(), "nothing changed");
    let sizes = a.sizes();
    assert_eq!(sizes.elements, 2 + 2 + 2 + 2, "service-ips, cluster-ips, cluster-endpoints, hairpin");
}

#[test]
fn hinted_plan_equals_full_comparison() {
    let mut a = NftApplied::new();
    let mut other = sp("other", vec![ep("10.244.9.9", false)]);
    other.cluster_ip = "10.96.0.99".parse().unwrap();
    let st = state(vec![sp("web", vec![ep("10.244.1.2", true)]), other.clone()]);
    a.commit(a.plan(&st, &ctx(), false, None));
    let mut web = sp("web", vec![ep("10.244.1.3", true)]);
    web.node_port = Some(30001);
    let st2 = state(vec![web.clone(), other]);
    let hint = std::collections::BTreeSet::from([web.name.clone()]);
    let with = a.plan(&st2, &ctx(), false, Some(&hint));
    let without = a.plan(&st2, &ctx(), false, None);
    assert_eq!(with.script, without.script);
    assert!(with.script.contains("add element ip kube-proxy service-nodeports { tcp . 30001 : goto external-cluster-1 }"));
    assert!(with.script.contains("add chain ip kube-proxy external-cluster-1"), "{}", with.script);
}
