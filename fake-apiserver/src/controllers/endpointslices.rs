//! EndpointSlice controller: for every Service with a selector, EndpointSlices `<svc>-xxxxx`
//! listing the matching pods' IPs with ready/serving/terminating conditions and resolved ports,
//! plus the legacy core/v1 Endpoints object of the same name as the Service.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::resources;
use crate::selectors::LabelSelector;
use crate::server::State;
use crate::store::{Change, Obj};

pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c.get("type").and_then(Value::as_str) == Some("Ready") && c.get("status").and_then(Value::as_str) == Some("True")))
}

/// Resolve a service port's targetPort against a pod's container ports.
fn resolve_port(svc_port: &Value, pod: &Value) -> Option<i64> {
    match svc_port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(name)) => {
            if let Ok(n) = name.parse::<i64>() {
                return Some(n);
            }
            let proto = svc_port.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            ["containers", "initContainers"].iter().find_map(|k| {
                pod.pointer(&format!("/spec/{k}"))?.as_array()?.iter().find_map(|c| {
                    c.get("ports")?.as_array()?.iter().find_map(|p| {
                        let pn = p.get("name").and_then(Value::as_str)?;
                        let pp = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                        (pn == name && pp == proto).then(|| p.get("containerPort").and_then(Value::as_i64)).flatten()
                    })
                })
            })
        }
        _ => svc_port.get("port").and_then(Value::as_i64),
    }
}

fn endpoint_for(pod: &Obj) -> Option<Value> {
    let v = &pod.value;
    let ip = v.pointer("/status/podIP").and_then(Value::as_str).filter(|s| !s.is_empty())?;
    let phase = v.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let terminating = v.pointer("/metadata/deletionTimestamp").is_some();
    let serving = pod_ready(v);
    let mut ep = json!({
        "addresses": [ip],
        "conditions": {"ready": serving && !terminating, "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": pod.namespace(), "name": pod.name(), "uid": v.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)},
    });
    if let Some(n) = v.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        ep["nodeName"] = json!(n);
    }
    Some(ep)
}

/// Desired (ports → endpoints) groups for one service.
fn desired(svc: &Value, pods: &[Arc<Obj>]) -> Vec<(Value, Vec<Value>)> {
    let sel = svc.pointer("/spec/selector").and_then(Value::as_object).cloned().unwrap_or_default();
    let selector = LabelSelector::from_map(&sel);
    let svc_ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut groups: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selector.matches(&p.value)) {
        let Some(ep) = endpoint_for(pod) else { continue };
        let mut ports = Vec::new();
        for sp in &svc_ports {
            let Some(port) = resolve_port(sp, &pod.value) else { continue };
            let mut p = json!({
                "name": sp.get("name").and_then(Value::as_str).unwrap_or(""),
                "protocol": sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
                "port": port,
            });
            if let Some(ap) = sp.get("appProtocol") {
                p["appProtocol"] = ap.clone();
            }
            ports.push(p);
        }
        let ports = Value::Array(ports);
        let entry = groups.entry(ports.to_string()).or_insert_with(|| (ports.clone(), Vec::new()));
        entry.1.push(ep);
    }
    let mut out: Vec<(Value, Vec<Value>)> = groups.into_values().collect();
    for (_, eps) in out.iter_mut() {
        eps.sort_by(|a, b| a.pointer("/addresses/0").and_then(Value::as_str).cmp(&b.pointer("/addresses/0").and_then(Value::as_str)));
    }
    if out.is_empty() {
        out.push((Value::Null, Vec::new()));
    }
    out
}

fn slice_labels(svc: &Value) -> Map<String, Value> {
    let mut labels = svc.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), json!(svc.pointer("/metadata/name")));
    labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY));
    labels
}

pub const ENDPOINTS_MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
pub const ENDPOINTS_MANAGED_BY: &str = "endpoint-controller";

