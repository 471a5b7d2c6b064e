//! The `scale` subresource of Deployments and ReplicaSets: an `autoscaling/v1` `Scale` view of
//! the parent's `spec.replicas`, as upstream's `ScaleREST` (`pkg/registry/apps/deployment/storage`
//! and `pkg/registry/apps/replicaset/storage`).
//!
//! GET answers the Scale (or its Table). PUT takes a Scale; PATCH (JSON, merge, strategic or
//! apply) patches the current Scale and then goes on as a PUT. A write validates the Scale,
//! checks its `uid` and `resourceVersion` preconditions and sets the parent's `spec.replicas`
//! through the registry's update path, so `metadata.generation` moves as for any spec change and
//! `dryRun=All` stores nothing. A conflict only the server's own read caused is retried, as
//! upstream's `GuaranteedUpdate` does; a client's stale `resourceVersion` answers 409.

use http::Response;
use serde_json::{Map, Value, json};

use super::{Body, ResourceRoute, value_response};
use crate::error::{ApiError, ApiResult, Cause};
use crate::patch::{self, PatchType};
use crate::resources::{self, ResourceId};
use crate::server::State;

/// The API version of the Scale this server speaks (upstream's default for `apps/v1` parents).
const API_VERSION: &str = "autoscaling/v1";
/// The kind of the subresource's object.
const KIND: &str = "Scale";
/// Writes attempted before a conflict caused by concurrent writers is given to the client.
const MAX_ATTEMPTS: usize = 16;

/// One request on a `…/{deployments,replicasets}/<name>/scale` path.
#[derive(Debug)]
pub struct ScaleRequest<'a> {
    /// `get`, `update` or `patch`; anything else is refused with 405.
    pub verb: &'a str,
    /// The request's Content-Type (decides the body encoding and the patch type).
    pub content_type: &'a str,
    pub body: &'a [u8],
    /// `fieldManager` (required by apply patches).
    pub field_manager: Option<&'a str>,
    /// `dryRun=All`: compute the answer, store nothing.
    pub dry_run: bool,
    /// `Some(includeObject)` when the client asks for a Table.
    pub table: Option<&'a str>,
}

/// The parent object a write goes to.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    res: ResourceId,
    ns: &'a str,
    name: &'a str,
}

/// The fields of a client's Scale that a write uses.
#[derive(Debug, Default)]
struct ScaleInput {
    name: String,
    namespace: String,
    uid: String,
    resource_version: String,
    replicas: i64,
}

/// Serve one request on the scale subresource of a Deployment or ReplicaSet.
pub fn handle(state: &State, r: &ResourceRoute, req: &ScaleRequest<'_>) -> ApiResult<Response<Body>> {
    if r.res != resources::DEPLOYMENTS && r.res != resources::REPLICASETS {
        return Err(ApiError::not_found_path());
    }
    let name = r.name.as_deref().ok_or_else(|| ApiError::method_not_allowed(req.verb))?;
    let t = Target { res: r.res, ns: r.ns.as_deref().unwrap_or(""), name };
    let scale = match req.verb {
        "get" => get(state, t)?,
        "update" => replace(state, t, req)?,
        "patch" => patch_scale(state, t, req)?,
        other => return Err(ApiError::method_not_allowed(other)),
    };
    let body = match req.table {
        Some(include_object) => table(&scale, include_object),
        None => scale,
    };
    Ok(value_response(200, &body))
}

/// GET: the Scale of the parent; upstream answers a missing ReplicaSet as
/// `replicasets/scale.apps "<name>" not found` and a missing Deployment as the Deployment.
fn get(state: &State, t: Target<'_>) -> ApiResult<Value> {
    let desc = t.res.desc();
    let Some(parent) = state.store.get(t.res, t.ns, t.name) else {
        let plural = if t.res == resources::REPLICASETS { "replicasets/scale" } else { desc.plural };
        return Err(ApiError::not_found(desc.group, plural, t.name));
    };
    scale_of(&parent.value)
}

/// PUT: the body is the new Scale.
fn replace(state: &State, t: Target<'_>, req: &ScaleRequest<'_>) -> ApiResult<Value> {
    if req.body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    let body = patch::decode_body(req.content_type, req.body)?;
    // The handler's decoding and name checks come before the registry looks the parent up.
    check_names(&parse(&body)?, t)?;
    write(state, t, req.dry_run, false, |_| Ok(body.clone()))
}

