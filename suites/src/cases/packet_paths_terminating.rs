//! Packet-path body for a terminating endpoint that still serves (KEP-1672 / KEP-1669): the
//! pod's preStop hook holds it running after deletion, its readiness probe keeps passing, so
//! the agent keeps it Ready, the EndpointSlice lists it `ready=false, serving=true,
//! terminating=true`, and the proxy keeps sending new connections to it while it is the
//! service's only endpoint — and stops as soon as a ready endpoint exists.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use harness::backend::ProxyMode;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;

use super::Mode;
use super::basic::{NODE_A, PROXY_SYNC};
use super::env::{Cluster, HTTP_PORT, create_ready, service, wait_slices, web_pod};
use super::net::{Origin, Taps, get_hostname, syns_to_port, wait_serving};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::{kube_wait, pods};

/// Time from the EndpointSlice listing a ready endpoint to no new connection reaching the
/// terminating one (as the readiness case bounds it).
const STOP_BOUND: Duration = Duration::from_secs(5);

pub(super) fn terminating_serving<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = terminating_impl(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}

/// (address, ready, serving, terminating) of every endpoint of `svc`.
async fn slice_conditions(client: &kube::Client, svc: &str) -> anyhow::Result<Vec<(Ipv4Addr, bool, bool, bool)>> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    let mut out = Vec::new();
    for s in api.list(&lp).await?.items {
        for e in s.endpoints {
            let c = e.conditions.unwrap_or_default();
            for a in &e.addresses {
                out.push((a.parse()?, c.ready == Some(true), c.serving == Some(true), c.terminating == Some(true)));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `n` connections from `origin` to `target` while node-a's bridge is captured: every answer
/// and every SYN on the bridge must be `name` at `ip`.
async fn all_to(ctx: &CaseCtx, origin_host: &str, target: SocketAddr, n: usize, name: &str, ip: Ipv4Addr) -> anyhow::Result<()> {
    let (node_a, from) = (ctx.world.host(NODE_A)?, ctx.world.host(origin_host)?);
    let mut taps = Taps::new(&format!("to-{name}"));
    taps.on(ctx, node_a, "cbr0")?;
    let mut answers = Vec::new();
    for _ in 0..n {
        answers.push(get_hostname(Origin::Host(from), target).await?.body);
    }
    let caps = taps.stop().await?;
    ensure!(answers.iter().all(|a| a == name), "connections to {target} were answered by {answers:?}, expected only {name}");
    let syns = syns_to_port(caps.get("node-a/cbr0")?, HTTP_PORT);
    ensure!(syns.len() == n, "{n} connections, {} distinct SYNs on node-a/cbr0", syns.len());
    if let Some(s) = syns.iter().find(|s| s.dst_ip != Some(ip)) {
        bail!("a SYN went to {:?}, expected only {name} ({ip}): {s}", s.dst_ip);
    }
    Ok(())
}

async fn terminating_impl(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let cl = Cluster::start(ctx, mode).await?;
    // A preStop hook of 30 s keeps the deleted pod running (and serving) within its 60 s grace.
    let mut old = web_pod("t-old", NODE_A, "t")?;
    let spec = old.spec.as_mut().expect("web_pod has a spec");
    spec.termination_grace_period_seconds = Some(60);
    spec.containers[0].lifecycle = Some(serde_json::from_value(json!({"preStop": {"exec": {"command": ["/workload", "sleep", "30s"]}}}))?);
    let ips = create_ready(&cl.client, vec![old]).await?;
    let old_ip = ips[0];
    let svc = service(&cl.client, "t", "t", json!({})).await?;
    wait_slices(&cl.client, "t", &[old_ip], &[]).await?;
    let target = SocketAddr::from((svc.cluster_ip, svc.port));
    wait_serving(Origin::Host(ctx.world.host("client")?), target, &["t-old"], PROXY_SYNC).await?;

    pods::delete(&cl.client, "t-old", None).await?;
    let want = vec![(old_ip, false, true, true)];
    harness::wait::wait_for("the deleted pod's endpoint to be serving and terminating", Duration::from_secs(10), || async {
        match slice_conditions(&cl.client, "t").await {
            Ok(seen) if seen == want => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    // The agent keeps the terminating pod Ready while its readiness probe passes.
    let p = kube_wait::pod(&cl.client, "default", "t-old", "status", Duration::from_secs(5), |p| Some(p.clone())).await?;
    ensure!(p.metadata.deletion_timestamp.is_some(), "t-old is not terminating");
    ensure!(kube_wait::pod_condition_status(&p, "Ready").as_deref() == Some("True"), "the terminating pod whose readiness probe passes is not Ready");
    // Its only endpoint is terminating but serving: new connections still reach it.
    all_to(ctx, "client", target, 10, "t-old", old_ip).await?;

    // Once a ready endpoint exists, new connections go there only.
    let new_ip = create_ready(&cl.client, vec![web_pod("t-new", NODE_A, "t")?]).await?[0];
    harness::wait::wait_for("a ready endpoint beside the terminating one", Duration::from_secs(10), || async {
        match slice_conditions(&cl.client, "t").await {
            Ok(seen) if seen.contains(&(new_ip, true, true, false)) && seen.contains(&(old_ip, false, true, true)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    let since = Instant::now();
    let client = ctx.world.host("client")?;
    let mut taps = Taps::new("transition");
    taps.on(ctx, ctx.world.host(NODE_A)?, "cbr0")?;
    taps.on(ctx, client, "eth0")?;
    let mut in_a_row = 0;
    // One connection every 20 ms: the switch is observed at 50 connections/s, not at the
    // thousand per second a tight loop makes.
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    while in_a_row < 10 {
        pace.tick().await;
        match get_hostname(Origin::Host(client), target).await?.body.as_str() {
            "t-new" => in_a_row += 1,
            "t-old" => in_a_row = 0,
            other => bail!("{target} answered by {other:?}"),
        }
        ensure!(since.elapsed() < STOP_BOUND, "the terminating endpoint still got new connections {:?} after a ready one appeared", since.elapsed());
    }
    taps.stop().await?;
    all_to(ctx, "client", target, 20, "t-new", new_ip).await?;
    cl.stop().await
}
