//! Area `registration`: the Node the agent registers, and its readiness.

use std::time::Duration;

use anyhow::{Context, ensure};

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "registration/node-fields",
            // The world's node size (cpu 4, memory 8Gi, ephemeral 64Gi) is asserted.
            labels: &[Label::Conformance, Label::NodekitExtensions],
            needs: &[],
            topology: Topology::SingleNode,
            runtimes: Runtimes::All,
            body: node_fields,
        },
        Case {
            id: "registration/node-becomes-ready",
            labels: &[Label::Conformance],
            needs: &[],
            topology: Topology::SingleNode,
            runtimes: Runtimes::All,
            body: node_becomes_ready,
        },
        Case {
            id: "registration/runtime-not-ready",
            labels: &[Label::Conformance, Label::Disruptive],
            needs: &[],
            topology: Topology::SingleNode,
            runtimes: Runtimes::FakeOnly,
            body: runtime_not_ready,
        },
        Case {
            id: "registration/relist-stall-not-ready-and-unhealthy",
            // plegRelistThreshold and syncLoopHealthMinimum: upstream's are 3 m and 5 m.
            labels: &[Label::Conformance, Label::Disruptive, Label::NodekitExtensions],
            needs: &[],
            topology: Topology::SingleNode,
            runtimes: Runtimes::FakeOnly,
            body: relist_stall,
        },
    ]
}

const READY: Duration = Duration::from_secs(20);

/// The registered Node: hostname/os/arch labels, InternalIP and Hostname addresses, the node
/// size and allocatable values, nodeInfo (kubelet version, OS, kernel, `<runtime>://<version>`)
/// and podCIDR. Catches a Node registered without them or with the host's size.
fn node_fields(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        let node = env.wait_ready(READY).await?;
        let host = ctx.world.host(NODE)?;
        let labels = node.metadata.labels.clone().unwrap_or_default();
        for (k, v) in [
            ("kubernetes.io/hostname", NODE),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", std::env::consts::ARCH.replace("x86_64", "amd64").as_str()),
        ] {
            ensure!(labels.get(k).map(String::as_str) == Some(v), "label {k}={v} missing: {labels:?}");
        }
        let status = node.status.clone().context("node has no status")?;
        let addrs = status.addresses.clone().unwrap_or_default();
        let find = |t: &str| addrs.iter().find(|a| a.type_ == t).map(|a| a.address.clone());
        ensure!(find("InternalIP") == Some(host.ip().to_string()), "InternalIP: {addrs:?}");
        ensure!(find("Hostname") == Some(NODE.to_string()), "Hostname: {addrs:?}");
        check_node_size(&status)?;
        let info = status.node_info.clone().context("node has no nodeInfo")?;
        ensure!(info.kubelet_version.starts_with('v'), "kubeletVersion {:?}", info.kubelet_version);
        ensure!(info.operating_system == "linux", "operatingSystem {:?}", info.operating_system);
        ensure!(!info.kernel_version.is_empty(), "kernelVersion empty");
        // containerRuntimeVersion is <runtime_name>://<runtime_version> from CRI Version.
        let expected_prefix = ctx.runtime()?.runtime_name().map(|n| format!("{n}://")).unwrap_or_default();
        ensure!(
            info.container_runtime_version.starts_with(&expected_prefix) && info.container_runtime_version.contains("://"),
            "containerRuntimeVersion {:?}",
            info.container_runtime_version
        );
        let spec = node.spec.clone().unwrap_or_default();
        let cidr = host.pod_cidr().map(|c| c.to_string());
        ensure!(spec.pod_cidr == cidr, "podCIDR {:?}, expected {cidr:?}", spec.pod_cidr);
        env.stop().await
    })
}

/// The world's node size (`fixtures::COMPRESSED`: 4 CPUs, 8 GiB, 64 GiB of ephemeral storage,
/// maxPods 110) and upstream's allocatable rule: capacity minus system/kube reservations (none
/// here) minus the hard eviction thresholds (defaults memory.available<100Mi and
/// nodefs.available<10%). Catches an agent that reports the host's size instead of its
/// configuration, or allocatable equal to capacity.
fn check_node_size(status: &k8s_openapi::api::core::v1::NodeStatus) -> anyhow::Result<()> {
    const GI: f64 = 1024.0 * 1024.0 * 1024.0;
    const MI: f64 = 1024.0 * 1024.0;
    let storage = 64.0 * GI;
    let expected = [
        ("capacity", "cpu", 4.0, 0.0),
        ("capacity", "memory", 8.0 * GI, 0.0),
        ("capacity", "pods", 110.0, 0.0),
        ("capacity", "ephemeral-storage", storage, 0.0),
        ("allocatable", "cpu", 4.0, 0.0),
        ("allocatable", "memory", 8.0 * GI - 100.0 * MI, 0.0),
        ("allocatable", "pods", 110.0, 0.0),
        // 10 % of the capacity: upstream multiplies by a float32 percentage, so allow 1 KiB.
        ("allocatable", "ephemeral-storage", storage * 0.9, 1024.0),
    ];
    for (which, resource, want, tolerance) in expected {
        let map = if which == "capacity" { &status.capacity } else { &status.allocatable };
        let q = map.as_ref().and_then(|m| m.get(resource)).with_context(|| format!("{which} lacks {resource}: {map:?}"))?;
        let got = crate::quantity::value(&q.0).with_context(|| format!("{which}.{resource} {:?} is not a quantity", q.0))?;
        ensure!((got - want).abs() <= tolerance, "{which}.{resource} is {:?} ({got}), expected {want}", q.0);
    }
    Ok(())
}

