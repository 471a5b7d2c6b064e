//! Minimal decoder for Kubernetes protobuf request bodies ("k8s\0" + runtime.Unknown), covering the
//! kinds typed clients such as kubectl send as protobuf: Namespace, ConfigMap, Secret,
//! ServiceAccount, Pod, Service, Deployment, ReplicaSet and DaemonSet (the fields `kubectl run` /
//! `kubectl create` set), Binding,
//! Eviction and DeleteOptions, the RBAC kinds (`kubectl create role|clusterrole|rolebinding|
//! clusterrolebinding`), the review kinds of `kubectl auth can-i` and `kubectl auth whoami`, and
//! TokenRequest (`kubectl create token`).
//! Fields outside that subset are dropped.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bytes,
    Int,
    Bool,
    Time,
    Msg(&'static [Field]),
    RepStr,
    RepMsg(&'static [Field]),
    MapStr,
    MapBytes,
    MapQuantity,
    IntOrString,
}

struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty }
}

const OWNER_REF: &[Field] = &[
    f(1, "kind", Ty::Str), f(3, "name", Ty::Str), f(4, "uid", Ty::Str), f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool), f(7, "blockOwnerDeletion", Ty::Bool),
];
const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str), f(2, "generateName", Ty::Str), f(3, "namespace", Ty::Str), f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str), f(7, "generation", Ty::Int), f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time), f(10, "deletionGracePeriodSeconds", Ty::Int), f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr), f(13, "ownerReferences", Ty::RepMsg(OWNER_REF)), f(14, "finalizers", Ty::RepStr),
];
const OBJECT_REF: &[Field] = &[
    f(1, "kind", Ty::Str), f(2, "namespace", Ty::Str), f(3, "name", Ty::Str), f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str), f(6, "resourceVersion", Ty::Str), f(7, "fieldPath", Ty::Str),
];
const LOCAL_REF: &[Field] = &[f(1, "name", Ty::Str)];
const NS_SPEC: &[Field] = &[f(1, "finalizers", Ty::RepStr)];
const NAMESPACE: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(NS_SPEC))];
const CONFIGMAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "data", Ty::MapStr), f(3, "binaryData", Ty::MapBytes), f(4, "immutable", Ty::Bool),
];
const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "data", Ty::MapBytes), f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr), f(5, "immutable", Ty::Bool),
];
const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "secrets", Ty::RepMsg(OBJECT_REF)),
    f(3, "imagePullSecrets", Ty::RepMsg(LOCAL_REF)), f(4, "automountServiceAccountToken", Ty::Bool),
];
const QUANTITY: &[Field] = &[f(1, "string", Ty::Str)];
const QUANTITY_ENTRY: &[Field] = &[f(1, "key", Ty::Str), f(2, "value", Ty::Msg(QUANTITY))];
const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Ty::Str), f(2, "hostPort", Ty::Int), f(3, "containerPort", Ty::Int), f(4, "protocol", Ty::Str), f(5, "hostIP", Ty::Str),
];
const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];
const RESOURCES: &[Field] = &[f(1, "limits", Ty::MapQuantity), f(2, "requests", Ty::MapQuantity)];
const VOLUME_MOUNT: &[Field] = &[f(1, "name", Ty::Str), f(2, "readOnly", Ty::Bool), f(3, "mountPath", Ty::Str), f(4, "subPath", Ty::Str)];
const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str), f(2, "image", Ty::Str), f(3, "command", Ty::RepStr), f(4, "args", Ty::RepStr), f(5, "workingDir", Ty::Str),
    f(6, "ports", Ty::RepMsg(CONTAINER_PORT)), f(7, "env", Ty::RepMsg(ENV_VAR)), f(8, "resources", Ty::Msg(RESOURCES)),
    f(9, "volumeMounts", Ty::RepMsg(VOLUME_MOUNT)), f(13, "terminationMessagePath", Ty::Str), f(14, "imagePullPolicy", Ty::Str),
    f(16, "stdin", Ty::Bool), f(17, "stdinOnce", Ty::Bool), f(18, "tty", Ty::Bool), f(20, "terminationMessagePolicy", Ty::Str),
];
const TOLERATION: &[Field] = &[
    f(1, "key", Ty::Str), f(2, "operator", Ty::Str), f(3, "value", Ty::Str), f(4, "effect", Ty::Str), f(5, "tolerationSeconds", Ty::Int),
];
const POD_SPEC: &[Field] = &[
    f(2, "containers", Ty::RepMsg(CONTAINER)), f(20, "initContainers", Ty::RepMsg(CONTAINER)), f(3, "restartPolicy", Ty::Str),
    f(4, "terminationGracePeriodSeconds", Ty::Int), f(5, "activeDeadlineSeconds", Ty::Int), f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", Ty::MapStr), f(8, "serviceAccountName", Ty::Str), f(9, "serviceAccount", Ty::Str), f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool), f(15, "imagePullSecrets", Ty::RepMsg(LOCAL_REF)), f(16, "hostname", Ty::Str),
    f(17, "subdomain", Ty::Str), f(19, "schedulerName", Ty::Str), f(22, "tolerations", Ty::RepMsg(TOLERATION)),
    f(24, "priorityClassName", Ty::Str), f(25, "priority", Ty::Int), f(30, "enableServiceLinks", Ty::Bool), f(31, "preemptionPolicy", Ty::Str),
];
const POD: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(POD_SPEC))];
const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str), f(2, "protocol", Ty::Str), f(6, "appProtocol", Ty::Str), f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString), f(5, "nodePort", Ty::Int),
];
const SERVICE_SPEC: &[Field] = &[
    f(1, "ports", Ty::RepMsg(SERVICE_PORT)), f(2, "selector", Ty::MapStr), f(3, "clusterIP", Ty::Str), f(18, "clusterIPs", Ty::RepStr),
    f(4, "type", Ty::Str), f(5, "externalIPs", Ty::RepStr), f(7, "sessionAffinity", Ty::Str), f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str), f(13, "publishNotReadyAddresses", Ty::Bool), f(19, "ipFamilies", Ty::RepStr),
    f(17, "ipFamilyPolicy", Ty::Str), f(22, "internalTrafficPolicy", Ty::Str),
];
const SERVICE: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(SERVICE_SPEC))];
const SELECTOR_REQ: &[Field] = &[f(1, "key", Ty::Str), f(2, "operator", Ty::Str), f(3, "values", Ty::RepStr)];
const LABEL_SELECTOR: &[Field] = &[f(1, "matchLabels", Ty::MapStr), f(2, "matchExpressions", Ty::RepMsg(SELECTOR_REQ))];
const POD_TEMPLATE: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(POD_SPEC))];
const ROLLING_UPDATE: &[Field] = &[f(1, "maxUnavailable", Ty::IntOrString), f(2, "maxSurge", Ty::IntOrString)];
const STRATEGY: &[Field] = &[f(1, "type", Ty::Str), f(2, "rollingUpdate", Ty::Msg(ROLLING_UPDATE))];
const DEPLOYMENT_SPEC: &[Field] = &[
    f(1, "replicas", Ty::Int), f(2, "selector", Ty::Msg(LABEL_SELECTOR)), f(3, "template", Ty::Msg(POD_TEMPLATE)),
    f(4, "strategy", Ty::Msg(STRATEGY)), f(5, "minReadySeconds", Ty::Int), f(6, "revisionHistoryLimit", Ty::Int),
    f(7, "paused", Ty::Bool), f(9, "progressDeadlineSeconds", Ty::Int),
];
const DEPLOYMENT: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(DEPLOYMENT_SPEC))];
const REPLICASET_SPEC: &[Field] = &[
    f(1, "replicas", Ty::Int), f(2, "selector", Ty::Msg(LABEL_SELECTOR)), f(3, "template", Ty::Msg(POD_TEMPLATE)), f(4, "minReadySeconds", Ty::Int),
];
const REPLICASET: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(REPLICASET_SPEC))];
const DAEMONSET_SPEC: &[Field] = &[
    f(1, "selector", Ty::Msg(LABEL_SELECTOR)), f(2, "template", Ty::Msg(POD_TEMPLATE)), f(3, "updateStrategy", Ty::Msg(STRATEGY)),
    f(4, "minReadySeconds", Ty::Int), f(6, "revisionHistoryLimit", Ty::Int),
];
const DAEMONSET: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(DAEMONSET_SPEC))];
const PRECONDITIONS: &[Field] = &[f(1, "uid", Ty::Str), f(2, "resourceVersion", Ty::Str)];
const DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Ty::Int), f(2, "preconditions", Ty::Msg(PRECONDITIONS)), f(3, "orphanDependents", Ty::Bool),
    f(4, "propagationPolicy", Ty::Str), f(5, "dryRun", Ty::RepStr),
];
const EVICTION: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "deleteOptions", Ty::Msg(DELETE_OPTIONS))];
const BINDING: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "target", Ty::Msg(OBJECT_REF))];
const POLICY_RULE: &[Field] = &[
    f(1, "verbs", Ty::RepStr), f(2, "apiGroups", Ty::RepStr), f(3, "resources", Ty::RepStr), f(4, "resourceNames", Ty::RepStr),
    f(5, "nonResourceURLs", Ty::RepStr),
];
const AGGREGATION_RULE: &[Field] = &[f(1, "clusterRoleSelectors", Ty::RepMsg(LABEL_SELECTOR))];
const ROLE: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "rules", Ty::RepMsg(POLICY_RULE))];
const CLUSTER_ROLE: &[Field] =
    &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "rules", Ty::RepMsg(POLICY_RULE)), f(3, "aggregationRule", Ty::Msg(AGGREGATION_RULE))];
