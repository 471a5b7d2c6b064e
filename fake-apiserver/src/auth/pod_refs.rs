//! The API objects a pod (or a PersistentVolume) references, read from its JSON: upstream's
//! `podutil.VisitPodSecretNames` / `VisitPodConfigmapNames` (pkg/api/v1/pod/util.go) and the
//! reference walks of the Node authorizer graph (plugin/pkg/auth/authorizer/node/graph.go).

use serde_json::Value;

/// The annotation that marks a mirror pod (a static pod's API mirror).
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Volume sources whose `secretRef.name` names a secret.
const SECRET_REF_VOLUMES: [&str; 7] = ["cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos"];

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn array<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// `metadata.name` of an object ("" when absent).
pub fn name_of(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// `metadata.namespace` of an object ("" when absent).
pub fn namespace_of(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace")
}

/// `spec.nodeName` of a pod ("" when absent).
pub fn pod_node_name(pod: &Value) -> &str {
    str_at(pod, "/spec/nodeName")
}

/// `spec.serviceAccountName` of a pod ("" when absent).
pub fn pod_service_account(pod: &Value) -> &str {
    str_at(pod, "/spec/serviceAccountName")
}

/// Whether the pod carries the mirror pod annotation.
pub fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// All containers: init, regular and ephemeral (upstream's `AllContainers`).
fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["/spec/initContainers", "/spec/containers", "/spec/ephemeralContainers"]
        .into_iter()
        .flat_map(move |p| array(pod, p).iter())
}

/// Names from `envFrom[].<from_key>.name` and `env[].valueFrom.<key_ref>.name` of every container.
fn container_refs<'a>(pod: &'a Value, from_key: &'a str, key_ref: &'a str, out: &mut Vec<String>) {
    for c in containers(pod) {
        for e in array(c, "/envFrom") {
            if let Some(r) = e.get(from_key) {
                out.push(str_at(r, "/name").to_string());
            }
        }
        for e in array(c, "/env") {
            if let Some(r) = e.pointer("/valueFrom").and_then(|vf| vf.get(key_ref)) {
                out.push(str_at(r, "/name").to_string());
            }
        }
    }
}

fn finish(mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| !n.is_empty());
    names
}

/// Every secret the pod spec references: image pull secrets, env and envFrom of all
/// containers, and secret-bearing volumes (secret, projected secret sources, azureFile and the
/// `secretRef` of cephfs, cinder, flexVolume, rbd, scaleIO, iscsi, storageos, csi's
/// `nodePublishSecretRef`). Empty names are skipped; transitive references are not followed.
pub fn pod_secret_names(pod: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        array(pod, "/spec/imagePullSecrets").iter().map(|r| str_at(r, "/name").to_string()).collect();
    container_refs(pod, "secretRef", "secretKeyRef", &mut out);
    for vol in array(pod, "/spec/volumes") {
        if let Some(azure) = vol.get("azureFile") {
            out.push(str_at(azure, "/secretName").to_string());
        } else if let Some(projected) = vol.get("projected") {
            for src in array(projected, "/sources") {
                if let Some(s) = src.get("secret") {
                    out.push(str_at(s, "/name").to_string());
                }
            }
        } else if let Some(secret) = vol.get("secret") {
            out.push(str_at(secret, "/secretName").to_string());
        } else if let Some(csi) = vol.get("csi") {
            out.push(str_at(csi, "/nodePublishSecretRef/name").to_string());
        } else if let Some(src) = SECRET_REF_VOLUMES.iter().find_map(|k| vol.get(*k)) {
            out.push(str_at(src, "/secretRef/name").to_string());
        }
    }
    finish(out)
}

/// Every configmap the pod spec references: env and envFrom of all containers, configMap
/// volumes and projected configMap sources. Empty names are skipped.
pub fn pod_configmap_names(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    container_refs(pod, "configMapRef", "configMapKeyRef", &mut out);
    for vol in array(pod, "/spec/volumes") {
        if let Some(projected) = vol.get("projected") {
            for src in array(projected, "/sources") {
                if let Some(cm) = src.get("configMap") {
                    out.push(str_at(cm, "/name").to_string());
                }
            }
        } else if let Some(cm) = vol.get("configMap") {
            out.push(str_at(cm, "/name").to_string());
        }
    }
    finish(out)
}

/// The PVCs the pod's volumes use: `persistentVolumeClaim.claimName`, and for generic
/// ephemeral volumes the generated claim `<podName>-<volumeName>`.
pub fn pod_pvc_names(pod: &Value) -> Vec<String> {
    let pod_name = name_of(pod);
    let mut out = Vec::new();
    for vol in array(pod, "/spec/volumes") {
        if let Some(pvc) = vol.get("persistentVolumeClaim") {
            out.push(str_at(pvc, "/claimName").to_string());
        } else if vol.get("ephemeral").is_some() {
            out.push(format!("{pod_name}-{}", str_at(vol, "/name")));
        }
    }
    finish(out)
}

/// Whether any volume has a `persistentVolumeClaim` source.
pub fn pod_has_pvc_volume(pod: &Value) -> bool {
    array(pod, "/spec/volumes").iter().any(|v| v.get("persistentVolumeClaim").is_some())
}

/// Whether any projected volume has a `clusterTrustBundle` source.
pub fn pod_has_cluster_trust_bundle(pod: &Value) -> bool {
    array(pod, "/spec/volumes")
        .iter()
        .filter_map(|v| v.get("projected"))
        .any(|p| array(p, "/sources").iter().any(|s| s.get("clusterTrustBundle").is_some()))
}

