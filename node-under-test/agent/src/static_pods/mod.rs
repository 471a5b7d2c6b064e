//! Static pods: pods read from manifest files in `staticPodPath` (not from the API), run by the
//! same pod workers, and represented in the API by mirror pods.
//!
//! [`manifest`] parses and defaults manifests (pure), [`source`] watches the directory and
//! publishes the desired [`StaticSet`], [`feed`] turns that set into pod-worker updates for the
//! pod manager (a new incarnation of a pod waits for the old one to terminate), and [`mirror`]
//! keeps one mirror pod per running static pod and writes the static pods' status to them.

pub mod feed;
pub mod manifest;
pub mod mirror;
pub mod source;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

/// Annotation with the hash (= UID) of a static pod's configuration.
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// Annotation on a mirror pod: the config hash of the static pod it mirrors.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
/// Annotation naming where a pod came from (`file` for static pods, `api` otherwise).
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// Annotation with the time the agent first saw the pod's configuration.
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
/// The value of [`CONFIG_SOURCE`] for static pods read from a directory.
pub const SOURCE_FILE: &str = "file";

/// The desired static pods, by UID.
pub type StaticSet = BTreeMap<String, Pod>;

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

/// True for a mirror pod (an API object that represents a static pod; it is never run).
pub fn is_mirror_pod(pod: &Pod) -> bool {
    annotation(pod, CONFIG_MIRROR).is_some()
}

/// True for a static pod (read from a manifest file).
pub fn is_static_pod(pod: &Pod) -> bool {
    annotation(pod, CONFIG_SOURCE) == Some(SOURCE_FILE) && !is_mirror_pod(pod)
}

/// The config hash of a static pod, or the mirrored hash of a mirror pod.
pub fn config_hash(pod: &Pod) -> Option<&str> {
    annotation(pod, CONFIG_MIRROR).or_else(|| annotation(pod, CONFIG_HASH))
}

/// `namespace/name` of a pod (namespace `default` when unset).
pub fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What [`start`] needs to know.
#[derive(Clone, Debug)]
pub struct Setup {
    /// `staticPodPath`; `None` disables static pods.
    pub dir: Option<std::path::PathBuf>,
    /// `fileCheckFrequency`.
    pub file_check: std::time::Duration,
    /// How often mirror pods are reconciled without an event (`syncFrequency`).
    pub resync: std::time::Duration,
    pub node_name: String,
    /// The Node's UID once it is registered (empty before): mirror pods wait for it, the
    /// static pods themselves do not.
    pub node_uid: tokio::sync::watch::Receiver<String>,
    pub api_timeout: std::time::Duration,
}

/// Reads the static pod directory once (so the first pod-manager pass already knows the static
/// pods) and spawns the directory source and the mirror reconciler into `tasks`.
pub fn start(
    setup: Setup,
    client: kube::Client,
    metrics: crate::metrics::Metrics,
    tasks: &mut tokio::task::JoinSet<()>,
    cancel: &tokio_util::sync::CancellationToken,
) -> (feed::StaticFeed, mirror::MirrorRegistry) {
    let Some(dir) = setup.dir else { return (feed::StaticFeed::disabled(), mirror::MirrorRegistry::default()) };
    tracing::info!(dir = %dir.display(), every = ?setup.file_check, "reading static pods");
    let mut src = source::DirSource::new(dir, setup.node_name.clone(), metrics);
    let (tx, rx) = tokio::sync::watch::channel(src.read());
    tasks.spawn(source::run_source(src, setup.file_check, tx, cancel.clone()));
    let registry = mirror::MirrorRegistry::enabled();
    let params = mirror::MirrorParams {
        node_name: setup.node_name,
        node_uid: setup.node_uid,
        api_timeout: setup.api_timeout,
        resync: setup.resync.max(std::time::Duration::from_millis(100)),
    };
    tasks.spawn(mirror::run_mirror_reconciler(client, registry.clone(), params, cancel.clone()));
    (feed::StaticFeed::new(Some(rx), registry.clone()), registry)
}
