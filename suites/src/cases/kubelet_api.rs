//! Area `kubelet-api`: what a client reaches through the API server on the node's kubelet —
//! container logs (tail, limit, timestamps, follow, upstream's refusals), exec with stdin and
//! the exit code in the status, port-forward, the node proxy's metrics with upstream's names —
//! and the kubelet refusing an anonymous caller. Every call goes the way kubectl's does: the
//! API server over HTTPS, then the kubelet API with the API server's client certificate, then
//! the runtime's streaming server.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{AttachParams, LogParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "kubelet_api_rotation.rs"]
mod rotation;

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait;
use crate::pods::{self, container, listening_probe};

pub fn cases() -> Vec<Case> {
    let case = |id, body| Case { id, labels: &[Label::Conformance], needs: &[], topology: Topology::SingleNode, runtimes: Runtimes::All, body };
    let mut all = vec![
        case("kubelet-api/logs-through-the-api-server", logs as fn(CaseCtx) -> BodyFuture),
        case("kubelet-api/logs-follow-streams-until-the-container-exits", logs_follow),
        case("kubelet-api/exec-stdin-stdout-and-exit-code", exec),
        case("kubelet-api/port-forward", port_forward),
        case("kubelet-api/node-proxy-metrics-and-anonymous-refused", metrics_and_anonymous),
        case("kubelet-api/resource-metrics-feed-the-metrics-api", metrics_api),
        case("kubelet-api/logs-rotated-and-followed-across-rotations", rotation::logs_rotated),
    ];
    // It reads the rotated files in the agent's container log layout under its root directory.
    if let Some(rotated) = all.iter_mut().find(|c| c.id == "kubelet-api/logs-rotated-and-followed-across-rotations") {
        rotated.labels = &[Label::Conformance, Label::ReferenceAgent];
    }
    all
}

const READY: Duration = Duration::from_secs(30);

/// A secure single-node world (the API server reaches the kubelet over mutual TLS) with a
/// Ready node.
async fn env(ctx: &CaseCtx) -> anyhow::Result<NodeEnv> {
    let env = NodeEnv::start_secure(ctx, "").await?;
    env.wait_ready(READY).await?;
    Ok(env)
}

/// Creates pod `name` with one container `args` and waits until it is Ready.
async fn running(env: &NodeEnv, name: &str, args: &[&str], extra: serde_json::Value) -> anyhow::Result<Pod> {
    let mut c = container(name, args);
    pods::merge(&mut c, extra);
    pods::create(&env.client, &pods::pod(name, NODE, vec![c], json!({}))?).await?;
    kube_wait::pod(&env.client, "default", name, "Ready", READY, |p| kube_wait::pod_condition_status(p, "Ready").filter(|s| s == "True").map(|_| p.clone())).await
}

/// `pods/log` with tailLines, limitBytes and timestamps cut and mark the container's log as
/// upstream does; `previous` without a previous instance and an unknown container are refused
/// with upstream's messages. Catches an API server or kubelet that ignores the options (the
/// whole log comes back), answers from the wrong container, or turns refusals into empty logs.
fn logs(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        // An unterminated last line reaches the log when the stream ends (as containerd
        // writes it), so the container has finished before the log is read.
        let spec = pods::pod("logger", NODE, vec![container("logger", &["print", "--stdout", "first line", "--partial", "second"])], json!({"restartPolicy": "Never"}))?;
        pods::create(&env.client, &spec).await?;
        kube_wait::pod(&env.client, "default", "logger", "Succeeded", READY, |p| (kube_wait::phase(p) == "Succeeded").then_some(())).await?;
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let all = api.logs("logger", &LogParams::default()).await?;
        ensure!(all == "first line\nsecond", "the whole log: {all:?}");
        let tail = api.logs("logger", &LogParams { tail_lines: Some(1), ..Default::default() }).await?;
        ensure!(tail == "second", "tailLines=1 gave {tail:?}");
        let limited = api.logs("logger", &LogParams { limit_bytes: Some(5), ..Default::default() }).await?;
        ensure!(limited == "first", "limitBytes=5 gave {limited:?}");
        let stamped = api.logs("logger", &LogParams { timestamps: true, ..Default::default() }).await?;
        let first = stamped.lines().next().unwrap_or("");
        let (ts, rest) = first.split_once(' ').with_context(|| format!("timestamps=true gave {stamped:?}"))?;
        ensure!(ts.parse::<jiff::Timestamp>().is_ok() && rest == "first line", "timestamps=true gave {stamped:?}");
        let previous = api.logs("logger", &LogParams { previous: true, ..Default::default() }).await;
        let msg = refusal(previous, 400)?;
        ensure!(msg == "previous terminated container \"logger\" in pod \"logger\" not found", "previous: {msg:?}");
        let unknown = api.logs("logger", &LogParams { container: Some("nope".into()), ..Default::default() }).await;
        let msg = refusal(unknown, 400)?;
        ensure!(msg == "container nope is not valid for pod logger", "unknown container: {msg:?}");
        env.stop().await
    })
}

