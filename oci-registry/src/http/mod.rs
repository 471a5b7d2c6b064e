//! The HTTP server: plain HTTP/1.1 and HTTP/2 (h2c), or either over TLS.

mod auth;
mod negotiate;
mod range;
mod response;
mod routes;

use crate::error::{Error, Result};
use crate::store::Store;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may take to finish once cancelled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `store` on `listener` until `cancel` is cancelled, then lets open connections finish
/// their requests (at most 5 s) and returns. With `tls`, every connection is TLS (HTTP/2 when
/// its ALPN offers `h2`); without, plain HTTP/1.1 or HTTP/2 with prior knowledge.
///
/// Connections are tasks of this future: none outlives it. Fails only when the listener's
/// address cannot be read.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    tls: Option<Arc<rustls::ServerConfig>>,
    cancel: CancellationToken,
) -> Result<()> {
    let addr = listener.local_addr().map_err(Error::Listener)?;
    tracing::info!(%addr, tls = tls.is_some(), "registry serving");
    let acceptor = tls.map(TlsAcceptor::from);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, store.clone(), acceptor.clone(), cancel.clone()));
                }
                Err(e) => {
                    tracing::warn!(%addr, "registry accept: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), drained).await.is_err() {
        connections.shutdown().await;
    }
    tracing::info!(%addr, "registry stopped");
    Ok(())
}

/// One accepted connection: the TLS handshake if any, then HTTP.
async fn connection(stream: TcpStream, peer: SocketAddr, store: Arc<Store>, tls: Option<TlsAcceptor>, cancel: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else { return drive(stream, peer, store, cancel).await };
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "registry TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "registry TLS handshake timed out");
                return;
            }
        },
        _ = cancel.cancelled() => return,
    };
    drive(stream, peer, store, cancel).await
}

/// Serves HTTP on `io` until the client is done or `cancel` (then gracefully).
async fn drive<I>(io: I, peer: SocketAddr, store: Arc<Store>, cancel: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let response = answer(&store, peer, &req);
        async move { Ok::<_, Infallible>(response) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "registry connection: {e}");
    }
}

/// The response to one request, logged, with the API version header; HEAD without body.
fn answer<B>(store: &Store, peer: SocketAddr, req: &http::Request<B>) -> response::Response {
    let info = routes::RequestInfo { method: req.method(), path: req.uri().path(), query: req.uri().query(), headers: req.headers() };
    let mut response = routes::handle(store, &info);
    response.headers_mut().insert(response::API_VERSION, response::API_VERSION_VALUE);
    let length = response.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("0").to_string();
    tracing::debug!(%peer, method = %req.method(), uri = %req.uri(), status = response.status().as_u16(), length, "registry request");
    if req.method() == http::Method::HEAD {
        *response.body_mut() = response::Body::new(Bytes::new());
    }
    response
}
