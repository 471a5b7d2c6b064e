//! Area `node-failure`, voluntary disruption: `kubectl drain` on a two-node cluster with a
//! PodDisruptionBudget and a DaemonSet, then `uncordon` (it shares the two-node fixture of the
//! packet-path cases).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use harness::backend::ProxyMode;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use super::basic::{NODE_A, NODE_B};
use super::env::Cluster;
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::kube_wait;
use crate::pods::container;

const WAIT: Duration = Duration::from_secs(60);

pub(super) fn drain(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = drain_impl(&ctx).await;
        super::env::evidence(&ctx, r).await
    })
}

/// `kubectl` with the case's kubeconfig; fails with its output unless it exits 0.
async fn kubectl(cl: &Cluster, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cl.control_plane().kubeconfig())
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .context("running kubectl")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "kubectl {}: {}\n{text}", args.join(" "), out.status);
    Ok(text)
}

async fn create(client: &kube::Client, api_version: &str, plural: &str, body: Value) -> anyhow::Result<()> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = body["kind"].as_str().unwrap_or_default().to_string();
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &kind);
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    api.create(&PostParams::default(), &serde_json::from_value(body)?).await?;
    Ok(())
}

/// (name, node, ready) of the pods labelled `app=<app>` that are not terminating.
async fn pods_of(client: &kube::Client, app: &str) -> anyhow::Result<Vec<(String, String, bool)>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut out = Vec::new();
    for p in api.list(&ListParams::default().labels(&format!("app={app}"))).await?.items {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        let ready = kube_wait::pod_condition_status(&p, "Ready").as_deref() == Some("True");
        out.push((p.metadata.name.unwrap_or_default(), node, ready));
    }
    Ok(out)
}

async fn wait_pods(client: &kube::Client, app: &str, what: &str, pred: impl Fn(&[(String, String, bool)]) -> bool) -> anyhow::Result<Vec<(String, String, bool)>> {
    harness::wait::wait_for(what, WAIT, || async {
        match pods_of(client, app).await {
            Ok(p) if pred(&p) => Ok(p),
            Ok(p) => Err(format!("{p:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .map_err(Into::into)
}

/// The workloads: a DaemonSet `daemon` and a Deployment `web` of 3 (pause containers, 1 s
/// grace), with a PodDisruptionBudget of minAvailable 2 over `web`.
async fn workloads(client: &kube::Client) -> anyhow::Result<()> {
    let template = |app: &str| json!({"metadata": {"labels": {"app": app}},
        "spec": {"containers": [container("c", &["pause"])], "terminationGracePeriodSeconds": 1}});
    create(client, "apps/v1", "daemonsets", json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "daemon"},
        "spec": {"selector": {"matchLabels": {"app": "daemon"}}, "template": template("daemon")}})).await?;
    create(client, "apps/v1", "deployments", json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}})).await?;
    create(client, "policy/v1", "poddisruptionbudgets", json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})).await?;
    Ok(())
}

/// `kubectl drain node-a --ignore-daemonsets` with a PodDisruptionBudget of minAvailable 2 over
/// a Deployment of 3: the node is cordoned (`spec.unschedulable` and the
/// `node.kubernetes.io/unschedulable` taint), its Deployment pods are evicted while never fewer
/// than 2 are Ready (an eviction the budget forbids is refused with upstream's message and
/// retried), their replacements run on node-b, the DaemonSet's pod stays on node-a, and after
/// `kubectl uncordon` a new replica is scheduled to node-a again. Catches an eviction API that
/// ignores budgets, a drain that kills DaemonSet pods, and a cordon the scheduler ignores.
async fn drain_impl(ctx: &CaseCtx) -> anyhow::Result<()> {
    let cl = Cluster::start(ctx, ProxyMode::Nftables).await?;
    workloads(&cl.client).await?;
    wait_pods(&cl.client, "daemon", "a ready daemon pod on each node", |p| p.len() == 2 && p.iter().all(|x| x.2)).await?;
    let web = wait_pods(&cl.client, "web", "3 ready web pods on both nodes", |p| {
        p.len() == 3 && p.iter().all(|x| x.2) && p.iter().any(|x| x.1 == NODE_A) && p.iter().any(|x| x.1 == NODE_B)
    })
    .await?;
    let on_a = web.iter().filter(|x| x.1 == NODE_A).count();
    let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
    let sampler = {
        let (client, min_ready) = (cl.client.clone(), min_ready.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(p) = pods_of(&client, "web").await {
                    min_ready.fetch_min(p.iter().filter(|x| x.2).count(), Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let out = kubectl(&cl, &["drain", NODE_A, "--ignore-daemonsets", "--timeout=60s"]).await;
    sampler.abort();
    let out = out?;
    println!("kubectl drain ({on_a} web pods on {NODE_A}):\n{out}");
    ensure!(out.contains(&format!("node/{NODE_A} drained")), "kubectl drain said:\n{out}");
    let least = min_ready.load(Ordering::SeqCst);
    ensure!(least >= 2, "only {least} web pods were Ready during the drain; the budget says 2");
    if on_a == 2 {
        ensure!(out.contains("Cannot evict pod as it would violate the pod's disruption budget."), "two evictions on node-a but none refused:\n{out}");
    }
    let web = wait_pods(&cl.client, "web", "3 ready web pods on node-b", |p| p.len() == 3 && p.iter().all(|x| x.2 && x.1 == NODE_B)).await?;
    let daemons = pods_of(&cl.client, "daemon").await?;
    ensure!(daemons.iter().any(|x| x.1 == NODE_A), "the DaemonSet pod on node-a was drained: {daemons:?}");
    let nodes: Api<Node> = Api::all(cl.client.clone());
    kube_wait::node(&cl.client, NODE_A, "cordoned with the unschedulable taint", WAIT, |n: &Node| {
        let cordoned = n.spec.as_ref()?.unschedulable == Some(true);
        let tainted = n.spec.as_ref()?.taints.as_ref()?.iter().any(|t| t.key == "node.kubernetes.io/unschedulable" && t.effect == "NoSchedule");
        (cordoned && tainted).then_some(())
    })
    .await?;
    kubectl(&cl, &["uncordon", NODE_A]).await?;
    let n = nodes.get(NODE_A).await?;
    ensure!(n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true), "node-a still cordoned after uncordon");
    kubectl(&cl, &["scale", "deployment/web", "--replicas=4"]).await?;
    let before: Vec<String> = web.into_iter().map(|x| x.0).collect();
    wait_pods(&cl.client, "web", "the 4th replica ready on node-a", |p| p.iter().any(|x| !before.contains(&x.0) && x.1 == NODE_A && x.2)).await?;
    cl.stop().await
}
