//! Strategic merge patch: merge keys per field as upstream, and the `$patch`, `$retainKeys`,
//! `$setElementOrder/…` and `$deleteFromPrimitiveList/…` directives.

use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Merge maps by this key.
    Key(&'static str),
    /// Union of primitives.
    Primitive,
    /// Replace the whole list.
    Replace,
}

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// The list strategy for `field` under `path` (field names from the root) of an object of `kind`.
pub fn list_strategy(kind: &str, path: &[String], field: &str) -> ListStrategy {
    let in_container = path.iter().any(|p| p == "containers" || p == "initContainers" || p == "ephemeralContainers");
    match field {
        "containers" | "initContainers" | "ephemeralContainers" => ListStrategy::Key("name"),
        "env" | "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" | "claims" => ListStrategy::Key("name"),
        "ports" if in_container => ListStrategy::Key("containerPort"),
        "ports" if kind == "Service" && path.len() == 1 && path[0] == "spec" => ListStrategy::Key("port"),
        "volumeMounts" => ListStrategy::Key("mountPath"),
        "volumeDevices" => ListStrategy::Key("devicePath"),
        "conditions" if kind != "EndpointSlice" => ListStrategy::Key("type"),
        "addresses" if kind == "Node" => ListStrategy::Key("type"),
        "ownerReferences" => ListStrategy::Key("uid"),
        "hostAliases" | "podIPs" | "hostIPs" => ListStrategy::Key("ip"),
        "topologySpreadConstraints" => ListStrategy::Key("topologyKey"),
        "finalizers" if path.len() == 1 && path[0] == "metadata" => ListStrategy::Primitive,
        _ => ListStrategy::Replace,
    }
}

/// Apply a strategic merge patch to `original`.
pub fn apply(original: &Value, patch: &Value, kind: &str) -> Result<Value, String> {
    let Value::Object(p) = patch else {
        return Err("strategic merge patch must be a JSON object".into());
    };
    let orig = original.as_object().cloned().unwrap_or_default();
    match merge_map(orig, p, kind, &mut Vec::new())? {
        Some(m) => Ok(Value::Object(m)),
        None => Ok(Value::Object(Map::new())),
    }
}

/// Remove all directives and nulls from a value that is added as new.
pub fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| !(x.as_object().is_some_and(|m| m.get("$patch").is_some() && m.len() == 1)))
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(
    mut orig: Map<String, Value>,
    patch: &Map<String, Value>,
    kind: &str,
    path: &mut Vec<String>,
) -> Result<Option<Map<String, Value>>, String> {
    match patch.get("$patch") {
        None => {}
        Some(Value::String(s)) if s == "merge" => {}
        Some(Value::String(s)) if s == "replace" => {
            if let Value::Object(m) = strip(&Value::Object(patch.clone())) {
                return Ok(Some(m));
            }
        }
        Some(Value::String(s)) if s == "delete" => return Ok(None),
        Some(other) => return Err(format!("Unknown patch type: {other}")),
    }
    if let Some(retain) = patch.get("$retainKeys") {
        let keys = retain.as_array().ok_or("$retainKeys must be a list of strings")?;
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        orig.retain(|k, _| keys.contains(&k.as_str()));
    }
    let mut orders: Vec<(&str, &Vec<Value>)> = Vec::new();
    let mut deletions: Vec<(&str, &Vec<Value>)> = Vec::new();
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            orders.push((field, v.as_array().ok_or_else(|| format!("{k} must be a list"))?));
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            deletions.push((field, v.as_array().ok_or_else(|| format!("{k} must be a list"))?));
            continue;
        }
        if k.starts_with('$') {
            if k == "$patch" || k == "$retainKeys" {
                continue;
            }
            return Err(format!("unknown directive {k}"));
        }
        match v {
            Value::Null => {
                orig.remove(k);
            }
            Value::Object(pm) => {
                let base = match orig.remove(k) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                path.push(k.clone());
                let merged = merge_map(base, pm, kind, path);
                path.pop();
                if let Some(m) = merged? {
                    orig.insert(k.clone(), Value::Object(m));
                }
            }
            Value::Array(pa) => {
                let base = match orig.remove(k) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let strategy = list_strategy(kind, path, k);
                path.push(k.clone());
                let merged = merge_list(base, pa, strategy, kind, path);
                path.pop();
                orig.insert(k.clone(), Value::Array(merged?));
            }
            scalar => {
                orig.insert(k.clone(), scalar.clone());
            }
        }
    }
    for (field, values) in deletions {
        if let Some(Value::Array(list)) = orig.get_mut(field) {
            list.retain(|x| !values.contains(x));
        }
    }
    for (field, order) in orders {
        let strategy = list_strategy(kind, path, field);
        if let Some(Value::Array(list)) = orig.get_mut(field) {
            let reordered = reorder(std::mem::take(list), order, strategy);
            *list = reordered;
        }
    }
    Ok(Some(orig))
}

