//! `node.k8s.io/v1` RuntimeClass as a served object: upstream's validation
//! (`pkg/apis/node/validation/validation.go`: the handler a DNS-1123 label and immutable,
//! `overhead.podFixed` checked as container limits, `scheduling.nodeSelector` as labels and
//! `scheduling.tolerations` as a pod's, without duplicates) and kubectl's table
//! (`pkg/printers/internalversion/printers.go`: NAME, HANDLER, AGE). The strategy
//! (`pkg/registry/node/runtimeclass/strategy.go`) prepares nothing and keeps no status. The
//! admission plugin that applies a class to pods is [`crate::runtimeclass_admission`].

use serde_json::{Map, Value, json};

use crate::controllers::scheduler::quantity::Quantity;
use crate::error::{ApiError, ApiResult, Cause};

/// The group and plural of the resource.
const GROUP: &str = "node.k8s.io";
const PLURAL: &str = "runtimeclasses";

/// apimachinery's `dns1123LabelFmt`.
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
/// apimachinery's `dns1123SubdomainFmt`.
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
/// apimachinery's `labelKeyFmt` (a qualified name's name part).
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
/// apimachinery's `labelValueFmt`.
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
/// apimachinery's `labelKeyErrMsg`.
const LABEL_KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// apimachinery's `ErrFormatWrong` (upstream refuses such a quantity when decoding the body).
const QUANTITY_FORMAT: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// The resource names `IsStandardResourceName` knows besides the huge pages.
const STANDARD_RESOURCES: &[&str] = &[
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
    "replicationcontrollers", "secrets", "persistentvolumeclaims", "configmaps", "services.nodeports",
    "services.loadbalancers", "requests.storage",
];
/// `integerResources`: names whose quantities must be whole.
const INTEGER_RESOURCES: &[&str] = &[
    "pods", "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
];

/// apimachinery's `RegexError`: the message, its examples and the regular expression.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let shown: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{fmt}')", shown.join(" or "))
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$` without the length limit.
fn label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && b.iter().all(|&c| edge(c) || c == b'-') && edge(b[0]) && edge(b[b.len() - 1])
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
fn name_part_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    !b.is_empty() && b.iter().all(|&c| edge(c) || matches!(c, b'-' | b'_' | b'.')) && edge(b[0]) && edge(b[b.len() - 1])
}

/// `IsDNS1123Label`'s messages.
pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len_error(63));
    }
    if !label_shape(s) {
        if s.split('.').all(label_shape) {
            out.push("must not contain dots".into());
        } else {
            let msg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
            out.push(regex_error(msg, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
        }
    }
    out
}

/// `IsDNS1123Subdomain`'s messages.
fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push(max_len_error(253));
    }
    if !s.split('.').all(label_shape) {
        let msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
        out.push(regex_error(msg, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    out
}

/// `IsQualifiedName` (a label key): an optional DNS subdomain prefix and `/`, then a name.
pub fn qualified_name_errors(s: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let parts: Vec<&str> = s.split('/').collect();
    let mut out = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                out.push("prefix part must be non-empty".to_string());
            } else {
                out.extend(dns1123_subdomain_errors(prefix).into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            let key = regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, &examples);
            return vec![format!("a valid label key {key} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")];
        }
    };
    if name.is_empty() {
        out.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        out.push(format!("name part {}", max_len_error(63)));
    }
    if !name_part_shape(name) {
        out.push(format!("name part {}", regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, &examples)));
    }
    out
}

/// `IsValidLabelValue`: empty, or a name part of at most 63 characters.
pub fn label_value_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len_error(63));
    }
    if !s.is_empty() && !name_part_shape(s) {
        let msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
        out.push(regex_error(msg, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    out
}

/// The string at `key` of `v` (absent, null or not a string: "", as Go's zero value).
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `ValidateRuntimeClass`: `handler` must be a DNS-1123 label (an absent one is `""`,
/// refused with the label message, as upstream's `NameIsDNSLabel`); `overhead` and
/// `scheduling` are checked when set.
pub fn check(obj: &Value, causes: &mut Vec<Cause>) {
    let handler = text(obj, "handler");
    for msg in dns1123_label_errors(handler) {
        causes.push(Cause::invalid("handler", handler, &msg));
    }
    if let Some(fixed) = obj.get("overhead").filter(|o| !o.is_null()).and_then(|o| o.get("podFixed")).and_then(Value::as_object) {
        check_overhead(fixed, causes);
    }
    if let Some(scheduling) = obj.get("scheduling").filter(|s| !s.is_null()) {
        check_scheduling(scheduling, causes);
    }
}

/// `ValidateRuntimeClassUpdate` after `ValidateRuntimeClass`: the handler is immutable.
pub fn check_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    check(new, causes);
    if text(old, "handler") != text(new, "handler") {
        causes.push(Cause::invalid("handler", text(new, "handler"), "field is immutable"));
    }
}

/// The strategy's `AllowUnconditionalUpdate() == false`: a replace must carry the
/// resourceVersion it read. Upstream's registry names the resource, not the kind, in this
/// error (`runtimeclasses.node.k8s.io "x" is invalid: metadata.resourceVersion: Invalid value:
/// 0x0: must be specified for an update`). (`AllowCreateOnUpdate() == true` is the registry's:
/// a replace of a missing class creates it.)
pub fn check_conditional_update(new: &Value, name: &str) -> ApiResult<()> {
    if new.pointer("/metadata/resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty()) {
        return Ok(());
    }
    let cause = Cause {
        reason: "FieldValueInvalid",
        field: "metadata.resourceVersion".into(),
        message: "Invalid value: 0x0: must be specified for an update".into(),
    };
    let mut e = ApiError::invalid(GROUP, &format!("{PLURAL}.{GROUP}"), name, vec![cause]);
    if let Some(details) = e.details.as_mut() {
        details["kind"] = json!(PLURAL);
    }
    Err(e)
}

