//! `traffic` and `capture`: connections from a host of the world, judged from the packets
//! captured while they ran, and pcaps kept as artifacts.
//!
//! A connection *succeeded* when the SYN-ACK for its source port came back on the sending
//! host's eth0; it was *refused* when a RST for that port, or an ICMP destination-unreachable
//! quoting the target, came back instead. The endpoint that served a connection is the pod
//! address its SYN was DNATed to, seen on a node's pod bridge (cbr0); connections run one after
//! the other, and each new 4-tuple SYN there is one connection.
//!
//! Like `assert`, `traffic` is eventual: batches run until one meets the expectations or the
//! timeout ends (a step that just changed endpoints may be ahead of the proxy's rules).
//! Refusals are ICMP port-unreachable from the proxy's reject rules, which the kernel rate-
//! limits per destination (`net.ipv4.icmp_ratelimit`, 1 s): a connection whose first SYN got
//! no answer is refused on its retransmission a second later.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::capture::Capture;
use harness::packets::{L4, Packet};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;
use kube::{Api, Client};
use scenario::model::{Traffic, TrafficExpect, TrafficTarget};
use scenario::record::{Failure, TrafficSummary};

use super::objects::plain;
use super::world::ScenarioWorld;

/// The pod bridge of every node host.
const POD_BRIDGE: &str = "cbr0";
/// How long one connection attempt may take.
const CONNECT: Duration = Duration::from_secs(3);

/// What the packets say about the connections.
#[derive(Debug, Default, PartialEq)]
pub struct Verdicts {
    pub succeeded: u32,
    pub refused: u32,
    /// Endpoint address → connections it served.
    pub endpoints: BTreeMap<SocketAddrV4, u32>,
}

/// Judges `ports` (the source ports used from `from`) against the packets captured on the
/// sender (`sent`) and on every node's pod bridge (`bridges`).
pub fn judge(from: Ipv4Addr, target: SocketAddrV4, ports: &[u16], sent: &[Packet], bridges: &[Packet], pod_ips: &BTreeSet<Ipv4Addr>) -> Verdicts {
    let mut v = Verdicts::default();
    for port in ports {
        let me = SocketAddrV4::new(from, *port);
        let back = sent.iter().filter(|p| p.dst() == Some(me));
        let answered = back.clone().any(|p| p.is_syn_ack());
        let reset = back.clone().any(|p| p.tcp_flags().is_some_and(|f| f.rst()));
        if answered {
            v.succeeded += 1;
        } else if reset {
            v.refused += 1;
        }
    }
    let unreachable = sent
        .iter()
        .filter(|p| p.dst_ip == Some(from) && matches!(&p.l4, L4::Icmp { icmp_type: 3, original_dst: Some((dst, 6)), .. } if *dst == target))
        .count() as u32;
    v.refused = (v.refused + unreachable).min(ports.len() as u32 - v.succeeded.min(ports.len() as u32));
    let mut seen = BTreeSet::new();
    for p in bridges.iter().filter(|p| p.is_syn()) {
        let (Some(src), Some(dst)) = (p.src(), p.dst()) else { continue };
        if pod_ips.contains(dst.ip()) && seen.insert((src, dst)) {
            *v.endpoints.entry(dst).or_default() += 1;
        }
    }
    v
}

/// The failure of an expectation, if any.
pub fn check(expect: &TrafficExpect, attempts: u32, v: &Verdicts) -> Option<String> {
    let rate = if attempts == 0 { 0.0 } else { f64::from(v.succeeded) * 100.0 / f64::from(attempts) };
    if let Some(min) = expect.success_rate
        && rate + 1e-9 < min
    {
        return Some(format!("{} of {attempts} connections answered ({rate:.1}%), expected at least {min}%", v.succeeded));
    }
    if let Some(min) = expect.min_endpoints
        && (v.endpoints.len() as u32) < min
    {
        return Some(format!("{} endpoint(s) served the connections, expected at least {min}", v.endpoints.len()));
    }
    if let Some(max) = expect.max_endpoints
        && (v.endpoints.len() as u32) > max
    {
        return Some(format!("{} endpoints served the connections, expected at most {max}", v.endpoints.len()));
    }
    if expect.refused && v.refused < attempts {
        return Some(format!(
            "{} of {attempts} connections were refused (RST or ICMP unreachable), {} answered, {} timed out; expected every one refused",
            v.refused,
            v.succeeded,
            attempts - v.refused - v.succeeded
        ));
    }
    None
}

fn describe_expect(e: &TrafficExpect) -> String {
    let mut parts = Vec::new();
    if let Some(r) = e.success_rate {
        parts.push(format!("≥ {r}% answered"));
    }
    if let Some(n) = e.min_endpoints {
        parts.push(format!("≥ {n} endpoints"));
    }
    if let Some(n) = e.max_endpoints {
        parts.push(format!("≤ {n} endpoints"));
    }
    if e.refused {
        parts.push("all refused".into());
    }
    parts.join(", ")
}

