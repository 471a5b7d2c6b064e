//! Unit-level tests of the public API that need no namespaces: packets, paths, plans, waits,
//! artifacts and the timeline.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{Icmpv4Type, PacketBuilder};
use harness::artifacts::Artifacts;
use harness::packets::{L4, Packet};
use harness::path::{Addr, Captures, Flow};
use harness::world::{Cidr, HostPlan, Plan};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, syn: bool, ack: bool) -> Packet {
    let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4(src, dst, 64).tcp(sport, dport, 1000, 64000);
    if syn {
        b = b.syn();
    }
    if ack {
        b = b.ack(77);
    }
    let mut frame = Vec::new();
    b.write(&mut frame, b"").expect("build frame");
    Packet::decode(SystemTime::UNIX_EPOCH, frame.len() as u32, &frame)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("literal")
}

#[test]
fn decodes_tcp_udp_icmp() {
    let p = tcp([10, 77, 0, 100], 40000, [10, 96, 0, 10], 80, true, false);
    assert_eq!((p.src_mac, p.dst_mac, p.ether_type), (MAC_A, MAC_B, 0x0800));
    assert_eq!(p.src(), Some("10.77.0.100:40000".parse().expect("addr")));
    assert!(p.is_syn() && !p.is_syn_ack());
    assert!(p.to_string().contains("10.77.0.100:40000 > 10.96.0.10:80 TCP [S] seq 1000"), "{p}");
    let sa_ = tcp([10, 96, 0, 10], 80, [10, 77, 0, 100], 40000, true, true);
    assert!(sa_.is_syn_ack());
    assert_eq!(sa_.tcp_flags().map(|f| f.to_string()), Some("S.".to_string()));

    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5353, 53)
        .write(&mut frame, b"hello")
        .expect("udp");
    let u = Packet::decode(SystemTime::UNIX_EPOCH, frame.len() as u32, &frame);
    assert_eq!(u.l4, L4::Udp { src_port: 5353, dst_port: 53, payload_len: 5 });

    // Port unreachable quoting the original UDP datagram.
    let quoted = &frame[14..14 + 28];
    let mut icmp = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port))
        .write(&mut icmp, quoted)
        .expect("icmp");
    let i = Packet::decode(SystemTime::UNIX_EPOCH, icmp.len() as u32, &icmp);
    match i.l4 {
        L4::Icmp { icmp_type: 3, code: 3, original_dst: Some((dst, 17)) } => {
            assert_eq!(dst, "10.0.0.2:53".parse().expect("addr"))
        }
        other => panic!("unexpected {other:?}"),
    }
    // Garbage does not panic.
    let g = Packet::decode(SystemTime::UNIX_EPOCH, 3, &[1, 2, 3]);
    assert_eq!(g.l4, L4::Other);
}

#[test]
fn path_legs_match_and_explain() {
    let client = sa("10.77.0.100:40000");
    let svc = sa("10.96.0.10:80");
    let caps = Captures::new()
        .with("client/eth0", vec![
            tcp([10, 77, 0, 100], 40000, [10, 96, 0, 10], 80, true, false),
            tcp([10, 96, 0, 10], 80, [10, 77, 0, 100], 40000, true, true),
        ])
        .with("node-a/cbr0", vec![
            tcp([10, 77, 0, 100], 40000, [10, 244, 1, 10], 8080, true, false),
            tcp([10, 244, 1, 10], 8080, [10, 77, 0, 100], 40000, true, true),
        ]);
    let flow = Flow::tcp(client, svc);
    flow.syn("client/eth0").find(&caps).expect("syn at client");
    flow.syn_ack("client/eth0").find(&caps).expect("syn-ack at client");
    flow.syn("node-a/cbr0").absent(&caps).expect("no unrewritten syn on cbr0");
    let pods = [sa("10.244.1.10:8080"), sa("10.244.1.11:8080")];
    flow.syn("node-a/cbr0").dst_one_of(pods).find(&caps).expect("dnat'd syn");
    flow.syn_ack("node-a/cbr0").src_one_of(pods).find(&caps).expect("reply from pod");
    // Any client port.
    Flow::tcp(sa("10.77.0.100:0"), svc).syn("client/eth0").find(&caps).expect("port 0 = any");
    // Failures say what was expected and what was seen.
    let e = flow.syn("node-a/cbr0").find(&caps).expect_err("unrewritten syn is not on cbr0").to_string();
    assert!(e.contains("no TCP SYN 10.77.0.100:40000 > 10.96.0.10:80 at node-a/cbr0"), "{e}");
    assert!(e.contains("10.77.0.100:40000 > 10.244.1.10:8080 TCP [S]"), "{e}");
    let e = flow.syn("client/eth0").absent(&caps).expect_err("syn is there").to_string();
    assert!(e.contains("expected no TCP SYN"), "{e}");
    assert!(flow.syn("nowhere").find(&caps).is_err());
    assert!(Addr::OneOf(vec!["1.2.3.4:5".parse().expect("a")]).matches("1.2.3.4:5".parse().expect("a")));
    assert!(!Addr::Ip(Ipv4Addr::new(1, 2, 3, 4)).matches("1.2.3.5:5".parse().expect("a")));
    // UDP flows do not match TCP packets.
    assert!(Flow::udp(client, svc).request("client/eth0").find(&caps).is_err());
}

