//! Server-side apply: merge an applied configuration into the live object and track the
//! applier's fields in `managedFields` (FieldsV1), removing fields it no longer applies.

use serde_json::{Map, Value, json};

use crate::patch::strategic::{self, ListStrategy};

const IGNORED_META: &[&str] = &["name", "namespace", "resourceVersion", "uid", "managedFields", "creationTimestamp", "generation"];

/// Build the FieldsV1 set of an applied object.
pub fn field_set(obj: &Value, kind: &str) -> Value {
    let mut path = Vec::new();
    match obj {
        Value::Object(m) => Value::Object(fields_of_map(m, kind, &mut path, true)),
        _ => json!({}),
    }
}

fn fields_of_map(m: &Map<String, Value>, kind: &str, path: &mut Vec<String>, root: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        if root && (k == "apiVersion" || k == "kind") {
            continue;
        }
        if path.len() == 1 && path[0] == "metadata" && IGNORED_META.contains(&k.as_str()) {
            continue;
        }
        if k.starts_with('$') || v.is_null() {
            continue;
        }
        let entry = match v {
            Value::Object(inner) => {
                path.push(k.clone());
                let f = fields_of_map(inner, kind, path, false);
                path.pop();
                // A map whose every field is ignored (metadata with a name only) is not owned.
                if f.is_empty() && !inner.is_empty() {
                    continue;
                }
                Value::Object(f)
            }
            Value::Array(items) => match strategic::list_strategy(kind, path, k) {
                ListStrategy::Key(mk) => {
                    let mut lm = Map::new();
                    path.push(k.clone());
                    for item in items {
                        if let Some(im) = item.as_object()
                            && let Some(kv) = im.get(mk)
                        {
                            let mut f = fields_of_map(im, kind, path, false);
                            f.insert(".".into(), json!({}));
                            lm.insert(format!("k:{}", json!({ mk: kv })), Value::Object(f));
                        }
                    }
                    path.pop();
                    Value::Object(lm)
                }
                ListStrategy::Primitive => {
                    let mut lm = Map::new();
                    for item in items {
                        lm.insert(format!("v:{item}"), json!({}));
                    }
                    Value::Object(lm)
                }
                ListStrategy::Replace => json!({}),
            },
            _ => json!({}),
        };
        out.insert(format!("f:{k}"), entry);
    }
    out
}

/// Remove from `live` every field in `prev` that is not in `next`.
fn remove_unowned(live: &mut Value, prev: &Value, next: &Value) {
    let (Some(pm), Some(lm)) = (prev.as_object(), live.as_object_mut()) else { return };
    let empty = Map::new();
    let nm = next.as_object().unwrap_or(&empty);
    for (k, sub) in pm {
        let Some(field) = k.strip_prefix("f:") else { continue };
        match nm.get(k) {
            None => {
                lm.remove(field);
            }
            Some(nsub) => {
                let Some(child) = lm.get_mut(field) else { continue };
                if let Value::Array(items) = child {
                    for (ik, isub) in sub.as_object().into_iter().flatten() {
                        if let Some(key) = ik.strip_prefix("k:") {
                            let Ok(Value::Object(kmap)) = serde_json::from_str::<Value>(key) else { continue };
                            let matches = |item: &Value| kmap.iter().all(|(kk, kv)| item.get(kk) == Some(kv));
                            match nsub.get(ik) {
                                None => items.retain(|i| !matches(i)),
                                Some(nisub) => {
                                    for item in items.iter_mut().filter(|i| matches(i)) {
                                        remove_unowned(item, isub, nisub);
                                    }
                                }
                            }
                        } else if let Some(val) = ik.strip_prefix("v:")
                            && nsub.get(ik).is_none()
                                && let Ok(v) = serde_json::from_str::<Value>(val)
                            {
                                items.retain(|i| *i != v);
                            }
                    }
                } else {
                    remove_unowned(child, sub, nsub);
                }
            }
        }
    }
}

