//! `/exec`, `/attach` and `/portForward`, as upstream's kubelet serves them: the options from
//! the query (upstream's `remotecommand.NewOptions`), the container or sandbox looked up, the
//! runtime asked for a streaming URL (CRI Exec / Attach / PortForward), and the request proxied
//! to that URL with its query and upgrade, so WebSocket and SPDY reach the runtime untouched.

use std::collections::HashMap;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use super::containers;
use super::query;
use super::respond::{Body, text};
use super::router::{ContainerPath, Streaming};
use crate::cri::{CriError, Runtime, api, keys};
use crate::pods::registry::PodRegistry;

/// Upstream's stream options for exec and attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// `input`, `output`, `error` and `tty` are "1" when set; with a TTY stderr is dropped (it
/// shares the terminal); at least one stream is required, with upstream's message.
pub fn options(q: &str) -> Result<StreamOptions, String> {
    let set = |k: &str| query::first(q, k).as_deref() == Some("1");
    let tty = set("tty");
    let o = StreamOptions { stdin: set("input"), stdout: set("output"), stderr: set("error") && !tty, tty };
    if !o.stdin && !o.stdout && !o.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(o)
}

/// A runtime refusal as upstream's `streaming.WriteError` answers it: the gRPC code's HTTP
/// status and the runtime's message.
fn runtime_error(e: &CriError) -> Response<Body> {
    let status = match e {
        CriError::Rpc { code: tonic::Code::InvalidArgument, .. } => StatusCode::BAD_REQUEST,
        CriError::Rpc { code: tonic::Code::NotFound, .. } => StatusCode::NOT_FOUND,
        CriError::Rpc { code: tonic::Code::ResourceExhausted, .. } => StatusCode::TOO_MANY_REQUESTS,
        CriError::Rpc { code: tonic::Code::Unimplemented, .. } => StatusCode::NOT_IMPLEMENTED,
        CriError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match e {
        CriError::Rpc { message, .. } => message.clone(),
        other => other.to_string(),
    };
    text(status, message)
}

/// Serves one streaming request.
pub async fn serve<R: Runtime>(
    runtime: &R,
    pods: &PodRegistry,
    kind: Streaming,
    path: &ContainerPath,
    req: Request<Incoming>,
    cancel: CancellationToken,
) -> Response<Body> {
    let Some(pod) = pods.by_name(&path.namespace, &path.pod) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if path.uid.as_ref().is_some_and(|u| *u != uid) {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    }
    let q = req.uri().query().unwrap_or("").to_string();
    let url = match kind {
        Streaming::PortForward => match forward_ports(&q, &req) {
            Ok(_) if crate::faults::active(crate::faults::Fault::PortForwardNoPorts) => sandbox_url(runtime, &uid, Vec::new()).await,
            Ok(ports) => sandbox_url(runtime, &uid, ports).await,
            Err(m) => Err(text(StatusCode::BAD_REQUEST, m)),
        },
        _ => container_url(runtime, kind, &uid, &path.container, &q).await,
    };
    match url {
        Ok(url) => proxy(&url, req, cancel).await,
        Err(resp) => resp,
    }
}

async fn container_url<R: Runtime>(runtime: &R, kind: Streaming, uid: &str, name: &str, q: &str) -> Result<String, Response<Body>> {
    let opts = options(q).map_err(|m| text(StatusCode::BAD_REQUEST, m))?;
    let instances = containers::instances(runtime, uid, name).await.map_err(|r| text(super::respond::status(r.status), r.message))?;
    let Some(c) = instances.into_iter().find(|c| c.state == api::ContainerState::ContainerRunning as i32) else {
        return Err(text(StatusCode::NOT_FOUND, format!("container not found ({name:?})")));
    };
    let StreamOptions { stdin, stdout, stderr, tty } = opts;
    let url = if kind == Streaming::Exec {
        let cmd = query::all(q, "command");
        runtime.exec(api::ExecRequest { container_id: c.id, cmd, tty, stdin, stdout, stderr }).await
    } else {
        runtime.attach(api::AttachRequest { container_id: c.id, stdin, tty, stdout, stderr }).await
    };
    url.map_err(|e| runtime_error(&e))
}

/// The ports of a WebSocket port-forward (upstream's `NewV4Options`: the `port` parameter,
/// repeated or comma-separated, required); SPDY clients name ports per stream instead.
pub fn forward_ports(q: &str, req: &Request<Incoming>) -> Result<Vec<i32>, String> {
    let websocket = req.headers().get(http::header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !websocket {
        return Ok(Vec::new());
    }
    parse_ports(&query::all(q, "port"))
}

/// `port` values as upstream parses them, with its messages.
pub fn parse_ports(values: &[String]) -> Result<Vec<i32>, String> {
    if values.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    let mut ports = Vec::new();
    for v in values {
        if v.is_empty() {
            return Err("query parameter \"port\" cannot be empty".into());
        }
        for p in v.split(',') {
            let n: u16 = p.parse().map_err(|e| format!("unable to parse {p:?} as a port: {e}"))?;
            if n == 0 {
                return Err(format!("port {p:?} must be > 0"));
            }
            ports.push(i32::from(n));
        }
    }
    Ok(ports)
}

async fn sandbox_url<R: Runtime>(runtime: &R, uid: &str, ports: Vec<i32>) -> Result<String, Response<Body>> {
    let labels: HashMap<String, String> = [(keys::POD_UID.to_string(), uid.to_string())].into();
    let sandboxes = runtime.list_pod_sandboxes(labels).await.map_err(|e| runtime_error(&e))?;
    let Some(sb) = sandboxes.into_iter().find(|s| s.state == api::PodSandboxState::SandboxReady as i32) else {
        return Err(text(StatusCode::NOT_FOUND, "pod not found: no ready sandbox"));
    };
    runtime.port_forward(api::PortForwardRequest { pod_sandbox_id: sb.id, port: ports }).await.map_err(|e| runtime_error(&e))
}

/// The host:port and path of a runtime's `http://` streaming URL.
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let slash = rest.find('/').unwrap_or(rest.len());
    let (host, path) = rest.split_at(slash);
    (!host.is_empty()).then_some((host, if path.is_empty() { "/" } else { path }))
}

/// Proxies `req` to the runtime's `url`, keeping the request's query (upstream's
/// `proxyStream` with an UpgradeAwareHandler).
async fn proxy(url: &str, req: Request<Incoming>, cancel: CancellationToken) -> Response<Body> {
    let Some((host, path)) = split_url(url) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, format!("the runtime answered an unusable streaming URL {url:?}"));
    };
    let path = match req.uri().query() {
        _ if crate::faults::active(crate::faults::Fault::PortForwardNoPorts) => path.to_string(),
        Some(q) if !path.contains('?') => format!("{path}?{q}"),
        _ => path.to_string(),
    };
    let tcp = match tokio::net::TcpStream::connect(host).await {
        Ok(t) => t,
        Err(e) => return text(StatusCode::BAD_GATEWAY, format!("error dialing the runtime's streaming server {host}: {e}")),
    };
    let _ = tcp.set_nodelay(true);
    match upgrade_proxy::forward(tcp, req, upgrade_proxy::Target { path_and_query: &path, host }, cancel).await {
        Ok(resp) => resp.map(|b| b.map_err(std::io::Error::other).boxed_unsync()),
        Err(e) => text(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_as_upstream_decodes_them() {
        let o = options("command=ls&input=1&output=1&error=1").unwrap();
        assert_eq!(o, StreamOptions { stdin: true, stdout: true, stderr: true, tty: false });
        let tty = options("output=1&error=1&tty=1").unwrap();
        assert_eq!(tty, StreamOptions { stdin: false, stdout: true, stderr: false, tty: true }, "stderr is bypassed with a tty");
        assert_eq!(options("command=ls&output=true").unwrap_err(), "you must specify at least 1 of stdin, stdout, stderr");
    }

    #[test]
    fn forwarded_ports_as_upstream_parses_them() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_ports(&v(&["80,443", "8080"])).unwrap(), vec![80, 443, 8080]);
        assert_eq!(parse_ports(&[]).unwrap_err(), "query parameter \"port\" is required");
        assert!(parse_ports(&v(&["70000"])).is_err());
        assert!(parse_ports(&v(&["0"])).is_err());
    }

    #[test]
    fn streaming_urls() {
        assert_eq!(split_url("http://127.0.0.1:4000/exec/abc"), Some(("127.0.0.1:4000", "/exec/abc")));
        assert_eq!(split_url("http://[::1]:4000"), Some(("[::1]:4000", "/")));
        assert_eq!(split_url("https://x/exec"), None);
        assert_eq!(split_url("http:///exec"), None);
    }
}
