//! Area `world`: the sealed world's own self-checks (hosts reach each other; capture sees traffic).
//! They assert the harness, not a node, so they carry no `Conformance` label.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use harness::capture::Capture;
use harness::path::{Captures, Flow};
use harness::world::Host;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::catalog::{BodyFuture, Capability, Case, Runtimes, Topology};
use crate::context::CaseCtx;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "world/hosts-reach-each-other",
            labels: &[],
            needs: &[],
            topology: Topology::TwoNodes,
            runtimes: Runtimes::None,
            body: hosts_reach_each_other,
        },
        Case {
            id: "world/capture-sees-traffic",
            labels: &[],
            needs: &[Capability::Tcpdump],
            topology: Topology::SingleNode,
            runtimes: Runtimes::None,
            body: capture_sees_traffic,
        },
        Case {
            id: "world/sealed-from-host",
            labels: &[],
            needs: &[],
            topology: Topology::SingleNode,
            runtimes: Runtimes::None,
            body: sealed_from_host,
        },
    ]
}

const PORT: u16 = 7070;

/// Serves one connection: answers with the host's name, and returns the peer address.
async fn serve_name_once(host: &Host) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<SocketAddr>>> {
    let listener = host.tcp_listener(SocketAddr::from((host.ip(), PORT)))?;
    let name = host.name().to_string();
    Ok(tokio::spawn(async move {
        let (mut conn, peer) = listener.accept().await?;
        conn.write_all(name.as_bytes()).await?;
        conn.shutdown().await?;
        Ok(peer)
    }))
}

/// `from` connects to `to`'s name server and must read `to`'s name; `to` must see `from`'s IP.
async fn exchange(from: &Host, to: &Host) -> anyhow::Result<()> {
    let server = serve_name_once(to).await?;
    let mut stream = tokio::time::timeout(Duration::from_secs(5), from.tcp_connect(SocketAddr::from((to.ip(), PORT))))
        .await
        .with_context(|| format!("{} → {}: connect timed out", from.name(), to.name()))??;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    let peer = server.await??;
    ensure!(body == to.name(), "{} → {}: answered by {body:?}", from.name(), to.name());
    ensure!(
        peer.ip() == std::net::IpAddr::V4(from.ip()),
        "{} → {}: the server saw the connection from {peer}, not from {}",
        from.name(),
        to.name(),
        from.ip()
    );
    Ok(())
}

fn hosts_reach_each_other(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let hosts = ctx.world.hosts();
        ensure!(hosts.len() >= 4, "a two-node world has cp, node-a, node-b and client; got {}", hosts.len());
        for from in hosts {
            for to in hosts {
                if from.name() != to.name() {
                    exchange(from, to).await?;
                }
            }
        }
        // The world root (the harness's own vantage point on lan0) reaches every host too.
        let root = ctx.world.root();
        for to in hosts {
            exchange(root, to).await?;
        }
        Ok(())
    })
}

fn capture_sees_traffic(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let node = ctx.world.host("node-a")?;
        let client = ctx.world.host("client")?;
        let pcap = ctx.artifact("node-a-eth0.pcap");
        let cap = Capture::start(node, "eth0", &pcap)?;
        exchange(client, node).await?;
        let packets = cap.stop().await?;
        let caps = Captures::new().with("node-a/eth0", packets.clone());
        let flow = Flow::tcp(SocketAddr::from((client.ip(), 0)), SocketAddr::from((node.ip(), PORT)));
        flow.syn("node-a/eth0").find(&caps)?;
        flow.syn_ack("node-a/eth0").find(&caps)?;
        // Cross-check with tcpdump: the same packets, in the same order.
        let out = tokio::process::Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(&pcap)
            .args(["tcp", "and", "port", &PORT.to_string()])
            .output()
            .await
            .context("running tcpdump -r")?;
        ensure!(out.status.success(), "tcpdump -r failed: {}", String::from_utf8_lossy(&out.stderr));
        let tcpdump_lines = String::from_utf8_lossy(&out.stdout).lines().count();
        let ours = packets
            .iter()
            .filter(|p| p.src().is_some_and(|a| a.port() == PORT) || p.dst().is_some_and(|a| a.port() == PORT))
            .count();
        ensure!(ours >= 6, "expected a whole TCP exchange (≥ 6 segments) on port {PORT}, decoded {ours}");
        ensure!(
            ours == tcpdump_lines,
            "the harness decoded {ours} packets on port {PORT}, tcpdump read {tcpdump_lines}"
        );
        Ok(())
    })
}

fn sealed_from_host(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // We are PID 2 (init is 1) of our own pid namespace: nothing of the host is visible.
        let pid = std::process::id();
        ensure!(pid < 10, "the case process should be near the start of its own pid namespace; pid {pid}");
        let node = ctx.world.host("node-a")?;
        let in_node: Vec<String> = node.run(|| {
            // /sys shows the mounting namespace's devices; ask the kernel through /proc instead.
            std::fs::read_to_string("/proc/thread-self/net/dev")
                .map(|s| s.lines().skip(2).filter_map(|l| l.split(':').next()).map(|n| n.trim().to_string()).collect())
                .unwrap_or_default()
        })?;
        let mut sorted = in_node.clone();
        sorted.sort();
        ensure!(sorted == ["cbr0", "eth0", "lo"], "node-a should have only lo, eth0 and its pod bridge cbr0, has {in_node:?}");
        // The world root has no way out: no default route.
        let routes = tokio::process::Command::new("ip").args(["-4", "route", "show", "default"]).output().await?;
        if !routes.status.success() {
            bail!("ip route failed: {}", String::from_utf8_lossy(&routes.stderr));
        }
        ensure!(routes.stdout.is_empty(), "the world root has a default route: {}", String::from_utf8_lossy(&routes.stdout));
        // No mount of ours propagates to the host: every mount in our namespace is private.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let shared: Vec<&str> = mountinfo.lines().filter(|l| l.contains(" shared:")).collect();
        ensure!(shared.is_empty(), "mounts still shared with the host: {shared:?}");
        Ok(())
    })
}
