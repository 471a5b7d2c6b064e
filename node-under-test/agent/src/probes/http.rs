//! HTTP(S) probes: GET with headers, success for 200–399, redirects followed only to the same
//! host; a redirect to another host ends as success with a warning (upstream behaviour). HTTPS
//! does not verify the server's certificate, as upstream.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::state::ProbeOutcome;

const MAX_REDIRECTS: usize = 10;
const MAX_BODY: usize = 10 * 1024;

/// Where an HTTP probe goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl HttpTarget {
    fn url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{}://{}:{}{}", self.scheme.to_lowercase(), host, self.port, self.path)
    }
}

struct Response {
    status: u16,
    location: Option<String>,
    body: Bytes,
}

async fn get_once(t: &HttpTarget) -> Result<Response, String> {
    let addr = format!("{}:{}", t.host, t.port);
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: connect: {}", io_message(&e)))?;
    if t.scheme.eq_ignore_ascii_case("https") {
        exchange(super::tls::connect(stream, &t.host).await?, t).await
    } else {
        exchange(stream, t).await
    }
}

/// One GET over an established connection (plain or TLS).
async fn exchange<S>(io: S, t: &HttpTarget) -> Result<Response, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let mut req = http::Request::builder().method("GET").uri(if t.path.is_empty() { "/" } else { &t.path });
    let mut has_host = false;
    let mut has_ua = false;
    let mut has_accept = false;
    for (k, v) in &t.headers {
        has_host |= k.eq_ignore_ascii_case("host");
        has_ua |= k.eq_ignore_ascii_case("user-agent");
        has_accept |= k.eq_ignore_ascii_case("accept");
        req = req.header(k.as_str(), v.as_str());
    }
    if !has_host {
        req = req.header("Host", format!("{}:{}", t.host, t.port));
    }
    if !has_ua {
        req = req.header("User-Agent", "kube-probe/1.34");
    }
    if !has_accept {
        req = req.header("Accept", "*/*");
    }
    let req = req.header("Connection", "close").body(Empty::new()).map_err(|e| e.to_string())?;
    let work = async move {
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Some(d) = frame.data_ref() {
                buf.extend_from_slice(d);
                if buf.len() >= MAX_BODY {
                    buf.truncate(MAX_BODY);
                    break;
                }
            }
        }
        Ok::<_, String>(Response { status, location, body: Bytes::from(buf) })
    };
    let (r, _) = tokio::join!(work, conn);
    r
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// Resolves a Location header against the current target.
fn follow(t: &HttpTarget, location: &str) -> Option<HttpTarget> {
    if location.starts_with('/') {
        return Some(HttpTarget { path: location.to_string(), ..t.clone() });
    }
    let uri: http::Uri = location.parse().ok()?;
    let scheme = uri.scheme_str()?.to_string();
    let host = uri.host()?.trim_matches(['[', ']']).to_string();
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    Some(HttpTarget { scheme, host, port, path, headers: t.headers.clone() })
}

fn is_supported(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// Runs the probe within `timeout`.
pub async fn http_probe(target: &HttpTarget, timeout: Duration) -> ProbeOutcome {
    if !is_supported(&target.scheme) {
        return ProbeOutcome::Error(format!("scheme {} is not supported (HTTP and HTTPS are)", target.scheme));
    }
    let url = target.url();
    let run = async {
        let mut current = target.clone();
        for _ in 0..=MAX_REDIRECTS {
            let resp = get_once(&current).await?;
            if (300..400).contains(&resp.status)
                && let Some(next) = resp.location.as_deref().and_then(|l| follow(&current, l))
            {
                if next.host != current.host {
                    return Ok(resp);
                }
                if !is_supported(&next.scheme) {
                    return Err(format!("redirect to unsupported scheme {}", next.scheme));
                }
                current = next;
                continue;
            }
            return Ok(resp);
        }
        Err(format!("stopped after {MAX_REDIRECTS} redirects"))
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => ProbeOutcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => ProbeOutcome::Failure(format!("Get \"{url}\": {e}")),
        Ok(Ok(r)) if (200..300).contains(&r.status) => ProbeOutcome::Success,
        Ok(Ok(r)) if (300..400).contains(&r.status) => ProbeOutcome::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            String::from_utf8_lossy(&r.body)
        )),
        Ok(Ok(r)) => ProbeOutcome::Failure(format!("HTTP probe failed with statuscode: {}", r.status)),
    }
}

#[cfg(test)]
mod tests;