/// The ResourceClaims the pod uses: `spec.resourceClaims[].resourceClaimName`, or for a
/// template the claim name recorded in `status.resourceClaimStatuses`, plus the extended
/// resource claim of `status.extendedResourceClaimStatus`.
pub fn pod_resource_claim_names(pod: &Value) -> Vec<String> {
    let statuses = array(pod, "/status/resourceClaimStatuses");
    let mut out = Vec::new();
    for claim in array(pod, "/spec/resourceClaims") {
        let direct = str_at(claim, "/resourceClaimName");
        if !direct.is_empty() {
            out.push(direct.to_string());
        } else if claim.get("resourceClaimTemplateName").is_some() {
            let entry = statuses.iter().find(|s| str_at(s, "/name") == str_at(claim, "/name"));
            out.extend(entry.map(|s| str_at(s, "/resourceClaimName").to_string()));
        }
    }
    out.push(str_at(pod, "/status/extendedResourceClaimStatus/resourceClaimName").to_string());
    finish(out)
}

/// `(namespace, name)` of the secrets a PersistentVolume makes visible to the kubelet (CSI
/// node publish/stage/expand secrets, flexVolume, iscsi, rbd and cephfs `secretRef`); a
/// reference without a namespace means the bound claim's namespace.
pub fn pv_kubelet_secret_refs(pv: &Value) -> Vec<(String, String)> {
    let claim_ns = str_at(pv, "/spec/claimRef/namespace");
    let mut refs: Vec<&Value> = Vec::new();
    if let Some(csi) = pv.pointer("/spec/csi") {
        refs.extend(
            ["nodePublishSecretRef", "nodeStageSecretRef", "nodeExpandSecretRef"].iter().filter_map(|k| csi.get(*k)),
        );
    }
    for key in ["flexVolume", "iscsi", "rbd", "cephfs"] {
        refs.extend(pv.pointer(&format!("/spec/{key}/secretRef")));
    }
    refs.into_iter()
        .filter(|r| !str_at(r, "/name").is_empty())
        .map(|r| {
            let ns = str_at(r, "/namespace");
            (if ns.is_empty() { claim_ns } else { ns }.to_string(), str_at(r, "/name").to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {
                "nodeName": "node-a",
                "serviceAccountName": "sa",
                "imagePullSecrets": [{"name": "pull"}, {"name": ""}],
                "initContainers": [{"envFrom": [{"secretRef": {"name": "init-env"}}]}],
                "containers": [{
                    "envFrom": [{"configMapRef": {"name": "cm-env"}}],
                    "env": [
                        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "key-secret", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "key-cm", "key": "k"}}},
                        {"name": "C", "value": "plain"}
                    ]
                }],
                "ephemeralContainers": [{"env": [{"name": "D", "valueFrom": {"secretKeyRef": {"name": "eph"}}}]}],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol-secret"}},
                    {"name": "c", "configMap": {"name": "vol-cm"}},
                    {"name": "p", "projected": {"sources": [
                        {"secret": {"name": "proj-secret"}}, {"configMap": {"name": "proj-cm"}},
                        {"serviceAccountToken": {"path": "token"}}
                    ]}},
                    {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-secret"}}},
                    {"name": "rbd", "rbd": {"secretRef": {"name": "rbd-secret"}}},
                    {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}
                ],
                "resourceClaims": [
                    {"name": "gpu", "resourceClaimName": "gpu-claim"},
                    {"name": "tpl", "resourceClaimTemplateName": "t"}
                ]
            },
            "status": {"resourceClaimStatuses": [{"name": "tpl", "resourceClaimName": "web-tpl-x"}]}
        })
    }

    #[test]
    fn secrets_of_a_pod() {
        let got = pod_secret_names(&pod());
        assert_eq!(
            got,
            ["pull", "init-env", "key-secret", "eph", "vol-secret", "proj-secret", "csi-secret", "rbd-secret"]
        );
    }

    #[test]
    fn configmaps_of_a_pod() {
        assert_eq!(pod_configmap_names(&pod()), ["cm-env", "key-cm", "vol-cm", "proj-cm"]);
    }

    #[test]
    fn claims_of_a_pod() {
        assert_eq!(pod_pvc_names(&pod()), ["data", "web-scratch"]);
        assert!(pod_has_pvc_volume(&pod()));
        assert_eq!(pod_resource_claim_names(&pod()), ["gpu-claim", "web-tpl-x"]);
        assert!(!pod_has_cluster_trust_bundle(&pod()));
    }

    #[test]
    fn pod_fields() {
        let p = pod();
        assert_eq!(
            (name_of(&p), namespace_of(&p), pod_node_name(&p), pod_service_account(&p)),
            ("web", "ns", "node-a", "sa")
        );
        assert!(!is_mirror_pod(&p));
        assert!(is_mirror_pod(&json!({"metadata": {"annotations": {MIRROR_POD_ANNOTATION: "x"}}})));
    }

    #[test]
    fn malformed_pods_yield_nothing() {
        for v in [json!(null), json!(1), json!({"spec": {"volumes": "x", "containers": [1, null]}})] {
            assert!(pod_secret_names(&v).is_empty());
            assert!(pod_configmap_names(&v).is_empty());
            assert!(pod_pvc_names(&v).is_empty());
            assert!(pod_resource_claim_names(&v).is_empty());
        }
    }

    #[test]
    fn pv_secrets_default_to_claim_namespace() {
        let pv = json!({"spec": {
            "claimRef": {"namespace": "ns", "name": "data"},
            "csi": {"nodeStageSecretRef": {"name": "stage"}, "controllerPublishSecretRef": {"name": "ctrl"},
                    "nodePublishSecretRef": {"name": "pub", "namespace": "other"}}
        }});
        let got = pv_kubelet_secret_refs(&pv);
        assert_eq!(got, [("other".to_string(), "pub".to_string()), ("ns".to_string(), "stage".to_string())]);
    }
}
