//! Kernel tests: rendered rules are loaded into a FRESH network namespace (never the host's)
//! and read back with `nft list` / `iptables-save`; partial syncs change only what they should.

mod common;

use common::*;
use node_proxy::config::Mode;
use node_proxy::ctx::{Cidr, LocalDetect, RenderCtx};
use node_proxy::engine::{self, Engine};
use node_proxy::exec::Tools;
use node_proxy::model::Protocol;
use node_proxy::netns::{current_netns_id, in_fresh_netns};
use node_proxy::{bench, names};

fn ctx() -> RenderCtx {
    RenderCtx {
        local: LocalDetect::Cidr(Cidr { addr: ip("10.244.0.0"), len: 16 }),
        masquerade_all: false,
        node_port_cidrs: None,
    }
}

fn mixed_state() -> node_proxy::model::State {
    let a = svc("a", "10.96.0.10", 80, vec![ep("10.244.1.2", 8080, true), ep("10.244.2.2", 8080, false)]);
    let b = svc("b", "10.96.0.11", 80, vec![]);
    let mut c = svc("c", "10.96.0.12", 80, vec![ep("10.244.2.3", 8080, false)]);
    c.node_port = Some(30080);
    c.external_ips = vec![ip("192.0.2.10")];
    c.external_local = true;
    c.local_endpoints = vec![];
    let mut d = svc("d", "10.96.0.13", 80, vec![ep("10.244.1.4", 8080, true)]);
    d.affinity_timeout = Some(600);
    let mut u = svc("u", "10.96.0.14", 53, vec![ep("10.244.1.5", 5353, true)]);
    u.protocol = Protocol::Udp;
    u.name.protocol = Protocol::Udp;
    state(vec![a, b, c, d, u])
}

#[test]
fn runs_in_a_different_namespace() {
    let here = current_netns_id().unwrap();
    let there = in_fresh_netns(|| current_netns_id().unwrap()).unwrap();
    assert_ne!(here, there);
}

