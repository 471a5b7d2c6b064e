//! Defaulting as upstream applies it where clients can see it (pods, services, namespaces, secrets).

use serde_json::{Map, Value, json};

use crate::resources::{self, ResourceId};

fn set_default(m: &mut Map<String, Value>, key: &str, v: Value) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.to_string(), v);
        }
        _ => {}
    }
}

/// The pull policy upstream picks for an image reference.
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_probe(p: &mut Value) {
    if let Some(m) = p.as_object_mut() {
        set_default(m, "timeoutSeconds", json!(1));
        set_default(m, "periodSeconds", json!(10));
        set_default(m, "successThreshold", json!(1));
        set_default(m, "failureThreshold", json!(3));
        if let Some(h) = m.get_mut("httpGet").and_then(Value::as_object_mut) {
            set_default(h, "path", json!("/"));
            set_default(h, "scheme", json!("HTTP"));
        }
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    let image = m.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    set_default(m, "imagePullPolicy", json!(image_pull_policy(&image)));
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    set_default(m, "resources", json!({}));
    if let Some(r) = m.get_mut("resources").and_then(Value::as_object_mut)
        && let Some(limits) = r.get("limits").and_then(Value::as_object).cloned()
    {
        let req = r.entry("requests").or_insert_with(|| json!({}));
        if let Some(req) = req.as_object_mut() {
            for (k, v) in limits {
                req.entry(k).or_insert(v);
            }
        }
    }
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe) {
            default_probe(p);
        }
    }
}

/// Quality of service class from container requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&Map<String, Value>>| {
            m.map(|m| m.iter().filter(|(k, _)| *k == "cpu" || *k == "memory").count()).unwrap_or(0)
        };
        if relevant(req) > 0 || relevant(lim) > 0 {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(r));
            let q = req.and_then(|m| m.get(r));
            if l.is_none() || (q.is_some() && q != l) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn default_pod(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        set_default(spec, "restartPolicy", json!("Always"));
        set_default(spec, "dnsPolicy", json!("ClusterFirst"));
        set_default(spec, "terminationGracePeriodSeconds", json!(30));
        set_default(spec, "schedulerName", json!("default-scheduler"));
        set_default(spec, "securityContext", json!({}));
        set_default(spec, "enableServiceLinks", json!(true));
        set_default(spec, "priority", json!(0));
        set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        // serviceAccountName is not defaulted here: the ServiceAccount admission plugin sets
        // `default` on pods other than mirror pods. `serviceAccount` is its deprecated alias.
        if let Some(sa) = spec.get("serviceAccountName").cloned().filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
            spec.insert("serviceAccount".into(), sa);
        }
        for key in ["containers", "initContainers"] {
            if let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) {
                list.iter_mut().for_each(default_container);
            }
        }
    }
    let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
    if let Some(o) = obj.as_object_mut() {
        let status = o.entry("status").or_insert_with(|| json!({}));
        if let Some(s) = status.as_object_mut() {
            set_default(s, "phase", json!("Pending"));
            set_default(s, "qosClass", json!(qos));
        }
    }
}

/// The DefaultTolerationSeconds admission plugin (pod creation only): a pod that does not
/// tolerate the `not-ready` / `unreachable` NoExecute taints (a toleration with that key or no
/// key, and effect NoExecute or none) gets `{key, operator: Exists, effect: NoExecute,
/// tolerationSeconds}` with `seconds` = (not-ready, unreachable).
pub fn default_toleration_seconds(pod: &mut Value, seconds: (i64, i64)) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(t) = tolerations.as_array_mut() else { return };
    for (key, secs) in [("node.kubernetes.io/not-ready", seconds.0), ("node.kubernetes.io/unreachable", seconds.1)] {
        let tolerates = t.iter().any(|x| {
            x.get("key").and_then(Value::as_str).is_none_or(|k| k.is_empty() || k == key)
                && x.get("effect").and_then(Value::as_str).is_none_or(|e| e.is_empty() || e == "NoExecute")
        });
        if !tolerates {
            t.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs}));
        }
    }
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                set_default(p, "protocol", json!("TCP"));
                let port = p.get("port").cloned().unwrap_or(Value::Null);
                set_default(p, "targetPort", port);
            }
        }
    }
    if let Some(o) = obj.as_object_mut() {
        let status = o.entry("status").or_insert_with(|| json!({}));
        if let Some(s) = status.as_object_mut() {
            set_default(s, "loadBalancer", json!({}));
        }
    }
}

