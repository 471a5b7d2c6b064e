//! The objects of apply, create, patch, update and delete: from a `file:` (every document,
//! globs too) or an inline `resource`, each checked before it is sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::document::Dialect;
use super::fields::{Fields, Item, Loader, R};
use super::read_text;
use super::text::{child, index, join_path, wildcard};
use super::yaml::{Node, Yaml, parse_yaml, to_json};
use crate::chainsaw;
use crate::model::{Action, Delete, ObjectRef, Resources};

impl Loader {
    /// `file` or `resource` (exactly one).
    pub(super) fn file_or_resource<'n>(&self, f: &Fields<'n>, what: &str) -> R<(Item<'n>, bool)> {
        match (f.get("file"), f.get("resource")) {
            (Some(file), None) => Ok((file, true)),
            (None, Some(res)) => Ok((res, false)),
            (Some(_), Some(res)) => {
                Err(self.err_at(res.anchor(), &res.path, format!("{what} takes file or resource, not both")))
            }
            (None, None) => Err(self.err_at(
                f.item.anchor(),
                &f.item.path,
                format!("required: file (a YAML file next to the scenario) or resource (an inline object) for {what}"),
            )),
        }
    }

    pub(super) fn resources(&self, item: &Item<'_>, what: &str) -> R<(Resources, Option<Duration>)> {
        let foreign = if what == "patch" { chainsaw::PATCH_FOREIGN } else { chainsaw::RESOURCE_FOREIGN };
        let f = self.fields(item, what, &["file", "resource", "timeout"], foreign)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let (src, is_file) = self.file_or_resource(&f, what)?;
        let need_name = matches!(what, "patch" | "update");
        let objects = if is_file {
            let file_name = self.string(&src)?;
            let docs = self.read_objects(&src, &file_name)?;
            let mut out = Vec::with_capacity(docs.len());
            for (i, (doc, value)) in docs.iter().enumerate() {
                self.check_object_in_file(&src, &file_name, i, doc, need_name, what)?;
                out.push(value.clone());
            }
            (out, file_name)
        } else {
            let value = self.inline_object(&src, need_name, what)?;
            (vec![value], "inline".to_string())
        };
        Ok((Resources { objects: objects.0, source: objects.1 }, timeout))
    }

    /// The problem with an object to send to the API server, if any: (node at fault, path
    /// below the object, message).
    pub(super) fn object_problem<'n>(
        &self,
        node: &'n Node,
        need_name: bool,
        what: &str,
        expected: bool,
    ) -> Option<Problem<'n>> {
        let Yaml::Map(entries) = &node.v else {
            return Some((node, String::new(), format!("an object is a mapping, found {}", node.v.type_name())));
        };
        if let Some(problem) = type_problem(node, entries) {
            return Some(problem);
        }
        if expected {
            return None;
        }
        let (has_name, has_generate) = match names_given(entries) {
            Ok(given) => given,
            Err(problem) => return Some(problem),
        };
        if what != "delete" && need_name && !has_name {
            return Some((
                node,
                "metadata.name".to_string(),
                format!("required: {what} needs the name of an existing object"),
            ));
        }
        if what != "delete" && !has_name && !has_generate {
            return Some((
                node,
                "metadata.name".to_string(),
                format!("required: every object to {what} needs metadata.name (or metadata.generateName)"),
            ));
        }
        // Templating: nothing in an applied object is evaluated.
        self.template_problem(node, String::new())
    }

    /// Chainsaw would template `(…)` keys and `($binding)` values; nodekit sends objects as
    /// written (a Chainsaw Test's `($namespace)` is the one value it replaces).
    pub(super) fn template_problem<'n>(&self, node: &'n Node, path: String) -> Option<Problem<'n>> {
        match &node.v {
            Yaml::Map(entries) => {
                for (k, v) in entries {
                    let key = k.v.scalar_text().unwrap_or_default();
                    let p = child(&path, &key);
                    if key.starts_with('(') && key.ends_with(')') {
                        return Some((k, p, chainsaw::templating(self.dialect == Dialect::Test)));
                    }
                    if let Some(found) = self.template_problem(v, p) {
                        return Some(found);
                    }
                }
                None
            }
            Yaml::Seq(items) => items.iter().enumerate().find_map(|(i, n)| self.template_problem(n, index(&path, i))),
            Yaml::Str(s) if s.starts_with("($") && s.ends_with(')') => {
                if self.dialect == Dialect::Test && s == "($namespace)" {
                    None
                } else {
                    Some((node, path, chainsaw::templating(self.dialect == Dialect::Test)))
                }
            }
            _ => None,
        }
    }

    /// Where to point for a problem with an inline object: the node inside it, or the
    /// `resource:` key when the object as a whole is at fault.
    pub(super) fn inline_at<'n>(src: &Item<'n>, node: &'n Node) -> &'n Node {
        if std::ptr::eq(node, src.node) { src.anchor() } else { node }
    }

    pub(super) fn inline_object(&self, src: &Item<'_>, need_name: bool, what: &str) -> R<Value> {
        if let Some((node, sub, message)) = self.object_problem(src.node, need_name, what, false) {
            return Err(self.err_at(Self::inline_at(src, node), &join_path(&src.path, &sub), message));
        }
        self.json(src)
    }

    pub(super) fn check_object_in_file(
        &self,
        src: &Item<'_>,
        file_name: &str,
        i: usize,
        doc: &Node,
        need_name: bool,
        what: &str,
    ) -> R<()> {
        let expected = matches!(what, "assert" | "error");
        if let Some((node, sub, message)) = self.object_problem(doc, need_name, what, expected) {
            let sub = if sub.is_empty() { String::new() } else { format!(" {sub}") };
            return Err(self.err_at(
                src.node,
                &src.path,
                format!("{file_name}:{}:{} (document {}){sub}: {message}", node.line, node.column, i + 1),
            ));
        }
        Ok(())
    }

    /// The documents of a `file:` (relative to the scenario's directory; a `*` or `?` in the
    /// file name matches several files, read in name order).
    pub(super) fn read_objects(&self, src: &Item<'_>, name: &str) -> R<Vec<(Node, Value)>> {
        let at = |message: String| self.err_at(src.node, &src.path, message);
        if name.trim().is_empty() {
            return Err(at("must not be empty".to_string()));
        }
        if name.contains("://") {
            return Err(at(format!(
                "{name}: not supported by nodekit (Chainsaw downloads URLs); put the file next to the scenario"
            )));
        }
        if name.starts_with('(') {
            return Err(at(format!(
                "{name}: not supported by nodekit (Chainsaw expressions in file); write the file's path"
            )));
        }
        let rel = Path::new(name);
        let full = if rel.is_absolute() { rel.to_path_buf() } else { self.dir.join(rel) };
        let files = if name.contains(['*', '?', '[']) {
            self.glob(&full, name).map_err(at)?
        } else {
            vec![(full, name.to_string())]
        };
        let mut out = Vec::new();
        for (path, shown) in files {
            let text = read_text(&path).map_err(|m| at(format!("{shown}: {m}")))?;
            let docs = parse_yaml(&text).map_err(|e| at(format!("{shown}:{}:{}: {}", e.line, e.column, e.message)))?;
            for doc in docs {
                let value = to_json(&doc).map_err(|(l, c, m)| at(format!("{shown}:{l}:{c}: {m}")))?;
                out.push((doc, value));
            }
        }
        if out.is_empty() {
            return Err(at(format!("{name}: holds no objects")));
        }
        Ok(out)
    }

    pub(super) fn glob(&self, full: &Path, name: &str) -> Result<Vec<(PathBuf, String)>, String> {
        let pattern = full.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_else(|| self.dir.clone());
        if dir.to_string_lossy().contains(['*', '?', '[']) || pattern.contains('[') {
            return Err(format!(
                "{name}: only * and ? in the file name are supported, not in directories and not [...]"
            ));
        }
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("{name}: cannot read directory {}: {e}", dir.display()))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if wildcard(&pattern, &file_name) && entry.path().is_file() {
                let shown = Path::new(name).with_file_name(&file_name).to_string_lossy().into_owned();
                found.push((entry.path(), shown));
            }
        }
        found.sort();
        if found.is_empty() {
            return Err(format!("{name}: no file matches"));
        }
        Ok(found)
    }

    pub(super) fn delete(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(item, "delete", &["file", "resource", "ref", "timeout"], chainsaw::DELETE_FOREIGN)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let given: Vec<Item<'_>> = ["file", "resource", "ref"].iter().filter_map(|k| f.get(k)).collect();
        if given.len() > 1 {
            return Err(self.err_at(given[1].anchor(), &given[1].path, "delete takes one of file, resource or ref"));
        }
        let Some(src) = given.first() else {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "required: file (a YAML file next to the scenario), resource (an inline object) or ref (apiVersion, kind and a name or labels)",
            ));
        };
        let action = if src.path.ends_with(".ref") {
            let r = self.fields(src, "ref", &["apiVersion", "kind", "namespace", "name", "labels"], &[])?;
            let api_version =
                self.nonempty_string(&self.required(&r, "apiVersion", "the objects' apiVersion, like v1")?)?;
            let kind = self.nonempty_string(&self.required(&r, "kind", "the objects' kind, like Pod")?)?;
            let labels = match r.get("labels") {
                Some(l) => self.string_map(&l)?,
                None => Default::default(),
            };
            Delete::Ref(ObjectRef {
                api_version,
                kind,
                namespace: self.opt_nonempty(&r, "namespace")?,
                name: self.opt_nonempty(&r, "name")?,
                labels,
            })
        } else if src.path.ends_with(".file") {
            let file_name = self.string(src)?;
            let docs = self.read_objects(src, &file_name)?;
            let mut out = Vec::with_capacity(docs.len());
            for (i, (doc, value)) in docs.iter().enumerate() {
                self.check_object_in_file(src, &file_name, i, doc, false, "delete")?;
                out.push(value.clone());
            }
            Delete::Objects(Resources { objects: out, source: file_name })
        } else {
            let value = self.inline_object(src, false, "delete")?;
            Delete::Objects(Resources { objects: vec![value], source: "inline".to_string() })
        };
        Ok((Action::Delete(action), timeout))
    }
}