/// The message of an API error with `code`.
fn refusal<T: std::fmt::Debug>(r: Result<T, kube::Error>, code: u16) -> anyhow::Result<String> {
    match r {
        Err(kube::Error::Api(e)) if e.code == code => Ok(e.message),
        other => anyhow::bail!("expected a {code} refusal, got {other:?}"),
    }
}

/// `follow=true` delivers a line the container writes seconds after the request, then ends
/// when the container exits. Catches a follow that returns the log as it was (no later line)
/// or never ends.
fn logs_follow(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let spec = pods::pod("once", NODE, vec![container("once", &["exit", "--code", "0", "--after", "3s"])], json!({"restartPolicy": "Never"}))?;
        pods::create(&env.client, &spec).await?;
        kube_wait::pod(&env.client, "default", "once", "running", READY, |p| (kube_wait::phase(p) == "Running").then_some(())).await?;
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let asked = Instant::now();
        let mut lines = api.log_stream("once", &LogParams { follow: true, ..Default::default() }).await?.lines();
        let mut seen = Vec::new();
        let mut last_at = Duration::ZERO;
        let follow = async {
            while let Some(l) = lines.try_next().await? {
                last_at = asked.elapsed();
                seen.push(l);
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(20), follow).await.context("the followed log did not end after the container exited")??;
        ensure!(seen.len() == 2 && seen[1].contains("exiting with code 0"), "followed lines {seen:?}");
        ensure!(last_at >= Duration::from_millis(1500), "the exit line came {last_at:?} after the request: not followed, read at once");
        env.stop().await
    })
}

/// Exec through `pods/exec`: stdin reaches the command and its output comes back; the exit
/// code of a failing command is in the status channel as upstream's NonZeroExitCode with an
/// ExitCode cause. Catches a lost stdin, a missing or zero exit code, or output on the wrong
/// stream.
fn exec(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        running(&env, "web", &["netexec", "--http-port", "8080"], json!({"readinessProbe": listening_probe(8080)})).await?;
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let mut cat = api.exec("web", ["/workload", "cat", "/dev/stdin"], &AttachParams::default().stdin(true).stderr(true)).await?;
        let mut stdin = cat.stdin().context("stdin")?;
        let mut stdout = cat.stdout().context("stdout")?;
        let status = cat.take_status().context("status")?;
        stdin.write_all(b"through stdin\n").await?;
        stdin.shutdown().await?;
        drop(stdin);
        let mut out = String::new();
        step("the command's output to end after stdin closed", stdout.read_to_string(&mut out)).await??;
        ensure!(out == "through stdin\n", "cat of stdin printed {out:?}");
        let status = step("the exec status", status).await?.context("no status")?;
        ensure!(status.status.as_deref() == Some("Success"), "status {status:?}");
        step("the exec connection to end", cat.join()).await??;

        let mut fail = api.exec("web", ["/workload", "exit", "--code", "7"], &AttachParams::default().stderr(true)).await?;
        let status = step("the status of a failing command", fail.take_status().context("status")?).await?.context("no status")?;
        let cause = status.details.as_ref().and_then(|d| d.causes.as_ref()).and_then(|c| c.first()).cloned();
        ensure!(
            status.status.as_deref() == Some("Failure") && status.reason.as_deref() == Some("NonZeroExitCode")
                && cause.as_ref().is_some_and(|c| c.reason.as_deref() == Some("ExitCode") && c.message.as_deref() == Some("7")),
            "exit 7 gave status {status:?}"
        );
        step("the exec connection to end", fail.join()).await??;
        env.stop().await
    })
}

/// `fut`, or an error naming `what` after 10 s.
async fn step<T>(what: &str, fut: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(Duration::from_secs(10), fut).await.map_err(|_| anyhow::anyhow!("waited 10 s for {what}"))
}

/// `pods/portforward`: an HTTP request through the forwarded port reaches the container's
/// server inside the pod's network namespace. Catches a forward into the wrong namespace (the
/// node's) or a stream that carries nothing.
fn port_forward(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        running(&env, "web", &["netexec", "--http-port", "8080"], json!({"readinessProbe": listening_probe(8080)})).await?;
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let mut pf = api.portforward("web", &[8080]).await?;
        let mut s = pf.take_stream(8080).context("stream for 8080")?;
        let forward_error = pf.take_error(8080).context("error channel for 8080")?;
        s.write_all(b"GET /hostname HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n").await?;
        let mut resp = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut resp)).await.context("no answer through the forward")??;
        let resp = String::from_utf8_lossy(&resp).into_owned();
        drop(s);
        if !(resp.starts_with("HTTP/1.1 200") && resp.ends_with("\r\n\r\nweb")) {
            let err = tokio::time::timeout(Duration::from_secs(2), forward_error).await.ok().flatten();
            let ended = tokio::time::timeout(Duration::from_secs(2), pf.join()).await;
            anyhow::bail!("answer through the forward: {resp:?}; error channel: {err:?}; forwarder: {ended:?}");
        }
        pf.abort();
        env.stop().await
    })
}

