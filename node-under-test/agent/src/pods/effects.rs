//! Executes the worker's actions against the runtime and the event recorder, in one place,
//! and reports outcomes back to the state machine.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use super::events::{ContainerRef, PodRef, Recorder};
use super::kills::KillTasks;
use super::model::{Observation, Outcome};
use super::spec::{self, SpecContext};
use super::volumes::{self, ApiObjects};
use super::worker::Action;
use crate::config::format_go_duration;
use crate::cri::Runtime;
use crate::probes::http::{HttpTarget, http_probe};
use crate::faults::{self, Fault};
use crate::probes::resolve_port;

/// Upstream's floor (`minimumGracePeriodInSeconds`) for a kill's grace period: always for
/// kills that are not the pod's termination, and after a preStop hook.
const MIN_GRACE: Duration = Duration::from_secs(2);

/// Reason of the Warning event that names pod spec fields the agent does not apply.
pub const UNSUPPORTED_FIELD: &str = "UnsupportedField";

/// `d` truncated to whole milliseconds (upstream's `Truncate(time.Millisecond)` in messages).
fn truncate_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Why a container's image is not there to start it.
#[derive(Debug)]
enum ImageFailure {
    /// The pull failed: the image back-off applies.
    Pull(String),
    /// No pull was made: the runtime could not say whether the image is present (upstream's
    /// `ImageInspectError`), or it is absent under policy Never (`ErrImageNeverPull`). The
    /// container waits with that reason.
    Refused { reason: &'static str, message: String },
}

/// How one container is stopped.
#[derive(Clone, Copy, Debug)]
struct Stop {
    grace: Duration,
    /// Run the preStop hook first (if the container has one).
    pre_stop: bool,
    /// Never below [`MIN_GRACE`] (kills that are not the pod's termination).
    minimum: bool,
}

/// How long a postStart hook may hold the pod worker (upstream sets no limit on exec hooks).
const POST_START_LIMIT: Duration = Duration::from_secs(120);

/// What the executor needs.
pub struct Effects<R> {
    pub runtime: Arc<R>,
    pub recorder: Recorder,
    pub spec_ctx: Arc<SpecContext>,
    /// Where configMap and secret volumes are read from.
    pub objects: ApiObjects,
    /// The cluster's Services, for the containers' service variables.
    pub services: super::services::Services,
    /// The node's own image pull credentials.
    pub node_credentials: Arc<super::node_credentials::NodeCredentials>,
}

impl<R> Clone for Effects<R> {
    fn clone(&self) -> Self {
        Effects {
            runtime: self.runtime.clone(),
            recorder: self.recorder.clone(),
            spec_ctx: self.spec_ctx.clone(),
            objects: self.objects.clone(),
            services: self.services.clone(),
            node_credentials: self.node_credentials.clone(),
        }
    }
}

fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        name: pod.metadata.name.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<(&'a Container, bool)> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .find(|c| c.name == name)
        .map(|c| (c, false))
        .or_else(|| spec.init_containers.iter().flatten().find(|c| c.name == name).map(|c| (c, true)))
}

fn cref(pod: &Pod, name: Option<&str>) -> ContainerRef {
    match name.and_then(|n| find_container(pod, n)) {
        Some((c, true)) => ContainerRef::Init(c.name.clone()),
        Some((c, false)) => ContainerRef::Container(c.name.clone()),
        None => ContainerRef::None,
    }
}

/// Upstream's default pull policy: Always for `:latest` or untagged images, else IfNotPresent.
pub fn pull_policy(c: &Container) -> String {
    if let Some(p) = &c.image_pull_policy {
        return p.clone();
    }
    let image = c.image.as_deref().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || (last.contains(':') && !last.ends_with(":latest")) {
        "IfNotPresent".into()
    } else {
        "Always".into()
    }
}

impl<R: Runtime> Effects<R> {
    fn event(&self, pod: &Pod, container: Option<&str>, warning: bool, reason: &str, message: &str) {
        self.recorder.record(&pod_ref(pod), &cref(pod, container), warning, reason, message);
    }

