//! Packet-path bodies for service policies: no-endpoints reject, endpoints following
//! readiness, sessionAffinity ClientIP with its timeout, externalTrafficPolicy Local, and a
//! UDP service with conntrack cleanup when its endpoint goes away.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use harness::backend::ProxyMode;
use harness::path::{Addr, Flow};
use serde_json::json;

use super::Mode;
use super::basic::{NODE_A, NODE_B, PROXY_SYNC};
use super::env::{
    CLUSTER_CIDR, Cluster, Flags, HTTP_PORT, create_ready, ip_of, running_ip, service, wait_slices,
    web_pod, web_pod_with,
};
use super::net::{
    Attempt, Origin, Taps, attempt, dump, get_hostname, is_rejection, syns_to_port, wait_answer,
    wait_serving,
};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::{kube_wait, pods};

pub(super) fn no_endpoints<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = no_endpoints_impl(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}
pub(super) fn readiness<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = readiness_impl(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}
pub(super) fn session_affinity<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = affinity_impl(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}
pub(super) fn external_local<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = external_local_impl(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}
/// Polls connection attempts until one ends as `want` says; returns the last attempt's text.
async fn wait_attempt(
    from: Origin<'_>,
    to: SocketAddr,
    per_try: Duration,
    what: &str,
    want: impl Fn(&Attempt) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PROXY_SYNC;
    loop {
        let a = attempt(from, to, per_try).await?;
        if want(&a) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{to} from {}: waited {PROXY_SYNC:?} for {what}; last attempt {}",
                from.ip(),
                a.describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A service whose only pod never becomes ready: a SYN to its ClusterIP and to its NodePort is
/// answered at node-a by a TCP RST or an ICMP port-unreachable and never forwarded.
async fn no_endpoints_impl(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let cl = Cluster::start(ctx, mode).await?;
    let flags = Flags::new("ne")?;
    pods::create(&cl.client, &web_pod_with("ne", NODE_A, "ne", Some(&flags))?).await?;
    let ne_ip = running_ip(&cl.client, "ne").await?;
    let svc = service(&cl.client, "ne", "ne", json!({"type": "NodePort"})).await?;
    let np = svc
        .node_port
        .context("a NodePort service got no nodePort")?;
    wait_slices(&cl.client, "ne", &[], &[ne_ip]).await?;
    let (node_a, client) = (ctx.world.host(NODE_A)?, ctx.world.host("client")?);
    let cip = SocketAddr::from((svc.cluster_ip, svc.port));
    let nport = SocketAddr::from((node_a.ip(), np));
    // Until the proxy knows the service, the SYN is routed on and fails elsewhere; node-a
    // itself probes first (see PROXY_SYNC on the lan client and ICMP redirects).
    let refused = |a: &Attempt| matches!(a, Attempt::Refused(_));
    wait_attempt(
        Origin::Host(node_a),
        cip,
        Duration::from_secs(1),
        "a refusal",
        refused,
    )
    .await?;
    wait_attempt(
        Origin::Host(client),
        cip,
        Duration::from_secs(1),
        "a refusal",
        refused,
    )
    .await?;

    let mut taps = Taps::new("reject");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_a, "eth0")?;
    taps.on(ctx, node_a, "cbr0")?;
    let to_cip = attempt(Origin::Host(client), cip, Duration::from_secs(3)).await?;
    let to_np = attempt(Origin::Host(client), nport, Duration::from_secs(3)).await?;
    let caps = taps.stop().await?;
    for (dst, result) in [(cip, &to_cip), (nport, &to_np)] {
        let Attempt::Refused(local) = result else {
            bail!(
                "a connection to {dst} (no ready endpoints) should be refused, but it {}",
                result.describe()
            );
        };
        let dst4 = match dst {
            SocketAddr::V4(d) => d,
            SocketAddr::V6(d) => bail!("IPv6 {d}"),
        };
        let flow = Flow::tcp((*local).into(), dst);
        let syn = flow.syn("node-a/eth0").find(&caps)?;
        let node_mac = syn.dst_mac;
        let at_node = caps.get("node-a/eth0")?;
        let answer = at_node
            .iter()
            .find(|p| p.src_mac == node_mac && is_rejection(p, *local, dst4))
            .with_context(|| {
                format!(
                    "no RST / ICMP unreachable for {local} > {dst} sent by node-a:\n{}",
                    dump(at_node)
                )
            })?;
        let client_pkts = caps.get("client/eth0")?;
        ensure!(
            client_pkts.iter().any(|p| is_rejection(p, *local, dst4)),
            "node-a sent {answer} but the client did not receive it:\n{}",
            dump(client_pkts)
        );
        // Not forwarded: no SYN of the flow left node-a again, nothing reached the pod side.
        if let Some(fwd) = flow
            .syn("node-a/eth0")
            .dst(Addr::Any)
            .find_all(&caps)?
            .into_iter()
            .find(|p| p.src_mac == node_mac)
        {
            bail!("node-a forwarded the SYN to {dst} instead of rejecting it: {fwd}");
        }
        flow.syn("node-a/cbr0")
            .src(Addr::Any)
            .dst(Addr::Any)
            .absent(&caps)?;
        flow.syn("node-a/cbr0")
            .src(Addr::Any)
            .dst(Addr::Ip(ne_ip))
            .absent(&caps)?;
    }
    cl.stop().await
}

/// Two pods behind a ClusterIP; one's readiness probe starts failing: once its EndpointSlice
/// entry says not ready, new connections stop reaching it within [`STOP_BOUND`], while the
/// pod itself still serves when asked directly.
async fn readiness_impl(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    /// Time from the EndpointSlice saying not ready to no new connection reaching the pod.
    const STOP_BOUND: Duration = Duration::from_secs(5);
    let cl = Cluster::start(ctx, mode).await?;
    let (f1, f2) = (Flags::new("r-1")?, Flags::new("r-2")?);
    f1.set("ready")?;
    f2.set("ready")?;
    let ips = create_ready(
        &cl.client,
        vec![
            web_pod_with("r-1", NODE_A, "r", Some(&f1))?,
            web_pod_with("r-2", NODE_A, "r", Some(&f2))?,
        ],
    )
    .await?;
    let (ip1, ip2) = (ips[0], ips[1]);
    let svc = service(&cl.client, "r", "r", json!({})).await?;
    wait_slices(&cl.client, "r", &ips, &[]).await?;
    let (node_a, client) = (ctx.world.host(NODE_A)?, ctx.world.host("client")?);
    let target = SocketAddr::from((svc.cluster_ip, svc.port));
    wait_serving(Origin::Host(node_a), target, &["r-1", "r-2"], PROXY_SYNC).await?;
    wait_serving(Origin::Host(client), target, &["r-1", "r-2"], PROXY_SYNC).await?;

    f2.clear("ready")?;
    kube_wait::pod(
        &cl.client,
        "default",
        "r-2",
        "Ready=False",
        Duration::from_secs(10),
        |p| (kube_wait::pod_condition_status(p, "Ready").as_deref() == Some("False")).then_some(()),
    )
    .await?;
    wait_slices(&cl.client, "r", &[ip1], &[ip2]).await?;
    let slice_says = Instant::now();
    // From now on r-2 may still answer briefly; then 20 connections in a row must go to r-1.
    let mut in_a_row = 0;
    let mut last_r2: Option<Duration> = None;
    while in_a_row < 20 {
        let a = get_hostname(Origin::Host(client), target).await?;
        match a.body.as_str() {
            "r-1" => in_a_row += 1,
            "r-2" => {
                in_a_row = 0;
                last_r2 = Some(slice_says.elapsed());
            }
            other => bail!("{target} answered by {other:?}"),
        }
        if slice_says.elapsed() > STOP_BOUND {
            bail!(
                "r-2 still received new connections {:?} after its EndpointSlice entry said not ready (bound {STOP_BOUND:?})",
                last_r2
            );
        }
    }

    let mut taps = Taps::new("after");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_a, "cbr0")?;
    let mut answers = Vec::new();
    for _ in 0..40 {
        answers.push(get_hostname(Origin::Host(client), target).await?);
    }
    let caps = taps.stop().await?;
    let wrong: Vec<&str> = answers
        .iter()
        .map(|a| a.body.as_str())
        .filter(|b| *b != "r-1")
        .collect();
    ensure!(
        wrong.is_empty(),
        "connections after r-2 became not ready were answered by {wrong:?}"
    );
    let syns = syns_to_port(caps.get("node-a/cbr0")?, HTTP_PORT);
    ensure!(
        syns.len() == 40,
        "40 connections, {} distinct SYNs on node-a/cbr0",
        syns.len()
    );
    if let Some(s) = syns.iter().find(|s| s.dst_ip != Some(ip1)) {
        bail!(
            "a SYN went to {:?} although only r-1 ({ip1}) is ready: {s}",
            s.dst_ip
        );
    }
    // r-2 itself still serves: it left the service because of readiness only.
    let direct = get_hostname(Origin::Host(node_a), SocketAddr::from((ip2, HTTP_PORT))).await?;
    ensure!(
        direct.body == "r-2",
        "r-2 asked directly answered {:?}",
        direct.body
    );
    cl.stop().await
}

