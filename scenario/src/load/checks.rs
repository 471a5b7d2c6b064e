//! `assert` and `error`: expected partial objects, whose `(expressions)` are checked by the
//! matcher at load time, each refusal pointed at the key or value at fault.

use std::time::Duration;

use serde_json::{Map as JsonMap, Value};

use super::document::Dialect;
use super::fields::{Item, Loader, R};
use super::text::{child, index, join_path};
use super::yaml::{Node, Yaml, to_json};
use crate::chainsaw;
use crate::model::Check;

impl Loader {
    pub(super) fn check(&self, item: &Item<'_>, what: &str) -> R<(Check, Option<Duration>)> {
        let allowed: &[&str] = if what == "assert" && self.dialect == Dialect::Scenario {
            &["file", "resource", "timeout", "holdFor"]
        } else {
            &["file", "resource", "timeout"]
        };
        if !allowed.contains(&"holdFor") {
            self.refuse_keys(item, &["holdFor"], |_| {
                if what == "error" {
                    "holdFor is only for assert (an error check passes once nothing matches: there is nothing to hold); remove it".to_string()
                } else {
                    chainsaw::nodekit_addition("holdFor")
                }
            })?;
        }
        let f = self.fields(item, what, allowed, chainsaw::CHECK_FOREIGN)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let hold_for = self.opt_duration(&f, "holdFor", true)?;
        let (src, is_file) = self.file_or_resource(&f, what)?;
        let (expected, source) = if is_file {
            let file_name = self.string(&src)?;
            let docs = self.read_objects(&src, &file_name)?;
            let mut out = Vec::with_capacity(docs.len());
            for (i, (doc, value)) in docs.iter().enumerate() {
                self.check_object_in_file(&src, &file_name, i, doc, false, what)?;
                let mut value = value.clone();
                self.bind_namespace(&mut value);
                if let Err(e) = crate::matcher::check_expressions(&value) {
                    let (node, sub, message) = localize_expression_error(doc, &e, self.namespace.as_deref());
                    let sub = if sub.is_empty() { String::new() } else { format!(" {sub}") };
                    return Err(self.err_at(
                        src.node,
                        &src.path,
                        format!("{file_name}:{}:{} (document {}){sub}: {message}", node.line, node.column, i + 1),
                    ));
                }
                out.push(value);
            }
            (out, file_name)
        } else {
            if let Some((node, sub, message)) = self.object_problem(src.node, false, what, true) {
                return Err(self.err_at(Self::inline_at(&src, node), &join_path(&src.path, &sub), message));
            }
            let mut value = self.json(&src)?;
            self.bind_namespace(&mut value);
            if let Err(e) = crate::matcher::check_expressions(&value) {
                let (node, sub, message) = localize_expression_error(src.node, &e, self.namespace.as_deref());
                return Err(self.err_at(node, &join_path(&src.path, &sub), message));
            }
            (vec![value], "inline".to_string())
        };
        Ok((Check { expected, source, hold_for }, timeout))
    }

    /// In a Chainsaw Test, `($namespace)` is the test's namespace.
    pub(super) fn bind_namespace(&self, value: &mut Value) {
        if let Some(ns) = &self.namespace {
            chainsaw::replace_binding(value, ns, 0);
        }
    }
}

/// Finds the key (or value) whose `(expression)` the matcher refuses, by asking the matcher
/// about ever smaller parts of the object: (node, path below the object, message). Falls back
/// to the object itself.
fn localize_expression_error<'n>(
    node: &'n Node,
    error: &crate::matcher::Error,
    namespace: Option<&str>,
) -> (&'n Node, String, String) {
    match find_bad_expression(node, String::new(), 0, namespace) {
        Some((n, p, m)) => (n, p, m),
        None => (node, String::new(), expression_message(error)),
    }
}

/// The matcher's message without its path (the loader gives its own).
fn expression_message(error: &crate::matcher::Error) -> String {
    use crate::matcher::Error;
    match error {
        Error::Expression { expression, message, .. } => format!("bad expression {expression:?}: {message}"),
        Error::Unsupported { text, message, .. } => format!("{text:?}: {message}"),
        other => other.to_string(),
    }
}

fn find_bad_expression<'n>(
    node: &'n Node,
    path: String,
    depth: usize,
    ns: Option<&str>,
) -> Option<(&'n Node, String, String)> {
    let probe_json = |n: &Node| -> Option<Value> {
        let mut v = to_json(n).ok()?;
        if let Some(ns) = ns {
            chainsaw::replace_binding(&mut v, ns, 0);
        }
        Some(v)
    };
    if depth > 128 {
        return None;
    }
    match &node.v {
        Yaml::Map(entries) => {
            for (k, v) in entries {
                let key = k.v.scalar_text()?;
                let value = probe_json(v)?;
                let mut probe = JsonMap::new();
                probe.insert(key.clone(), value);
                if let Err(e) = crate::matcher::check_expressions(&Value::Object(probe)) {
                    let p = child(&path, &key);
                    if let Some(deeper) = find_bad_expression(v, p.clone(), depth + 1, ns) {
                        return Some(deeper);
                    }
                    let at = match &v.v {
                        Yaml::Str(s) if s.starts_with('(') && !key.starts_with('(') => v,
                        _ => k,
                    };
                    return Some((at, p, expression_message(&e)));
                }
            }
            None
        }
        Yaml::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Yaml::Map(_) = item.v {
                    let value = probe_json(item)?;
                    if let Err(e) = crate::matcher::check_expressions(&value) {
                        return find_bad_expression(item, index(&path, i), depth + 1, ns)
                            .or_else(|| Some((item, index(&path, i), expression_message(&e))));
                    }
                }
            }
            None
        }
        _ => None,
    }
}
