//! configMap and secret volumes (projected ones in `volumes_projected`): the object's keys become files in the pod's volume directory
//! (`volumes/kubernetes.io~configmap/<volume>`, `…~secret/<volume>`), mounted read-only;
//! `items` pick and rename keys, `defaultMode`/`mode` set permissions, `optional` tolerates a
//! missing object or key. The files are written before each container start and again at the
//! periodic sync of a running pod (so changes of the objects, and refreshed ServiceAccount
//! tokens, reach running containers as upstream's remount does), laid out as upstream's atomic
//! writer does (`..data` → `..<timestamp>`, each name a symlink into it) and only when the
//! payload changed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{KeyToPath, Pod, ServiceAccount, Volume};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, PostParams};

use super::objects::{Keys, Objects};

/// Where configMap and secret objects are read from (none in unit tests).
#[derive(Clone)]
pub struct ApiObjects {
    client: Option<kube::Client>,
    timeout: Duration,
    tokens: super::token_cache::TokenCache,
    objects: Objects,
    /// The pod these reads are for.
    pod_uid: String,
}

impl ApiObjects {
    pub fn new(client: kube::Client, timeout: Duration, objects: Objects, pod_uid: &str) -> ApiObjects {
        ApiObjects { client: Some(client), timeout, tokens: Default::default(), objects, pod_uid: pod_uid.to_string() }
    }

    /// No API server: every read fails.
    pub fn none() -> ApiObjects {
        ApiObjects { client: None, timeout: Duration::ZERO, tokens: Default::default(), objects: Objects::none(), pod_uid: String::new() }
    }

    /// A token of the pod's ServiceAccount bound to the pod (TokenRequest, as upstream's
    /// token manager asks for it): `audience` or the API server's own, `expiration` seconds.
    /// A token still fresh from an earlier request is reused ([`super::token_cache`]).
    pub async fn token(&self, owner: &super::volumes_projected::TokenOwner<'_>, audience: Option<&str>, expiration: i64) -> Result<String, String> {
        let key = super::token_cache::TokenKey {
            namespace: owner.namespace.to_string(),
            service_account: owner.service_account.to_string(),
            pod_uid: owner.pod_uid.to_string(),
            audience: audience.map(str::to_string),
            expiration_seconds: expiration,
        };
        if let Some(token) = self.tokens.fresh(&key, jiff::Timestamp::now()) {
            return Ok(token);
        }
        let issued = self.request_token(owner, audience, expiration).await?;
        let token = issued.token.clone();
        self.tokens.store(key, issued);
        Ok(token)
    }

    async fn request_token(&self, owner: &super::volumes_projected::TokenOwner<'_>, audience: Option<&str>, expiration: i64) -> Result<super::token_cache::Issued, String> {
        let Some(client) = &self.client else { return Err("no API server to read from".into()) };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), owner.namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration),
                bound_object_ref: (!crate::faults::active(crate::faults::Fault::UnboundToken)).then(|| BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(owner.pod_name.into()),
                    uid: Some(owner.pod_uid.into()),
                }),
            },
            ..Default::default()
        };
        let op = format!("create token for serviceaccount {}/{}", owner.namespace, owner.service_account);
        let answer: TokenRequest = crate::error::api(op, self.timeout, api.create_subresource("token", owner.service_account, &PostParams::default(), &request))
            .await
            .map_err(|e| e.to_string())?;
        let expiration_seconds = answer.spec.expiration_seconds.unwrap_or(expiration);
        let status = answer.status.filter(|s| !s.token.is_empty()).ok_or_else(|| "the TokenRequest answer holds no token".to_string())?;
        Ok(super::token_cache::Issued { token: status.token, expires: status.expiration_timestamp.0, expiration_seconds })
    }

    /// The CRI runtime handler of RuntimeClass `class` (upstream's `LookupRuntimeHandler`); a
    /// class that does not exist is upstream's `runtimeclass.node.k8s.io "x" not found`.
    pub async fn runtime_handler(&self, class: &str) -> Result<String, String> {
        let Some(client) = &self.client else { return Err("no API server to read from".into()) };
        let api: Api<RuntimeClass> = Api::all(client.clone());
        match crate::error::api("get runtimeclass", self.timeout, api.get_opt(class)).await {
            Ok(Some(rc)) => Ok(rc.handler),
            Ok(None) => Err(format!("runtimeclass.node.k8s.io {class:?} not found")),
            Err(e) => Err(format!("failed to lookup RuntimeClass {class}: {e}")),
        }
    }

    /// Secret `ns/name`'s keys and type, `None` when it does not exist, read as
    /// [`ApiObjects::keys`] reads.
    pub async fn secret(&self, ns: &str, name: &str) -> Result<Option<(Arc<Keys>, String)>, String> {
        self.objects.secret(&self.pod_uid, ns, name).await
    }

    /// The keys of configMap (or secret) `ns/name`, `None` when it does not exist, read as
    /// the node's change detection strategy says ([`super::objects`]).
    pub async fn keys(&self, secret: bool, ns: &str, name: &str) -> Result<Option<Arc<Keys>>, String> {
        self.objects.keys(&self.pod_uid, secret, ns, name).await
    }
}

