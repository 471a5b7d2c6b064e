//! Mirror pods: one API pod per running static pod (same name and namespace, annotation
//! `kubernetes.io/config.mirror` = the config hash, a controller owner reference to the Node),
//! recreated when deleted or stale, deleted when the static pod is gone (after it terminated).
//! Static pods' status is written to their mirror pod. [`plan`] is the pure decision; the
//! reconciler loop lists the node's pods and executes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::{CONFIG_MIRROR, config_hash, full_name, is_mirror_pod};
use crate::error::{Result, api};

/// What the reconciler knows about one mirror pod in the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorObs {
    pub uid: String,
    pub hash: String,
    pub deleting: bool,
}

impl MirrorObs {
    pub fn of(pod: &Pod) -> Option<MirrorObs> {
        if !is_mirror_pod(pod) {
            return None;
        }
        Some(MirrorObs {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            hash: config_hash(pod).unwrap_or_default().to_string(),
            deleting: pod.metadata.deletion_timestamp.is_some(),
        })
    }
}

/// One step of reconciling mirror pods.
#[derive(Clone, Debug, PartialEq)]
pub enum MirrorAction {
    /// Delete the mirror pod `full` (namespace/name) with this UID, at once.
    Delete { full: String, uid: String },
    /// Create the mirror pod of this static pod.
    Create(Box<Pod>),
    /// Write the cached status of static pod `static_uid` to its mirror pod.
    PushStatus { full: String, static_uid: String },
}

/// Decides the actions: `running` are the running static pods by full name, `holding` full names
/// whose static pod is terminating or waiting (their mirror pod is left alone), `mirrors` the mirror
/// pods in the API, `needs_push(static_uid, mirror_uid)` whether the mirror lacks the latest status.
pub fn plan(
    running: &BTreeMap<String, Pod>,
    holding: &BTreeSet<String>,
    mirrors: &HashMap<String, MirrorObs>,
    needs_push: impl Fn(&str, &str) -> bool,
) -> Vec<MirrorAction> {
    let mut out = Vec::new();
    for (full, pod) in running {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match mirrors.get(full) {
            None => out.push(MirrorAction::Create(Box::new(pod.clone()))),
            Some(m) if m.deleting || m.hash != uid => {
                out.push(MirrorAction::Delete { full: full.clone(), uid: m.uid.clone() });
                out.push(MirrorAction::Create(Box::new(pod.clone())));
            }
            Some(m) => {
                if needs_push(&uid, &m.uid) {
                    out.push(MirrorAction::PushStatus { full: full.clone(), static_uid: uid });
                }
            }
        }
    }
    let mut orphans: Vec<(&String, &MirrorObs)> =
        mirrors.iter().filter(|(f, _)| !running.contains_key(*f) && !holding.contains(*f)).collect();
    orphans.sort_by(|a, b| a.0.cmp(b.0));
    for (full, m) in orphans {
        out.push(MirrorAction::Delete { full: full.clone(), uid: m.uid.clone() });
    }
    out
}

/// The mirror pod of a static pod.
pub fn mirror_pod(static_pod: &Pod, node_name: &str, node_uid: &str) -> Pod {
    let mut p = static_pod.clone();
    let hash = p.metadata.uid.take().unwrap_or_default();
    p.metadata.resource_version = None;
    p.metadata.creation_timestamp = None;
    p.metadata.annotations.get_or_insert_with(Default::default).insert(CONFIG_MIRROR.into(), hash);
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node_name.to_string(),
        uid: node_uid.to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    p.status = None;
    p
}

#[derive(Default)]
struct State {
    running: BTreeMap<String, Pod>,
    holding: BTreeSet<String>,
    mirrors: HashMap<String, MirrorObs>,
    statuses: HashMap<String, PodStatus>,
    /// static uid → the mirror uid that has its latest status.
    pushed: HashMap<String, String>,
}

struct Inner {
    state: Mutex<State>,
    write: tokio::sync::Mutex<()>,
    changed: Notify,
}

/// Shared between the static feed (which pods run), the pod workers (status writes) and the
/// reconciler. The default is disabled (no static pods): status writes are no-ops.
#[derive(Clone, Default)]
pub struct MirrorRegistry(Option<Arc<Inner>>);

impl std::fmt::Debug for MirrorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorRegistry").field("enabled", &self.0.is_some()).finish()
    }
}

