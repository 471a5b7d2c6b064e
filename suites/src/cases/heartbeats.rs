//! Area `heartbeats`: the node Lease, node status reporting, and the control plane's reaction
//! when heartbeats stop (Unknown + the unreachable NoSchedule taint) and resume.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use fake_apiserver::FaultRule;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NODE_GRACE, NodeEnv};
use crate::kube_wait;

pub fn cases() -> Vec<Case> {
    let case = |id, labels, body| Case {
        id,
        labels,
        needs: &[],
        topology: Topology::SingleNode,
        runtimes: Runtimes::FakeOnly,
        body,
    };
    let mut all = vec![
        case("heartbeats/lease-fields", &[Label::Conformance][..], lease_fields as fn(CaseCtx) -> BodyFuture),
        case("heartbeats/lease-renewed-within-duration", &[Label::Conformance], lease_renewed),
        case("heartbeats/status-reported-infrequently", &[Label::Conformance], status_infrequent),
        case("heartbeats/agent-stopped-node-unknown", &[Label::Conformance, Label::Disruptive], agent_stopped),
        case("heartbeats/partition-and-recovery", &[Label::Conformance, Label::Disruptive], partition),
        case("heartbeats/api-errors-then-recovery", &[Label::Conformance, Label::Disruptive], api_errors),
    ];
    // The lease case is also a runtime-independent check worth running on every backend.
    all[0].runtimes = Runtimes::All;
    all
}

const READY: Duration = Duration::from_secs(20);

async fn lease(client: &kube::Client) -> anyhow::Result<Option<Lease>> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    Ok(api.get_opt(NODE).await?)
}

fn renew_time(l: &Lease) -> Option<jiff::Timestamp> {
    l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0)
}

/// The lease follows registration (the node may be Ready first): waits for its renewTime.
async fn first_renewal(client: &kube::Client) -> anyhow::Result<jiff::Timestamp> {
    Ok(harness::wait::wait_for("the Lease kube-node-lease/node-a with a renewTime", READY, || async {
        lease(client).await.ok().flatten().as_ref().and_then(renew_time)
    })
    .await?)
}

fn lease_fields(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        let node = env.wait_ready(READY).await?;
        // The lease follows registration; wait for it rather than assume an order.
        let l = harness::wait::wait_for("the Lease kube-node-lease/node-a", READY, || async {
            lease(&env.client).await.ok().flatten()
        })
        .await?;
        let spec = l.spec.clone().context("lease without spec")?;
        ensure!(spec.holder_identity.as_deref() == Some(NODE), "holderIdentity {:?}", spec.holder_identity);
        ensure!(spec.lease_duration_seconds == Some(4), "leaseDurationSeconds {:?}", spec.lease_duration_seconds);
        ensure!(spec.renew_time.is_some(), "no renewTime");
        let owners = l.metadata.owner_references.clone().unwrap_or_default();
        ensure!(owners.len() == 1, "expected exactly one ownerReference, got {owners:?}");
        let o = &owners[0];
        ensure!(o.api_version == "v1" && o.kind == "Node" && o.name == NODE, "ownerReference {o:?}");
        ensure!(Some(&o.uid) == node.metadata.uid.as_ref(), "ownerReference uid {} ≠ node uid {:?}", o.uid, node.metadata.uid);
        env.stop().await
    })
}

fn lease_renewed(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(READY).await?;
        // Observe four successive renewals; each must come within the lease duration, and on
        // average near duration × 0.25 (1 s here).
        let mut seen = vec![first_renewal(&env.client).await?];
        while seen.len() < 5 {
            let last = *seen.last().context("empty")?;
            let next = harness::wait::wait_for("the lease to be renewed", Duration::from_secs(4), || async {
                lease(&env.client).await.ok().flatten().as_ref().and_then(renew_time).filter(|t| *t > last)
            })
            .await?;
            seen.push(next);
        }
        let gaps: Vec<f64> = seen.windows(2).map(|w| w[1].duration_since(w[0]).as_secs_f64()).collect();
        for g in &gaps {
            ensure!(*g <= 4.0, "a renewal came {g:.2}s after the previous one, beyond the 4 s lease: {gaps:?}");
        }
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        ensure!((0.5..=1.6).contains(&mean), "mean renew interval {mean:.2}s, expected about 1 s: {gaps:?}");
        env.stop().await
    })
}