/// Apply create-time defaults for a resource.
/// A Secret's write-only `stringData` goes into `data`, base64-encoded (its keys win), and is
/// not stored, as upstream.
fn fold_string_data(o: &mut serde_json::Map<String, Value>) {
    use base64::Engine as _;
    let Some(Value::Object(strings)) = o.remove("stringData") else { return };
    let data = o.entry("data").or_insert_with(|| json!({}));
    if data.is_null() {
        *data = json!({});
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default().to_string();
            d.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

/// apps/v1 defaults (`SetDefaults_Deployment`, `SetDefaults_ReplicaSet`): `replicas` 1; for
/// Deployments also `strategy` RollingUpdate 25 %/25 %, `revisionHistoryLimit` 10 and
/// `progressDeadlineSeconds` 600.
fn default_workload(res: ResourceId, obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().map(|o| o.entry("spec").or_insert_with(|| json!({}))).and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    if res != resources::DEPLOYMENTS {
        return;
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Some(st) = strategy.as_object_mut() {
        set_default(st, "type", json!("RollingUpdate"));
        if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
    }
}

/// `SetDefaults_DaemonSet`: `updateStrategy` RollingUpdate with `maxUnavailable` 1 and
/// `maxSurge` 0, `revisionHistoryLimit` 10.
fn default_daemonset(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().map(|o| o.entry("spec").or_insert_with(|| json!({}))).and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "revisionHistoryLimit", json!(10));
    let Some(st) = spec.entry("updateStrategy").or_insert_with(|| json!({})).as_object_mut() else { return };
    set_default(st, "type", json!("RollingUpdate"));
    if st.get("type").and_then(Value::as_str) == Some("RollingUpdate")
        && let Some(ru) = st.entry("rollingUpdate").or_insert_with(|| json!({})).as_object_mut()
    {
        set_default(ru, "maxUnavailable", json!(1));
        set_default(ru, "maxSurge", json!(0));
    }
}

pub fn apply_defaults(res: ResourceId, obj: &mut Value) {
    match res {
        resources::REPLICASETS | resources::DEPLOYMENTS => default_workload(res, obj),
        resources::DAEMONSETS => default_daemonset(obj),
        resources::PODS => default_pod(obj),
        resources::SERVICES => default_service(obj),
        resources::PODDISRUPTIONBUDGETS => crate::pdb::prepare_for_create(obj),
        resources::ROLEBINDINGS | resources::CLUSTERROLEBINDINGS => crate::rbac_resources::apply_defaults(obj),
        resources::NAMESPACES => {
            let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            if let Some(o) = obj.as_object_mut() {
                let meta = o.entry("metadata").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    let labels = meta.entry("labels").or_insert_with(|| json!({}));
                    if let Some(l) = labels.as_object_mut() {
                        l.insert("kubernetes.io/metadata.name".into(), json!(name));
                    }
                }
                let spec = o.entry("spec").or_insert_with(|| json!({}));
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "finalizers", json!(["kubernetes"]));
                }
                let status = o.entry("status").or_insert_with(|| json!({}));
                if let Some(s) = status.as_object_mut() {
                    set_default(s, "phase", json!("Active"));
                }
            }
        }
        resources::SECRETS => {
            if let Some(o) = obj.as_object_mut() {
                set_default(o, "type", json!("Opaque"));
                fold_string_data(o);
            }
        }
        resources::NODES => {
            if let Some(o) = obj.as_object_mut() {
                o.entry("spec").or_insert_with(|| json!({}));
                o.entry("status").or_insert_with(|| json!({}));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let mut v = json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}});
        apply_defaults(resources::SECRETS, &mut v);
        assert_eq!(v["data"], json!({"a": "eQ==", "b": "aGVsbG8="}));
        assert!(v.get("stringData").is_none());
        assert_eq!(v["type"], "Opaque");
    }
}
