//! The walker's state ([`Loader`]) and typed access to the fields of the tree: every accessor
//! answers the value or a [`LoadError`] pointing at the node at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map as JsonMap, Value};

use super::LoadError;
use super::document::Dialect;
use super::text::{and_list, child, dns_label_problem, index, suggest};
use super::yaml::{Node, Yaml, to_json};
use crate::chainsaw;
use crate::duration;
use crate::model::WorldSpec;

/// A value and the key it hangs from (the place to point at when something inside is missing).
#[derive(Clone)]
pub(super) struct Item<'n> {
    pub(super) key: Option<&'n Node>,
    pub(super) node: &'n Node,
    pub(super) path: String,
}

impl<'n> Item<'n> {
    pub(super) fn root(node: &'n Node) -> Self {
        Item { key: None, node, path: String::new() }
    }
    /// Where to point when the value as a whole is wrong or lacks something.
    pub(super) fn anchor(&self) -> &'n Node {
        self.key.unwrap_or(self.node)
    }
    pub(super) fn is_null(&self) -> bool {
        matches!(self.node.v, Yaml::Null)
    }
}

/// A mapping whose keys have been checked.
pub(super) struct Fields<'n> {
    pub(super) item: Item<'n>,
    pub(super) entries: Vec<(String, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The field, if present and not null.
    pub(super) fn get(&self, name: &str) -> Option<Item<'n>> {
        self.has(name).filter(|i| !i.is_null())
    }
    /// The field, if present (even if null).
    pub(super) fn has(&self, name: &str) -> Option<Item<'n>> {
        self.entries.iter().find(|(k, _, _)| k == name).map(|(k, key, node)| Item {
            key: Some(*key),
            node,
            path: child(&self.item.path, k),
        })
    }
    pub(super) fn path(&self, name: &str) -> String {
        child(&self.item.path, name)
    }
}

/// The walker: one per file, reset for each document.
pub(super) struct Loader {
    pub(super) file: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) dialect: Dialect,
    /// The world of the scenario being read (node names, runtime).
    pub(super) world: Option<WorldSpec>,
    /// Fault names seen so far, with the line that named them.
    pub(super) faults: Vec<(String, usize)>,
    /// Faults seen so far (named or not).
    pub(super) fault_count: usize,
    /// A Chainsaw Test's namespace (for `($namespace)`).
    pub(super) namespace: Option<String>,
}

pub(super) type R<T> = Result<T, LoadError>;

impl Loader {
    pub(super) fn new(origin: &Path) -> Self {
        let dir = match origin.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Loader {
            file: origin.to_path_buf(),
            dir,
            dialect: Dialect::Scenario,
            world: None,
            faults: Vec::new(),
            fault_count: 0,
            namespace: None,
        }
    }