/// The core/v1 Endpoints subsets for the desired groups (terminating endpoints left out).
fn subsets(groups: &[(Value, Vec<Value>)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (ports, eps) in groups {
        let addr = |e: &Value| {
            let mut a = json!({"ip": e.pointer("/addresses/0").cloned().unwrap_or(Value::Null), "targetRef": e.get("targetRef").cloned().unwrap_or(Value::Null)});
            if let Some(n) = e.get("nodeName") {
                a["nodeName"] = n.clone();
            }
            a
        };
        let cond = |e: &Value, k: &str| e.pointer(&format!("/conditions/{k}")).and_then(Value::as_bool).unwrap_or(false);
        let ready: Vec<Value> = eps.iter().filter(|e| cond(e, "ready")).map(addr).collect();
        let not_ready: Vec<Value> = eps.iter().filter(|e| !cond(e, "ready") && !cond(e, "terminating")).map(addr).collect();
        if ready.is_empty() && not_ready.is_empty() {
            continue;
        }
        let mut subset = json!({});
        if !ready.is_empty() {
            subset["addresses"] = Value::Array(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = Value::Array(not_ready);
        }
        if let Some(p) = ports.as_array().filter(|p| !p.is_empty()) {
            subset["ports"] = Value::Array(p.iter().map(|p| {
                let mut q = p.clone();
                if q.get("name").and_then(Value::as_str) == Some("") && let Some(m) = q.as_object_mut() {
                    m.remove("name");
                }
                q
            }).collect());
        }
        out.push(subset);
    }
    out
}

fn sync_endpoints(state: &State, svc: &Obj, groups: &[(Value, Vec<Value>)]) {
    let (ns, name) = (svc.namespace().to_string(), svc.name().to_string());
    let mut labels = svc.value.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
    labels.insert(ENDPOINTS_MANAGED_BY_LABEL.into(), json!(ENDPOINTS_MANAGED_BY));
    let subsets = subsets(groups);
    match state.store.get(resources::ENDPOINTS, &ns, &name) {
        None => {
            let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "labels": labels}});
            if !subsets.is_empty() {
                ep["subsets"] = Value::Array(subsets);
            }
            let _ = state.api.create(resources::ENDPOINTS, &ns, ep);
        }
        Some(cur) => {
            let mut new = cur.value.clone();
            new["metadata"]["labels"] = Value::Object(labels);
            match new.as_object_mut() {
                Some(o) if subsets.is_empty() => {
                    o.remove("subsets");
                }
                Some(o) => {
                    o.insert("subsets".into(), Value::Array(subsets));
                }
                None => return,
            }
            if new != cur.value {
                let _ = state.store.mutate(resources::ENDPOINTS, &ns, &name, |c| Ok(if c.is_some() { Change::Put(new) } else { Change::Keep }));
            }
        }
    }
}

fn sync_service(state: &State, svc: &Obj, pods: &[Arc<Obj>], existing: Vec<Arc<Obj>>) {
    let ns = svc.namespace().to_string();
    let labels = slice_labels(&svc.value);
    let mut want = desired(&svc.value, pods);
    sync_endpoints(state, svc, &want);
    let mut unmatched: Vec<Arc<Obj>> = Vec::new();
    // Pair existing slices with desired groups having the same ports.
    for s in existing {
        let ports = s.value.get("ports").cloned().unwrap_or(Value::Null);
        let ports = if ports.as_array().is_some_and(|a| a.is_empty()) { Value::Null } else { ports };
        if let Some(i) = want.iter().position(|(p, _)| *p == ports) {
            let (p, eps) = want.remove(i);
            write_slice(state, &ns, &s, p, eps, &labels);
        } else {
            unmatched.push(s);
        }
    }
    for (p, eps) in want {
        if let Some(s) = unmatched.pop() {
            write_slice(state, &ns, &s, p, eps, &labels);
            continue;
        }
        let owner = json!([{"apiVersion": "v1", "kind": "Service", "name": svc.name(),
            "uid": svc.value.pointer("/metadata/uid").cloned().unwrap_or(Value::Null), "controller": true, "blockOwnerDeletion": true}]);
        let mut slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": format!("{}-", svc.name()), "labels": labels, "ownerReferences": owner},
            "addressType": "IPv4", "endpoints": eps,
        });
        if !p.is_null() {
            slice["ports"] = p;
        }
        let _ = state.api.create(resources::ENDPOINTSLICES, &ns, slice);
    }
    for s in unmatched {
        let name = s.name().to_string();
        let _ = state.store.mutate(resources::ENDPOINTSLICES, &ns, &name, |c| Ok(if c.is_some() { Change::Delete } else { Change::Keep }));
    }
}

