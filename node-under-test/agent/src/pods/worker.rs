//! The pod worker as a pure state machine: `step(state, observation) -> (state, actions)`.
//! No IO here; [`super::effects`] executes the actions and reports [`Outcome`]s back.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;

use super::backoff::{BackOff, BackOffParams};
use super::model::{ContainerObs, ContainerView, Observation, Outcome, RestartPolicy, RunState};
use crate::config::format_go_duration;

/// Pod phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// A terminal phase decided by the worker (sticky).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminal {
    pub phase: Phase,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// Why a container shows as waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Back-off settings of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerParams {
    pub container: BackOffParams,
    pub image: BackOffParams,
}

/// The worker's memory between steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    pub backoff: BackOff,
    pub image_backoff: BackOff,
    pub sandbox_backoff: BackOff,
    pub sandbox_failure: Option<(Timestamp, String)>,
    /// Failed pulls: when, and the runtime's message.
    image_failures: HashMap<String, (Timestamp, String)>,
    create_failures: HashMap<String, (Timestamp, String, String)>,
    pub waiting: HashMap<String, Waiting>,
    pub start_time: Option<Timestamp>,
    pub terminal: Option<Terminal>,
    pub delete_requested: bool,
    announced: HashSet<String>,
    /// Kills in flight: container id → grace period of the kill.
    killing: HashMap<String, Duration>,
}

/// Effects requested by a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    CreateSandbox { attempt: u32 },
    /// Ensure the image, create and start container `index` of the init or regular list;
    /// then remove the instances in `remove` (older dead instances).
    StartContainer { init: bool, index: usize, restart_count: u32, remove: Vec<String> },
    /// Run preStop (if any and `pre_stop`), then stop with the grace period; emits Killing.
    /// `minimum`: a kill that is not the pod's termination (liveness/startup failure), where
    /// upstream's killContainer never stops with less than its 2 s minimum grace.
    KillContainer { id: String, name: String, grace: Duration, message: String, pre_stop: bool, minimum: bool },
    StopSandbox { id: String },
    /// Remove every container and sandbox of the pod.
    RemoveAll,
    /// Delete the pod in the API with grace 0 and a uid precondition (after the status write).
    DeleteFromApi,
    Event { warning: bool, reason: String, message: String, container: Option<String> },
    /// Step again no later than this.
    WakeAt(Timestamp),
}

impl PodState {
    pub fn new(params: WorkerParams) -> Self {
        PodState {
            backoff: BackOff::new(params.container),
            image_backoff: BackOff::new(params.image),
            sandbox_backoff: BackOff::new(params.container),
            sandbox_failure: None,
            image_failures: HashMap::new(),
            create_failures: HashMap::new(),
            waiting: HashMap::new(),
            start_time: None,
            terminal: None,
            delete_requested: false,
            announced: HashSet::new(),
            killing: HashMap::new(),
        }
    }
}

/// Whether a sidecar no longer holds up the init sequence: it runs and has started (its
/// startup probe, if any, passed), or the regular containers were already started once (a
/// sidecar that exits later is restarted without holding them back).
pub fn sidecar_done(obs: &Observation, c: &ContainerView) -> bool {
    match obs.latest(&c.name) {
        Some(l) if l.state == RunState::Running => obs.probe(&l.id).started,
        Some(_) => obs.pod.containers.iter().any(|m| obs.latest(&m.name).is_some()),
        None => false,
    }
}

fn is_live(c: &ContainerObs) -> bool {
    matches!(c.state, RunState::Running | RunState::Created | RunState::Unknown)
}

fn pod_ref(obs: &Observation) -> String {
    format!("{}_{}({})", obs.pod.name, obs.pod.namespace, obs.pod.uid)
}

