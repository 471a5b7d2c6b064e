//! The subresources that reach a kubelet: `pods/log`, `pods/exec`, `pods/attach`,
//! `pods/portforward` and `nodes/proxy`, as upstream's pod and node REST storage: the pod's
//! container is defaulted and checked, the options become the kubelet's query parameters
//! (`stdin` → `input`, …, as upstream's `streamParams`), and the request goes through one
//! upgrade-following proxy hop to the kubelet of the pod's node — except WebSocket v5 exec and
//! attach and kubectl's port-forward tunnel, which [`super::translate`] carries over SPDY.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use super::Body;
use crate::error::{ApiError, Cause};
use crate::resources;
use crate::server::State;

type ApiResult<T> = std::result::Result<T, ApiError>;

/// A pod subresource served by the kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodConnect {
    Log,
    Exec,
    Attach,
    PortForward,
}

/// A request that goes to a kubelet.
#[derive(Debug, Clone, PartialEq)]
pub enum Connect {
    Pod { ns: String, name: String, kind: PodConnect },
    /// `/api/v1/nodes/{id}/proxy{path}`: `id` is `name`, `name:port` or `scheme:name:port`.
    NodeProxy { id: String, path: String },
}

impl Connect {
    /// The resource and subresource, for faults and the audit log.
    pub fn resource(&self) -> (&'static str, &'static str) {
        match self {
            Connect::Pod { kind: PodConnect::Log, .. } => ("pods", "log"),
            Connect::Pod { kind: PodConnect::Exec, .. } => ("pods", "exec"),
            Connect::Pod { kind: PodConnect::Attach, .. } => ("pods", "attach"),
            Connect::Pod { kind: PodConnect::PortForward, .. } => ("pods", "portforward"),
            Connect::NodeProxy { .. } => ("nodes", "proxy"),
        }
    }
}

/// Recognises a connect path (segments after `/api/v1/`), with `raw` the whole request path.
pub fn route(rest: &[&str], raw: &str) -> Option<Connect> {
    match rest {
        ["namespaces", ns, "pods", name, sub] => {
            let kind = match *sub {
                "log" => PodConnect::Log,
                "exec" => PodConnect::Exec,
                "attach" => PodConnect::Attach,
                "portforward" => PodConnect::PortForward,
                _ => return None,
            };
            Some(Connect::Pod { ns: ns.to_string(), name: name.to_string(), kind })
        }
        ["nodes", id, "proxy", ..] if !id.is_empty() => {
            let marker = format!("/nodes/{id}/proxy");
            let path = raw.find(&marker).map(|i| &raw[i + marker.len()..]).unwrap_or("");
            let path = if path.is_empty() { "/".to_string() } else { path.to_string() };
            Some(Connect::NodeProxy { id: id.to_string(), path })
        }
        _ => None,
    }
}

/// Every value of `key` in a raw query, in order.
fn values(query: &str, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == key).map(|(_, v)| v.into_owned()).collect()
}

/// A boolean option as Kubernetes converts a query value: absent, "false" or "0" (any case)
/// is false, anything else (even empty) is true.
fn flag(query: &str, key: &str) -> bool {
    values(query, key).first().is_some_and(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

/// Upstream's `validateContainer`: the named container must exist; without a name a pod with
/// one container means that one.
pub fn container_of(pod: &Value, requested: Option<&str>) -> ApiResult<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).map(str::to_string).collect()
    };
    let (init, main, ephemeral) = (names("initContainers"), names("containers"), names("ephemeralContainers"));
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if init.iter().chain(&main).chain(&ephemeral).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}"))),
        None if main.len() == 1 => Ok(main[0].clone()),
        None if main.is_empty() => Err(ApiError::bad_request(format!("a container name must be specified for pod {name}"))),
        None => {
            let all: Vec<String> = init.into_iter().chain(main).chain(ephemeral).collect();
            Err(ApiError::bad_request(format!("a container name must be specified for pod {name}, choose one of: [{}]", all.join(" "))))
        }
    }
}

