//! Built-in benchmark: create throughput and latency, list time, watch fan-out, memory per
//! stored pod and start-to-ready time, measured twice with the same clients and pooled
//! connections: over plain HTTP with authorization off, and over HTTPS with x509 client
//! certificates and Node,RBAC authorization on ([`crate::bench_tls`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::bench_tls::RbacEvidence;
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

/// The figures of one run (one server, one kind of client).
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    pub creates_per_sec: f64,
    pub create_p50: Duration,
    pub create_p99: Duration,
    pub list_time: Duration,
    pub list_bytes: usize,
    pub watch_events_per_sec: f64,
    pub memory_per_pod_bytes: Option<u64>,
    pub start_to_ready: Duration,
}

/// Results of [`run`]: the same benchmark without and with authentication and authorization.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub pods: usize,
    pub concurrency: usize,
    pub watchers: usize,
    pub watch_events: usize,
    /// Plain HTTP, authorization off.
    pub plain: RunFigures,
    /// HTTPS, x509 client certificate of an RBAC-bound user, Node,RBAC authorization on.
    pub secure: RunFigures,
    /// What the secure server's audit log says RBAC decided.
    pub rbac: RbacEvidence,
}

/// Goals for the secure run.
pub const GOAL_CREATES_PER_SEC: f64 = 10_000.0;
pub const GOAL_LIST: Duration = Duration::from_millis(100);

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

impl BenchReport {
    /// The figure rows: label, plain, secure, note.
    fn rows(&self) -> Vec<(String, String, String, &'static str)> {
        let (p, s) = (&self.plain, &self.secure);
        let mem = |m: Option<u64>| m.map_or_else(|| "unavailable".to_string(), |b| format!("{b} bytes"));
        let eps = |r: &RunFigures| format!("{:.0} events/s", r.watch_events_per_sec);
        vec![
            ("start to ready".into(), ms(p.start_to_ready), ms(s.start_to_ready), "(goal < 20 ms)"),
            ("create throughput".into(), format!("{:.0} creates/s", p.creates_per_sec), format!("{:.0} creates/s", s.creates_per_sec), "(goal >= 10000)"),
            ("create latency p50".into(), ms(p.create_p50), ms(s.create_p50), ""),
            ("create latency p99".into(), ms(p.create_p99), ms(s.create_p99), ""),
            (format!("list {} pods", self.pods), ms(p.list_time), ms(s.list_time), "(goal < 100 ms)"),
            ("list body".into(), format!("{} bytes", p.list_bytes), format!("{} bytes", s.list_bytes), ""),
            (format!("watch fan-out {}x{}", self.watchers, self.watch_events), eps(p), eps(s), ""),
            ("memory per stored pod".into(), mem(p.memory_per_pod_bytes), mem(s.memory_per_pod_bytes), "(resident)"),
        ]
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fake-apiserver benchmark")?;
        writeln!(f, "  pod creates: {} per run, {} concurrent clients, pooled HTTP/1.1 connections", self.pods, self.concurrency)?;
        writeln!(f, "  {:<26} {:>22} {:>22}", "", "plain HTTP, no authz", "TLS + x509 + RBAC")?;
        for (label, plain, secure, note) in self.rows() {
            let row = format!("  {:<26} {plain:>22} {secure:>22}  {note}", format!("{label}:"));
            writeln!(f, "{}", row.trim_end())?;
        }
        let s = &self.secure;
        writeln!(f, "  goals with TLS + x509 + RBAC on:")?;
        let creates_ok = s.creates_per_sec >= GOAL_CREATES_PER_SEC;
        writeln!(f, "    creates/s >= 10000:       {:>10.0}  {}", s.creates_per_sec, met(creates_ok))?;
        let list_ok = s.list_time < GOAL_LIST;
        writeln!(f, "    list {} pods < 100 ms: {:>10}  {}", self.pods, ms(s.list_time), met(list_ok))?;
        write!(f, "  {}", self.rbac)
    }
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub(crate) fn bench_err(msg: impl Into<String>) -> Error {
    Error::Config(format!("benchmark: {}", msg.into()))
}

/// The benchmark's HTTP client over connector `C`.
pub type BenchClient<C> = Client<C, Full<Bytes>>;

/// A client over `connector` keeping up to `pool` idle connections (one per concurrent client).
pub fn client<C: Connect + Clone>(connector: C, pool: usize) -> BenchClient<C> {
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(pool.max(1)).build(connector)
}

/// The plain-HTTP connector, with TCP_NODELAY as the TLS one has.
fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http
}

/// One request; (status code, body).
pub async fn request<C>(client: &BenchClient<C>, method: &str, url: &str, body: Option<Vec<u8>>) -> Result<(u16, Bytes)>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| bench_err(e.to_string()))?;
    let resp = client.request(req).await.map_err(|e| bench_err(format!("{method} {url}: {e}")))?;
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| bench_err(e.to_string()))?.to_bytes();
    Ok((code, body))
}

/// A request that must be answered with `want`.
pub async fn expect<C>(client: &BenchClient<C>, method: &str, url: &str, body: Option<serde_json::Value>, want: u16) -> Result<Bytes>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let (code, out) = request(client, method, url, body.map(|b| serde_json::to_vec(&b).unwrap_or_default())).await?;
    if code != want {
        return Err(bench_err(format!("{method} {url} returned {code}, not {want}: {}", String::from_utf8_lossy(&out))));
    }
    Ok(out)
}

