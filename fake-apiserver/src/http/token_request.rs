//! The `serviceaccounts/token` subresource (`authentication.k8s.io/v1` TokenRequest), as
//! upstream's `pkg/registry/core/serviceaccount/storage/token.go` serves it: the
//! ServiceAccount must exist (404 otherwise), the request's name, namespace and uid must match
//! it, `spec.audiences` defaults to the API audiences and `spec.expirationSeconds` to 3600 (at
//! least 10 minutes, at most 2^32 seconds), and `spec.boundObjectRef` names an existing Pod,
//! Secret or Node (same uid when given) that the token is then bound to. The answer is the
//! request with `status.token` and `status.expirationTimestamp`, 201 Created. Nothing is stored.

use serde_json::{Map, Value, json};

use crate::auth::service_account::{Binding, Claims, ISSUED_CREDENTIAL_ID_ANNOTATION, Ref, credential_id, extended_expiration};
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources;
use crate::server::State;

/// The kind served.
pub const KIND: &str = "TokenRequest";
/// Its group.
pub const GROUP: &str = "authentication.k8s.io";
/// Upstream's `MinTokenAgeSec`: the shortest expiration (10 minutes).
pub const MIN_TOKEN_AGE_SECONDS: i64 = 10 * 60;
/// The longest expiration (2^32 seconds).
pub const MAX_TOKEN_AGE_SECONDS: i64 = 1 << 32;
/// The default `spec.expirationSeconds` (upstream's `SetDefaults_TokenRequestSpec`).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;

/// An issued token: the TokenRequest to answer, `Warning` texts and audit annotations.
#[derive(Debug, Clone)]
pub struct Issued {
    pub object: Value,
    pub warnings: Vec<String>,
    pub annotations: Vec<(String, String)>,
}

/// Upstream's `NewInvalid` for TokenRequest: `TokenRequest.authentication.k8s.io "<name>" is invalid`.
fn invalid(name: &str, cause: Cause) -> ApiError {
    let mut e = ApiError::invalid(GROUP, &format!("{KIND}.{GROUP}"), name, vec![cause]);
    if let Some(d) = e.details.as_mut() {
        d["kind"] = json!(KIND);
    }
    e
}

