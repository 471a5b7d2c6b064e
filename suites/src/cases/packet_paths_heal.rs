//! Area `node-failure`, asserted from packets: a Deployment behind a NodePort Service heals
//! when a node dies. The dead node goes Unknown and gets the NoExecute `unreachable` taint; its
//! pods are deleted by the taint manager after their tolerationSeconds; the ReplicaSet's
//! replacements run on the surviving node; the EndpointSlice's ready endpoints are theirs only;
//! and the client's connections to the NodePort and to the ClusterIP succeed again, every one
//! DNAT'd to a surviving pod and none sent towards the dead node. The same with node-a only cut
//! from the API server, after which node-a kills the pods deleted meanwhile.

use std::collections::{BTreeSet, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use harness::backend::ProxyMode;
use harness::path::Flow;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use super::Mode;
use super::basic::{NODE_A, NODE_B, PROXY_SYNC};
use super::env::{Cluster, HTTP_PORT, POD_READY, service, slice_endpoints, wait_slices, web_pod};
use super::net::{Attempt, CONNECT, Origin, Taps, attempt, get_hostname, wait_serving};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::kube_wait;

/// The replicas' tolerationSeconds for `unreachable` / `not-ready` (upstream's default is
/// 300 s; the world's node grace period is 4 s instead of 50 s).
const TOLERATION: i64 = 2;
/// From the kill to a healed service: grace (4 s) + toleration (2 s) + a replacement pod's
/// start, with room.
const HEAL: Duration = Duration::from_secs(60);
/// From the node's reconnection to its deleted pods no longer answering: a relist and their
/// grace period (2 s), with room.
const STOPPED: Duration = Duration::from_secs(15);
/// Consecutive good connections on each path that count as healed.
const STREAK: usize = 10;

pub(super) fn node_partitioned<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = partitioned(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}

pub(super) fn node_killed<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = killed(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}

/// One endpoint pod of the Deployment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Web {
    name: String,
    ip: Ipv4Addr,
    node: String,
}

/// The Deployment `web`: 3 replicas of the packet-path endpoint pod (label `group=web`,
/// Ready once netexec listens), tolerating the node taints for [`TOLERATION`] seconds.
fn deployment() -> anyhow::Result<Deployment> {
    let mut template = serde_json::to_value(web_pod("web", "", "web")?)?;
    let spec = template.get_mut("spec").and_then(|s| s.as_object_mut()).context("pod spec")?;
    spec.remove("nodeName");
    spec.insert(
        "tolerations".into(),
        json!(["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"]
            .map(|k| json!({"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": TOLERATION}))),
    );
    let labels = json!({"app": "web", "group": "web"});
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": labels}, "spec": template["spec"]}},
    }))?)
}

/// The Deployment's pods that are Ready, not terminating, with an IP and a node.
async fn ready_webs(client: &kube::Client) -> anyhow::Result<Vec<Web>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut out = Vec::new();
    for p in api.list(&ListParams::default().labels("app=web")).await?.items {
        let ready = kube_wait::pod_condition_status(&p, "Ready").as_deref() == Some("True");
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|i| i.parse().ok());
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        if let (true, None, Some(ip), Some(node)) = (ready, &p.metadata.deletion_timestamp, ip, node) {
            out.push(Web { name: p.metadata.name.clone().unwrap_or_default(), ip, node });
        }
    }
    out.sort();
    Ok(out)
}