/// PATCH: the patch applies to the current Scale, the result is written as by PUT.
fn patch_scale(state: &State, t: Target<'_>, req: &ScaleRequest<'_>) -> ApiResult<Value> {
    let pt = PatchType::from_content_type(req.content_type)?;
    if req.body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    if pt == PatchType::Apply && req.field_manager.is_none_or(str::is_empty) {
        return Err(ApiError::bad_request("PATCH, field manager is required for apply requests"));
    }
    write(state, t, req.dry_run, true, |old| patched(old, pt, req.body))
}

/// Apply a patch of type `pt` to the Scale `old`. An apply patch sets the fields it names (no
/// field ownership is kept for the Scale).
fn patched(old: &Value, pt: PatchType, body: &[u8]) -> ApiResult<Value> {
    if pt != PatchType::Apply {
        return patch::apply_patch(pt, old, body, KIND);
    }
    let applied = patch::decode_yaml(body)?;
    if !applied.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON or YAML object"));
    }
    let mut out = old.clone();
    json_patch::merge(&mut out, &applied);
    Ok(out)
}

/// Read the parent, turn its Scale into the new one with `new_scale`, check it and store the
/// parent with the new `spec.replicas`. `patching`: a `resourceVersion` equal to the one read
/// was put there by the server (the patched Scale carries it), so a conflict is retried.
fn write(state: &State, t: Target<'_>, dry: bool, patching: bool, new_scale: impl Fn(&Value) -> ApiResult<Value>) -> ApiResult<Value> {
    let desc = t.res.desc();
    let mut attempt = 1;
    loop {
        let cur = state.store.get(t.res, t.ns, t.name).ok_or_else(|| ApiError::not_found(desc.group, desc.plural, t.name))?;
        let input = parse(&new_scale(&scale_of(&cur.value)?)?)?;
        check_names(&input, t)?;
        validate(&input, t.name)?;
        check_uid(&input, t, &cur.value)?;
        let cur_rv = meta_str(&cur.value, "resourceVersion");
        let ours = input.resource_version.is_empty() || (patching && input.resource_version == cur_rv);
        let rv = if input.resource_version.is_empty() { cur_rv.to_string() } else { input.resource_version.clone() };
        let mut parent = cur.value.clone();
        crate::api::set_in(&mut parent, &["spec", "replicas"], json!(input.replicas));
        crate::api::set_in(&mut parent, &["metadata", "resourceVersion"], json!(rv));
        match state.api.update_with(t.res, t.ns, t.name, parent, None, dry) {
            Err(e) if ours && e.reason == "Conflict" && attempt < MAX_ATTEMPTS => attempt += 1,
            result => return scale_of(&result?.value),
        }
    }
}

fn meta_str<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str).unwrap_or("")
}

/// The Scale of a Deployment or ReplicaSet (upstream's `scaleFromDeployment` /
/// `scaleFromReplicaSet`): the parent's identity, `spec.replicas`, `status.replicas` and its
/// selector as a string. `spec.replicas` is left out when 0 (`omitempty`), `status.replicas`
/// never is.
pub fn scale_of(parent: &Value) -> ApiResult<Value> {
    let selector = selector_string(parent.pointer("/spec/selector")).map_err(ApiError::bad_request)?;
    let mut meta = Map::new();
    if let Some(m) = parent.get("metadata").and_then(Value::as_object) {
        for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            if let Some(v) = m.get(key) {
                meta.insert(key.into(), v.clone());
            }
        }
    }
    let replicas = parent.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let spec = if replicas == 0 { json!({}) } else { json!({"replicas": replicas}) };
    let mut status = json!({"replicas": parent.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    Ok(json!({"kind": KIND, "apiVersion": API_VERSION, "metadata": meta, "spec": spec, "status": status}))
}

/// A metav1 `LabelSelector` as upstream's `LabelSelectorAsSelector(sel).String()`: requirements
/// sorted by key, `k=v`, `k in (a,b)`, `k notin (a,b)` (values sorted), `k`, `!k`, joined by
/// commas; "" for an absent or empty selector. An unknown operator is an error.
pub fn selector_string(sel: Option<&Value>) -> Result<String, String> {
    let Some(sel) = sel.filter(|s| s.is_object()) else { return Ok(String::new()) };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.get("matchLabels").and_then(Value::as_object).into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        reqs.push((key.to_string(), expression_string(key, e)?));
    }
    // Upstream sorts by key only; a stable sort keeps matchLabels before expressions.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs.into_iter().map(|(_, text)| text).collect::<Vec<_>>().join(","))
}