/// Ready=True with reason KubeletReady, and the three pressure conditions False with upstream's
/// reasons and both timestamps. Catches a node that never reports Ready or omits a condition.
fn node_becomes_ready(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        let node = env.wait_ready(READY).await?;
        let conds = node.status.and_then(|s| s.conditions).unwrap_or_default();
        let get = |t: &str| conds.iter().find(|c| c.type_ == t).cloned();
        let ready = get("Ready").context("no Ready condition")?;
        ensure!(ready.reason.as_deref() == Some("KubeletReady"), "Ready reason {:?}", ready.reason);
        for (t, reason) in [
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
        ] {
            let c = get(t).with_context(|| format!("no {t} condition"))?;
            ensure!(c.status == "False", "{t} is {}", c.status);
            ensure!(c.reason.as_deref() == Some(reason), "{t} reason {:?}", c.reason);
            ensure!(c.last_heartbeat_time.is_some() && c.last_transition_time.is_some(), "{t} without times");
        }
        env.stop().await
    })
}

/// The runtime dies: Ready=False (KubeletNotReady) while the agent keeps running, and Ready=True
/// again once the runtime is back. Catches a canned Ready and an agent that exits with its runtime.
fn runtime_not_ready(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let mut env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(READY).await?;
        // The runtime goes away: the agent must report NotReady, not crash.
        env.runtime
            .fake_cri_process()
            .map(|p| p.kill())
            .context("runtime-not-ready needs a runtime process the harness started")?
            .await?;
        let node = kube_wait::node_condition(&env.client, NODE, "Ready", "False", READY).await?;
        let ready = node
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .context("no Ready condition")?;
        ensure!(ready.reason.as_deref() == Some("KubeletNotReady"), "Ready=False reason {:?}", ready.reason);
        ensure!(env.agent.process().is_running(), "the agent exited when the runtime went away");
        // And back: the runtime restarts, the node is Ready again.
        if let Some(p) = env.runtime.fake_cri_process() {
            p.restart().await?;
        }
        kube_wait::node_condition(&env.client, NODE, "Ready", "True", READY).await?;
        env.stop().await
    })
}

/// `GET /healthz` on the agent's healthz port inside node-a: (status code, body).
async fn healthz(ctx: &CaseCtx) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = ctx.world.host(NODE)?;
    let mut s = node.tcp_connect(std::net::SocketAddr::from(([127, 0, 0, 1], 10248))).await?;
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await?;
    let code = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).with_context(|| format!("no status line in {raw:?}"))?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

async fn wait_healthz(ctx: &CaseCtx, code: u16, timeout: Duration) -> anyhow::Result<String> {
    let what = format!("node-a's /healthz to answer {code}");
    Ok(harness::wait::wait_for(&what, timeout, || async {
        match healthz(ctx).await {
            Ok((c, body)) if c == code => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await?)
}

/// The runtime answers every call 2.5 s late, so a relist of the node takes 5 s: past the
/// (compressed) 1 s relist threshold the node goes NotReady with upstream's
/// "PLEG is not healthy: pleg was last seen active … ago; threshold is 1s", the sync loop stops,
/// and /healthz fails with upstream's syncloop check once max(2 × syncFrequency, minimum) = 4 s
/// have passed; when the runtime is fast again both recover. Catches a canned /healthz and a
/// node that stays Ready while its agent cannot see the runtime.
fn relist_stall(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "syncFrequency: 2s\nnodekit:\n  plegRelistThreshold: 1s\n  syncLoopHealthMinimum: 2s\n").await?;
        env.wait_ready(READY).await?;
        let body = wait_healthz(&ctx, 200, READY).await?;
        ensure!(body == "ok", "healthy /healthz answered {body:?}");
        let dir = env.runtime.state_dir().context("this case drives fake-cri's fault controls")?;
        std::fs::write(dir.join("faults.json"), r#"{"rpc_latency_ms": 2500}"#)?;
        let node = kube_wait::node_condition(&env.client, NODE, "Ready", "False", READY).await?;
        let ready = node.status.and_then(|s| s.conditions).unwrap_or_default().into_iter().find(|c| c.type_ == "Ready").context("no Ready")?;
        let msg = ready.message.unwrap_or_default();
        ensure!(
            msg.starts_with("PLEG is not healthy: pleg was last seen active ") && msg.ends_with(" ago; threshold is 1s"),
            "Ready=False message {msg:?}"
        );
        let body = wait_healthz(&ctx, 500, READY).await?;
        ensure!(body.contains("[-]syncloop failed: reason withheld") && body.contains("healthz check failed"), "failing /healthz answered {body:?}");
        std::fs::write(dir.join("faults.json"), "{}")?;
        kube_wait::node_condition(&env.client, NODE, "Ready", "True", READY).await?;
        wait_healthz(&ctx, 200, READY).await?;
        env.stop().await
    })
}
