//! First-packet latency to a ClusterIP, with real packets: a client namespace that holds the
//! rules rendered for `n` synthetic services and an endpoint namespace joined to it by a veth
//! pair, with one TCP listener that accepts and closes. Every connect (connect() until
//! established) to the ClusterIP crosses the nat OUTPUT hook of the client namespace and is
//! DNATed to an endpoint in the other namespace; each one must be accepted by the listener from
//! exactly the client's address and port, so a broken rule fails the row instead of producing
//! a fast number. The floor is the same number of connects straight to the endpoint address,
//! measured in the same namespaces before any rule is loaded.
//!
//! The measured service is the last one in rule order (the last `KUBE-SERVICES` rule in
//! iptables mode, the worst case of its linear list; order does not matter for the nft maps).
//! The client address lies inside the cluster CIDR of the bench context, so it is treated like
//! a pod (no masquerade).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use super::{bench_ctx, ip, synthetic_state};
use crate::config::Mode;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::exec::{self, Tools};
use crate::model::Endpoint;
use crate::netns::in_fresh_netns;

const CLIENT_IF: &str = "lat-cl0";
const ENDPOINT_IF: &str = "lat-ep0";
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);
/// Endpoint addresses are `ENDPOINT_BASE + j` on the endpoint side of the veth pair.
const ENDPOINT_BASE: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 2);
const ENDPOINT_PORT: u16 = 8080;
/// Routed to the veth so connects to ClusterIPs leave the client namespace (the synthetic
/// ClusterIPs start at 10.96.0.1).
const SERVICE_ROUTE: &str = "10.96.0.0/12";
const MAX_ENDPOINTS: usize = 200;
/// Unmeasured (but checked) connects before each measured batch, per target address:
/// they resolve the neighbour and warm the paths.
const WARMUP: usize = 2;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Warm-up connects may wait out one SYN retransmission (the first RTO is 1 s).
const WARMUP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new veth end may take to become operationally up.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(10);
const ACCEPT_TIMEOUT_SECS: i64 = 2;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Median and 99th percentile (nearest rank) of a batch of connection setups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub median: Duration,
    pub p99: Duration,
}

impl Latency {
    /// Nearest-rank median and p99 of `times` (zero for an empty batch).
    pub fn of(mut times: Vec<Duration>) -> Latency {
        times.sort();
        let rank = |p: f64| -> Duration {
            if times.is_empty() {
                return Duration::ZERO;
            }
            let idx = ((p * times.len() as f64).ceil() as usize).saturating_sub(1).min(times.len() - 1);
            times[idx]
        };
        Latency { median: rank(0.5), p99: rank(0.99) }
    }
}

/// One measured configuration.
#[derive(Clone, Debug)]
pub struct LatencyRow {
    pub mode: Mode,
    pub services: usize,
    pub endpoints_per_service: usize,
    /// Measured connects per batch (cluster and floor each).
    pub connections: usize,
    /// The ClusterIP and port connected to.
    pub cluster_ip: SocketAddrV4,
    /// Position of the measured service in rule order (0-based; `services - 1` = last).
    pub rule_position: usize,
    /// Connects to the ClusterIP with the rules of `services` services loaded.
    pub cluster: Latency,
    /// The same connects straight to the first endpoint address, before any rule was loaded.
    pub floor: Latency,
    /// Measured ClusterIP connects accepted per endpoint address (sums to `connections`).
    pub accepted: BTreeMap<Ipv4Addr, usize>,
    /// Full sync that loaded the rules (for context).
    pub sync_time: Duration,
}

/// Measures one row: `connections` connects to one ClusterIP with `services` synthetic
/// services × `endpoints` loaded in `mode`, and the floor; everything runs in two fresh
/// network namespaces that disappear with the call.
pub fn latency_row(mode: Mode, services: usize, endpoints: usize, connections: usize, tools: Tools) -> Result<LatencyRow> {
    if services == 0 || endpoints == 0 || endpoints > MAX_ENDPOINTS {
        return Err(Error::ConfigInvalid(format!(
            "latency bench needs at least one service and 1..={MAX_ENDPOINTS} endpoints per service (got {services} × {endpoints})"
        )));
    }
    in_fresh_netns(move || client_side(mode, services, endpoints, connections, tools))?
}

fn fail(msg: String) -> Error {
    Error::Netns(format!("latency bench: {msg}"))
}

/// The two namespaces: the caller's (client side, `CLIENT_ADDR` on `CLIENT_IF`) and the
/// endpoint namespace, alive as long as `listener` (its only reference once set up).
struct Topology {
    listener: TcpListener,
    endpoints: Vec<Ipv4Addr>,
}