/// A problem with an object: the node at fault, the path below the object, the message.
pub(super) type Problem<'n> = (&'n Node, String, String);

/// The value of a top-level field of an object.
fn field<'n>(entries: &'n [(Node, Node)], name: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _)| matches!(&k.v, Yaml::Str(s) if s == name)).map(|(_, v)| v)
}

/// Every object needs a non-empty apiVersion and kind.
fn type_problem<'n>(node: &'n Node, entries: &'n [(Node, Node)]) -> Option<Problem<'n>> {
    for name in ["apiVersion", "kind"] {
        match field(entries, name) {
            None => {
                return Some((node, name.to_string(), "required: every object needs apiVersion and kind".to_string()));
            }
            Some(v) => match &v.v {
                Yaml::Str(s) if !s.is_empty() => {}
                other => {
                    return Some((
                        v,
                        name.to_string(),
                        format!("must be a non-empty string, found {}", other.type_name()),
                    ));
                }
            },
        }
    }
    None
}

/// Whether the object has a `metadata.name` and a `metadata.generateName` (non-empty strings).
fn names_given(entries: &[(Node, Node)]) -> Result<(bool, bool), Problem<'_>> {
    let Some(m) = field(entries, "metadata") else { return Ok((false, false)) };
    let Yaml::Map(me) = &m.v else {
        return Err((m, "metadata".to_string(), format!("must be a mapping, found {}", m.v.type_name())));
    };
    let has = |n: &str| {
        me.iter().any(|(k, v)| matches!(&k.v, Yaml::Str(s) if s == n) && matches!(&v.v, Yaml::Str(s) if !s.is_empty()))
    };
    Ok((has("name"), has("generateName")))
}
