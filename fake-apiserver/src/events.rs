//! events.k8s.io/v1 Events are a view over the core/v1 Event storage, as upstream:
//! conversion both ways and field-selector renaming.

use serde_json::{Map, Value};

use crate::selectors::FieldSelector;

/// (events.k8s.io/v1 field, core/v1 field) pairs.
const FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(v: &Value, api_version: &str, to_core: bool) -> Value {
    let Some(m) = v.as_object() else { return v.clone() };
    let mut out = Map::new();
    for (k, val) in m {
        let mapped = FIELDS
            .iter()
            .find(|(e, c)| if to_core { e == k } else { c == k })
            .map(|(e, c)| if to_core { *c } else { *e })
            .unwrap_or(k.as_str());
        out.insert(mapped.to_string(), val.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// events.k8s.io/v1 → core/v1.
pub fn to_core(v: &Value) -> Value {
    rename(v, "v1", true)
}

/// core/v1 → events.k8s.io/v1.
pub fn from_core(v: &Value) -> Value {
    rename(v, "events.k8s.io/v1", false)
}

/// Rewrite an events.k8s.io field selector into core/v1 field names.
pub fn core_selector(mut f: FieldSelector) -> FieldSelector {
    for r in f.0.iter_mut() {
        if let Some(rest) = r.field.strip_prefix("regarding.") {
            r.field = format!("involvedObject.{rest}");
        } else if r.field == "reportingController" {
            r.field = "reportingComponent".into();
        }
    }
    f
}
