//! The test-surface admin API outside the Kubernetes API: /nodekit/audit, /nodekit/faults, /nodekit/partition.

use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{Body, json_response, read_body, value_response};
use crate::error::ApiError;
use crate::faults::FaultRule;
use crate::server::State;

fn err(code: u16, msg: &str) -> Response<Body> {
    super::error_response(&ApiError::new(code, if code == 404 { "NotFound" } else { "BadRequest" }, msg))
}

/// Serve one admin request.
pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = super::parse_query(req.uri().query().unwrap_or(""));
    let body = match read_body(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(e) => return super::error_response(&e),
    };
    match (method, path.as_str()) {
        (Method::GET, "/nodekit/healthz") => json_response(200, "ok"),
        (Method::GET, "/nodekit/audit") => {
            let entries = state.audit.entries();
            if query.get("format").map(String::as_str) == Some("jsonl") {
                let mut out = String::new();
                for e in &entries {
                    out.push_str(&serde_json::to_string(e).unwrap_or_default());
                    out.push('\n');
                }
                return json_response(200, out);
            }
            value_response(200, &serde_json::to_value(entries).unwrap_or(Value::Null))
        }
        (Method::DELETE, "/nodekit/audit") => {
            state.audit.clear();
            value_response(200, &json!({"cleared": true}))
        }
        (Method::GET, "/nodekit/faults") => value_response(200, &serde_json::to_value(state.faults.list()).unwrap_or(Value::Null)),
        (Method::POST, "/nodekit/faults") => match serde_json::from_slice::<FaultRule>(&body) {
            Ok(rule) => value_response(201, &json!({"id": state.faults.add(rule)})),
            Err(e) => err(400, &format!("invalid fault rule: {e}")),
        },
        (Method::DELETE, "/nodekit/faults") => {
            state.faults.clear();
            value_response(200, &json!({"cleared": true}))
        }
        (Method::DELETE, p) if p.starts_with("/nodekit/faults/") => {
            match p.trim_start_matches("/nodekit/faults/").parse::<u64>() {
                Ok(id) if state.faults.remove(id) => value_response(200, &json!({"removed": id})),
                Ok(_) => err(404, "no such fault rule"),
                Err(_) => err(400, "fault id must be an integer"),
            }
        }
        (Method::GET, "/nodekit/partition") => value_response(200, &json!({"enabled": state.faults.partitioned()})),
        (Method::POST, "/nodekit/partition") => {
            let from_query = query.get("enabled").or_else(|| query.get("on")).map(|v| v == "true" || v == "1");
            let from_body = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("enabled").and_then(Value::as_bool));
            match from_query.or(from_body) {
                Some(on) => {
                    state.faults.set_partition(on);
                    value_response(200, &json!({"enabled": on}))
                }
                None => err(400, "expected {\"enabled\": true|false} or ?enabled=true|false"),
            }
        }
        _ => err(404, "unknown admin path"),
    }
}
