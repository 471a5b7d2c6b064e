//! Paths and messages.

use serde_json::Value;

use super::{Error, MAX_DEPTH, MAX_SHOWN};

/// An error without its path, for a diff comment.
pub(super) fn reason(err: &Error) -> String {
    match err {
        Error::Expression {
            expression,
            message,
            ..
        } => format!("bad expression {expression:?}: {message}"),
        Error::Unsupported { message, .. } => message.clone(),
        Error::TooDeep { .. } => format!("nests more than {MAX_DEPTH} levels deep"),
    }
}

pub(super) fn shown_path(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

pub(super) fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

pub(super) fn key_path(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

pub(super) fn items_count(n: usize) -> String {
    if n == 1 {
        "1 item".to_owned()
    } else {
        format!("{n} items")
    }
}

/// Compact JSON, cut to about [`MAX_SHOWN`] characters (and never walked deeper than needed).
pub(super) fn show(value: &Value) -> String {
    let mut text = String::new();
    compact(value, &mut text, 0);
    if text.chars().count() <= MAX_SHOWN {
        text
    } else {
        let mut cut: String = text.chars().take(MAX_SHOWN).collect();
        cut.push('…');
        cut
    }
}

/// Writes `value` as compact JSON into `out` until `out` is longer than [`MAX_SHOWN`].
fn compact(value: &Value, out: &mut String, depth: usize) {
    if out.len() > MAX_SHOWN * 4 || depth > MAX_SHOWN {
        out.push('…');
        return;
    }
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if out.len() > MAX_SHOWN * 4 {
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                compact(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if out.len() > MAX_SHOWN * 4 {
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                compact(item, out, depth + 1);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A copy of `value` with what nests deeper than `levels` replaced by `"…"`.
pub(super) fn bounded_clone(value: &Value, levels: usize) -> Value {
    match value {
        Value::Array(_) | Value::Object(_) if levels == 0 => Value::String("…".to_owned()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| bounded_clone(item, levels - 1))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), bounded_clone(item, levels - 1)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

/// A value with its type, for "expected X, found …".
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => format!("boolean {}", show(value)),
        Value::Number(_) => format!("number {}", show(value)),
        Value::String(_) => format!("string {}", show(value)),
        Value::Array(items) => format!("an array of {}", items_count(items.len())),
        Value::Object(_) => format!("a map {}", show(value)),
    }
}
