//! Area `pod-lifecycle`: phases per restart policy, condition order, init containers, crash
//! back-off, graceful termination with preStop, postStart hooks (exec, http, failing), configMap
//! and secret volumes, projected ServiceAccount tokens, deletion, exit codes, and restart adoption.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait::{self, phase, pod_condition_status};
use crate::pods::{self, container, container_status, init_status, restarts};

#[path = "pod_lifecycle_conditions.rs"]
mod conditions;
#[path = "pod_lifecycle_faults.rs"]
mod faults;
#[path = "pod_lifecycle_security.rs"]
mod security;
#[path = "pod_lifecycle_tokens.rs"]
mod tokens;
#[path = "pod_lifecycle_volumes.rs"]
mod volumes;
#[path = "pod_lifecycle_runtime_class.rs"]
mod runtime_class;
#[path = "pod_lifecycle_service_env.rs"]
mod service_env;
#[path = "pod_lifecycle_etc_hosts.rs"]
mod etc_hosts;
#[path = "pod_lifecycle_host_path.rs"]
mod host_path;
#[path = "pod_lifecycle_pull_secrets.rs"]
mod pull_secrets;

pub fn cases() -> Vec<Case> {
    let case = |id, labels: &'static [Label], runtimes, body| Case {
        id,
        labels,
        needs: &[],
        topology: Topology::SingleNode,
        runtimes,
        body,
    };
    const C: &[Label] = &[Label::Conformance];
    // The compressed image-pull back-off.
    const EXT: &[Label] = &[Label::Conformance, Label::NodekitExtensions];
    // The agent's UnsupportedField warning; its container log layout.
    const REF: &[Label] = &[Label::Conformance, Label::ReferenceAgent];
    vec![
        case("pod-lifecycle/never-succeeded", C, Runtimes::All, never_succeeded as fn(CaseCtx) -> BodyFuture),
        case("pod-lifecycle/never-failed-exit-code", C, Runtimes::All, never_failed),
        case("pod-lifecycle/onfailure-restarts-then-succeeds", C, Runtimes::All, onfailure),
        case("pod-lifecycle/always-running-status", C, Runtimes::All, always_running),
        case("pod-lifecycle/condition-order", C, Runtimes::All, conditions::condition_order),
        case("pod-lifecycle/condition-order-init", C, Runtimes::All, conditions::condition_order_init),
        case("pod-lifecycle/readiness-gates", C, Runtimes::FakeOnly, conditions::readiness_gates),
        case("pod-lifecycle/native-sidecar", C, Runtimes::All, conditions::native_sidecar),
        case("pod-lifecycle/security-context-reaches-the-runtime", REF, Runtimes::All, security::security_context),
        case("pod-lifecycle/init-failing-never", C, Runtimes::All, init_failing_never),
        case("pod-lifecycle/init-failing-always", C, Runtimes::All, init_failing_always),
        case("pod-lifecycle/backoff-doubling-and-cap", &[Label::Conformance, Label::Slow, Label::NodekitExtensions], Runtimes::All, backoff),
        case("pod-lifecycle/graceful-termination-prestop", REF, Runtimes::All, graceful_prestop),
        case("pod-lifecycle/poststart-exec-hook", C, Runtimes::All, poststart_exec),
        case("pod-lifecycle/poststart-http-hook", C, Runtimes::All, poststart_http),
        case("pod-lifecycle/poststart-failure-kills-and-restarts", C, Runtimes::All, poststart_failure),
        case("pod-lifecycle/configmap-and-secret-volumes-and-env", C, Runtimes::All, configmap_secret_volumes),
        case("pod-lifecycle/projected-service-account-token", C, Runtimes::All, tokens::projected_token),
        case("pod-lifecycle/service-environment-variables", C, Runtimes::All, service_env::service_variables),
        case("pod-lifecycle/kubelet-managed-etc-hosts", C, Runtimes::All, etc_hosts::managed_etc_hosts),
        case("pod-lifecycle/host-path-types-checked", C, Runtimes::All, host_path::types_checked),
        case("pod-lifecycle/image-pull-secrets", C, Runtimes::All, pull_secrets::pull_secrets_used),
        case("pod-lifecycle/image-pull-policy-never", C, Runtimes::All, pull_secrets::never_pulls),
        case("pod-lifecycle/image-pull-node-credentials", C, Runtimes::All, pull_secrets::node_credentials_used),
        case("pod-lifecycle/volume-updates-reach-the-running-pod", C, Runtimes::All, volumes::updates_reach_running_pod),
        case("pod-lifecycle/runtime-class-selects-the-handler", C, Runtimes::All, runtime_class::handler_is_used),
        case("pod-lifecycle/runtime-class-runs-under-crun-and-runc", C, Runtimes::Sealed, runtime_class::crun_and_runc),
        case("pod-lifecycle/deletion-completes-promptly", C, Runtimes::All, deletion_prompt),
        case("pod-lifecycle/image-pull-failure-backs-off", EXT, Runtimes::FakeOnly, faults::image_pull_failure),
        case("pod-lifecycle/create-container-error", C, Runtimes::FakeOnly, faults::create_container_error),
        case("pod-lifecycle/sandbox-failure-retried", C, Runtimes::FakeOnly, faults::sandbox_failure),
        case("pod-lifecycle/runtime-kills-container", C, Runtimes::FakeOnly, faults::runtime_kills_container),
        case("pod-lifecycle/agent-restart-adopts", &[Label::Conformance, Label::Disruptive], Runtimes::All, agent_restart),
    ]
}