/// `validateOverhead`: `podFixed` as a container's limits (`ValidateContainerResourceRequirements`
/// on `overhead`, hence the `overhead.limits[<name>]` paths).
fn check_overhead(fixed: &Map<String, Value>, causes: &mut Vec<Cause>) {
    let mut cpu_or_memory = false;
    let mut huge_pages = false;
    for (name, quantity) in fixed {
        let path = format!("overhead.limits[{name}]");
        check_container_resource_name(name, &path, causes);
        check_quantity(name, quantity, &path, causes);
        cpu_or_memory |= name == "cpu" || name == "memory";
        huge_pages |= name.starts_with("hugepages-");
    }
    if huge_pages && !cpu_or_memory {
        causes.push(Cause::forbidden("overhead", "HugePages require cpu or memory"));
    }
}

/// `IsNativeResource`: no domain, or a `kubernetes.io/` one.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`: a domain-qualified non-native name usable in quota as `requests.<name>`.
fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name) && !name.starts_with("requests.") && qualified_name_errors(&format!("requests.{name}")).is_empty()
}

/// `validateContainerResourceName` (with `validateResourceName` first).
fn check_container_resource_name(name: &str, path: &str, causes: &mut Vec<Cause>) {
    let errors = qualified_name_errors(name);
    if !errors.is_empty() {
        causes.extend(errors.iter().map(|m| Cause::invalid(path, name, m)));
    } else if !name.contains('/') && !STANDARD_RESOURCES.contains(&name) && !name.starts_with("hugepages-") && !name.starts_with("requests.hugepages-") {
        causes.push(Cause::invalid(path, name, "must be a standard resource type or fully qualified"));
    }
    let container = ["cpu", "memory", "ephemeral-storage"].contains(&name) || name.starts_with("hugepages-");
    if !name.contains('/') && !container {
        causes.push(Cause::invalid(path, name, "must be a standard resource for containers"));
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        causes.push(Cause::invalid(path, name, "doesn't follow extended resource name standard"));
    }
}

/// `ValidateResourceQuantityValue`: not negative, whole for integer resources. A string that is
/// no quantity is refused here (upstream's decoder refuses the body with the same text).
fn check_quantity(name: &str, v: &Value, path: &str, causes: &mut Vec<Cause>) {
    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let Ok(q) = Quantity::from_json(v) else {
        causes.push(Cause::invalid(path, &shown, QUANTITY_FORMAT));
        return;
    };
    if q.scaled(-9) < 0 {
        causes.push(Cause::invalid(path, &shown, "must be greater than or equal to 0"));
    }
    let integer = INTEGER_RESOURCES.contains(&name) || is_extended_resource(name);
    if integer && q.milli_value() % 1000 != 0 {
        causes.push(Cause::invalid(path, &shown, "must be an integer"));
    }
}

