//! The kubelet API end to end: the fake API server, fake-cri and the agent in fresh namespaces
//! (as e2e_smoke), a pod that prints lines, and HTTPS calls with a client certificate issued by
//! a test CA (and without one: 401).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::{enter_namespaces, wait_for, workload_bin};
use tokio_util::sync::CancellationToken;

const NODE: &str = "node-a";

/// A test CA and a client certificate it issued (PEM cert, PEM key), the CA written to `ca_path`.
fn client_certificate(ca_path: &Path) -> Result<(String, String)> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "test-ca");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca_key = rcgen::KeyPair::generate()?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key)?;
    std::fs::write(ca_path, ca.pem())?;
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new())?;
    client.distinguished_name.push(rcgen::DnType::CommonName, "system:kube-apiserver");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate()?;
    let cert = client.signed_by(&key, &ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// HTTPS to the kubelet API, trusting its self-signed certificate.
struct Kubelet {
    addr: SocketAddr,
    with_cert: tokio_rustls::TlsConnector,
    without_cert: tokio_rustls::TlsConnector,
}

impl Kubelet {
    fn new(addr: SocketAddr, serving_cert: &Path, client: &(String, String)) -> Result<Kubelet> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(serving_cert)? {
            roots.add(c?)?;
        }
        let builder = || {
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots.clone()))
        };
        let chain = vec![CertificateDer::from_pem_slice(client.0.as_bytes())?];
        let key = PrivateKeyDer::from_pem_slice(client.1.as_bytes())?;
        let with_cert = builder()?.with_client_auth_cert(chain, key)?;
        let without_cert = builder()?.with_no_client_auth();
        Ok(Kubelet {
            addr,
            with_cert: tokio_rustls::TlsConnector::from(Arc::new(with_cert)),
            without_cert: tokio_rustls::TlsConnector::from(Arc::new(without_cert)),
        })
    }

    async fn send(&self, cert: bool, method: &str, path: &str) -> Result<http::Response<hyper::body::Incoming>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let connector = if cert { &self.with_cert } else { &self.without_cert };
        let tls = connector.connect(ServerName::IpAddress(self.addr.ip().into()), tcp).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let req = http::Request::builder().method(method).uri(path).header("host", "kubelet").body(Empty::<Bytes>::new())?;
        Ok(sender.send_request(req).await?)
    }

    async fn call(&self, cert: bool, method: &str, path: &str) -> Result<(u16, String)> {
        let resp = self.send(cert, method, path).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn get(&self, path: &str) -> Result<(u16, String)> {
        self.call(true, "GET", path).await
    }

    async fn get_ok(&self, path: &str) -> Result<String> {
        let (status, body) = self.get(path).await?;
        ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(body)
    }
}

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

struct Agent {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<node_agent::Result<()>>,
    kubelet_api: SocketAddr,
}

async fn start_agent(dir: &Path, kubeconfig: &Path, socket: &Path, ca: &Path) -> Result<Agent> {
    let cfg = dir.join("kubelet.yaml");
    std::fs::write(&cfg, config(ca))?;
    let flags = <node_agent::cli::Flags as clap::Parser>::try_parse_from([
        "node-agent".to_string(),
        format!("--config={}", cfg.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--node-name={NODE}"),
        format!("--container-runtime-endpoint=unix://{}", socket.display()),
        format!("--root-dir={}", dir.join("root").display()),
        "--node-ip=127.0.0.1".into(),
        "--pod-cidr=10.244.1.0/24".into(),
        "--healthz-bind-address=127.0.0.1:0".into(),
    ])?;
    let (settings, healthz) = flags.settings()?;
    let cancel = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (c, kc) = (cancel.clone(), kubeconfig.to_path_buf());
    let task = tokio::spawn(async move {
        node_agent::agent::run(settings, &kc, healthz, c, move |l| {
            let _ = tx.send(l);
        })
        .await
    });
    let listening = tokio::time::timeout(Duration::from_secs(20), rx).await?.context("agent stopped before listening")?;
    let kubelet_api = listening.kubelet_api.context("the kubelet API is not served")?;
    Ok(Agent { cancel, task, kubelet_api })
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
    let _ = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
    let dir = tempfile::Builder::new().prefix("kubelet-api").tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let server = fake_apiserver::Server::start(fake_apiserver::Config::with_listen("127.0.0.1:0")).await?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let socket = dir.path().join("cri.sock");
    let cri = fake_cri::FakeCri::start(fake_cri::Config::new(&socket, dir.path().join("cri-state"), &workload_bin())).await?;
    let ca = dir.path().join("client-ca.pem");
    let client = client_certificate(&ca)?;
    let agent = start_agent(dir.path(), &kubeconfig, &socket, &ca).await?;
    let k = Kubelet::new(agent.kubelet_api, &dir.path().join("root/pki/kubelet.crt"), &client)?;

    let api = node_agent::agent::client_from_kubeconfig(&kubeconfig).await?;
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

    agent.cancel.cancel();
    agent.task.await??;
    cri.shutdown().await?;
    server.shutdown().await;
    Ok(())
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