#[test]
fn plans_and_cidrs() {
    let c: Cidr = "10.244.1.7/24".parse().expect("cidr");
    assert_eq!(c.to_string(), "10.244.1.0/24");
    assert!(c.contains(Ipv4Addr::new(10, 244, 1, 200)) && !c.contains(Ipv4Addr::new(10, 244, 2, 1)));
    assert_eq!(c.nth(1), Ipv4Addr::new(10, 244, 1, 1));
    assert!("10.0.0.0/33".parse::<Cidr>().is_err() && "nonsense".parse::<Cidr>().is_err());

    let d = Plan::default();
    let names: Vec<&str> = d.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["cp", "node-a", "node-b", "client"]);
    d.validate().expect("default plan is valid");
    let s = Plan::single_node();
    assert_eq!(s.hosts.len(), 3);
    assert_eq!(s.hosts[1].pod_cidr.map(|c| c.to_string()), Some("10.244.1.0/24".into()));
    assert!(s.hosts[1].bridge_nf_call_iptables && !s.hosts[0].bridge_nf_call_iptables);

    let dup = Plan::single_node().host(HostPlan::client("client", Ipv4Addr::new(10, 77, 0, 101)));
    assert!(dup.validate().is_err());
    let outside = Plan::single_node().host(HostPlan::client("c2", Ipv4Addr::new(10, 78, 0, 1)));
    assert!(outside.validate().is_err());
    let long = Plan::single_node().host(HostPlan::client("much-too-long-name", Ipv4Addr::new(10, 77, 0, 9)));
    assert!(long.validate().is_err());
    let gw = Plan::single_node().host(HostPlan::client("gw", Ipv4Addr::new(10, 77, 0, 1)));
    assert!(gw.validate().is_err());
}

#[tokio::test]
async fn waits_report_what_and_last() {
    let mut n = 0;
    let v = harness::wait::wait_for("n to reach 3", Duration::from_secs(2), || {
        n += 1;
        let seen = n;
        async move { (seen >= 3).then_some(seen) }
    })
    .await
    .expect("reached");
    assert_eq!(v, 3);
    let e = harness::wait::wait_for("the impossible", Duration::from_millis(30), || async { Err::<(), _>("state=stuck") })
        .await
        .expect_err("times out")
        .to_string();
    assert!(e.contains("the impossible") && e.contains("state=stuck"), "{e}");
    let e = harness::wait::wait_blocking("never", Duration::from_millis(20), || false).expect_err("times out");
    assert!(e.to_string().contains("never"));
}

#[test]
fn artifacts_kept_on_failure_removed_on_success() {
    let root = tempfile::tempdir().expect("tempdir");
    let ok = Artifacts::at(root.path().join("ok"));
    std::fs::create_dir_all(ok.dir()).expect("mkdir");
    std::fs::write(ok.path("x.log"), "x").expect("write");
    let bad = Artifacts::at(root.path().join("bad"));
    std::fs::create_dir_all(bad.dir()).expect("mkdir");
    let keep_all = std::env::var(harness::artifacts::KEEP_ENV).is_ok_and(|v| v == "1");
    assert_eq!(ok.finish(true).is_some(), keep_all);
    assert_eq!(ok.dir().exists(), keep_all);
    assert_eq!(bad.finish(false), Some(bad.dir().to_path_buf()));
    assert!(bad.dir().exists());
    assert_eq!(bad.outcome(), Some(false));
}

#[test]
fn timeline_appends_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = harness::timeline::Timeline::open(dir.path().join("timeline.jsonl")).expect("open");
    let t2 = t.clone();
    t.record("agent", "registered");
    t2.record_with("harness", "world built", serde_json::json!({"hosts": 4}));
    let ev = t.read().expect("read");
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["source"], "agent");
    assert_eq!(ev[1]["details"]["hosts"], 4);
    let time = ev[0]["time"].as_str().expect("time");
    time.parse::<jiff::Timestamp>().expect("RFC3339 time");
}

#[test]
fn world_types_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<harness::world::World>();
    send_sync::<harness::world::Host>();
    send_sync::<harness::capture::Capture>();
    send_sync::<harness::timeline::Timeline>();
    send_sync::<harness::artifacts::Artifacts>();
    fn send<T: Send>() {}
    send::<harness::process::Process>();
}