    /// The periodic remount of a running pod (upstream's volume manager at each sync): its
    /// configMap, secret and projected volumes are written again where their objects changed or
    /// a token needs a refresh. A failure is upstream's FailedMount warning; the containers keep
    /// the files they have.
    pub async fn refresh_volumes(&self, pod: &Pod) {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        if let Err(msg) = super::volumes::materialize(&self.objects, pod, &spec::pod_dir(&self.spec_ctx.root_dir, uid)).await {
            self.event(pod, None, true, "FailedMount", &msg);
        }
    }

    /// Runs `actions`, returning outcomes for the next step. Kills are started as tasks in
    /// `kills` (their completion is reported from there), the rest run here in order.
    pub async fn execute(&self, pod: &Pod, obs: &Observation, actions: &[Action], kills: &mut KillTasks) -> Vec<Outcome> {
        let mut out = Vec::new();
        for a in actions {
            if let Action::KillContainer { id, name, grace, message, pre_stop, minimum } = a {
                let (fx, pod, obs) = (self.clone(), pod.clone(), obs.clone());
                let (id2, name, message) = (id.clone(), name.clone(), message.clone());
                let stop = Stop { grace: *grace, pre_stop: *pre_stop, minimum: *minimum };
                kills.spawn(id.clone(), async move {
                    fx.kill(&pod, &obs, &id2, &name, &message, stop).await;
                });
            }
        }
        for a in actions {
            match a {
                Action::CreateSandbox { attempt } => out.push(self.create_sandbox(pod, *attempt).await),
                Action::StartContainer { init, index, restart_count, remove } => {
                    out.extend(self.start(pod, obs, *init, *index, *restart_count).await);
                    for id in remove {
                        if let Err(e) = self.runtime.remove_container(id).await
                            && !e.is_not_found()
                        {
                            tracing::warn!(error = %e, id, "removing old container failed");
                        }
                    }
                }
                Action::StopSandbox { id } => {
                    if let Err(e) = self.runtime.stop_pod_sandbox(id).await {
                        tracing::warn!(error = %e, id, "stopping sandbox failed");
                    }
                }
                Action::RemoveAll => self.remove_all(obs).await,
                Action::Event { warning, reason, message, container } => {
                    self.event(pod, container.as_deref(), *warning, reason, message);
                }
                Action::KillContainer { .. } | Action::DeleteFromApi | Action::WakeAt(_) => {}
            }
        }
        out
    }

    async fn create_sandbox(&self, pod: &Pod, attempt: u32) -> Outcome {
        for dir in spec::host_dirs(pod, &self.spec_ctx.root_dir) {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return Outcome::SandboxFailed { message: format!("creating {}: {e}", dir.display()) };
            }
        }
        let class = pod.spec.as_ref().and_then(|s| s.runtime_class_name.as_deref()).filter(|c| !c.is_empty());
        let class = class.filter(|_| !crate::faults::active(crate::faults::Fault::IgnoreRuntimeClass));
        let handler = match class {
            Some(class) => match self.objects.runtime_handler(class).await {
                Ok(h) => h,
                Err(message) => return Outcome::SandboxFailed { message },
            },
            None => String::new(),
        };
        if let Err(message) = super::etc_hosts::kernel_hostname(pod, &self.spec_ctx) {
            return Outcome::SandboxFailed { message };
        }
        let cfg = spec::sandbox_config(pod, &self.spec_ctx, attempt);
        match self.runtime.run_pod_sandbox(cfg, &handler).await {
            Ok(id) => {
                tracing::info!(pod = ?pod.metadata.name, sandbox = %id, "sandbox created");
                let unhonoured = super::security::unhonoured(pod);
                if attempt == 0 && !unhonoured.is_empty() {
                    let msg = format!("this node does not apply {}", unhonoured.join(", "));
                    self.event(pod, None, true, UNSUPPORTED_FIELD, &msg);
                }
                Outcome::SandboxCreated { id }
            }
            Err(e) => Outcome::SandboxFailed { message: e.to_string() },
        }
    }

