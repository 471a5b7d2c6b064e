//! One pod's worker task: observe the runtime, step the state machine, execute its actions,
//! run probe tasks, write status (strategic merge patch) and finish API deletion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::effects::Effects;
use super::events::{PodRef, Recorder};
use super::kills::KillTasks;
use super::model::{Observation, Outcome, RunState};
use super::observe::{observe_runtime, pod_view};
use super::spec::SpecContext;
use super::status::{StatusContext, compute_status, status_patch};
use super::worker::{Action, PodState, WorkerParams, step};
use crate::cri::Runtime;
use crate::error::api;
use crate::metrics::Metrics;
use crate::probes::{ProbeBoard, ProbeTask, spawn_probes};

/// Shared dependencies of all pod workers.
pub struct WorkerDeps<R> {
    pub runtime: Arc<R>,
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub spec_ctx: Arc<SpecContext>,
    pub params: WorkerParams,
    /// Retry delay after the runtime could not be observed.
    pub relist: Duration,
    /// A worker syncs at least this often without a wake-up (upstream syncFrequency).
    pub resync: Duration,
    /// Health: the PLEG that wakes workers, and the sync loop.
    pub health: crate::health::Health,
    pub api_timeout: Duration,
    pub runtime_name: String,
    pub host_ip: Option<String>,
    /// Static pods' status goes to their mirror pods through this registry.
    pub mirrors: crate::static_pods::mirror::MirrorRegistry,
    /// Node pressure, for admitting new pods.
    pub pressure: crate::eviction::PressureHandle,
    /// The pods being run, for the kubelet API.
    pub pods: super::registry::PodRegistry,
    /// The configMaps and secrets the pods use.
    pub objects: super::objects::Objects,
    /// The cluster's Services.
    pub services: super::services::Services,
    /// The node's own image pull credentials (its docker config files).
    pub node_credentials: Arc<super::node_credentials::NodeCredentials>,
}

struct ProbeSet {
    tasks: tokio::task::JoinSet<()>,
    tokens: HashMap<String, CancellationToken>,
    board: ProbeBoard,
    terminating: watch::Sender<bool>,
}

impl ProbeSet {
    fn sync<R: Runtime>(&mut self, deps: &WorkerDeps<R>, pod: &Pod, obs: &Observation, cancel: &CancellationToken) {
        let running: HashMap<&str, _> = obs
            .containers
            .iter()
            .filter(|c| c.state == RunState::Running)
            .map(|c| (c.id.as_str(), c))
            .collect();
        self.tokens.retain(|id, token| {
            let keep = running.contains_key(id.as_str());
            if !keep {
                token.cancel();
                self.board.remove(id);
            }
            keep
        });
        let Some(spec) = pod.spec.as_ref() else { return };
        for (id, c) in running {
            if self.tokens.contains_key(id) {
                continue;
            }
            let sidecars = spec.init_containers.iter().flatten().filter(|s| s.restart_policy.as_deref() == Some("Always"));
            let Some(container) = spec.containers.iter().chain(sidecars).find(|s| s.name == c.name) else { continue };
            if container.liveness_probe.is_none() && container.readiness_probe.is_none() && container.startup_probe.is_none() {
                continue;
            }
            let token = cancel.child_token();
            let task = ProbeTask {
                runtime: deps.runtime.clone(),
                board: self.board.clone(),
                recorder: deps.recorder.clone(),
                metrics: deps.metrics.clone(),
                pod: PodRef { name: obs.pod.name.clone(), namespace: obs.pod.namespace.clone(), uid: obs.pod.uid.clone() },
                container: container.clone(),
                container_id: id.to_string(),
                pod_ip: obs.sandbox.as_ref().and_then(|s| s.ip.clone()).or_else(|| {
                    spec.host_network.unwrap_or(false).then(|| deps.host_ip.clone()).flatten()
                }),
                started_at: c.started_at.unwrap_or(obs.now),
                terminating: self.terminating.subscribe(),
            };
            spawn_probes(&mut self.tasks, task, token.clone());
            self.tokens.insert(id.to_string(), token);
        }
    }

