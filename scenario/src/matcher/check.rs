//! Matching an actual value against the compiled tree (kyverno-json `assertion.go`, `matching`).

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::expression::{Expr, evaluate};
use super::text::{child_path, describe, index_path, items_count, key_path, show};
use super::tree::{Entry, Node, Target};
use super::{MAX_ACTUAL_DEPTH, Mismatch};

fn push(out: &mut Vec<Mismatch>, path: &str, message: String) {
    out.push(Mismatch {
        path: path.to_owned(),
        message,
    });
}

pub(super) fn check(node: &Node, actual: &Value, path: &str, out: &mut Vec<Mismatch>) {
    match node {
        Node::Map(entries) if entries.is_empty() => {
            if actual.is_null() {
                push(out, path, "expected a value, found null".to_owned());
            }
        }
        Node::Map(entries) => check_map(entries, actual, path, out),
        Node::Array(nodes) => check_array(nodes, actual, path, out),
        Node::Literal(expected) => {
            if !scalar_equal(expected, actual) {
                push(
                    out,
                    path,
                    format!("expected {}, found {}", show(expected), show(actual)),
                );
            }
        }
        Node::Expr(expr) => check_expr(expr, actual, path, out),
    }
}

/// A non-empty expected map: each entry against what its key projects from `actual`.
fn check_map(entries: &[Entry], actual: &Value, path: &str, out: &mut Vec<Mismatch>) {
    let mut reported_not_a_map = false;
    for entry in entries {
        let child = child_path(path, &entry.key);
        let Some(projected) = project(
            &entry.spec.target,
            actual,
            path,
            &child,
            &mut reported_not_a_map,
            out,
        ) else {
            continue;
        };
        if entry.spec.foreach {
            check_foreach(&entry.node, &projected, &child, out);
        } else {
            check(&entry.node, &projected, &child, out);
        }
    }
}

/// What a key (at `child`, in the map at `path`) projects from `actual`; None, with the
/// mismatch pushed, when there is nothing to compare. A map expected where something else is
/// found is reported once per map, at the map's path (`reported_not_a_map`).
fn project<'a>(
    target: &Target,
    actual: &'a Value,
    path: &str,
    child: &str,
    reported_not_a_map: &mut bool,
    out: &mut Vec<Mismatch>,
) -> Option<Cow<'a, Value>> {
    match target {
        Target::Field(field) => match actual {
            Value::Object(map) => match map.get(field) {
                Some(value) => Some(Cow::Borrowed(value)),
                None => {
                    push(out, child, "field missing".to_owned());
                    None
                }
            },
            Value::Null => {
                push(out, child, "field missing".to_owned());
                None
            }
            other => {
                if !*reported_not_a_map {
                    *reported_not_a_map = true;
                    push(
                        out,
                        path,
                        format!("expected a map, found {}", describe(other)),
                    );
                }
                None
            }
        },
        Target::Expr(expr) => match evaluate(expr, actual) {
            Ok(value) => Some(Cow::Owned(value)),
            Err(message) => {
                push(out, child, message);
                None
            }
        },
    }
}

/// A foreach key: `node` against each element of the projected array or map.
fn check_foreach(node: &Node, projected: &Value, child: &str, out: &mut Vec<Mismatch>) {
    match projected {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(node, item, &index_path(child, i), out);
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                check(node, value, &key_path(child, key), out);
            }
        }
        other => push(
            out,
            child,
            format!(
                "expected an array or a map to iterate over, found {}",
                describe(other)
            ),
        ),
    }
}

fn check_array(nodes: &[Node], actual: &Value, path: &str, out: &mut Vec<Mismatch>) {
    match actual {
        Value::Array(items) if items.len() == nodes.len() => {
            for (i, (node, item)) in nodes.iter().zip(items).enumerate() {
                check(node, item, &index_path(path, i), out);
            }
        }
        Value::Array(items) => push(
            out,
            path,
            format!(
                "expected an array of {}, found {}",
                items_count(nodes.len()),
                items_count(items.len())
            ),
        ),
        other => push(
            out,
            path,
            format!("expected an array, found {}", describe(other)),
        ),
    }
}

/// A value expression: its result (with `actual` as `@`) is what `actual` must match.
fn check_expr(expr: &Expr, actual: &Value, path: &str, out: &mut Vec<Mismatch>) {
    match evaluate(expr, actual) {
        Ok(expected) => {
            if !plain_match(&expected, actual, 0) {
                push(
                    out,
                    path,
                    format!(
                        "expected {} (the value of {}), found {}",
                        show(&expected),
                        expr.text,
                        show(actual)
                    ),
                );
            }
        }
        Err(message) => push(out, path, message),
    }
}

/// kyverno-json `matching.Match`: how the result of a value expression is compared with the
/// actual value (plain keys only, nothing evaluated).
pub(super) fn plain_match(expected: &Value, actual: &Value, depth: usize) -> bool {
    if depth > MAX_ACTUAL_DEPTH {
        return false;
    }
    match (expected, actual) {
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len()
                && want
                    .iter()
                    .zip(have)
                    .all(|(w, h)| plain_match(w, h, depth + 1))
        }
        (Value::Array(_), _) => false,
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, w)| have.get(key).is_some_and(|h| plain_match(w, h, depth + 1))),
        (Value::Object(_), _) => false,
        _ => scalar_equal(expected, actual),
    }
}

/// kyverno-json `matching.Equal` for a scalar expected value: same type and equal, numbers
/// numerically.
pub(super) fn scalar_equal(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        _ => false,
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    fn integer(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a == b,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}