/// One configMap or secret volume, as the pod spec names it.
pub(super) struct Source<'a> {
    pub secret: bool,
    pub object: String,
    pub items: Option<&'a [KeyToPath]>,
    pub default_mode: Option<i32>,
    pub optional: bool,
}

impl Source<'_> {
    fn of(v: &Volume) -> Option<Source<'_>> {
        if let Some(c) = &v.config_map {
            return Some(Source {
                secret: false,
                object: c.name.clone(),
                items: c.items.as_deref(),
                default_mode: c.default_mode,
                optional: c.optional.unwrap_or(false),
            });
        }
        let s = v.secret.as_ref()?;
        Some(Source {
            secret: true,
            object: s.secret_name.clone().unwrap_or_default(),
            items: s.items.as_deref(),
            default_mode: s.default_mode,
            optional: s.optional.unwrap_or(false),
        })
    }

    fn kind(&self) -> &'static str {
        if self.secret { "secret" } else { "configmap" }
    }
}

/// The host directory of a configMap, secret or projected volume of pod `uid`.
pub fn host_dir(pod_dir: &Path, v: &Volume) -> Option<PathBuf> {
    if v.projected.is_some() {
        return Some(super::volumes_projected::host_dir(pod_dir, &v.name));
    }
    let plugin = if v.config_map.is_some() {
        "kubernetes.io~configmap"
    } else if v.secret.is_some() {
        "kubernetes.io~secret"
    } else {
        return None;
    };
    Some(pod_dir.join("volumes").join(plugin).join(&v.name))
}

/// A file of a volume: path relative to the volume, content, permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub mode: u32,
}

pub(super) fn relative(p: &str) -> Option<PathBuf> {
    let path = PathBuf::from(p);
    (!p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))).then_some(path)
}

/// The files of a volume from the object's keys (`None`: the object does not exist).
pub(super) fn files(src: &Source<'_>, keys: Option<&BTreeMap<String, Vec<u8>>>) -> Result<Vec<File>, String> {
    let mode = |m: Option<i32>| (m.or(src.default_mode).unwrap_or(0o644) & 0o777) as u32;
    let Some(keys) = keys else {
        return if src.optional { Ok(Vec::new()) } else { Err(format!("{} {:?} not found", src.kind(), src.object)) };
    };
    let Some(items) = src.items else {
        return keys
            .iter()
            .map(|(k, v)| {
                let path = relative(k).ok_or_else(|| format!("{} key {k:?} is not a valid file name", src.kind()))?;
                Ok(File { path, content: v.clone(), mode: mode(None) })
            })
            .collect();
    };
    let mut out = Vec::new();
    for it in items {
        let Some(content) = keys.get(&it.key) else {
            if src.optional {
                continue;
            }
            return Err(format!("{} references non-existent config key: {}", src.kind(), it.key));
        };
        let path = relative(&it.path).ok_or_else(|| format!("item path {:?} must be relative and may not contain '..'", it.path))?;
        out.push(File { path, content: content.clone(), mode: mode(it.mode) });
    }
    Ok(out)
}

/// Writes `files` into `dir` the way upstream's atomic writer does, so that a container that
/// already mounts `dir` sees the old set or the new one, never a mix: the files go into a fresh
/// `..<timestamp>` directory, the `..data` symlink is renamed over to point at it, and each
/// top-level name is a symlink into `..data`.
fn write(dir: &Path, files: &[File]) -> std::io::Result<()> {
    if unchanged(dir, files) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let stamp = format!("..{}", jiff::Timestamp::now().as_nanosecond());
    let fresh = dir.join(&stamp);
    std::fs::create_dir(&fresh)?;
    for f in files {
        let path = fresh.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.content)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    let visible: std::collections::BTreeSet<std::ffi::OsString> =
        files.iter().filter_map(|f| f.path.components().next()).map(|c| c.as_os_str().to_owned()).collect();
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name();
        let hidden = name.to_string_lossy().starts_with("..");
        if hidden && name != "..data" && name != std::ffi::OsStr::new(&stamp) {
            std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()))?;
        } else if !hidden && !visible.contains(&name) {
            std::fs::remove_file(e.path()).or_else(|_| std::fs::remove_dir_all(e.path()))?;
        }
    }
    for name in &visible {
        let link = dir.join(name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link)?;
        }
    }
    Ok(())
}

/// Whether `dir` already holds exactly `files` (upstream's `shouldWritePayload` is false):
/// the same paths, contents and modes under `..data`, and nothing else.
fn unchanged(dir: &Path, files: &[File]) -> bool {
    let data = dir.join("..data");
    let same = |f: &File| {
        let path = data.join(&f.path);
        let mode = path.metadata().map(|m| m.permissions().mode() & 0o7777).ok();
        mode == Some(f.mode) && std::fs::read(&path).is_ok_and(|c| c == f.content)
    };
    data.is_dir() && count_files(&data) == Some(files.len()) && files.iter().all(same)
}

