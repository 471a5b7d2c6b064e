//! The kubelet API end to end: the fake API server, fake-cri and the agent in fresh namespaces
//! (as e2e_smoke), a pod that prints lines, and HTTPS calls with a client certificate issued by
//! a test CA (and without one: 401).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use support::kubelet::{Kubelet, NODE, Stack};
use support::{enter_namespaces, wait_for};

fn config(ca: &Path) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 0
authentication:
  x509:
    clientCAFile: {}
authorization:
  mode: AlwaysAllow
nodeLeaseDurationSeconds: 4
nodeStatusUpdateFrequency: 500ms
nodeStatusReportFrequency: 5s
maxPods: 20
nodekit:
  runtimeRelistPeriod: 200ms
  apiRequestTimeout: 3s
  nodeSize:
    cpu: \"2\"
    memory: 2Gi
    ephemeralStorage: 64Gi
    pids: 100000
",
        ca.display()
    )
}

fn pod(name: &str, restart: &str, args: &[&str]) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "restartPolicy": restart, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": fake_cri::WORKLOAD_IMAGE, "args": args,
            "readinessProbe": {"exec": {"command": ["/workload", "exit", "--code=0"]}, "periodSeconds": 1}
        }]}
    }))?)
}

/// `<RFC3339 with 9 fractional digits>Z <text>`: the text, if the line has that form.
fn timestamped(line: &str) -> Option<(jiff::Timestamp, &str)> {
    let (ts, text) = line.split_once(' ')?;
    let frac = ts.strip_suffix('Z')?.rsplit_once('.')?.1;
    (frac.len() == 9 && frac.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
    Some((ts.parse().ok()?, text))
}

async fn logs_and_errors(k: &Kubelet) -> Result<()> {
    let base = "/containerLogs/default/logger/main";
    let all = wait_for("both lines in the log", Duration::from_secs(20), || async {
        let body = k.get_ok(base).await.ok()?;
        (body.contains("hello-out\n") && body.contains("hello-err\n")).then_some(body)
    })
    .await?;
    ensure!(!all.contains(" stdout F "), "the CRI prefix is stripped: {all:?}");
    let tail = k.get_ok(&format!("{base}?tailLines=1")).await?;
    ensure!(tail.lines().count() == 1 && all.ends_with(&tail), "tailLines=1 gave {tail:?} of {all:?}");
    let stamped = k.get_ok(&format!("{base}?timestamps=true")).await?;
    let texts: Vec<&str> = stamped.lines().map(|l| timestamped(l).map(|(_, t)| t)).collect::<Option<_>>().context(stamped.clone())?;
    ensure!(texts.contains(&"hello-out") && texts.contains(&"hello-err"), "{stamped:?}");
    ensure!(k.get_ok(&format!("{base}?limitBytes=3")).await?.len() == 3, "limitBytes=3");

    let (status, body) = k.get("/containerLogs/default/nope/main").await?;
    ensure!(status == 404 && body == "pod \"nope\" does not exist", "{status} {body}");
    let (status, body) = k.get("/containerLogs/default/logger/other").await?;
    ensure!(status == 404 && body == "container \"other\" not found in pod \"logger\"", "{status} {body}");
    let (status, body) = k.get(&format!("{base}?previous=true")).await?;
    ensure!(status == 400 && body == "previous terminated container \"main\" in pod \"logger\" not found", "{status} {body}");
    let (status, body) = k.get(&format!("{base}?tailLines=-1")).await?;
    ensure!(status == 422, "{status} {body}");
    Ok(())
}

/// Follows a container that writes a second line seconds after the first: the first line comes
/// at once, the second within a second of being written, and the stream ends after the exit.
async fn follow(k: &Kubelet, pods: &Api<Pod>) -> Result<()> {
    pods.create(&PostParams::default(), &pod("later", "Never", &["exit", "--code=0", "--after=6s"])?).await?;
    let base = "/containerLogs/default/later/main";
    wait_for("the first line of later", Duration::from_secs(20), || async {
        k.get_ok(base).await.ok().filter(|b| b.contains("started")).map(|_| ())
    })
    .await?;
    let resp = k.send(true, "GET", &format!("{base}?follow=true&timestamps=true")).await?;
    ensure!(resp.status() == 200, "follow: {}", resp.status());
    let mut body = resp.into_body();
    let mut seen = String::new();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let Some(frame) = tokio::time::timeout(left, body.frame()).await.context("follow did not end")? else { break };
        let Some(data) = frame?.into_data().ok() else { continue };
        let received = jiff::Timestamp::now();
        seen.push_str(&String::from_utf8_lossy(&data));
        for line in String::from_utf8_lossy(&data).lines() {
            let (written, text) = timestamped(line).context(line.to_string())?;
            if text.starts_with("workload exit: exiting") {
                let late = received.duration_since(written);
                ensure!(late < jiff::SignedDuration::from_secs(1), "the new line came {late:?} after it was written");
            }
        }
    }
    ensure!(seen.contains("workload exit: started"), "{seen:?}");
    ensure!(seen.contains("workload exit: exiting with code 0"), "the line written later was not followed: {seen:?}");
    Ok(())
}