fn status_infrequent(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(READY).await?;
        // Nothing changes on the node: status must be written at most once per report period
        // (4 s) while the lease keeps being renewed every second.
        env.cp.handle().clear_audit();
        let window = Instant::now();
        let node_api: Api<Node> = Api::all(env.client.clone());
        let first_rv = node_api.get(NODE).await?.metadata.resource_version;
        let observe = Duration::from_millis(4500);
        let renewals = {
            let mut count = 0u32;
            let mut last = lease(&env.client).await?.as_ref().and_then(renew_time);
            while window.elapsed() < observe {
                let prev = last;
                let deadline = observe.saturating_sub(window.elapsed()).max(Duration::from_millis(1));
                let next = harness::wait::wait_for("a renewal", deadline, || async {
                    lease(&env.client).await.ok().flatten().as_ref().and_then(renew_time).filter(|t| Some(*t) > prev)
                })
                .await;
                match next {
                    Ok(t) => {
                        count += 1;
                        last = Some(t);
                    }
                    Err(_) => break,
                }
            }
            count
        };
        let status_writes = env
            .cp
            .handle()
            .audit()
            .into_iter()
            .filter(|e| e.path.ends_with(&format!("/nodes/{NODE}/status")) && matches!(e.verb.as_str(), "patch" | "update"))
            .count();
        ensure!(renewals >= 3, "only {renewals} lease renewals in {observe:?}");
        ensure!(
            status_writes <= 2,
            "{status_writes} node status writes in {observe:?} with nothing changing (report period 4 s); first rv {first_rv:?}"
        );
        env.stop().await
    })
}

fn unreachable_taints(n: &Node) -> Vec<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.key == "node.kubernetes.io/unreachable")
                .map(|t| t.effect.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for Ready=Unknown with the NoSchedule `unreachable` taint, and checks it carries no
/// NoExecute one: the only node of the world is down, so the zone is fully disrupted and
/// upstream's controller evicts nothing (master disruption mode).
async fn expect_unknown(env: &NodeEnv) -> anyhow::Result<()> {
    let timeout = NODE_GRACE * 3;
    kube_wait::node_condition(&env.client, NODE, "Ready", "Unknown", timeout).await?;
    let effects = kube_wait::node(&env.client, NODE, "the unreachable NoSchedule taint", timeout, |n| {
        let e = unreachable_taints(n);
        (!e.is_empty()).then_some(e)
    })
    .await?;
    ensure!(effects == ["NoSchedule"], "unreachable taint effects {effects:?} on the only node (no NoExecute when every node is down)");
    Ok(())
}

/// Waits for Ready=True again with the unreachable taints gone.
async fn expect_recovered(env: &NodeEnv) -> anyhow::Result<()> {
    kube_wait::node_condition(&env.client, NODE, "Ready", "True", READY).await?;
    kube_wait::node(&env.client, NODE, "unreachable taints removed", READY, |n| {
        unreachable_taints(n).is_empty().then_some(())
    })
    .await
}

fn agent_stopped(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let mut env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(READY).await?;
        env.agent.process().stop(Duration::from_secs(5)).await?;
        expect_unknown(&env).await.context("after stopping the agent")?;
        env.agent.process().restart().await?;
        expect_recovered(&env).await.context("after restarting the agent")?;
        env.stop().await
    })
}

fn partition(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(READY).await?;
        // The API server stops answering; its own node lifecycle controller keeps running and
        // must mark the node Unknown. The case reads the store directly meanwhile.
        let handle = env.cp.handle();
        handle.set_partition(true);
        let unknown = wait_unknown_in_store(handle).await;
        handle.set_partition(false);
        unknown.context("during the partition")?;
        expect_recovered(&env).await.context("after the partition healed")?;
        env.stop().await
    })
}

/// During a partition the case cannot ask over HTTP either; it reads the server's store.
async fn wait_unknown_in_store(handle: &fake_apiserver::Handle) -> anyhow::Result<()> {
    harness::wait::wait_for("Ready=Unknown in the API server's store", NODE_GRACE * 3, || async {
        let nodes = fake_apiserver::resources::lookup("", "v1", "nodes")?;
        let node = handle.store().get(nodes, "", NODE)?;
        let conds = node.value.pointer("/status/conditions")?.as_array()?.clone();
        conds
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "Unknown")
            .then_some(())
    })
    .await?;
    Ok(())
}

fn api_errors(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let mut env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(READY).await?;
        let handle = env.cp.handle();
        let before = first_renewal(&env.client).await?;
        // Every lease and node write fails with 500 for a while.
        let ids: Vec<u64> = ["leases", "nodes"]
            .into_iter()
            .map(|r| {
                handle.add_fault(FaultRule {
                    id: 0,
                    verb: None,
                    path_prefix: None,
                    resource: Some(r.to_string()),
                    latency_ms: None,
                    error_code: Some(500),
                    error_message: Some("injected by the case".into()),
                    close_watch_after: None,
                    times: None,
                })
            })
            .collect();
        // Wait until the agent has actually hit the faults a few times.
        harness::wait::wait_for("the agent to retry against failing lease writes", Duration::from_secs(10), || async {
            handle.audit().iter().filter(|e| e.path.contains("/leases/") && e.code == 500).count() >= 3
        })
        .await?;
        ensure!(env.agent.process().is_running(), "the agent exited under API errors");
        for id in ids {
            handle.remove_fault(id);
        }
        harness::wait::wait_for("the lease to be renewed after the errors stop", Duration::from_secs(10), || async {
            lease(&env.client).await.ok().flatten().as_ref().and_then(renew_time).is_some_and(|t| t > before)
        })
        .await?;
        kube_wait::node_condition(&env.client, NODE, "Ready", "True", READY).await?;
        env.stop().await
    })
}
