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
            labels: &[Label::Conformance],
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
    ]
}

const READY: Duration = Duration::from_secs(20);

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
        for (name, map) in [("capacity", &status.capacity), ("allocatable", &status.allocatable)] {
            let map = map.clone().unwrap_or_default();
            for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
                ensure!(map.contains_key(r), "{name} lacks {r}: {map:?}");
            }
        }
        let info = status.node_info.clone().context("node has no nodeInfo")?;
        ensure!(info.kubelet_version.starts_with('v'), "kubeletVersion {:?}", info.kubelet_version);
        ensure!(info.operating_system == "linux", "operatingSystem {:?}", info.operating_system);
        ensure!(!info.kernel_version.is_empty(), "kernelVersion empty");
        // containerRuntimeVersion is <runtime_name>://<runtime_version> from CRI Version.
        let expected_prefix = match ctx.runtime()?.name() {
            "fake-cri" => "fake-cri://",
            "containerd" => "containerd://",
            _ => "",
        };
        ensure!(
            info.container_runtime_version.starts_with(expected_prefix) && info.container_runtime_version.contains("://"),
            "containerRuntimeVersion {:?}",
            info.container_runtime_version
        );
        let spec = node.spec.clone().unwrap_or_default();
        let cidr = host.pod_cidr().map(|c| c.to_string());
        ensure!(spec.pod_cidr == cidr, "podCIDR {:?}, expected {cidr:?}", spec.pod_cidr);
        env.stop().await
    })
}

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
