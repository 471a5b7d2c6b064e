//! Serving events.k8s.io/v1 Events from the core/v1 Event storage.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{Value, json};

use super::{Body, ResourceRoute, value_response};
use crate::api::DeleteOpts;
use crate::error::{ApiError, ApiResult, success_status};
use crate::events::{core_selector, from_core, to_core};
use crate::patch::{self, PatchType};
use crate::resources::{EVENTS, EVENTS_V1};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::State;

fn not_found(name: &str) -> ApiError {
    ApiError::not_found("events.k8s.io", "events", name)
}

fn selectors(q: &HashMap<String, String>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let label = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let field = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""), EVENTS_V1.desc())?;
    Ok((label, core_selector(field)))
}

fn body_value(ct: &str, body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    patch::decode_body(ct, body)
}

fn check_v1(v: &Value) -> ApiResult<()> {
    match v.get("apiVersion").and_then(Value::as_str) {
        None | Some("events.k8s.io/v1") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!("the API version in the data ({other}) does not match the expected API version (events.k8s.io/v1)")));
        }
    }
    match v.get("kind").and_then(Value::as_str) {
        None | Some("Event") => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!("{other} cannot be handled as a Event"))),
    }
}

/// Handle one events.k8s.io/v1 request.
#[allow(clippy::too_many_arguments)]
pub fn handle(
    state: &Arc<State>,
    r: &ResourceRoute,
    verb: &str,
    method: &Method,
    ct: &str,
    body: &Bytes,
    q: &HashMap<String, String>,
    close_watch_after: Option<u64>,
) -> ApiResult<Response<Body>> {
    let ns = r.ns.clone().unwrap_or_default();
    let name = r.name.as_deref().unwrap_or("");
    let api = &state.api;
    let out = |v: &Value| from_core(v);
    let dry = q.get("dryRun").map(String::as_str) == Some("All");
    match verb {
        "get" => {
            let o = state.store.get(EVENTS, &ns, name).ok_or_else(|| not_found(name))?;
            Ok(value_response(200, &out(&o.value)))
        }
        "list" => {
            let (label, field) = selectors(q)?;
            let page = state.store.list(EVENTS, r.ns.as_deref(), None, None, &|v| label.matches(v) && field.matches(v));
            let items: Vec<Value> = page.items.iter().map(|o| out(&o.value)).collect();
            Ok(value_response(200, &json!({"kind": "EventList", "apiVersion": "events.k8s.io/v1",
                "metadata": {"resourceVersion": page.rv.to_string()}, "items": items})))
        }
        "watch" => {
            let mut q2 = q.clone();
            q2.remove("fieldSelector");
            let mut p = super::watch::WatchParams::from_query(EVENTS, &q2)?;
            p.field = selectors(q)?.1;
            if let Some(n) = &r.name {
                p.field.0.push(crate::selectors::FieldReq { field: "metadata.name".into(), value: n.clone(), negate: false });
            }
            p.close_after = close_watch_after;
            p.convert = Some(from_core);
            p.view = Some(EVENTS_V1);
            Ok(super::watch::response(state.clone(), EVENTS, r.ns.clone(), p))
        }
        "create" if r.name.is_none() && r.ns.is_some() => {
            let v = body_value(ct, body)?;
            check_v1(&v)?;
            let o = api.create_with(EVENTS, &ns, to_core(&v), dry)?;
            Ok(value_response(201, &out(&o.value)))
        }
        "update" if r.name.is_some() => {
            let v = body_value(ct, body)?;
            check_v1(&v)?;
            let o = api.update_with(EVENTS, &ns, name, to_core(&v), None, dry)?;
            Ok(value_response(200, &out(&o.value)))
        }
        "patch" if r.name.is_some() => {
            let pt = PatchType::from_content_type(ct)?;
            let cur = state.store.get(EVENTS, &ns, name);
            let (patched, code) = match (pt, cur) {
                (PatchType::Apply, cur) => {
                    let applied = patch::decode_yaml(body)?;
                    let manager = q.get("fieldManager").map(String::as_str).unwrap_or("");
                    if manager.is_empty() {
                        return Err(ApiError::bad_request("PATCH, field manager is required for apply requests"));
                    }
                    let live = cur.as_ref().map(|c| from_core(&c.value));
                    let force = q.get("force").map(String::as_str) == Some("true");
                    let v = crate::apply::server_side_apply(live.as_ref(), &applied, manager, "Event", &crate::api::now_rfc3339(), force)?;
                    if cur.is_none() {
                        let mut v = v;
                        v["metadata"]["name"] = json!(name);
                        let o = api.create_with(EVENTS, &ns, to_core(&v), dry)?;
                        return Ok(value_response(201, &out(&o.value)));
                    }
                    (v, 200)
                }
                (_, None) => return Err(not_found(name)),
                (pt, Some(c)) => (patch::apply_patch(pt, &from_core(&c.value), body, "Event")?, 200),
            };
            let o = api.update_with(EVENTS, &ns, name, to_core(&patched), None, dry)?;
            Ok(value_response(code, &out(&o.value)))
        }
        "delete" if r.name.is_some() => {
            let mut opts = if body.is_empty() { DeleteOpts::default() } else { DeleteOpts::from_body(Some(&patch::decode_body(ct, body)?))? };
            opts.dry_run |= dry;
            let d = api.delete(EVENTS, &ns, name, &opts)?;
            Ok(value_response(200, &out(&d.obj.value)))
        }
        "deletecollection" => {
            let (label, field) = selectors(q)?;
            let page = state.store.list(EVENTS, r.ns.as_deref(), None, None, &|v| label.matches(v) && field.matches(v));
            for o in &page.items {
                let _ = api.delete(EVENTS, o.namespace(), o.name(), &DeleteOpts::default());
            }
            Ok(value_response(200, &success_status(200, None)))
        }
        _ => Err(ApiError::method_not_allowed(method.as_str())),
    }
}