const READY: Duration = Duration::from_secs(20);
pub(super) const START: Duration = Duration::from_secs(20);

pub(super) async fn env(ctx: &CaseCtx) -> anyhow::Result<NodeEnv> {
    let env = NodeEnv::start(ctx, "").await?;
    env.wait_ready(READY).await?;
    Ok(env)
}

fn terminated(p: &Pod, c: &str) -> Option<(i32, String)> {
    let t = container_status(p, c)?.state.as_ref()?.terminated.as_ref()?;
    Some((t.exit_code, t.reason.clone().unwrap_or_default()))
}

fn never_succeeded(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let p = pods::pod("ok", NODE, vec![container("c", &["exit", "--code", "0"])], json!({"restartPolicy": "Never"}))?;
        pods::create(&env.client, &p).await?;
        let pod = kube_wait::pod(&env.client, "default", "ok", "phase Succeeded", START, |p| (phase(p) == "Succeeded").then(|| p.clone())).await?;
        let (code, reason) = terminated(&pod, "c").context("no terminated state")?;
        ensure!(code == 0 && reason == "Completed", "terminated {code} {reason:?}");
        ensure!(restarts(&pod, "c") == 0, "restarted under Never");
        env.stop().await
    })
}

fn never_failed(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let p = pods::pod("bad", NODE, vec![container("c", &["exit", "--code", "3"])], json!({"restartPolicy": "Never"}))?;
        pods::create(&env.client, &p).await?;
        let pod = kube_wait::pod(&env.client, "default", "bad", "phase Failed", START, |p| (phase(p) == "Failed").then(|| p.clone())).await?;
        let (code, reason) = terminated(&pod, "c").context("no terminated state")?;
        ensure!(code == 3 && reason == "Error", "terminated {code} {reason:?}");
        ensure!(restarts(&pod, "c") == 0, "restarted under Never");
        env.stop().await
    })
}