impl MirrorRegistry {
    pub fn enabled() -> MirrorRegistry {
        MirrorRegistry(Some(Arc::new(Inner {
            state: Mutex::new(State::default()),
            write: tokio::sync::Mutex::new(()),
            changed: Notify::new(),
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        let inner = self.0.as_ref()?;
        let mut g = inner.state.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(&mut g))
    }

    /// Records which static pods run and which names are held (terminating or waiting).
    pub fn set_static_view(&self, running: BTreeMap<String, Pod>, holding: BTreeSet<String>) {
        self.with(|s| {
            let keep: BTreeSet<String> = running.values().filter_map(|p| p.metadata.uid.clone()).collect();
            s.statuses.retain(|uid, _| keep.contains(uid));
            s.pushed.retain(|uid, _| keep.contains(uid));
            s.running = running;
            s.holding = holding;
        });
        if let Some(i) = &self.0 {
            i.changed.notify_one();
        }
    }

    /// Writes a static pod's status to its mirror pod (or caches it until the mirror exists).
    pub async fn write_status(&self, client: &kube::Client, timeout: Duration, pod: &Pod, status: &PodStatus) -> Result<()> {
        let Some(inner) = &self.0 else { return Ok(()) };
        let _w = inner.write.lock().await;
        let static_uid = pod.metadata.uid.clone().unwrap_or_default();
        let full = full_name(pod);
        let target = self.with(|s| {
            s.statuses.insert(static_uid.clone(), status.clone());
            s.pushed.remove(&static_uid);
            s.mirrors.get(&full).filter(|m| m.hash == static_uid && !m.deleting).map(|m| m.uid.clone())
        });
        let Some(Some(mirror_uid)) = target else { return Ok(()) };
        patch_status(client, timeout, pod, &mirror_uid, status).await?;
        self.with(|s| s.pushed.insert(static_uid, mirror_uid));
        Ok(())
    }

    async fn push(&self, client: &kube::Client, timeout: Duration, full: &str, static_uid: &str) -> Result<()> {
        let Some(inner) = &self.0 else { return Ok(()) };
        let _w = inner.write.lock().await;
        let found = self.with(|s| {
            let status = s.statuses.get(static_uid).cloned()?;
            let pod = s.running.get(full).cloned()?;
            let m = s.mirrors.get(full).filter(|m| m.hash == static_uid && !m.deleting)?;
            (s.pushed.get(static_uid) != Some(&m.uid)).then(|| (status, pod, m.uid.clone()))
        });
        let Some(Some((status, pod, mirror_uid))) = found else { return Ok(()) };
        patch_status(client, timeout, &pod, &mirror_uid, &status).await?;
        self.with(|s| s.pushed.insert(static_uid.to_string(), mirror_uid));
        Ok(())
    }
}

async fn patch_status(client: &kube::Client, timeout: Duration, pod: &Pod, mirror_uid: &str, status: &PodStatus) -> Result<()> {
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let patch = crate::pods::status::status_patch(mirror_uid, status);
    api("patch mirror pod status", timeout, pods.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))).await?;
    Ok(())
}

/// Where the reconciler creates mirror pods and how often it resyncs.
#[derive(Clone, Debug)]
pub struct MirrorParams {
    pub node_name: String,
    /// Empty until the Node is registered.
    pub node_uid: watch::Receiver<String>,
    pub api_timeout: Duration,
    pub resync: Duration,
}

fn split(full: &str) -> (&str, &str) {
    full.split_once('/').unwrap_or(("default", full))
}

async fn pass(client: &kube::Client, reg: &MirrorRegistry, p: &MirrorParams) -> Result<()> {
    let all: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={}", p.node_name));
    let list = api("list pods for mirror pods", p.api_timeout, all.list(&lp)).await?;
    let mirrors: HashMap<String, MirrorObs> =
        list.items.iter().filter_map(|pod| MirrorObs::of(pod).map(|m| (full_name(pod), m))).collect();
    let Some((running, holding, pushed, cached)) = reg.with(|s| {
        s.mirrors = mirrors.clone();
        (s.running.clone(), s.holding.clone(), s.pushed.clone(), s.statuses.keys().cloned().collect::<BTreeSet<_>>())
    }) else {
        return Ok(());
    };
    let actions = plan(&running, &holding, &mirrors, |s, m| cached.contains(s) && pushed.get(s).map(String::as_str) != Some(m));
    for a in actions {
        match a {
            MirrorAction::Delete { full, uid } => {
                let (ns, name) = split(&full);
                let api_ns: Api<Pod> = Api::namespaced(client.clone(), ns);
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
                    ..Default::default()
                };
                tracing::info!(pod = %full, %uid, "deleting mirror pod");
                match api("delete mirror pod", p.api_timeout, api_ns.delete(name, &dp)).await {
                    Ok(_) => {}
                    Err(e) if matches!(e.api_code(), Some(404) | Some(409)) => {}
                    Err(e) => return Err(e),
                }
                reg.with(|s| {
                    if s.mirrors.get(&full).is_some_and(|m| m.uid == uid) {
                        s.mirrors.remove(&full);
                    }
                });
            }
            MirrorAction::Create(pod) => {
                let node_uid = p.node_uid.borrow().clone();
                if node_uid.is_empty() {
                    tracing::debug!("node not registered yet; mirror pods wait");
                    continue;
                }
                let full = full_name(&pod);
                let (ns, _) = split(&full);
                let api_ns: Api<Pod> = Api::namespaced(client.clone(), ns);
                if crate::faults::active(crate::faults::Fault::NoMirrorPods) {
                    continue;
                }
                let mirror = mirror_pod(&pod, &p.node_name, &node_uid);
                match api("create mirror pod", p.api_timeout, api_ns.create(&PostParams::default(), &mirror)).await {
                    Ok(created) => {
                        tracing::info!(pod = %full, uid = ?created.metadata.uid, "created mirror pod");
                        if let Some(m) = MirrorObs::of(&created) {
                            reg.with(|s| s.mirrors.insert(full.clone(), m));
                        }
                        let static_uid = pod.metadata.uid.clone().unwrap_or_default();
                        reg.push(client, p.api_timeout, &full, &static_uid).await?;
                    }
                    Err(e) if e.api_code() == Some(409) => {
                        tracing::warn!(pod = %full, error = %e, "mirror pod name taken; will retry");
                    }
                    Err(e) => return Err(e),
                }
            }
            MirrorAction::PushStatus { full, static_uid } => reg.push(client, p.api_timeout, &full, &static_uid).await?,
        }
    }
    Ok(())
}