    pub(super) fn err_at(&self, node: &Node, path: &str, message: impl Into<String>) -> LoadError {
        LoadError {
            file: self.file.clone(),
            line: node.line,
            column: node.column,
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Opens a mapping: every key must be in `allowed`; keys in `foreign` are Chainsaw fields
    /// nodekit refuses (or ignores when harmless, see [`chainsaw::foreign_field`]).
    pub(super) fn fields<'n>(&self, item: &Item<'n>, what: &str, allowed: &[&str], foreign: &[&str]) -> R<Fields<'n>> {
        let Yaml::Map(entries) = &item.node.v else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!(
                    "{what} must be a mapping (found {}); allowed fields: {}",
                    item.node.v.type_name(),
                    allowed.join(", ")
                ),
            ));
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Yaml::Str(name) = &k.v else {
                let shown = k.v.scalar_text().unwrap_or_else(|| k.v.type_name().to_string());
                return Err(self.err_at(
                    k,
                    &item.path,
                    format!("field names are strings, found {shown}; allowed fields: {}", allowed.join(", ")),
                ));
            };
            if allowed.contains(&name.as_str()) {
                out.push((name.clone(), k, v));
                continue;
            }
            let path = child(&item.path, name);
            if foreign.contains(&name.as_str()) {
                match chainsaw::foreign_field(name, v) {
                    Some(message) => return Err(self.err_at(k, &path, message)),
                    None => continue,
                }
            }
            return Err(self.unknown_field(k, &path, name, allowed));
        }
        Ok(Fields { item: item.clone(), entries: out })
    }

    /// Refuses the first of `keys` present in the mapping (in document order) with `message`.
    pub(super) fn refuse_keys(&self, item: &Item<'_>, keys: &[&str], message: impl Fn(&str) -> String) -> R<()> {
        if let Yaml::Map(entries) = &item.node.v {
            for (k, _) in entries {
                if let Yaml::Str(name) = &k.v
                    && keys.contains(&name.as_str())
                {
                    return Err(self.err_at(k, &child(&item.path, name), message(name)));
                }
            }
        }
        Ok(())
    }

    pub(super) fn unknown_field(&self, key: &Node, path: &str, name: &str, allowed: &[&str]) -> LoadError {
        let hint = suggest(name, allowed).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
        self.err_at(key, path, format!("unknown field {name:?}{hint}; allowed: {}", allowed.join(", ")))
    }

    /// The one field of a mapping that must hold exactly one of its allowed fields (null or
    /// not): its name and value. Otherwise `{rule}; found a and b` at the second key, or
    /// `{rule}; found none` at the mapping.
    pub(super) fn exactly_one<'n>(&self, f: &Fields<'n>, rule: &str) -> R<(String, Item<'n>)> {
        let item = &f.item;
        if f.entries.len() != 1 {
            let names: Vec<&str> = f.entries.iter().map(|(k, _, _)| k.as_str()).collect();
            let (at, found) = match f.entries.get(1) {
                Some((_, k, _)) => (*k, format!("found {}", and_list(&names))),
                None => (item.anchor(), "found none".to_string()),
            };
            return Err(self.err_at(at, &item.path, format!("{rule}; {found}")));
        }
        match f.entries.first().and_then(|(name, _, _)| Some((name.clone(), f.has(name)?))) {
            Some(one) => Ok(one),
            None => Err(self.err_at(item.anchor(), &item.path, rule)),
        }
    }

    pub(super) fn required<'n>(&self, f: &Fields<'n>, name: &str, why: &str) -> R<Item<'n>> {
        f.get(name).ok_or_else(|| self.err_at(f.item.anchor(), &f.path(name), format!("required: {why}")))
    }

    pub(super) fn string(&self, item: &Item<'_>) -> R<String> {
        match &item.node.v {
            Yaml::Str(s) => Ok(s.clone()),
            other => Err(self.err_at(item.node, &item.path, format!("must be a string, found {}", other.type_name()))),
        }
    }

    pub(super) fn nonempty_string(&self, item: &Item<'_>) -> R<String> {
        let s = self.string(item)?;
        if s.trim().is_empty() {
            return Err(self.err_at(item.node, &item.path, "must not be empty"));
        }
        Ok(s)
    }

    pub(super) fn opt_string(&self, f: &Fields<'_>, name: &str) -> R<Option<String>> {
        f.get(name).map(|i| self.string(&i)).transpose()
    }

    pub(super) fn opt_nonempty(&self, f: &Fields<'_>, name: &str) -> R<Option<String>> {
        f.get(name).map(|i| self.nonempty_string(&i)).transpose()
    }

    /// A scalar as text (numbers and booleans as written by YAML: `3`, `true`).
    pub(super) fn scalar_string(&self, item: &Item<'_>) -> R<String> {
        match &item.node.v {
            Yaml::Null | Yaml::Seq(_) | Yaml::Map(_) => {
                Err(self.err_at(item.node, &item.path, format!("must be a string, found {}", item.node.v.type_name())))
            }
            other => Ok(other.scalar_text().unwrap_or_default()),
        }
    }

    pub(super) fn boolean(&self, item: &Item<'_>) -> R<bool> {
        match &item.node.v {
            Yaml::Bool(b) => Ok(*b),
            other => {
                Err(self.err_at(item.node, &item.path, format!("must be true or false, found {}", other.type_name())))
            }
        }
    }

    pub(super) fn opt_bool(&self, f: &Fields<'_>, name: &str) -> R<Option<bool>> {
        f.get(name).map(|i| self.boolean(&i)).transpose()
    }

    pub(super) fn integer(&self, item: &Item<'_>) -> R<i64> {
        match &item.node.v {
            Yaml::Int(i) => Ok(*i),
            Yaml::UInt(u) => i64::try_from(*u).map_err(|_| self.err_at(item.node, &item.path, "number too large")),
            other => {
                Err(self.err_at(item.node, &item.path, format!("must be a whole number, found {}", other.type_name())))
            }
        }
    }

    pub(super) fn unsigned(&self, item: &Item<'_>, min: u64, max: u64) -> R<u64> {
        let out_of_range = || self.err_at(item.node, &item.path, format!("must be a whole number from {min} to {max}"));
        match &item.node.v {
            Yaml::UInt(u) if (min..=max).contains(u) => Ok(*u),
            Yaml::UInt(_) | Yaml::Int(_) => Err(out_of_range()),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("must be a whole number from {min} to {max}, found {}", other.type_name()),
            )),
        }
    }

    pub(super) fn number(&self, item: &Item<'_>) -> R<f64> {
        match &item.node.v {
            Yaml::Int(i) => Ok(*i as f64),
            Yaml::UInt(u) => Ok(*u as f64),
            Yaml::Float(f) => Ok(*f),
            other => Err(self.err_at(item.node, &item.path, format!("must be a number, found {}", other.type_name()))),
        }
    }

    pub(super) fn list<'n>(&self, item: &Item<'n>, what: &str) -> R<Vec<Item<'n>>> {
        match &item.node.v {
            Yaml::Seq(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, node)| Item { key: None, node, path: index(&item.path, i) })
                .collect()),
            Yaml::Null => Ok(Vec::new()),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("must be a list of {what}, found {}", other.type_name()),
            )),
        }
    }

    pub(super) fn string_list(&self, item: &Item<'_>) -> R<Vec<String>> {
        self.list(item, "strings")?.iter().map(|i| self.scalar_string(i)).collect()
    }

    pub(super) fn string_map(&self, item: &Item<'_>) -> R<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let Yaml::Map(entries) = &item.node.v else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!("must be a mapping of strings, found {}", item.node.v.type_name()),
            ));
        };
        for (k, v) in entries {
            let Some(key) = k.v.scalar_text().filter(|_| !matches!(k.v, Yaml::Null)) else {
                return Err(self.err_at(k, &item.path, "keys must be strings"));
            };
            let value = Item { key: Some(k), node: v, path: child(&item.path, &key) };
            out.insert(key, self.scalar_string(&value)?);
        }
        Ok(out)
    }

    pub(super) fn json(&self, item: &Item<'_>) -> R<Value> {
        to_json(item.node).map_err(|(line, column, message)| LoadError {
            file: self.file.clone(),
            line,
            column,
            path: item.path.clone(),
            message,
        })
    }

    pub(super) fn mapping_json(&self, item: &Item<'_>, what: &str) -> R<Value> {
        match &item.node.v {
            Yaml::Map(_) => self.json(item),
            Yaml::Null => Ok(Value::Object(JsonMap::new())),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("{what} must be a mapping, found {}", other.type_name()),
            )),
        }
    }

    /// A Go duration; `positive`: zero is refused too (timeouts, periods).
    pub(super) fn duration(&self, item: &Item<'_>, positive: bool) -> R<Duration> {
        let text = match &item.node.v {
            Yaml::Str(s) => s.clone(),
            Yaml::Int(_) | Yaml::UInt(_) | Yaml::Float(_) => {
                let shown = item.node.v.scalar_text().unwrap_or_default();
                return Err(self.err_at(
                    item.node,
                    &item.path,
                    format!("a duration needs a unit: write \"{shown}s\" for seconds; {}", duration::SYNTAX),
                ));
            }
            other => {
                return Err(self.err_at(
                    item.node,
                    &item.path,
                    format!("must be a duration, found {}; {}", other.type_name(), duration::SYNTAX),
                ));
            }
        };
        let d = duration::parse(&text).map_err(|m| self.err_at(item.node, &item.path, m))?;
        if positive && d.is_zero() {
            return Err(self.err_at(item.node, &item.path, format!("must be longer than 0 (found {text:?})")));
        }
        Ok(d)
    }

    pub(super) fn opt_duration(&self, f: &Fields<'_>, name: &str, positive: bool) -> R<Option<Duration>> {
        f.get(name).map(|i| self.duration(&i, positive)).transpose()
    }

    pub(super) fn dns_label(&self, item: &Item<'_>, what: &str) -> R<String> {
        let s = self.string(item)?;
        if let Some(why) = dns_label_problem(&s) {
            return Err(self.err_at(item.node, &item.path, format!("{what} {s:?} is not valid: {why}")));
        }
        Ok(s)
    }
}