/// The pod phase from the latest container instances (upstream getPhase), or the sticky terminal phase.
pub fn pod_phase(obs: &Observation, st: &PodState) -> Phase {
    if let Some(t) = &st.terminal {
        return t.phase;
    }
    let pod = &obs.pod;
    for c in &pod.init_containers {
        if c.sidecar {
            if sidecar_done(obs, c) {
                continue;
            }
            return Phase::Pending;
        }
        match obs.latest(&c.name) {
            Some(l) if l.state == RunState::Exited && l.exit_code == 0 => continue,
            Some(l) if l.state == RunState::Exited && pod.restart_policy == RestartPolicy::Never => {
                return Phase::Failed;
            }
            _ => return Phase::Pending,
        }
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &pod.containers {
        match obs.latest(&c.name) {
            None | Some(ContainerObs { state: RunState::Created, .. }) => waiting += 1,
            Some(l) if l.state == RunState::Exited => {
                stopped += 1;
                if l.exit_code == 0 {
                    succeeded += 1;
                }
            }
            Some(_) => running += 1,
        }
    }
    if waiting > 0 {
        Phase::Pending
    } else if running > 0 {
        Phase::Running
    } else if stopped > 0 {
        match pod.restart_policy {
            RestartPolicy::Always => Phase::Running,
            RestartPolicy::OnFailure if stopped == succeeded => Phase::Succeeded,
            RestartPolicy::OnFailure => Phase::Running,
            RestartPolicy::Never if stopped == succeeded => Phase::Succeeded,
            RestartPolicy::Never => Phase::Failed,
        }
    } else {
        Phase::Pending
    }
}

struct Ctx<'a> {
    obs: &'a Observation,
    acts: Vec<Action>,
}

impl Ctx<'_> {
    fn event(&mut self, warning: bool, reason: &str, message: String, container: Option<&str>) {
        self.acts.push(Action::Event {
            warning,
            reason: reason.to_string(),
            message,
            container: container.map(str::to_string),
        });
    }

    /// Kills the pod's live containers; sidecars only once no regular container is left (as
    /// upstream stops them after the main containers).
    fn kill_all(&mut self, grace: Duration) {
        let sidecar = |name: &str| self.obs.pod.init_containers.iter().any(|c| c.sidecar && c.name == name);
        let main_live = self.obs.containers.iter().any(|c| is_live(c) && !sidecar(&c.name));
        for c in self.obs.containers.iter().filter(|c| is_live(c) && !(main_live && sidecar(&c.name))) {
            self.acts.push(Action::KillContainer {
                id: c.id.clone(),
                name: c.name.clone(),
                grace,
                message: format!("Stopping container {}", c.name),
                pre_stop: true,
                minimum: false,
            });
        }
    }
}

/// Forgets announcements that can no longer repeat, so a crash-looping pod's worker does not
/// grow: back-offs of container instances the runtime no longer has, and image back-offs
/// other than each container's current one.
fn prune_announced(st: &mut PodState, obs: &Observation) {
    let failures = &st.image_failures;
    st.announced.retain(|a| match a.split_once('/') {
        Some(("backoff", id)) => obs.containers.iter().any(|c| c.id == id),
        Some(("pull", rest)) => rest
            .rsplit_once('/')
            .is_some_and(|(name, at)| failures.get(name).is_some_and(|(t, _)| t.as_nanosecond().to_string() == at)),
        _ => true,
    });
}

/// Advances the worker by one observation. Kills run in the background until an
/// [`Outcome::Killed`] comes back: a container already being stopped is not killed again,
/// unless with a shorter grace period (like upstream; then without its preStop hook again).
pub fn step(st: PodState, obs: &Observation) -> (PodState, Vec<Action>) {
    let (mut st, acts) = advance(st, obs);
    st.killing.retain(|id, _| obs.containers.iter().any(|c| &c.id == id && is_live(c)));
    prune_announced(&mut st, obs);
    let acts = acts
        .into_iter()
        .filter_map(|a| match a {
            Action::KillContainer { id, name, grace, message, pre_stop, minimum } => {
                let again = match st.killing.get(&id) {
                    Some(g) if *g <= grace => return None,
                    Some(_) => true,
                    None => false,
                };
                st.killing.insert(id.clone(), grace);
                Some(Action::KillContainer { id, name, grace, message, pre_stop: pre_stop && !again, minimum })
            }
            a => Some(a),
        })
        .collect();
    (st, acts)
}

