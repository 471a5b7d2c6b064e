//! Routed packet paths across three network namespaces, all created here: the "node" (a fresh
//! namespace owned by the test thread, where the rules are loaded), a "pod" and a "client"
//! namespace (held by `unshare -n sleep` children, joined with setns by worker threads), wired
//! with veth pairs. The pod's server answers with the peer address it sees, which shows
//! whether the proxy masqueraded: NodePort (Cluster → masqueraded, Local → client address
//! kept), off-cluster ClusterIP traffic (masqueraded) and hairpin (pod → own service).

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use nix::sched::{CloneFlags, setns};
use node_proxy::config::Mode;
use node_proxy::ctx::{Cidr, LocalDetect, RenderCtx};
use node_proxy::engine::Engine;
use node_proxy::exec::Tools;
use node_proxy::netns::in_fresh_netns;

/// A namespace held open by a `sleep` child; killed (by its PID) on drop.
struct Ns {
    child: Child,
}

impl Ns {
    fn new() -> Ns {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "120"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare -n sleep");
        // Wait until the child is in its own namespace (its ns link differs from ours).
        let ours = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let path = format!("/proc/{}/ns/net", child.id());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(&path).map(|l| l == ours).unwrap_or(true) {
            assert!(std::time::Instant::now() < deadline, "child never entered its namespace");
            std::thread::sleep(Duration::from_millis(5));
        }
        Ns { child }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Runs a shell command inside this namespace.
    fn sh(&self, cmd: &str) {
        sh(&format!("nsenter -t {} -n sh -c '{}'", self.pid(), cmd));
    }
    /// Runs `f` on a thread that joined this namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
        let file = File::open(format!("/proc/{}/ns/net", self.pid())).unwrap();
        std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

fn paths(mode: Mode) {
    let pod = Ns::new();
    let client = Ns::new();
    sh(&format!(
        "sysctl -qw net.ipv4.ip_forward=1 && ip link set lo up \
         && ip link add vp type veth peer name vp1 && ip link set vp1 netns {p} \
         && ip addr add 10.244.1.1/24 dev vp && ip link set vp up \
         && ip link add vc type veth peer name vc1 && ip link set vc1 netns {c} \
         && ip addr add 10.77.0.11/24 dev vc && ip link set vc up \
         && ip route add 10.96.0.0/16 dev vp",
        p = pod.pid(),
        c = client.pid()
    ));
    pod.sh("ip link set lo up && ip addr add 10.244.1.2/24 dev vp1 && ip link set vp1 up && ip route add default via 10.244.1.1");
    client.sh("ip link set lo up && ip addr add 10.77.0.100/24 dev vc1 && ip link set vc1 up && ip route add default via 10.77.0.11");

    // Server in the pod: answers with the peer address it sees.
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = {
        let stop = stop.clone();
        pod.run(move || {
            let l = TcpListener::bind("10.244.1.2:8080").unwrap();
            l.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(peer.ip().to_string().as_bytes());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => break,
                }
            }
        })
    };
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();

    let pod_ep = || vec![ep("10.244.1.2", 8080, true)];
    let mut cluster = svc("cluster", "10.96.0.10", 80, pod_ep());
    cluster.node_port = Some(30080);
    let mut local = svc("local", "10.96.0.11", 80, pod_ep());
    local.node_port = Some(30081);
    local.external_local = true;
    local.local_endpoints = pod_ep();
    let st = state(vec![cluster, local]);
    let ctx = RenderCtx {
        local: LocalDetect::Cidr(Cidr { addr: ip("10.244.0.0"), len: 16 }),
        masquerade_all: false,
        node_port_cidrs: None,
    };
    let mut eng = Engine::new(mode, Tools::default());
    eng.sync(&st, &ctx, false).unwrap();

    let from_client = |addr: &'static str| client.run(move || ask(addr)).join().unwrap();
    assert_eq!(from_client("10.77.0.11:30080").unwrap(), "10.244.1.1", "{mode:?}: NodePort, Cluster policy → masqueraded");
    assert_eq!(from_client("10.77.0.11:30081").unwrap(), "10.77.0.100", "{mode:?}: NodePort, Local policy → source kept");
    assert_eq!(from_client("10.96.0.10:80").unwrap(), "10.244.1.1", "{mode:?}: off-cluster ClusterIP traffic → masqueraded");
    let hairpin = pod.run(|| ask("10.96.0.10:80")).join().unwrap();
    assert_eq!(hairpin.unwrap(), "10.244.1.1", "{mode:?}: hairpin → masqueraded");
    assert_eq!(ask("10.96.0.10:80").unwrap(), "10.244.1.1", "{mode:?}: from the node itself");

    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
}

#[test]
fn nftables_paths() {
    in_fresh_netns(|| paths(Mode::Nftables)).unwrap();
}

#[test]
fn iptables_paths() {
    in_fresh_netns(|| paths(Mode::Iptables)).unwrap();
}