impl From<ApplyError> for crate::error::ApiError {
    /// 422 for an invalid configuration; 409 Conflict with one FieldManagerConflict cause per
    /// field for conflicts (upstream's text: `Apply failed with 1 conflict: conflict with "m"
    /// using v1: .spec.x`).
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid(m) => crate::error::ApiError::new(422, "Invalid", m),
            ApplyError::Conflicts(cs) => {
                let with = |m: &str, v: &str| if v.is_empty() { format!("{m:?}") } else { format!("{m:?} using {v}") };
                let n = cs.len();
                let message = if n == 1 {
                    format!("Apply failed with 1 conflict: conflict with {}: {}", with(&cs[0].0, &cs[0].1), cs[0].2)
                } else {
                    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
                    for (m, v, p) in &cs {
                        let key = with(m, v);
                        match groups.iter_mut().find(|g| g.0 == key) {
                            Some(g) => g.1.push(p),
                            None => groups.push((key, vec![p])),
                        }
                    }
                    let body: Vec<String> = groups
                        .iter()
                        .map(|(w, ps)| format!("conflicts with {w}:\n{}", ps.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n")))
                        .collect();
                    format!("Apply failed with {n} conflicts: {}", body.join("\n"))
                };
                let causes: Vec<Value> = cs
                    .iter()
                    .map(|(m, v, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", with(m, v)), "field": p}))
                    .collect();
                let mut err = crate::error::ApiError::new(409, "Conflict", message);
                err.details = Some(json!({"causes": causes}));
                err
            }
        }
    }
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    Invalid(String),
    /// Fields another applier owns with another value: (manager, its apiVersion, path).
    Conflicts(Vec<(String, String, String)>),
}

/// The value at a FieldsV1 path (`f:name`, `k:{"key":…}` list items) in `v`.
fn resolve<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else { return Some(v) };
    if let Some(field) = first.strip_prefix("f:") {
        return resolve(v.get(field)?, rest);
    }
    if let Some(key) = first.strip_prefix("k:") {
        let Ok(Value::Object(kmap)) = serde_json::from_str::<Value>(key) else { return None };
        let item = v.as_array()?.iter().find(|i| kmap.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))?;
        return resolve(item, rest);
    }
    None
}

/// `.spec.containers[name="c"].image`, as upstream prints a FieldsV1 path.
fn display(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:") {
            let kv: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            out.push_str(&format!("[{}]", kv.join(",")));
        } else if let Some(v) = p.strip_prefix("v:") {
            out.push_str(&format!("[{v}]"));
        }
    }
    out
}

/// The leaf paths both field sets hold.
fn shared_leaves(a: &Value, b: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let (Some(am), Some(bm)) = (a.as_object(), b.as_object()) else { return };
    for (k, asub) in am {
        if k == "." {
            continue;
        }
        let Some(bsub) = bm.get(k) else { continue };
        path.push(k.clone());
        let leaf = |v: &Value| v.as_object().is_none_or(|m| m.keys().all(|k| k == "."));
        if leaf(asub) || leaf(bsub) {
            out.push(path.clone());
        } else {
            shared_leaves(asub, bsub, path, out);
        }
        path.pop();
    }
}

/// Removes `path` from a field set, and the maps it leaves empty.
fn remove_path(set: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    let Some(m) = set.as_object_mut() else { return };
    if rest.is_empty() {
        m.remove(first);
        return;
    }
    if let Some(child) = m.get_mut(first) {
        remove_path(child, rest);
        if child.as_object().is_some_and(|c| c.is_empty()) {
            m.remove(first);
        }
    }
}

