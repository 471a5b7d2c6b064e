//! The `metrics.k8s.io/v1beta1` resources as metrics-server serves them (`pkg/api`): NodeMetrics
//! for nodes and PodMetrics for running pods (`status.phase=Running`, as its pod informer),
//! with the object's name, namespace and labels, `creationTimestamp` = now, `get` and `list`
//! (label and `metadata.*` field selectors) only, and Tables with its columns.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::format::{cpu_quantity, go_duration, memory_quantity, time_json};
use super::storage::{NodeSample, PodSample, Time, Usage};
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, NameRule, ResourceDesc};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::State;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
pub const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// A path under `/apis/metrics.k8s.io/v1beta1/`.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsRoute {
    /// `nodes` or `nodes/{name}`.
    Nodes { name: Option<String> },
    /// `pods` (all namespaces), `namespaces/{ns}/pods` or `namespaces/{ns}/pods/{name}`.
    Pods { ns: Option<String>, name: Option<String> },
}

impl MetricsRoute {
    /// The resource, for the audit log and fault rules.
    pub fn resource(&self) -> &'static str {
        match self {
            MetricsRoute::Nodes { .. } => "nodes",
            MetricsRoute::Pods { .. } => "pods",
        }
    }
    /// The object's name (`None` for a list).
    pub fn name(&self) -> Option<&str> {
        match self {
            MetricsRoute::Nodes { name } | MetricsRoute::Pods { name, .. } => name.as_deref(),
        }
    }
}

/// Recognises the segments after `/apis/metrics.k8s.io/v1beta1/`.
pub fn route(rest: &[&str]) -> Option<MetricsRoute> {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match rest {
        ["nodes"] => Some(MetricsRoute::Nodes { name: None }),
        ["nodes", name] => Some(MetricsRoute::Nodes { name: Some(some(name)?) }),
        ["pods"] => Some(MetricsRoute::Pods { ns: None, name: None }),
        ["namespaces", ns, "pods"] => Some(MetricsRoute::Pods { ns: Some(some(ns)?), name: None }),
        ["namespaces", ns, "pods", name] => Some(MetricsRoute::Pods { ns: Some(some(ns)?), name: Some(some(name)?) }),
        _ => None,
    }
}

/// The fields metrics-server selects on: `metadata.name` and `metadata.namespace` only.
static META_FIELDS_ONLY: ResourceDesc = ResourceDesc {
    group: GROUP, version: VERSION, kind: "NodeMetrics", plural: "nodes", singular: "", namespaced: false,
    short_names: &[], categories: &[], subresources: &[], field_selectors: &[], name_rule: NameRule::PathSegment, generation: false,
};

/// The request's `labelSelector` and `fieldSelector` (400 for a field other than
/// `metadata.name` and `metadata.namespace`, as upstream's default field label conversion).
fn selectors(q: &HashMap<String, String>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let label = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let field = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""), &META_FIELDS_ONLY)?;
    Ok((label, field))
}

/// Pods metrics-server knows of (its informer lists `status.phase=Running`).
fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

/// The object's metadata as metrics-server writes it: name, namespace, `now` as the
/// creation time, and the Node's or Pod's labels (omitted when none).
fn metadata(obj: &Value, namespaced: bool, now: &Value) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), obj["metadata"]["name"].clone());
    if namespaced {
        m.insert("namespace".into(), obj["metadata"]["namespace"].clone());
    }
    m.insert("creationTimestamp".into(), now.clone());
    if let Some(labels) = obj["metadata"]["labels"].as_object().filter(|l| !l.is_empty()) {
        m.insert("labels".into(), Value::Object(labels.clone()));
    }
    Value::Object(m)
}

/// `usage`: `cpu` in DecimalSI nanocores, `memory` in BinarySI bytes.
fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.cpu_nanocores), "memory": memory_quantity(u.memory_bytes)})
}

/// A NodeMetrics as a list item (no kind or apiVersion), for `node` and its usage.
pub fn node_metrics(node: &Value, s: &NodeSample, now: &Value) -> Value {
    json!({
        "metadata": metadata(node, false, now),
        "timestamp": time_json(s.time.timestamp),
        "window": go_duration(s.time.window),
        "usage": usage_json(&s.usage),
    })
}

/// A PodMetrics as a list item, for `pod` and its usage.
pub fn pod_metrics(pod: &Value, s: &PodSample, now: &Value) -> Value {
    let (timestamp, window) = s.time.map_or((Value::Null, go_duration(0)), |t| (time_json(t.timestamp), go_duration(t.window)));
    let containers: Vec<Value> = s.containers.iter().map(|(name, u)| json!({"name": name, "usage": usage_json(u)})).collect();
    json!({"metadata": metadata(pod, true, now), "timestamp": timestamp, "window": window, "containers": containers})
}

/// A list item as a whole object: `kind` and `apiVersion` first.
fn with_kind(mut v: Value, kind: &str) -> Value {
    if let Some(m) = v.as_object_mut() {
        let mut out = Map::new();
        out.insert("kind".into(), json!(kind));
        out.insert("apiVersion".into(), json!(API_VERSION));
        out.append(m);
        return Value::Object(out);
    }
    v
}