/// One `matchExpressions` entry as a requirement string.
fn expression_string(key: &str, e: &Value) -> Result<String, String> {
    let mut values: Vec<&str> = e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    values.sort_unstable();
    let op = e.get("operator").and_then(Value::as_str).unwrap_or_default();
    match op {
        "In" => Ok(format!("{key} in ({})", values.join(","))),
        "NotIn" => Ok(format!("{key} notin ({})", values.join(","))),
        "Exists" => Ok(key.to_string()),
        "DoesNotExist" => Ok(format!("!{key}")),
        other => Err(format!("{other:?} is not a valid label selector operator")),
    }
}

/// Decode a client's Scale: type meta must be absent or `autoscaling/v1` `Scale` (as
/// [`crate::api::check_type`] words it), `spec.replicas` an int32 (absent means 0).
fn parse(v: &Value) -> ApiResult<ScaleInput> {
    let Some(m) = v.as_object() else {
        return Err(ApiError::bad_request("the body of the request must be a JSON or YAML object"));
    };
    match m.get("apiVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == API_VERSION => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({API_VERSION})",
                other.as_str().map_or_else(|| other.to_string(), str::to_string)
            )));
        }
    }
    match m.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == KIND => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{} in version \"v1\" cannot be handled as a {KIND}: no kind {other} is registered for version \"{API_VERSION}\"",
                other.as_str().unwrap_or_default()
            )));
        }
    }
    let meta = |key: &str| m.get("metadata").and_then(|md| md.get(key)).and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(ScaleInput {
        name: meta("name"),
        namespace: meta("namespace"),
        uid: meta("uid"),
        resource_version: meta("resourceVersion"),
        replicas: replicas(m.get("spec"))?,
    })
}

/// `spec.replicas` of a client's Scale, refused as Go's JSON decoder refuses a non-int32.
fn replicas(spec: Option<&Value>) -> ApiResult<i64> {
    let decode_error = |what: String, field: &str, ty: &str| {
        ApiError::bad_request(format!(
            "{KIND} in version \"v1\" cannot be handled as a {KIND}: json: cannot unmarshal {what} into Go struct field {field} of type {ty}"
        ))
    };
    let r = match spec {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Object(s)) => s.get("replicas"),
        Some(other) => return Err(decode_error(go_json_type(other), "Scale.spec", "v1.ScaleSpec")),
    };
    match r {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|x| i32::try_from(*x).is_ok())
            .ok_or_else(|| decode_error(format!("number {n}"), "ScaleSpec.spec.replicas", "int32")),
        Some(other) => Err(decode_error(go_json_type(other), "ScaleSpec.spec.replicas", "int32")),
    }
}

/// The JSON type name Go's decoder puts in its errors.
fn go_json_type(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .to_string()
}

/// The handler's `checkName`: the Scale names the object of the URL, in its namespace.
fn check_names(input: &ScaleInput, t: Target<'_>) -> ApiResult<()> {
    if input.name != t.name {
        return Err(ApiError::bad_request(format!("the name of the object ({}) does not match the name on the URL ({})", input.name, t.name)));
    }
    if !input.namespace.is_empty() && input.namespace != t.ns {
        return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
    }
    Ok(())
}

/// Upstream's `ValidateScale` (the name is checked by [`check_names`]).
fn validate(input: &ScaleInput, parent: &str) -> ApiResult<()> {
    if input.replicas >= 0 {
        return Ok(());
    }
    let cause = Cause {
        reason: "FieldValueInvalid",
        field: "spec.replicas".into(),
        message: format!("Invalid value: {}: must be greater than or equal to 0", input.replicas),
    };
    let mut e = ApiError::invalid("autoscaling", "Scale.autoscaling", parent, vec![cause]);
    if let Some(d) = e.details.as_mut() {
        d["kind"] = json!(KIND);
    }
    Err(e)
}

