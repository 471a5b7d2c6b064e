//! One HTTP/1.1 proxy hop that follows protocol upgrades, as upstream's `UpgradeAwareHandler`:
//! the API server uses it towards the kubelet (`pods/log`, `pods/exec`, `nodes/proxy`, …) and
//! the kubelet towards the runtime's streaming server. A request that asks for an upgrade
//! (`Connection: Upgrade`) is forwarded as is; when the backend answers 101 the two upgraded
//! connections are spliced byte for byte, so WebSocket and SPDY pass through untouched. Any other
//! answer (an upgrade refused with 400 or 403, a log stream) comes back as the backend wrote it.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("error dialing backend: {0}")]
    Handshake(hyper::Error),
    #[error("error trying to reach backend: {0}")]
    Request(hyper::Error),
    #[error("invalid backend path {path:?}: {message}")]
    Path { path: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the request goes on the connected backend.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Path and query on the backend, e.g. `/exec/ns/pod/c?command=date&stdout=1`.
    pub path_and_query: &'a str,
    /// The Host header, e.g. `10.0.0.2:10250`.
    pub host: &'a str,
}

/// Headers that describe one hop and are not forwarded (RFC 9110 §7.6.1), unless the
/// request is an upgrade, which needs `Connection` and `Upgrade` to reach the backend.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

/// Whether `headers` ask for a protocol upgrade.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

fn outgoing_headers(from: &HeaderMap, upgrading: bool, host: &str) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        let hop = HOP_BY_HOP.contains(&name.as_str());
        // The caller's credentials were for this hop; the next one authenticates this process.
        if (hop && !upgrading) || name == header::AUTHORIZATION || name == header::HOST {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Ok(h) = HeaderValue::from_str(host) {
        out.insert(header::HOST, h);
    }
    out
}

/// Forwards `req` over `io` (already connected, TLS done) to `target`. A 101 answer is
/// returned to be sent to the client; the splice of the two upgraded connections runs in a
/// task until either side closes or `cancel` fires.
pub async fn forward<IO>(io: IO, mut req: Request<Incoming>, target: Target<'_>, cancel: CancellationToken) -> Result<Response<Incoming>>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let upgrading = is_upgrade(req.headers());
    let client_upgrade = upgrading.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let body: BoxBody<Bytes, hyper::Error> = if upgrading { Empty::new().map_err(|never| match never {}).boxed() } else { body.boxed() };
    let mut out = Request::new(body);
    *out.method_mut() = parts.method;
    *out.uri_mut() = target
        .path_and_query
        .parse()
        .map_err(|e: http::uri::InvalidUri| Error::Path { path: target.path_and_query.to_string(), message: e.to_string() })?;
    *out.headers_mut() = outgoing_headers(&parts.headers, upgrading, target.host);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(Error::Handshake)?;
    let conn_cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            r = conn.with_upgrades() => if let Err(e) = r { tracing::debug!(error = %e, "proxied backend connection") },
            _ = conn_cancel.cancelled() => {}
        }
    });
    let mut resp = sender.send_request(out).await.map_err(Error::Request)?;
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client)) = (resp.status(), client_upgrade) {
        let backend = hyper::upgrade::on(&mut resp);
        tokio::spawn(splice(client, backend, cancel));
    }
    Ok(resp)
}

async fn splice(client: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade, cancel: CancellationToken) {
    let (client, backend) = match tokio::join!(client, backend) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(e), _) | (_, Err(e)) => return tracing::debug!(error = %e, "upgrade did not complete"),
    };
    let (mut c, mut b) = (TokioIo::new(client), TokioIo::new(backend));
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut c, &mut b) => if let Err(e) = r { tracing::debug!(error = %e, "upgraded stream ended") },
        _ = cancel.cancelled() => {}
    }
}

/// A backend body as a body that cannot fail: an error ends it (the client sees the stream
/// stop, as it would when the backend goes away).
#[derive(Debug)]
pub struct Lossy(Option<Incoming>);

impl Lossy {
    pub fn new(body: Incoming) -> Lossy {
        Lossy(Some(body))
    }
}

impl Body for Lossy {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        let Some(inner) = self.0.as_mut() else { return Poll::Ready(None) };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "proxied body ended early");
                self.0 = None;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.0 = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.is_end_stream())
    }
}