fn onfailure(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let failing = pods::pod("fails", NODE, vec![container("c", &["exit", "--code", "1"])], json!({"restartPolicy": "OnFailure"}))?;
        let ok = pods::pod("succeeds", NODE, vec![container("c", &["exit", "--code", "0"])], json!({"restartPolicy": "OnFailure"}))?;
        pods::create(&env.client, &failing).await?;
        pods::create(&env.client, &ok).await?;
        let pod = kube_wait::pod(&env.client, "default", "succeeds", "phase Succeeded", START, |p| (phase(p) == "Succeeded").then(|| p.clone())).await?;
        ensure!(restarts(&pod, "c") == 0, "exit 0 restarted under OnFailure");
        let pod = kube_wait::pod(&env.client, "default", "fails", "two restarts", START, |p| (restarts(p, "c") >= 2).then(|| p.clone())).await?;
        ensure!(phase(&pod) != "Failed" && phase(&pod) != "Succeeded", "OnFailure pod reached phase {}", phase(&pod));
        let last = container_status(&pod, "c").and_then(|c| c.last_state.as_ref()).and_then(|s| s.terminated.as_ref()).context("no lastState.terminated")?;
        ensure!(last.exit_code == 1 && last.reason.as_deref() == Some("Error"), "lastState {last:?}");
        env.stop().await
    })
}

fn always_running(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        // Ready only once netexec listens (without a readiness probe the pod is Ready when the
        // container starts, before its server accepts connections).
        let mut web = container("c", &["netexec", "--http-port", "8080"]);
        pods::merge(&mut web, json!({"readinessProbe": pods::listening_probe(8080)}));
        let p = pods::pod("web", NODE, vec![web], json!({}))?;
        pods::create(&env.client, &p).await?;
        let pod = kube_wait::pod(&env.client, "default", "web", "Ready", START, |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        ensure!(phase(&pod) == "Running", "phase {}", phase(&pod));
        let st = pod.status.clone().context("no status")?;
        let node_ip = ctx.world.host(NODE)?.ip().to_string();
        ensure!(st.host_ip.as_deref() == Some(node_ip.as_str()), "hostIP {:?}", st.host_ip);
        let pod_ip: std::net::Ipv4Addr = st.pod_ip.as_deref().context("no podIP")?.parse()?;
        let cidr = ctx.world.host(NODE)?.pod_cidr().context("node-a has no pod CIDR")?;
        ensure!(cidr.contains(pod_ip), "podIP {pod_ip} outside {cidr}");
        let cs = container_status(&pod, "c").context("no container status")?;
        ensure!(cs.ready && cs.started == Some(true), "ready {} started {:?}", cs.ready, cs.started);
        ensure!(cs.container_id.as_deref().is_some_and(|id| id.contains("://")), "containerID {:?}", cs.container_id);
        ensure!(!cs.image_id.is_empty(), "imageID empty");
        ensure!(cs.image == pods::IMAGE, "image {}", cs.image);
        ensure!(cs.state.as_ref().and_then(|s| s.running.as_ref()).and_then(|r| r.started_at.as_ref()).is_some(), "no startedAt");
        // The pod really serves: the node reaches its IP and reads the pod's hostname.
        let node = ctx.world.host(NODE)?;
        let mut s = node.tcp_connect(SocketAddr::from((pod_ip, 8080))).await?;
        s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        ensure!(body.ends_with("web") || body.trim_end().ends_with("web"), "GET /hostname answered {body:?}");
        env.stop().await
    })
}

fn init_failing_never(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let p = pods::pod(
            "init-never",
            NODE,
            vec![container("c", &["pause"])],
            json!({"restartPolicy": "Never", "initContainers": [container("init", &["exit", "--code", "1"])]}),
        )?;
        pods::create(&env.client, &p).await?;
        let pod = kube_wait::pod(&env.client, "default", "init-never", "phase Failed", START, |p| (phase(p) == "Failed").then(|| p.clone())).await?;
        let init = init_status(&pod, "init").context("no init status")?;
        let t = init.state.as_ref().and_then(|s| s.terminated.as_ref()).context("init not terminated")?;
        ensure!(t.exit_code == 1, "init exit code {}", t.exit_code);
        let app = container_status(&pod, "c").context("no app container status")?;
        ensure!(app.state.as_ref().and_then(|s| s.running.as_ref()).is_none(), "app container ran after a failed init");
        ensure!(pod_condition_status(&pod, "Initialized").as_deref() == Some("False"), "Initialized should be False");
        env.stop().await
    })
}

