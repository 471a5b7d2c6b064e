//! Traffic tests in a fresh network namespace: a veth interface carries two "pod" addresses
//! with TCP listeners that answer with their name; node-local clients connect to ClusterIPs
//! and NodePorts and the answers show where the connection landed (both modes).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use node_proxy::config::Mode;
use node_proxy::ctx::{Cidr, LocalDetect, RenderCtx};
use node_proxy::engine::Engine;
use node_proxy::exec::Tools;
use node_proxy::netns::in_fresh_netns;

/// Listeners answering with `name`; stopped when dropped.
struct Server {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(addrs: &[(&str, &'static str)]) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (addr, name) in addrs {
            let l = TcpListener::bind(addr).unwrap();
            l.set_nonblocking(true).unwrap();
            let stop = stop.clone();
            let name = *name;
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let _ = s.write_all(name.as_bytes());
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                        Err(_) => break,
                    }
                }
            }));
        }
        Server { stop, threads }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn ask(addr: &str) -> std::io::Result<String> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn counts(addr: &str, n: usize) -> (usize, usize) {
    let (mut a, mut b) = (0, 0);
    for _ in 0..n {
        match ask(addr).unwrap().as_str() {
            "A" => a += 1,
            "B" => b += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    (a, b)
}

fn traffic(mode: Mode) {
    sh("ip link set lo up && ip link add d0 type veth peer name d1 && ip link set d0 up && ip link set d1 up \
        && ip addr add 10.244.1.1/24 dev d0 && ip addr add 10.244.1.2/24 dev d0 \
        && ip addr add 10.244.1.3/24 dev d0 && ip route add 10.96.0.0/16 dev d0");
    let _srv = Server::start(&[("10.244.1.2:8080", "A"), ("10.244.1.3:8080", "B")]);
    let eps = || vec![ep("10.244.1.2", 8080, true), ep("10.244.1.3", 8080, true)];
    let spread = svc("spread", "10.96.0.10", 80, eps());
    let none = svc("none", "10.96.0.11", 80, vec![]);
    let mut sticky = svc("sticky", "10.96.0.12", 80, eps());
    sticky.affinity_timeout = Some(60);
    let mut np = svc("np", "10.96.0.13", 80, eps());
    np.node_port = Some(30080);
    let mut st = state(vec![spread, none, sticky, np]);
    let ctx = RenderCtx {
        local: LocalDetect::Cidr(Cidr { addr: ip("10.244.0.0"), len: 16 }),
        masquerade_all: false,
        node_port_cidrs: None,
    };
    let mut eng = Engine::new(mode, Tools::default());
    eng.sync(&st, &ctx, false).unwrap();

    // Random spreading: 60 connections reach both endpoints (P(fail) ≈ 1e-6).
    let (a, b) = counts("10.96.0.10:80", 60);
    assert!(a >= 10 && b >= 10, "{mode:?}: spread {a}/{b}");

    // No endpoints: refused at once (reject), not timed out.
    let t = Instant::now();
    let err = ask("10.96.0.11:80").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{mode:?}: {err}");
    assert!(t.elapsed() < Duration::from_secs(2));

    // Session affinity: every connection from this client lands on the same endpoint.
    let (a, b) = counts("10.96.0.12:80", 20);
    assert!(a == 20 || b == 20, "{mode:?}: affinity {a}/{b}");

    // NodePort on a node address.
    let (a, b) = counts("10.244.1.1:30080", 10);
    assert_eq!(a + b, 10);

    // Partial sync: endpoint A leaves `spread`; every connection now reaches B.
    st.services.get_mut(&spn("spread", node_proxy::model::Protocol::Tcp)).unwrap().cluster_endpoints =
        vec![ep("10.244.1.3", 8080, true)];
    let r = eng.sync(&st, &ctx, false).unwrap();
    assert!(!r.full);
    assert_eq!(counts("10.96.0.10:80", 20), (0, 20), "{mode:?}");

    // And the service losing every endpoint is rejected.
    let sp = st.services.get_mut(&spn("spread", node_proxy::model::Protocol::Tcp)).unwrap();
    sp.cluster_endpoints.clear();
    sp.has_any_endpoints = false;
    eng.sync(&st, &ctx, false).unwrap();
    assert_eq!(ask("10.96.0.10:80").unwrap_err().kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn nftables_traffic() {
    in_fresh_netns(|| traffic(Mode::Nftables)).unwrap();
}

#[test]
fn iptables_traffic() {
    in_fresh_netns(|| traffic(Mode::Iptables)).unwrap();
}

/// UDP: a conntrack entry towards a removed endpoint is deleted by the next sync.
fn udp_conntrack(mode: Mode) {
    sh("ip link set lo up && ip link add d0 type veth peer name d1 && ip link set d0 up && ip link set d1 up \
        && ip addr add 10.244.1.1/24 dev d0 && ip addr add 10.244.1.2/24 dev d0 \
        && ip addr add 10.244.1.3/24 dev d0 && ip route add 10.96.0.0/16 dev d0");
    let server = std::net::UdpSocket::bind("10.244.1.2:5353").unwrap();
    let mut dns = svc("dns", "10.96.0.14", 53, vec![ep("10.244.1.2", 5353, true)]);
    dns.protocol = node_proxy::model::Protocol::Udp;
    dns.name.protocol = node_proxy::model::Protocol::Udp;
    let mut st = state(vec![dns]);
    let ctx = RenderCtx::default();
    let mut eng = Engine::new(mode, Tools::default());
    eng.sync(&st, &ctx, false).unwrap();
    let client = std::net::UdpSocket::bind("10.244.1.1:0").unwrap();
    client.send_to(b"q", "10.96.0.14:53").unwrap();
    server.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 8];
    let (n, _) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"q", "{mode:?}: datagram reached the endpoint through the ClusterIP");
    let listed = sh("conntrack -L -p udp --orig-dst 10.96.0.14 2>/dev/null");
    assert!(listed.contains("src=10.244.1.2"), "{mode:?}: entry exists: {listed}");
    // The endpoint moves to 10.244.1.3: the old entry must go.
    let sp = st.services.values_mut().next().unwrap();
    sp.cluster_endpoints = vec![ep("10.244.1.3", 5353, true)];
    let r = eng.sync(&st, &ctx, false).unwrap();
    assert!(r.conntrack_errors.is_empty(), "{:?}", r.conntrack_errors);
    let listed = sh("conntrack -L -p udp --orig-dst 10.96.0.14 2>/dev/null");
    assert!(!listed.contains("src=10.244.1.2"), "{mode:?}: stale entry flushed: {listed}");
}

#[test]
fn nftables_udp_conntrack_flush() {
    in_fresh_netns(|| udp_conntrack(Mode::Nftables)).unwrap();
}

#[test]
fn iptables_udp_conntrack_flush() {
    in_fresh_netns(|| udp_conntrack(Mode::Iptables)).unwrap();
}