impl Topology {
    /// Builds the pair from the calling thread, which must be in a fresh namespace.
    fn new(endpoints: usize) -> Result<Topology> {
        exec::run("ip", &["link", "set", "lo", "up"], None)?;
        let addrs: Vec<Ipv4Addr> = (0..endpoints).map(|j| ip(ENDPOINT_BASE, j)).collect();
        let (tid_tx, tid_rx) = mpsc::channel::<i32>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let ep_addrs = addrs.clone();
        let ep_thread = std::thread::Builder::new()
            .name("latency-endpoint".into())
            .spawn(move || in_fresh_netns(move || endpoint_side(tid_tx, go_rx, ep_addrs)))
            .map_err(|e| fail(format!("spawning the endpoint thread: {e}")))?;
        let setup = (|| -> Result<()> {
            let tid = tid_rx
                .recv_timeout(HANDSHAKE_TIMEOUT)
                .map_err(|e| fail(format!("endpoint namespace did not start: {e}")))?
                .to_string();
            exec::run("ip", &["link", "add", CLIENT_IF, "type", "veth", "peer", "name", ENDPOINT_IF, "netns", &tid], None)?;
            exec::run("ip", &["addr", "add", &format!("{CLIENT_ADDR}/24"), "dev", CLIENT_IF], None)?;
            exec::run("ip", &["link", "set", CLIENT_IF, "up"], None)?;
            exec::run("ip", &["route", "add", SERVICE_ROUTE, "dev", CLIENT_IF], None)?;
            go_tx.send(()).map_err(|_| fail("endpoint thread gone".into()))
        })();
        // On a setup error the endpoint side sees the channel close and gives up.
        drop(go_tx);
        let joined = ep_thread.join().map_err(|_| fail("endpoint thread panicked".into()))?;
        setup?;
        let listener = joined??;
        // Both ends are up now (a veth has carrier only with its peer up).
        wait_link_up(CLIENT_IF)?;
        Ok(Topology { listener, endpoints: addrs })
    }

    /// `warmup` + `count` connects to `target`; every one must be accepted by the listener
    /// from the client's own address and port, on one of `allowed`. Returns the measured
    /// setup times and the measured accepts per endpoint address.
    fn connects(
        &self,
        target: SocketAddrV4,
        warmup: usize,
        count: usize,
        allowed: &[Ipv4Addr],
    ) -> Result<(Vec<Duration>, BTreeMap<Ipv4Addr, usize>)> {
        let mut times = Vec::with_capacity(count);
        let mut accepted = BTreeMap::new();
        for i in 0..warmup + count {
            let t = Instant::now();
            let limit = if i < warmup { WARMUP_CONNECT_TIMEOUT } else { CONNECT_TIMEOUT };
            let stream = TcpStream::connect_timeout(&SocketAddr::V4(target), limit)
                .map_err(|e| fail(format!("connect #{i} to {target}: {e}")))?;
            let took = t.elapsed();
            let local = stream.local_addr().map_err(|e| fail(format!("local address of connect #{i}: {e}")))?;
            let (srv, peer) = self
                .listener
                .accept()
                .map_err(|e| fail(format!("listener did not accept connect #{i} to {target}: {e}")))?;
            let at = srv.local_addr().map_err(|e| fail(format!("address of accepted #{i}: {e}")))?;
            // Accept and close.
            drop(srv);
            drop(stream);
            if peer != local {
                return Err(fail(format!("connect #{i} to {target} from {local}: listener accepted {peer} instead")));
            }
            let SocketAddr::V4(at) = at else {
                return Err(fail(format!("connect #{i} to {target} arrived on {at}")));
            };
            if at.port() != ENDPOINT_PORT || !allowed.contains(at.ip()) {
                return Err(fail(format!("connect #{i} to {target} arrived on {at}, not on one of {allowed:?}")));
            }
            if i >= warmup {
                times.push(took);
                *accepted.entry(*at.ip()).or_insert(0) += 1;
            }
        }
        Ok((times, accepted))
    }
}