#[test]
fn nft_full_partial_and_cleanup() {
    in_fresh_netns(|| {
        let mut eng = Engine::new(Mode::Nftables, Tools::default());
        let mut st = mixed_state();
        let r = eng.sync(&st, &ctx(), false).unwrap();
        assert!(r.full, "first sync is full");
        let list = sh("nft list table ip kube-proxy");
        assert!(list.contains("10.96.0.10 . tcp . 80 : goto cluster-2"), "{list}");
        assert!(list.contains("10.96.0.10 . tcp . 80 . 0 : 10.244.1.2 . 8080"), "{list}");
        assert!(list.contains("10.96.0.10 . tcp . 80 . 1 : 10.244.2.2 . 8080"), "{list}");
        assert!(
            list.contains("dnat ip to ip daddr . meta l4proto . tcp dport . numgen random mod 2 map @cluster-endpoints"),
            "{list}"
        );
        let d_chain = format!("service-{}", names::nft_base(&spn("d", Protocol::Tcp)));
        assert!(list.contains(&format!("10.96.0.13 . tcp . 80 : goto {d_chain}")), "affinity chain: {list}");
        assert!(list.contains("numgen random mod 1") || list.contains("dnat to 10.244.1.4:8080"), "{list}");
        assert!(list.contains("10.96.0.11 . tcp . 80 : goto reject-chain"), "no endpoints → reject: {list}");
        assert!(list.contains("tcp . 30080 : drop"), "eTP Local, no local endpoint → drop: {list}");
        assert!(list.contains("192.0.2.10 . tcp . 80 : drop"), "{list}");
        assert!(list.contains("flags dynamic,timeout"), "affinity set: {list}");
        assert!(list.contains("timeout 10m"), "{list}");
        assert!(list.contains("10.96.0.14 . udp . 53"), "{list}");
        assert!(list.contains("10.244.1.2 . 10.244.1.2"), "hairpin element: {list}");
        let chains_before = sh("nft list chains");

        // Partial: one endpoint of `a` changes.
        st.services.get_mut(&spn("a", Protocol::Tcp)).unwrap().cluster_endpoints[1] = ep("10.244.2.9", 8080, false);
        let r = eng.sync(&st, &ctx(), false).unwrap();
        assert!(!r.full);
        assert_eq!(r.changed_services, 1);
        let list = sh("nft list table ip kube-proxy");
        assert!(list.contains("10.96.0.10 . tcp . 80 . 1 : 10.244.2.9 . 8080") && !list.contains("10.244.2.2"), "{list}");
        assert_eq!(chains_before, sh("nft list chains"), "same chains");

        // Partial: `b` gets an endpoint (moves from no-endpoint-services to service-ips),
        // `d` is removed (its chain and affinity set go away).
        st.services.get_mut(&spn("b", Protocol::Tcp)).unwrap().cluster_endpoints = vec![ep("10.244.1.7", 80, true)];
        st.services.get_mut(&spn("b", Protocol::Tcp)).unwrap().has_any_endpoints = true;
        st.services.remove(&spn("d", Protocol::Tcp));
        let r = eng.sync(&st, &ctx(), false).unwrap();
        assert_eq!(r.changed_services, 2);
        let list = sh("nft list table ip kube-proxy");
        assert!(!list.contains("10.96.0.11 . tcp . 80 : goto reject-chain"), "{list}");
        assert!(list.contains("10.96.0.11 . tcp . 80 : goto cluster-1"), "{list}");
        assert!(!list.contains("10.96.0.13") && !list.contains("flags dynamic,timeout"), "{list}");
        assert!(!list.contains(&d_chain), "{list}");

        // Periodic full resync on top of a known state, then an unchanged sync sends nothing.
        let r = eng.sync(&st, &ctx(), true).unwrap();
        assert!(r.full);
        assert_eq!(sh("nft list table ip kube-proxy"), list, "full resync is idempotent");
        let r = eng.sync(&st, &ctx(), false).unwrap();
        assert_eq!(r.script_bytes, 0, "nothing changed → empty transaction");

        engine::cleanup(&Tools::default()).unwrap();
        assert!(!sh("nft list tables").contains("kube-proxy"));
        engine::cleanup(&Tools::default()).unwrap();
    })
    .unwrap();
}

#[test]
fn nft_failed_transaction_recovers_with_a_recreate() {
    in_fresh_netns(|| {
        let mut eng = Engine::new(Mode::Nftables, Tools::default());
        let st = mixed_state();
        eng.sync(&st, &ctx(), false).unwrap();
        // Someone deletes the table behind our back: the partial sync fails, the next one
        // recreates everything.
        sh("nft delete table ip kube-proxy");
        let mut st2 = st.clone();
        st2.services.get_mut(&spn("a", Protocol::Tcp)).unwrap().cluster_endpoints.pop();
        assert!(eng.sync(&st2, &ctx(), false).is_err());
        let r = eng.sync(&st2, &ctx(), false).unwrap();
        assert!(r.full);
        assert!(sh("nft list table ip kube-proxy").contains("10.96.0.10 . tcp . 80"));
    })
    .unwrap();
}

