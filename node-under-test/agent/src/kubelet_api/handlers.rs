//! Request dispatch: the auth filter, routing, and the small endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::KubeletApi;
use super::auth::UserInfo;
use super::respond::{Body, json, method_not_allowed, not_found, text, with_type};
use super::router::{Route, route};
use crate::cri::Runtime;

/// Largest form body `/run` reads.
const MAX_FORM: usize = 1 << 20;

/// Answers one request on a connection whose verified client certificate names
/// `certificate_user`; every path is authenticated and authorized first.
pub async fn handle<R: Runtime>(api: Arc<KubeletApi<R>>, certificate_user: Option<&UserInfo>, mut req: Request<Incoming>) -> Response<Body> {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    if let Err(refusal) = api.gate.admit(certificate_user, &method, &path, req.headers_mut()).await {
        return refusal.response();
    }
    let query = req.uri().query().unwrap_or("").to_string();
    match route(req.method(), req.uri().path()) {
        Route::Healthz => text(StatusCode::OK, "ok"),
        Route::Pods => pods(&api),
        Route::ContainerLogs(p) => super::logs_serve::serve(api.runtime.clone(), &api.pods, &p, &query, api.cancel.clone()).await,
        Route::Run(p) => {
            let form = read_form(req).await;
            let cmd = super::run::command(&query, &form);
            super::run::serve(api.runtime.as_ref(), &api.pods, &p, cmd, api.exec_timeout).await
        }
        Route::Streaming(kind, p) => super::stream::serve(api.runtime.as_ref(), &api.pods, kind, &p, req, api.cancel.clone()).await,
        Route::StatsSummary => match api.stats.summary().await {
            Ok(s) => json(serde_json::to_vec(&s).unwrap_or_default()),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("Internal Error: {e}")),
        },
        Route::Metrics => metrics(&api).await,
        Route::MetricsResource => {
            let summary = api.stats.summary().await.inspect_err(|e| tracing::warn!(error = %e, "reading stats for /metrics/resource")).ok();
            prometheus(super::resource::render_resource_metrics(summary.as_ref()))
        }
        Route::MetricsProbes => prometheus(super::exposition::render_probe_metrics(&api.metrics.probe_counts(), api.started)),
        Route::Configz => configz(&api),
        Route::NotFound => not_found(),
        Route::MethodNotAllowed { allow } => method_not_allowed(allow),
    }
}

/// A form body (`application/x-www-form-urlencoded`), empty for anything else.
async fn read_form(req: Request<Incoming>) -> String {
    let is_form = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return String::new();
    }
    match http_body_util::Limited::new(req.into_body(), MAX_FORM).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    }
}

fn prometheus(body: String) -> Response<Body> {
    with_type(StatusCode::OK, super::prom::CONTENT_TYPE, super::respond::full(body))
}

/// `/pods`: a v1 PodList of the pods this agent runs.
fn pods<R>(api: &KubeletApi<R>) -> Response<Body> {
    let list = serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": api.pods.list(),
    });
    json(serde_json::to_vec(&list).unwrap_or_default())
}

/// Drops nulls and empty arrays and objects, as Go's `omitempty` leaves them out.
fn omit_empty(v: serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) => {
            let o: serde_json::Map<String, Value> = o.into_iter().filter_map(|(k, v)| omit_empty(v).map(|v| (k, v))).collect();
            (!o.is_empty()).then_some(Value::Object(o))
        }
        v => Some(v),
    }
}

/// `/configz`: `{"kubeletconfig": …}` with upstream field names.
pub fn configz_body(cfg: &crate::config::KubeletConfiguration) -> serde_json::Value {
    let cfg = serde_json::to_value(cfg).ok().and_then(omit_empty).unwrap_or_else(|| serde_json::json!({}));
    serde_json::json!({ "kubeletconfig": cfg })
}

fn configz<R>(api: &KubeletApi<R>) -> Response<Body> {
    json(serde_json::to_vec(&configz_body(&api.cfg)).unwrap_or_default())
}

/// `/metrics`: the agent's metrics plus the runtime gauges.
async fn metrics<R: Runtime>(api: &KubeletApi<R>) -> Response<Body> {
    let mut text = api.metrics.render();
    let sandboxes = api.runtime.list_pod_sandboxes(HashMap::new()).await;
    let containers = api.runtime.list_containers(HashMap::new()).await;
    match (sandboxes, containers) {
        (Ok(s), Ok(c)) => text.push_str(&super::exposition::render_runtime_gauges(&s, &c)),
        (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "listing the runtime for /metrics"),
    }
    prometheus(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configz_has_upstream_names_and_no_empty_fields() {
        let cfg = crate::config::KubeletConfiguration::default();
        let v = configz_body(&cfg);
        let k = &v["kubeletconfig"];
        assert_eq!(k["port"], 10250);
        assert_eq!(k["address"], "0.0.0.0");
        assert_eq!(k["authorization"]["mode"], "Webhook");
        assert_eq!(k["nodeStatusUpdateFrequency"], "10s");
        assert!(k.get("staticPodPath").is_none(), "unset fields are left out: {k}");
        assert!(k.get("clusterDNS").is_none(), "empty lists are left out: {k}");
        assert!(k.get("nodekit").is_none());
    }
}