/// `validateScheduling`: the node selector as labels (`ValidateLabels` on
/// `scheduling.nodeSelector`), the tolerations as a pod's, and no two with the same key,
/// operator, value and effect.
pub fn check_scheduling(scheduling: &Value, causes: &mut Vec<Cause>) {
    if let Some(selector) = scheduling.get("nodeSelector").and_then(Value::as_object) {
        for (k, v) in selector {
            causes.extend(qualified_name_errors(k).iter().map(|m| Cause::invalid("scheduling.nodeSelector", k, m)));
            let value = v.as_str().unwrap_or("");
            causes.extend(label_value_errors(value).iter().map(|m| Cause::invalid("scheduling.nodeSelector", value, m)));
        }
    }
    let tolerations = scheduling.get("tolerations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut seen: Vec<[&str; 4]> = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let path = format!("scheduling.tolerations[{i}]");
        check_toleration(t, &path, causes);
        let key = [text(t, "key"), text(t, "operator"), text(t, "value"), text(t, "effect")];
        if seen.contains(&key) {
            causes.push(Cause { reason: "FieldValueDuplicate", field: path, message: format!("Duplicate value: {}", go_toleration(t)) });
        } else {
            seen.push(key);
        }
    }
}

/// Go's `%#v` of a `core.Toleration` (a set `tolerationSeconds` is a pointer, whose address
/// upstream prints; a fixed one stands for it here).
fn go_toleration(t: &Value) -> String {
    let q = |k: &str| crate::auth::go_quote(text(t, k));
    let seconds = if t.get("tolerationSeconds").is_some_and(|s| !s.is_null()) { "(*int64)(0xc000000000)" } else { "(*int64)(nil)" };
    format!(
        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{seconds}}}",
        q("key"),
        q("operator"),
        q("value"),
        q("effect")
    )
}

/// `ValidateTolerations` for one toleration at `path`.
fn check_toleration(t: &Value, path: &str, causes: &mut Vec<Cause>) {
    let (key, op, value, effect) = (text(t, "key"), text(t, "operator"), text(t, "value"), text(t, "effect"));
    if !key.is_empty() {
        causes.extend(qualified_name_errors(key).iter().map(|m| Cause::invalid(format!("{path}.key"), key, m)));
    }
    if key.is_empty() && op != "Exists" {
        causes.push(Cause::invalid(format!("{path}.operator"), op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
    }
    if t.get("tolerationSeconds").is_some_and(|s| !s.is_null()) && effect != "NoExecute" {
        causes.push(Cause::invalid(format!("{path}.effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    }
    match op {
        "Equal" | "" => {
            let errors = label_value_errors(value);
            if !errors.is_empty() {
                causes.push(Cause::invalid(format!("{path}.operator"), value, &errors.join(";")));
            }
        }
        "Exists" if !value.is_empty() => causes.push(Cause {
            reason: "FieldValueInvalid",
            field: format!("{path}.operator"),
            message: format!("Invalid value: {}: value must be empty when `operator` is 'Exists'", go_toleration(t)),
        }),
        "Exists" => {}
        other => causes.push(Cause::not_supported(format!("{path}.operator"), other, &["Equal", "Exists"])),
    }
    if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
        causes.push(Cause::not_supported(format!("{path}.effect"), effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]));
    }
}

/// kubectl's columns (`runtimeClassColumnDefinitions`): NAME, HANDLER (upstream's description
/// is `ObjectMeta`'s doc of a field it does not have, so empty), AGE.
pub fn table_columns(name: Value, age: Value) -> Vec<Value> {
    let handler = json!({"name": "Handler", "type": "string", "format": "", "priority": 0, "description": ""});
    vec![name, handler, age]
}

/// `printRuntimeClass`: the name, the handler and the age.
pub fn table_cells(v: &Value, age: String) -> Vec<Value> {
    let name = v.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    vec![name, json!(text(v, "handler")), json!(age)]
}

#[cfg(test)]
#[path = "runtime_classes_tests.rs"]
mod tests;
