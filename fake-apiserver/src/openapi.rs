//! Minimal OpenAPI v3 documents: enough for kubectl to see that every resource's PATCH
//! accepts `fieldValidation`, so it delegates validation to this server.

use serde_json::{Map, Value, json};

use crate::resources::{self, TABLE};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The /openapi/v3 index.
pub fn index() -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
    gvs.extend(resources::groups());
    for (g, v) in gvs {
        let p = gv_path(g, v);
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=0")}));
    }
    json!({"paths": paths})
}

/// The OpenAPI v3 document of one group/version, or None when not served.
pub fn group_version(path: &str) -> Option<Value> {
    let p = path.trim_start_matches("/openapi/v3/").trim_end_matches('/');
    let (group, version) = match p.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut found = false;
    for d in TABLE.iter().filter(|d| d.group == group && d.version == version) {
        found = true;
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        ]);
        let op = json!({
            "operationId": format!("patch{}", d.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
        });
        let base = format!("/{}", gv_path(group, version));
        let item = if d.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
        } else {
            format!("{base}/{}/{{name}}", d.plural)
        };
        paths.insert(item, json!({"patch": op}));
        let schema_name = if group.is_empty() {
            format!("io.k8s.api.core.{version}.{}", d.kind)
        } else {
            format!("io.k8s.api.{}.{version}.{}", group.split('.').next().unwrap_or(group), d.kind)
        };
        schemas.insert(schema_name, json!({"type": "object", "x-kubernetes-group-version-kind": [gvk]}));
    }
    if !found {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