    async fn ensure_image(&self, pod: &Pod, c: &Container, sandbox_cfg: &k8s_cri::v1::PodSandboxConfig) -> Result<(), ImageFailure> {
        let image = c.image.clone().unwrap_or_default();
        let policy = pull_policy(c);
        // Read on each sync that may pull, as upstream reads them on each SyncPod (its warning
        // about a missing one comes whether or not a pull follows).
        let secrets = self.pull_secrets(pod).await;
        // Upstream's imagePullPrecheck: policy Always pulls without looking first.
        let present = policy != "Always"
            && match self.runtime.image_status(&image).await {
                Ok(i) => i.is_some(),
                Err(e) => {
                    let msg = format!("Failed to inspect image \"{image}\": {e}");
                    self.event(pod, Some(&c.name), true, "InspectFailed", &msg);
                    return Err(ImageFailure::Refused { reason: "ImageInspectError", message: msg });
                }
            };
        if present && policy != "Always" {
            let msg = format!("Container image \"{image}\" already present on machine");
            self.event(pod, Some(&c.name), false, "Pulled", &msg);
            return Ok(());
        }
        if !present && policy == "Never" {
            let msg = format!("Container image \"{image}\" is not present with pull policy of Never");
            self.event(pod, Some(&c.name), true, "ErrImageNeverPull", &msg);
            return Err(ImageFailure::Refused { reason: "ErrImageNeverPull", message: msg });
        }
        self.event(pod, Some(&c.name), false, "Pulling", &format!("Pulling image \"{image}\""));
        let started = Instant::now();
        match self.pull_with(&image, &secrets, sandbox_cfg).await {
            Ok(_) => {
                let took = format_go_duration(truncate_ms(started.elapsed()));
                let size = match self.runtime.image_status(&image).await {
                    Ok(Some(i)) => i.size,
                    _ => 0,
                };
                let msg = format!("Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {size} bytes.");
                self.event(pod, Some(&c.name), false, "Pulled", &msg);
                Ok(())
            }
            Err(e) => {
                self.event(pod, Some(&c.name), true, "Failed", &format!("Failed to pull image \"{image}\": {e}"));
                self.event(pod, Some(&c.name), true, "Failed", "Error: ErrImagePull");
                // The container's waiting message is the error alone (upstream's evalCRIPullErr).
                Err(ImageFailure::Pull(e))
            }
        }
    }