/// Apply `applied` for `manager` onto `live` (None when creating). Returns the new object.
/// A field another applier owns with another value is a conflict, unless `force`: then it
/// changes owner.
pub fn server_side_apply(live: Option<&Value>, applied: &Value, manager: &str, kind: &str, now: &str, force: bool) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid("apply configuration must be an object".into()));
    }
    let set = field_set(applied, kind);
    let api_version = applied.get("apiVersion").cloned().unwrap_or(Value::Null);
    let mut base = live.cloned().unwrap_or_else(|| json!({}));
    let mut managed: Vec<Value> = base
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut conflicts = Vec::new();
    for entry in managed.iter_mut() {
        let other = entry.get("manager").and_then(Value::as_str).unwrap_or_default().to_string();
        if other == manager || entry.get("operation").and_then(Value::as_str) != Some("Apply") {
            continue;
        }
        let mut shared = Vec::new();
        shared_leaves(&set, entry.get("fieldsV1").unwrap_or(&Value::Null), &mut Vec::new(), &mut shared);
        let differing: Vec<Vec<String>> = shared.into_iter().filter(|p| resolve(&base, p) != resolve(applied, p)).collect();
        if force {
            if let Some(fields) = entry.get_mut("fieldsV1") {
                for p in &differing {
                    remove_path(fields, p);
                }
            }
        } else {
            let version = entry.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
            conflicts.extend(differing.iter().map(|p| (other.clone(), version.clone(), display(p))));
        }
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }
    if let Some(prev) = managed.iter().find(|e| {
        e.get("manager").and_then(Value::as_str) == Some(manager) && e.get("operation").and_then(Value::as_str) == Some("Apply")
    }) {
        let prev_set = prev.get("fieldsV1").cloned().unwrap_or_else(|| json!({}));
        remove_unowned(&mut base, &prev_set, &set);
    }
    let mut merged = strategic::apply(&base, &strategic::strip(applied), kind).map_err(ApplyError::Invalid)?;
    managed.retain(|e| {
        !(e.get("manager").and_then(Value::as_str) == Some(manager) && e.get("operation").and_then(Value::as_str) == Some("Apply"))
    });
    managed.push(json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": set,
    }));
    if let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("managedFields".into(), Value::Array(managed));
    } else if let Some(o) = merged.as_object_mut() {
        o.insert("metadata".into(), json!({"managedFields": managed}));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    #[test]
    fn another_appliers_field_with_another_value_conflicts_unless_forced() {
        let a = server_side_apply(None, &cm(json!({"x": "1", "y": "1"})), "a", "ConfigMap", "t", false).unwrap();
        // Same values, or fields only one manager holds: no conflict; both now own x.
        let b = server_side_apply(Some(&a), &cm(json!({"x": "1", "z": "2"})), "b", "ConfigMap", "t", false).unwrap();
        let err = server_side_apply(Some(&b), &cm(json!({"x": "9", "z": "2"})), "b", "ConfigMap", "t", false).unwrap_err();
        assert_eq!(err, ApplyError::Conflicts(vec![("a".into(), "v1".into(), ".data.x".into())]));
        let api: crate::error::ApiError = err.into();
        assert_eq!((api.code, api.reason), (409, "Conflict"));
        assert_eq!(api.message, r#"Apply failed with 1 conflict: conflict with "a" using v1: .data.x"#);
        assert_eq!(api.details.unwrap()["causes"][0]["reason"], "FieldManagerConflict");
        // Forced: b takes x over; a keeps y only.
        let forced = server_side_apply(Some(&b), &cm(json!({"x": "9", "z": "2"})), "b", "ConfigMap", "t", true).unwrap();
        assert_eq!(forced["data"], json!({"x": "9", "y": "1", "z": "2"}));
        let managed = forced["metadata"]["managedFields"].as_array().unwrap();
        let a_fields = &managed.iter().find(|e| e["manager"] == "a").unwrap()["fieldsV1"];
        assert_eq!(a_fields, &json!({"f:data": {"f:y": {}}}));
        // a re-applying its old x now conflicts with b.
        let err = server_side_apply(Some(&forced), &cm(json!({"x": "1", "y": "1"})), "a", "ConfigMap", "t", false).unwrap_err();
        assert!(matches!(&err, ApplyError::Conflicts(c) if c[0].0 == "b" && c[0].2 == ".data.x"), "{err:?}");
    }

    #[test]
    fn list_item_paths_print_like_upstream() {
        let path = ["f:spec", "f:containers", r#"k:{"name":"c"}"#, "f:image"].map(String::from);
        assert_eq!(display(&path), r#".spec.containers[name="c"].image"#);
    }
}