/// One object served: its JSON (as a list item) and its usage summed over containers (for
/// Tables).
#[derive(Debug, Clone)]
pub struct Item {
    pub value: Value,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

impl Item {
    fn node(node: &Value, s: &NodeSample, now: &Value) -> Item {
        Item { value: node_metrics(node, s, now), cpu_nanocores: s.usage.cpu_nanocores, memory_bytes: s.usage.memory_bytes }
    }
    fn pod(pod: &Value, s: &PodSample, now: &Value) -> Item {
        let sum = |f: fn(&Usage) -> u64| s.containers.iter().map(|(_, u)| f(u)).fold(0u64, u64::saturating_add);
        Item { value: pod_metrics(pod, s, now), cpu_nanocores: sum(|u| u.cpu_nanocores), memory_bytes: sum(|u| u.memory_bytes) }
    }
}

/// A Table as metrics-server's `ConvertToTable`: Name, cpu, memory (quantities; a pod's are
/// its containers' sums) and Window; each row carries its object as `includeObject` says
/// (`Metadata` by default). No items give no columns and no rows (`null`), as upstream.
pub fn table(items: &[Item], include_object: &str) -> Value {
    if items.is_empty() {
        return json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": null, "rows": null});
    }
    let col = |name: &str, format: &str, desc: &str| json!({"name": name, "type": "string", "format": format, "description": desc, "priority": 0});
    let columns = [col("Name", "name", "Name of the resource"), col("cpu", "quantity", ""), col("memory", "quantity", ""), col("Window", "duration", "")];
    let rows: Vec<Value> = items
        .iter()
        .map(|it| {
            let v = &it.value;
            let object = match include_object {
                "None" => Value::Null,
                "Object" => v.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"].clone()}),
            };
            let cells = json!([v["metadata"]["name"], cpu_quantity(it.cpu_nanocores), memory_quantity(it.memory_bytes), v["window"]]);
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns, "rows": rows})
}

/// Serves a `get` or `list`: the object, the list, or (`table_include` = the request's
/// `includeObject`) their Table.
pub fn serve(state: &State, r: &MetricsRoute, q: &HashMap<String, String>, table_include: Option<&str>) -> ApiResult<Value> {
    let now = time_json(Time::now());
    let (items, kind) = match r {
        MetricsRoute::Nodes { name: Some(name) } => (vec![get_node(state, name, &now)?], "NodeMetrics"),
        MetricsRoute::Nodes { name: None } => (list_nodes(state, q, &now)?, "NodeMetrics"),
        MetricsRoute::Pods { ns, name: Some(name) } => (vec![get_pod(state, ns.as_deref().unwrap_or(""), name, &now)?], "PodMetrics"),
        MetricsRoute::Pods { ns, name: None } => (list_pods(state, ns.as_deref(), q, &now)?, "PodMetrics"),
    };
    if let Some(include) = table_include {
        return Ok(table(&items, include));
    }
    let values = items.into_iter().map(|i| i.value);
    if r.name().is_some() {
        return Ok(values.map(|v| with_kind(v, kind)).next().unwrap_or(Value::Null));
    }
    Ok(json!({"kind": format!("{kind}List"), "apiVersion": API_VERSION, "metadata": {}, "items": values.collect::<Vec<_>>()}))
}

/// NodeMetrics `name`: 404 for a node that does not exist (upstream's lister error) or has
/// no usage.
fn get_node(state: &State, name: &str, now: &Value) -> ApiResult<Item> {
    let node = state.store.get(resources::NODES, "", name).ok_or_else(|| ApiError::not_found("", "node", name))?;
    let sample = state.metrics.lock().node(name).ok_or_else(|| ApiError::not_found(GROUP, "nodemetrics", name))?;
    Ok(Item::node(&node.value, &sample, now))
}

/// The NodeMetrics of the selected nodes that have a usage.
fn list_nodes(state: &State, q: &HashMap<String, String>, now: &Value) -> ApiResult<Vec<Item>> {
    let (label, field) = selectors(q)?;
    let nodes = state.store.list(resources::NODES, None, None, None, &|v| label.matches(v) && field.matches(v)).items;
    let storage = state.metrics.lock();
    Ok(nodes.iter().filter_map(|n| Some(Item::node(&n.value, &storage.node(n.name())?, now))).collect())
}

/// PodMetrics `ns/name`: 404 for a pod that does not exist or is not running, or has no usage.
fn get_pod(state: &State, ns: &str, name: &str, now: &Value) -> ApiResult<Item> {
    let pod = state.store.get(resources::PODS, ns, name).filter(|p| running(&p.value)).ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let sample = state.metrics.lock().pod(ns, name).ok_or_else(|| ApiError::not_found(GROUP, "podmetrics", &format!("{ns}/{name}")))?;
    Ok(Item::pod(&pod.value, &sample, now))
}

/// The PodMetrics of the selected running pods (in `ns`, or all) that have a usage.
fn list_pods(state: &State, ns: Option<&str>, q: &HashMap<String, String>, now: &Value) -> ApiResult<Vec<Item>> {
    let (label, field) = selectors(q)?;
    let pods = state.store.list(resources::PODS, ns, None, None, &|v| running(v) && label.matches(v) && field.matches(v)).items;
    let storage = state.metrics.lock();
    Ok(pods.iter().filter_map(|p| Some(Item::pod(&p.value, &storage.pod(p.namespace(), p.name())?, now))).collect())
}

#[cfg(test)]
mod tests;