fn init_failing_always(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let p = pods::pod(
            "init-always",
            NODE,
            vec![container("c", &["pause"])],
            json!({"restartPolicy": "Always", "initContainers": [container("init", &["exit", "--code", "1"])]}),
        )?;
        pods::create(&env.client, &p).await?;
        let pod = kube_wait::pod(&env.client, "default", "init-always", "init restarted twice", START, |p| {
            init_status(p, "init").filter(|s| s.restart_count >= 2).map(|_| p.clone())
        })
        .await?;
        ensure!(phase(&pod) == "Pending", "phase {} while init keeps failing", phase(&pod));
        let app = container_status(&pod, "c").context("no app container status")?;
        let waiting = app.state.as_ref().and_then(|s| s.waiting.as_ref()).context("app container not waiting")?;
        ensure!(waiting.reason.as_deref() == Some("PodInitializing"), "app waiting reason {:?}", waiting.reason);
        env.stop().await
    })
}

fn backoff(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // Base 500 ms doubling to a 4 s cap (see fixtures::COMPRESSED).
        let env = env(&ctx).await?;
        let p = pods::pod("crash", NODE, vec![container("c", &["exit", "--code", "1"])], json!({}))?;
        pods::create(&env.client, &p).await?;
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let mut stream = watcher(api, watcher::Config::default().fields("metadata.name=crash")).applied_objects().boxed();
        // Time at which each restart count was first seen.
        let mut seen: Vec<(i32, Instant)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.last().is_none_or(|(n, _)| *n < 6) {
            let left = deadline.saturating_duration_since(Instant::now());
            let pod = tokio::time::timeout(left, stream.next()).await.context("timed out waiting for restarts")?.context("watch ended")??;
            let n = restarts(&pod, "c");
            if seen.last().is_none_or(|(m, _)| n > *m) {
                seen.push((n, Instant::now()));
            }
        }
        let gaps: Vec<f64> = seen.windows(2).map(|w| (w[1].1 - w[0].1).as_secs_f64()).collect();
        // Restart k+1 follows restart k after the back-off 0.5·2^k s (capped at 4 s) plus the
        // container's own (short) run.
        let expected = [1.0, 2.0, 4.0, 4.0];
        let tail: Vec<f64> = gaps.iter().rev().take(expected.len()).rev().copied().collect();
        let counts: Vec<i32> = seen.iter().map(|(n, _)| *n).collect();
        ensure!(counts.windows(2).all(|w| w[1] == w[0] + 1), "restart counts skipped values: {counts:?}");
        for (g, e) in tail.iter().zip(expected.iter().rev().take(tail.len()).rev()) {
            ensure!(*g >= e * 0.9, "a restart came after {g:.2}s, sooner than the {e}s back-off: gaps {gaps:?}");
            ensure!(*g <= e + 1.5, "a restart came after {g:.2}s, much later than the {e}s back-off: gaps {gaps:?}");
        }
        // Upstream records one BackOff Event series per container whose count climbs with every
        // back-off (the event recorder correlates the repeats), not one Event per back-off.
        let events = pods::events_for(&env.client, "crash").await?;
        let backoffs: Vec<_> = events.iter().filter(|e| e.reason.as_deref() == Some("BackOff")).collect();
        ensure!(backoffs.len() == 1, "{} BackOff Events for one container, expected one series: {backoffs:?}", backoffs.len());
        let b = backoffs[0];
        let m = b.message.as_deref().unwrap_or("");
        ensure!(b.type_.as_deref() == Some("Warning") && m.starts_with("Back-off restarting failed container c in pod crash_default("), "BackOff event {b:?}");
        ensure!(b.count.unwrap_or(0) >= 4, "the BackOff series counts {:?} after {} restarts", b.count, counts.last().unwrap_or(&0));
        env.stop().await
    })
}

