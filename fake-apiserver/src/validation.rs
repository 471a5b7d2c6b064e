//! Validation of object names, required fields and immutable fields (422 Invalid with causes).

use serde_json::Value;

use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::{self, NameRule, ResourceDesc, ResourceId};

pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
}

/// Check a name against a rule; returns the upstream message on failure.
pub fn check_name(rule: NameRule, name: &str) -> Option<&'static str> {
    let ok = match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::Label1035 => is_dns1035_label(name),
        NameRule::PathSegment => !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('%'),
    };
    if ok {
        return None;
    }
    Some(match rule {
        NameRule::Subdomain => "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        NameRule::Label => "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        NameRule::Label1035 => "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        NameRule::PathSegment => "may not contain '/' or '%' and may not be '.' or '..'",
    })
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn check_metadata(desc: &ResourceDesc, obj: &Value, causes: &mut Vec<Cause>) {
    let name = str_at(obj, "/metadata/name").unwrap_or("");
    if name.is_empty() {
        causes.push(Cause::required("metadata.name"));
    } else if let Some(msg) = check_name(desc.name_rule, name) {
        causes.push(Cause::invalid("metadata.name", name, msg));
    }
    for field in ["labels", "annotations"] {
        match obj.pointer(&format!("/metadata/{field}")) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    if !crate::selectors::valid_label_key(k) {
                        causes.push(Cause::invalid(format!("metadata.{field}"), k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                    }
                    match v {
                        Value::String(s) if field == "labels" && !crate::selectors::valid_label_value(s) => {
                            causes.push(Cause::invalid("metadata.labels".to_string(), s, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                        }
                        Value::String(_) => {}
                        _ => causes.push(Cause::invalid(format!("metadata.{field}.{k}"), &v.to_string(), "must be a string")),
                    }
                }
            }
            Some(other) => causes.push(Cause::invalid(format!("metadata.{field}"), &other.to_string(), "must be a map")),
        }
    }
}

fn check_port(field: String, v: Option<&Value>, required: bool, causes: &mut Vec<Cause>) {
    match v {
        None | Some(Value::Null) if required => causes.push(Cause::required(field)),
        None | Some(Value::Null) => {}
        Some(p) => match p.as_i64() {
            Some(n) if (1..=65535).contains(&n) => {}
            _ => causes.push(Cause::invalid(field, &p.to_string(), "must be between 1 and 65535, inclusive")),
        },
    }
}

fn check_containers(spec: &Value, key: &str, required: bool, causes: &mut Vec<Cause>) {
    let list = spec.get(key).and_then(Value::as_array);
    match list {
        None if required => causes.push(Cause::required(format!("spec.{key}"))),
        Some(l) if l.is_empty() && required => causes.push(Cause::required(format!("spec.{key}"))),
        _ => {}
    }
    let mut seen = Vec::new();
    for (i, c) in list.into_iter().flatten().enumerate() {
        let base = format!("spec.{key}[{i}]");
        match c.get("name").and_then(Value::as_str) {
            None | Some("") => causes.push(Cause::required(format!("{base}.name"))),
            Some(n) if !is_dns1123_label(n) => causes.push(Cause::invalid(format!("{base}.name"), n, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")),
            Some(n) => {
                if seen.contains(&n) {
                    causes.push(Cause::duplicate(format!("{base}.name"), n));
                }
                seen.push(n);
            }
        }
        if c.get("image").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
            causes.push(Cause::required(format!("{base}.image")));
        }
        for (j, p) in c.get("ports").and_then(Value::as_array).into_iter().flatten().enumerate() {
            check_port(format!("{base}.ports[{j}].containerPort"), p.get("containerPort"), true, causes);
        }
    }
}

fn check_pod(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(spec) = obj.get("spec").filter(|s| s.is_object()) else {
        causes.push(Cause::required("spec.containers"));
        return;
    };
    check_containers(spec, "containers", true, causes);
    check_containers(spec, "initContainers", false, causes);
    if let Some(rp) = spec.get("restartPolicy").and_then(Value::as_str)
        && !["Always", "OnFailure", "Never"].contains(&rp)
    {
        causes.push(Cause::not_supported("spec.restartPolicy", rp, &["Always", "Never", "OnFailure"]));
    }
    // `ValidateRuntimeClassName`; a named class that does not exist was refused at admission.
    if let Some(rc) = spec.get("runtimeClassName").filter(|v| !v.is_null()) {
        let class = rc.as_str().unwrap_or("");
        if let Some(msg) = check_name(NameRule::Subdomain, class) {
            causes.push(Cause::invalid("spec.runtimeClassName", class, msg));
        }
    }
    if let Some(g) = spec.get("terminationGracePeriodSeconds")
        && !g.is_null()
        && g.as_i64().is_none()
    {
        causes.push(Cause::invalid("spec.terminationGracePeriodSeconds", &g.to_string(), "must be an integer"));
    }
}

fn check_service(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
        causes.push(Cause::not_supported("spec.type", ty, &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]));
    }
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let ports = spec.get("ports").and_then(Value::as_array);
    if ports.is_none_or(|p| p.is_empty()) && ty != "ExternalName" && !headless {
        causes.push(Cause::required("spec.ports"));
    }
    let multi = ports.is_some_and(|p| p.len() > 1);
    let mut names = Vec::new();
    for (i, p) in ports.into_iter().flatten().enumerate() {
        check_port(format!("spec.ports[{i}].port"), p.get("port"), true, causes);
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if multi && name.is_empty() {
            causes.push(Cause::required(format!("spec.ports[{i}].name")));
        } else if !name.is_empty() {
            if names.contains(&name) {
                causes.push(Cause::duplicate(format!("spec.ports[{i}].name"), name));
            }
            names.push(name);
        }
        if let Some(np) = p.get("nodePort").filter(|v| !v.is_null())
            && (ty == "ClusterIP")
            && np.as_i64() != Some(0)
        {
            causes.push(Cause::forbidden(format!("spec.ports[{i}].nodePort"), "may not be used when `type` is 'ClusterIP'"));
        }
        if let Some(proto) = p.get("protocol").and_then(Value::as_str)
            && !["TCP", "UDP", "SCTP"].contains(&proto)
        {
            causes.push(Cause::not_supported(format!("spec.ports[{i}].protocol"), proto, &["SCTP", "TCP", "UDP"]));
        }
        if let Some(tp) = p.get("targetPort") {
            match tp {
                Value::Number(_) => check_port(format!("spec.ports[{i}].targetPort"), Some(tp), false, causes),
                Value::String(s) if is_dns1123_label(s) && s.len() <= 15 => {}
                Value::Null => {}
                other => causes.push(Cause::invalid(format!("spec.ports[{i}].targetPort"), &other.to_string(), "must contain at least one letter or number (a-z, 0-9)")),
            }
        }
    }
    if let Some(sel) = spec.get("selector")
        && !sel.is_null()
        && !sel.is_object()
    {
        causes.push(Cause::invalid("spec.selector", &sel.to_string(), "must be a map"));
    }
}

