//! A small async HTTP/1.1 server with Go `net/http` manners: listens on `:port` (IPv6 and
//! IPv4, falling back to IPv4 alone), reports client addresses as Go does (`10.0.0.1:1234`,
//! `[fd00::1]:1234`), answers unknown paths with `404 page not found`.
use crate::{Error, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request as HyperRequest, Response as HyperResponse, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A boxed, sendable future (what a [`Handler`] returns).
pub type HandlerFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What a handler sees of a request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Headers (names lower-case), in order.
    pub headers: Vec<(String, String)>,
    /// Go's `r.RemoteAddr` (empty for synthesised requests).
    pub remote: String,
}

impl Request {
    /// Go's `r.FormValue(name)` for the query: the first value, or "".
    pub fn form_value(&self, name: &str) -> &str {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// The request line's target, for log lines.
    pub fn uri(&self) -> String {
        if self.query.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, encode_query(&self.query)) }
    }
}

/// A reply.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code (100..=999).
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Exit the process with this code once the reply is written.
    pub exit_after: Option<i32>,
}

impl Response {
    /// A reply with a text body (Go sniffs text as `text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        let body: String = body.into();
        let headers = if body.is_empty() { vec![] } else { vec![("content-type".into(), "text/plain; charset=utf-8".into())] };
        Response { status, headers, body: body.into_bytes(), exit_after: None }
    }

    /// Go's `http.Error`: the message plus a newline, `nosniff`.
    pub fn error(status: u16, msg: impl AsRef<str>) -> Self {
        let mut r = Response::text(status, format!("{}\n", msg.as_ref()));
        r.headers.push(("x-content-type-options".into(), "nosniff".into()));
        r
    }

    /// Go's `http.NotFound`.
    pub fn not_found() -> Self {
        Response::error(404, "404 page not found")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A request handler.
pub type Handler = Arc<dyn Fn(Request) -> HandlerFuture<Response> + Send + Sync>;

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    Arc::new(move |r| Box::pin(f(r)))
}

/// Binds `:port` for TCP the way Go does (dual-stack, else IPv4).
pub async fn bind_tcp(port: u16) -> Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(("::", port)).await {
        Ok(l) => Ok(l),
        Err(_) => tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .map_err(|e| Error::io(format!("listen tcp :{port}"), e)),
    }
}

/// Binds `address:port` for UDP (empty address: dual-stack, else IPv4).
pub async fn bind_udp(address: &str, port: u16) -> Result<tokio::net::UdpSocket> {
    if !address.is_empty() {
        let ip: IpAddr = address.parse().map_err(|_| Error::Usage(format!("parseAddress: invalid address {address}")))?;
        return tokio::net::UdpSocket::bind((ip, port)).await.map_err(|e| Error::io(format!("listen udp {address}:{port}"), e));
    }
    match tokio::net::UdpSocket::bind(("::", port)).await {
        Ok(s) => Ok(s),
        Err(_) => tokio::net::UdpSocket::bind(("0.0.0.0", port)).await.map_err(|e| Error::io(format!("listen udp :{port}"), e)),
    }
}

/// `ip:port` as Go prints a peer (IPv4-mapped IPv6 addresses shown as IPv4).
pub fn go_addr(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", a.port()),
            None => format!("[{v6}]:{}", a.port()),
        },
        IpAddr::V4(v4) => format!("{v4}:{}", a.port()),
    }
}

/// Serves `handler` on `listener` until an accept fails.
pub async fn serve(listener: tokio::net::TcpListener, handler: Handler) -> Result<i32> {
    loop {
        let (stream, peer) = listener.accept().await.map_err(|e| Error::io("accept", e))?;
        let handler = handler.clone();
        tokio::spawn(async move {
            let exit = Arc::new(std::sync::Mutex::new(None::<i32>));
            let slot = exit.clone();
            let svc = hyper::service::service_fn(move |req: HyperRequest<Incoming>| {
                let handler = handler.clone();
                let slot = slot.clone();
                let req = to_request(&req, peer);
                async move {
                    let r = handler(req).await;
                    if let Some(code) = r.exit_after
                        && let Ok(mut s) = slot.lock()
                    {
                        *s = Some(code);
                    }
                    Ok::<_, std::convert::Infallible>(to_hyper(r))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            let code = exit.lock().ok().and_then(|s| *s);
            if let Some(code) = code {
                crate::supervise::exit(code);
            }
        });
    }
}

fn to_request<B>(req: &HyperRequest<B>, peer: SocketAddr) -> Request {
    Request {
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(crate::http::parse_query).unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        remote: go_addr(peer),
    }
}

fn to_hyper(r: Response) -> HyperResponse<Full<Bytes>> {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut b = HyperResponse::builder().status(status);
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    if r.exit_after.is_some() {
        b = b.header("connection", "close");
    }
    let body = Full::new(Bytes::from(r.body));
    match b.body(body) {
        Ok(resp) => resp,
        Err(_) => {
            let mut resp = HyperResponse::new(Full::new(Bytes::from_static(b"bad response header\n")));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

/// `a=b&c=d` with percent-encoding of everything but unreserved characters.
pub fn encode_query(q: &[(String, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    q.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// Splits `path?query` (an override or redirect target) into path and decoded query.
pub fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = if path.is_empty() { "/".to_string() } else { path.to_string() };
    (path, crate::http::parse_query(query))
}

/// A GET as a test builds it.
#[cfg(test)]
pub(crate) fn test_request(path: &str, query: &str, headers: Vec<(String, String)>, remote: &str) -> Request {
    Request { method: "GET".into(), path: path.into(), query: crate::http::parse_query(query), headers, remote: remote.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_like_go() {
        assert_eq!(go_addr("10.0.0.1:80".parse().unwrap()), "10.0.0.1:80");
        assert_eq!(go_addr("[::ffff:10.0.0.1]:80".parse().unwrap()), "10.0.0.1:80");
        assert_eq!(go_addr("[fd00::1]:80".parse().unwrap()), "[fd00::1]:80");
    }

    #[test]
    fn targets_and_queries() {
        let (p, q) = split_target("/echo?msg=a%20b");
        assert_eq!((p.as_str(), q[0].1.as_str()), ("/echo", "a b"));
        assert_eq!(split_target("").0, "/");
        assert_eq!(encode_query(&[("msg".into(), "a b&c".into())]), "msg=a%20b%26c");
    }

    #[test]
    fn responses() {
        let r = Response::error(400, "bad");
        assert_eq!(r.body, b"bad\n");
        assert!(r.headers.iter().any(|(k, v)| k == "x-content-type-options" && v == "nosniff"));
        assert!(Response::text(200, "").headers.is_empty());
        let h = to_hyper(Response::text(1000, "x"));
        assert_eq!(h.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