    async fn shutdown(mut self) {
        for t in self.tokens.values() {
            t.cancel();
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

/// How long a stopping worker waits for its cancelled kill tasks before aborting them.
const KILL_SHUTDOWN: Duration = Duration::from_secs(5);

/// Runs the worker of pod `uid` until the pod is gone and cleaned up, or `cancel` fires
/// (then running containers are left running, like the kubelet).
pub async fn run_pod_worker<R: Runtime>(
    deps: Arc<WorkerDeps<R>>,
    uid: String,
    mut pod_rx: watch::Receiver<Option<Pod>>,
    cancel: CancellationToken,
) {
    let effects = Effects {
        runtime: deps.runtime.clone(),
        recorder: deps.recorder.clone(),
        spec_ctx: deps.spec_ctx.clone(),
        objects: super::volumes::ApiObjects::new(deps.client.clone(), deps.api_timeout, deps.objects.clone(), &uid),
        services: deps.services.clone(),
        node_credentials: deps.node_credentials.clone(),
    };
    let mut st = PodState::new(deps.params);
    let mut last_pod: Option<Pod> = None;
    let mut outcomes: Vec<Outcome> = Vec::new();
    // The last status handed to the writer (written, or queued for writing).
    let mut queued: Option<PodStatus> = None;
    let writer = super::status_writer::StatusWriter::spawn(Arc::new(ApiWriter(deps.clone())), uid.clone(), cancel.child_token());
    let mut prev_status: Option<PodStatus> = None;
    let first_seen = Instant::now();
    let mut deleted_in_api = false;
    let (terminating, _) = watch::channel(false);
    let mut probes = ProbeSet { tasks: tokio::task::JoinSet::new(), tokens: HashMap::new(), board: ProbeBoard::default(), terminating };
    let board_changed = probes.board.changed.clone();
    let mut busy_streak = 0u32;
    let mut messages: HashMap<String, String> = HashMap::new();
    let mut kills = KillTasks::new(cancel.child_token());
    let relisted = deps.health.pleg().subscribe(&uid);
    // The runtime as left by this worker's own start actions, used instead of observing anew.
    let mut reuse: Option<super::observe::RuntimePod> = None;
    let mut volumes_refreshed = Instant::now();
    let mut first_sync = true;
    loop {
        while let Some(o) = kills.try_next() {
            outcomes.push(o);
            reuse = None;
        }
        let current = pod_rx.borrow_and_update().clone();
        let gone = current.is_none();
        if let Some(p) = current {
            if prev_status.is_none() {
                prev_status = p.status.clone();
            }
            last_pod = Some(p);
        }
        let Some(pod) = last_pod.clone() else { break };
        let mut view = pod_view(&pod, gone || deleted_in_api);
        let sync_started = Instant::now();
        let continued = reuse.is_some();
        // A pod the PLEG's last relist did not see has nothing in the runtime: its first sync
        // goes on from that, as upstream's pod worker starts from the pod cache.
        let fresh = first_sync && deps.health.pleg().known_empty(&uid);
        first_sync = false;
        let observed = match reuse.take() {
            Some(rt) => Ok(rt),
            None if fresh => Ok(super::observe::RuntimePod::default()),
            None => observe_runtime(deps.runtime.as_ref(), &uid).await,
        };
        let rt = match observed {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(error = %e, %uid, "observing the runtime failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(deps.relist) => continue,
                }
            }
        };
        deps.health.pleg().observed(&uid, rt.fingerprint.clone());
        // Checked after the runtime was observed: the eviction marks the pod before it stops any
        // container, so a container seen stopped by an eviction is never seen without the mark.
        if let Some(message) = deps.pressure.evicted(&uid) {
            view.api_terminal = Some((false, Some("Evicted".into()), Some(message)));
        }
        let _ = probes.terminating.send(view.deletion.is_some());
        let nothing_left = rt.containers.is_empty() && rt.all_sandboxes.is_empty();
        let mut obs = Observation {
            now: jiff::Timestamp::now(),
            pod: view,
            sandbox: rt.sandbox,
            containers: rt.containers,
            probes: HashMap::new(),
            outcomes: std::mem::take(&mut outcomes),
        };
        probes.sync(&deps, &pod, &obs, &cancel);
        obs.probes = probes.board.snapshot();
        if gone && (st.delete_requested || nothing_left) {
            break;
        }
        let (next, actions) = step(st, &obs);
        st = next;
        let wake = actions.iter().filter_map(|a| match a {
            Action::WakeAt(t) => Some(*t),
            _ => None,
        }).min();
        // A kill's completion wakes the worker by itself.
        let busy = actions.iter().any(|a| !matches!(a, Action::WakeAt(_) | Action::Event { .. } | Action::KillContainer { .. }));
        let again = busy && busy_streak < 3;
        // Like upstream's sync: the status of this observation.
        let status = (!gone && !deleted_in_api).then(|| {
            read_messages(&deps.spec_ctx, &pod, &obs, &mut messages);
            let cx = StatusContext { runtime_name: &deps.runtime_name, host_ip: deps.host_ip.as_deref(), messages: messages.clone() };
            compute_status(&pod, &obs, &st, &cx, prev_status.as_ref())
        });
        if writer.take_failed() {
            queued = None;
        }
        // Upstream's sync publishes the status it computed, then creates the sandbox and starts
        // the containers in the same pass; the next status comes from the next sync. A status
        // computed between this worker's own starts (a sandbox made, its containers not yet
        // started) is replaced within milliseconds and is not written.
        let between_own_starts = continued && again && starts_only(&actions);
        // Like upstream's status manager: the status is written by its own task while the
        // worker goes on.
        if let Some(s) = status.as_ref().filter(|s| queued.as_ref() != Some(*s) && !between_own_starts) {
            writer.send(&pod, s.clone());
            queued = Some(s.clone());
        }
        let done = effects.execute(&pod, &obs, &actions, &mut kills).await;
        if again && starts_only(&actions) {
            let prev = super::observe::RuntimePod {
                sandbox: obs.sandbox.clone(),
                all_sandboxes: rt.all_sandboxes.clone(),
                containers: obs.containers.clone(),
                fingerprint: rt.fingerprint.clone(),
            };
            match super::observe::after_own_starts(deps.runtime.as_ref(), prev, &done).await {
                Ok(n) => reuse = n,
                Err(e) => tracing::warn!(error = %e, %uid, "reading what was started failed"),
            }
        }
        outcomes.extend(done);
        deps.metrics.pod_sync_duration.observe(sync_started.elapsed());
        if let Some(status) = status {
            if started_running(prev_status.as_ref(), &status) {
                deps.metrics.pod_start_duration.observe(first_seen.elapsed());
            }
            prev_status = Some(status);
        }
        if actions.contains(&Action::DeleteFromApi) && !deleted_in_api {
            // The final status is written before the object goes.
            writer.flush().await;
            match delete_in_api(&deps, &pod).await {
                Ok(()) => deleted_in_api = true,
                Err(e) => {
                    tracing::warn!(error = %e, %uid, "completing pod deletion failed; will retry");
                    st.delete_requested = false;
                }
            }
        }
        // Step again at once after changing the runtime (bounded, so failing effects cannot spin).
        if again {
            busy_streak += 1;
            continue;
        }
        busy_streak = 0;
        let running = prev_status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let refresh_due = volumes_refreshed.elapsed() >= deps.resync && !crate::faults::active(crate::faults::Fault::NoVolumeRefresh);
        if running && !gone && !deleted_in_api && pod.metadata.deletion_timestamp.is_none() && refresh_due {
            effects.refresh_volumes(&pod).await;
            volumes_refreshed = Instant::now();
        }
        let now = jiff::Timestamp::now();
        let mut sleep_for = deps.resync;
        if let Some(w) = wake {
            let ns = (w.as_nanosecond() - now.as_nanosecond()).max(0);
            sleep_for = sleep_for.min(Duration::from_nanos(ns as u64));
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = pod_rx.changed() => {
                if r.is_err() {
                    break;
                }
            }
            _ = board_changed.notified() => {}
            _ = relisted.notified() => {}
            o = kills.next() => outcomes.push(o),
            _ = tokio::time::sleep(sleep_for) => {}
        }
    }
    deps.health.pleg().unsubscribe(&uid);
    writer.shutdown().await;
    kills.shutdown(KILL_SHUTDOWN).await;
    probes.shutdown().await;
}

/// True when a step only created a sandbox or started containers (nothing removed or killed).
fn starts_only(actions: &[Action]) -> bool {
    actions.iter().all(|a| match a {
        Action::CreateSandbox { .. } | Action::Event { .. } | Action::WakeAt(_) => true,
        Action::StartContainer { remove, .. } => remove.is_empty(),
        _ => false,
    })
}

/// True when this status is the pod's first Running one (a pod adopted already running is not).
fn started_running(prev: Option<&PodStatus>, status: &PodStatus) -> bool {
    let running = |s: Option<&PodStatus>| s.and_then(|s| s.phase.as_deref()) == Some("Running");
    running(Some(status)) && !running(prev)
}

/// Reads the termination messages of newly exited containers (once per container).
fn read_messages(ctx: &SpecContext, pod: &Pod, obs: &Observation, cache: &mut HashMap<String, String>) {
    let Some(spec) = pod.spec.as_ref() else { return };
    for c in obs.containers.iter().filter(|c| c.state == RunState::Exited) {
        if cache.contains_key(&c.id) {
            continue;
        }
        let Some(sc) = spec.containers.iter().chain(spec.init_containers.iter().flatten()).find(|s| s.name == c.name) else {
            continue;
        };
        let file = super::spec::termination_message_file(&ctx.root_dir, &obs.pod.uid, &c.name, c.restart_count);
        let log = super::spec::pod_log_dir(&ctx.root_dir, pod).join(&c.name).join(format!("{}.log", c.restart_count));
        let msg = super::spec::read_termination_message(&file, sc.termination_message_policy.as_deref(), c.exit_code != 0, &log);
        cache.insert(c.id.clone(), msg.unwrap_or_default());
    }
    cache.retain(|id, _| obs.containers.iter().any(|c| &c.id == id));
}

/// The worker's status write: the pod's status subresource, or its mirror pod's.
struct ApiWriter<R>(Arc<WorkerDeps<R>>);

impl<R: Send + Sync + 'static> super::status_writer::WriteStatus for ApiWriter<R> {
    async fn write(&self, pod: &Pod, status: &PodStatus) -> crate::Result<()> {
        write_status(&self.0, pod, status).await
    }
}

async fn write_status<R>(deps: &WorkerDeps<R>, pod: &Pod, status: &PodStatus) -> crate::Result<()> {
    if crate::static_pods::is_static_pod(pod) {
        return deps.mirrors.write_status(&deps.client, deps.api_timeout, pod, status).await;
    }
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(deps.client.clone(), &ns);
    let patch = status_patch(pod.metadata.uid.as_deref().unwrap_or_default(), status);
    api("patch pod status", deps.api_timeout, pods.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))).await?;
    Ok(())
}

async fn delete_in_api<R>(deps: &WorkerDeps<R>, pod: &Pod) -> crate::Result<()> {
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(deps.client.clone(), &ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    match api("delete pod", deps.api_timeout, pods.delete(&name, &dp)).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.api_code(), Some(404) | Some(409)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_start_is_the_first_running_status() {
        let phase = |p: &str| PodStatus { phase: Some(p.into()), ..Default::default() };
        assert!(started_running(None, &phase("Running")));
        assert!(started_running(Some(&phase("Pending")), &phase("Running")));
        assert!(!started_running(Some(&phase("Running")), &phase("Running")));
        assert!(!started_running(Some(&phase("Pending")), &phase("Pending")));
    }
}
