//! SPDY upgrades (upstream `httpstream.Handshake` and `spdy.responseUpgrader`) and a shareable
//! handle on a SPDY stream.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::activity::Activity;
use crate::constants::{HEADER_ACCEPTED_PROTOCOL_VERSIONS, HEADER_PROTOCOL_VERSION, HEADER_SPDY_31};
use crate::http::{Response, error, first, go_header_count, go_header_dump, values};

/// RST_STREAM status CANCEL, what spdystream's `Reset` sends.
pub(crate) const RST_CANCEL: u32 = 5;

/// Negotiates `X-Stream-Protocol-Version`: the first protocol the client lists that the server
/// supports. Errors are upstream's answers (400, or 403 listing what the server accepts).
#[allow(clippy::result_large_err, reason = "the refusal is the answer, built once per request")]
pub(crate) fn negotiate(headers: &HeaderMap, server: &[&'static str]) -> Result<&'static str, Response> {
    if !headers.contains_key(HEADER_PROTOCOL_VERSION) {
        let msg = format!(
            "unable to upgrade: header {HEADER_PROTOCOL_VERSION} does not exist in request with {} headers",
            go_header_count(headers)
        );
        return Err(error(StatusCode::BAD_REQUEST, &msg));
    }
    let raw: Vec<&str> = values(headers, HEADER_PROTOCOL_VERSION).collect();
    let client: Vec<&str> = raw.iter().flat_map(|v| v.split(',')).map(|p| p.trim_matches(' ')).filter(|p| !p.is_empty()).collect();
    if client.is_empty() {
        let msg = format!(
            "unable to upgrade: header {HEADER_PROTOCOL_VERSION} contains [{}], but no valid protocols",
            raw.join(" ")
        );
        return Err(error(StatusCode::BAD_REQUEST, &msg));
    }
    if let Some(found) = client.iter().find_map(|c| server.iter().find(|s| *s == c)) {
        return Ok(found);
    }
    let msg = format!(
        "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
        client.join(" "),
        server.join(" ")
    );
    let mut resp = error(StatusCode::FORBIDDEN, &msg);
    for s in server {
        resp.headers_mut().append(HEADER_ACCEPTED_PROTOCOL_VERSIONS, HeaderValue::from_static(s));
    }
    Err(resp)
}

/// The `101 Switching Protocols` to SPDY/3.1 with the negotiated protocol, or upstream's 400 when
/// the request lacks the upgrade headers.
#[allow(clippy::result_large_err, reason = "the refusal is the answer, built once per request")]
pub(crate) fn upgrade_response(headers: &HeaderMap, protocol: &'static str) -> Result<Response, Response> {
    let connection = first(headers, "connection").to_ascii_lowercase();
    let upgrade = first(headers, "upgrade").to_ascii_lowercase();
    if !connection.contains("upgrade") || !upgrade.contains(&HEADER_SPDY_31.to_ascii_lowercase()) {
        let msg = format!("unable to upgrade: missing upgrade headers in request: {}", go_header_dump(headers));
        let mut resp = error(StatusCode::BAD_REQUEST, &msg);
        resp.headers_mut().insert(HEADER_PROTOCOL_VERSION, HeaderValue::from_static(protocol));
        return Err(resp);
    }
    let mut resp = crate::http::plain(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = resp.headers_mut();
    h.insert(HEADER_PROTOCOL_VERSION, HeaderValue::from_static(protocol));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static(HEADER_SPDY_31));
    Ok(resp)
}

/// A SPDY stream several owners read, write, and finally reset; I/O touches the connection's
/// activity.
#[derive(Clone)]
pub(crate) struct SharedStream {
    inner: Arc<Mutex<Pin<Box<spdy::Stream>>>>,
    activity: Arc<Activity>,
}

impl SharedStream {
    pub(crate) fn new(stream: spdy::Stream, activity: Arc<Activity>) -> Self {
        Self { inner: Arc::new(Mutex::new(Box::pin(stream))), activity }
    }

    fn lock(&self) -> MutexGuard<'_, Pin<Box<spdy::Stream>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.lock().as_ref().get_ref().header(name).map(str::to_string)
    }

    pub(crate) fn id(&self) -> u32 {
        self.lock().as_ref().get_ref().id()
    }

    pub(crate) fn reset(&self, status: u32) {
        self.lock().as_ref().get_ref().reset(status)
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = self.lock().as_mut().poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = self.lock().as_mut().poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.lock().as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.lock().as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::SUPPORTED_STREAM_PROTOCOLS;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn body(resp: &Response) -> String {
        use http_body_util::BodyExt;
        let bytes = futures::executor::block_on(resp.body().clone().collect()).unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn negotiation_follows_client_order() {
        let h = headers(&[("x-stream-protocol-version", "v4.channel.k8s.io"), ("x-stream-protocol-version", "v3.channel.k8s.io, v2.channel.k8s.io")]);
        assert_eq!(negotiate(&h, &SUPPORTED_STREAM_PROTOCOLS).unwrap(), "v4.channel.k8s.io");
    }

    #[test]
    fn negotiation_failures_are_upstreams() {
        let resp = negotiate(&headers(&[("connection", "Upgrade")]), &SUPPORTED_STREAM_PROTOCOLS).unwrap_err();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body(&resp), "unable to upgrade: header X-Stream-Protocol-Version does not exist in request with 1 headers\n");
        let resp = negotiate(&headers(&[("x-stream-protocol-version", "v9, v8")]), &["portforward.k8s.io"]).unwrap_err();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()[HEADER_ACCEPTED_PROTOCOL_VERSIONS], "portforward.k8s.io");
        assert_eq!(
            body(&resp),
            "unable to upgrade: unable to negotiate protocol: client supports [v9 v8], server accepts [portforward.k8s.io]\n"
        );
    }

    #[test]
    fn upgrade_needs_the_headers() {
        let ok = upgrade_response(&headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]), "v4.channel.k8s.io").unwrap();
        assert_eq!(ok.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(ok.headers()["x-stream-protocol-version"], "v4.channel.k8s.io");
        assert_eq!(ok.headers()["upgrade"], "SPDY/3.1");
        let bad = upgrade_response(&headers(&[("x-stream-protocol-version", "v4.channel.k8s.io")]), "v4.channel.k8s.io").unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(body(&bad).starts_with("unable to upgrade: missing upgrade headers in request: http.Header{"));
    }
}