    async fn start(&self, pod: &Pod, obs: &Observation, init: bool, index: usize, restart_count: u32) -> Option<Outcome> {
        let spec = pod.spec.as_ref()?;
        let c = if init { spec.init_containers.as_ref()?.get(index)? } else { spec.containers.get(index)? };
        let sandbox = obs.sandbox.as_ref().filter(|s| s.ready)?;
        let attempt = sandbox.attempt;
        let sandbox_cfg = spec::sandbox_config(pod, &self.spec_ctx, attempt);
        match self.ensure_image(pod, c, &sandbox_cfg).await {
            Ok(()) => {}
            Err(ImageFailure::Pull(message)) => return Some(Outcome::ImagePullFailed { container: c.name.clone(), message }),
            Err(ImageFailure::Refused { reason, message }) => {
                self.event(pod, Some(&c.name), true, "Failed", &format!("Error: {reason}"));
                return Some(Outcome::CreateFailed { container: c.name.clone(), reason: reason.into(), message });
            }
        }
        let fail = |reason: &str, message: String| Outcome::CreateFailed {
            container: c.name.clone(),
            reason: reason.to_string(),
            message,
        };
        let log_dir = spec::pod_log_dir(&self.spec_ctx.root_dir, pod).join(&c.name);
        if let Err(e) = std::fs::create_dir_all(&log_dir) {
            return Some(fail("CreateContainerError", format!("creating {}: {e}", log_dir.display())));
        }
        for dir in spec::host_dirs(pod, &self.spec_ctx.root_dir) {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return Some(fail("CreateContainerError", format!("creating {}: {e}", dir.display())));
            }
        }
        if c.termination_message_path.as_deref().is_some_and(|p| !p.is_empty()) {
            let uid = pod.metadata.uid.as_deref().unwrap_or_default();
            let file = spec::termination_message_file(&self.spec_ctx.root_dir, uid, &c.name, restart_count);
            let created = file.parent().map(std::fs::create_dir_all).transpose().and_then(|_| std::fs::File::create(&file));
            if let Err(e) = created {
                return Some(fail("CreateContainerError", format!("creating {}: {e}", file.display())));
            }
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let set_up = match volumes::check_host_paths(pod) {
            Ok(()) => volumes::materialize(&self.objects, pod, &spec::pod_dir(&self.spec_ctx.root_dir, uid)).await,
            Err(e) => Err(e),
        };
        if let Err(msg) = set_up {
            self.event(pod, None, true, "FailedMount", &msg);
            return Some(fail("ContainerCreating", msg));
        }
        for (volume, why) in spec::unsupported_mounts(pod, c) {
            let msg = format!("Unable to mount volume \"{volume}\" for container {}: {why}; the container starts without it", c.name);
            tracing::warn!(pod = ?pod.metadata.name, %msg);
            self.event(pod, Some(&c.name), true, "FailedMount", &msg);
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut objects = spec::EnvObjects::new();
        for (secret, name) in spec::env_object_refs(c) {
            match self.objects.keys(secret, ns, &name).await {
                Ok(keys) => {
                    objects.insert((secret, name), keys.map(std::sync::Arc::unwrap_or_clone));
                }
                Err(e) => return Some(fail("CreateContainerConfigError", e)),
            }
        }
        let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
        let services = match self.services.env(ns, links, !crate::static_pods::is_static_pod(pod)).await {
            Ok(s) => s,
            Err(e) => return Some(fail("CreateContainerConfigError", e)),
        };
        let inputs = spec::EnvInputs { objects, services };
        if super::etc_hosts::mounted(pod, sandbox.ip.as_deref(), c)
            && let Err(msg) = super::etc_hosts::write(pod, sandbox.ip.as_deref(), &self.spec_ctx)
        {
            return Some(fail("CreateContainerError", msg));
        }
        let cfg = match spec::container_config(pod, c, restart_count, sandbox.ip.as_deref(), &self.spec_ctx, init, &inputs) {
            Ok(cfg) => cfg,
            Err(e) => {
                self.event(pod, Some(&c.name), true, "Failed", &format!("Error: {e}"));
                return Some(fail("CreateContainerConfigError", e.to_string()));
            }
        };
        let id = match self.runtime.create_container(&sandbox.id, cfg, sandbox_cfg).await {
            Ok(id) => id,
            Err(e) => {
                self.event(pod, Some(&c.name), true, "Failed", &format!("Error: {}", e.message()));
                return Some(fail("CreateContainerError", e.message()));
            }
        };
        self.event(pod, Some(&c.name), false, "Created", &format!("Created container: {}", c.name));
        if let Err(e) = self.runtime.start_container(&id).await {
            self.event(pod, Some(&c.name), true, "Failed", &format!("Error: {}", e.message()));
            let _ = self.runtime.remove_container(&id).await;
            return Some(fail("RunContainerError", e.message()));
        }
        self.event(pod, Some(&c.name), false, "Started", &format!("Started container {}", c.name));
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            // Like upstream: the worker waits for the hook; a failed hook kills the container
            // (preStop and grace period included), which restarts by its restart policy.
            let run = self.run_hook(&id, c, hook, sandbox.ip.clone(), POST_START_LIMIT);
            if let Err(msg) = tokio::time::timeout(POST_START_LIMIT, run).await.unwrap_or(Err("timed out".into())) {
                tracing::warn!(pod = ?pod.metadata.name, container = %c.name, error = %msg, "postStart hook failed");
                // The event does not carry the hook's output (it could hold secrets).
                self.event(pod, Some(&c.name), true, "FailedPostStartHook", "PostStartHook failed");
                let grace = Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
                let stop = Stop { grace, pre_stop: true, minimum: true };
                self.stop(pod, &id, &c.name, "FailedPostStartHook", stop, sandbox.ip.clone()).await;
            }
        }
        Some(Outcome::Started { container: c.name.clone(), id })
    }

    async fn kill(&self, pod: &Pod, obs: &Observation, id: &str, name: &str, message: &str, mut stop: Stop) {
        let running = obs.containers.iter().any(|c| c.id == id && c.state == super::model::RunState::Running);
        let ip = obs.sandbox.as_ref().and_then(|s| s.ip.clone());
        stop.pre_stop &= running;
        self.stop(pod, id, name, message, stop, ip).await;
    }

