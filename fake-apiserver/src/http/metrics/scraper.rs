//! The scrape loop (metrics-server's `pkg/scraper` and `runScrape`): every `metric_resolution`
//! each node's kubelet `/metrics/resource` is fetched over HTTPS (at the node's InternalIP and
//! published kubelet port, as `--kubelet-use-node-status-port`), decoded, and the whole
//! scrape is kept in the storage. A node whose scrape fails is left out of it and logged.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::prom::{self, ParseError};
use super::storage::{Batch, Time};
use crate::error::ApiError;
use crate::resources;
use crate::server::State;

/// The path scraped when a node has no `metrics.k8s.io/resource-metrics-path` annotation.
pub const DEFAULT_PATH: &str = "/metrics/resource";
/// The annotation that changes the scraped path (upstream's `AnnotationResourceMetricsPath`).
pub const PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";
/// Upstream's `--kubelet-request-timeout` default; a scrape is also bounded by the resolution.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest exposition read from a kubelet.
const MAX_BODY: usize = 64 << 20;

/// Why one node's scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Address(ApiError),
    #[error("{0}")]
    Dial(ApiError),
    #[error("HTTP to the kubelet: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    #[error("request failed, status: {0:?}")]
    Status(http::StatusCode),
    #[error("failed to read response body - {0}")]
    Body(String),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// Upstream's `nodeIsReady`.
fn node_ready(node: &Value) -> bool {
    let conditions = node["status"]["conditions"].as_array().into_iter().flatten();
    conditions.filter(|c| c["type"] == "Ready").map(|c| c["status"] == "True").next().unwrap_or(false)
}

/// GET `path` from the kubelet at `addr` over `io` and return the body.
async fn fetch(io: tokio_rustls::client::TlsStream<tokio::net::TcpStream>, addr: &str, path: &str) -> Result<Bytes, ScrapeError> {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get(path).header(http::header::HOST, addr).header(http::header::ACCEPT, "text/plain").body(Empty::<Bytes>::new())?;
    let resp = send.send_request(req).await;
    let result = match resp {
        Ok(r) if r.status() == http::StatusCode::OK => {
            Limited::new(r.into_body(), MAX_BODY).collect().await.map(|b| b.to_bytes()).map_err(|e| ScrapeError::Body(e.to_string()))
        }
        Ok(r) => Err(ScrapeError::Status(r.status())),
        Err(e) => Err(e.into()),
    };
    conn.abort();
    result
}

/// Scrape one node's kubelet (upstream's `GetMetrics`).
pub async fn scrape_node(state: &State, node: &Value) -> Result<Batch, ScrapeError> {
    let name = node["metadata"]["name"].as_str().unwrap_or("");
    let addr = crate::kubelet_client::kubelet_addr(node, None).map_err(ScrapeError::Address)?;
    let path = node["metadata"]["annotations"][PATH_ANNOTATION].as_str().filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PATH);
    let io = state.kubelet.dial(addr).await.map_err(ScrapeError::Dial)?;
    let request_time = Time::now();
    let body = fetch(io, &addr.to_string(), path).await?;
    Ok(prom::decode_batch(&String::from_utf8_lossy(&body), request_time, name)?)
}

/// Scrape every node at once, each within `timeout`, and merge what came back (a duplicate
/// node or pod keeps the first point, as upstream).
pub async fn scrape_all(state: &State, timeout: Duration) -> Batch {
    let (nodes, _) = state.store.snapshot(resources::NODES, None);
    let scrapes = nodes.iter().map(|n| async move {
        let r = tokio::time::timeout(timeout, scrape_node(state, &n.value)).await.unwrap_or(Err(ScrapeError::Timeout(timeout)));
        if let Err(e) = &r {
            if node_ready(&n.value) {
                tracing::warn!(node = n.name(), "failed to scrape node: {e}");
            } else {
                tracing::debug!(node = n.name(), "failed to scrape node, node is not ready: {e}");
            }
        }
        r.ok()
    });
    let mut out = Batch::default();
    for batch in futures::future::join_all(scrapes).await.into_iter().flatten() {
        for (name, p) in batch.nodes {
            out.nodes.entry(name).or_insert(p);
        }
        for (key, c) in batch.pods {
            out.pods.entry(key).or_insert(c);
        }
    }
    tracing::debug!(nodes = out.nodes.len(), pods = out.pods.len(), "scrape finished");
    out
}

/// Runs until the server is cancelled: a scrape at once, then one every `metric_resolution`
/// (a scrape that overruns delays the next, as Go's ticker drops missed ticks).
pub async fn run(state: Arc<State>) {
    let period = state.config.metric_resolution.max(Duration::from_millis(10));
    let timeout = period.min(REQUEST_TIMEOUT);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = state.cancel.cancelled() => return,
        }
        let batch = tokio::select! {
            b = scrape_all(&state, timeout) => b,
            _ = state.cancel.cancelled() => return,
        };
        state.metrics.lock().store(batch);
    }
}
