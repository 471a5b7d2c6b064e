//! The ServiceAccount admission plugin (upstream's `plugin/pkg/admission/serviceaccount`), for
//! pods being created: the pod's ServiceAccount (already defaulted to `default`) must exist, and
//! unless automounting is off (the pod's `automountServiceAccountToken`, else the account's)
//! every container and init container that has nothing mounted at the token path gets the
//! `kube-api-access-<5>` projected volume there: a bound token (3607 s), `ca.crt` from the
//! `kube-root-ca.crt` ConfigMap and the namespace; a pod without image pull secrets gets the
//! account's. Mirror pods are left alone, and may not name a ServiceAccount or mount its token.
//!
//! Pure functions over JSON; the registry looks the account up and calls [`admit_pod`].

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// Where upstream mounts the token, CA bundle and namespace in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The name prefix of the injected volume.
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// Lifetime of the injected token: an hour plus the 7 s upstream adds so that an extended
/// token (see `--service-account-extend-token-expiration`) is recognisable.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// The annotation that marks a mirror pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn is_mirror(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations").and_then(Value::as_object).is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

fn forbidden(pod_name: &str, why: String) -> ApiError {
    ApiError::forbidden(format!("pods {pod_name:?} is forbidden: {why}")).with_details(pod_name, "", "pods")
}

/// The injected volume with its generated `name`.
pub fn api_access_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

/// Sets `spec.serviceAccountName` (and its alias `serviceAccount`) to `default` where it is
/// empty, on pods other than mirror pods; the account to look up (`None` for a mirror pod).
pub fn default_account(pod: &mut Value) -> Option<String> {
    if is_mirror(pod) {
        return None;
    }
    let name = pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("default").to_string();
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("serviceAccountName".into(), json!(name));
        spec.insert("serviceAccount".into(), json!(name));
    }
    Some(name)
}

