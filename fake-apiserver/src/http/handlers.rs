//! Handlers for resource verbs and discovery routes.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::node_admission::NodeWrites;
use super::{Body, ResourceRoute, Route, error_response, json_response, read_body, value_response};
use crate::api::DeleteOpts;
use crate::discovery;
use crate::error::{ApiError, ApiResult, success_status};
use crate::patch::{self, PatchType};
use crate::resources::ResourceId;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::State;
use crate::store::Obj;
use crate::table;

/// Does the client ask for a Table?
pub fn wants_table(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').next().is_some_and(|first| first.contains("as=Table")))
}

pub async fn dispatch(
    state: &Arc<State>,
    req: Request<Incoming>,
    route: &Route,
    verb: &str,
    q: &HashMap<String, String>,
    close_watch_after: Option<u64>,
) -> Response<Body> {
    let result = match route {
        Route::Version => Ok(value_response(200, &discovery::version(&state.config.version))),
        Route::Health => Ok(Response::new(super::full("ok"))),
        Route::Api => Ok(value_response(200, &discovery::api_versions(&state.addr.to_string()))),
        Route::ApiV1 => Ok(value_response(200, &discovery::resource_list("", "v1"))),
        Route::Apis => Ok(value_response(200, &discovery::group_list(state.config.metrics_server))),
        Route::ApiGroup(g) => discovery::group(g, state.config.metrics_server).map(|v| value_response(200, &v)).ok_or_else(ApiError::not_found_path),
        Route::ApiGroupVersion(g, v) => {
            if state.config.metrics_server && g == super::metrics::api::GROUP && v == super::metrics::api::VERSION {
                Ok(value_response(200, &discovery::metrics_resource_list()))
            } else if crate::resources::groups().iter().any(|(gg, vv)| gg == g && vv == v) {
                Ok(value_response(200, &discovery::resource_list(g, v)))
            } else if let Some(list) = super::review::resource_list(g, v) {
                Ok(value_response(200, &list))
            } else {
                Err(ApiError::not_found_path())
            }
        }
        Route::OpenApi => {
            let path = req.uri().path().trim_end_matches('/');
            if path == "/openapi/v3" {
                Ok(value_response(200, &crate::openapi::index()))
            } else if path.starts_with("/openapi/v3/") {
                crate::openapi::group_version(path).map(|v| value_response(200, &v)).ok_or_else(ApiError::not_found_path)
            } else {
                Err(ApiError::not_found_path())
            }
        }
        Route::NotFound => Err(ApiError::not_found_path()),
        Route::Connect(c) => super::connect::handle(state, req, c).await,
        Route::Metrics(m) => {
            let table = wants_table(&req).then(|| include_object(q));
            super::metrics::handle(state, m, verb, q, table)
        }
        Route::Review(r) => super::review::handle(state, req, r).await,
        Route::Resource(r) => resource(state, req, r, verb, q, close_watch_after).await,
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn obj_response(code: u16, obj: &Obj) -> Response<Body> {
    json_response(code, obj.json.clone())
}

/// Adds one `Warning` header per warning (kubectl prints them as `Warning: …`).
fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        if let Ok(v) = http::HeaderValue::from_str(&crate::fields::warning_header(w)) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

fn query_grace(q: &HashMap<String, String>) -> ApiResult<Option<i64>> {
    match q.get("gracePeriodSeconds") {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {s:?}"))),
    }
}

fn body_value(ct: &str, body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    patch::decode_body(ct, body)
}

fn delete_opts(ct: &str, body: &[u8], q: &HashMap<String, String>) -> ApiResult<DeleteOpts> {
    let v = if body.is_empty() { None } else { Some(patch::decode_body(ct, body)?) };
    let mut opts = DeleteOpts::from_body(v.as_ref())?;
    opts.dry_run = opts.dry_run || q.get("dryRun").map(String::as_str) == Some("All");
    if let Some(g) = query_grace(q)? {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = q.get("propagationPolicy") {
        opts.propagation_policy = Some(p.clone());
    }
    Ok(opts)
}

/// One request on a resource path, its body read.
struct ResourceCall<'a> {
    state: &'a Arc<State>,
    r: &'a ResourceRoute,
    verb: &'a str,
    q: &'a HashMap<String, String>,
    close_watch_after: Option<u64>,
    ns: String,
    method: Method,
    ct: String,
    body: Bytes,
    as_table: bool,
    dry_run: bool,
    fields: crate::fields::Mode,
    /// NodeRestriction's context when a node makes the request (authorization on).
    node: Option<NodeWrites>,
}

async fn resource(
    state: &Arc<State>,
    req: Request<Incoming>,
    r: &ResourceRoute,
    verb: &str,
    q: &HashMap<String, String>,
    close_watch_after: Option<u64>,
) -> ApiResult<Response<Body>> {
    let as_table = wants_table(&req);
    let ct = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let method = req.method().clone();
    let node = req.extensions().get::<NodeWrites>().cloned();
    let escalation = super::rbac_escalation::request(state, &req, r, verb);
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => return Err(ApiError::bad_request(format!("dryRun: Unsupported value: {other:?}: supported values: \"All\""))),
    };
    let fields = crate::fields::Mode::from_query(q.get("fieldValidation").map(String::as_str))?;
    let needs_body = matches!(method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let body = if needs_body { read_body(req.into_body(), state.config.max_body_bytes).await? } else { Bytes::new() };
    let ns = r.ns.clone().unwrap_or_default();
    let call = ResourceCall { state, r, verb, q, close_watch_after, ns, method, ct, body, as_table, dry_run, fields, node };
    let writes = matches!(verb, "create" | "update" | "patch" | "delete" | "deletecollection");
    let check = call.node.as_ref().filter(|_| writes).and_then(|n| n.check(&state.store, r.res));
    let check = super::rbac_escalation::both(check, escalation.and_then(|e| e.check(state)));
    crate::admission::scoped(check, || call.run())
}

impl ResourceCall<'_> {
    /// Everything after the body was read: synchronous, so a NodeRestriction scope covers it.
    fn run(&self) -> ApiResult<Response<Body>> {
        let (state, r, verb, q) = (self.state, self.r, self.verb, self.q);
        if r.res == crate::resources::EVENTS_V1 {
            return super::events_v1::handle(state, r, verb, &self.method, &self.ct, &self.body, q, self.close_watch_after);
        }
        if r.sub.as_deref() == Some("token") {
            return if verb == "create" { self.token() } else { Err(ApiError::method_not_allowed(verb)) };
        }
        if r.sub.as_deref() == Some("scale") && matches!(verb, "get" | "update" | "patch") {
            let table = self.as_table.then(|| include_object(q));
            let field_manager = q.get("fieldManager").map(String::as_str);
            let sreq = super::scale::ScaleRequest { verb, content_type: &self.ct, body: &self.body, field_manager, dry_run: self.dry_run, table };
            return super::scale::handle(state, r, &sreq);
        }
        match verb {
            "get" => self.get(),
            "list" => list(state, r, q, self.as_table),
            "watch" => self.watch(),
            "create" => self.create(),
            "update" => self.update(),
            "patch" => self.patch(),
            "delete" => self.delete(),
            "deletecollection" => self.delete_collection(),
            _ => Err(ApiError::method_not_allowed(self.method.as_str())),
        }
    }

    fn get(&self) -> ApiResult<Response<Body>> {
        let (r, desc) = (self.r, self.r.res.desc());
        let name = r.name.as_deref().unwrap_or("");
        let obj = self.state.store.get(r.res, &self.ns, name).ok_or_else(|| ApiError::not_found(desc.group, desc.plural, name))?;
        if self.as_table {
            let t = table::table(r.res, std::slice::from_ref(&obj), obj.rv, None, include_object(self.q));
            return Ok(value_response(200, &t));
        }
        Ok(obj_response(200, &obj))
    }

    fn watch(&self) -> ApiResult<Response<Body>> {
        let r = self.r;
        let mut params = super::watch::WatchParams::from_query(r.res, self.q)?;
        if let Some(name) = &r.name {
            params.field.0.push(crate::selectors::FieldReq { field: "metadata.name".into(), value: name.clone(), negate: false });
        }
        params.as_table = self.as_table;
        params.include_object = include_object(self.q).to_string();
        params.close_after = self.close_watch_after;
        Ok(super::watch::response(self.state.clone(), r.res, r.ns.clone(), params))
    }

    fn create(&self) -> ApiResult<Response<Body>> {
        let (r, api, ns) = (self.r, &self.state.api, self.ns.as_str());
        let mut warnings = Vec::new();
        match (r.name.as_deref(), r.sub.as_deref()) {
            (None, None) => {
                if r.res.desc().namespaced && r.ns.is_none() {
                    return Err(ApiError::method_not_allowed("create"));
                }
                let v = crate::fields::enforce(r.res, body_value(&self.ct, &self.body)?, self.fields, &mut warnings)?;
                let obj = api.create_with(r.res, ns, v, self.dry_run)?;
                Ok(with_warnings(obj_response(201, &obj), &warnings))
            }
            (Some(name), Some(sub @ ("binding" | "eviction"))) => {
                let v = body_value(&self.ct, &self.body)?;
                if let Some(node) = self.node.as_ref().filter(|n| n.admits_body()) {
                    node.admit_body(&self.state.store, ns, name, &v)?;
                }
                let status = if sub == "binding" {
                    api.bind(ns, name, v)?
                } else {
                    crate::eviction::evict_with(api, ns, name, &v, self.dry_run)?
                };
                Ok(value_response(201, &status))
            }
            _ => Err(ApiError::method_not_allowed("create")),
        }
    }

    /// `serviceaccounts/token`: a TokenRequest, NodeRestriction admitting its body.
    fn token(&self) -> ApiResult<Response<Body>> {
        let name = self.r.name.as_deref().unwrap_or("");
        let v = body_value(&self.ct, &self.body)?;
        let node = self.node.as_ref().filter(|n| n.admits_body());
        let admit = |tr: &Value| node.map_or(Ok(()), |n| n.admit_body(&self.state.store, &self.ns, name, tr));
        let issued = super::token_request::create(self.state, &self.ns, name, v, &admit)?;
        let mut resp = with_warnings(value_response(201, &issued.object), &issued.warnings);
        resp.extensions_mut().insert(super::AuditAnnotations(issued.annotations.into_iter().collect()));
        Ok(resp)
    }

    fn update(&self) -> ApiResult<Response<Body>> {
        let r = self.r;
        let name = r.name.as_deref().ok_or_else(|| ApiError::method_not_allowed("update"))?;
        if matches!(r.sub.as_deref(), Some("binding" | "eviction")) {
            return Err(ApiError::method_not_allowed("update"));
        }
        let mut warnings = Vec::new();
        let v = crate::fields::enforce(r.res, body_value(&self.ct, &self.body)?, self.fields, &mut warnings)?;
        let obj = self.state.api.update_with(r.res, &self.ns, name, v, r.sub.as_deref(), self.dry_run)?;
        Ok(with_warnings(obj_response(200, &obj), &warnings))
    }

    fn patch(&self) -> ApiResult<Response<Body>> {
        let (r, q, ns) = (self.r, self.q, self.ns.as_str());
        let name = r.name.as_deref().ok_or_else(|| ApiError::method_not_allowed("patch"))?;
        if matches!(r.sub.as_deref(), Some("binding" | "eviction" | "finalize")) {
            return Err(ApiError::method_not_allowed("patch"));
        }
        let pt = PatchType::from_content_type(&self.ct)?;
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the body of the request was empty"));
        }
        let existed = self.state.store.get(r.res, ns, name).is_some();
        let manager = q.get("fieldManager").map(String::as_str);
        let force = q.get("force").map(String::as_str) == Some("true");
        let mut warnings = Vec::new();
        let (sub, dry, fields) = (r.sub.as_deref(), self.dry_run, Some(self.fields));
        let obj = self.state.api.patch_with(r.res, ns, name, pt, &self.body, sub, manager, force, dry, fields, &mut warnings)?;
        Ok(with_warnings(obj_response(if existed { 200 } else { 201 }, &obj), &warnings))
    }

    fn delete(&self) -> ApiResult<Response<Body>> {
        let r = self.r;
        let name = r.name.as_deref().ok_or_else(|| ApiError::method_not_allowed("delete"))?;
        if r.sub.is_some() {
            return Err(ApiError::method_not_allowed("delete"));
        }
        let opts = delete_opts(&self.ct, &self.body, self.q)?;
        let d = self.state.api.delete(r.res, &self.ns, name, &opts)?;
        Ok(obj_response(200, &d.obj))
    }

    fn delete_collection(&self) -> ApiResult<Response<Body>> {
        let r = self.r;
        if r.res == crate::resources::NAMESPACES {
            return Err(ApiError::method_not_allowed("deletecollection"));
        }
        let opts = delete_opts(&self.ct, &self.body, self.q)?;
        let (label, field) = selectors(r.res, self.q)?;
        let page = self.state.store.list(r.res, r.ns.as_deref(), None, None, &|v| label.matches(v) && field.matches(v));
        for obj in &page.items {
            match self.state.api.delete(r.res, obj.namespace(), obj.name(), &opts) {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(value_response(200, &success_status(200, None)))
    }
}

fn include_object(q: &HashMap<String, String>) -> &str {
    q.get("includeObject").map(String::as_str).unwrap_or("Metadata")
}

pub fn selectors(res: ResourceId, q: &HashMap<String, String>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let label = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let field = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""), res.desc())?;
    Ok((label, field))
}

