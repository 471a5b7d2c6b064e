//! Reading the fields of a watched object.

use serde_json::Value;

pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    value_at(v, path).and_then(Value::as_str)
}

pub(super) fn value_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

pub(super) fn is_deleted(obj: &Value) -> bool {
    obj.get("__deleted")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The entry of `status.conditions` of this type.
pub(super) fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    value_at(obj, &["status", "conditions"])
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

pub(super) fn with_reason(status: &str, cond: &Value) -> String {
    match cond.get("reason").and_then(Value::as_str) {
        Some(r) if !r.is_empty() => format!("{status} ({r})"),
        _ => status.to_string(),
    }
}