fn pod_body(i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("bench-{i}"), "labels": {"app": "bench", "shard": (i % 16).to_string()}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/workload:1.0", "ports": [{"containerPort": 8080}]}]},
    }))
    .unwrap_or_default()
}

/// The server configuration both runs start from.
pub fn base_config() -> Config {
    Config { listen: "127.0.0.1:0".into(), watch_history: 50_000, node_lifecycle: false, scheduler: false, ..Config::default() }
}

/// Starts a server with `config` and polls `/readyz` through `client` until it answers 200.
pub async fn measure_start<C>(config: Config, client: &BenchClient<C>) -> Result<(Handle, Duration)>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let t0 = Instant::now();
    let handle = Server::start(config).await?;
    let url = format!("{}/readyz", handle.url());
    loop {
        if let Ok((200, _)) = request(client, "GET", &url, None).await {
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(bench_err("server did not become ready"));
        }
        tokio::task::yield_now().await;
    }
    Ok((handle, t0.elapsed()))
}

/// `opts.pods` creates through `concurrency` tasks sharing `client`: (elapsed, sorted latencies).
async fn create_pods<C>(client: &BenchClient<C>, url: &str, opts: &BenchOpts) -> Result<(Duration, Vec<Duration>)>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(url.to_string());
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
    let elapsed = t0.elapsed();
    lat.sort();
    Ok((elapsed, lat))
}

/// Watch fan-out: `opts.watchers` watches on configmaps through `client`, `opts.watch_events`
/// configmaps written in-process; events delivered per second over all watchers.
async fn watch_fanout<C>(handle: &Handle, client: &BenchClient<C>, opts: &BenchOpts) -> Result<f64>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let rv = handle.store().current_rv();
    let watch_url = format!("{}/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion={rv}", handle.url());
    let mut watchers = tokio::task::JoinSet::new();
    let ready = Arc::new(AtomicUsize::new(0));
    for _ in 0..opts.watchers {
        let (client, url, want, ready) = (client.clone(), watch_url.clone(), opts.watch_events, ready.clone());
        watchers.spawn(async move {
            let req = http::Request::get(url).body(Full::new(Bytes::new())).map_err(|e| bench_err(e.to_string()))?;
            let resp = client.request(req).await.map_err(|e| bench_err(e.to_string()))?;
            if resp.status() != 200 {
                ready.fetch_add(1, Ordering::SeqCst);
                return Err(bench_err(format!("watch returned {}", resp.status())));
            }
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
    let t0 = Instant::now();
    for i in 0..opts.watch_events {
        let cm = json!({"metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}});
        handle.api().create(resources::CONFIGMAPS, "bench", cm).map_err(|e| bench_err(e.to_string()))?;
        if i % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut last = t0;
    while let Some(r) = watchers.join_next().await {
        last = last.max(r.map_err(|e| bench_err(e.to_string()))??);
    }
    let elapsed = last.duration_since(t0);
    Ok((opts.watchers * opts.watch_events) as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// Creates, list, memory and watch fan-out against `handle` (its `bench` namespace exists)
/// through `client`.
pub async fn measure<C>(handle: &Handle, client: &BenchClient<C>, opts: &BenchOpts, start_to_ready: Duration) -> Result<RunFigures>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let url = format!("{}/api/v1/namespaces/bench/pods", handle.url());
    let rss_before = rss_bytes();
    let (create_elapsed, lat) = create_pods(client, &url, opts).await?;
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default();

    let t1 = Instant::now();
    let body = expect(client, "GET", &url, None, 200).await?;
    let list_time = t1.elapsed();
    let memory_per_pod_bytes = match (rss_before, rss_bytes()) {
        (Some(a), Some(b)) if opts.pods > 0 => Some(b.saturating_sub(a) / opts.pods as u64),
        _ => None,
    };
    let watch_events_per_sec = watch_fanout(handle, client, opts).await?;
    Ok(RunFigures {
        creates_per_sec: opts.pods as f64 / create_elapsed.as_secs_f64().max(1e-9),
        create_p50: pct(0.50),
        create_p99: pct(0.99),
        list_time,
        list_bytes: body.len(),
        watch_events_per_sec,
        memory_per_pod_bytes,
        start_to_ready,
    })
}

/// The plain run: HTTP, authorization off. The server is returned running so that the next
/// run's memory figure measures fresh growth, not memory this one freed.
pub async fn run_plain(opts: &BenchOpts) -> Result<(RunFigures, Handle)> {
    let client = client(http_connector(), opts.concurrency);
    let (handle, start_to_ready) = measure_start(base_config(), &client).await?;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    expect(&client, "POST", &format!("{}/api/v1/namespaces", handle.url()), Some(ns), 201).await?;
    match measure(&handle, &client, opts, start_to_ready).await {
        Ok(figures) => Ok((figures, handle)),
        Err(e) => {
            handle.shutdown().await;
            Err(e)
        }
    }
}

/// Runs the benchmark against fresh in-process servers on 127.0.0.1: plain, then secure.
pub async fn run(opts: BenchOpts) -> Result<BenchReport> {
    let (plain, plain_handle) = run_plain(&opts).await?;
    let secure = crate::bench_tls::run_secure(&opts).await;
    plain_handle.shutdown().await;
    let secure = secure?;
    secure.handle.shutdown().await;
    Ok(BenchReport {
        pods: opts.pods,
        concurrency: opts.concurrency,
        watchers: opts.watchers,
        watch_events: opts.watch_events,
        plain,
        secure: secure.figures,
        rbac: secure.rbac,
    })
}