#[test]
fn iptables_full_partial_and_cleanup() {
    in_fresh_netns(|| {
        let mut eng = Engine::new(Mode::Iptables, Tools::default());
        let mut st = mixed_state();
        let r = eng.sync(&st, &ctx(), false).unwrap();
        assert!(r.full);
        let nat = sh("iptables-save -t nat");
        let a = spn("a", Protocol::Tcp);
        let svc_chain = names::ipt_svc(&a);
        assert!(nat.contains(&format!("-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"ns1/a:p cluster IP\" -m tcp --dport 80 -j {svc_chain}")), "{nat}");
        assert!(nat.contains("--probability 0.50000000000"), "{nat}");
        assert!(nat.contains("-j DNAT --to-destination 10.244.1.2:8080"), "{nat}");
        assert!(nat.contains("-m recent --set --name KUBE-SEP-") || nat.contains("--set"), "affinity: {nat}");
        assert!(nat.contains("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"), "{nat}");
        let filter = sh("iptables-save -t filter");
        assert!(filter.contains("-d 10.96.0.11/32 -p tcp -m comment --comment \"ns1/b:p has no endpoints\" -m tcp --dport 80 -j REJECT"), "{filter}");
        assert!(filter.contains("--dport 30080 -j DROP"), "{filter}");

        // Partial: change one endpoint of `a`; its old KUBE-SEP chain is deleted.
        let old_sep = names::ipt_sep(&a, &ep("10.244.2.2", 8080, false));
        assert!(nat.contains(&old_sep));
        st.services.get_mut(&a).unwrap().cluster_endpoints[1] = ep("10.244.2.9", 8080, false);
        let r = eng.sync(&st, &ctx(), false).unwrap();
        assert!(!r.full && r.changed_services == 1);
        assert!(r.script_bytes > 0);
        let nat = sh("iptables-save -t nat");
        assert!(!nat.contains(&old_sep), "{nat}");
        assert!(nat.contains("--to-destination 10.244.2.9:8080"));
        let jumps = nat.matches("-A PREROUTING").count();
        eng.sync(&st, &ctx(), true).unwrap();
        assert_eq!(sh("iptables-save -t nat").matches("-A PREROUTING").count(), jumps, "jumps not duplicated");

        engine::cleanup(&Tools::default()).unwrap();
        let nat = sh("iptables-save -t nat");
        let filter = sh("iptables-save -t filter");
        assert!(!nat.contains("KUBE-") && !filter.contains("KUBE-"), "{nat}{filter}");
    })
    .unwrap();
}

#[test]
fn iptables_restart_removes_stale_chains_left_by_an_earlier_run() {
    in_fresh_netns(|| {
        let mut first = Engine::new(Mode::Iptables, Tools::default());
        first.sync(&mixed_state(), &ctx(), false).unwrap();
        // A new process starts with a smaller state: it lists the kernel and removes the rest.
        let mut second = Engine::new(Mode::Iptables, Tools::default());
        let small = state(vec![svc("a", "10.96.0.10", 80, vec![ep("10.244.1.2", 8080, true)])]);
        second.sync(&small, &ctx(), false).unwrap();
        let nat = sh("iptables-save -t nat");
        assert!(!nat.contains(&names::ipt_svc(&spn("c", Protocol::Tcp))), "{nat}");
        assert!(nat.contains(&names::ipt_svc(&spn("a", Protocol::Tcp))));
        assert_eq!(nat.matches("-A PREROUTING").count(), 1, "jump not duplicated by a restart: {nat}");
        assert_eq!(nat.matches("-A OUTPUT").count(), 1, "{nat}");
        let filter = sh("iptables-save -t filter");
        assert_eq!(filter.matches("-j KUBE-EXTERNAL-SERVICES").count(), 2, "INPUT and FORWARD: {filter}");
    })
    .unwrap();
}

#[test]
fn bench_smoke_runs_in_its_own_namespace() {
    let opts = bench::BenchOpts { services: vec![200], change_rounds: 2, ..Default::default() };
    let report = bench::run(&opts).unwrap();
    assert_eq!(report.rows.len(), 2);
    // nftables: global maps (service-ips, cluster-ips, cluster-endpoints, hairpin) hold
    // 1 + 1 + 2 + 2 elements per service and only shared chains exist.
    assert_eq!(report.rows[0].sizes.elements, 200 * 6, "{report}");
    assert!(report.rows[0].sizes.chains < 20, "{report}");
    // iptables: KUBE-SVC + 2 × KUBE-SEP per service plus the 4 shared chains.
    assert_eq!(report.rows[1].sizes.chains, 200 * 3 + 4, "{report}");
    assert!(report.to_string().contains("nftables"));
    // The host namespace has no table of ours.
    let out = std::process::Command::new("nft").args(["list", "tables"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("kube-proxy"));
}
