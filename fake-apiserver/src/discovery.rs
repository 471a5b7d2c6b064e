//! Discovery documents for clients: /version, /api, /api/v1, /apis, /apis/<group>[/<version>].

use serde_json::{Value, json};

use crate::http::metrics::api::{GROUP as METRICS_GROUP, VERSION as METRICS_VERSION};
use crate::resources::{self, TABLE, VERBS};

/// The /version document.
pub fn version(v: &str) -> Value {
    let trimmed = v.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("34");
    json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": minor.parse::<u32>().map(|m| m.saturating_sub(1).to_string()).unwrap_or_default(),
        "gitVersion": v,
        "gitCommit": "7f2a5c9b0d3e4a1b8c6d2e9f0a1b2c3d4e5f6a7b",
        "gitTreeState": "clean",
        "buildDate": "2025-11-11T19:01:53Z",
        "goVersion": "go1.24.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
    })
}

fn group_doc(g: &str, v: &str) -> Value {
    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
}

/// The served groups, with `metrics.k8s.io/v1beta1` when `metrics` (metrics-server's APIService).
fn served_groups(metrics: bool) -> Vec<(&'static str, &'static str)> {
    let mut groups = resources::groups();
    groups.extend(crate::http::review::GROUPS);
    if metrics {
        groups.push((METRICS_GROUP, METRICS_VERSION));
    }
    groups
}

/// The APIGroupList of /apis (`metrics`: include `metrics.k8s.io`).
pub fn group_list(metrics: bool) -> Value {
    let groups: Vec<Value> = served_groups(metrics).iter().map(|(g, v)| group_doc(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The APIGroup of /apis/<g> (`metrics`: `metrics.k8s.io` is served).
pub fn group(g: &str, metrics: bool) -> Option<Value> {
    let (g, v) = served_groups(metrics).into_iter().find(|(gg, _)| *gg == g)?;
    let mut d = group_doc(g, v);
    d["kind"] = json!("APIGroup");
    d["apiVersion"] = json!("v1");
    Some(d)
}

/// The APIResourceList of one group/version ("" for core).
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut out = Vec::new();
    for d in TABLE.iter().filter(|d| d.group == group && d.version == version) {
        let verbs: Vec<&str> = if d.plural == "namespaces" {
            VERBS.iter().copied().filter(|v| *v != "deletecollection").collect()
        } else {
            VERBS.to_vec()
        };
        let mut e = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": verbs,
        });
        if !d.short_names.is_empty() {
            e["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            e["categories"] = json!(d.categories);
        }
        out.push(e);
        for s in d.subresources {
            let (kind, verbs, g, v): (&str, Vec<&str>, &str, &str) = match *s {
                "status" => (d.kind, vec!["get", "patch", "update"], "", ""),
                "binding" => ("Binding", vec!["create"], "", ""),
                "eviction" => ("Eviction", vec!["create"], "policy", "v1"),
                "finalize" => (d.kind, vec!["update"], "", ""),
                "scale" => ("Scale", vec!["get", "patch", "update"], "autoscaling", "v1"),
                "token" => ("TokenRequest", vec!["create"], "authentication.k8s.io", "v1"),
                _ => continue,
            };
            let mut e = json!({"name": format!("{}/{s}", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": kind, "verbs": verbs});
            if !g.is_empty() {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            out.push(e);
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out})
}

/// metrics-server's APIResourceList of `metrics.k8s.io/v1beta1`: `nodes` (NodeMetrics) and
/// namespaced `pods` (PodMetrics), `get` and `list` only, no singular names.
pub fn metrics_resource_list() -> Value {
    let res = |name: &str, namespaced: bool, kind: &str| {
        json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]})
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{METRICS_GROUP}/{METRICS_VERSION}"),
        "resources": [res("nodes", false, "NodeMetrics"), res("pods", true, "PodMetrics")],
    })
}