/// `nodes/proxy` reaches the kubelet's metrics with upstream's names and labels (resource
/// metrics per container, probe results per pod), and the kubelet refuses a caller without a
/// client certificate with 401. Catches renamed metrics (metrics-server and dashboards find
/// nothing) and a kubelet open to anyone on the network.
fn metrics_and_anonymous(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        running(&env, "web", &["netexec", "--http-port", "8080"], json!({"readinessProbe": listening_probe(8080)})).await?;
        let get = |path: String| {
            let client = env.client.clone();
            async move { client.request_text(http::Request::get(path).body(Vec::new())?).await.map_err(anyhow::Error::from) }
        };
        let resource = get(format!("/api/v1/nodes/{NODE}/proxy/metrics/resource")).await?;
        for name in ["# TYPE node_cpu_usage_seconds_total counter", "node_memory_working_set_bytes ", "container_memory_working_set_bytes{container=\"web\",namespace=\"default\",pod=\"web\"}", "container_cpu_usage_seconds_total{container=\"web\",namespace=\"default\",pod=\"web\"}"] {
            ensure!(resource.contains(name), "/metrics/resource lacks {name:?}:\n{resource}");
        }
        let probes = get(format!("/api/v1/nodes/{NODE}/proxy/metrics/probes")).await?;
        let line = "prober_probe_total{container=\"web\",namespace=\"default\",pod=\"web\",";
        ensure!(probes.lines().any(|l| l.starts_with(line) && l.contains("probe_type=\"Readiness\"") && l.contains("result=\"successful\"")), "/metrics/probes lacks {line}…:\n{probes}");
        let metrics = get(format!("/api/v1/nodes/{NODE}/proxy/metrics")).await?;
        ensure!(metrics.lines().any(|l| l == "kubelet_running_pods 1"), "/metrics lacks kubelet_running_pods 1");
        let node: k8s_openapi::api::core::v1::Node = Api::all(env.client.clone()).get(NODE).await?;
        let port = node.status.and_then(|s| s.daemon_endpoints?.kubelet_endpoint).map(|e| e.port).context("daemonEndpoints")?;
        let ip = ctx.world.host(NODE)?.ip();
        let mut anonymous = kube::Config::new(format!("https://{ip}:{port}").parse()?);
        anonymous.accept_invalid_certs = true;
        let client = kube::Client::try_from(anonymous)?;
        let r = client.request_text(http::Request::get("/pods").body(Vec::new())?).await;
        ensure!(matches!(&r, Err(kube::Error::Api(e)) if e.code == 401), "an anonymous GET /pods on the kubelet gave {r:?}");
        env.stop().await
    })
}

/// The API server's `metrics.k8s.io` (what `kubectl top` reads) reports the node's and the
/// pod's usage from the kubelet's resource metrics: a CPU rate over a window and a working set.
/// Catches resource metrics a scraper cannot use (wrong names or labels, no timestamps, a
/// counter that does not grow), so `kubectl top` says "metrics not available".
fn metrics_api(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        running(&env, "web", &["netexec", "--http-port", "8080"], json!({"readinessProbe": listening_probe(8080)})).await?;
        let get = |path: &'static str| {
            let client = env.client.clone();
            async move {
                let text = client.request_text(http::Request::get(path).body(Vec::new()).ok()?).await.ok()?;
                serde_json::from_str::<serde_json::Value>(&text).ok()
            }
        };
        let node = harness::wait::wait_for("NodeMetrics of node-a", READY, || get("/apis/metrics.k8s.io/v1beta1/nodes/node-a")).await?;
        ensure!(node["kind"] == "NodeMetrics" && node["usage"]["cpu"].is_string() && node["usage"]["memory"].is_string(), "{node}");
        ensure!(node["window"].as_str().is_some_and(|w| w != "0s"), "a CPU rate needs a window: {node}");
        let pod = harness::wait::wait_for("PodMetrics of web", READY, || get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web")).await?;
        let c = &pod["containers"][0];
        ensure!(c["name"] == "web" && c["usage"]["cpu"].is_string() && c["usage"]["memory"].as_str().is_some_and(|m| m != "0"), "{pod}");
        env.stop().await
    })
}