/// Listens in the world root (10.77.0.1) for the preStop HTTP hook; returns when it was hit.
async fn prestop_listener(ctx: &CaseCtx, port: u16) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<(Instant, String)>>> {
    let root = ctx.world.root();
    let listener = root.tcp_listener(SocketAddr::from((root.ip(), port)))?;
    Ok(tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await?;
        let at = Instant::now();
        let mut buf = vec![0u8; 4096];
        let n = conn.read(&mut buf).await?;
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await?;
        Ok((at, String::from_utf8_lossy(&buf[..n]).into_owned()))
    }))
}

fn graceful_prestop(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let hook = prestop_listener(&ctx, 9099).await?;
        let root_ip = ctx.world.root().ip().to_string();
        let mut c = container("c", &["--ignore-sigterm", "pause"]);
        pods::merge(
            &mut c,
            json!({"lifecycle": {"preStop": {"httpGet": {"host": root_ip, "port": 9099, "path": "/prestop"}}}}),
        );
        let p = pods::pod("graceful", NODE, vec![c], json!({"terminationGracePeriodSeconds": 3}))?;
        pods::create(&env.client, &p).await?;
        kube_wait::pod(&env.client, "default", "graceful", "Running", START, |p| (phase(p) == "Running").then_some(())).await?;
        pods::wait_log_line(env.agent.root_dir(), "default", "graceful", "c", pods::SIGTERM_IGNORED, START).await?;
        let deleted_at = Instant::now();
        pods::delete(&env.client, "graceful", None).await?;
        let (hook_at, request) = tokio::time::timeout(Duration::from_secs(5), hook).await.context("preStop hook never called")???;
        ensure!(request.starts_with("GET /prestop"), "preStop request {request:?}");
        ensure!(hook_at.duration_since(deleted_at) < Duration::from_secs(2), "preStop came late");
        kube_wait::pod_gone(&env.client, "default", "graceful", Duration::from_secs(15)).await?;
        let took = deleted_at.elapsed();
        // The container ignores SIGTERM: it goes only when SIGKILLed at the end of the 3 s grace.
        ensure!(took >= Duration::from_millis(2800), "the pod went after {took:?}, before its 3 s grace period");
        ensure!(took <= Duration::from_secs(7), "the pod took {took:?} to go with a 3 s grace period");
        let events = pods::events_for(&env.client, "graceful").await?;
        ensure!(events.iter().any(|e| e.reason.as_deref() == Some("Killing")), "no Killing event");
        env.stop().await
    })
}

fn poststart_exec(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // The hook writes a file into an emptyDir; the readiness probe passes only once it is
        // there, so Ready proves the hook ran in the container.
        let env = env(&ctx).await?;
        let mut c = container("c", &["pause"]);
        pods::merge(
            &mut c,
            json!({
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "lifecycle": {"postStart": {"exec": {"command": ["/workload", "touch", "/data/poststart"]}}},
                "readinessProbe": {"exec": {"command": ["/workload", "check-file", "/data/poststart"]}, "periodSeconds": 1},
            }),
        );
        let p = pods::pod("hooked", NODE, vec![c], json!({"volumes": [{"name": "data", "emptyDir": {}}]}))?;
        pods::create(&env.client, &p).await?;
        let pod = kube_wait::pod(&env.client, "default", "hooked", "Ready", START, |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        ensure!(restarts(&pod, "c") == 0, "restartCount {}", restarts(&pod, "c"));
        let events = pods::events_for(&env.client, "hooked").await?;
        ensure!(!events.iter().any(|e| e.reason.as_deref() == Some("FailedPostStartHook")), "FailedPostStartHook for a passing hook");
        env.stop().await
    })
}