    /// Emits Killing, runs preStop (when `pre_stop` and the container has one), then stops the
    /// container with what is left of the grace period.
    async fn stop(&self, pod: &Pod, id: &str, name: &str, message: &str, stop: Stop, ip: Option<String>) {
        let Stop { grace, pre_stop, minimum } = stop;
        self.event(pod, Some(name), false, "Killing", message);
        let started = Instant::now();
        let container = find_container(pod, name).map(|(c, _)| c);
        let hook = container.and_then(|c| c.lifecycle.as_ref()).and_then(|l| l.pre_stop.as_ref());
        if pre_stop && let (Some(hook), Some(c)) = (hook, container) {
            let run = self.run_hook(id, c, hook, ip, grace);
            if let Err(msg) = tokio::time::timeout(grace, run).await.unwrap_or(Err("timed out".into())) {
                let text = format!("PreStopHook failed: {msg}");
                self.event(pod, Some(name), true, "FailedPreStopHook", &text);
            }
        }
        // Like upstream: whole seconds spent in the hook come off the grace period (a hook of
        // a few milliseconds leaves all of it; CRI timeouts are whole seconds).
        let mut remaining = Duration::from_secs(grace.as_secs().saturating_sub(started.elapsed().as_secs()));
        let minimum = minimum && !faults::active(Fault::NoMinimumGrace);
        if (minimum || (hook.is_some() && pre_stop)) && remaining < MIN_GRACE {
            remaining = MIN_GRACE;
        }
        if let Err(e) = self.runtime.stop_container(id, remaining).await
            && !e.is_not_found()
        {
            tracing::warn!(error = %e, id, "stopping container failed");
        }
    }

    async fn run_hook(&self, id: &str, c: &Container, hook: &LifecycleHandler, ip: Option<String>, grace: Duration) -> Result<(), String> {
        if let Some(exec) = &hook.exec {
            let cmd = exec.command.clone().unwrap_or_default();
            let r = self.runtime.exec_sync(id, cmd, grace).await.map_err(|e| e.to_string())?;
            return if r.exit_code == 0 { Ok(()) } else { Err(format!("exit code {}", r.exit_code)) };
        }
        if let Some(h) = &hook.http_get {
            let host = h.host.clone().filter(|h| !h.is_empty()).or(ip).ok_or("no host")?;
            let port = resolve_port(&h.port, c).ok_or("bad port")?;
            let target = HttpTarget {
                scheme: h.scheme.clone().unwrap_or_else(|| "HTTP".into()),
                host,
                port,
                path: h.path.clone().unwrap_or_else(|| "/".into()),
                headers: h.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect(),
            };
            return match http_probe(&target, grace).await {
                crate::probes::state::ProbeOutcome::Success | crate::probes::state::ProbeOutcome::Warning(_) => Ok(()),
                crate::probes::state::ProbeOutcome::Failure(m) | crate::probes::state::ProbeOutcome::Error(m) => Err(m),
            };
        }
        if let Some(s) = &hook.sleep {
            tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
        }
        Ok(())
    }

    async fn remove_all(&self, obs: &Observation) {
        let uid = &obs.pod.uid;
        let filter = std::collections::HashMap::from([(crate::cri::keys::POD_UID.to_string(), uid.clone())]);
        match self.runtime.list_containers(filter.clone()).await {
            Ok(cs) => {
                for c in cs {
                    let _ = self.runtime.stop_container(&c.id, Duration::ZERO).await;
                    if let Err(e) = self.runtime.remove_container(&c.id).await {
                        tracing::warn!(error = %e, id = %c.id, "removing container failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing containers failed"),
        }
        match self.runtime.list_pod_sandboxes(filter).await {
            Ok(sbs) => {
                for s in sbs {
                    let _ = self.runtime.stop_pod_sandbox(&s.id).await;
                    if let Err(e) = self.runtime.remove_pod_sandbox(&s.id).await {
                        tracing::warn!(error = %e, id = %s.id, "removing sandbox failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing sandboxes failed"),
        }
        let dir = spec::pod_dir(&self.spec_ctx.root_dir, uid);
        if dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(error = %e, dir = %dir.display(), "removing pod dir failed");
        }
    }
}

mod pull;
pub use pull::FAILED_TO_RETRIEVE_PULL_SECRET;

#[cfg(test)]
mod tests;
