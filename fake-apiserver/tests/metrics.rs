//! metrics.k8s.io against a fake kubelet: a rustls HTTPS server on 127.0.0.1 whose
//! `/metrics/resource` counters move by a fixed amount per scrape (with timestamps 2 s apart),
//! so the usage the server computes is exact. Also the real kubectl's `top node|pod`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fake_apiserver::{Handle, resources};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// Node working set: 1536 MiB + 12 KiB.
const NODE_MEMORY: u64 = 1_610_625_024;
/// Container working set: 100 MiB + 4 KiB.
const APP_MEMORY: u64 = 104_861_696;

/// A kubelet serving only `/metrics/resource` over HTTPS with a self-signed certificate.
struct FakeKubelet {
    addr: SocketAddr,
    scrapes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The exposition of scrape `n`: node and container counters grow by 1 and 0.25 core-seconds
/// per scrape while timestamps advance by 2 s, i.e. 500m and 125m; `pending/app` is reported
/// as a kubelet would for a pod the API does not show as running.
fn exposition(base_ms: i64, n: u64) -> String {
    let ts = base_ms + 2000 * n as i64;
    let start = (base_ms / 1000 - 3600) as f64;
    let c = |pod: &str| format!("{{container=\"app\",namespace=\"default\",pod=\"{pod}\"}}");
    let mut s = String::new();
    s += "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n";
    s += "# TYPE container_cpu_usage_seconds_total counter\n";
    for pod in ["pending", "web"] {
        s += &format!("container_cpu_usage_seconds_total{} {} {ts}\n", c(pod), 10.0 + 0.25 * n as f64);
    }
    s += "# TYPE container_memory_working_set_bytes gauge\n";
    for pod in ["pending", "web"] {
        s += &format!("container_memory_working_set_bytes{} {APP_MEMORY} {ts}\n", c(pod));
        s += &format!("container_start_time_seconds{} {start:e}\n", c(pod));
    }
    s += &format!("# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {} {ts}\n", 100 + n);
    s += &format!("node_memory_working_set_bytes {NODE_MEMORY} {ts}\n");
    s += &format!("pod_cpu_usage_seconds_total{{namespace=\"default\",pod=\"web\"}} {} {ts}\n", 10.0 + 0.25 * n as f64);
    s += "# TYPE resource_scrape_error gauge\nresource_scrape_error 0\nscrape_error 0\n";
    s
}

async fn fake_kubelet() -> FakeKubelet {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scrapes = Arc::new(AtomicU64::new(0));
    let base_ms = jiff::Timestamp::now().as_millisecond();
    let counter = scrapes.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let resp = if req.uri().path() == "/metrics/resource" {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        http::Response::new(Full::new(Bytes::from(exposition(base_ms, n))))
                    } else {
                        let mut r = http::Response::new(Full::new(Bytes::from_static(b"404 page not found\n")));
                        *r.status_mut() = http::StatusCode::NOT_FOUND;
                        r
                    };
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    FakeKubelet { addr, scrapes, task }
}

/// GET `path` from the server; the status and the body as JSON.
async fn get(h: &Handle, path: &str, accept: &str) -> (u16, Value) {
    let tcp = TcpStream::connect(h.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path).header("host", "localhost").header("accept", accept).body(Empty::<Bytes>::new()).unwrap();
    let resp = send.send_request(req).await.unwrap();
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))))
}

async fn get_json(h: &Handle, path: &str) -> (u16, Value) {
    get(h, path, "application/json").await
}

fn node(name: &str, port: u16) -> Value {
    json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "tier": "metrics"}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}})
}

