//! The healthz and metrics HTTP server (/healthz, /metrics).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;

fn respond(path: &str, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let (code, ctype, body) = match path {
        "/healthz" => {
            let (ok, body) = crate::health::healthz_body(&health.sync_loop());
            let code = if ok { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
            (code, "text/plain; charset=utf-8", body)
        }
        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        _ => (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 page not found\n".to_string()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Binds `addr`; returns the bound address and the serving future (runs until cancelled).
pub async fn bind(
    addr: SocketAddr,
    metrics: Metrics,
    health: Health,
    cancel: CancellationToken,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Io { what: format!("binding the healthz server on {addr}"), source })?;
    let local = listener.local_addr().map_err(|source| Error::Io { what: "local_addr".into(), source })?;
    let fut = async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                acc = listener.accept() => {
                    let Ok((stream, _)) = acc else { continue };
                    let metrics = metrics.clone();
                    let health = health.clone();
                    let cancel = cancel.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                            let r = respond(req.uri().path(), &metrics, &health);
                            async move { Ok::<_, std::convert::Infallible>(r) }
                        });
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                        tokio::select! {
                            _ = conn => {}
                            _ = cancel.cancelled() => {}
                        }
                    });
                }
            }
        }
        conns.shutdown().await;
    };
    Ok((local, fut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::default();
        let pleg = crate::pods::pleg::PlegHandle::new(std::time::Duration::from_secs(60));
        let h = Health::new(pleg, std::time::Duration::from_secs(60), std::time::Duration::from_secs(300));
        assert_eq!(respond("/healthz", &m, &h).status(), StatusCode::OK);
        assert_eq!(respond("/metrics", &m, &h).status(), StatusCode::OK);
        assert_eq!(respond("/nope", &m, &h).status(), StatusCode::NOT_FOUND);
    }
}