/// sessionAffinity ClientIP (timeoutSeconds 2): 50 connections from one client land on one
/// endpoint while other clients spread; after the client stays idle past the timeout its
/// connections may land elsewhere, and do within a bounded number of tries.
async fn affinity_impl(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    const TIMEOUT_S: i32 = 2;
    let cl = Cluster::start(ctx, mode).await?;
    let ips = create_ready(
        &cl.client,
        vec![
            web_pod("sa-1", NODE_A, "sa")?,
            web_pod("sa-2", NODE_A, "sa")?,
        ],
    )
    .await?;
    let names = [("sa-1", ips[0]), ("sa-2", ips[1])];
    let svc = service(
        &cl.client,
        "sa",
        "sa",
        json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": TIMEOUT_S}}}),
    )
    .await?;
    let spec = svc.object.spec.clone().unwrap_or_default();
    let kept = spec
        .session_affinity_config
        .and_then(|c| c.client_ip)
        .and_then(|c| c.timeout_seconds);
    ensure!(
        spec.session_affinity.as_deref() == Some("ClientIP") && kept == Some(TIMEOUT_S),
        "the API server stored sessionAffinity {:?} timeoutSeconds {kept:?}",
        spec.session_affinity
    );
    wait_slices(&cl.client, "sa", &ips, &[]).await?;
    let (node_a, client) = (ctx.world.host(NODE_A)?, ctx.world.host("client")?);
    let target = SocketAddr::from((svc.cluster_ip, svc.port));

    // The service is programmed once node-a reaches it (see PROXY_SYNC); both endpoints are
    // once distinct clients (extra addresses of the client host, each used for one answered
    // connection, paced so that a late second endpoint is not missed) have reached both.
    wait_answer(Origin::Host(node_a), target, &["sa-1", "sa-2"], PROXY_SYNC).await?;
    let eth0 = client.netlink().index("eth0").await?;
    let extra: Vec<Ipv4Addr> = (150..=249).map(|d| Ipv4Addr::new(10, 77, 0, d)).collect();
    for ip in &extra {
        client.netlink().add_addr(eth0, *ip, 24).await?;
    }
    let mut warm = Taps::new("wait");
    warm.on(ctx, client, "eth0")?;
    warm.on(ctx, node_a, "cbr0")?;
    let both = async {
        let deadline = Instant::now() + PROXY_SYNC;
        let mut seen = BTreeSet::new();
        let mut sources = extra.iter();
        let mut src = *sources.next().context("extra addresses")?;
        while seen.len() < 2 {
            match get_hostname(Origin::HostFrom(client, src), target).await {
                Ok(a) => {
                    ip_of(&names, &a.body)?;
                    seen.insert(a.body);
                    match sources.next() {
                        Some(s) => src = *s,
                        None => bail!("{} distinct clients were all sent to {seen:?}", extra.len()),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) if Instant::now() >= deadline => {
                    bail!("the service never answered both endpoints: seen {seen:?}; {e:#}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Ok(())
    }
    .await;
    let warm = warm.stop().await?;
    if let Err(e) = both {
        bail!(
            "{e:#}\nnode-a/cbr0 meanwhile:\n{}",
            dump(warm.get("node-a/cbr0")?)
        );
    }

    let mut taps = Taps::new("sticky");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_a, "cbr0")?;
    let mut answers = Vec::new();
    for _ in 0..50 {
        answers.push(get_hostname(Origin::Host(client), target).await?);
    }
    let caps = taps.stop().await?;
    let first = answers[0].body.clone();
    let sticky_ip = ip_of(&names, &first)?;
    let bodies: Vec<&str> = answers.iter().map(|a| a.body.as_str()).collect();
    ensure!(
        bodies.iter().all(|b| *b == first),
        "50 connections from one client with ClientIP affinity: {bodies:?}"
    );
    let syns = syns_to_port(caps.get("node-a/cbr0")?, HTTP_PORT);
    ensure!(
        syns.len() == 50,
        "50 connections, {} distinct SYNs on node-a/cbr0",
        syns.len()
    );
    if let Some(s) = syns.iter().find(|s| s.dst_ip != Some(sticky_ip)) {
        bail!("with affinity to {first} ({sticky_ip}) a SYN went elsewhere: {s}");
    }
    for a in &answers {
        Flow::tcp(a.local.into(), target)
            .syn_ack("client/eth0")
            .find(&caps)?;
    }

    // Idle for longer than the timeout between tries: the affinity expires and a new choice
    // is made each time (1/2 per try), so a try lands on the other endpoint well within 15.
    let idle = Duration::from_secs(TIMEOUT_S as u64 + 1);
    let what =
        format!("a connection after {idle:?} idle to land on the endpoint other than {first}");
    let moved = harness::wait::wait_every(&what, idle * 15, idle, || async {
        match get_hostname(Origin::Host(client), target).await {
            Ok(a) if a.body != first => Ok(a.body),
            Ok(a) => Err(format!("answered by {}", a.body)),
            Err(e) => Err(format!("{e:#}")),
        }
    })
    .await?;
    ip_of(&names, &moved)?;
    cl.stop().await
}

/// externalTrafficPolicy Local with the only endpoint on node-a: the NodePort on node-b drops
/// the SYN (no answer, nothing forwarded); on node-a the pod sees the client's own address.
async fn external_local_impl(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let cl = Cluster::start(ctx, mode).await?;
    let ips = create_ready(&cl.client, vec![web_pod("lp", NODE_A, "lp")?]).await?;
    let lp_ip = ips[0];
    let svc = service(
        &cl.client,
        "lp",
        "lp",
        json!({"type": "NodePort", "externalTrafficPolicy": "Local"}),
    )
    .await?;
    let np = svc
        .node_port
        .context("a NodePort service got no nodePort")?;
    wait_slices(&cl.client, "lp", &[lp_ip], &[]).await?;
    let (node_a, node_b, client) = (
        ctx.world.host(NODE_A)?,
        ctx.world.host(NODE_B)?,
        ctx.world.host("client")?,
    );
    let on_a = SocketAddr::from((node_a.ip(), np));
    let on_b = SocketAddr::from((node_b.ip(), np));
    wait_serving(Origin::Host(client), on_a, &["lp"], PROXY_SYNC).await?;
    // Before node-b's proxy knows the service its kernel refuses the port; afterwards it drops.
    wait_attempt(
        Origin::Host(client),
        on_b,
        Duration::from_secs(1),
        "the SYN to be dropped (no answer)",
        |a| matches!(a, Attempt::TimedOut(_)),
    )
    .await?;

    let mut taps = Taps::new("local");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_a, "cbr0")?;
    taps.on(ctx, node_b, "eth0")?;
    taps.on(ctx, node_b, "cbr0")?;
    let dropped = attempt(Origin::Host(client), on_b, Duration::from_secs(2)).await?;
    let served = get_hostname(Origin::Host(client), on_a).await?;
    let caps = taps.stop().await?;
    let Attempt::TimedOut(local_b) = dropped else {
        bail!(
            "NodePort {on_b} on a node without local endpoints should drop, but the connection {}",
            dropped.describe()
        );
    };
    let f = Flow::tcp(local_b.into(), on_b);
    let syn = f.syn("node-b/eth0").find(&caps)?;
    let node_b_mac = syn.dst_mac;
    let at_b = caps.get("node-b/eth0")?;
    if let Some(p) = at_b
        .iter()
        .find(|p| p.src_mac == node_b_mac && p.dst_ip == Some(client.ip()))
    {
        bail!("node-b answered the dropped NodePort SYN: {p}");
    }
    // A forwarded SYN keeps the client's address, or (masqueraded) heads for a pod.
    let pods: harness::world::Cidr = CLUSTER_CIDR.parse()?;
    let forwarded = |p: &&harness::packets::Packet| {
        p.src_mac == node_b_mac
            && p.is_syn()
            && (p.src() == Some(local_b)
                || p.dst_ip.is_some_and(|d| pods.contains(d))
                || p.dst().is_some_and(|d| d.port() == np))
    };
    if let Some(p) = at_b.iter().find(forwarded) {
        bail!("node-b forwarded the NodePort SYN: {p}");
    }
    f.syn("node-b/cbr0")
        .src(Addr::Any)
        .dst(Addr::Any)
        .absent(&caps)?;
    f.syn_ack("client/eth0").src(Addr::Any).absent(&caps)?;

    ensure!(served.body == "lp", "{on_a} answered {:?}", served.body);
    let g = Flow::tcp(served.local.into(), on_a);
    let at_pod = g
        .syn("node-a/cbr0")
        .src(Addr::Any)
        .dst(Addr::Exact(SocketAddrV4::new(lp_ip, HTTP_PORT)))
        .find(&caps)?;
    ensure!(
        at_pod.src() == Some(served.local),
        "externalTrafficPolicy Local preserves the client source, but the pod saw {:?} (client {}): {at_pod}",
        at_pod.src(),
        served.local
    );
    g.syn_ack("client/eth0").find(&caps)?;
    cl.stop().await
}
