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

/// Apply `applied` for `manager` onto `live` (None when creating). Returns the new object.
pub fn server_side_apply(live: Option<&Value>, applied: &Value, manager: &str, kind: &str, now: &str) -> Result<Value, String> {
    if !applied.is_object() {
        return Err("apply configuration must be an object".into());
    }
    let set = field_set(applied, kind);
    let api_version = applied.get("apiVersion").cloned().unwrap_or(Value::Null);
    let mut base = live.cloned().unwrap_or_else(|| json!({}));
    let mut managed: Vec<Value> = base
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(prev) = managed.iter().find(|e| {
        e.get("manager").and_then(Value::as_str) == Some(manager) && e.get("operation").and_then(Value::as_str) == Some("Apply")
    }) {
        let prev_set = prev.get("fieldsV1").cloned().unwrap_or_else(|| json!({}));
        remove_unowned(&mut base, &prev_set, &set);
    }
    let mut merged = strategic::apply(&base, &strategic::strip(applied), kind)?;
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
