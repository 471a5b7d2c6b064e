//! Built-in benchmark: create throughput and latency over HTTP, list time, watch fan-out,
//! memory per stored pod and start-to-ready time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::resources;
use crate::server::{Handle, Server};

/// Benchmark parameters.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Pods to create over HTTP.
    pub pods: usize,
    /// Concurrent HTTP clients creating pods.
    pub concurrency: usize,
    /// Watch connections for the fan-out test.
    pub watchers: usize,
    /// Events each watcher must receive.
    pub watch_events: usize,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts { pods: 10_000, concurrency: 8, watchers: 10, watch_events: 10_000 }
    }
}

/// Results of [`run`].
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub pods: usize,
    pub concurrency: usize,
    pub creates_per_sec: f64,
    pub create_p50: Duration,
    pub create_p99: Duration,
    pub list_time: Duration,
    pub list_bytes: usize,
    pub watchers: usize,
    pub watch_events: usize,
    pub watch_events_per_sec: f64,
    pub memory_per_pod_bytes: Option<u64>,
    pub start_to_ready: Duration,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(f, "fake-apiserver benchmark")?;
        writeln!(f, "  start to ready:        {:.2} ms (goal < 20 ms)", ms(self.start_to_ready))?;
        writeln!(f, "  pod creates:           {} over HTTP, {} concurrent clients", self.pods, self.concurrency)?;
        writeln!(f, "  create throughput:     {:.0} creates/s (goal >= 10000)", self.creates_per_sec)?;
        writeln!(f, "  create latency:        p50 {:.2} ms, p99 {:.2} ms", ms(self.create_p50), ms(self.create_p99))?;
        writeln!(f, "  list {} pods:        {:.1} ms, {} bytes (goal < 100 ms)", self.pods, ms(self.list_time), self.list_bytes)?;
        writeln!(f, "  watch fan-out:         {} watchers x {} events: {:.0} events/s", self.watchers, self.watch_events, self.watch_events_per_sec)?;
        match self.memory_per_pod_bytes {
            Some(b) => writeln!(f, "  memory per stored pod: {b} bytes (resident)"),
            None => writeln!(f, "  memory per stored pod: unavailable"),
        }
    }
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn bench_err(msg: impl Into<String>) -> Error {
    Error::Config(format!("benchmark: {}", msg.into()))
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn request(client: &HttpClient, method: &str, url: &str, body: Option<Vec<u8>>) -> Result<(u16, Bytes)> {
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| bench_err(e.to_string()))?;
    let resp = client.request(req).await.map_err(|e| bench_err(e.to_string()))?;
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| bench_err(e.to_string()))?.to_bytes();
    Ok((code, body))
}

fn pod_body(i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("bench-{i}"), "labels": {"app": "bench", "shard": (i % 16).to_string()}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/workload:1.0", "ports": [{"containerPort": 8080}]}]},
    }))
    .unwrap_or_default()
}

async fn measure_start() -> Result<(Handle, Duration)> {
    let config = Config { listen: "127.0.0.1:0".into(), watch_history: 50_000, node_lifecycle: false, scheduler: false, ..Config::default() };
    let t0 = Instant::now();
    let handle = Server::start(config).await?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("{}/readyz", handle.url());
    loop {
        if let Ok((200, _)) = request(&client, "GET", &url, None).await {
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(bench_err("server did not become ready"));
        }
        tokio::task::yield_now().await;
    }
    Ok((handle, t0.elapsed()))
}

/// Run the benchmark against a fresh in-process server on 127.0.0.1.
pub async fn run(opts: BenchOpts) -> Result<BenchReport> {
    let (handle, start_to_ready) = measure_start().await?;
    let base = handle.url();
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(opts.concurrency.max(1)).build_http();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    request(&client, "POST", &format!("{base}/api/v1/namespaces"), Some(serde_json::to_vec(&ns).unwrap_or_default())).await?;
    let rss_before = rss_bytes();

    // Creates.
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(format!("{base}/api/v1/namespaces/bench/pods"));
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..opts.concurrency.max(1) {
        let (client, next, url, total) = (client.clone(), next.clone(), url.clone(), opts.pods);
        set.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, Error>(lat);
                }
                let t = Instant::now();
                let (code, body) = request(&client, "POST", &url, Some(pod_body(i))).await?;
                if code != 201 {
                    return Err(bench_err(format!("create returned {code}: {}", String::from_utf8_lossy(&body))));
                }
                lat.push(t.elapsed());
            }
        });
    }
    let mut lat = Vec::with_capacity(opts.pods);
    while let Some(r) = set.join_next().await {
        lat.extend(r.map_err(|e| bench_err(e.to_string()))??);
    }
    let create_elapsed = t0.elapsed();
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default();

    // List.
    let t1 = Instant::now();
    let (code, body) = request(&client, "GET", &url, None).await?;
    let list_time = t1.elapsed();
    if code != 200 {
        return Err(bench_err(format!("list returned {code}")));
    }
    let rss_after = rss_bytes();
    let memory_per_pod_bytes = match (rss_before, rss_after) {
        (Some(a), Some(b)) if opts.pods > 0 => Some(b.saturating_sub(a) / opts.pods as u64),
        _ => None,
    };

    // Watch fan-out: N watchers on configmaps, events written in-process.
    let rv = handle.store().current_rv();
    let watch_url = format!("{base}/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion={rv}");
    let mut watchers = tokio::task::JoinSet::new();
    let ready = Arc::new(AtomicUsize::new(0));
    for _ in 0..opts.watchers {
        let (client, url, want, ready) = (client.clone(), watch_url.clone(), opts.watch_events, ready.clone());
        watchers.spawn(async move {
            let req = http::Request::get(url).body(Full::new(Bytes::new())).map_err(|e| bench_err(e.to_string()))?;
            let resp = client.request(req).await.map_err(|e| bench_err(e.to_string()))?;
            ready.fetch_add(1, Ordering::SeqCst);
            let mut body = resp.into_body();
            let mut seen = 0usize;
            while seen < want {
                match body.frame().await {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            seen += d.iter().filter(|b| **b == b'\n').count();
                        }
                    }
                    _ => return Err(bench_err(format!("watch ended after {seen} events"))),
                }
            }
            Ok::<_, Error>(Instant::now())
        });
    }
    while ready.load(Ordering::SeqCst) < opts.watchers {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let t2 = Instant::now();
    for i in 0..opts.watch_events {
        let cm = json!({"metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}});
        handle.api().create(resources::CONFIGMAPS, "bench", cm).map_err(|e| bench_err(e.to_string()))?;
        if i % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut last = t2;
    while let Some(r) = watchers.join_next().await {
        last = last.max(r.map_err(|e| bench_err(e.to_string()))??);
    }
    let watch_elapsed = last.duration_since(t2);
    handle.shutdown().await;
    Ok(BenchReport {
        pods: opts.pods,
        concurrency: opts.concurrency,
        creates_per_sec: opts.pods as f64 / create_elapsed.as_secs_f64().max(1e-9),
        create_p50: pct(0.50),
        create_p99: pct(0.99),
        list_time,
        list_bytes: body.len(),
        watchers: opts.watchers,
        watch_events: opts.watch_events,
        watch_events_per_sec: (opts.watchers * opts.watch_events) as f64 / watch_elapsed.as_secs_f64().max(1e-9),
        memory_per_pod_bytes,
        start_to_ready,
    })
}
