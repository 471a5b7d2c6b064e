//! Watches the node's pods (`spec.nodeName=<node>`) and runs one worker per pod uid; after the
//! initial list, sandboxes of pods the API no longer has are handed to a worker that removes them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::runner::{WorkerDeps, run_pod_worker};
use crate::cri::{Runtime, keys};

struct Workers<R> {
    deps: Arc<WorkerDeps<R>>,
    senders: HashMap<String, watch::Sender<Option<Pod>>>,
    tasks: JoinSet<String>,
    cancel: CancellationToken,
}

impl<R: Runtime> Workers<R> {
    fn update(&mut self, uid: &str, pod: Option<Pod>) {
        match &pod {
            Some(p) => self.deps.pods.set(uid, p.clone()),
            None => self.deps.pods.remove(uid),
        }
        if let Some(tx) = self.senders.get(uid) {
            // The worker always reads the newest object; it is woken only for what it acts on.
            tx.send_if_modified(|cur| {
                let wake = match (cur.as_ref(), pod.as_ref()) {
                    (Some(old), Some(new)) => super::changes::sync_needed(old, new),
                    _ => true,
                };
                *cur = pod;
                wake
            });
            return;
        }
        let (tx, rx) = watch::channel(pod);
        let deps = self.deps.clone();
        let cancel = self.cancel.clone();
        let uid_owned = uid.to_string();
        self.tasks.spawn(async move {
            run_pod_worker(deps, uid_owned.clone(), rx, cancel).await;
            uid_owned
        });
        self.senders.insert(uid.to_string(), tx);
        self.deps.metrics.pod_workers.add(1);
    }

    fn finished(&mut self, uid: &str) {
        self.deps.pods.remove(uid);
        self.deps.objects.release(uid);
        if self.senders.remove(uid).is_some() {
            self.deps.metrics.pod_workers.add(-1);
        }
    }
}

/// A minimal Pod for an orphaned sandbox (name, namespace, uid from its labels).
fn orphan_pod(labels: &HashMap<String, String>) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = labels.get(keys::POD_NAME).cloned();
    p.metadata.namespace = labels.get(keys::POD_NAMESPACE).cloned();
    p.metadata.uid = labels.get(keys::POD_UID).cloned();
    p.spec = Some(Default::default());
    p
}

async fn adopt_orphans<R: Runtime>(w: &mut Workers<R>, known: &HashSet<String>) {
    let sandboxes = match w.deps.runtime.list_pod_sandboxes(HashMap::new()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "listing sandboxes for orphan cleanup failed");
            return;
        }
    };
    for sb in sandboxes {
        let Some(uid) = sb.labels.get(keys::POD_UID).cloned() else { continue };
        if known.contains(&uid) || w.senders.contains_key(&uid) {
            continue;
        }
        tracing::info!(%uid, "removing sandbox of a pod unknown to the API");
        let pod = orphan_pod(&sb.labels);
        w.update(&uid, Some(pod));
        w.update(&uid, None);
    }
}

/// Runs until cancelled; workers are stopped with it (containers keep running).
/// Static pods come from `statics`; API pods that mirror a static pod are never run.
pub async fn run_pod_manager<R: Runtime>(
    deps: Arc<WorkerDeps<R>>,
    node_name: String,
    mut statics: crate::static_pods::feed::StaticFeed,
    cancel: CancellationToken,
) {
    let pods: Api<Pod> = Api::all(deps.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={node_name}")).timeout(30);
    let mut stream = watcher(pods, cfg).default_backoff().boxed();
    let mut w = Workers { deps, senders: HashMap::new(), tasks: JoinSet::new(), cancel: cancel.child_token() };
    let mut listing: HashSet<String> = HashSet::new();
    let mut first_list_done = false;
    for (uid, p) in statics.updates(|u| w.senders.contains_key(u)) {
        w.update(&uid, p);
    }
    // Upstream's sync loop ticks every second; its health is what /healthz reports.
    let mut sync_tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sync_tick.tick() => w.deps.health.sync_loop_tick(),
            Some(done) = w.tasks.join_next(), if !w.tasks.is_empty() => {
                if let Ok(uid) = done {
                    w.finished(&uid);
                    for (uid, p) in statics.worker_finished(&uid) {
                        w.update(&uid, p);
                    }
                }
            }
            _ = statics.changed() => {
                for (uid, p) in statics.updates(|u| w.senders.contains_key(u)) {
                    w.update(&uid, p);
                }
            }
            ev = stream.next() => {
                let Some(ev) = ev else { break };
                match ev {
                    Ok(watcher::Event::Init) => listing.clear(),
                    Ok(watcher::Event::InitApply(p)) | Ok(watcher::Event::Apply(p)) => {
                        if let Some(uid) = p.metadata.uid.clone()
                            && !crate::static_pods::is_mirror_pod(&p)
                        {
                            listing.insert(uid.clone());
                            let p = if w.senders.contains_key(&uid) { p } else { crate::eviction::admission::admit(&w.deps.pressure, p) };
                            w.update(&uid, Some(p));
                        }
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        if let Some(uid) = p.metadata.uid.clone()
                            && !crate::static_pods::is_mirror_pod(&p)
                        {
                            // The listing holds the pods the API has now: it shrinks as they go.
                            listing.remove(&uid);
                            w.update(&uid, None);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        let keep = crate::faults::active(crate::faults::Fault::KeepStalePods);
                        let stale: Vec<String> =
                            w.senders.keys().filter(|u| !keep && !listing.contains(*u) && !statics.contains(u)).cloned().collect();
                        for uid in stale {
                            w.update(&uid, None);
                        }
                        if !first_list_done {
                            first_list_done = true;
                            let mut known = listing.clone();
                            known.extend(statics.uids());
                            adopt_orphans(&mut w, &known).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "pod watch error"),
                }
            }
        }
    }
    w.cancel.cancel();
    while w.tasks.join_next().await.is_some() {}
    w.deps.objects.shutdown().await;
}
