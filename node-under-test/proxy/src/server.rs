//! HTTP endpoints: `/metrics` (Prometheus text) and `/healthz` (200 / 503 with a JSON body
//! like upstream's), served with hyper on the configured addresses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let build = |code: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        if let Ok(v) = ctype.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    match req.uri().path() {
        "/metrics" => build(StatusCode::OK, "text/plain; version=0.0.4", metrics.render()),
        "/healthz" | "/livez" => {
            let h = metrics.health();
            let body = serde_json::json!({
                "lastUpdated": h.last_updated,
                "currentTime": h.current_time,
                "nodeEligible": true,
            })
            .to_string();
            let code = if h.healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            build(code, "application/json", body)
        }
        _ => build(StatusCode::NOT_FOUND, "text/plain", "404 page not found\n".into()),
    }
}

/// Binds `addr` and serves until `cancel`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr: addr.to_string(), source })?;
    let local = listener.local_addr().map_err(|source| Error::Bind { addr: addr.to_string(), source })?;
    tasks.spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                a = listener.accept() => a,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let Ok((stream, _)) = accepted else { continue };
            let m = metrics.clone();
            let c = cancel.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let resp = respond(&m, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = c.cancelled() => {}
                }
            });
        }
        conns.shutdown().await;
    });
    Ok(local)
}
