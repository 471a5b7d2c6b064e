//! The eviction manager's loop (all effects): every monitoring period read usage, observe the
//! signals, step the threshold state, publish the pressure conditions (and the NoSchedule
//! taints), and when a threshold must be reclaimed evict the first ranked pod: status Failed /
//! Evicted with the DisruptionTarget condition, one Evicted event, containers stopped with the
//! eviction grace period.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod, Taint};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use super::PressureHandle;
use crate::faults::{self, Fault};
use super::message::eviction_message;
use super::rank::{Candidate, is_critical, rank};
use super::signals::{PodUsage, Pressure, Signal, observe};
use super::stats::{StatsClient, add_local_usage, capacity};
use super::thresholds::{Threshold, ThresholdState};
use crate::config::KubeletConfiguration;
use crate::cri::{Runtime, keys};
use crate::error::{Result, api};

/// What the eviction manager is configured with.
#[derive(Clone, Debug)]
pub struct EvictionParams {
    pub node_name: String,
    pub root_dir: PathBuf,
    pub cfg: KubeletConfiguration,
    pub thresholds: Vec<Threshold>,
    pub api_timeout: Duration,
}

struct Manager<R> {
    runtime: Arc<R>,
    stats: StatsClient,
    client: kube::Client,
    pressure: PressureHandle,
    p: EvictionParams,
    state: ThresholdState,
    evicted: HashSet<String>,
    tainted: Option<BTreeSet<Pressure>>,
    /// The last evicted pod, the signal it was evicted for, and until when to wait for it to
    /// give back what that signal measures before the next eviction (upstream waits for the
    /// pod's resources to be reclaimed: containers, volumes).
    cleaning: Option<(String, Signal, Instant)>,
}

/// The grace period of a hard eviction (upstream's immediateEvictionGracePeriodSeconds).
const IMMEDIATE_EVICTION_GRACE_SECONDS: i64 = 1;

/// Whether an evicted pod has given back what `signal` measures: its containers are gone, and
/// for the disk signals its disk too (an emptyDir still full keeps the node under pressure, and
/// evicting another pod for it would be a mistake).
fn reclaimed(signal: Signal, u: &PodUsage) -> bool {
    match signal {
        Signal::MemoryAvailable | Signal::PidAvailable => u.containers.is_empty(),
        Signal::NodeFsAvailable | Signal::NodeFsInodesFree | Signal::ImageFsAvailable => u.containers.is_empty() && u.disk() == 0,
    }
}

/// How long past its grace period an evicted pod may take to stop before eviction goes on.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs until `cancel` fires.
pub async fn run_eviction_manager<R: Runtime>(
    runtime: Arc<R>,
    stats: StatsClient,
    client: kube::Client,
    pressure: PressureHandle,
    p: EvictionParams,
    cancel: CancellationToken,
) {
    let period = p.cfg.nodekit.eviction_monitoring_period.0;
    let mut m = Manager { runtime, stats, client, pressure, p, state: ThresholdState::default(), evicted: HashSet::new(), tainted: None, cleaning: None };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = m.pass().await {
            tracing::warn!(error = %e, "eviction pass failed");
        }
    }
}

