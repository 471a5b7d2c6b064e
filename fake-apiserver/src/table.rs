//! Table responses (meta.k8s.io/v1 Table) with kubectl-like columns per resource.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::{self, ResourceId};
use crate::store::Obj;

/// Human duration as kubectl prints ages.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let m = s / 60;
    let h = s / 3600;
    let d = h / 24;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(ts: Option<&str>) -> String {
    match ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn col(name: &str, ty: &str, priority: i64, desc: &str) -> Value {
    json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" }, "description": desc, "priority": priority})
}

fn columns(res: ResourceId) -> Vec<Value> {
    let name = col("Name", "string", 0, "Name must be unique within a namespace.");
    let age = col("Age", "string", 0, "CreationTimestamp");
    match res {
        resources::PODS => vec![
            name, col("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
            col("Status", "string", 0, "The aggregate status of the containers in this pod."),
            col("Restarts", "string", 0, "The number of times the containers in this pod have been restarted."),
            age, col("IP", "string", 1, "IP address allocated to the pod."), col("Node", "string", 1, "Name of the Node this pod is assigned to."),
            col("Nominated Node", "string", 1, "Nominated node."), col("Readiness Gates", "string", 1, "Readiness gates."),
        ],
        resources::NODES => vec![
            name, col("Status", "string", 0, "The status of the node"), col("Roles", "string", 0, "The roles of the node"), age,
            col("Version", "string", 0, "Kubelet Version reported by the node."), col("Internal-IP", "string", 1, "Internal IP"),
            col("External-IP", "string", 1, "External IP"), col("OS-Image", "string", 1, "OS image"),
            col("Kernel-Version", "string", 1, "Kernel version"), col("Container-Runtime", "string", 1, "Container runtime"),
        ],
        resources::SERVICES => vec![
            name, col("Type", "string", 0, "Service type"), col("Cluster-IP", "string", 0, "Cluster IP"),
            col("External-IP", "string", 0, "External IPs"), col("Port(s)", "string", 0, "Ports"), age,
            col("Selector", "string", 1, "Selector"),
        ],
        resources::LEASES => vec![name, col("Holder", "string", 0, "Holder identity"), age],
        resources::NAMESPACES => vec![name, col("Status", "string", 0, "Namespace phase"), age],
        resources::EVENTS | resources::EVENTS_V1 => vec![
            col("Last Seen", "string", 0, "Last seen"), col("Type", "string", 0, "Type"), col("Reason", "string", 0, "Reason"),
            col("Object", "string", 0, "Object"), col("Message", "string", 0, "Message"), name,
        ],
        resources::CONFIGMAPS | resources::SECRETS => {
            let mut v = vec![name];
            if res == resources::SECRETS {
                v.push(col("Type", "string", 0, "Secret type"));
            }
            v.push(col("Data", "string", 0, "Number of entries"));
            v.push(age);
            v
        }
        resources::ENDPOINTSLICES => vec![
            name, col("AddressType", "string", 0, "Address type"), col("Ports", "string", 0, "Ports"),
            col("Endpoints", "string", 0, "Endpoints"), age,
        ],
        resources::DEPLOYMENTS => {
            let mut v = vec![
                name, col("Ready", "string", 0, "Number of the pod with ready state"),
                col("Up-to-date", "string", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                col("Available", "string", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."), age,
            ];
            v.extend(workload_columns());
            v
        }
        resources::REPLICASETS => {
            let mut v = vec![
                name, col("Desired", "integer", 0, "Number of desired pods."), col("Current", "integer", 0, "Number of actual replicas."),
                col("Ready", "integer", 0, "The number of ready replicas for this replica set."), age,
            ];
            v.extend(workload_columns());
            v
        }
        resources::DAEMONSETS => {
            let mut v = vec![
                name, col("Desired", "integer", 0, "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
                col("Current", "integer", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
                col("Ready", "integer", 0, "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
                col("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
                col("Available", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
                col("Node Selector", "string", 0, "NodeSelector is a selector which must be true for the pod to fit on a node."), age,
            ];
            v.extend(workload_columns());
            v
        }
        resources::PODDISRUPTIONBUDGETS => crate::pdb::table_columns(name, age),
        r if resources::RBAC.contains(&r) => crate::rbac_resources::table_columns(r, name, age),
        resources::RUNTIMECLASSES => crate::runtime_classes::table_columns(name, age),
        _ => vec![name, age],
    }
}

fn workload_columns() -> [Value; 3] {
    [
        col("Containers", "string", 1, "Names of each container in the template."),
        col("Images", "string", 1, "Images referenced by each container in the template."),
        col("Selector", "string", 1, "Label selector for pods."),
    ]
}

/// `metav1.FormatLabelSelector`: "k=v,k2 in (a,b)", or "<none>".
fn format_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return "<none>".into() };
    let mut parts: Vec<String> = sel.get("matchLabels").and_then(Value::as_object).into_iter().flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let vals: Vec<&str> = e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let (k, op) = (s(e, "/key"), s(e, "/operator"));
        parts.push(match op {
            "Exists" => k.to_string(),
            "DoesNotExist" => format!("!{k}"),
            _ => format!("{k} {} ({})", op.to_lowercase(), vals.join(",")),
        });
    }
    if parts.is_empty() { "<none>".into() } else { parts.join(",") }
}

/// Replica counts then Age, Containers, Images, Selector of a Deployment or ReplicaSet.
fn workload_cells(res: ResourceId, v: &Value, created: String) -> Vec<Value> {
    let n = |p: &str| v.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let mut out = vec![json!(s(v, "/metadata/name"))];
    if res == resources::DEPLOYMENTS {
        out.extend([json!(format!("{}/{}", n("/status/readyReplicas"), n("/spec/replicas"))), json!(n("/status/updatedReplicas")), json!(n("/status/availableReplicas"))]);
    } else {
        out.extend([json!(n("/spec/replicas")), json!(n("/status/replicas")), json!(n("/status/readyReplicas"))]);
    }
    out.push(json!(created));
    out.extend(template_cells(v));
    out
}

/// The wide columns of a workload: its template's container names and images, its selector.
fn template_cells(v: &Value) -> [Value; 3] {
    let containers: Vec<&Value> = v.pointer("/spec/template/spec/containers").and_then(Value::as_array).into_iter().flatten().collect();
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    [json!(names.join(",")), json!(images.join(",")), json!(format_selector(v.pointer("/spec/selector")))]
}

/// `printDaemonSet`: the status counts, the template's `nodeSelector` as `labels.FormatLabels`
/// prints it (keys sorted, "<none>" when empty), Age, then the wide columns.
fn daemonset_cells(v: &Value, created: String) -> Vec<Value> {
    let n = |k: &str| v.pointer(&format!("/status/{k}")).and_then(Value::as_i64).unwrap_or(0);
    let mut out = vec![json!(s(v, "/metadata/name"))];
    out.extend(["desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled", "numberAvailable"].map(|k| json!(n(k))));
    let mut pairs: Vec<(&String, &str)> = v.pointer("/spec/template/spec/nodeSelector").and_then(Value::as_object).into_iter().flatten()
        .map(|(k, x)| (k, x.as_str().unwrap_or(""))).collect();
    pairs.sort();
    let sel: Vec<String> = pairs.iter().map(|(k, x)| format!("{k}={x}")).collect();
    out.push(json!(if sel.is_empty() { "<none>".to_string() } else { sel.join(",") }));
    out.push(json!(created));
    out.extend(template_cells(v));
    out
}

fn pod_cells(v: &Value) -> Vec<Value> {
    let total = v.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
    let statuses = v.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
    let ready = statuses.iter().filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true)).count();
    let restarts: i64 = statuses.iter().filter_map(|c| c.get("restartCount").and_then(Value::as_i64)).sum();
    let mut status = s(v, "/status/reason").to_string();
    if status.is_empty() {
        status = s(v, "/status/phase").to_string();
    }
    for c in &statuses {
        let w = s(c, "/state/waiting/reason");
        let t = s(c, "/state/terminated/reason");
        if !w.is_empty() {
            status = w.to_string();
        } else if !t.is_empty() {
            status = t.to_string();
        }
    }
    if v.pointer("/metadata/deletionTimestamp").is_some() {
        status = "Terminating".into();
    }
    let or_none = |x: &str| if x.is_empty() { "<none>".to_string() } else { x.to_string() };
    vec![
        json!(s(v, "/metadata/name")), json!(format!("{ready}/{total}")), json!(status), json!(restarts.to_string()),
        json!(age(v.pointer("/metadata/creationTimestamp").and_then(Value::as_str))),
        json!(or_none(s(v, "/status/podIP"))), json!(or_none(s(v, "/spec/nodeName"))),
        json!(or_none(s(v, "/status/nominatedNodeName"))), json!("<none>"),
    ]
}

fn node_cells(v: &Value) -> Vec<Value> {
    let conds = v.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut status = match conds.iter().find(|c| s(c, "/type") == "Ready").map(|c| s(c, "/status")) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let roles: Vec<String> = v
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| l.keys().filter_map(|k| k.strip_prefix("node-role.kubernetes.io/")).map(str::to_string).collect())
        .unwrap_or_default();
    let addr = |t: &str| {
        v.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| s(x, "/type") == t))
            .map(|x| s(x, "/address").to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    vec![
        json!(s(v, "/metadata/name")), json!(status),
        json!(if roles.is_empty() { "<none>".to_string() } else { roles.join(",") }),
        json!(age(v.pointer("/metadata/creationTimestamp").and_then(Value::as_str))),
        json!(s(v, "/status/nodeInfo/kubeletVersion")), json!(addr("InternalIP")), json!(addr("ExternalIP")),
        json!(s(v, "/status/nodeInfo/osImage")), json!(s(v, "/status/nodeInfo/kernelVersion")),
        json!(s(v, "/status/nodeInfo/containerRuntimeVersion")),
    ]
}

fn service_cells(v: &Value) -> Vec<Value> {
    let ports: Vec<String> = v
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    let sel: Vec<String> = v
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    let ty = s(v, "/spec/type");
    let ext = if ty == "LoadBalancer" { "<pending>" } else { "<none>" };
    vec![
        json!(s(v, "/metadata/name")), json!(ty), json!(s(v, "/spec/clusterIP")), json!(ext),
        json!(if ports.is_empty() { "<none>".to_string() } else { ports.join(",") }),
        json!(age(v.pointer("/metadata/creationTimestamp").and_then(Value::as_str))),
        json!(if sel.is_empty() { "<none>".to_string() } else { sel.join(",") }),
    ]
}

fn cells(res: ResourceId, v: &Value) -> Vec<Value> {
    let name = json!(s(v, "/metadata/name"));
    let created = age(v.pointer("/metadata/creationTimestamp").and_then(Value::as_str));
    match res {
        resources::PODS => pod_cells(v),
        resources::NODES => node_cells(v),
        resources::SERVICES => service_cells(v),
        resources::LEASES => vec![name, json!(s(v, "/spec/holderIdentity")), json!(created)],
        resources::NAMESPACES => vec![name, json!(s(v, "/status/phase")), json!(created)],
        resources::EVENTS | resources::EVENTS_V1 => {
            let last = [ "/lastTimestamp", "/eventTime", "/series/lastObservedTime", "/metadata/creationTimestamp"]
                .iter()
                .find_map(|p| v.pointer(p).and_then(Value::as_str).filter(|x| !x.is_empty()));
            let (kind, oname, msg) = if res == resources::EVENTS {
                (s(v, "/involvedObject/kind"), s(v, "/involvedObject/name"), s(v, "/message"))
            } else {
                (s(v, "/regarding/kind"), s(v, "/regarding/name"), s(v, "/note"))
            };
            vec![json!(age(last)), json!(s(v, "/type")), json!(s(v, "/reason")), json!(format!("{}/{oname}", kind.to_lowercase())), json!(msg), name]
        }
        resources::CONFIGMAPS | resources::SECRETS => {
            let n = ["/data", "/binaryData", "/stringData"].iter().filter_map(|p| v.pointer(p).and_then(Value::as_object)).map(|m| m.len()).sum::<usize>();
            let mut out = vec![name];
            if res == resources::SECRETS {
                out.push(json!(s(v, "/type")));
            }
            out.push(json!(n));
            out.push(json!(created));
            out
        }
        resources::ENDPOINTSLICES => {
            let ports: Vec<String> = v.get("ports").and_then(Value::as_array).into_iter().flatten().filter_map(|p| p.get("port").and_then(Value::as_i64)).map(|p| p.to_string()).collect();
            let eps: Vec<String> = v.get("endpoints").and_then(Value::as_array).into_iter().flatten().filter_map(|e| e.pointer("/addresses/0").and_then(Value::as_str)).map(str::to_string).collect();
            vec![
                name, json!(s(v, "/addressType")),
                json!(if ports.is_empty() { "<unset>".to_string() } else { ports.join(",") }),
                json!(if eps.is_empty() { "<unset>".to_string() } else { eps.join(",") }), json!(created),
            ]
        }
        resources::DEPLOYMENTS | resources::REPLICASETS => workload_cells(res, v, created),
        resources::DAEMONSETS => daemonset_cells(v, created),
        resources::PODDISRUPTIONBUDGETS => crate::pdb::table_cells(v, created),
        r if resources::RBAC.contains(&r) => crate::rbac_resources::table_cells(r, v, created),
        resources::RUNTIMECLASSES => crate::runtime_classes::table_cells(v, created),
        _ => vec![name, json!(created)],
    }
}

/// Render objects as a Table.
pub fn table(res: ResourceId, items: &[Arc<Obj>], rv: u64, cont: Option<&str>, include_object: &str) -> Value {
    let desc = res.desc();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.value.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.value.get("metadata").cloned().unwrap_or(json!({}))}),
            };
            json!({"cells": cells(res, &o.value), "object": object})
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    let _ = desc;
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns(res), "rows": rows})
}
