//! Test surface: audit log, fault rules and the partition switch, via the handle and the admin HTTP API.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_apiserver::FaultRule;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type C = Client<HttpConnector, Full<Bytes>>;

fn client() -> C {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call(c: &C, method: &str, url: &str, body: &str) -> (u16, Value) {
    let req = http::Request::builder().method(method).uri(url).header("content-type", "application/json").body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = c.request(req).await.unwrap();
    let code = resp.status().as_u16();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

#[tokio::test]
async fn audit_log_in_memory_http_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let f2 = file.clone();
    let h = common::start_with(move |c| c.audit_file = Some(f2)).await;
    let c = client();
    let (code, _) = call(&c, "POST", &format!("{}/api/v1/namespaces/default/configmaps?fieldManager=x", h.url()), r#"{"metadata":{"name":"a"}}"#).await;
    assert_eq!(code, 201);
    call(&c, "GET", &format!("{}/api/v1/namespaces/default/configmaps/missing", h.url()), "").await;
    let entries = h.audit();
    let create = entries.iter().find(|e| e.verb == "create").unwrap();
    assert_eq!(create.path, "/api/v1/namespaces/default/configmaps");
    assert_eq!(create.query, "fieldManager=x");
    assert_eq!(create.code, 201);
    assert_eq!(create.content_type, "application/json");
    assert!(create.latency_ms >= 0.0 && !create.time.is_empty());
    assert!(entries.iter().any(|e| e.verb == "get" && e.code == 404));
    let (code, v) = call(&c, "GET", &format!("{}/nodekit/audit", h.url()), "").await;
    assert_eq!(code, 200);
    assert_eq!(v.as_array().unwrap().len(), entries.len());
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), entries.len());
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first.get("userAgent").is_some() && first.get("latencyMs").is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn fault_rules_latency_errors_and_watch_close() {
    let h = common::start().await;
    let c = client();
    let base = h.url();
    // Error injection through the admin API, limited to 1 use.
    let (code, v) = call(&c, "POST", &format!("{base}/nodekit/faults"), r#"{"verb":"list","resource":"pods","errorCode":503,"errorMessage":"injected","times":1}"#).await;
    assert_eq!(code, 201);
    assert!(v["id"].as_u64().is_some());
    let (code, s) = call(&c, "GET", &format!("{base}/api/v1/namespaces/default/pods"), "").await;
    assert_eq!(code, 503);
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["message"], "injected");
    let (code, _) = call(&c, "GET", &format!("{base}/api/v1/namespaces/default/pods"), "").await;
    assert_eq!(code, 200, "rule used up");
    // Latency via the handle.
    let id = h.add_fault(FaultRule { path_prefix: Some("/api/v1/namespaces/default/configmaps".into()), latency_ms: Some(200), ..Default::default() });
    let t = Instant::now();
    call(&c, "GET", &format!("{base}/api/v1/namespaces/default/configmaps"), "").await;
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(h.remove_fault(id));
    // Close watches after 2 events.
    h.add_fault(FaultRule { verb: Some("watch".into()), close_watch_after: Some(2), ..Default::default() });
    let req = http::Request::get(format!("{base}/api/v1/namespaces/default/configmaps?watch=true")).body(Full::new(Bytes::new())).unwrap();
    let resp = c.request(req).await.unwrap();
    for i in 0..5 {
        h.api().create(fake_apiserver::resources::CONFIGMAPS, "default", json!({"metadata": {"name": format!("c{i}")}})).unwrap();
    }
    let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect()).await.expect("watch closed").unwrap().to_bytes();
    let lines: Vec<Value> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["type"] == "ADDED"));
    let (code, v) = call(&c, "DELETE", &format!("{base}/nodekit/faults"), "").await;
    assert_eq!((code, v["cleared"].as_bool()), (200, Some(true)));
    assert!(h.faults().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn partition_holds_requests_until_lifted() {
    let h = common::start().await;
    let c = client();
    let base = h.url();
    let (code, v) = call(&c, "POST", &format!("{base}/nodekit/partition"), r#"{"enabled":true}"#).await;
    assert_eq!((code, v["enabled"].as_bool()), (200, Some(true)));
    assert!(h.partitioned());
    let url = format!("{base}/api/v1/namespaces");
    let c2 = c.clone();
    let pending = tokio::spawn(async move { call(&c2, "GET", &url, "").await });
    // The request is accepted but not answered while partitioned.
    let held = tokio::time::timeout(Duration::from_millis(300), async {
        while !pending.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(held.is_err(), "request was answered during the partition");
    // Admin stays reachable; lifting the partition releases the request.
    let (code, _) = call(&c, "POST", &format!("{base}/nodekit/partition?enabled=false"), "").await;
    assert_eq!(code, 200);
    let (code, v) = tokio::time::timeout(Duration::from_secs(5), pending).await.unwrap().unwrap();
    assert_eq!(code, 200);
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
    h.set_partition(true);
    assert!(h.partitioned());
    h.set_partition(false);
    h.shutdown().await;
}

#[tokio::test]
async fn serve_on_prebound_listener_and_kubeconfig() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = fake_apiserver::Server::serve(l, common::config()).await.unwrap();
    assert_eq!(h.addr(), addr);
    assert_eq!(h.url(), format!("http://{addr}"));
    assert!(h.kubeconfig_yaml().contains(&format!("server: http://{addr}")));
    let (code, v) = call(&client(), "GET", &format!("{}/version", h.url()), "").await;
    assert_eq!((code, v["gitVersion"].as_str()), (200, Some("v1.34.2")));
    let token = h.cancellation_token();
    h.shutdown().await;
    assert!(token.is_cancelled());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed after shutdown");
}
