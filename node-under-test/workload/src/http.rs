//! HTTP subcommands (netexec, serve-hostname, liveness) on a small hyper HTTP/1.1 server.
use crate::args::Invocation;
use crate::cmd::hostname;
use crate::{Error, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// A reply: status, body, optional Location header.
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Body text.
    pub body: String,
    /// Location header for redirects.
    pub location: Option<String>,
    /// Content type.
    pub content_type: &'static str,
}

impl Reply {
    fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Reply { status, body: body.into(), location: None, content_type: "text/plain; charset=utf-8" }
    }
}

/// What a handler sees of a request.
pub struct Req {
    /// Path without query.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
}

impl Req {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Sentinel for "do not exit".
const NO_EXIT: i32 = i32::MIN;

/// Serves `handler` on 0.0.0.0:port. A handler may request process exit by storing a code in
/// the shared slot; the process exits after that response has been written.
async fn serve<H>(port: u16, name: &str, handler: H) -> Result<i32>
where
    H: Fn(Req, &AtomicI32) -> Reply + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|e| Error::io(format!("bind tcp {port}"), e))?;
    println!("workload {name}: serving HTTP on port {port}");
    eprintln!("workload {name}: started");
    let handler = Arc::new(handler);
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| Error::io("accept", e))?;
        let handler = handler.clone();
        tokio::spawn(async move {
            let exit_code = Arc::new(AtomicI32::new(NO_EXIT));
            let ec = exit_code.clone();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                let ec = ec.clone();
                async move {
                    let r = handler(parse_req(&req), &ec);
                    let mut b = Response::builder()
                        .status(r.status)
                        .header("content-type", r.content_type);
                    if let Some(loc) = r.location {
                        b = b.header("location", loc);
                    }
                    if ec.load(Ordering::SeqCst) != NO_EXIT {
                        b = b.header("connection", "close");
                    }
                    b.body(Full::new(Bytes::from(r.body)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            let code = exit_code.load(Ordering::SeqCst);
            if code != NO_EXIT {
                println!("workload: exiting with code {code} as requested");
                crate::supervise::exit(code);
            }
        });
    }
}

fn parse_req<B>(req: &Request<B>) -> Req {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(parse_query).unwrap_or_default();
    Req { path, query }
}

/// Parses `a=b&c=d` with percent-decoding and `+` as space.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON string literal as Go's `encoding/json` writes it (`<`, `>`, `&`, U+2028 and U+2029
/// escaped too), so answers read like the upstream servers' do.
pub fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => o.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `serve-hostname [--port 9376]`: every path answers the hostname.
pub async fn serve_hostname(inv: &Invocation) -> Result<i32> {
    let port: u16 = inv.num("port", 9376)?;
    serve(port, "serve-hostname", |_req, _| Reply::text(StatusCode::OK, hostname())).await
}

/// The netexec HTTP routes.
pub fn netexec_route(req: Req, exit: &AtomicI32) -> Reply {
    match req.path.as_str() {
        "/healthz" => Reply::text(StatusCode::OK, "ok"),
        "/hostname" => Reply::text(StatusCode::OK, hostname()),
        "/echo" => Reply::text(StatusCode::OK, req.param("msg").unwrap_or_default()),
        "/exit" => match req.param("code").unwrap_or("0").parse::<i32>() {
            Ok(code) => {
                exit.store(code, Ordering::SeqCst);
                Reply::text(StatusCode::OK, format!("exiting with code {code}"))
            }
            Err(_) => Reply::text(StatusCode::BAD_REQUEST, "bad exit code"),
        },
        "/redirect" => match req.param("loc") {
            Some(loc) => Reply {
                status: StatusCode::FOUND,
                body: String::new(),
                location: Some(loc.to_string()),
                content_type: "text/plain; charset=utf-8",
            },
            None => Reply::text(StatusCode::BAD_REQUEST, "missing loc"),
        },
        "/shell" => {
            let Some(cmd) = req.param("cmd") else {
                return Reply::text(StatusCode::BAD_REQUEST, "missing cmd");
            };
            match std::process::Command::new("/bin/sh").arg("-c").arg(cmd).output() {
                Ok(out) => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    let status = if out.status.success() { StatusCode::OK } else { StatusCode::EXPECTATION_FAILED };
                    Reply {
                        status,
                        body: format!("{{\"output\":{}}}", json_string(&text)),
                        location: None,
                        content_type: "application/json",
                    }
                }
                Err(e) => Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("shell: {e}")),
            }
        }
        "/" => Reply::text(StatusCode::OK, format!("NOW: {:?}", std::time::SystemTime::now())),
        _ => Reply::text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// `netexec --http-port P [--udp-port P]`.
pub async fn netexec(inv: &Invocation) -> Result<i32> {
    let http_port: u16 = inv.num("http-port", 8080)?;
    if let Some(p) = inv.flag("udp-port") {
        let udp: u16 = p.parse().map_err(|_| Error::Usage(format!("--udp-port: not a number: {p:?}")))?;
        let sock = tokio::net::UdpSocket::bind(("0.0.0.0", udp))
            .await
            .map_err(|e| Error::io(format!("bind udp {udp}"), e))?;
        println!("workload netexec: serving UDP on port {udp}");
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                let msg = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                let reply = udp_reply(&msg, &peer.ip().to_string());
                let _ = sock.send_to(reply.as_bytes(), peer).await;
            }
        });
    }
    serve(http_port, "netexec", netexec_route).await
}