fn write_slice(state: &State, ns: &str, s: &Obj, ports: Value, eps: Vec<Value>, labels: &Map<String, Value>) {
    let mut new = s.value.clone();
    new["endpoints"] = Value::Array(eps);
    match ports {
        Value::Null => {
            if let Some(o) = new.as_object_mut() {
                o.remove("ports");
            }
        }
        p => new["ports"] = p,
    }
    new["metadata"]["labels"] = Value::Object(labels.clone());
    if new == s.value {
        return;
    }
    let name = s.name().to_string();
    let _ = state.store.mutate(resources::ENDPOINTSLICES, ns, &name, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let mut n = new;
        let g = cur.value.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1) + 1;
        n["metadata"]["generation"] = json!(g);
        Ok(Change::Put(n))
    });
}

/// Reconcile all services once.
pub fn sync_all(state: &State) {
    let (services, _) = state.store.snapshot(resources::SERVICES, None);
    let selected: Vec<&Arc<Obj>> = services
        .iter()
        .filter(|s| {
            s.value.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName")
                && s.value.pointer("/spec/selector").and_then(Value::as_object).is_some_and(|m| !m.is_empty())
        })
        .collect();
    let (slices, _) = state.store.snapshot(resources::ENDPOINTSLICES, None);
    let mut by_svc: HashMap<(String, String), Vec<Arc<Obj>>> = HashMap::new();
    for s in slices {
        let managed = s.value.pointer(&format!("/metadata/labels/{}", MANAGED_BY_LABEL.replace('/', "~1"))).and_then(Value::as_str) == Some(MANAGED_BY);
        let svc = s.value.pointer(&format!("/metadata/labels/{}", SERVICE_NAME_LABEL.replace('/', "~1"))).and_then(Value::as_str).map(str::to_string);
        if let (true, Some(svc)) = (managed, svc) {
            by_svc.entry((s.namespace().to_string(), svc)).or_default().push(s);
        }
    }
    let mut pods_by_ns: HashMap<String, Vec<Arc<Obj>>> = HashMap::new();
    for svc in &selected {
        let ns = svc.namespace().to_string();
        if !pods_by_ns.contains_key(&ns) {
            let (pods, _) = state.store.snapshot(resources::PODS, Some(&ns));
            pods_by_ns.insert(ns.clone(), pods);
        }
        let existing = by_svc.remove(&(ns.clone(), svc.name().to_string())).unwrap_or_default();
        sync_service(state, svc, pods_by_ns.get(&ns).map(Vec::as_slice).unwrap_or(&[]), existing);
    }
    let (endpoints, _) = state.store.snapshot(resources::ENDPOINTS, None);
    for ep in endpoints {
        let managed = ep.value.pointer(&format!("/metadata/labels/{}", ENDPOINTS_MANAGED_BY_LABEL.replace('/', "~1"))).and_then(Value::as_str) == Some(ENDPOINTS_MANAGED_BY);
        if managed && !selected.iter().any(|s| s.namespace() == ep.namespace() && s.name() == ep.name()) {
            let (ns, name) = (ep.namespace().to_string(), ep.name().to_string());
            let _ = state.store.mutate(resources::ENDPOINTS, &ns, &name, |c| Ok(if c.is_some() { Change::Delete } else { Change::Keep }));
        }
    }
    for ((ns, _), orphans) in by_svc {
        for s in orphans {
            let name = s.name().to_string();
            let _ = state.store.mutate(resources::ENDPOINTSLICES, &ns, &name, |c| Ok(if c.is_some() { Change::Delete } else { Change::Keep }));
        }
    }
}

/// Run until the server is cancelled.
pub async fn run(state: Arc<State>) {
    let mut svc_rx = state.store.subscribe(resources::SERVICES);
    let mut pod_rx = state.store.subscribe(resources::PODS);
    let mut slice_rx = state.store.subscribe(resources::ENDPOINTSLICES);
    let mut ep_rx = state.store.subscribe(resources::ENDPOINTS);
    loop {
        sync_all(&state);
        tokio::select! {
            _ = svc_rx.changed() => {}
            _ = pod_rx.changed() => {}
            _ = slice_rx.changed() => {}
            _ = ep_rx.changed() => {}
            _ = state.cancel.cancelled() => return,
        }
        // Coalesce bursts of changes into one pass.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = state.cancel.cancelled() => return,
        }
        svc_rx.mark_unchanged();
        pod_rx.mark_unchanged();
        slice_rx.mark_unchanged();
        ep_rx.mark_unchanged();
    }
}