const SUBJECT: &[Field] = &[f(1, "kind", Ty::Str), f(2, "apiGroup", Ty::Str), f(3, "name", Ty::Str), f(4, "namespace", Ty::Str)];
const ROLE_REF: &[Field] = &[f(1, "apiGroup", Ty::Str), f(2, "kind", Ty::Str), f(3, "name", Ty::Str)];
const ROLE_BINDING: &[Field] =
    &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "subjects", Ty::RepMsg(SUBJECT)), f(3, "roleRef", Ty::Msg(ROLE_REF))];
const SELECTOR_ATTRS: &[Field] = &[f(1, "rawSelector", Ty::Str), f(2, "requirements", Ty::RepMsg(SELECTOR_REQ))];
const RESOURCE_ATTRS: &[Field] = &[
    f(1, "namespace", Ty::Str), f(2, "verb", Ty::Str), f(3, "group", Ty::Str), f(4, "version", Ty::Str), f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str), f(7, "name", Ty::Str), f(8, "fieldSelector", Ty::Msg(SELECTOR_ATTRS)),
    f(9, "labelSelector", Ty::Msg(SELECTOR_ATTRS)),
];
const NON_RESOURCE_ATTRS: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
const SELF_SAR_SPEC: &[Field] =
    &[f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRS)), f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRS))];
