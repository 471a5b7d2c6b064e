//! Static pod manifests: parsing (YAML or JSON, several documents per file) and the defaults the
//! agent applies (name `<name>-<node>`, namespace, nodeName, NoExecute toleration, UID and
//! `kubernetes.io/config.*` annotations from a stable hash of node, file and content).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Toleration};
use sha2::{Digest, Sha256};

use super::{CONFIG_HASH, CONFIG_SEEN, CONFIG_SOURCE, SOURCE_FILE};

/// A manifest that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading static pod manifest {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing static pod manifest {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid static pod in {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub type Result<T, E = ManifestError> = std::result::Result<T, E>;

/// True for file names the directory source reads (`.yaml`, `.yml`, `.json`; hidden files never).
pub fn is_manifest_name(name: &str) -> bool {
    !name.starts_with('.') && [".yaml", ".yml", ".json"].iter().any(|ext| name.ends_with(ext))
}

/// Parses every document of a manifest file into raw pods (not yet defaulted).
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Pod>> {
    let parse_err = |message: String| ManifestError::Parse { path: path.to_path_buf(), message };
    let docs: Vec<serde_json::Value> = if text.trim_start().starts_with('{') {
        vec![serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?]
    } else {
        serde_saphyr::from_multiple(text).map_err(|e| parse_err(e.to_string()))?
    };
    let mut pods = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let api_version = doc.get("apiVersion").and_then(|k| k.as_str()).unwrap_or_default();
        if kind != "Pod" || api_version != "v1" {
            return Err(parse_err(format!("document {i}: want apiVersion v1 kind Pod, got {api_version:?} {kind:?}")));
        }
        let pod: Pod = serde_json::from_value(doc).map_err(|e| parse_err(format!("document {i}: {e}")))?;
        pods.push(pod);
    }
    Ok(pods)
}

/// The stable configuration hash of a pod read from `path` on `node` (32 hex digits).
pub fn config_hash(pod: &Pod, node: &str, path: &Path) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(pod).unwrap_or_default());
    h.update(format!("host:{node}").as_bytes());
    h.update(format!("file:{}", path.display()).as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Validates and defaults a static pod read from `path`; `seen` becomes `config.seen`.
pub fn prepare(mut pod: Pod, node: &str, path: &Path, seen: &str) -> Result<Pod> {
    let invalid = |message: String| ManifestError::Invalid { path: path.to_path_buf(), message };
    let name = pod.metadata.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| invalid("metadata.name is required".into()))?;
    let spec = pod.spec.as_ref().ok_or_else(|| invalid(format!("pod {name}: spec is required")))?;
    if spec.containers.is_empty() {
        return Err(invalid(format!("pod {name}: spec.containers must not be empty")));
    }
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        if c.name.is_empty() || c.image.as_deref().unwrap_or_default().is_empty() {
            return Err(invalid(format!("pod {name}: every container needs a name and an image")));
        }
    }
    let uid = match pod.metadata.uid.clone().filter(|u| !u.is_empty()) {
        Some(uid) => uid,
        None => config_hash(&pod, node, path),
    };
    pod.metadata.uid = Some(uid.clone());
    pod.metadata.name = Some(format!("{name}-{}", node.to_lowercase()));
    if pod.metadata.namespace.as_deref().unwrap_or_default().is_empty() {
        pod.metadata.namespace = Some("default".into());
    }
    let annotations = pod.metadata.annotations.get_or_insert_with(Default::default);
    annotations.insert(CONFIG_HASH.into(), uid);
    annotations.insert(CONFIG_SOURCE.into(), SOURCE_FILE.into());
    annotations.insert(CONFIG_SEEN.into(), seen.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    let tol = Toleration { operator: Some("Exists".into()), effect: Some("NoExecute".into()), ..Default::default() };
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations.contains(&tol) {
        tolerations.push(tol);
    }
    pod.status = None;
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: workload\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  namespace: data\nspec:\n  containers:\n  - name: c\n    image: workload\n";

    #[test]
    fn parses_several_yaml_documents_and_json() {
        let p = Path::new("/m/a.yaml");
        let pods = parse_documents(p, TWO).unwrap();
        assert_eq!(pods.len(), 2);
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
        assert_eq!(parse_documents(Path::new("/m/j.json"), json).unwrap()[0].metadata.name.as_deref(), Some("j"));
    }

    #[test]
    fn rejects_other_kinds_and_garbage_naming_the_file() {
        let e = parse_documents(Path::new("/m/x.yaml"), "apiVersion: v1\nkind: Service\n").unwrap_err();
        assert!(e.to_string().contains("/m/x.yaml") && e.to_string().contains("Service"), "{e}");
        assert!(parse_documents(Path::new("/m/y.yaml"), "a: [").is_err());
    }

    #[test]
    fn prepare_applies_upstream_defaults() {
        let path = Path::new("/m/a.yaml");
        let pods = parse_documents(path, TWO).unwrap();
        let p = prepare(pods[0].clone(), "Node-A", path, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("web-node-a"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        let uid = p.metadata.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        let ann = p.metadata.annotations.clone().unwrap();
        assert_eq!(ann[CONFIG_HASH], uid);
        assert_eq!(ann[CONFIG_SOURCE], "file");
        let spec = p.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("Node-A"));
        let tol = &spec.tolerations.unwrap()[0];
        assert_eq!((tol.operator.as_deref(), tol.effect.as_deref(), tol.key.as_deref()), (Some("Exists"), Some("NoExecute"), None));
        let db = prepare(pods[1].clone(), "Node-A", path, "t").unwrap();
        assert_eq!(db.metadata.namespace.as_deref(), Some("data"));
    }

    #[test]
    fn uid_is_stable_and_depends_on_content_node_and_file() {
        let path = Path::new("/m/a.yaml");
        let pod = parse_documents(path, TWO).unwrap().remove(0);
        let a = prepare(pod.clone(), "n", path, "t1").unwrap().metadata.uid;
        assert_eq!(a, prepare(pod.clone(), "n", path, "t2").unwrap().metadata.uid, "seen time must not change the UID");
        assert_ne!(a, prepare(pod.clone(), "m", path, "t1").unwrap().metadata.uid);
        assert_ne!(a, prepare(pod.clone(), "n", Path::new("/m/b.yaml"), "t1").unwrap().metadata.uid);
        let mut changed = pod;
        changed.spec.as_mut().unwrap().containers[0].image = Some("other".into());
        assert_ne!(a, prepare(changed, "n", path, "t1").unwrap().metadata.uid);
    }

    #[test]
    fn invalid_pods_are_errors() {
        let path = Path::new("/m/a.yaml");
        let no_containers = parse_documents(path, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers: []\n").unwrap();
        assert!(prepare(no_containers[0].clone(), "n", path, "t").is_err());
        let no_name = parse_documents(path, "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    image: i\n").unwrap();
        assert!(prepare(no_name[0].clone(), "n", path, "t").is_err());
        assert!(is_manifest_name("a.yaml") && is_manifest_name("b.json") && !is_manifest_name(".a.yaml") && !is_manifest_name("a.txt"));
    }
}
