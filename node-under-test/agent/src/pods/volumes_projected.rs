//! projected volumes (upstream's `kubernetes.io~projected` plugin): the files of several
//! sources in one directory — a ServiceAccount token requested for the pod (TokenRequest bound
//! to the pod), configMap and secret keys, and downwardAPI fields of the pod's metadata. This
//! is how every pod gets `kube-api-access-*` (token, ca.crt, namespace). Written before each
//! container start, with the configMap/secret writer's atomic layout; the token is requested
//! anew each time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod, ProjectedVolumeSource, VolumeProjection};

use super::volumes::{ApiObjects, File, Source, files, relative};

/// Upstream's default mode of projected files (0644).
const DEFAULT_MODE: i32 = 0o644;
/// Upstream's default lifetime of a projected token.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// What a pod's token is requested for: `(namespace, service account, pod name, pod uid)`.
pub struct TokenOwner<'a> {
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub pod_name: &'a str,
    pub pod_uid: &'a str,
}

impl<'a> TokenOwner<'a> {
    pub fn of(pod: &'a Pod) -> TokenOwner<'a> {
        let sa = pod.spec.as_ref().and_then(|s| s.service_account_name.as_deref()).filter(|s| !s.is_empty());
        TokenOwner {
            namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
            service_account: sa.unwrap_or("default"),
            pod_name: pod.metadata.name.as_deref().unwrap_or_default(),
            pod_uid: pod.metadata.uid.as_deref().unwrap_or_default(),
        }
    }
}

/// Every file of projected volume `p` of `pod`.
pub async fn projected_files(objects: &ApiObjects, pod: &Pod, p: &ProjectedVolumeSource) -> Result<Vec<File>, String> {
    let default_mode = p.default_mode.unwrap_or(DEFAULT_MODE);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = Vec::new();
    for source in p.sources.iter().flatten() {
        out.extend(source_files(objects, pod, ns, source, default_mode).await?);
    }
    Ok(out)
}

async fn source_files(objects: &ApiObjects, pod: &Pod, ns: &str, s: &VolumeProjection, default_mode: i32) -> Result<Vec<File>, String> {
    if let Some(t) = &s.service_account_token {
        let path = relative(&t.path).ok_or_else(|| format!("serviceAccountToken path {:?} must be relative and may not contain '..'", t.path))?;
        let expiration = t.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        let token = objects
            .token(&TokenOwner::of(pod), t.audience.as_deref().filter(|a| !a.is_empty()), expiration)
            .await
            .map_err(|e| format!("failed to fetch token: {e}"))?;
        return Ok(vec![File { path, content: token.into_bytes(), mode: (default_mode & 0o777) as u32 }]);
    }
    if let Some(c) = &s.config_map {
        let src = Source { secret: false, object: c.name.clone(), items: c.items.as_deref(), default_mode: Some(default_mode), optional: c.optional.unwrap_or(false) };
        let keys = objects.keys(false, ns, &src.object).await?;
        return files(&src, keys.as_deref());
    }
    if let Some(c) = &s.secret {
        let src = Source { secret: true, object: c.name.clone(), items: c.items.as_deref(), default_mode: Some(default_mode), optional: c.optional.unwrap_or(false) };
        let keys = objects.keys(true, ns, &src.object).await?;
        return files(&src, keys.as_deref());
    }
    if let Some(d) = &s.downward_api {
        return d.items.iter().flatten().map(|item| downward_file(pod, item, default_mode)).collect();
    }
    Err("a projected volume source of a kind this agent does not support (serviceAccountToken, configMap, secret and downwardAPI are)".into())
}

/// One downwardAPI item (fieldRef to the pod's metadata; resourceFieldRef is not supported).
fn downward_file(pod: &Pod, item: &DownwardAPIVolumeFile, default_mode: i32) -> Result<File, String> {
    let path = relative(&item.path).ok_or_else(|| format!("downwardAPI path {:?} must be relative and may not contain '..'", item.path))?;
    let Some(field) = &item.field_ref else {
        return Err(format!("downwardAPI item {:?}: only fieldRef is supported by this agent", item.path));
    };
    let content = field_value(pod, &field.field_path)?;
    Ok(File { path, content: content.into_bytes(), mode: (item.mode.unwrap_or(default_mode) & 0o777) as u32 })
}

/// The value of a downwardAPI field path, formatted as upstream writes it into a volume.
pub fn field_value(pod: &Pod, path: &str) -> Result<String, String> {
    let m = &pod.metadata;
    let map_text = |map: Option<&BTreeMap<String, String>>| {
        map.into_iter().flatten().map(|(k, v)| format!("{k}={v:?}\n")).collect::<String>()
    };
    let one = |map: Option<&BTreeMap<String, String>>, key: &str| map.and_then(|m| m.get(key)).cloned().unwrap_or_default();
    let key_of = |prefix: &str| path.strip_prefix(prefix).and_then(|r| r.strip_prefix("['")).and_then(|r| r.strip_suffix("']"));
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => map_text(m.labels.as_ref()),
        "metadata.annotations" => map_text(m.annotations.as_ref()),
        _ => {
            if let Some(k) = key_of("metadata.labels") {
                one(m.labels.as_ref(), k)
            } else if let Some(k) = key_of("metadata.annotations") {
                one(m.annotations.as_ref(), k)
            } else {
                return Err(format!("unsupported fieldPath {path:?} in a downwardAPI volume"));
            }
        }
    })
}