fn encode_continue(rv: u64, key: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&json!({"v": "meta.k8s.io/v1", "rv": rv, "start": key})).unwrap_or_default())
}

fn decode_continue(tok: &str) -> ApiResult<String> {
    let bad = || ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    let raw = base64::engine::general_purpose::STANDARD.decode(tok).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    v.get("start").and_then(Value::as_str).map(str::to_string).ok_or_else(bad)
}

fn list(state: &Arc<State>, r: &ResourceRoute, q: &HashMap<String, String>, as_table: bool) -> ApiResult<Response<Body>> {
    let desc = r.res.desc();
    let (label, field) = selectors(r.res, q)?;
    let limit = match q.get("limit").map(|s| s.parse::<i64>()) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n as usize),
        Some(Ok(_)) => None,
        Some(Err(_)) => return Err(ApiError::bad_request("limit must be an integer")),
    };
    let after = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    let filtering = !label.is_empty() || !field.is_empty();
    let page = state.store.list(r.res, r.ns.as_deref(), after.as_deref(), limit, &|v| label.matches(v) && field.matches(v));
    let cont = page.next_key.as_ref().map(|k| encode_continue(page.rv, k));
    if as_table {
        let t = table::table(r.res, &page.items, page.rv, cont.as_deref(), include_object(q));
        return Ok(value_response(200, &t));
    }
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &cont {
        meta["continue"] = json!(c);
        if !filtering {
            meta["remainingItemCount"] = json!(page.remaining);
        }
    }
    let size: usize = page.items.iter().map(|o| o.json.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 256);
    out.put_slice(format!("{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[", desc.kind, desc.api_version(), meta).as_bytes());
    for (i, o) in page.items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&o.json);
    }
    out.put_slice(b"]}");
    Ok(json_response(200, out.freeze()))
}