fn advance(mut st: PodState, obs: &Observation) -> (PodState, Vec<Action>) {
    let mut cx = Ctx { obs, acts: Vec::new() };
    let now = obs.now;
    st.waiting.clear();
    for o in &obs.outcomes {
        match o {
            Outcome::SandboxFailed { message } => {
                st.sandbox_backoff.next("sandbox", now, now);
                st.sandbox_failure = Some((now, message.clone()));
                cx.event(true, "FailedCreatePodSandBox", format!("Failed to create pod sandbox: {message}"), None);
            }
            Outcome::SandboxCreated { .. } => st.sandbox_failure = None,
            Outcome::ImagePullFailed { container, message } => {
                st.image_backoff.next(container, now, now);
                st.image_failures.insert(container.clone(), (now, message.clone()));
            }
            Outcome::CreateFailed { container, reason, message } => {
                st.backoff.next(container, now, now);
                st.create_failures.insert(container.clone(), (now, reason.clone(), message.clone()));
            }
            Outcome::Started { container, .. } => {
                st.image_failures.remove(container);
                st.create_failures.remove(container);
            }
            Outcome::Killed { id } => {
                st.killing.remove(id);
            }
        }
    }
    let start = *st.start_time.get_or_insert(obs.pod.start_time.unwrap_or(now));
    if st.terminal.is_none()
        && let Some((succeeded, reason, message)) = &obs.pod.api_terminal
    {
        let phase = if *succeeded { Phase::Succeeded } else { Phase::Failed };
        st.terminal = Some(Terminal { phase, reason: reason.clone(), message: message.clone() });
    }
    let live_count = obs.containers.iter().filter(|c| is_live(c)).count();

    if let Some(del) = obs.pod.deletion {
        cx.kill_all(del.grace);
        if live_count == 0 {
            if let Some(sb) = obs.sandbox.as_ref().filter(|s| s.ready) {
                cx.acts.push(Action::StopSandbox { id: sb.id.clone() });
            }
            if !st.delete_requested {
                st.delete_requested = true;
                cx.acts.push(Action::RemoveAll);
                if !del.gone {
                    cx.acts.push(Action::DeleteFromApi);
                }
            }
        }
        return (st, cx.acts);
    }

    if st.terminal.is_none()
        && let Some(deadline) = obs.pod.active_deadline
    {
        let until = super::backoff::add(start, deadline);
        if now >= until {
            st.terminal = Some(Terminal {
                phase: Phase::Failed,
                reason: Some("DeadlineExceeded".into()),
                message: Some("Pod was active on the node longer than the specified deadline".into()),
            });
            cx.event(false, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline".into(), None);
        } else {
            cx.acts.push(Action::WakeAt(until));
        }
    }
    if st.terminal.is_none() {
        let phase = pod_phase(obs, &st);
        if phase.is_terminal() {
            st.terminal = Some(Terminal { phase, reason: None, message: None });
        }
    }
    if st.terminal.is_some() {
        cx.kill_all(obs.pod.termination_grace);
        if live_count == 0
            && let Some(sb) = obs.sandbox.as_ref().filter(|s| s.ready)
        {
            cx.acts.push(Action::StopSandbox { id: sb.id.clone() });
        }
        return (st, cx.acts);
    }

    if !obs.sandbox.as_ref().is_some_and(|s| s.ready) {
        if live_count > 0 {
            if obs.containers.iter().any(|c| is_live(c) && !st.killing.contains_key(&c.id)) {
                cx.event(false, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.".into(), None);
            }
            cx.kill_all(obs.pod.termination_grace);
            return (st, cx.acts);
        }
        if let Some((at, _)) = &st.sandbox_failure
            && let Some((_, until)) = st.sandbox_backoff.in_backoff("sandbox", *at, now)
        {
            cx.acts.push(Action::WakeAt(until));
            return (st, cx.acts);
        }
        let attempt = obs.sandbox.as_ref().map(|s| s.attempt + 1).unwrap_or(0);
        cx.acts.push(Action::CreateSandbox { attempt });
        return (st, cx.acts);
    }

    for (i, c) in obs.pod.init_containers.iter().enumerate() {
        if c.sidecar {
            match obs.latest(&c.name) {
                None => try_start(&mut st, &mut cx, c, true, i, None),
                Some(l) if l.state == RunState::Running => probe_kill(&mut cx, c, l, true),
                Some(l) if l.state == RunState::Exited => restart_or_back_off(&mut st, &mut cx, c, true, i, l),
                Some(_) => {}
            }
            if sidecar_done(obs, c) {
                continue;
            }
            return (st, cx.acts);
        }
        match obs.latest(&c.name) {
            Some(l) if l.state == RunState::Exited && l.exit_code == 0 => continue,
            Some(l) if l.state == RunState::Exited => {
                restart_or_back_off(&mut st, &mut cx, c, true, i, l);
                return (st, cx.acts);
            }
            Some(_) => return (st, cx.acts),
            None => {
                try_start(&mut st, &mut cx, c, true, i, None);
                return (st, cx.acts);
            }
        }
    }

    let policy = obs.pod.restart_policy;
    for (i, c) in obs.pod.containers.iter().enumerate() {
        match obs.latest(&c.name) {
            None => try_start(&mut st, &mut cx, c, false, i, None),
            Some(l) if l.state == RunState::Running => probe_kill(&mut cx, c, l, policy != RestartPolicy::Never),
            Some(l) if l.state == RunState::Exited && policy.restarts(l.exit_code) => {
                restart_or_back_off(&mut st, &mut cx, c, false, i, l);
            }
            Some(_) => {}
        }
    }
    (st, cx.acts)
}

/// Kills a running container whose startup or liveness probe failed.
fn probe_kill(cx: &mut Ctx<'_>, c: &ContainerView, l: &ContainerObs, restarts: bool) {
    let p = cx.obs.probe(&l.id);
    let failed = if p.startup_failed {
        Some(("startup", c.startup_grace))
    } else if p.liveness_failed {
        Some(("liveness", c.liveness_grace))
    } else {
        None
    };
    if let Some((kind, probe_grace)) = failed {
        let suffix = if restarts { ", will be restarted" } else { "" };
        cx.acts.push(Action::KillContainer {
            id: l.id.clone(),
            name: c.name.clone(),
            grace: probe_grace.unwrap_or(cx.obs.pod.termination_grace),
            message: format!("Container {} failed {kind} probe{suffix}", c.name),
            pre_stop: true,
            minimum: true,
        });
    }
}

fn restart_or_back_off(st: &mut PodState, cx: &mut Ctx<'_>, c: &ContainerView, init: bool, index: usize, last: &ContainerObs) {
    if crate::faults::active(crate::faults::Fault::NeverRestart) {
        return;
    }
    let now = cx.obs.now;
    let finished = last.finished_at.unwrap_or(now);
    if let Some((delay, until)) = st.backoff.in_backoff(&c.name, finished, now) {
        let pod = pod_ref(cx.obs);
        st.waiting.insert(
            c.name.clone(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!("back-off {} restarting failed container={} pod={pod}", format_go_duration(delay), c.name),
            },
        );
        if st.announced.insert(format!("backoff/{}", last.id)) {
            cx.event(true, "BackOff", format!("Back-off restarting failed container {} in pod {pod}", c.name), Some(&c.name));
        }
        cx.acts.push(Action::WakeAt(until));
        return;
    }
    st.backoff.next(&c.name, finished, now);
    try_start(st, cx, c, init, index, Some(last));
}

fn try_start(st: &mut PodState, cx: &mut Ctx<'_>, c: &ContainerView, init: bool, index: usize, prev: Option<&ContainerObs>) {
    let now = cx.obs.now;
    if let Some((at, message)) = st.image_failures.get(&c.name)
        && let Some((delay, until)) = st.image_backoff.in_backoff(&c.name, *at, now)
    {
        // Like upstream's status between two pull attempts: ErrImagePull (the runtime's
        // message) until the worker's next sync, then ImagePullBackOff until the back-off ends.
        // Here the first half of the back-off window shows the former.
        let flip = super::backoff::add(*at, delay / 2);
        let waiting = if now < flip {
            cx.acts.push(Action::WakeAt(flip));
            Waiting { reason: "ErrImagePull".into(), message: message.clone() }
        } else {
            if st.announced.insert(format!("pull/{}/{}", c.name, at.as_nanosecond())) {
                cx.event(false, "BackOff", format!("Back-off pulling image \"{}\"", c.image), Some(&c.name));
            }
            Waiting { reason: "ImagePullBackOff".into(), message: format!("Back-off pulling image \"{}\"", c.image) }
        };
        st.waiting.insert(c.name.clone(), waiting);
        cx.acts.push(Action::WakeAt(until));
        return;
    }
    if let Some((at, reason, message)) = st.create_failures.get(&c.name)
        && let Some((_, until)) = st.backoff.in_backoff(&c.name, *at, now)
    {
        st.waiting.insert(c.name.clone(), Waiting { reason: reason.clone(), message: message.clone() });
        cx.acts.push(Action::WakeAt(until));
        return;
    }
    let restart_count = prev.map(|p| p.restart_count + 1).unwrap_or(0);
    let keep = prev.map(|p| p.id.as_str());
    let remove = cx
        .obs
        .instances(&c.name)
        .into_iter()
        .filter(|i| i.state == RunState::Exited && Some(i.id.as_str()) != keep)
        .map(|i| i.id.clone())
        .collect();
    cx.acts.push(Action::StartContainer { init, index, restart_count, remove });
}

#[cfg(test)]
mod tests;