fn poststart_http(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let hook = prestop_listener(&ctx, 9098).await?;
        let root_ip = ctx.world.root().ip().to_string();
        let mut c = container("c", &["pause"]);
        pods::merge(&mut c, json!({"lifecycle": {"postStart": {"httpGet": {"host": root_ip, "port": 9098, "path": "/poststart"}}}}));
        let p = pods::pod("hooked", NODE, vec![c], json!({}))?;
        let created = Instant::now();
        pods::create(&env.client, &p).await?;
        let (_, request) = tokio::time::timeout(START, hook).await.context("postStart hook never called")???;
        ensure!(request.starts_with("GET /poststart"), "postStart request {request:?}");
        let pod = kube_wait::pod(&env.client, "default", "hooked", "Running", START, |p| (phase(p) == "Running").then(|| p.clone())).await?;
        ensure!(restarts(&pod, "c") == 0, "restartCount {} after a passing hook ({:?})", restarts(&pod, "c"), created.elapsed());
        env.stop().await
    })
}

fn poststart_failure(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // A failing hook: FailedPostStartHook, the container is killed ("FailedPostStartHook")
        // and started again by its restart policy.
        let env = env(&ctx).await?;
        let mut c = container("c", &["pause"]);
        pods::merge(&mut c, json!({"lifecycle": {"postStart": {"exec": {"command": ["/workload", "exit", "--code", "1"]}}}}));
        let p = pods::pod("hooked", NODE, vec![c], json!({"terminationGracePeriodSeconds": 1}))?;
        pods::create(&env.client, &p).await?;
        kube_wait::pod(&env.client, "default", "hooked", "restartCount ≥ 1", START, |p| (restarts(p, "c") >= 1).then_some(())).await?;
        let events = pods::events_for(&env.client, "hooked").await?;
        let has = |reason: &str, message: &str| {
            events.iter().any(|e| e.reason.as_deref() == Some(reason) && e.message.as_deref() == Some(message))
        };
        ensure!(has("FailedPostStartHook", "PostStartHook failed"), "no FailedPostStartHook event: {events:?}");
        ensure!(has("Killing", "FailedPostStartHook"), "no Killing event for the hook failure: {events:?}");
        env.stop().await
    })
}

fn configmap_secret_volumes(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // Upstream's "consumable from pods in volume / via environment" cases, compressed: a
        // configMap (all keys) and a secret (one item, renamed) appear as files, and as
        // environment variables; the pod is Ready only when all hold the right content. Before
        // the configMap exists the pod waits (FailedMount).
        let env = env(&ctx).await?;
        let check = |path: &str, text: &str| json!({"exec": {"command": ["/workload", "check-file", path, "--contains", text]}});
        let mut c = container("c", &["pause"]);
        pods::merge(
            &mut c,
            json!({
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "sec", "mountPath": "/etc/sec"}],
                "readinessProbe": {"exec": {"command": ["/workload", "check-file", "/etc/cfg/data-1", "--contains", "value-1"]}, "periodSeconds": 1},
                "startupProbe": merge_probe(check("/etc/sec/new-path-data-2", "value-2")),
            }),
        );
        // A second container reads both objects through its environment (envFrom with a
        // prefix, a configMapKeyRef); its exec probe sees the container's environment.
        let mut e = container("env", &["pause"]);
        pods::merge(
            &mut e,
            json!({
                "envFrom": [{"secretRef": {"name": "sec"}, "prefix": "SEC_"}],
                "env": [{"name": "CFG_ONE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "data-1"}}}],
                "readinessProbe": {"exec": {"command": ["/workload", "check-file", "/proc/self/environ", "--contains", "CFG_ONE=value-1"]}, "periodSeconds": 1},
                "startupProbe": merge_probe(check("/proc/self/environ", "SEC_data-2=value-2")),
            }),
        );
        let spec = json!({"volumes": [
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400, "items": [{"key": "data-2", "path": "new-path-data-2"}]}},
        ]});
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), "default");
        let secret = serde_json::from_value(json!({"metadata": {"name": "sec"}, "stringData": {"data-1": "other", "data-2": "value-2"}}))?;
        secrets.create(&Default::default(), &secret).await?;
        pods::create(&env.client, &pods::pod("vols", NODE, vec![c, e], spec)?).await?;
        let evs = harness::wait::wait_for("a FailedMount event for the missing configMap", START, || async {
            let evs = pods::events_for(&env.client, "vols").await.ok()?;
            evs.into_iter().find(|e| e.reason.as_deref() == Some("FailedMount"))
        })
        .await?;
        let m = evs.message.unwrap_or_default();
        ensure!(m.contains(r#"volume "cfg""#) && m.contains(r#"configmap "cfg" not found"#), "FailedMount message {m:?}");
        let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(env.client.clone(), "default");
        let cm = serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"data-1": "value-1", "data-2": "value-2"}}))?;
        maps.create(&Default::default(), &cm).await?;
        let pod = kube_wait::pod(&env.client, "default", "vols", "Ready once both volumes hold their files", Duration::from_secs(30), |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        ensure!(restarts(&pod, "c") == 0 && restarts(&pod, "env") == 0, "restartCounts {} {}", restarts(&pod, "c"), restarts(&pod, "env"));
        env.stop().await
    })
}