/// Resolves the target address and a label for it.
async fn resolve(world: &ScenarioWorld, client: &Client, to: &TrafficTarget) -> anyhow::Result<(SocketAddrV4, String)> {
    Ok(match to {
        TrafficTarget::Service { namespace, name, port } => {
            let svc = Api::<Service>::namespaced(client.clone(), namespace).get(name).await.with_context(|| format!("Service {namespace}/{name}"))?;
            let ip = svc.spec.and_then(|s| s.cluster_ip).filter(|ip| ip != "None").context("the Service has no ClusterIP")?;
            (SocketAddrV4::new(ip.parse()?, *port), format!("Service {namespace}/{name}:{port}"))
        }
        TrafficTarget::NodePort { node, port } => (SocketAddrV4::new(world.world.host(node)?.ip(), *port), format!("NodePort {node}:{port}")),
        TrafficTarget::Pod { namespace, name, port } => {
            let pod = Api::<Pod>::namespaced(client.clone(), namespace).get(name).await.with_context(|| format!("Pod {namespace}/{name}"))?;
            let ip = pod.status.and_then(|s| s.pod_ip).context("the pod has no IP yet")?;
            (SocketAddrV4::new(ip.parse()?, *port), format!("Pod {namespace}/{name}:{port}"))
        }
    })
}

/// Pod IP → namespace/name of every pod.
async fn pod_names(client: &Client) -> anyhow::Result<BTreeMap<Ipv4Addr, String>> {
    let pods = Api::<Pod>::all(client.clone()).list(&ListParams::default()).await?;
    Ok(pods
        .items
        .into_iter()
        .filter_map(|p| {
            let ip: Ipv4Addr = p.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
            Some((ip, format!("{}/{}", p.metadata.namespace.unwrap_or_default(), p.metadata.name.unwrap_or_default())))
        })
        .collect())
}

/// Starts captures for a `capture` operation: eth0 of each host, and the pod bridge of each
/// node, into `out` (`capture-<n>-<host>-<if>.pcap`).
pub fn start_captures(world: &ScenarioWorld, hosts: &[String], out: &Path, n: usize) -> anyhow::Result<Vec<Capture>> {
    let all: Vec<String> = if hosts.is_empty() {
        world.node_names.iter().cloned().chain(["client".to_string()]).collect()
    } else {
        hosts.to_vec()
    };
    let mut caps = Vec::new();
    for name in &all {
        let host = world.world.host(name)?;
        caps.push(Capture::start(host, "eth0", out.join(format!("capture-{n}-{name}-eth0.pcap")))?);
        if world.node_names.contains(name) {
            caps.push(Capture::start(host, POD_BRIDGE, out.join(format!("capture-{n}-{name}-{POD_BRIDGE}.pcap")))?);
        }
    }
    Ok(caps)
}

/// One batch: the connections made and what the packets say about them.
struct Batch {
    verdicts: Verdicts,
    summary: TrafficSummary,
    line: String,
}