/// Creates pod `name` on `node`, running when `running`.
fn pod(h: &Handle, name: &str, node: &str, running: bool) {
    let p = json!({"metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}});
    let created = h.api().create(resources::PODS, "default", p).unwrap();
    if running {
        let mut v = created.value.clone();
        v["status"] = json!({"phase": "Running"});
        h.api().update(resources::PODS, "default", name, v, Some("status")).unwrap();
    }
}

/// A port on 127.0.0.1 nothing listens on.
async fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

async fn wait_ok(h: &Handle, path: &str) -> Value {
    common::wait_for(path, Duration::from_secs(20), || async {
        let (code, v) = get_json(h, path).await;
        (code == 200).then_some(v)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_pod_metrics_from_the_kubelet() {
    let kubelet = fake_kubelet().await;
    let h = common::start_with(|c| {
        c.metrics_server = true;
        c.metric_resolution = Duration::from_millis(200);
    })
    .await;

    let (_, apis) = get_json(&h, "/apis").await;
    let group = apis["groups"].as_array().unwrap().iter().find(|g| g["name"] == "metrics.k8s.io").expect("metrics.k8s.io in /apis");
    assert_eq!(group["preferredVersion"], json!({"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}));
    let (code, list) = get_json(&h, "/apis/metrics.k8s.io/v1beta1").await;
    assert_eq!((code, &list["groupVersion"]), (200, &json!("metrics.k8s.io/v1beta1")));
    assert_eq!(list["resources"][0], json!({"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]}));
    assert_eq!(list["resources"][1], json!({"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}));

    let (code, st) = get_json(&h, "/apis/metrics.k8s.io/v1beta1/nodes/n1").await;
    assert_eq!((code, st["message"].as_str()), (404, Some("node \"n1\" not found")));

    h.api().create(resources::NODES, "", node("n1", kubelet.addr.port())).unwrap();
    h.api().create(resources::NODES, "", node("ghost", closed_port().await)).unwrap();
    pod(&h, "web", "n1", true);
    pod(&h, "pending", "n1", false);
    pod(&h, "quiet", "n1", true);

    let n = wait_ok(&h, "/apis/metrics.k8s.io/v1beta1/nodes/n1").await;
    assert!(kubelet.scrapes.load(Ordering::SeqCst) >= 2);
    assert_eq!((n["kind"].as_str(), n["apiVersion"].as_str()), (Some("NodeMetrics"), Some("metrics.k8s.io/v1beta1")));
    assert_eq!(n["metadata"]["labels"], json!({"kubernetes.io/hostname": "n1", "tier": "metrics"}));
    assert_eq!(n["usage"], json!({"cpu": "500m", "memory": "1572876Ki"}));
    assert_eq!(n["window"], "2s");
    assert!(n["timestamp"].as_str().unwrap().ends_with('Z') && n["metadata"]["creationTimestamp"].is_string(), "{n}");

    let p = wait_ok(&h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web").await;
    assert_eq!((p["kind"].as_str(), p["metadata"]["namespace"].as_str()), (Some("PodMetrics"), Some("default")));
    assert_eq!(p["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(p["containers"], json!([{"name": "app", "usage": {"cpu": "125m", "memory": "102404Ki"}}]));
    assert_eq!(p["window"], "2s");

    check_lists_and_errors(&h).await;
    check_kubectl(&h).await;
}

async fn check_lists_and_errors(h: &Handle) {
    let names = |v: &Value| -> Vec<String> { v["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect() };
    let (code, nodes) = get_json(h, "/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!((code, &nodes["kind"], &nodes["metadata"]), (200, &json!("NodeMetricsList"), &json!({})));
    assert_eq!(names(&nodes), ["n1"], "the node whose scrape fails is left out");
    assert!(nodes["items"][0].get("kind").is_none(), "list items carry no kind");
    let (_, sel) = get_json(h, "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=kubernetes.io%2Fhostname%3Dn1").await;
    assert_eq!(names(&sel), ["n1"]);
    let (_, none) = get_json(h, "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=tier%21%3Dmetrics").await;
    assert_eq!(none["items"], json!([]));
    let (code, st) = get_json(h, "/apis/metrics.k8s.io/v1beta1/nodes/ghost").await;
    assert_eq!((code, st["message"].as_str()), (404, Some("nodemetrics.metrics.k8s.io \"ghost\" not found")));
    assert_eq!(st["details"], json!({"name": "ghost", "group": "metrics.k8s.io", "kind": "nodemetrics"}));

    for path in ["/apis/metrics.k8s.io/v1beta1/pods", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"] {
        let (code, pods) = get_json(h, path).await;
        assert_eq!((code, &pods["kind"]), (200, &json!("PodMetricsList")));
        assert_eq!(names(&pods), ["web"], "{path}: pending is not running, quiet has no metrics");
    }
    let (_, sel) = get_json(h, "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dquiet").await;
    assert_eq!(sel["items"], json!([]));
    let (_, sel) = get_json(h, "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3Dweb").await;
    assert_eq!(names(&sel), ["web"]);
    let (_, other) = get_json(h, "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods").await;
    assert_eq!(other["items"], json!([]));
    let (code, st) = get_json(h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/pending").await;
    assert_eq!((code, st["message"].as_str()), (404, Some("pods \"pending\" not found")));
    let (code, st) = get_json(h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/quiet").await;
    assert_eq!((code, st["message"].as_str()), (404, Some("podmetrics.metrics.k8s.io \"default/quiet\" not found")));
    let (code, st) = get_json(h, "/apis/metrics.k8s.io/v1beta1/nodes?watch=true").await;
    assert_eq!((code, st["message"].as_str()), (405, Some("watch is not supported on resources of kind \"nodes.metrics.k8s.io\"")));
    let (code, _) = get_json(h, "/apis/metrics.k8s.io/v1beta1/pods/web").await;
    assert_eq!(code, 404);

    let (code, t) = get(h, "/apis/metrics.k8s.io/v1beta1/nodes", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json").await;
    assert_eq!((code, &t["kind"]), (200, &json!("Table")));
    assert_eq!(t["rows"][0]["cells"], json!(["n1", "500m", "1572876Ki", "2s"]));
}

/// Each installed kubectl (the default and the versioned ones), or nothing when none is.
fn kubectls() -> Vec<String> {
    let mut out: Vec<String> = ["/usr/bin/kubectl".to_string()].into_iter().filter(|p| Path::new(p).exists()).collect();
    if out.is_empty() {
        eprintln!("skipping kubectl top: /usr/bin/kubectl is absent");
        return out;
    }
    out.extend((27..=33).map(|m| format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{m}")).filter(|p| Path::new(p).exists()));
    out
}

async fn kubectl(bin: &str, home: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(bin).args(args).env("HOME", home).env("KUBECONFIG", kubeconfig).kill_on_drop(true).output().await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{bin} {args:?} failed: {stderr}\n{stdout}");
    stdout
}

/// The whitespace-separated fields of the line whose first field is `first`.
fn row(out: &str, first: &str) -> Vec<String> {
    let line = out.lines().find(|l| l.split_whitespace().next() == Some(first)).unwrap_or_else(|| panic!("no {first} in\n{out}"));
    line.split_whitespace().map(str::to_string).collect()
}

async fn check_kubectl(h: &Handle) {
    for bin in kubectls() {
        eprintln!("kubectl top with {bin}");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, fake_apiserver::kubeconfig_yaml(&h.url())).unwrap();
        let top = kubectl(&bin, dir.path(), &kubeconfig, &["top", "node"]).await;
        // The percentage headers are "CPU%" in older kubectls and "CPU(%)" in newer ones.
        let header = row(&top, "NAME");
        assert_eq!((header[1].as_str(), header[3].as_str()), ("CPU(cores)", "MEMORY(bytes)"), "{bin}\n{top}");
        assert_eq!(row(&top, "n1"), ["n1", "500m", "25%", "1536Mi", "37%"], "{bin}\n{top}");
        assert_eq!(row(&top, "ghost")[1], "<unknown>", "{bin}\n{top}");
        let one = kubectl(&bin, dir.path(), &kubeconfig, &["top", "node", "n1", "--no-headers"]).await;
        assert_eq!(row(&one, "n1")[1], "500m", "{bin}\n{one}");
        let pods = kubectl(&bin, dir.path(), &kubeconfig, &["top", "pod"]).await;
        assert_eq!(row(&pods, "web"), ["web", "125m", "100Mi"], "{bin}\n{pods}");
        assert!(!pods.contains("pending") && !pods.contains("quiet"), "{bin}\n{pods}");
        let containers = kubectl(&bin, dir.path(), &kubeconfig, &["top", "pod", "web", "--containers"]).await;
        assert_eq!(row(&containers, "web"), ["web", "app", "125m", "100Mi"], "{bin}\n{containers}");
        let all = kubectl(&bin, dir.path(), &kubeconfig, &["top", "pod", "-A", "-l", "app=web"]).await;
        assert_eq!(row(&all, "default"), ["default", "web", "125m", "100Mi"], "{bin}\n{all}");
    }
}

#[tokio::test]
async fn off_by_default() {
    let h = common::start().await;
    let (_, apis) = get_json(&h, "/apis").await;
    assert!(!apis["groups"].as_array().unwrap().iter().any(|g| g["name"] == "metrics.k8s.io"), "{apis}");
    for path in ["/apis/metrics.k8s.io", "/apis/metrics.k8s.io/v1beta1", "/apis/metrics.k8s.io/v1beta1/nodes"] {
        assert_eq!(get_json(&h, path).await.0, 404, "{path}");
    }
}