/// A decoding failure, as the JSON decoder words it.
fn undecodable(detail: &str) -> ApiError {
    ApiError::bad_request(format!("{KIND} in version \"v1\" cannot be handled as a {KIND}: {detail}"))
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Checks the body's shape, fills apiVersion/kind and applies upstream's defaulting.
fn decode(mut req: Value) -> ApiResult<Value> {
    super::review::fill_type(&mut req, &format!("{GROUP}/v1"), KIND)?;
    let Some(m) = req.as_object_mut() else { return Err(ApiError::bad_request("the body of the request must be a JSON or YAML object")) };
    let spec = m.entry("spec").or_insert_with(|| json!({}));
    if spec.is_null() {
        *spec = json!({});
    }
    let Some(spec) = spec.as_object_mut() else { return Err(undecodable("json: cannot unmarshal into Go struct field TokenRequest.spec of type v1.TokenRequestSpec")) };
    match spec.get("expirationSeconds") {
        None | Some(Value::Null) => {
            spec.insert("expirationSeconds".into(), json!(DEFAULT_EXPIRATION_SECONDS));
        }
        Some(v) if v.as_i64().is_some() => {}
        Some(v) => {
            let detail = format!("json: cannot unmarshal {} into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64", go_type(v));
            return Err(undecodable(&detail));
        }
    }
    let audiences_ok = match spec.get("audiences") {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !audiences_ok {
        return Err(undecodable("json: cannot unmarshal into Go struct field TokenRequestSpec.spec.audiences of type []string"));
    }
    if spec.get("boundObjectRef").is_some_and(|b| !b.is_object() && !b.is_null()) {
        return Err(undecodable("json: cannot unmarshal into Go struct field TokenRequestSpec.spec.boundObjectRef of type v1.BoundObjectReference"));
    }
    Ok(req)
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `schema.FromAPIVersionAndKind(...).Group` and its `String()`: `group/version, Kind=kind`
/// (an unparsable apiVersion gives an empty group and version, as upstream).
fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        None => ("", api_version),
        Some((g, v)) if !v.contains('/') => (g, v),
        Some(_) => ("", ""),
    }
}

/// The object a request binds its token to, looked up as upstream does: the binding's pieces
/// and the object's uid.
fn bound_object(state: &State, ns: &str, sa_name: &str, bound: &Value) -> ApiResult<(Binding, String)> {
    let (kind, name) = (text(bound, "/kind"), text(bound, "/name"));
    let (group, version) = group_version(text(bound, "/apiVersion"));
    let store = &state.store;
    let mut binding = Binding::default();
    let uid = match (group, kind) {
        ("", "Pod") => {
            let pod = store.get(resources::PODS, ns, name).ok_or_else(|| ApiError::not_found("", "pods", name))?;
            if text(&pod.value, "/spec/serviceAccountName") != sa_name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            let node_name = text(&pod.value, "/spec/nodeName");
            if !node_name.is_empty() {
                // A node that does not exist still leaves its name in the claims.
                let node = store.get(resources::NODES, "", node_name).map(|n| Ref::of(&n.value));
                binding.node = Some(node.unwrap_or(Ref { name: node_name.to_string(), uid: String::new() }));
            }
            binding.pod = Some(Ref::of(&pod.value));
            text(&pod.value, "/metadata/uid").to_string()
        }
        ("", "Node") => {
            let node = store.get(resources::NODES, "", name).ok_or_else(|| ApiError::not_found("", "nodes", name))?;
            binding.node = Some(Ref::of(&node.value));
            text(&node.value, "/metadata/uid").to_string()
        }
        ("", "Secret") => {
            let secret = store.get(resources::SECRETS, ns, name).ok_or_else(|| ApiError::not_found("", "secrets", name))?;
            binding.secret = Some(Ref::of(&secret.value));
            text(&secret.value, "/metadata/uid").to_string()
        }
        _ => return Err(ApiError::bad_request(format!("cannot bind token to object of type {group}/{version}, Kind={kind}"))),
    };
    let want = text(bound, "/uid");
    if !want.is_empty() && want != uid {
        let detail = format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated");
        return Err(ApiError::conflict(group, kind, name, &detail));
    }
    Ok((binding, uid))
}

/// The request's name and namespace, when given, must be the URL's.
fn check_names(req: &Value, ns: &str, name: &str) -> ApiResult<()> {
    let (req_name, req_ns) = (text(req, "/metadata/name"), text(req, "/metadata/namespace"));
    if !req_name.is_empty() && req_name != name {
        return Err(invalid(name, Cause::invalid("metadata.name", req_name, "must match the service account name if specified")));
    }
    if !req_ns.is_empty() && req_ns != ns {
        return Err(invalid(name, Cause::invalid("metadata.namespace", req_ns, "must match the service account namespace if specified")));
    }
    Ok(())
}

/// The request's uid checked against the ServiceAccount's, then its metadata filled in (name,
/// namespace, uid, creationTimestamp).
fn fill_metadata(req: &mut Value, ns: &str, name: &str, sa: &Value) -> ApiResult<()> {
    let sa_uid = text(sa, "/metadata/uid").to_string();
    let req_uid = text(req, "/metadata/uid").to_string();
    if !req_uid.is_empty() && req_uid != sa_uid {
        let detail = format!("the UID in the token request ({req_uid}) does not match the UID of the service account ({sa_uid})");
        return Err(ApiError::conflict(GROUP, KIND, name, &detail));
    }
    let meta = req.get_mut("metadata").filter(|m| m.is_object());
    let mut m: Map<String, Value> = meta.and_then(|m| m.as_object().cloned()).unwrap_or_default();
    m.insert("name".into(), json!(name));
    m.insert("namespace".into(), json!(ns));
    m.insert("uid".into(), json!(sa_uid));
    m.insert("creationTimestamp".into(), json!(crate::api::now_rfc3339()));
    req["metadata"] = Value::Object(m);
    Ok(())
}

/// Upstream's `ValidateTokenRequest`.
fn validate(exp: i64) -> ApiResult<()> {
    let detail = if exp < MIN_TOKEN_AGE_SECONDS {
        "may not specify a duration less than 10 minutes"
    } else if exp > MAX_TOKEN_AGE_SECONDS {
        "may not specify a duration larger than 2^32 seconds"
    } else {
        return Ok(());
    };
    let cause = Cause { reason: "FieldValueInvalid", field: "spec.expirationSeconds".into(), message: format!("Invalid value: {exp}: {detail}") };
    Err(invalid("", cause))
}

/// Issues a token for ServiceAccount `ns/name` from the TokenRequest `req`; `admit` is the
/// admission of the request object (NodeRestriction for nodes), run where upstream runs it.
pub fn create(state: &State, ns: &str, name: &str, req: Value, admit: &dyn Fn(&Value) -> ApiResult<()>) -> ApiResult<Issued> {
    let mut req = decode(req)?;
    check_names(&req, ns, name)?;
    let sa = state.store.get(resources::SERVICEACCOUNTS, ns, name).ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
    fill_metadata(&mut req, ns, name, &sa.value)?;
    let audiences: Vec<String> = req["spec"]["audiences"].as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
    let audiences = if audiences.is_empty() { state.tokens.api_audiences().to_vec() } else { audiences };
    req["spec"]["audiences"] = json!(audiences);
    if let Some(m) = req.as_object_mut() {
        m.remove("status");
    }
    let now = crate::http::authn::now_unix();
    let mut exp = req["spec"]["expirationSeconds"].as_i64().unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    validate(exp)?;
    admit(&req)?;
    let mut binding = Binding { namespace: ns.to_string(), service_account: Ref::of(&sa.value), ..Binding::default() };
    if let Some(bound) = req.pointer("/spec/boundObjectRef").filter(|b| b.is_object()) {
        let (bound_to, _) = bound_object(state, ns, name, bound)?;
        binding = Binding { namespace: binding.namespace, service_account: binding.service_account, ..bound_to };
    }
    let mut warnings = Vec::new();
    if let Some(max) = state.tokens.max_expiration().filter(|m| exp > *m) {
        warnings.push(format!("requested expiration of {exp} seconds shortened to {max} seconds"));
        exp = max;
        req["spec"]["expirationSeconds"] = json!(max);
    }
    let (lifetime, warn_after) = extended_expiration(&state.tokens, binding.pod.is_some(), exp, &audiences);
    let jti = crate::api::new_uid();
    let claims = Claims::new(&binding, &audiences, now, lifetime, warn_after, &jti);
    let token = state.tokens.sign(&claims).map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let expires = jiff::Timestamp::from_second(now.saturating_add(exp)).map(|t| t.to_string()).unwrap_or_default();
    req["status"] = json!({"token": token, "expirationTimestamp": expires});
    let annotations = vec![(ISSUED_CREDENTIAL_ID_ANNOTATION.to_string(), credential_id(&jti))];
    Ok(Issued { object: req, warnings, annotations })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_shape() {
        let r = decode(json!({})).unwrap();
        assert_eq!(r["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(r["kind"], "TokenRequest");
        assert_eq!(r["spec"]["expirationSeconds"], 3600);
        let e = decode(json!({"spec": {"expirationSeconds": "600"}})).unwrap_err();
        assert_eq!(
            e.message,
            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal string into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64"
        );
        assert_eq!(decode(json!({"kind": "Pod"})).unwrap_err().code, 400);
        assert_eq!(decode(json!({"spec": {"audiences": "x"}})).unwrap_err().code, 400);
    }

    #[test]
    fn expiration_bounds_are_upstreams() {
        assert!(validate(600).is_ok());
        assert!(validate(1 << 32).is_ok());
        let e = validate(599).unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(e.message, "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes");
        assert_eq!(e.details.as_ref().unwrap()["kind"], "TokenRequest");
        assert_eq!(e.details.as_ref().unwrap()["group"], "authentication.k8s.io");
        let e = validate((1 << 32) + 1).unwrap_err();
        assert!(e.message.ends_with("Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"), "{}", e.message);
    }

    #[test]
    fn group_versions_parse_as_upstreams() {
        assert_eq!(group_version("v1"), ("", "v1"));
        assert_eq!(group_version("apps/v1"), ("apps", "v1"));
        assert_eq!(group_version("a/b/c"), ("", ""));
        assert_eq!(group_version(""), ("", ""));
    }
}