impl<R: Runtime> Manager<R> {
    async fn pass(&mut self) -> Result<()> {
        let mut usage = self.stats.pod_usage().await?;
        add_local_usage(&self.p.root_dir, &mut usage);
        let pods: Vec<PodUsage> = usage.values().map(|(u, _, _)| u.clone()).collect();
        let cap = capacity(
            &self.p.cfg,
            &self.p.root_dir,
            pods.iter().map(PodUsage::memory).sum(),
            pods.iter().map(PodUsage::disk).sum(),
            pods.iter().map(|p| p.processes).sum(),
        );
        let obs = observe(&cap, &pods);
        let transition = self.p.cfg.eviction_pressure_transition_period.0;
        let decision = self.state.step(&self.p.thresholds, &obs, Instant::now(), transition);
        if decision.pressures != self.pressure.get() {
            tracing::info!(pressures = ?decision.pressures, ?obs, "node pressure changed");
        }
        self.pressure.set(decision.pressures.clone());
        if self.tainted.as_ref() != Some(&decision.pressures) {
            match self.sync_taints(&decision.pressures).await {
                Ok(()) => self.tainted = Some(decision.pressures.clone()),
                // Before registration there is no Node to taint yet: retried on the next pass.
                Err(e) if e.api_code() == Some(404) => tracing::debug!(error = %e, "node not registered yet; taints wait"),
                Err(e) => tracing::warn!(error = %e, "updating pressure taints failed"),
            }
        }
        let Some(i) = decision.reclaim else { return Ok(()) };
        if let Some((uid, signal, until)) = &self.cleaning {
            let running = usage.get(uid).is_some_and(|(u, _, _)| !reclaimed(*signal, u));
            if running && Instant::now() < *until {
                return Ok(());
            }
            self.cleaning = None;
        }
        let t = self.p.thresholds[i].clone();
        let Some(observed) = obs.get(&t.signal).copied() else { return Ok(()) };
        let seen: Vec<String> = usage.values().map(|(u, ns, name)| format!("{ns}/{name}={}Ki", u.memory() >> 10)).collect();
        let usage: HashMap<String, PodUsage> = usage.into_iter().map(|(k, (u, _, _))| (k, u)).collect();
        let all: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.p.node_name));
        let listed = api("list pods for eviction", self.p.api_timeout, all.list(&lp)).await?.items;
        let active: Vec<&Pod> = listed
            .iter()
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
                phase != "Succeeded"
                    && phase != "Failed"
                    && p.metadata.deletion_timestamp.is_none()
                    && !is_critical(p)
                    && p.metadata.uid.as_ref().is_some_and(|u| !self.evicted.contains(u) && usage.contains_key(u))
            })
            .collect();
        let mut candidates: Vec<Candidate> = active.iter().map(|p| Candidate::of(p)).collect();
        rank(t.signal, &mut candidates, &usage);
        let Some(first) = candidates.first() else {
            tracing::warn!(signal = t.signal.as_str(), "threshold met but no pod can be evicted");
            return Ok(());
        };
        let Some(pod) = active.iter().find(|p| p.metadata.uid.as_deref() == Some(first.uid.as_str())) else { return Ok(()) };
        let (message, annotations) = eviction_message(&t, &observed, first, usage.get(&first.uid));
        let grace = if faults::active(Fault::EvictionPodGrace) {
            pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30)
        } else if t.hard {
            IMMEDIATE_EVICTION_GRACE_SECONDS
        } else {
            let own = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
            own.min(i64::from(self.p.cfg.eviction_max_pod_grace_period)).max(0)
        };
        tracing::info!(pod = ?pod.metadata.name, signal = t.signal.as_str(), grace, memory = ?seen, %message, "evicting pod");
        self.evict(pod, &message, annotations, grace, t.signal).await
    }

    async fn evict(&mut self, pod: &Pod, message: &str, annotations: BTreeMap<String, String>, grace: i64, signal: Signal) -> Result<()> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let patch = serde_json::json!({
            "metadata": {"uid": uid},
            "status": {
                "phase": "Failed",
                "reason": "Evicted",
                "message": message,
                "conditions": [{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "TerminationByKubelet",
                    "message": message,
                    "lastTransitionTime": now.to_string(),
                }],
            }
        });
        self.pressure.mark_evicted(&uid, message);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        api("patch evicted pod status", self.p.api_timeout, pods.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))).await?;
        self.evicted.insert(uid.clone());
        self.cleaning = Some((uid.clone(), signal, Instant::now() + Duration::from_secs(grace as u64) + CLEANUP_TIMEOUT));
        let pod_ref = crate::pods::events::PodRef { name: name.clone(), namespace: ns.clone(), uid: uid.clone() };
        let mut ev = crate::pods::events::build_event(&pod_ref, &crate::pods::events::ContainerRef::None, &self.p.node_name, true, "Evicted", message, now);
        ev.metadata.annotations = Some(annotations);
        let events: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(e) = api("create Evicted event", self.p.api_timeout, events.create(&PostParams::default(), &ev)).await {
            tracing::warn!(error = %e, "Evicted event not recorded");
        }
        let filter = HashMap::from([(keys::POD_UID.to_string(), uid.clone())]);
        let containers = self.runtime.list_containers(filter).await?;
        for c in containers.iter().filter(|c| c.state == crate::cri::api::ContainerState::ContainerRunning as i32) {
            if let Err(e) = self.runtime.stop_container(&c.id, Duration::from_secs(grace as u64)).await {
                tracing::warn!(error = %e, container = %c.id, "stopping an evicted pod's container failed");
            }
        }
        Ok(())
    }

    async fn sync_taints(&self, pressures: &BTreeSet<Pressure>) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = api("get node for taints", self.p.api_timeout, nodes.get(&self.p.node_name)).await?;
        let current: Vec<Taint> = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let ours: Vec<&str> = Pressure::ALL.iter().map(|p| p.taint()).collect();
        let mut want: Vec<Taint> = current.iter().filter(|t| !ours.contains(&t.key.as_str())).cloned().collect();
        for p in pressures {
            want.push(Taint { key: p.taint().into(), effect: "NoSchedule".into(), ..Default::default() });
        }
        let same = want.len() == current.len() && want.iter().all(|w| current.iter().any(|c| c.key == w.key && c.effect == w.effect));
        if same {
            return Ok(());
        }
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": want},
        });
        api("patch node taints", self.p.api_timeout, nodes.patch(&self.p.node_name, &PatchParams::default(), &Patch::Merge(&patch))).await?;
        Ok(())
    }
}