fn check_lease(obj: &Value, causes: &mut Vec<Cause>) {
    if let Some(d) = obj.pointer("/spec/leaseDurationSeconds")
        && !d.is_null()
        && d.as_i64().is_none_or(|n| n <= 0)
    {
        causes.push(Cause::invalid("spec.leaseDurationSeconds", &d.to_string(), "must be greater than 0"));
    }
}

/// apps/v1 ReplicaSet and Deployment (`ValidateDeploymentSpec`, `ValidateReplicaSetSpec`): a
/// non-empty valid selector that matches the template's labels, non-negative replicas, and a
/// template with containers.
fn check_workload(obj: &Value, causes: &mut Vec<Cause>) {
    let selector = obj.pointer("/spec/selector").filter(|s| s.is_object());
    match selector.map(crate::selectors::LabelSelector::from_label_selector) {
        None => causes.push(Cause::required("spec.selector")),
        Some(None) => causes.push(Cause::invalid("spec.selector", &obj.pointer("/spec/selector").map(Value::to_string).unwrap_or_default(), "invalid label selector")),
        Some(Some(sel)) if sel.is_empty() => causes.push(Cause::invalid("spec.selector", "", "empty selector is invalid for deployment")),
        Some(Some(sel)) => {
            let labels = obj.pointer("/spec/template/metadata/labels").and_then(Value::as_object);
            if !sel.matches_labels(labels) {
                causes.push(Cause::invalid("spec.template.metadata.labels", &labels.map(|l| Value::Object(l.clone()).to_string()).unwrap_or_default(), "`selector` does not match template `labels`"));
            }
        }
    }
    if obj.pointer("/spec/replicas").and_then(Value::as_i64).is_some_and(|r| r < 0) {
        causes.push(Cause::invalid("spec.replicas", &obj.pointer("/spec/replicas").map(Value::to_string).unwrap_or_default(), "must be greater than or equal to 0"));
    }
    let template_spec = obj.pointer("/spec/template/spec").cloned().unwrap_or_default();
    let mut inner = Vec::new();
    check_containers(&template_spec, "containers", true, &mut inner);
    causes.extend(inner.into_iter().map(|mut c| {
        c.field = format!("spec.template.{}", c.field);
        c
    }));
}