/// Runs a `traffic` operation: batches of connections until one meets the expectations (the
/// proxy may still be programming a change the step just made), at most until `timeout`; `n`
/// numbers the pcaps in `out` (the last batch's are kept).
pub async fn run(world: &ScenarioWorld, client: &Client, t: &Traffic, out: &Path, step: &str, n: usize, timeout: Duration) -> Result<(String, TrafficSummary), Failure> {
    let deadline = Instant::now() + timeout;
    let mut batches = 0;
    loop {
        let started = Instant::now();
        let b = batch(world, client, t, out, step, n).await.map_err(|e| plain(format!("{e:#}")))?;
        batches += 1;
        let tries = if batches > 1 { format!(" (batch {batches})") } else { String::new() };
        match check(&t.expect, t.connections, &b.verdicts) {
            None => return Ok((format!("{}{tries}", b.line), b.summary)),
            Some(why) if Instant::now() + started.elapsed() > deadline => {
                let message = format!("{why} ({}); {batches} batch(es) within {timeout:?}", b.line);
                return Err(Failure { message, expected: None, actual: None, diff: None });
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn batch(world: &ScenarioWorld, client: &Client, t: &Traffic, out: &Path, step: &str, n: usize) -> anyhow::Result<Batch> {
    let (target, label) = resolve(world, client, &t.to).await?;
    let from = world.world.host(&t.from)?;
    // A ClusterIP the proxy has not programmed yet is routed back out by the service router
    // with an ICMP redirect; a sender that took it would keep sending around the node for
    // good. Traffic generators here do not take redirects.
    for conf in ["all", "default", "eth0"] {
        from.sysctl(&format!("net.ipv4.conf.{conf}.accept_redirects"), "0")?;
    }
    let sender = Capture::start(from, "eth0", out.join(format!("traffic-{n}-{}-eth0.pcap", t.from)))?;
    let mut bridge_caps = Vec::new();
    for node in &world.node_names {
        let host = world.world.host(node)?;
        bridge_caps.push(Capture::start(host, POD_BRIDGE, out.join(format!("traffic-{n}-{node}-{POD_BRIDGE}.pcap")))?);
    }
    let mut ports = Vec::new();
    for _ in 0..t.connections {
        // The port is chosen at connect time: a random one can meet the conntrack entry of an
        // earlier attempt (see `harness::world::tcp`).
        let attempt = from.tcp_attempt(from.ip(), target, CONNECT).await?;
        ports.push(attempt.local().port());
    }
    let sent = sender.stop().await?;
    let mut bridges = Vec::new();
    for c in bridge_caps {
        bridges.extend(c.stop().await?);
    }
    let names = pod_names(client).await?;
    let ips: BTreeSet<Ipv4Addr> = names.keys().copied().collect();
    let verdicts = judge(from.ip(), target, &ports, &sent, &bridges, &ips);
    let per_endpoint: Vec<(String, u32)> = verdicts
        .endpoints
        .iter()
        .map(|(addr, k)| (names.get(addr.ip()).map(|n| format!("{n} ({addr})")).unwrap_or_else(|| addr.to_string()), *k))
        .collect();
    let line = format!(
        "{} of {} answered, {} refused; endpoints: {}",
        verdicts.succeeded,
        t.connections,
        verdicts.refused,
        per_endpoint.iter().map(|(e, k)| format!("{e} ×{k}")).collect::<Vec<_>>().join(", ")
    );
    let summary = TrafficSummary {
        step: step.to_string(),
        target: format!("{} → {label} ({target})", t.from),
        attempts: t.connections,
        succeeded: verdicts.succeeded,
        per_endpoint,
        expected: describe_expect(&t.expect),
    };
    Ok(Batch { verdicts, summary, line })
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::packets::TcpFlags;
    use std::time::SystemTime;

    fn tcp(src: SocketAddrV4, dst: SocketAddrV4, flags: u8) -> Packet {
        Packet {
            ts: SystemTime::UNIX_EPOCH,
            len: 60,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            ether_type: 0x0800,
            src_ip: Some(*src.ip()),
            dst_ip: Some(*dst.ip()),
            l4: L4::Tcp { src_port: src.port(), dst_port: dst.port(), flags: TcpFlags(flags), seq: 0, ack: 0, payload_len: 0 },
        }
    }

    const SYN: u8 = 0x02;
    const SYNACK: u8 = 0x12;
    const RST: u8 = 0x14;

    #[test]
    fn connections_are_judged_from_packets() {
        let me = Ipv4Addr::new(10, 77, 0, 100);
        let vip = SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 10), 80);
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 244, 1, 2), 9376);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 244, 1, 3), 9376);
        let c = |p| SocketAddrV4::new(me, p);
        let sent = vec![
            tcp(c(1000), vip, SYN),
            tcp(vip, c(1000), SYNACK),
            tcp(c(1001), vip, SYN),
            tcp(vip, c(1001), SYNACK),
            tcp(c(1002), vip, SYN),
            tcp(vip, c(1002), RST),
            tcp(c(1003), vip, SYN),
        ];
        let node = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 11), 40000);
        let bridges = vec![tcp(node, a, SYN), tcp(node, a, SYN), tcp(SocketAddrV4::new(*node.ip(), 40001), b, SYN)];
        let ips = [*a.ip(), *b.ip()].into_iter().collect();
        let v = judge(me, vip, &[1000, 1001, 1002, 1003], &sent, &bridges, &ips);
        assert_eq!((v.succeeded, v.refused), (2, 1));
        assert_eq!(v.endpoints.get(&a), Some(&1), "a retransmitted SYN is one connection");
        assert_eq!(v.endpoints.len(), 2);
        let all = TrafficExpect { success_rate: Some(100.0), min_endpoints: None, max_endpoints: None, refused: false };
        assert!(check(&all, 4, &v).unwrap().contains("2 of 4 connections answered (50.0%)"));
        let spread = TrafficExpect { success_rate: Some(50.0), min_endpoints: Some(2), max_endpoints: None, refused: false };
        assert_eq!(check(&spread, 4, &v), None);
        let one = TrafficExpect { success_rate: None, min_endpoints: None, max_endpoints: Some(1), refused: false };
        assert!(check(&one, 4, &v).unwrap().contains("2 endpoints served the connections, expected at most 1"));
        let refused = TrafficExpect { success_rate: None, min_endpoints: None, max_endpoints: None, refused: true };
        assert!(check(&refused, 4, &v).unwrap().contains("1 of 4 connections were refused"));
    }

    #[test]
    fn icmp_unreachable_counts_as_refused() {
        let me = Ipv4Addr::new(10, 77, 0, 100);
        let vip = SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 10), 80);
        let icmp = Packet {
            ts: SystemTime::UNIX_EPOCH,
            len: 70,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            ether_type: 0x0800,
            src_ip: Some(Ipv4Addr::new(10, 77, 0, 11)),
            dst_ip: Some(me),
            l4: L4::Icmp { icmp_type: 3, code: 3, original_dst: Some((vip, 6)) },
        };
        let v = judge(me, vip, &[1000, 1001], &[icmp.clone(), icmp], &[], &BTreeSet::new());
        assert_eq!(v.refused, 2);
        let refused = TrafficExpect { success_rate: None, min_endpoints: None, max_endpoints: None, refused: true };
        assert_eq!(check(&refused, 2, &v), None);
    }
}