/// Waits until `dev` (in the calling thread's namespace) is operationally up: until the kernel's
/// link watcher has run for a new veth, its queue discards what is sent, and the first SYN of
/// a connect would wait a full retransmission timeout.
fn wait_link_up(dev: &str) -> Result<()> {
    let deadline = Instant::now() + LINK_UP_TIMEOUT;
    loop {
        let out = exec::run("ip", &["-o", "link", "show", "dev", dev], None)?;
        if out.contains(" state UP ") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(fail(format!("{dev} not up after {LINK_UP_TIMEOUT:?}: {}", out.trim())));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Endpoint namespace: reports its thread id, waits for the veth end, configures it and
/// binds the listener (returned; it keeps the namespace alive).
fn endpoint_side(tid_tx: mpsc::Sender<i32>, go_rx: mpsc::Receiver<()>, addrs: Vec<Ipv4Addr>) -> Result<TcpListener> {
    tid_tx.send(nix::unistd::gettid().as_raw()).map_err(|_| fail("client side gone".into()))?;
    go_rx.recv_timeout(HANDSHAKE_TIMEOUT).map_err(|_| fail("veth end never arrived".into()))?;
    exec::run("ip", &["link", "set", "lo", "up"], None)?;
    for a in &addrs {
        exec::run("ip", &["addr", "add", &format!("{a}/24"), "dev", ENDPOINT_IF], None)?;
    }
    exec::run("ip", &["link", "set", ENDPOINT_IF, "up"], None)?;
    wait_link_up(ENDPOINT_IF)?;
    let bind = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ENDPOINT_PORT);
    let listener = TcpListener::bind(bind).map_err(|source| Error::Bind { addr: bind.to_string(), source })?;
    // A bounded accept: a connect that never arrives fails the row instead of hanging.
    setsockopt(&listener, sockopt::ReceiveTimeout, &TimeVal::new(ACCEPT_TIMEOUT_SECS, 0))
        .map_err(|e| fail(format!("SO_RCVTIMEO on the listener: {e}")))?;
    Ok(listener)
}

fn client_side(mode: Mode, n: usize, e: usize, connections: usize, tools: Tools) -> Result<LatencyRow> {
    let topo = Topology::new(e)?;
    // Floor: before any rule exists, straight to the first endpoint address.
    for &a in &topo.endpoints {
        topo.connects(SocketAddrV4::new(a, ENDPOINT_PORT), WARMUP, 0, &[a])?;
    }
    let first = topo.endpoints[0];
    let (floor, _) = topo.connects(SocketAddrV4::new(first, ENDPOINT_PORT), 0, connections, &[first])?;

    // The rules: n synthetic services, the last one in rule order pointing at the listener.
    let mut state = synthetic_state(n, e);
    let rule_position = state.services.len().saturating_sub(1);
    let sp = state
        .services
        .values_mut()
        .next_back()
        .ok_or_else(|| fail("synthetic state without services".into()))?;
    sp.cluster_endpoints =
        topo.endpoints.iter().map(|&ip| Endpoint { ip, port: ENDPOINT_PORT, local: false }).collect();
    let cluster_ip = SocketAddrV4::new(sp.cluster_ip, sp.port);
    let mut engine = Engine::new(mode, tools);
    engine.conntrack_cleanup = false;
    let sync = engine.sync(&state, &bench_ctx(), true)?;

    let (times, accepted) = topo.connects(cluster_ip, WARMUP, connections, &topo.endpoints)?;
    Ok(LatencyRow {
        mode,
        services: n,
        endpoints_per_service: e,
        connections,
        cluster_ip,
        rule_position,
        cluster: Latency::of(times),
        floor: Latency::of(floor),
        accepted,
        sync_time: sync.total_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoke(mode: Mode) {
        let r = latency_row(mode, 50, 2, 20, Tools::default()).unwrap();
        assert_eq!((r.services, r.connections, r.rule_position), (50, 20, 49));
        // The last service in rule order (by name) is svc-9 (10.96.0.1 + 9).
        let last = synthetic_state(50, 2).services.into_values().next_back().unwrap();
        assert_eq!(last.name.name, "svc-9");
        assert_eq!(r.cluster_ip, SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 10), 80));
        assert_eq!(r.accepted.values().sum::<usize>(), 20, "{r:?}");
        // Both endpoints were picked (P(all 20 on one) = 2^-19).
        assert_eq!(r.accepted.len(), 2, "{r:?}");
        assert!(r.cluster.median > Duration::ZERO && r.cluster.p99 >= r.cluster.median, "{r:?}");
        assert!(r.floor.median > Duration::ZERO && r.floor.p99 >= r.floor.median, "{r:?}");
        // Nothing leaked into the caller's namespace.
        assert!(!std::path::Path::new("/sys/class/net").join(CLIENT_IF).exists());
    }

    #[test]
    fn nftables_clusterip_latency_small() {
        smoke(Mode::Nftables);
    }

    #[test]
    fn iptables_clusterip_latency_small() {
        smoke(Mode::Iptables);
    }

    #[test]
    fn a_clusterip_without_rules_fails_instead_of_measuring() {
        let err = in_fresh_netns(|| {
            let topo = Topology::new(1)?;
            // The endpoint itself answers …
            topo.connects(SocketAddrV4::new(topo.endpoints[0], ENDPOINT_PORT), 0, 1, &topo.endpoints)?;
            // … but with no rule loaded nothing translates the ClusterIP.
            topo.connects(SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 1), 80), 0, 1, &topo.endpoints)
        })
        .unwrap()
        .unwrap_err();
        assert!(err.to_string().contains("10.96.0.1:80"), "{err}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let l = Latency::of(v);
        assert_eq!(l.median, Duration::from_micros(100));
        assert_eq!(l.p99, Duration::from_micros(198));
        assert_eq!(Latency::of(vec![]), Latency::default());
    }
}