/// Waits until `pred` holds for the ready pods; returns them.
async fn wait_webs(client: &kube::Client, what: &str, timeout: Duration, pred: impl Fn(&[Web]) -> bool) -> anyhow::Result<Vec<Web>> {
    harness::wait::wait_for(what, timeout, || async {
        match ready_webs(client).await {
            Ok(w) if pred(&w) => Ok(w),
            Ok(w) => Err(format!("{w:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .map_err(Into::into)
}

/// The control plane's half of the story: node-a Unknown with the NoExecute taint, its pods
/// deleted by the taint manager (DisruptionTarget `DeletionByTaintManager`), three ready pods
/// on node-b, and ready endpoints for exactly those.
async fn control_plane_heals(client: &kube::Client, dead: &[Web]) -> anyhow::Result<Vec<Web>> {
    kube_wait::node_condition(client, NODE_A, "Ready", "Unknown", HEAL).await?;
    kube_wait::node(client, NODE_A, "the NoExecute unreachable taint", HEAL, |n: &Node| {
        let taints = n.spec.as_ref()?.taints.as_ref()?;
        taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute").then_some(())
    })
    .await?;
    for w in dead {
        let p = kube_wait::pod(client, "default", &w.name, "deleted by the taint manager", HEAL, |p| {
            p.metadata.deletion_timestamp.as_ref()?;
            let c = p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "DisruptionTarget")?.clone();
            Some(c)
        })
        .await?;
        ensure!(p.reason.as_deref() == Some("DeletionByTaintManager"), "{}: DisruptionTarget {p:?}", w.name);
    }
    let after = wait_webs(client, "3 ready pods, all on node-b", HEAL, |w| w.len() == 3 && w.iter().all(|w| w.node == NODE_B)).await?;
    let want: BTreeSet<Ipv4Addr> = after.iter().map(|w| w.ip).collect();
    harness::wait::wait_for("ready endpoints of web on node-b only", HEAL, || async {
        let eps = slice_endpoints(client, "web").await.map_err(|e| e.to_string())?;
        let ready: BTreeSet<Ipv4Addr> = eps.iter().filter(|(_, r)| *r).map(|(ip, _)| *ip).collect();
        if ready == want { Ok(()) } else { Err(format!("{eps:?}")) }
    })
    .await?;
    Ok(after)
}

/// One answered connection of the healed streak.
struct Good {
    local: SocketAddr,
    to: SocketAddr,
    /// The answering pod's name.
    pod: String,
}

/// Every probe connection: when it began and how it ended.
struct Probes {
    done: Vec<(Instant, Result<Good, String>)>,
    /// When the last failed connection ended (its socket closed, no more retransmissions).
    last_failure_end: Option<Instant>,
}

/// The healed stretch the probes found.
struct Probed {
    /// The connections begun after the last failed one.
    streak: Vec<Good>,
    /// When the first of them began.
    started: Instant,
    /// From when no failed connection was open any more: nothing may go to a dead pod after.
    quiet: Instant,
    failures: usize,
}

impl Probes {
    /// The connections begun after the last failed one (in begin order), when they are at
    /// least `2 × STREAK` and every survivor answered one; `None` otherwise.
    fn healed_since(&self, after: &[Web]) -> Option<(Instant, Vec<&Good>)> {
        let last_bad = self.done.iter().filter(|(_, r)| r.is_err()).map(|(t, _)| *t).max();
        let mut good: Vec<(Instant, &Good)> =
            self.done.iter().filter(|(t, _)| last_bad.is_none_or(|b| *t > b)).filter_map(|(t, r)| r.as_ref().ok().map(|g| (*t, g))).collect();
        good.sort_by_key(|(t, _)| *t);
        let answered: HashSet<&str> = good.iter().map(|(_, g)| g.pod.as_str()).collect();
        let enough = good.len() >= 2 * STREAK && after.iter().all(|w| answered.contains(w.name.as_str()));
        enough.then(|| (good[0].0, good.into_iter().map(|(_, g)| g).collect()))
    }

    fn failures(&self) -> usize {
        self.done.iter().filter(|(_, r)| r.is_err()).count()
    }
}

/// Starts a connection every 100 ms from the kill on, alternating the NodePort (from the
/// client) and the ClusterIP (from node-b), until the control plane has healed (`healed` holds
/// the survivors) and the connections begun after the last failed one are at least
/// `2 × STREAK`, all answered by pods not on the dead node, every survivor among them (checked
/// again once every connection still open has ended).
async fn probe_until_healed(
    paths: [(Origin<'_>, SocketAddr); 2],
    dead: &[Web],
    mut healed: tokio::sync::watch::Receiver<Option<Vec<Web>>>,
) -> anyhow::Result<Probed> {
    let since_kill = Instant::now();
    let deadline = since_kill + HEAL;
    let mut probes = Probes { done: Vec::new(), last_failure_end: None };
    let mut open = futures::stream::FuturesUnordered::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (mut n, mut draining) = (0usize, false);
    loop {
        if draining && open.is_empty() {
            // Every connection has ended: healed unless one of the last ones failed.
            let after = healed.borrow().clone();
            if let Some((started, goods)) = after.as_ref().and_then(|a| probes.healed_since(a)) {
                let streak = goods.into_iter().map(|g| Good { local: g.local, to: g.to, pod: g.pod.clone() }).collect();
                let quiet = probes.last_failure_end.map_or(started, |e| e.max(started));
                return Ok(Probed { streak, started, quiet, failures: probes.failures() });
            }
            draining = false;
        }
        tokio::select! {
            _ = tick.tick(), if !draining => {
                let (from, to) = paths[n % 2];
                n += 1;
                let begun = Instant::now();
                open.push(async move { (begun, to, get_hostname(from, to).await) });
            }
            Some((begun, to, r)) = futures::StreamExt::next(&mut open), if !open.is_empty() => {
                let r = match r {
                    Ok(a) if !dead.iter().any(|w| w.name == a.body) => Ok(Good { local: a.local.into(), to, pod: a.body }),
                    Ok(a) => Err(format!("answered by {}", a.body)),
                    Err(e) => Err(format!("{e:#}")),
                };
                if let Err(why) = &r {
                    probes.last_failure_end = Some(Instant::now());
                    println!("begun after {:.1} s: {to}: {why}", begun.duration_since(since_kill).as_secs_f64());
                }
                probes.done.push((begun, r));
            }
        }
        let after = healed.borrow_and_update().clone();
        if !draining && after.as_ref().and_then(|a| probes.healed_since(a)).is_some() {
            // Stop starting connections and wait for the open ones.
            draining = true;
        }
        if Instant::now() > deadline {
            bail!("not healed within {HEAL:?}: {} failed connections", probes.failures());
        }
    }
}

/// The world every node-failure packet case starts from: the Deployment ready with a replica
/// on each node, the NodePort Service `web` serving all three from the client and from node-b.
struct Scene {
    cl: Cluster,
    dead: Vec<Web>,
    /// The NodePort on node-b, and on node-a.
    nodeport: SocketAddr,
    nodeport_a: SocketAddr,
    cluster_ip: SocketAddr,
}

async fn scene(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<Scene> {
    let cl = Cluster::start(ctx, mode).await?;
    let deploys: Api<Deployment> = Api::namespaced(cl.client.clone(), "default");
    deploys.create(&PostParams::default(), &deployment()?).await?;
    let before = wait_webs(&cl.client, "3 ready pods of web", POD_READY * 2, |w| w.len() == 3).await?;
    let dead: Vec<Web> = before.iter().filter(|w| w.node == NODE_A).cloned().collect();
    ensure!(!dead.is_empty() && dead.len() < 3, "the scheduler put {before:?}: each node needs a replica for this case");
    let svc = service(&cl.client, "web", "web", json!({"type": "NodePort"})).await?;
    let ips: Vec<Ipv4Addr> = before.iter().map(|w| w.ip).collect();
    wait_slices(&cl.client, "web", &ips, &[]).await?;
    let (node_a, node_b, client) = (ctx.world.host(NODE_A)?, ctx.world.host(NODE_B)?, ctx.world.host("client")?);
    let port = svc.node_port.context("no nodePort")?;
    let (nodeport, nodeport_a) = (SocketAddr::from((node_b.ip(), port)), SocketAddr::from((node_a.ip(), port)));
    let cluster_ip = SocketAddr::from((svc.cluster_ip, svc.port));
    let names: Vec<&str> = before.iter().map(|w| w.name.as_str()).collect();
    wait_serving(Origin::Host(node_b), cluster_ip, &names, PROXY_SYNC).await?;
    wait_serving(Origin::Host(client), nodeport, &names, PROXY_SYNC).await?;
    Ok(Scene { cl, dead, nodeport, nodeport_a, cluster_ip })
}

/// What one healing took, from the kill.
pub(crate) struct Healing {
    /// Replacements ready and the EndpointSlice's ready endpoints theirs only.
    pub control: Duration,
    /// From here on every connection was good.
    pub service: Duration,
    /// Connections that failed before.
    pub failures: usize,
}

async fn killed(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let h = kill_and_heal(ctx, mode).await?;
    let msg = format!(
        "node-a killed → replacements ready and endpoints updated after {:.1} s; every connection good from {:.1} s on ({} failed before)",
        h.control.as_secs_f64(),
        h.service.as_secs_f64(),
        h.failures
    );
    ctx.world.timeline().record("case", &msg);
    println!("timing {msg}");
    Ok(())
}

/// The body of the kill case, returning the figures (also `nodekit bench heal`).
pub(crate) async fn kill_and_heal(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<Healing> {
    let Scene { mut cl, dead, nodeport, cluster_ip, .. } = scene(ctx, mode).await?;
    let (node_b, client) = (ctx.world.host(NODE_B)?, ctx.world.host("client")?);
    let mut taps = Taps::new("heal");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_b, "eth0")?;
    taps.on(ctx, node_b, "cbr0")?;
    let killed_at = Instant::now();
    cl.kill_node(ctx, NODE_A).await?;
    let (tx, rx) = tokio::sync::watch::channel(None);
    let paths = [(Origin::Host(client), nodeport), (Origin::Host(node_b), cluster_ip)];
    let control = async {
        let after = control_plane_heals(&cl.client, &dead).await?;
        tx.send_replace(Some(after.clone()));
        anyhow::Ok((after, killed_at.elapsed()))
    };
    let (after, probed) = tokio::join!(control, probe_until_healed(paths, &dead, rx));
    let ((after, control_healed), Probed { streak, started, quiet, failures }) = (after?, probed?);
    let caps = taps.stop().await?;
    let (streak_began, since) = (SystemTime::now() - started.elapsed(), SystemTime::now() - quiet.elapsed());
    check_packets(&caps, &streak, &after, &dead, nodeport, streak_began, since)?;
    let service = started.saturating_duration_since(killed_at);
    cl.stop().await?;
    Ok(Healing { control: control_healed, service, failures })
}

/// `nodekit bench heal`: one kill on fake-cri in nftables mode, the figures next to their
/// floors (the earliest the control plane may act: the grace period less one lease renewal,
/// plus the toleration for replacements) and what upstream's default timings would give.
pub(crate) fn bench(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let h = kill_and_heal(&ctx, ProxyMode::Nftables).await?;
        let grace = crate::fixtures::NODE_GRACE.as_secs_f64();
        let renew = 1.0;
        let tol = TOLERATION as f64;
        let (up_grace, up_tol) = (50.0, 300.0);
        let (service, control) = (h.service.as_secs_f64(), h.control.as_secs_f64());
        println!("node death → recovery (2 nodes, 3 replicas, NodePort + ClusterIP, fake-cri, nftables)");
        println!("{:<44} {:>9} {:>9} {:>14}", "", "measured", "floor", "upstream est.");
        println!("{:<44} {:>8.1}s {:>8.1}s {:>13.1}s", "every connection good again", service, grace - renew, service - grace + up_grace);
        println!("{:<44} {:>8.1}s {:>8.1}s {:>13.1}s", "replacements ready, endpoints updated", control, grace - renew + tol, control - grace - tol + up_grace + up_tol);
        println!("failed connections before recovery: {}", h.failures);
        println!("timings: node grace {grace} s (upstream {up_grace} s), toleration {tol} s (upstream default {up_tol} s)");
        Ok(())
    })
}

/// Partition, not death: node-a cut from the API server only. The control plane heals as for
/// a dead node while node-a's pods keep serving (asked directly), and one of them is
/// force-deleted. When the partition heals, node-a's agent kills the pods deleted meanwhile —
/// the gracefully deleted ones leave the API, the force-deleted one is found missing on the
/// relist — the node is Ready without the unreachable taints, connections to the old pods'
/// addresses get no answer (no SYN-ACK from them on node-a's cbr0), and node-a's NodePort is
/// answered by the survivors. Catches an agent that keeps running pods deleted while it was cut
/// off (fault `keep-stale-pods`).
async fn partitioned(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let Scene { cl, dead, nodeport_a, .. } = scene(ctx, mode).await?;
    let (node_a, node_b, client) = (ctx.world.host(NODE_A)?, ctx.world.host(NODE_B)?, ctx.world.host("client")?);
    cl.partition_from_api(ctx, NODE_A, true).await?;
    // The API server restarts as the partition begins and keeps no history (as after etcd's
    // compaction): node-a's watches end and cannot resume, so when the partition heals its
    // agent relists, and the force-deleted pod below is not in the list at all.
    let history = cl.control_plane().handle();
    history.set_watch_history(1);
    history.close_watches();
    let after = control_plane_heals(&cl.client, &dead).await?;
    for w in &dead {
        let a = get_hostname(Origin::Host(node_b), SocketAddr::from((w.ip, HTTP_PORT))).await?;
        ensure!(a.body == w.name, "{} at {} answered as {:?} during the partition", w.name, w.ip, a.body);
    }
    // One of them is force-deleted meanwhile, as `kubectl delete --force` or PodGC would: it is
    // gone from the API while its containers still run on node-a.
    let forced = &dead[0];
    let pods: Api<Pod> = Api::namespaced(cl.client.clone(), "default");
    pods.delete(&forced.name, &kube::api::DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await?;
    kube_wait::pod_gone(&cl.client, "default", &forced.name, HEAL).await?;
    cl.partition_from_api(ctx, NODE_A, false).await?;
    for w in &dead {
        kube_wait::pod_gone(&cl.client, "default", &w.name, HEAL).await.with_context(|| format!("{} after the partition healed", w.name))?;
    }
    history.set_watch_history(fake_apiserver::Config::default().watch_history);
    kube_wait::node(&cl.client, NODE_A, "Ready without unreachable taints", HEAL, |n: &Node| {
        let ready = kube_wait::node_condition_status(n, "Ready").as_deref() == Some("True");
        let tainted = n.spec.as_ref()?.taints.as_ref().is_some_and(|ts| ts.iter().any(|t| t.key.starts_with("node.kubernetes.io/unreachable")));
        (ready && !tainted).then_some(())
    })
    .await?;
    // The agent kills within the pods' grace period (2 s) once it has the pod list again.
    for w in &dead {
        let what = format!("{} at {} to stop accepting connections", w.name, w.ip);
        harness::wait::wait_for(&what, STOPPED, || async {
            match attempt(Origin::Host(node_b), SocketAddr::from((w.ip, HTTP_PORT)), CONNECT).await {
                Ok(Attempt::Connected(..)) => Err("still connects".to_string()),
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
    }
    let mut taps = Taps::new("healed");
    taps.on(ctx, node_a, "cbr0")?;
    for w in &dead {
        let r = attempt(Origin::Host(node_b), SocketAddr::from((w.ip, HTTP_PORT)), CONNECT).await?;
        ensure!(!matches!(r, Attempt::Connected(..)), "{} at {} still accepts connections after the agent reconnected: {}", w.name, w.ip, r.describe());
    }
    let caps = taps.stop().await?;
    let answered: Vec<_> = caps.get("node-a/cbr0")?.iter().filter(|p| p.is_syn_ack() && p.src_ip.is_some_and(|s| dead.iter().any(|w| w.ip == s))).collect();
    ensure!(answered.is_empty(), "a killed pod answered a SYN: {}", answered[0]);
    let names: Vec<&str> = after.iter().map(|w| w.name.as_str()).collect();
    wait_serving(Origin::Host(client), nodeport_a, &names, PROXY_SYNC).await?;
    cl.stop().await
}

/// The kernel paths of the healed streak: each NodePort connection's SYN and SYN-ACK at the
/// client, each answer's SYN DNAT'd to its surviving pod on node-b's cbr0 (from when the streak
/// began: a streak connection may begin while the last failed one is still timing out), and
/// nothing sent towards a dead pod on node-b's eth0 or cbr0 once the last failed connection was
/// closed (`since`).
fn check_packets(
    caps: &harness::path::Captures,
    streak: &[Good],
    after: &[Web],
    dead: &[Web],
    nodeport: SocketAddr,
    streak_began: SystemTime,
    since: SystemTime,
) -> anyhow::Result<()> {
    for g in streak.iter().filter(|g| g.to == nodeport) {
        let flow = Flow::tcp(g.local, nodeport);
        flow.syn("client/eth0").find(caps)?;
        flow.syn_ack("client/eth0").find(caps)?;
    }
    let cbr0 = caps.get("node-b/cbr0")?;
    let pods: BTreeSet<Ipv4Addr> = streak.iter().filter_map(|g| after.iter().find(|w| w.name == g.pod)).map(|w| w.ip).collect();
    ensure!(pods.len() == after.len(), "the streak was answered by {:?}, not by every survivor {after:?}", streak.iter().map(|g| &g.pod).collect::<BTreeSet<_>>());
    for pod in &pods {
        let n = cbr0.iter().filter(|p| p.ts >= streak_began && p.is_syn() && p.dst_ip == Some(*pod)).count();
        ensure!(n > 0, "no SYN to surviving pod {pod} on node-b/cbr0 since the healed streak began, although it answered");
    }
    let dead_ips: Vec<Ipv4Addr> = dead.iter().map(|w| w.ip).collect();
    for label in ["node-b/eth0", "node-b/cbr0"] {
        let stray: Vec<_> = caps.get(label)?.iter().filter(|p| p.ts >= since && p.dst_ip.is_some_and(|d| dead_ips.contains(&d))).collect();
        ensure!(stray.is_empty(), "{} packets towards the dead node's pods on {label} after healing, first: {}", stray.len(), stray[0]);
    }
    Ok(())
}
