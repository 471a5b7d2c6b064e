//! The diff, as YAML-ish lines: the expected tree next to the actual values it was compared
//! with.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::check::{plain_match, scalar_equal};
use super::expression::evaluate;
use super::text::{bounded_clone, reason, show};
use super::tree::{KeySpec, StringSpec, Target, key_spec, string_spec};
use super::{Error, MAX_ACTUAL_DEPTH, MAX_DEPTH};

/// The diff of `actual` against `expected` as text: see [`super::diff`].
pub(super) fn text(actual: &Value, expected: &Value) -> String {
    let mut lines = Vec::new();
    diff_entry(&mut lines, 0, Label::Root, expected, Some(actual), 0);
    let mut out = String::new();
    for line in lines {
        out.push_str(match line.mark {
            Mark::Same => "  ",
            Mark::Expected => "- ",
            Mark::Actual => "+ ",
        });
        for _ in 0..line.indent {
            out.push(' ');
        }
        out.push_str(&line.text);
        out.push('\n');
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Same,
    Expected,
    Actual,
}

#[derive(Debug)]
struct Line {
    mark: Mark,
    indent: usize,
    text: String,
}

#[derive(Clone, Copy)]
enum Label<'a> {
    Root,
    Key(&'a str),
}

fn line(out: &mut Vec<Line>, mark: Mark, indent: usize, text: String) {
    out.push(Line { mark, indent, text });
}

fn labelled(label: Label<'_>, text: &str) -> String {
    match label {
        Label::Root => text.to_owned(),
        Label::Key(key) => format!("{}: {text}", yaml_string(key)),
    }
}

fn header(out: &mut Vec<Line>, mark: Mark, indent: usize, label: Label<'_>) {
    if let Label::Key(key) = label {
        line(out, mark, indent, format!("{}:", yaml_string(key)));
    }
}

/// Renders a whole value with one mark.
fn render(
    out: &mut Vec<Line>,
    mark: Mark,
    indent: usize,
    label: Label<'_>,
    value: &Value,
    depth: usize,
) {
    if depth > MAX_ACTUAL_DEPTH {
        line(out, mark, indent, labelled(label, "…"));
        return;
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            header(out, mark, indent, label);
            let inner = match label {
                Label::Root => indent,
                Label::Key(_) => indent + 2,
            };
            for (key, child) in map {
                render(out, mark, inner, Label::Key(key), child, depth + 1);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            header(out, mark, indent, label);
            for item in items {
                let start = out.len();
                render(out, mark, indent + 2, Label::Root, item, depth + 1);
                dashify(out, start, indent);
            }
        }
        scalar => line(out, mark, indent, labelled(label, &scalar_text(scalar))),
    }
}

/// Turns the first line of each side of an array item (rendered at `indent + 2`) into its
/// `- ` line at `indent`.
fn dashify(out: &mut [Line], start: usize, indent: usize) {
    let tail = out.get_mut(start..).unwrap_or_default();
    let first_expected = tail
        .iter()
        .position(|l| matches!(l.mark, Mark::Same | Mark::Expected));
    let first_actual = tail
        .iter()
        .position(|l| matches!(l.mark, Mark::Same | Mark::Actual));
    let mut done = None;
    for at in [first_expected, first_actual].into_iter().flatten() {
        if done == Some(at) {
            continue;
        }
        done = Some(at);
        if let Some(l) = tail.get_mut(at) {
            l.indent = indent;
            l.text.insert_str(0, "- ");
        }
    }
}

fn diff_item(
    out: &mut Vec<Line>,
    indent: usize,
    expected: &Value,
    actual: Option<&Value>,
    depth: usize,
) {
    let start = out.len();
    diff_entry(out, indent + 2, Label::Root, expected, actual, depth);
    dashify(out, start, indent);
}

/// Both sides in full: the expected as written, the actual pruned to what was compared.
fn both(
    out: &mut Vec<Line>,
    indent: usize,
    label: Label<'_>,
    expected: &Value,
    actual: &Value,
    depth: usize,
) {
    render(out, Mark::Expected, indent, label, expected, depth);
    render(
        out,
        Mark::Actual,
        indent,
        label,
        &prune(expected, actual, depth),
        depth,
    );
}

fn diff_entry(
    out: &mut Vec<Line>,
    indent: usize,
    label: Label<'_>,
    expected: &Value,
    actual: Option<&Value>,
    depth: usize,
) {
    let Some(actual) = actual else {
        render(out, Mark::Expected, indent, label, expected, depth);
        return;
    };
    if depth > MAX_DEPTH {
        line(out, Mark::Same, indent, labelled(label, "…"));
        return;
    }
    match expected {
        Value::Object(map) if map.is_empty() => {
            if actual.is_null() {
                both(out, indent, label, expected, actual, depth);
            } else {
                render(out, Mark::Same, indent, label, expected, depth);
            }
        }
        Value::Object(map) => diff_map(out, indent, label, expected, map, actual, depth),
        Value::Array(items) => match actual {
            Value::Array(have) if have.len() == items.len() => {
                if items.is_empty() {
                    render(out, Mark::Same, indent, label, expected, depth);
                    return;
                }
                header(out, Mark::Same, indent, label);
                for (want, have) in items.iter().zip(have) {
                    diff_item(out, indent, want, Some(have), depth + 1);
                }
            }
            _ => both(out, indent, label, expected, actual, depth),
        },
        Value::String(text) => diff_string(out, indent, label, expected, text, actual, depth),
        scalar => {
            if scalar_equal(scalar, actual) {
                render(out, Mark::Same, indent, label, expected, depth);
            } else {
                both(out, indent, label, expected, actual, depth);
            }
        }
    }
}

/// A non-empty expected map (`expected`, whose entries are `map`) compared with `actual`.
fn diff_map(
    out: &mut Vec<Line>,
    indent: usize,
    label: Label<'_>,
    expected: &Value,
    map: &Map<String, Value>,
    actual: &Value,
    depth: usize,
) {
    let specs: Vec<_> = map
        .iter()
        .map(|(key, value)| (key, value, key_spec("", key)))
        .collect();
    let only_expressions = specs.iter().all(|(_, _, spec)| {
        matches!(
            spec,
            Ok(KeySpec {
                target: Target::Expr(_),
                ..
            })
        )
    });
    if !actual.is_object() && !only_expressions {
        both(out, indent, label, expected, actual, depth);
        return;
    }
    header(out, Mark::Same, indent, label);
    let inner = match label {
        Label::Root => indent,
        Label::Key(_) => indent + 2,
    };
    for (key, value, spec) in specs {
        diff_key(out, inner, key, value, spec, actual, depth + 1);
    }
}

/// An expected string (`expected`, written as `text`): a literal, or a value expression shown
/// with what it evaluated to.
fn diff_string(
    out: &mut Vec<Line>,
    indent: usize,
    label: Label<'_>,
    expected: &Value,
    text: &str,
    actual: &Value,
    depth: usize,
) {
    match string_spec("", text) {
        Ok(StringSpec::Literal(literal)) => {
            if scalar_equal(&Value::String(literal), actual) {
                render(out, Mark::Same, indent, label, expected, depth);
            } else {
                both(out, indent, label, expected, actual, depth);
            }
        }
        Ok(StringSpec::Expr(expr)) => match evaluate(&expr, actual) {
            Ok(want) if plain_match(&want, actual, 0) => {
                render(out, Mark::Same, indent, label, expected, depth);
            }
            Ok(want) => {
                let text = format!(
                    "{}  # = {}",
                    labelled(label, &yaml_string(text)),
                    show(&want)
                );
                line(out, Mark::Expected, indent, text);
                render(out, Mark::Actual, indent, label, actual, depth);
            }
            Err(message) => {
                render(out, Mark::Expected, indent, label, expected, depth);
                let text = format!("{}  # {message}", labelled(label, &show(actual)));
                line(out, Mark::Actual, indent, text);
            }
        },
        Err(err) => {
            render(out, Mark::Expected, indent, label, expected, depth);
            let text = format!("{}  # {}", labelled(label, &show(actual)), reason(&err));
            line(out, Mark::Actual, indent, text);
        }
    }
}

/// One expected key of a map compared with `parent` (the actual node the map is matched with).
fn diff_key(
    out: &mut Vec<Line>,
    indent: usize,
    key: &str,
    expected: &Value,
    spec: Result<KeySpec, Error>,
    parent: &Value,
    depth: usize,
) {
    let label = Label::Key(key);
    let spec = match spec {
        Ok(spec) => spec,
        Err(err) => {
            render(out, Mark::Expected, indent, label, expected, depth);
            let text = format!("{}:  # {}", yaml_string(key), reason(&err));
            line(out, Mark::Actual, indent, text);
            return;
        }
    };
    let projected: Cow<'_, Value> = match &spec.target {
        Target::Field(field) => match parent.as_object().and_then(|map| map.get(field)) {
            Some(value) => Cow::Borrowed(value),
            None => {
                render(out, Mark::Expected, indent, label, expected, depth);
                return;
            }
        },
        Target::Expr(expr) => match evaluate(expr, parent) {
            Ok(value) => Cow::Owned(value),
            Err(message) => {
                render(out, Mark::Expected, indent, label, expected, depth);
                line(
                    out,
                    Mark::Actual,
                    indent,
                    format!("{}:  # {message}", yaml_string(key)),
                );
                return;
            }
        },
    };
    if !spec.foreach {
        diff_entry(out, indent, label, expected, Some(&projected), depth);
        return;
    }
    match projected.as_ref() {
        Value::Array(items) if !items.is_empty() => {
            header(out, Mark::Same, indent, label);
            for item in items {
                diff_item(out, indent, expected, Some(item), depth + 1);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            header(out, Mark::Same, indent, label);
            for (k, v) in map {
                diff_entry(out, indent + 2, Label::Key(k), expected, Some(v), depth + 1);
            }
        }
        Value::Array(_) | Value::Object(_) => {
            line(
                out,
                Mark::Same,
                indent,
                labelled(label, &scalar_text(&projected)),
            );
        }
        other => {
            render(out, Mark::Expected, indent, label, expected, depth);
            render(out, Mark::Actual, indent, label, other, depth);
        }
    }
}

/// The part of `actual` that `shape` (an expected node) was compared with: the same keys, an
/// `(expr)` key with its evaluated value, a foreach key with each element pruned.
fn prune(shape: &Value, actual: &Value, depth: usize) -> Value {
    if depth > MAX_ACTUAL_DEPTH {
        return Value::String("…".to_owned());
    }
    match (shape, actual) {
        (Value::Object(want), Value::Object(_)) if !want.is_empty() => {
            let mut out = Map::new();
            for (key, sub) in want {
                let Ok(spec) = key_spec("", key) else {
                    continue;
                };
                let projected = match &spec.target {
                    Target::Field(field) => match actual.get(field) {
                        Some(value) => bounded_clone(value, MAX_ACTUAL_DEPTH.saturating_sub(depth)),
                        None => continue,
                    },
                    Target::Expr(expr) => match evaluate(expr, actual) {
                        Ok(value) => value,
                        Err(message) => Value::String(format!("<{message}>")),
                    },
                };
                let pruned = if spec.foreach {
                    match projected {
                        Value::Array(items) => Value::Array(
                            items
                                .iter()
                                .map(|item| prune(sub, item, depth + 1))
                                .collect(),
                        ),
                        Value::Object(map) => Value::Object(
                            map.iter()
                                .map(|(k, v)| (k.clone(), prune(sub, v, depth + 1)))
                                .collect(),
                        ),
                        other => other,
                    }
                } else {
                    prune(sub, &projected, depth + 1)
                };
                out.insert(key.clone(), pruned);
            }
            Value::Object(out)
        }
        (Value::Object(want), Value::Array(items)) if !want.is_empty() => Value::Array(
            items
                .iter()
                .map(|item| prune(shape, item, depth + 1))
                .collect(),
        ),
        (Value::Array(want), Value::Array(items)) => match want.first() {
            None => bounded_clone(actual, MAX_ACTUAL_DEPTH.saturating_sub(depth)),
            Some(first) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| prune(want.get(i).unwrap_or(first), item, depth + 1))
                    .collect(),
            ),
        },
        _ => bounded_clone(actual, MAX_ACTUAL_DEPTH.saturating_sub(depth)),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => yaml_string(text),
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        other => show(other),
    }
}

/// A string as a YAML plain scalar when that reads back as the same string, else
/// double-quoted (JSON escapes).
pub(super) fn yaml_string(text: &str) -> String {
    if plain_yaml(text) {
        text.to_owned()
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

fn plain_yaml(text: &str) -> bool {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let second = chars.next();
    if text.trim() != text || text.chars().any(char::is_control) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        let indicator_ok = matches!(first, '-' | '?' | ':')
            && second.is_some_and(|c| !c.is_whitespace() && !c.is_ascii_digit() && c != '.');
        if !indicator_ok {
            return false;
        }
    }
    if text.contains(": ") || text.contains(" #") || text.ends_with(':') {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) {
        return false;
    }
    !looks_numeric(&lower)
}

fn looks_numeric(lower: &str) -> bool {
    let body = lower.trim_start_matches(['+', '-']);
    let mut chars = body.chars();
    match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('.') => {
            matches!(body, ".inf" | ".nan") || chars.next().is_some_and(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}