async fn stats_and_metrics(k: &Kubelet) -> Result<()> {
    let summary: serde_json::Value = serde_json::from_str(&k.get_ok("/stats/summary").await?)?;
    ensure!(summary["node"]["nodeName"] == NODE, "{summary}");
    ensure!(summary["node"]["memory"]["workingSetBytes"].is_u64(), "{summary}");
    let pods = summary["pods"].as_array().context("pods")?;
    let logger = pods.iter().find(|p| p["podRef"]["name"] == "logger").context("logger in the summary")?;
    ensure!(logger["podRef"]["namespace"] == "default" && logger["podRef"]["uid"].is_string(), "{logger}");
    ensure!(logger["containers"][0]["name"] == "main" && logger["containers"][0]["memory"]["workingSetBytes"].is_u64(), "{logger}");
    ensure!(logger["cpu"]["usageCoreNanoSeconds"].is_u64(), "{logger}");

    let resource = k.get_ok("/metrics/resource").await?;
    for want in [
        "# TYPE node_cpu_usage_seconds_total counter",
        "node_memory_working_set_bytes ",
        "container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"logger\"} ",
        "container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"logger\"} ",
        "container_start_time_seconds{container=\"main\",namespace=\"default\",pod=\"logger\"} ",
        "pod_memory_working_set_bytes{namespace=\"default\",pod=\"logger\"} ",
        "scrape_error 0",
    ] {
        ensure!(resource.lines().any(|l| l.starts_with(want)), "no {want:?} in /metrics/resource:\n{resource}");
    }
    let probes = wait_for("a counted readiness probe", Duration::from_secs(10), || async {
        let text = k.get_ok("/metrics/probes").await.ok()?;
        text.contains("pod=\"logger\"").then_some(text)
    })
    .await?;
    ensure!(probes.contains("probe_type=\"Readiness\",result=\"successful\"}"), "{probes}");
    let metrics = k.get_ok("/metrics").await?;
    for want in ["kubelet_running_pods ", "kubelet_running_containers{container_state=\"running\"} ", "kubelet_pod_start_duration_seconds_count "] {
        ensure!(metrics.lines().any(|l| l.starts_with(want)), "no {want:?} in /metrics");
    }
    Ok(())
}

async fn the_rest(k: &Kubelet, ca: &Path) -> Result<()> {
    ensure!(k.get_ok("/healthz").await? == "ok", "healthz");
    for path in ["/healthz", "/pods", "/containerLogs/default/logger/main"] {
        let (status, body) = k.call(false, "GET", path).await?;
        ensure!(status == 401 && body == "Unauthorized", "{path} without a certificate: {status} {body}");
    }
    let list: serde_json::Value = serde_json::from_str(&k.get_ok("/pods").await?)?;
    ensure!(list["kind"] == "PodList" && list["apiVersion"] == "v1", "{list}");
    let names: Vec<&str> = list["items"].as_array().context("items")?.iter().filter_map(|p| p["metadata"]["name"].as_str()).collect();
    ensure!(names.contains(&"logger"), "{names:?}");
    let configz: serde_json::Value = serde_json::from_str(&k.get_ok("/configz").await?)?;
    let kc = &configz["kubeletconfig"];
    ensure!(kc["authentication"]["x509"]["clientCAFile"] == ca.display().to_string().as_str(), "{configz}");
    ensure!(kc["maxPods"] == 20 && kc["nodeLeaseDurationSeconds"] == 4, "{configz}");
    let (status, body) = k.call(true, "POST", "/run/default/logger/main?cmd=/workload+hostname").await?;
    ensure!(status == 200 && body.trim() == "logger", "/run: {status} {body:?}");
    let (status, body) = k.get("/exec/default/logger/main?command=ls").await?;
    ensure!(status == 400 && body == "you must specify at least 1 of stdin, stdout, stderr", "/exec without streams: {status} {body}");
    let (status, body) = k.get("/exec/default/nope/main?command=ls&output=1").await?;
    ensure!(status == 404 && body == "pod does not exist", "/exec of an unknown pod: {status} {body}");
    let (status, body) = k.get("/exec/default/logger/nope?command=ls&output=1").await?;
    ensure!(status == 404 && body == "container not found (\"nope\")", "/exec of an unknown container: {status} {body}");
    let (status, body) = k.get("/portForward/default/nope").await?;
    ensure!(status == 404 && body == "pod does not exist", "/portForward of an unknown pod: {status} {body}");
    Ok(())
}

async fn scenario() -> Result<()> {
    let stack = Stack::start("kubelet-api", fake_apiserver::Config::with_listen("127.0.0.1:0"), config).await?;
    let (agent, ca) = (&stack.agent, stack.ca_path.clone());
    let k = stack.kubelet(&stack.ca.client("system:kube-apiserver", None)?)?;

    let api = node_agent::agent::client_from_kubeconfig(&stack.kubeconfig).await?;
    let nodes: Api<Node> = Api::all(api.clone());
    let port = wait_for("the node's kubelet endpoint", Duration::from_secs(20), || async {
        nodes.get_opt(NODE).await.ok().flatten()?.status?.daemon_endpoints?.kubelet_endpoint.map(|e| e.port)
    })
    .await?;
    ensure!(port == i32::from(agent.kubelet_api.port()), "daemonEndpoints {port}, bound {}", agent.kubelet_api);
    let pods: Api<Pod> = Api::namespaced(api.clone(), "default");
    pods.create(&PostParams::default(), &pod("logger", "Always", &["print", "--stdout=hello-out", "--stderr=hello-err", "--then-sleep=1h"])?)
        .await?;

    logs_and_errors(&k).await?;
    the_rest(&k, &ca).await?;
    stats_and_metrics(&k).await?;
    follow(&k, &pods).await?;
    stack.stop().await
}

#[test]
fn kubelet_api() {
    if !enter_namespaces("kubelet_api") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "node_agent=info".into()))
        .with_test_writer()
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if let Err(e) = rt.block_on(scenario()) {
        panic!("scenario failed: {e:#}");
    }
}