/// A `metadata.uid` in the Scale is a precondition on the parent's.
fn check_uid(input: &ScaleInput, t: Target<'_>, parent: &Value) -> ApiResult<()> {
    let uid = meta_str(parent, "uid");
    if input.uid.is_empty() || input.uid == uid {
        return Ok(());
    }
    let desc = t.res.desc();
    Err(ApiError::conflict(
        desc.group,
        &format!("{}/scale", desc.plural),
        t.name,
        &format!("Precondition failed: UID in precondition: {}, UID in object meta: {uid}", input.uid),
    ))
}

/// The Scale as a Table, with upstream's columns for it (Name, Desired, Available, Age).
fn table(scale: &Value, include_object: &str) -> Value {
    let col = |name: &str, ty: &str, desc: &str| json!({"name": name, "type": ty, "format": "", "description": desc, "priority": 0});
    let columns = [
        col("Name", "string", "Name must be unique within a namespace."),
        col("Desired", "integer", "replicas is the desired number of instances for the scaled object."),
        col("Available", "integer", "replicas is the actual number of observed instances of the scaled object."),
        col("Age", "string", "CreationTimestamp"),
    ];
    let num = |p: &str| scale.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let created = scale.pointer("/metadata/creationTimestamp").and_then(Value::as_str).and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let age = created.map_or_else(|| "<unknown>".to_string(), |t| crate::table::human_duration(jiff::Timestamp::now().as_second() - t.as_second()));
    let cells = json!([scale.pointer("/metadata/name").cloned().unwrap_or(Value::Null), num("/spec/replicas"), num("/status/replicas"), age]);
    let metadata = scale.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let object = match include_object {
        "None" => Value::Null,
        "Object" => scale.clone(),
        _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}),
    };
    let rv = meta_str(scale, "resourceVersion");
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv}, "columnDefinitions": columns, "rows": [{"cells": cells, "object": object}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_strings_as_upstream() {
        let sel = json!({"matchLabels": {"tier": "web", "app": "x"}, "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "gpu", "operator": "Exists"}]});
        assert_eq!(selector_string(Some(&sel)).as_deref(), Ok("app=x,!canary,env in (dev,prod),gpu,tier=web,zone notin (b)"));
        assert_eq!(selector_string(None).as_deref(), Ok(""));
        assert_eq!(selector_string(Some(&json!({}))).as_deref(), Ok(""));
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]});
        assert_eq!(selector_string(Some(&bad)), Err("\"Foo\" is not a valid label selector operator".to_string()));
    }

    #[test]
    fn scale_of_parent() {
        let d = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7",
            "creationTimestamp": "2025-01-01T00:00:00Z", "generation": 3, "labels": {"a": "b"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d).unwrap();
        assert_eq!(s, json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {}, "status": {"replicas": 2, "selector": "app=web"}}));
    }

    #[test]
    fn parse_refuses_bad_input() {
        assert_eq!(parse(&json!({"spec": {"replicas": 4}})).map(|i| i.replicas), Ok(4));
        assert_eq!(parse(&json!({"metadata": {"name": "x"}})).map(|i| i.replicas), Ok(0));
        let e = parse(&json!({"spec": {"replicas": "4"}})).unwrap_err();
        assert!(e.message.ends_with("json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32"), "{e}");
        let e = parse(&json!({"spec": {"replicas": 3_000_000_000_i64}})).unwrap_err();
        assert!(e.message.contains("cannot unmarshal number 3000000000"), "{e}");
        let e = parse(&json!({"apiVersion": "apps/v1", "kind": "Deployment"})).unwrap_err();
        assert_eq!(e.message, "the API version in the data (apps/v1) does not match the expected API version (autoscaling/v1)");
    }

    #[test]
    fn negative_replicas_invalid() {
        let e = validate(&ScaleInput { replicas: -1, ..ScaleInput::default() }, "web").unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(e.message, "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
        assert_eq!(e.details.as_ref().and_then(|d| d.get("kind")), Some(&json!("Scale")));
    }
}
