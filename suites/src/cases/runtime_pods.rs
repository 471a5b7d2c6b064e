//! Runtime cases: version and status, pod sandbox lifecycle, listing and idempotency.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use k8s_cri::v1 as api;
use tonic::Code;

use super::{Env, NODE, timing};
use crate::context::CaseCtx;
use crate::cri::{PodSandboxState, container, expect_code, labels};

/// A sandbox id no runtime has (64 hex digits, like real ids).
pub(crate) const MISSING: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub(crate) async fn version_and_status(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let v = e.cri.rt.version(api::VersionRequest { version: "v1".into() }).await.context("Version")?.into_inner();
    ensure!(v.version == "0.1.0", "Version.version (the kubelet API version) should be 0.1.0: {v:?}");
    ensure!(v.runtime_api_version == "v1", "runtime_api_version should be v1: {v:?}");
    ensure!(!v.runtime_name.is_empty() && !v.runtime_version.is_empty(), "runtime name and version: {v:?}");
    let st = e.cri.rt.status(api::StatusRequest { verbose: false }).await.context("Status")?.into_inner();
    let conds = st.status.map(|s| s.conditions).unwrap_or_default();
    for want in ["RuntimeReady", "NetworkReady"] {
        let c = conds.iter().find(|c| c.r#type == want);
        ensure!(c.is_some_and(|c| c.status), "condition {want} should be true: {conds:?}");
    }
    Ok(())
}

pub(crate) async fn sandbox_lifecycle(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let before = jiff::Timestamp::now().as_nanosecond() as i64;
    let pod = e.cri.pod("lifecycle")?.label("app", "lifecycle").annotation("note", "kept");
    let t = Instant::now();
    let id = e.cri.run_pod(&pod).await?;
    timing(ctx, "RunPodSandbox", t.elapsed());
    let st = e.cri.pod_status(&id).await.context("PodSandboxStatus")?;
    ensure!(st.id == id, "status of {id} names {}", st.id);
    ensure!(st.state == PodSandboxState::SandboxReady as i32, "a new sandbox is READY: {st:?}");
    ensure!(st.metadata == pod.config.metadata, "metadata: {:?} vs {:?}", st.metadata, pod.config.metadata);
    ensure!(st.labels.get("app").map(String::as_str) == Some("lifecycle"), "labels: {:?}", st.labels);
    ensure!(st.annotations.get("note").map(String::as_str) == Some("kept"), "annotations: {:?}", st.annotations);
    ensure!(st.created_at >= before - 1_000_000_000, "created_at {} is before the call ({before})", st.created_at);
    // ListPodSandbox answers the same attributes.
    let listed = e.cri.list_pods(api::PodSandboxFilter { id: id.clone(), ..Default::default() }).await?;
    let [sb] = listed.as_slice() else { anyhow::bail!("ListPodSandbox by id: {listed:?}") };
    ensure!(sb.metadata == st.metadata && sb.state == st.state && sb.created_at == st.created_at, "ListPodSandbox: {sb:?} vs {st:?}");
    ensure!(
        sb.labels.get("app") == st.labels.get("app") && sb.annotations.get("note") == st.annotations.get("note"),
        "ListPodSandbox labels and annotations: {sb:?}"
    );
    let ip = e.cri.pod_ip(&id).await?;
    if e.cri.is_scoped() {
        // An external runtime's pod network is its own.
        ensure!(!ip.is_unspecified() && !ip.is_loopback() && !ip.is_broadcast(), "pod IP {ip} is not a pod address");
    } else {
        let cidr = ctx.world.host(NODE)?.pod_cidr().context("node-a has a pod CIDR")?;
        ensure!(cidr.contains(ip) && ip != cidr.nth(1), "pod IP {ip} should be a pod address of {cidr}");
    }

    let t = Instant::now();
    e.cri.stop_pod(&id).await.context("StopPodSandbox")?;
    timing(ctx, "StopPodSandbox", t.elapsed());
    let st = e.cri.pod_status(&id).await.context("PodSandboxStatus after stop")?;
    ensure!(st.state == PodSandboxState::SandboxNotready as i32, "a stopped sandbox is NOTREADY: {st:?}");
    let t = Instant::now();
    e.cri.remove_pod(&id).await.context("RemovePodSandbox")?;
    timing(ctx, "RemovePodSandbox", t.elapsed());
    expect_code(e.cri.pod_status(&id).await, Code::NotFound, "PodSandboxStatus of a removed sandbox")?;
    let listed = e.cri.list_pods(api::PodSandboxFilter { id: id.clone(), ..Default::default() }).await?;
    ensure!(listed.is_empty(), "a removed sandbox is still listed: {listed:?}");
    Ok(())
}

fn ids(v: &[api::PodSandbox]) -> Vec<String> {
    let mut ids: Vec<String> = v.iter().map(|p| p.id.clone()).collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn state(s: PodSandboxState) -> Option<api::PodSandboxStateValue> {
    Some(api::PodSandboxStateValue { state: s as i32 })
}

pub(crate) async fn sandbox_list_filters(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let a = e.cri.run_pod(&e.cri.pod("list-a")?.label("tier", "front")).await?;
    let b = e.cri.run_pod(&e.cri.pod("list-b")?.label("tier", "back")).await?;
    e.cri.stop_pod(&b).await.context("StopPodSandbox")?;

    let all = e.cri.list_pods(Default::default()).await?;
    ensure!(ids(&all) == sorted(vec![a.clone(), b.clone()]), "unfiltered list: {all:?}");
    let by_id = e.cri.list_pods(api::PodSandboxFilter { id: a.clone(), ..Default::default() }).await?;
    ensure!(ids(&by_id) == [a.clone()], "by id: {by_id:?}");
    let ready = e.cri.list_pods(api::PodSandboxFilter { state: state(PodSandboxState::SandboxReady), ..Default::default() }).await?;
    ensure!(ids(&ready) == [a.clone()], "READY: {ready:?}");
    let notready =
        e.cri.list_pods(api::PodSandboxFilter { state: state(PodSandboxState::SandboxNotready), ..Default::default() }).await?;
    ensure!(ids(&notready) == [b.clone()], "NOTREADY: {notready:?}");
    let back = e.cri.list_pods(api::PodSandboxFilter { label_selector: labels(&[("tier", "back")]), ..Default::default() }).await?;
    ensure!(ids(&back) == [b.clone()], "label tier=back: {back:?}");
    let none = e.cri.list_pods(api::PodSandboxFilter { label_selector: labels(&[("tier", "none")]), ..Default::default() }).await?;
    ensure!(none.is_empty(), "label tier=none: {none:?}");
    let both = e
        .cri
        .list_pods(api::PodSandboxFilter {
            label_selector: labels(&[("tier", "front")]),
            state: state(PodSandboxState::SandboxNotready),
            ..Default::default()
        })
        .await?;
    ensure!(both.is_empty(), "label tier=front and NOTREADY: {both:?}");
    let item = all.iter().find(|p| p.id == a).context("sandbox a listed")?;
    ensure!(item.metadata.as_ref().map(|m| m.name.as_str()) == Some("list-a"), "listed metadata: {item:?}");
    ensure!(item.labels.get("tier").map(String::as_str) == Some("front"), "listed labels: {item:?}");
    Ok(())
}

pub(crate) async fn sandbox_idempotent(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let id = e.cri.run_pod(&e.cri.pod("idem")?).await?;
    e.cri.stop_pod(&id).await.context("first StopPodSandbox")?;
    e.cri.stop_pod(&id).await.context("second StopPodSandbox of a stopped sandbox")?;
    e.cri.remove_pod(&id).await.context("first RemovePodSandbox")?;
    e.cri.remove_pod(&id).await.context("second RemovePodSandbox of a removed sandbox")?;
    // As containerd: stopping an unknown sandbox is NotFound, removing one succeeds.
    expect_code(e.cri.stop_pod(MISSING).await, Code::NotFound, "StopPodSandbox of an unknown id")?;
    e.cri.remove_pod(MISSING).await.context("RemovePodSandbox of an unknown id")?;
    expect_code(e.cri.pod_status(MISSING).await, Code::NotFound, "PodSandboxStatus of an unknown id")?;
    Ok(())
}

/// RemovePodSandbox of a READY sandbox with a running container stops and removes both.
pub(crate) async fn sandbox_remove_running(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("remove-running")?;
    let sid = e.cri.run_pod(&pod).await?;
    let cid = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    e.cri.remove_pod(&sid).await.context("RemovePodSandbox of a READY sandbox")?;
    expect_code(e.cri.pod_status(&sid).await, Code::NotFound, "PodSandboxStatus after removal")?;
    expect_code(e.cri.status(&cid).await, Code::NotFound, "ContainerStatus of a container of a removed sandbox")?;
    let left = e.cri.list(api::ContainerFilter { pod_sandbox_id: sid.clone(), ..Default::default() }).await?;
    ensure!(left.is_empty(), "containers of a removed sandbox are still listed: {left:?}");
    Ok(())
}
