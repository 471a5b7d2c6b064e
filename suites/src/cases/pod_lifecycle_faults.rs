//! Runtime failures seen through the real agent (fake-cri's fault controls): a failing image
//! pull (ErrImagePull, then ImagePullBackOff), a failing CreateContainer
//! (CreateContainerError), a failing RunPodSandbox (FailedCreatePodSandBox, retried) and a
//! container the runtime kills (restarted with its exit code). Each fault is lifted afterwards
//! and the pod must recover, so an agent that gives up, or never retries, fails too.

use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::{ContainerStateWaiting, Pod};
use serde_json::json;

use super::{START, env};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait::{self, phase};
use crate::pods::{self, IMAGE, container, container_status};

/// Writes fake-cri's fault file (`<state-dir>/faults.json`, re-read when it changes).
fn set_faults(env: &NodeEnv, faults: serde_json::Value) -> anyhow::Result<()> {
    let dir = env.runtime.state_dir().context("these cases drive fake-cri's fault controls")?;
    std::fs::write(dir.join("faults.json"), faults.to_string()).context("writing faults.json")
}

fn waiting(p: &Pod, c: &str) -> Option<ContainerStateWaiting> {
    container_status(p, c)?.state.as_ref()?.waiting.clone()
}

pub(super) async fn wait_waiting(env: &NodeEnv, name: &str, reason: &str) -> anyhow::Result<ContainerStateWaiting> {
    kube_wait::pod(&env.client, "default", name, &format!("container c waiting with reason {reason}"), START, |p| {
        waiting(p, "c").filter(|w| w.reason.as_deref() == Some(reason))
    })
    .await
}

/// Waits until the pod's events include one with `reason` whose message satisfies `msg`.
pub(super) async fn wait_event(env: &NodeEnv, pod: &str, reason: &str, msg: impl Fn(&str) -> bool) -> anyhow::Result<(String, String)> {
    let what = format!("a {reason} event for pod {pod}");
    let found = harness::wait::wait_for(&what, START, || async {
        let evs = pods::events_for(&env.client, pod).await.map_err(|e| vec![("error".to_string(), e.to_string())])?;
        let seen: Vec<(String, String)> = evs.iter().map(|e| (e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default())).collect();
        evs.into_iter()
            .find(|e| e.reason.as_deref() == Some(reason) && msg(e.message.as_deref().unwrap_or("")))
            .map(|e| (e.type_.unwrap_or_default(), e.message.unwrap_or_default()))
            .ok_or(seen)
    })
    .await?;
    Ok(found)
}

pub(super) async fn wait_running(env: &NodeEnv, name: &str) -> anyhow::Result<Pod> {
    kube_wait::pod(&env.client, "default", name, "Running", START, |p| {
        (phase(p) == "Running" && container_status(p, "c")?.state.as_ref()?.running.is_some()).then(|| p.clone())
    })
    .await
}

/// PullImage fails: the container waits with ErrImagePull (the runtime's error), then
/// ImagePullBackOff with upstream's `Back-off pulling image "…"`; the events are upstream's
/// (Pulling, Failed "Failed to pull image …", Failed "Error: ErrImagePull", BackOff). Once the
/// registry answers again the pod runs. Catches an agent that reports a pull failure as
/// ContainerCreating, never backs off, or never retries.
pub fn image_pull_failure(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // Upstream's image back-off (10 s doubling to 300 s), compressed to 2 s doubling to 4 s.
        let env = NodeEnv::start(&ctx, "nodekit:\n  imagePullBackOffBase: 2s\n  imagePullBackOffMax: 4s\n").await?;
        env.wait_ready(START).await?;
        set_faults(&env, json!({"pull_error": {IMAGE: "registry unavailable"}}))?;
        let mut c = container("c", &["pause"]);
        c["imagePullPolicy"] = json!("Always");
        pods::create(&env.client, &pods::pod("pull", NODE, vec![c], json!({}))?).await?;
        let w = wait_waiting(&env, "pull", "ErrImagePull").await?;
        // The error alone, as gRPC prints it (upstream's evalCRIPullErr); the event adds the image.
        let error = format!("rpc error: code = Unknown desc = failed to pull and unpack image \"{IMAGE}\": registry unavailable");
        ensure!(w.message.as_deref() == Some(error.as_str()), "ErrImagePull message {:?}, expected {error:?}", w.message);
        let w = wait_waiting(&env, "pull", "ImagePullBackOff").await?;
        let want = format!("Back-off pulling image \"{IMAGE}\"");
        ensure!(w.message.as_deref() == Some(want.as_str()), "ImagePullBackOff message {:?}, expected {want:?}", w.message);
        let (ty, m) = wait_event(&env, "pull", "Failed", |m| m.starts_with(&format!("Failed to pull image \"{IMAGE}\": "))).await?;
        ensure!(ty == "Warning" && m == format!("Failed to pull image \"{IMAGE}\": {error}"), "pull failure event {ty} {m:?}");
        wait_event(&env, "pull", "Failed", |m| m == "Error: ErrImagePull").await?;
        let (ty, _) = wait_event(&env, "pull", "BackOff", |m| m == want).await?;
        ensure!(ty == "Normal", "the image back-off event is {ty}, upstream records it as Normal");
        wait_event(&env, "pull", "Pulling", |m| m == format!("Pulling image \"{IMAGE}\"")).await?;
        set_faults(&env, json!({}))?;
        wait_running(&env, "pull").await?;
        // Upstream's Pulled text, with the size the runtime reports for the image.
        let (_, m) = wait_event(&env, "pull", "Pulled", |m| m.starts_with(&format!("Successfully pulled image \"{IMAGE}\" in "))).await?;
        let size = m
            .strip_suffix(" bytes.")
            .and_then(|r| r.rsplit_once("including waiting). Image size: "))
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .with_context(|| format!("Pulled event without upstream's `(… including waiting). Image size: N bytes.`: {m:?}"))?;
        ensure!(size > 0, "Pulled event reports an image size of 0: {m:?}");
        env.stop().await
    })
}