/// `extra` (field 5, a map of ExtraValue messages) is not decoded.
const SAR_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRS)), f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRS)),
    f(3, "user", Ty::Str), f(4, "groups", Ty::RepStr), f(6, "uid", Ty::Str),
];
const SELF_SAR: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(SELF_SAR_SPEC))];
const SAR: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(SAR_SPEC))];
const SELF_SUBJECT_REVIEW: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META))];
const TOKEN_REVIEW_SPEC: &[Field] = &[f(1, "token", Ty::Str), f(2, "audiences", Ty::RepStr)];
/// What the kubelet's webhook token authenticator sends (client-go speaks protobuf to the server).
const TOKEN_REVIEW: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(TOKEN_REVIEW_SPEC))];
const BOUND_OBJECT_REF: &[Field] = &[f(1, "kind", Ty::Str), f(2, "apiVersion", Ty::Str), f(3, "name", Ty::Str), f(4, "uid", Ty::Str)];
const TOKEN_REQUEST_SPEC: &[Field] =
    &[f(1, "audiences", Ty::RepStr), f(3, "boundObjectRef", Ty::Msg(BOUND_OBJECT_REF)), f(4, "expirationSeconds", Ty::Int)];
/// What `kubectl create token` and the kubelet send to `serviceaccounts/token`.
const TOKEN_REQUEST: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(TOKEN_REQUEST_SPEC))];
const TYPE_META: &[Field] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];
const UNKNOWN: &[Field] = &[f(1, "typeMeta", Ty::Msg(TYPE_META)), f(2, "raw", Ty::Bytes)];