/// apps/v1 DaemonSet (`ValidateDaemonSetSpec`): as [`check_workload`], plus the template's
/// `restartPolicy` must be Always and the update strategy OnDelete or RollingUpdate.
fn check_daemonset(obj: &Value, causes: &mut Vec<Cause>) {
    check_workload(obj, causes);
    if let Some(p) = str_at(obj, "/spec/template/spec/restartPolicy").filter(|p| *p != "Always") {
        causes.push(Cause::not_supported("spec.template.spec.restartPolicy", p, &["Always"]));
    }
    if let Some(t) = str_at(obj, "/spec/updateStrategy/type").filter(|t| !["OnDelete", "RollingUpdate"].contains(t)) {
        causes.push(Cause::not_supported("spec.updateStrategy.type", t, &["OnDelete", "RollingUpdate"]));
    }
}

/// core/v1 Secret (`ValidateSecret`): the docker config types must hold their key, with a
/// JSON object (or `null`, which Go's `json.Unmarshal` into a map accepts) in it.
fn check_secret(obj: &Value, causes: &mut Vec<Cause>) {
    use base64::Engine;
    let key = match str_at(obj, "/type") {
        Some("kubernetes.io/dockercfg") => ".dockercfg",
        Some("kubernetes.io/dockerconfigjson") => ".dockerconfigjson",
        _ => return,
    };
    let field = format!("data[{key}]");
    let Some(encoded) = obj.pointer("/data").and_then(|d| d.get(key)).and_then(Value::as_str) else {
        causes.push(Cause::required(field));
        return;
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default();
    if let Err(e) = serde_json::from_slice::<Option<serde_json::Map<String, Value>>>(&decoded) {
        causes.push(Cause::invalid(field, "<secret contents redacted>", &e.to_string()));
    }
}

/// Validate an object about to be created.
pub fn validate_create(res: ResourceId, obj: &Value) -> ApiResult<()> {
    let desc = res.desc();
    let mut causes = Vec::new();
    check_metadata(desc, obj, &mut causes);
    match res {
        resources::PODS => check_pod(obj, &mut causes),
        resources::SERVICES => check_service(obj, &mut causes),
        resources::LEASES => check_lease(obj, &mut causes),
        resources::SECRETS => check_secret(obj, &mut causes),
        resources::PODDISRUPTIONBUDGETS => crate::pdb::validate_spec(obj, &mut causes),
        resources::REPLICASETS | resources::DEPLOYMENTS => check_workload(obj, &mut causes),
        resources::DAEMONSETS => check_daemonset(obj, &mut causes),
        resources::ENDPOINTSLICES
            if obj.get("addressType").and_then(Value::as_str).is_none() => {
                causes.push(Cause::required("addressType"));
            }
        r if resources::RBAC.contains(&r) => crate::rbac_resources::check(r, obj, &mut causes),
        resources::RUNTIMECLASSES => crate::runtime_classes::check(obj, &mut causes),
        _ => {}
    }
    finish(res, obj, causes)
}

fn finish(res: ResourceId, obj: &Value, causes: Vec<Cause>) -> ApiResult<()> {
    if causes.is_empty() {
        return Ok(());
    }
    let name = str_at(obj, "/metadata/name").unwrap_or("");
    // Upstream's `NewInvalid` names `Kind.group`; the RBAC kinds and RuntimeClass say so.
    if resources::RBAC.contains(&res) || res == resources::RUNTIMECLASSES {
        return Err(crate::rbac_resources::invalid(res, name, causes));
    }
    let desc = res.desc();
    Err(ApiError::invalid(desc.group, desc.kind, name, causes))
}

fn strip_mutable_pod_spec(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(m) = s.as_object_mut() {
        m.remove("activeDeadlineSeconds");
        m.remove("tolerations");
        m.remove("terminationGracePeriodSeconds");
        for key in ["containers", "initContainers"] {
            if let Some(list) = m.get_mut(key).and_then(Value::as_array_mut) {
                for c in list {
                    if let Some(c) = c.as_object_mut() {
                        c.remove("image");
                    }
                }
            }
        }
    }
    s
}

/// Validate an update (new object against the old one).
pub fn validate_update(res: ResourceId, old: &Value, new: &Value) -> ApiResult<()> {
    let desc = res.desc();
    let mut causes = Vec::new();
    check_metadata(desc, new, &mut causes);
    match res {
        resources::PODS => {
            check_pod(new, &mut causes);
            let (o, n) = (old.get("spec").cloned().unwrap_or_default(), new.get("spec").cloned().unwrap_or_default());
            if strip_mutable_pod_spec(&o) != strip_mutable_pod_spec(&n) {
                causes.push(Cause::forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"));
            }
        }
        resources::SERVICES => {
            check_service(new, &mut causes);
            let o = old.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("");
            let n = new.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("");
            if !o.is_empty() && o != n {
                causes.push(Cause::invalid("spec.clusterIPs[0]", n, "field is immutable"));
            }
        }
        resources::LEASES => check_lease(new, &mut causes),
        resources::SECRETS => {
            check_secret(new, &mut causes);
            if old.get("type") != new.get("type") {
                causes.push(Cause::invalid("type", str_at(new, "/type").unwrap_or_default(), "field is immutable"));
            }
        }
        resources::PODDISRUPTIONBUDGETS => crate::pdb::validate_update(old, new, &mut causes),
        resources::DAEMONSETS => {
            check_daemonset(new, &mut causes);
            if old.pointer("/spec/selector") != new.pointer("/spec/selector") {
                causes.push(Cause::invalid("spec.selector", &new.pointer("/spec/selector").map(Value::to_string).unwrap_or_default(), "field is immutable"));
            }
        }
        resources::REPLICASETS | resources::DEPLOYMENTS => {
            check_workload(new, &mut causes);
            if res == resources::DEPLOYMENTS && old.pointer("/spec/selector") != new.pointer("/spec/selector") {
                causes.push(Cause::invalid("spec.selector", &new.pointer("/spec/selector").map(Value::to_string).unwrap_or_default(), "field is immutable"));
            }
        }
        r if resources::RBAC.contains(&r) => crate::rbac_resources::check_update(r, old, new, &mut causes),
        resources::RUNTIMECLASSES => crate::runtime_classes::check_update(old, new, &mut causes),
        _ => {}
    }
    finish(res, new, causes)
}