/// Upstream's PodLogOptions validation, then the kubelet's query for them.
pub fn log_params(query: &str) -> ApiResult<String> {
    let mut causes = Vec::new();
    let mut out = form_urlencoded::Serializer::new(String::new());
    for key in ["follow", "previous", "timestamps"] {
        if flag(query, key) {
            out.append_pair(key, "true");
        }
    }
    let number = |key: &str, causes: &mut Vec<Cause>| -> Option<i64> {
        let v = values(query, key).pop()?;
        match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                causes.push(Cause::invalid(key, &v, "must be an integer"));
                None
            }
        }
    };
    if let Some(n) = number("tailLines", &mut causes) {
        if n < 0 { causes.push(Cause::invalid("tailLines", &n.to_string(), "must be greater than or equal to 0")) } else { out.append_pair("tailLines", &n.to_string()); }
    }
    if let Some(n) = number("limitBytes", &mut causes) {
        if n < 1 { causes.push(Cause::invalid("limitBytes", &n.to_string(), "must be greater than 0")) } else { out.append_pair("limitBytes", &n.to_string()); }
    }
    let since_seconds = number("sinceSeconds", &mut causes);
    let since_time = values(query, "sinceTime").pop();
    match (since_seconds, &since_time) {
        (Some(_), Some(_)) => causes.push(Cause::forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified")),
        (Some(n), None) if n < 1 => causes.push(Cause::invalid("sinceSeconds", &n.to_string(), "must be greater than 0")),
        (Some(n), None) => {
            out.append_pair("sinceSeconds", &n.to_string());
        }
        (None, Some(t)) if t.parse::<jiff::Timestamp>().is_err() => causes.push(Cause::invalid("sinceTime", t, "must be an RFC3339 time")),
        (None, Some(t)) => {
            out.append_pair("sinceTime", t);
        }
        (None, None) => {}
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", "", causes));
    }
    Ok(out.finish())
}

/// Upstream's `streamParams`: PodExecOptions / PodAttachOptions / PodPortForwardOptions as
/// the kubelet's query.
pub fn stream_params(kind: PodConnect, query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    if kind == PodConnect::PortForward {
        let ports: Vec<String> = values(query, "ports").iter().flat_map(|v| v.split(',').map(|p| p.trim().to_string())).filter(|p| !p.is_empty()).collect();
        if !ports.is_empty() {
            out.append_pair("port", &ports.join(","));
        }
        return out.finish();
    }
    for (opt, param) in [("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty")] {
        if flag(query, opt) {
            out.append_pair(param, "1");
        }
    }
    if kind == PodConnect::Exec {
        for c in values(query, "command") {
            out.append_pair("command", &c);
        }
    }
    out.finish()
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() { path } else { format!("{path}?{query}") }
}

/// Serves a connect request.
pub async fn handle(state: &Arc<State>, req: Request<Incoming>, c: &Connect) -> ApiResult<Response<Body>> {
    match c {
        Connect::Pod { ns, name, kind } => pod(state, req, ns, name, *kind).await,
        Connect::NodeProxy { id, path } => node_proxy(state, req, id, path).await,
    }
}

async fn pod(state: &Arc<State>, req: Request<Incoming>, ns: &str, name: &str, kind: PodConnect) -> ApiResult<Response<Body>> {
    let allowed = if kind == PodConnect::Log { &[Method::GET][..] } else { &[Method::GET, Method::POST][..] };
    if !allowed.contains(req.method()) {
        return Err(ApiError::method_not_allowed(&req.method().to_string().to_lowercase()));
    }
    let pod = state.store.get(resources::PODS, ns, name).ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let query = req.uri().query().unwrap_or("").to_string();
    let (path, params) = match kind {
        PodConnect::PortForward => (format!("/portForward/{ns}/{name}"), stream_params(kind, &query)),
        _ => {
            let container = container_of(&pod.value, values(&query, "container").pop().as_deref())?;
            match kind {
                PodConnect::Log => (format!("/containerLogs/{ns}/{name}/{container}"), log_params(&query)?),
                PodConnect::Exec => (format!("/exec/{ns}/{name}/{container}"), stream_params(kind, &query)),
                _ => (format!("/attach/{ns}/{name}/{container}"), stream_params(kind, &query)),
            }
        }
    };
    let node_name = pod.value["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        if kind == PodConnect::Log {
            // Upstream streams nothing for a pod that has no node yet.
            return Ok(text_response(StatusCode::OK, ""));
        }
        return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned")));
    }
    let path = with_query(path, &params);
    let offered = super::translate::offered(req.headers());
    match kind {
        PodConnect::Exec | PodConnect::Attach if offered.iter().any(|p| p == super::translate::V5) => {
            let streams = super::translate::Streams { stdin: flag(&query, "stdin"), stdout: flag(&query, "stdout"), stderr: flag(&query, "stderr"), tty: flag(&query, "tty") };
            return super::translate::remote_command(state, req, node_name, &path, streams).await;
        }
        PodConnect::PortForward if offered.iter().any(|p| p == super::translate::PORT_FORWARD_TUNNEL) => {
            return super::translate::port_forward_tunnel(state, req, node_name, &path).await;
        }
        _ => {}
    }
    let resp = to_kubelet(state, req, node_name, None, &path).await?;
    if kind == PodConnect::Log {
        return log_response(resp, name).await;
    }
    Ok(passthrough(resp))
}