/// Admits pod `pod` (defaults applied, [`default_account`] called) in `ns`, whose
/// ServiceAccount is `account` (`None`: it does not exist). `suffix` makes the volume name (5
/// characters, as upstream's generator); the volume is injected only when `inject`.
pub fn admit_pod(pod: &mut Value, ns: &str, account: Option<&Value>, suffix: &str, inject: bool) -> ApiResult<()> {
    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let sa_name = pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or_default().to_string();
    if is_mirror(pod) {
        if !sa_name.is_empty() {
            return Err(forbidden(&pod_name, "a mirror pod may not reference service accounts".into()));
        }
        return Ok(());
    }
    let Some(account) = account else {
        return Err(forbidden(
            &pod_name,
            format!("error looking up service account {ns}/{sa_name}: serviceaccount {sa_name:?} not found"),
        ));
    };
    // A pod without image pull secrets gets its account's.
    let account_secrets: Vec<Value> =
        account.get("imagePullSecrets").and_then(Value::as_array).into_iter().flatten().filter_map(|r| r.get("name")).map(|n| json!({"name": n})).collect();
    let pod_has_none = pod.pointer("/spec/imagePullSecrets").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if pod_has_none
        && !account_secrets.is_empty()
        && let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("imagePullSecrets".into(), Value::Array(account_secrets));
    }
    let automount = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| account.get("automountServiceAccountToken").and_then(Value::as_bool))
        .unwrap_or(true);
    if !automount || !inject {
        return Ok(());
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    let volume = format!("{VOLUME_PREFIX}{suffix}");
    let mut needed = false;
    for key in ["initContainers", "containers"] {
        for c in spec.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
            let mounts = c.as_object_mut().map(|o| o.entry("volumeMounts").or_insert_with(|| json!([])));
            let Some(Value::Array(mounts)) = mounts else { continue };
            if mounts.iter().any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH)) {
                continue;
            }
            mounts.push(json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}));
            needed = true;
        }
    }
    if needed {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(v) = volumes.as_array_mut() {
            v.push(api_access_volume(&volume));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(extra: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "serviceAccountName": "default",
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
        }});
        if let (Some(s), Value::Object(e)) = (p.get_mut("spec").and_then(Value::as_object_mut), extra) {
            s.extend(e);
        }
        p
    }

    #[test]
    fn every_container_without_the_mount_gets_the_volume() {
        let mut p = pod(json!({}));
        admit_pod(&mut p, "ns", Some(&json!({})), "abcde", true).unwrap();
        let mount = |c: &str| p.pointer(&format!("/spec/{c}/volumeMounts")).cloned().unwrap_or_default();
        let want = json!([{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}]);
        assert_eq!(mount("initContainers/0"), want);
        assert_eq!(mount("containers/0"), want);
        assert_eq!(mount("containers/1"), json!([{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]), "an own mount at the path is kept");
        assert_eq!(p.pointer("/spec/volumes").unwrap(), &json!([api_access_volume("kube-api-access-abcde")]));
    }

    #[test]
    fn automount_off_on_the_pod_or_the_account_injects_nothing() {
        let mut p = pod(json!({"automountServiceAccountToken": false}));
        admit_pod(&mut p, "ns", Some(&json!({"automountServiceAccountToken": true})), "abcde", true).unwrap();
        assert!(p.pointer("/spec/volumes").is_none());
        let mut p = pod(json!({}));
        admit_pod(&mut p, "ns", Some(&json!({"automountServiceAccountToken": false})), "abcde", true).unwrap();
        assert!(p.pointer("/spec/volumes").is_none());
        let mut p = pod(json!({"automountServiceAccountToken": true}));
        admit_pod(&mut p, "ns", Some(&json!({"automountServiceAccountToken": false})), "abcde", true).unwrap();
        assert!(p.pointer("/spec/volumes").is_some(), "the pod's setting wins");
    }

    #[test]
    fn a_pod_without_pull_secrets_gets_the_accounts() {
        let account = json!({"imagePullSecrets": [{"name": "regcred"}, {"name": "other"}]});
        let mut p = pod(json!({}));
        admit_pod(&mut p, "ns", Some(&account), "abcde", false).unwrap();
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "regcred"}, {"name": "other"}]));
        let mut own = pod(json!({"imagePullSecrets": [{"name": "mine"}]}));
        admit_pod(&mut own, "ns", Some(&account), "abcde", true).unwrap();
        assert_eq!(own["spec"]["imagePullSecrets"], json!([{"name": "mine"}]), "a pod's own secrets stay");
        let mut none = pod(json!({}));
        admit_pod(&mut none, "ns", Some(&json!({})), "abcde", true).unwrap();
        assert!(none["spec"].get("imagePullSecrets").is_none());
    }

    #[test]
    fn an_empty_account_becomes_default() {
        let mut p = pod(json!({}));
        p["spec"].as_object_mut().unwrap().remove("serviceAccountName");
        assert_eq!(default_account(&mut p).as_deref(), Some("default"));
        assert_eq!(p.pointer("/spec/serviceAccount"), Some(&json!("default")));
    }

    #[test]
    fn a_missing_account_is_forbidden_with_upstreams_text() {
        let mut p = pod(json!({"serviceAccountName": "robot"}));
        let e = admit_pod(&mut p, "ns", None, "abcde", true).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(e.message, "pods \"p\" is forbidden: error looking up service account ns/robot: serviceaccount \"robot\" not found");
    }

    #[test]
    fn mirror_pods_are_left_alone_and_may_not_name_an_account() {
        let mut p = pod(json!({}));
        p["spec"].as_object_mut().unwrap().remove("serviceAccountName");
        p["metadata"]["annotations"] = json!({MIRROR_ANNOTATION: "hash"});
        assert_eq!(default_account(&mut p), None);
        assert!(p.pointer("/spec/serviceAccountName").is_none(), "no account is defaulted on a mirror pod");
        admit_pod(&mut p, "ns", None, "abcde", true).unwrap();
        assert!(p.pointer("/spec/volumes").is_none());
        p["spec"]["serviceAccountName"] = json!("robot");
        assert!(admit_pod(&mut p, "ns", None, "abcde", true).unwrap_err().message.contains("a mirror pod may not reference service accounts"));
    }
}