/// A startup probe from `action` (checked every second, up to 30 times).
fn merge_probe(mut action: serde_json::Value) -> serde_json::Value {
    pods::merge(&mut action, json!({"periodSeconds": 1, "failureThreshold": 30}));
    action
}

fn deletion_prompt(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        // Ready only once netexec listens, which it does after installing its SIGTERM handler: a
        // container's first process ignores SIGTERM until it has one (it is its pid namespace's
        // init), so deleting it the moment it runs would wait out the whole 30 s.
        let mut c = container("c", &["netexec", "--http-port", "8080"]);
        pods::merge(&mut c, json!({"readinessProbe": pods::listening_probe(8080)}));
        let p = pods::pod("quick", NODE, vec![c], json!({"terminationGracePeriodSeconds": 30}))?;
        pods::create(&env.client, &p).await?;
        kube_wait::pod(&env.client, "default", "quick", "Ready", START, |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then_some(())
        })
        .await?;
        let t = Instant::now();
        pods::delete(&env.client, "quick", None).await?;
        // The container exits at once on SIGTERM, so deletion completes long before 30 s.
        kube_wait::pod_gone(&env.client, "default", "quick", Duration::from_secs(10)).await?;
        ensure!(t.elapsed() < Duration::from_secs(5), "deletion took {:?}", t.elapsed());
        env.stop().await
    })
}

fn agent_restart(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let mut env = env(&ctx).await?;
        let crash = pods::pod("crashy", NODE, vec![container("c", &["exit", "--code", "1", "--after", "300ms"])], json!({}))?;
        let p = pods::pod("steady", NODE, vec![container("c", &["pause"])], json!({}))?;
        pods::create(&env.client, &p).await?;
        pods::create(&env.client, &crash).await?;
        let before = kube_wait::pod(&env.client, "default", "steady", "Ready", START, |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        let crashed = kube_wait::pod(&env.client, "default", "crashy", "a restart", START, |p| (restarts(p, "c") >= 1).then(|| restarts(p, "c"))).await?;
        let id_before = container_status(&before, "c").and_then(|c| c.container_id.clone()).context("no containerID")?;
        env.agent.process().stop(Duration::from_secs(5)).await?;
        env.agent.process().restart().await?;
        // Wait until the restarted agent has written status again (its lease renewed after restart).
        let restarted_at = jiff::Timestamp::now();
        kube_wait::heartbeat_since(&env.client, NODE, restarted_at, READY).await?;
        let after = kube_wait::pod(&env.client, "default", "steady", "Ready", READY, |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        let id_after = container_status(&after, "c").and_then(|c| c.container_id.clone()).context("no containerID")?;
        ensure!(id_before == id_after, "the container was replaced across the agent restart: {id_before} → {id_after}");
        ensure!(restarts(&after, "c") == 0, "restartCount of the steady pod is {}", restarts(&after, "c"));
        let crashy = Api::<Pod>::namespaced(env.client.clone(), "default").get("crashy").await?;
        ensure!(restarts(&crashy, "c") >= crashed, "restartCount went back from {crashed} to {}", restarts(&crashy, "c"));
        env.stop().await
    })
}