/// A kubelet's error as upstream's `GenericHttpResponseChecker` turns it into a Status.
async fn log_response(resp: Response<Incoming>, pod: &str) -> ApiResult<Response<Body>> {
    let status = resp.status();
    if status.is_success() {
        let mut r = passthrough(resp);
        r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        return Ok(r);
    }
    let body = http_body_util::Limited::new(resp.into_body(), 4096).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim_end().to_string();
    Err(match status.as_u16() {
        400 => ApiError::bad_request(text),
        404 => ApiError { code: 404, reason: "NotFound", message: text, details: Some(serde_json::json!({"name": pod, "kind": "pods/log"})) },
        401 | 403 => ApiError::forbidden(text),
        _ => ApiError::internal(text),
    })
}

fn text_response(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(super::full(body));
    *r.status_mut() = code;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    r
}

/// The kubelet's answer as it came, minus the headers of its own hop.
fn passthrough(resp: Response<Incoming>) -> Response<Body> {
    let upgraded = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let mut resp = resp.map(|b| upgrade_proxy::Lossy::new(b).boxed());
    if !upgraded {
        for h in ["connection", "keep-alive", "transfer-encoding", "upgrade"] {
            resp.headers_mut().remove(h);
        }
    }
    resp
}

/// A TLS connection to node `node_name`'s kubelet (`port`: another port of it).
pub async fn dial_node(
    state: &Arc<State>,
    node_name: &str,
    port: Option<u16>,
) -> ApiResult<(std::net::SocketAddr, tokio_rustls::client::TlsStream<tokio::net::TcpStream>)> {
    let node = state.store.get(resources::NODES, "", node_name).ok_or_else(|| ApiError::not_found("", "nodes", node_name))?;
    let addr = crate::kubelet_client::kubelet_addr(&node.value, port)?;
    Ok((addr, state.kubelet.dial(addr).await?))
}

/// Forwards `req` to node `node_name`'s kubelet (`port`: another port of it).
async fn to_kubelet(state: &Arc<State>, req: Request<Incoming>, node_name: &str, port: Option<u16>, path: &str) -> ApiResult<Response<Incoming>> {
    let (addr, io) = dial_node(state, node_name, port).await?;
    let target = upgrade_proxy::Target { path_and_query: path, host: &addr.to_string() };
    upgrade_proxy::forward(io, req, target, state.cancel.clone())
        .await
        .map_err(|e| ApiError::new(503, "ServiceUnavailable", e.to_string()))
}

/// Upstream's `SplitSchemeNamePort`: `name`, `name:port`, `scheme:name:port`.
pub fn split_node_id(id: &str) -> ApiResult<(String, Option<String>, Option<u16>)> {
    let bad = || ApiError::bad_request(format!("invalid request {id:?}"));
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [n] => (None, *n, None),
        [n, p] => (None, *n, Some(*p)),
        [s, n, p] => (Some(*s), *n, Some(*p)),
        _ => return Err(bad()),
    };
    if name.is_empty() || scheme.is_some_and(|s| s != "http" && s != "https") {
        return Err(bad());
    }
    let port = match port.filter(|p| !p.is_empty()) {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
        None => None,
    };
    Ok((name.to_string(), scheme.map(str::to_string), port))
}

async fn node_proxy(state: &Arc<State>, req: Request<Incoming>, id: &str, path: &str) -> ApiResult<Response<Body>> {
    let (name, scheme, port) = split_node_id(id)?;
    if scheme.as_deref() == Some("http") {
        return Err(ApiError::bad_request(format!("node {name}: only https is served by the kubelet API")));
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let resp = to_kubelet(state, req, &name, port, &with_query(path.to_string(), &query)).await?;
    Ok(passthrough(resp))
}

#[cfg(test)]
mod tests;