/// Keeps the mirror pods in line with the static pods until `cancel` fires: on every static pod
/// change, every event about a mirror pod of this node, and every `resync`.
pub async fn run_mirror_reconciler(client: kube::Client, reg: MirrorRegistry, mut p: MirrorParams, cancel: CancellationToken) {
    let Some(inner) = reg.0.clone() else { return };
    let pods: Api<Pod> = Api::all(client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", p.node_name)).timeout(30);
    let mut events = watcher(pods, cfg).default_backoff().boxed();
    let mut tick = tokio::time::interval(p.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = inner.changed.notified() => {}
            _ = tick.tick() => {}
            // Registered: mirror pods can be created now.
            Ok(()) = p.node_uid.changed() => {}
            ev = events.next() => match ev {
                Some(Ok(watcher::Event::Apply(pod))) | Some(Ok(watcher::Event::Delete(pod))) if is_mirror_pod(&pod) => {}
                Some(_) => continue,
                None => return,
            },
        }
        if let Err(e) = pass(&client, &reg, &p).await {
            tracing::warn!(error = %e, "mirror pod reconcile failed; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn static_pod(name: &str, uid: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(uid.into());
        p.metadata.annotations = Some([(super::super::CONFIG_HASH.to_string(), uid.to_string())].into());
        p
    }

    fn obs(uid: &str, hash: &str, deleting: bool) -> MirrorObs {
        MirrorObs { uid: uid.into(), hash: hash.into(), deleting }
    }

    #[test]
    fn creates_missing_and_replaces_stale_or_deleting_mirrors() {
        let running: BTreeMap<_, _> = [
            ("default/a-n".to_string(), static_pod("a-n", "h1")),
            ("default/b-n".to_string(), static_pod("b-n", "h2")),
            ("default/c-n".to_string(), static_pod("c-n", "h3")),
            ("default/d-n".to_string(), static_pod("d-n", "h4")),
        ]
        .into();
        let mirrors: HashMap<_, _> = [
            ("default/b-n".to_string(), obs("m2", "old", false)),
            ("default/c-n".to_string(), obs("m3", "h3", true)),
            ("default/d-n".to_string(), obs("m4", "h4", false)),
        ]
        .into();
        let acts = plan(&running, &BTreeSet::new(), &mirrors, |_, _| false);
        let kinds: Vec<String> = acts
            .iter()
            .map(|a| match a {
                MirrorAction::Delete { uid, .. } => format!("delete {uid}"),
                MirrorAction::Create(p) => format!("create {}", p.metadata.name.clone().unwrap()),
                MirrorAction::PushStatus { static_uid, .. } => format!("push {static_uid}"),
            })
            .collect();
        assert_eq!(kinds, ["create a-n", "delete m2", "create b-n", "delete m3", "create c-n"]);
        let acts = plan(&running, &BTreeSet::new(), &mirrors, |s, m| s == "h4" && m == "m4");
        assert!(acts.contains(&MirrorAction::PushStatus { full: "default/d-n".into(), static_uid: "h4".into() }));
    }

    #[test]
    fn orphans_are_deleted_unless_held() {
        let mirrors: HashMap<_, _> =
            [("default/x-n".to_string(), obs("mx", "hx", false)), ("default/y-n".to_string(), obs("my", "hy", false))].into();
        let holding: BTreeSet<_> = ["default/y-n".to_string()].into();
        let acts = plan(&BTreeMap::new(), &holding, &mirrors, |_, _| true);
        assert_eq!(acts, [MirrorAction::Delete { full: "default/x-n".into(), uid: "mx".into() }]);
    }

    #[test]
    fn mirror_pod_shape() {
        let m = mirror_pod(&static_pod("a-n", "h1"), "n", "node-uid");
        assert_eq!(m.metadata.uid, None);
        assert_eq!(m.metadata.annotations.as_ref().unwrap()[CONFIG_MIRROR], "h1");
        let owners = m.metadata.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        let o = &owners[0];
        assert_eq!((o.api_version.as_str(), o.kind.as_str(), o.name.as_str(), o.uid.as_str(), o.controller), ("v1", "Node", "n", "node-uid", Some(true)));
        assert!(is_mirror_pod(&mirror_pod(&static_pod("a", "h"), "n", "u")));
    }
}
