//! Unknown-field detection for `fieldValidation` (Strict, Warn, Ignore): an object is decoded
//! into its typed Kubernetes struct and encoded again; every non-null field of the request
//! that the round trip drops is unknown to the schema.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceId;

/// What to do with unknown fields (`?fieldValidation=`; absent means Warn, as upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ignore,
    Warn,
    Strict,
}

impl Mode {
    pub fn from_query(v: Option<&str>) -> ApiResult<Mode> {
        match v {
            None | Some("") | Some("Warn") => Ok(Mode::Warn),
            Some("Strict") => Ok(Mode::Strict),
            Some("Ignore") => Ok(Mode::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(v: &Value) -> Option<Value> {
    // A body the typed struct cannot hold at all is left to the other checks. Decoded from the
    // borrowed value: a request's object is not copied to be checked.
    T::deserialize(v).ok().and_then(|t| serde_json::to_value(t).ok())
}

/// The object as its typed struct would write it, for the resources with a typed schema.
fn typed(res: ResourceId, v: &Value) -> Option<Value> {
    use k8s_openapi::api::{coordination::v1 as coord, core::v1 as core, discovery::v1 as disc};
    let d = res.desc();
    match (d.group, d.kind) {
        ("", "Namespace") => roundtrip::<core::Namespace>(v),
        ("", "Node") => roundtrip::<core::Node>(v),
        ("", "Pod") => roundtrip::<core::Pod>(v),
        ("", "Service") => roundtrip::<core::Service>(v),
        ("", "Endpoints") => roundtrip::<core::Endpoints>(v),
        ("", "ConfigMap") => roundtrip::<core::ConfigMap>(v),
        ("", "Secret") => roundtrip::<core::Secret>(v),
        ("", "ServiceAccount") => roundtrip::<core::ServiceAccount>(v),
        ("", "Event") => roundtrip::<core::Event>(v),
        ("coordination.k8s.io", "Lease") => roundtrip::<coord::Lease>(v),
        ("discovery.k8s.io", "EndpointSlice") => roundtrip::<disc::EndpointSlice>(v),
        ("events.k8s.io", "Event") => roundtrip::<k8s_openapi::api::events::v1::Event>(v),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<k8s_openapi::api::rbac::v1::Role>(v),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<k8s_openapi::api::rbac::v1::RoleBinding>(v),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<k8s_openapi::api::rbac::v1::ClusterRole>(v),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => roundtrip::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(v),
        ("node.k8s.io", "RuntimeClass") => roundtrip::<k8s_openapi::api::node::v1::RuntimeClass>(v),
        _ => None,
    }
}

/// One step of the path to a field: an object key or an array index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The dotted path of `steps` plus `last` (`spec.containers[0].imagee`); only built for a
/// field that is reported.
fn path_of(steps: &[Step<'_>], last: &str) -> String {
    let mut p = String::new();
    for s in steps {
        match s {
            Step::Key(k) => {
                if !p.is_empty() {
                    p.push('.');
                }
                p.push_str(k);
            }
            Step::Index(i) => p.push_str(&format!("[{i}]")),
        }
    }
    if !p.is_empty() {
        p.push('.');
    }
    p.push_str(last);
    p
}

/// Collects the paths of `sent`'s fields missing from `kept`, removing them when `strip`.
fn walk<'a>(sent: &mut Value, kept: &'a Value, steps: &mut Vec<Step<'a>>, strip: bool, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            let mut gone = Vec::new();
            for (key, v) in s.iter_mut() {
                match k.get_key_value(key.as_str()) {
                    Some((kk, kv)) => {
                        steps.push(Step::Key(kk));
                        walk(v, kv, steps, strip, out);
                        steps.pop();
                    }
                    None if v.is_null() => {}
                    None => {
                        out.push(path_of(steps, key));
                        gone.push(key.clone());
                    }
                }
            }
            if strip {
                for key in gone {
                    s.remove(&key);
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter_mut().zip(k).enumerate() {
                steps.push(Step::Index(i));
                walk(sv, kv, steps, strip, out);
                steps.pop();
            }
        }
        _ => {}
    }
}

/// Applies `mode` to a written object: Strict fails with 400 on any unknown field (upstream's
/// decoder message); otherwise unknown fields are dropped, as the API server's decoder drops
/// them, and Warn adds one warning per field to `warnings`.
pub fn enforce(res: ResourceId, mut obj: Value, mode: Mode, warnings: &mut Vec<String>) -> ApiResult<Value> {
    let Some(kept) = typed(res, &obj) else { return Ok(obj) };
    let mut paths = Vec::new();
    walk(&mut obj, &kept, &mut Vec::new(), mode != Mode::Strict, &mut paths);
    if paths.is_empty() {
        return Ok(obj);
    }
    match mode {
        Mode::Strict => {
            let d = res.desc();
            Err(ApiError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                d.kind,
                d.version,
                d.kind,
                paths.iter().map(|p| format!("unknown field {p:?}")).collect::<Vec<_>>().join(", ")
            )))
        }
        Mode::Warn => {
            warnings.extend(paths.iter().map(|p| format!("unknown field {p:?}")));
            Ok(obj)
        }
        Mode::Ignore => Ok(obj),
    }
}

/// A `Warning` header value (RFC 7234 form, code 299, as the API server writes them).
pub fn warning_header(text: &str) -> String {
    format!("299 - {text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_schema_fields_only() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"any-key": "v"}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagee": "typo", "env": null}], "nodeName": "n"},
        });
        let mut warnings = Vec::new();
        enforce(crate::resources::PODS, pod, Mode::Warn, &mut warnings).unwrap();
        assert_eq!(warnings, [r#"unknown field "metadata.bogus""#, r#"unknown field "spec.containers[0].imagee""#]);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"whatever": "x"}});
        let mut none = Vec::new();
        assert_eq!(enforce(crate::resources::CONFIGMAPS, cm.clone(), Mode::Warn, &mut none).unwrap(), cm);
        assert!(none.is_empty());
    }

    #[test]
    fn strict_fails_warn_warns_and_drops_ignore_drops() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "nodeNam": "n"}});
        let mut warnings = Vec::new();
        let e = enforce(crate::resources::PODS, pod.clone(), Mode::Strict, &mut warnings).unwrap_err();
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        assert_eq!(e.message, r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.nodeNam""#);
        let kept = enforce(crate::resources::PODS, pod.clone(), Mode::Warn, &mut warnings).unwrap();
        assert_eq!(warnings, [r#"unknown field "spec.nodeNam""#]);
        assert!(kept["spec"].get("nodeNam").is_none() && kept["spec"]["containers"][0]["name"] == "c");
        let mut none = Vec::new();
        let kept = enforce(crate::resources::PODS, pod, Mode::Ignore, &mut none).unwrap();
        assert!(none.is_empty() && kept["spec"].get("nodeNam").is_none());
        assert_eq!(warning_header(r#"unknown field "spec.nodeNam""#), r#"299 - "unknown field \"spec.nodeNam\"""#);
        assert!(Mode::from_query(Some("Loud")).is_err());
        assert_eq!(Mode::from_query(None).unwrap(), Mode::Warn);
    }
}