/// Regular files under `dir`, recursively (`None` when unreadable).
fn count_files(dir: &Path) -> Option<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let ty = e.file_type().ok()?;
        n += if ty.is_dir() { count_files(&e.path())? } else { 1 };
    }
    Some(n)
}

/// Writes every configMap, secret and projected volume of `pod` under `pod_dir`; the error is
/// the message of upstream's FailedMount event.
pub async fn materialize(objects: &ApiObjects, pod: &Pod, pod_dir: &Path) -> Result<(), String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    for v in pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
        let Some(dir) = host_dir(pod_dir, v) else { continue };
        let failed = |why: String| setup_failed(v, why);
        let files = if let Some(p) = &v.projected {
            super::volumes_projected::projected_files(objects, pod, p).await.map_err(failed)?
        } else {
            let Some(src) = Source::of(v) else { continue };
            let keys = objects.keys(src.secret, ns, &src.object).await.map_err(failed)?;
            files(&src, keys.as_deref()).map_err(failed)?
        };
        write(&dir, &files).map_err(|e| failed(format!("writing {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Checks the types of the pod's hostPath volumes ([`super::host_path::check`]) before its
/// containers are created; not on a refresh, as upstream sets a hostPath volume up once.
pub fn check_host_paths(pod: &Pod) -> Result<(), String> {
    for v in pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
        if let Some(h) = &v.host_path {
            super::host_path::check(h).map_err(|why| setup_failed(v, why))?;
        }
    }
    Ok(())
}

/// Upstream's FailedMount text for volume `v`.
fn setup_failed(v: &Volume, why: String) -> String {
    format!("MountVolume.SetUp failed for volume {:?} : {why}", v.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(json: serde_json::Value) -> Volume {
        serde_json::from_value(json).unwrap()
    }

    fn keys() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())])
    }

    #[test]
    fn all_keys_or_the_items_with_their_modes() {
        let v = volume(serde_json::json!({"name": "cfg", "configMap": {"name": "c", "defaultMode": 0o600}}));
        let f = files(&Source::of(&v).unwrap(), Some(&keys())).unwrap();
        assert_eq!(f.iter().map(|f| (f.path.to_str().unwrap(), f.mode)).collect::<Vec<_>>(), [("a", 0o600), ("b", 0o600)]);
        let v = volume(serde_json::json!({"name": "cfg", "secret": {"secretName": "s", "items": [{"key": "b", "path": "sub/two", "mode": 0o400}]}}));
        let f = files(&Source::of(&v).unwrap(), Some(&keys())).unwrap();
        assert_eq!(f, [File { path: "sub/two".into(), content: b"2".to_vec(), mode: 0o400 }]);
    }

    #[test]
    fn missing_objects_and_keys_fail_unless_optional() {
        let v = volume(serde_json::json!({"name": "cfg", "configMap": {"name": "c"}}));
        assert_eq!(files(&Source::of(&v).unwrap(), None).unwrap_err(), "configmap \"c\" not found");
        let v = volume(serde_json::json!({"name": "cfg", "secret": {"secretName": "s", "optional": true}}));
        assert!(files(&Source::of(&v).unwrap(), None).unwrap().is_empty());
        let v = volume(serde_json::json!({"name": "cfg", "configMap": {"name": "c", "items": [{"key": "zz", "path": "z"}]}}));
        assert_eq!(files(&Source::of(&v).unwrap(), Some(&keys())).unwrap_err(), "configmap references non-existent config key: zz");
        let v = volume(serde_json::json!({"name": "cfg", "configMap": {"name": "c", "items": [{"key": "a", "path": "../x"}]}}));
        assert!(files(&Source::of(&v).unwrap(), Some(&keys())).is_err());
    }

    #[test]
    fn written_files_replace_the_previous_ones_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("v");
        write(&d, &[File { path: "old".into(), content: b"x".to_vec(), mode: 0o644 }, File { path: "keep".into(), content: b"1".to_vec(), mode: 0o644 }]).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&d);
        write(&d, &[File { path: "sub/new".into(), content: b"y".to_vec(), mode: 0o440 }, File { path: "keep".into(), content: b"2".to_vec(), mode: 0o644 }]).unwrap();
        // The directory itself stays (a container's bind mount of it keeps working).
        assert_eq!(inode(&d), before);
        assert!(!d.join("old").exists());
        assert_eq!(std::fs::read(d.join("sub/new")).unwrap(), b"y");
        assert_eq!(std::fs::read(d.join("keep")).unwrap(), b"2");
        assert_eq!(std::fs::metadata(d.join("sub/new")).unwrap().permissions().mode() & 0o777, 0o440);
        assert_eq!(std::fs::read_link(d.join("keep")).unwrap(), Path::new("..data/keep"));
        let hidden: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("..")).collect();
        assert_eq!(hidden.len(), 2, "..data and one timestamped directory: {hidden:?}");
    }
}