/// CreateContainer fails: the container waits with CreateContainerError carrying the runtime's
/// status message alone, a Warning `Failed` event says `Error: <message>` (upstream shows
/// `status.Message()` here), restartCount stays 0 (nothing ran); once the runtime creates it
/// again the pod runs. Catches an agent that counts a failed create as a restart, drops or
/// rewords the runtime's message, or stops retrying.
pub fn create_container_error(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        set_faults(&env, json!({"create_error": {"c": "injected create failure"}}))?;
        pods::create(&env.client, &pods::pod("create", NODE, vec![container("c", &["pause"])], json!({}))?).await?;
        let w = wait_waiting(&env, "create", "CreateContainerError").await?;
        let runtime_says = "failed to create containerd container: injected create failure";
        ensure!(w.message.as_deref() == Some(runtime_says), "CreateContainerError message {:?}, expected {runtime_says:?}", w.message);
        let (ty, _) = wait_event(&env, "create", "Failed", |m| m == format!("Error: {runtime_says}")).await?;
        ensure!(ty == "Warning", "the create failure event is {ty}");
        let p = kube_wait::pod(&env.client, "default", "create", "status", START, |p| Some(p.clone())).await?;
        ensure!(pods::restarts(&p, "c") == 0, "a container that was never created has restartCount {}", pods::restarts(&p, "c"));
        set_faults(&env, json!({}))?;
        let p = wait_running(&env, "create").await?;
        ensure!(pods::restarts(&p, "c") == 0, "restartCount {} after a create failure", pods::restarts(&p, "c"));
        env.stop().await
    })
}

/// RunPodSandbox fails: a Warning FailedCreatePodSandBox event `Failed to create pod sandbox: rpc
/// error: code = Unknown desc = …` with the runtime's message (upstream prints the gRPC error), the pod stays Pending with its container ContainerCreating, and
/// the agent retries: once the runtime can make the sandbox the pod runs. Catches an agent that
/// marks the pod Failed, swallows the error, or never retries the sandbox.
pub fn sandbox_failure(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        set_faults(&env, json!({"sandbox_error": {"sandbox": "injected sandbox failure"}}))?;
        pods::create(&env.client, &pods::pod("sandbox", NODE, vec![container("c", &["pause"])], json!({}))?).await?;
        let (ty, m) = wait_event(&env, "sandbox", "FailedCreatePodSandBox", |m| m.starts_with("Failed to create pod sandbox: ")).await?;
        let want = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"sandbox\": injected sandbox failure";
        ensure!(ty == "Warning" && m == want, "sandbox failure event {ty} {m:?}, expected {want:?}");
        let p = kube_wait::pod(&env.client, "default", "sandbox", "status", START, |p| Some(p.clone())).await?;
        ensure!(phase(&p) == "Pending", "phase {} while the sandbox cannot be created", phase(&p));
        let w = waiting(&p, "c");
        ensure!(w.as_ref().and_then(|w| w.reason.as_deref()) == Some("ContainerCreating"), "container state while the sandbox fails: {w:?}");
        set_faults(&env, json!({}))?;
        wait_running(&env, "sandbox").await?;
        env.stop().await
    })
}

/// The runtime kills the running container (SIGKILL after 500 ms): it is restarted under
/// restartPolicy Always, lastState.terminated has exit code 137 and reason Error, and a
/// restarted container that is no longer killed keeps running. Catches an agent that misses an
/// exit it did not cause, or reports the wrong exit code.
pub fn runtime_kills_container(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        set_faults(&env, json!({"crash_after_ms": {"c": 500}}))?;
        pods::create(&env.client, &pods::pod("crash", NODE, vec![container("c", &["pause"])], json!({}))?).await?;
        let p = kube_wait::pod(&env.client, "default", "crash", "restartCount ≥ 1", START, |p| (pods::restarts(p, "c") >= 1).then(|| p.clone())).await?;
        set_faults(&env, json!({}))?;
        let last = container_status(&p, "c").and_then(|s| s.last_state.as_ref()).and_then(|s| s.terminated.clone()).context("no lastState.terminated after a restart")?;
        ensure!(last.exit_code == 137 && last.reason.as_deref() == Some("Error"), "lastState.terminated {last:?}");
        // Held running past the crash delay once the fault is lifted (a restart that happened
        // while the fault was still set may need one more).
        let p = wait_running(&env, "crash").await?;
        let before = pods::restarts(&p, "c");
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            let now = kube_wait::pod(&env.client, "default", "crash", "status", START, |p| Some(p.clone())).await?;
            ensure!(pods::restarts(&now, "c") <= before + 1, "the container kept restarting after the fault was lifted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        env.stop().await
    })
}
