//! Packet-path body for a UDP service used from a pod: the round trip, and conntrack cleanup
//! when the service gains its first endpoint and when an endpoint goes away.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use harness::backend::ProxyMode;
use harness::path::{Addr, Flow};
use serde_json::json;

use super::Mode;
use super::basic::{NODE_A, PROXY_SYNC};
use super::env::{Cluster, UDP_PORT, create_ready, service, wait_slices, web_pod};
use super::net::{Origin, PodNet, Taps, dump, udp_ask};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::pods;

pub(super) fn udp_conntrack<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = udp_impl(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}

/// A UDP ClusterIP service (netexec's UDP `hostname`) used from a pod, with conntrack
/// cleanup: a flow started before the service had endpoints gets through once it has one
/// (entries of the service IP flushed); a round trip is answered by the endpoint (source
/// preserved) and un-NAT'd; the flow, pinned to its endpoint by conntrack, stays there while
/// another endpoint appears, and moves to the other endpoint once its own goes away (stale
/// entries flushed) although the client keeps sending on the same socket.
///
/// The client is a pod: a lan client's datagrams to a service IP without rules are forwarded
/// by node-a back out of the interface they came in on, and node-a's ICMP redirect then sends
/// the rest of that flow around node-a.
async fn udp_impl(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    const ASK: Duration = Duration::from_millis(300);
    const MOVE_BOUND: Duration = Duration::from_secs(15);
    /// Requested ClusterIP: the client sends to it before the service exists.
    const UDP_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 100, 53);
    let cl = Cluster::start(ctx, mode).await?;
    let node_a = ctx.world.host(NODE_A)?;
    // Every UDP conntrack event on node-a, with timestamps, as evidence of what was flushed when.
    let mut events = node_a.spawn(
        harness::process::ProcessSpec::new("conntrack", "conntrack-events-node-a").args([
            "-E",
            "-p",
            "udp",
            "-o",
            "timestamp",
        ]),
    )?;
    let ips = create_ready(
        &cl.client,
        vec![web_pod("u-1", NODE_A, "u")?, web_pod("uc", NODE_A, "uc")?],
    )
    .await?;
    let (u1, uc_ip) = (ips[0], ips[1]);
    let uc = PodNet::find("uc", uc_ip).await?;
    let uc_veth = uc.host_veth(node_a).await?;
    let u1_veth = PodNet::find("u-1", u1).await?.host_veth(node_a).await?;
    let target = SocketAddr::from((UDP_SERVICE_IP, 5353));

    // The flow starts before the service exists: node-a forwards it unrewritten (towards the
    // world root, which drops it) and conntrack remembers that, so it only gets through once
    // the proxy flushes the service IP's entries as the service gains endpoints. Only after
    // that is the flow pinned to u-1 (no later flush can re-pin it by chance).
    let sock = Origin::Pod(&uc).udp_socket()?;
    let local = sock.local_addr()?;
    let mut early_taps = Taps::new("early");
    early_taps.named(ctx, "pod:uc", node_a, &uc_veth)?;
    early_taps.on(ctx, node_a, "eth0")?;
    let early = udp_ask(&sock, target, "hostname", Duration::from_millis(200)).await?;
    ensure!(
        early.is_none(),
        "{target} answered before the service existed: {early:?}"
    );
    let spec = json!({
        "clusterIP": UDP_SERVICE_IP.to_string(),
        "ports": [{"name": "dns", "port": 5353, "targetPort": UDP_PORT, "protocol": "UDP"}],
    });
    let svc = service(&cl.client, "u", "u", spec).await?;
    ensure!(
        svc.cluster_ip == UDP_SERVICE_IP,
        "asked for clusterIP {UDP_SERVICE_IP}, got {}",
        svc.cluster_ip
    );
    wait_slices(&cl.client, "u", &[u1], &[]).await?;
    let what = format!(
        "the flow {local} → {target}, started before the service had endpoints, to be answered by u-1"
    );
    let through =
        harness::wait::wait_every(&what, PROXY_SYNC, Duration::from_millis(100), || async {
            match udp_ask(&sock, target, "hostname", ASK).await {
                Ok(Some((_, b))) if b == "u-1" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    let early_caps = early_taps.stop().await?;
    if let Err(e) = through {
        bail!("{e}\nuc's veth:\n{}", dump(early_caps.get("pod:uc")?));
    }
    // Before the flush the flow left node-a unrewritten.
    Flow::udp(local, target)
        .request("node-a/eth0")
        .find(&early_caps)?;

    let mut taps = Taps::new("roundtrip");
    taps.named(ctx, "pod:uc", node_a, &uc_veth)?;
    taps.named(ctx, "pod:u-1", node_a, &u1_veth)?;
    let got = udp_ask(&sock, target, "hostname", Duration::from_secs(2)).await?;
    let caps = taps.stop().await?;
    let (from, body) = got.with_context(|| {
        format!(
            "no UDP answer from {target}:\n{}",
            dump(caps.get("pod:uc").unwrap_or(&[]))
        )
    })?;
    ensure!(
        body == "u-1" && from == target,
        "UDP {target} answered {body:?} from {from}"
    );
    let f = Flow::udp(local, target);
    let ep1 = Addr::Exact(SocketAddrV4::new(u1, UDP_PORT));
    f.request("pod:uc").find(&caps)?;
    f.reply("pod:uc").find(&caps)?;
    f.reply("pod:uc").src(Addr::Ip(u1)).absent(&caps)?;
    f.request("pod:u-1").dst(ep1.clone()).find(&caps)?;
    f.reply("pod:u-1").src(ep1).find(&caps)?;

    // A second endpoint: new flows reach it, the pinned flow stays on u-1.
    let u2 = create_ready(&cl.client, vec![web_pod("u-2", NODE_A, "u")?]).await?[0];
    let u2_veth = PodNet::find("u-2", u2).await?.host_veth(node_a).await?;
    wait_slices(&cl.client, "u", &[u1, u2], &[]).await?;
    wait_udp(Origin::Pod(&uc), target, "u-2").await?;
    for _ in 0..5 {
        let a = udp_ask(&sock, target, "hostname", Duration::from_secs(2)).await?;
        ensure!(
            matches!(&a, Some((_, b)) if b == "u-1"),
            "the established UDP flow left u-1 while u-1 was still ready: {a:?}"
        );
    }

    // u-1 goes away: the same socket must reach u-2.
    let mut taps = Taps::new("cleanup");
    taps.named(ctx, "pod:uc", node_a, &uc_veth)?;
    taps.named(ctx, "pod:u-2", node_a, &u2_veth)?;
    pods::delete(&cl.client, "u-1", None).await?;
    let deleted = Instant::now();
    let mut answers = Vec::new();
    let moved = loop {
        let a = udp_ask(&sock, target, "hostname", ASK).await?;
        if let Some((from, b)) = &a {
            ensure!(
                *from == target,
                "UDP answer from {from}, not from the service {target}"
            );
            if b == "u-2" {
                break deleted.elapsed();
            }
            // Answered (by u-1, still terminating): poll again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answers.push(a.map(|(_, b)| b));
        if deleted.elapsed() > MOVE_BOUND {
            let caps = taps.stop().await?;
            bail!(
                "the UDP flow {local} → {target} did not move to u-2 within {MOVE_BOUND:?} of deleting u-1 (answers {answers:?}); uc's veth:\n{}",
                dump(caps.get("pod:uc")?)
            );
        }
    };
    let caps = taps.stop().await?;
    let f = Flow::udp(local, target);
    f.reply("pod:uc").find(&caps)?;
    f.request("pod:u-2")
        .dst(Addr::Exact(SocketAddrV4::new(u2, UDP_PORT)))
        .find(&caps)?;
    // No conntrack entry of the service still points at u-1.
    let table = node_a
        .exec(
            "conntrack",
            &["-L", "-p", "udp", "--orig-dst", &UDP_SERVICE_IP.to_string()],
        )
        .await?;
    let stale: Vec<&str> = table
        .lines()
        .filter(|l| l.contains(&format!("src={u1} ")))
        .collect();
    ensure!(
        stale.is_empty(),
        "conntrack entries to {target} still DNAT'd to u-1 ({u1}) {moved:?} after its deletion:\n{}",
        stale.join("\n")
    );
    events.stop(Duration::from_secs(2)).await?;
    cl.stop().await
}

/// Waits until a fresh UDP socket from `from` gets `want` back for `hostname`.
async fn wait_udp(from: Origin<'_>, target: SocketAddr, want: &str) -> anyhow::Result<()> {
    let what = format!("UDP {target} from {} to answer {want:?}", from.ip());
    harness::wait::wait_every(&what, PROXY_SYNC, Duration::from_millis(50), || async {
        let sock = from.udp_socket().map_err(|e| format!("{e:#}"))?;
        match udp_ask(&sock, target, "hostname", Duration::from_millis(300)).await {
            Ok(Some((_, b))) if b == want => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    Ok(())
}