/// The host directory of projected volume `name` under `pod_dir`.
pub fn host_dir(pod_dir: &std::path::Path, name: &str) -> PathBuf {
    pod_dir.join("volumes").join("kubernetes.io~projected").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"b": "2", "a": "1"}, "annotations": {"note": "x y"}},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap()
    }

    #[test]
    fn downward_fields_are_written_as_upstream_does() {
        let p = pod();
        assert_eq!(field_value(&p, "metadata.namespace").unwrap(), "ns");
        assert_eq!(field_value(&p, "metadata.uid").unwrap(), "u-1");
        assert_eq!(field_value(&p, "metadata.labels").unwrap(), "a=\"1\"\nb=\"2\"\n");
        assert_eq!(field_value(&p, "metadata.labels['b']").unwrap(), "2");
        assert_eq!(field_value(&p, "metadata.annotations['note']").unwrap(), "x y");
        assert!(field_value(&p, "spec.nodeName").unwrap_err().contains("unsupported fieldPath"));
    }

    #[test]
    fn the_pods_service_account_defaults_to_default() {
        let p = pod();
        assert_eq!(TokenOwner::of(&p).service_account, "default");
        let mut p2 = p.clone();
        p2.spec.as_mut().unwrap().service_account_name = Some("robot".into());
        assert_eq!(TokenOwner::of(&p2).service_account, "robot");
    }

    #[tokio::test]
    async fn sources_are_merged_with_the_default_mode() {
        let p = pod();
        let v: ProjectedVolumeSource = serde_json::from_value(serde_json::json!({
            "defaultMode": 0o440,
            "sources": [{"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                                                   {"path": "meta/name", "mode": 0o400, "fieldRef": {"fieldPath": "metadata.name"}}]}}]
        }))
        .unwrap();
        let f = projected_files(&ApiObjects::none(), &p, &v).await.unwrap();
        assert_eq!(
            f,
            [
                File { path: "namespace".into(), content: b"ns".to_vec(), mode: 0o440 },
                File { path: "meta/name".into(), content: b"p".to_vec(), mode: 0o400 },
            ]
        );
        // A token source needs the API server.
        let v: ProjectedVolumeSource = serde_json::from_value(serde_json::json!({"sources": [{"serviceAccountToken": {"path": "token"}}]})).unwrap();
        assert!(projected_files(&ApiObjects::none(), &p, &v).await.unwrap_err().starts_with("failed to fetch token: "));
    }
}
