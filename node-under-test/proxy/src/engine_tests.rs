//! The engine's decisions against a recording kernel: what it applies, lists and flushes, in
//! which order, and how it recovers from a refused apply. The rules themselves are checked in
//! a real namespace by tests/kernel_rules.rs.

use super::*;
use crate::conntrack::Flush;
use crate::ctx::{Cidr, LocalDetect};
use crate::kernel::{Call, Recording};
use crate::model::{Endpoint, Protocol, ServicePort, ServicePortName};

fn ctx() -> RenderCtx {
    RenderCtx { local: LocalDetect::Cidr(Cidr { addr: "10.244.0.0".parse().unwrap(), len: 16 }), masquerade_all: false, node_port_cidrs: None }
}

fn port(name: &str, proto: Protocol, cip: &str, eps: &[&str]) -> ServicePort {
    let name = ServicePortName { namespace: "ns".into(), name: name.into(), port: "p".into(), protocol: proto };
    let eps = eps.iter().map(|e| Endpoint { ip: e.parse().unwrap(), port: 8080, local: false }).collect();
    ServicePort::cluster(name, cip.parse().unwrap(), 80, eps)
}

fn state(ports: Vec<ServicePort>) -> State {
    let mut s = State::default();
    for p in ports {
        s.services.insert(p.name.clone(), p);
    }
    s
}

fn engine(mode: Mode) -> (Engine, Recording) {
    let kernel = Recording::default();
    (Engine::with_kernel(mode, Box::new(kernel.clone())), kernel)
}

fn applies(calls: &[Call]) -> usize {
    calls.iter().filter(|c| matches!(c, Call::NftApply(_) | Call::IptablesRestore(_))).count()
}

#[test]
fn a_refused_apply_makes_the_next_sync_full() {
    for mode in [Mode::Nftables, Mode::Iptables] {
        let (mut eng, kernel) = engine(mode);
        assert!(eng.sync(&state(vec![port("a", Protocol::Tcp, "10.96.0.10", &["10.244.1.2"])]), &ctx(), false).unwrap().full);
        let changed = state(vec![port("a", Protocol::Tcp, "10.96.0.10", &["10.244.1.3"])]);
        kernel.fail_applies(1);
        assert!(eng.sync(&changed, &ctx(), false).is_err(), "{mode:?}: the refusal is reported");
        let again = eng.sync(&changed, &ctx(), false).unwrap();
        assert!(again.full, "{mode:?}: after a refused apply the kernel's state is unknown, so the next sync is full");
    }
}

#[test]
fn iptables_lists_the_kernel_only_when_its_state_is_unknown() {
    let (mut eng, kernel) = engine(Mode::Iptables);
    eng.sync(&state(vec![port("a", Protocol::Tcp, "10.96.0.10", &["10.244.1.2"])]), &ctx(), false).unwrap();
    let first = kernel.calls();
    assert_eq!(first[..2], [Call::IptablesSave("nat".into()), Call::IptablesSave("filter".into())], "the first sync lists before it writes");
    assert!(applies(&first) >= 1);
    kernel.clear();
    let r = eng.sync(&state(vec![port("a", Protocol::Tcp, "10.96.0.10", &["10.244.1.3"])]), &ctx(), false).unwrap();
    assert!(!r.full, "one changed endpoint is a partial sync");
    let second = kernel.calls();
    assert!(!second.iter().any(|c| matches!(c, Call::IptablesSave(_))), "a partial sync lists nothing: {second:?}");
    assert_eq!(applies(&second), 1);
}

#[test]
fn nothing_changed_applies_nothing() {
    let (mut eng, kernel) = engine(Mode::Nftables);
    let s = state(vec![port("a", Protocol::Tcp, "10.96.0.10", &["10.244.1.2"])]);
    eng.sync(&s, &ctx(), false).unwrap();
    kernel.clear();
    eng.sync(&s, &ctx(), false).unwrap();
    assert_eq!(kernel.calls(), [], "an unchanged state is not written again");
}

#[test]
fn a_removed_udp_endpoint_is_flushed_after_the_rules_changed() {
    let (mut eng, kernel) = engine(Mode::Nftables);
    eng.sync(&state(vec![port("dns", Protocol::Udp, "10.96.0.10", &["10.244.1.2", "10.244.1.3"])]), &ctx(), false).unwrap();
    kernel.clear();
    let r = eng.sync(&state(vec![port("dns", Protocol::Udp, "10.96.0.10", &["10.244.1.3"])]), &ctx(), false).unwrap();
    let calls = kernel.calls();
    assert!(matches!(calls.first(), Some(Call::NftApply(_))), "rules first, so no new flow is DNAT'd to the old endpoint: {calls:?}");
    let flush = Flush::Endpoint { service: "10.96.0.10".parse().unwrap(), endpoint: "10.244.1.2".parse().unwrap() };
    assert_eq!(calls[1..], [Call::ConntrackFlush(flush)]);
    assert!(r.conntrack_errors.is_empty());
}

#[test]
fn a_failed_flush_is_reported_not_fatal() {
    let (mut eng, kernel) = engine(Mode::Iptables);
    eng.sync(&state(vec![port("dns", Protocol::Udp, "10.96.0.10", &[])]), &ctx(), false).unwrap();
    kernel.fail_flushes();
    let r = eng.sync(&state(vec![port("dns", Protocol::Udp, "10.96.0.10", &["10.244.1.2"])]), &ctx(), false).unwrap();
    assert_eq!(r.conntrack_errors.len(), 1, "a service that gains endpoints flushes its rejected flows");
    assert!(kernel.calls().contains(&Call::ConntrackFlush(Flush::ServiceIp("10.96.0.10".parse().unwrap()))));
}

#[test]
fn without_conntrack_cleanup_nothing_is_flushed() {
    let (mut eng, kernel) = engine(Mode::Nftables);
    eng.conntrack_cleanup = false;
    eng.sync(&state(vec![port("dns", Protocol::Udp, "10.96.0.10", &["10.244.1.2"])]), &ctx(), false).unwrap();
    eng.sync(&state(vec![port("dns", Protocol::Udp, "10.96.0.10", &[])]), &ctx(), false).unwrap();
    assert!(!kernel.calls().iter().any(|c| matches!(c, Call::ConntrackFlush(_))));
}

#[test]
fn cleanup_removes_our_chains_and_leaves_others() {
    let mut kernel = Recording::default();
    kernel.set_listing("nat", "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-ABC - [0:0]\n:DOCKER - [0:0]\nCOMMIT\n");
    cleanup_with(&mut kernel).unwrap();
    let calls = kernel.calls();
    assert!(matches!(&calls[0], Call::NftApply(s) if s.contains("kube-proxy")), "the nft table goes first: {calls:?}");
    let jumps = calls.iter().filter(|c| matches!(c, Call::IptablesDelete { .. })).count();
    assert_eq!(jumps, ipt::jumps().len(), "each jump from a built-in chain is deleted");
    let restores: Vec<&String> = calls.iter().filter_map(|c| if let Call::IptablesRestore(s) = c { Some(s) } else { None }).collect();
    assert_eq!(restores.len(), 1, "only nat holds chains of ours: {calls:?}");
    assert!(restores[0].contains("-X KUBE-SERVICES") && restores[0].contains("-X KUBE-SVC-ABC"), "{}", restores[0]);
    assert!(!restores[0].contains("DOCKER"), "another program's chain stays: {}", restores[0]);
}