fn bad(msg: &str) -> ApiError {
    ApiError::bad_request(format!("unable to decode protobuf body: {msg}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> ApiResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }
    fn take(&mut self, n: usize) -> ApiResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| bad("truncated field"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

fn utf8(b: &[u8]) -> ApiResult<String> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8"))
}

fn map_entry(b: &[u8], bytes_value: bool) -> ApiResult<(String, Value)> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while r.pos < b.len() {
        let tag = r.varint()?;
        if tag & 7 != 2 {
            return Err(bad("unexpected wire type in map entry"));
        }
        let n = r.varint()? as usize;
        let data = r.take(n)?;
        match tag >> 3 {
            1 => k = utf8(data)?,
            2 if bytes_value => v = json!(base64::engine::general_purpose::STANDARD.encode(data)),
            2 => v = json!(utf8(data)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn decode_msg(b: &[u8], fields: &[Field], depth: usize) -> ApiResult<Map<String, Value>> {
    if depth > 16 {
        return Err(bad("nesting too deep"));
    }
    let mut r = Reader { buf: b, pos: 0 };
    let mut out = Map::new();
    while r.pos < b.len() {
        let tag = r.varint()?;
        let (num, wt) = (tag >> 3, tag & 7);
        let field = fields.iter().find(|x| x.num == num);
        let (varint, data) = match wt {
            0 => (Some(r.varint()?), &[][..]),
            1 => (None, r.take(8)?),
            2 => {
                let n = usize::try_from(r.varint()?).map_err(|_| bad("length overflow"))?;
                (None, r.take(n)?)
            }
            5 => (None, r.take(4)?),
            _ => return Err(bad("unsupported wire type")),
        };
        let Some(field) = field else { continue };
        let name = field.name.to_string();
        match (field.ty, varint) {
            (Ty::Int, Some(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Ty::Bool, Some(v)) => {
                out.insert(name, json!(v != 0));
            }
            // Go's encoder writes every non-pointer field; an empty string or a zero time
            // means unset (omitempty in JSON), so both are left out as a JSON client would.
            (Ty::Str, None) => {
                if !data.is_empty() {
                    out.insert(name, json!(utf8(data)?));
                }
            }
            (Ty::Bytes, None) => {
                out.insert(name, json!(base64::engine::general_purpose::STANDARD.encode(data)));
            }
            (Ty::Time, None) => {
                let t = decode_msg(data, &[f(1, "seconds", Ty::Int)], depth + 1)?;
                let secs = t.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                if secs != 0 && let Ok(ts) = jiff::Timestamp::from_second(secs) {
                    out.insert(name, json!(ts.to_string()));
                }
            }
            (Ty::Msg(inner), None) => {
                out.insert(name, Value::Object(decode_msg(data, inner, depth + 1)?));
            }
            (Ty::RepStr, None) => {
                let s = utf8(data)?;
                match out.entry(name).or_insert_with(|| json!([])) {
                    Value::Array(a) => a.push(json!(s)),
                    _ => return Err(bad("repeated field clash")),
                }
            }
            (Ty::RepMsg(inner), None) => {
                let m = decode_msg(data, inner, depth + 1)?;
                match out.entry(name).or_insert_with(|| json!([])) {
                    Value::Array(a) => a.push(Value::Object(m)),
                    _ => return Err(bad("repeated field clash")),
                }
            }
            (Ty::IntOrString, None) => {
                let m = decode_msg(data, &[f(1, "type", Ty::Int), f(2, "intVal", Ty::Int), f(3, "strVal", Ty::Str)], depth + 1)?;
                let v = if m.get("type").and_then(Value::as_i64) == Some(1) {
                    m.get("strVal").cloned().unwrap_or(json!(""))
                } else {
                    m.get("intVal").cloned().unwrap_or(json!(0))
                };
                out.insert(name, v);
            }
            (Ty::MapQuantity, None) => {
                let entry = decode_msg(data, QUANTITY_ENTRY, depth + 1)?;
                let k = entry.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                let v = entry.get("value").and_then(|q| q.get("string")).cloned().unwrap_or(json!("0"));
                match out.entry(name).or_insert_with(|| json!({})) {
                    Value::Object(m) => {
                        m.insert(k, v);
                    }
                    _ => return Err(bad("map field clash")),
                }
            }
            (Ty::MapStr | Ty::MapBytes, None) => {
                let (k, v) = map_entry(data, matches!(field.ty, Ty::MapBytes))?;
                match out.entry(name).or_insert_with(|| json!({})) {
                    Value::Object(m) => {
                        m.insert(k, v);
                    }
                    _ => return Err(bad("map field clash")),
                }
            }
            _ => return Err(bad("wire type does not match field type")),
        }
    }
    Ok(out)
}

/// Decode a protobuf-encoded request body into JSON.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let rest = body.strip_prefix(b"k8s\0").ok_or_else(|| bad("missing k8s magic prefix"))?;
    let unknown = decode_msg(rest, UNKNOWN, 0)?;
    let api_version = unknown.pointer_str("typeMeta", "apiVersion");
    let kind = unknown.pointer_str("typeMeta", "kind");
    let raw = unknown
        .get("raw")
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_default();
    let schema = match kind.as_str() {
        "Namespace" => NAMESPACE,
        "Pod" => POD,
        "Service" => SERVICE,
        "ConfigMap" => CONFIGMAP,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Eviction" => EVICTION,
        "Binding" => BINDING,
        "Deployment" => DEPLOYMENT,
        "ReplicaSet" => REPLICASET,
        "DaemonSet" => DAEMONSET,
        "DeleteOptions" => DELETE_OPTIONS,
        "Role" => ROLE,
        "ClusterRole" => CLUSTER_ROLE,
        "RoleBinding" | "ClusterRoleBinding" => ROLE_BINDING,
        "SelfSubjectAccessReview" => SELF_SAR,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => SAR,
        "SelfSubjectReview" => SELF_SUBJECT_REVIEW,
        "TokenReview" => TOKEN_REVIEW,
        "TokenRequest" => TOKEN_REQUEST,
        other => {
            return Err(ApiError::unsupported_media_type(&format!("application/vnd.kubernetes.protobuf (kind {other:?} not decodable; use application/json)")));
        }
    };
    let mut obj = decode_msg(&raw, schema, 0)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

trait PointerStr {
    fn pointer_str(&self, a: &str, b: &str) -> String;
}

impl PointerStr for Map<String, Value> {
    fn pointer_str(&self, a: &str, b: &str) -> String {
        self.get(a).and_then(|x| x.get(b)).and_then(Value::as_str).unwrap_or("").to_string()
    }
}