fn key_of<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|m| m.get(key))
}

fn merge_list(
    mut base: Vec<Value>,
    patch: &[Value],
    strategy: ListStrategy,
    kind: &str,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, String> {
    let replace = patch
        .iter()
        .any(|p| p.as_object().is_some_and(|m| m.get("$patch").and_then(Value::as_str) == Some("replace")));
    if replace {
        return Ok(patch
            .iter()
            .filter(|p| !p.as_object().is_some_and(|m| m.contains_key("$patch") && m.len() == 1))
            .map(strip)
            .collect());
    }
    match strategy {
        ListStrategy::Replace => Ok(patch.iter().map(strip).collect()),
        ListStrategy::Primitive => {
            for p in patch {
                if !base.contains(p) {
                    base.push(p.clone());
                }
            }
            Ok(base)
        }
        ListStrategy::Key(mk) => {
            for p in patch {
                let Some(pm) = p.as_object() else {
                    if !base.contains(p) {
                        base.push(p.clone());
                    }
                    continue;
                };
                let Some(kv) = pm.get(mk) else {
                    if pm.get("$patch").is_some() {
                        continue;
                    }
                    return Err(format!("map: {p} does not contain declared merge key: {mk}"));
                };
                let pos = base.iter().position(|b| key_of(b, mk) == Some(kv));
                let directive = pm.get("$patch").and_then(Value::as_str);
                if directive == Some("delete") {
                    base.retain(|b| key_of(b, mk) != Some(kv));
                    continue;
                }
                match pos {
                    Some(i) => {
                        let orig = base[i].as_object().cloned().unwrap_or_default();
                        match merge_map(orig, pm, kind, path)? {
                            Some(m) => base[i] = Value::Object(m),
                            None => {
                                base.remove(i);
                            }
                        }
                    }
                    None => base.push(strip(p)),
                }
            }
            Ok(base)
        }
    }
}

fn reorder(list: Vec<Value>, order: &[Value], strategy: ListStrategy) -> Vec<Value> {
    let ident = |v: &Value| -> Option<Value> {
        match strategy {
            ListStrategy::Key(mk) => key_of(v, mk).cloned(),
            _ => Some(v.clone()),
        }
    };
    let order_ids: Vec<Option<Value>> = order.iter().map(&ident).collect();
    let mut ordered: Vec<(usize, Value)> = Vec::new();
    let mut rest: Vec<(usize, Value)> = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        let id = ident(&item);
        match order_ids.iter().position(|o| o.is_some() && *o == id) {
            Some(pos) => ordered.push((pos, item)),
            None => rest.push((i, item)),
        }
    }
    ordered.sort_by_key(|(p, _)| *p);
    let mut out: Vec<Value> = ordered.into_iter().map(|(_, v)| v).collect();
    for (i, item) in rest {
        let at = i.min(out.len());
        out.insert(at, item);
    }
    out
}