/// The netexec UDP protocol: `hostname`, `echo TEXT`, `clientip`.
pub fn udp_reply(msg: &str, peer_ip: &str) -> String {
    match msg.split_once(' ').unwrap_or((msg, "")) {
        ("hostname", _) => hostname(),
        ("echo", rest) => rest.to_string(),
        ("clientip", _) => peer_ip.to_string(),
        _ => format!("unknown command {msg:?}"),
    }
}

/// `liveness --fail-after D [--port 8080]`: 200 "ok" until D has passed, then 500.
pub async fn liveness(inv: &Invocation) -> Result<i32> {
    let port: u16 = inv.num("port", 8080)?;
    let fail_after = inv.duration("fail-after", Duration::from_secs(10))?;
    let start = Instant::now();
    serve(port, "liveness", move |_req, _| {
        let up = start.elapsed();
        if up < fail_after {
            Reply::text(StatusCode::OK, "ok")
        } else {
            Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("error: up {:.3}s", up.as_secs_f64()))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("msg=hello%20world&x=a+b&bad=%zz&empty");
        assert_eq!(q[0], ("msg".into(), "hello world".into()));
        assert_eq!(q[1], ("x".into(), "a b".into()));
        assert_eq!(q[2], ("bad".into(), "%zz".into()));
        assert_eq!(q[3], ("empty".into(), "".into()));
        assert_eq!(parse_query("a=%4"), vec![("a".into(), "%4".into())]);
    }

    #[test]
    fn json_escaping() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn routes() {
        let exit = AtomicI32::new(NO_EXIT);
        let r = netexec_route(Req { path: "/echo".into(), query: parse_query("msg=hi") }, &exit);
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hi"));
        let r = netexec_route(Req { path: "/redirect".into(), query: parse_query("loc=/healthz") }, &exit);
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(r.location.as_deref(), Some("/healthz"));
        let r = netexec_route(Req { path: "/nope".into(), query: vec![] }, &exit);
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(exit.load(Ordering::SeqCst), NO_EXIT);
        let r = netexec_route(Req { path: "/exit".into(), query: parse_query("code=4") }, &exit);
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(exit.load(Ordering::SeqCst), 4);
        assert_eq!(udp_reply("echo a b", "1.2.3.4"), "a b");
        assert_eq!(udp_reply("clientip", "1.2.3.4"), "1.2.3.4");
    }
}
