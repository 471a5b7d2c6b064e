//! Tests of the effects executor with a recording runtime and an in-memory event sink.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};


use super::*;
use crate::cri::{CriError, ExecResult, Result as CriResult, RuntimeCondition, RuntimeVersion, api};
use crate::pods::model::{ContainerObs, PodView, RestartPolicy, RunState, SandboxObs};

#[derive(Default)]
struct FakeRuntime {
    calls: Mutex<Vec<String>>,
    present: Mutex<HashSet<String>>,
    fail_pull: bool,
    /// ImageStatus fails.
    fail_status: bool,
    hook_takes: Duration,
    /// Exit code of every ExecSync.
    exec_exit: i32,
}

impl FakeRuntime {
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Runtime for FakeRuntime {
    async fn version(&self) -> CriResult<RuntimeVersion> {
        Ok(RuntimeVersion::default())
    }
    async fn status(&self) -> CriResult<Vec<RuntimeCondition>> {
        Ok(vec![])
    }
    async fn update_pod_cidr(&self, _: &str) -> CriResult<()> {
        Ok(())
    }
    async fn reopen_container_log(&self, id: &str) -> CriResult<()> {
        self.log(format!("ReopenContainerLog {id}"));
        Ok(())
    }
    async fn run_pod_sandbox(&self, c: api::PodSandboxConfig, handler: &str) -> CriResult<String> {
        let handler = if handler.is_empty() { String::new() } else { format!(" handler={handler}") };
        self.log(format!("RunPodSandbox {}{handler}", c.metadata.map(|m| m.name).unwrap_or_default()));
        Ok("sb".into())
    }
    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.log(format!("StopPodSandbox {id}"));
        Ok(())
    }
    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.log(format!("RemovePodSandbox {id}"));
        Ok(())
    }
    async fn list_pod_sandboxes(&self, _: HashMap<String, String>) -> CriResult<Vec<api::PodSandbox>> {
        Ok(vec![])
    }
    async fn pod_sandbox_status(&self, _: &str) -> CriResult<api::PodSandboxStatus> {
        Ok(Default::default())
    }
    async fn create_container(&self, sb: &str, c: api::ContainerConfig, _: api::PodSandboxConfig) -> CriResult<String> {
        self.log(format!("CreateContainer {sb} {}", c.metadata.map(|m| m.name).unwrap_or_default()));
        Ok("c-new".into())
    }
    async fn start_container(&self, id: &str) -> CriResult<()> {
        self.log(format!("StartContainer {id}"));
        Ok(())
    }
    async fn stop_container(&self, id: &str, timeout: Duration) -> CriResult<()> {
        self.log(format!("StopContainer {id} {}s", timeout.as_secs()));
        Ok(())
    }
    async fn remove_container(&self, id: &str) -> CriResult<()> {
        self.log(format!("RemoveContainer {id}"));
        Ok(())
    }
    async fn list_containers(&self, _: HashMap<String, String>) -> CriResult<Vec<api::Container>> {
        Ok(vec![])
    }
    async fn container_status(&self, _: &str) -> CriResult<api::ContainerStatus> {
        Ok(Default::default())
    }
    async fn exec(&self, _: api::ExecRequest) -> CriResult<String> {
        Err(CriError::Rpc { op: "Exec", code: tonic::Code::Unimplemented, message: "not recorded".into() })
    }
    async fn attach(&self, _: api::AttachRequest) -> CriResult<String> {
        Err(CriError::Rpc { op: "Attach", code: tonic::Code::Unimplemented, message: "not recorded".into() })
    }
    async fn port_forward(&self, _: api::PortForwardRequest) -> CriResult<String> {
        Err(CriError::Rpc { op: "PortForward", code: tonic::Code::Unimplemented, message: "not recorded".into() })
    }
    async fn exec_sync(&self, id: &str, cmd: Vec<String>, _: Duration) -> CriResult<ExecResult> {
        self.log(format!("ExecSync {id} {}", cmd.join(" ")));
        tokio::time::sleep(self.hook_takes).await;
        Ok(ExecResult { exit_code: self.exec_exit, ..Default::default() })
    }
    async fn image_status(&self, image: &str) -> CriResult<Option<api::Image>> {
        self.log(format!("ImageStatus {image}"));
        if self.fail_status {
            return Err(CriError::Rpc { op: "ImageStatus", code: tonic::Code::Unavailable, message: "runtime down".into() });
        }
        Ok(self.present.lock().unwrap().contains(image).then(api::Image::default))
    }
    async fn pull_image(&self, image: &str, _: Option<api::AuthConfig>, _: api::PodSandboxConfig) -> CriResult<String> {
        self.log(format!("PullImage {image}"));
        if self.fail_pull {
            return Err(CriError::Rpc { op: "PullImage", code: tonic::Code::NotFound, message: "not found".into() });
        }
        self.present.lock().unwrap().insert(image.to_string());
        Ok("sha256:x".into())
    }
}

/// The recorder's queue, read back in order.
struct Events {
    rx: Mutex<tokio::sync::mpsc::Receiver<k8s_openapi::api::core::v1::Event>>,
    got: Mutex<Vec<(String, String)>>,
}

impl Events {
    fn all(&self) -> Vec<(String, String)> {
        let mut got = self.got.lock().unwrap();
        while let Ok(ev) = self.rx.lock().unwrap().try_recv() {
            got.push((ev.reason.unwrap_or_default(), ev.message.unwrap_or_default()));
        }
        got.clone()
    }
}

fn pod(image: &str, pre_stop: Option<serde_json::Value>) -> Pod {
    let mut c = serde_json::json!({"name": "main", "image": image});
    if let Some(h) = pre_stop {
        c["lifecycle"] = serde_json::json!({"preStop": h});
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"containers": [c]}
    }))
    .unwrap()
}

fn observation(running: bool) -> Observation {
    let now = jiff::Timestamp::now();
    Observation {
        now,
        pod: PodView {
            uid: "u1".into(),
            name: "p".into(),
            namespace: "ns".into(),
            init_containers: vec![],
            containers: vec![],
            restart_policy: RestartPolicy::Always,
            termination_grace: Duration::from_secs(30),
            active_deadline: None,
            deletion: None,
            start_time: None,
            api_terminal: None,
        },
        sandbox: Some(SandboxObs { id: "sb".into(), ready: true, ip: Some("10.244.1.2".into()), attempt: 0 }),
        containers: running
            .then(|| ContainerObs {
                id: "c1".into(),
                name: "main".into(),
                restart_count: 0,
                state: RunState::Running,
                exit_code: 0,
                reason: String::new(),
                message: String::new(),
                created_at: now,
                started_at: Some(now),
                finished_at: None,
                image: String::new(),
                image_ref: String::new(),
            })
            .into_iter()
            .collect(),
        probes: HashMap::new(),
        outcomes: vec![],
    }
}

fn effects(rt: FakeRuntime) -> (Effects<FakeRuntime>, Arc<FakeRuntime>, Events, tempfile::TempDir) {
    let (recorder, rx) = Recorder::channel("node-a".into());
    let events = Events { rx: Mutex::new(rx), got: Mutex::default() };
    let dir = tempfile::tempdir().unwrap();
    let rt = Arc::new(rt);
    let fx = Effects {
        runtime: rt.clone(),
        recorder,
        objects: crate::pods::volumes::ApiObjects::none(),
        services: crate::pods::services::Services::fixed(Vec::new()),
        node_credentials: Arc::new(crate::pods::node_credentials::NodeCredentials::with_dirs(dir.path(), dir.path(), dir.path(), dir.path())),
        spec_ctx: Arc::new(SpecContext { root_dir: dir.path().to_path_buf(), ..Default::default() }),
    };
    (fx, rt, events, dir)
}

fn reasons(events: &Events) -> Vec<String> {
    events.all().into_iter().map(|(r, _)| r).collect()
}

fn kills() -> KillTasks {
    KillTasks::new(tokio_util::sync::CancellationToken::new())
}

const START: Action = Action::StartContainer { init: false, index: 0, restart_count: 0, remove: vec![] };

#[tokio::test]
async fn absent_image_is_pulled_then_created_and_started() {
    let (fx, rt, events, dir) = effects(FakeRuntime::default());
    let out = fx.execute(&pod("img:1", None), &observation(false), &[START], &mut kills()).await;
    assert!(matches!(out.as_slice(), [Outcome::Started { container, .. }] if container == "main"));
    assert_eq!(rt.calls(), ["ImageStatus img:1", "PullImage img:1", "ImageStatus img:1", "CreateContainer sb main", "StartContainer c-new"]);
    assert_eq!(reasons(&events), ["Pulling", "Pulled", "Created", "Started"]);
    assert!(dir.path().join("pods/ns_p_u1/main").is_dir(), "container log dir created");
}

#[tokio::test]
async fn present_image_is_not_pulled_unless_always() {
    let rt = FakeRuntime::default();
    rt.present.lock().unwrap().insert("img:1".into());
    let (fx, rt, events, _dir) = effects(rt);
    fx.execute(&pod("img:1", None), &observation(false), &[START], &mut kills()).await;
    assert!(!rt.calls().iter().any(|c| c.starts_with("PullImage")));
    let (_, msg) = events.all()[0].clone();
    assert_eq!(msg, "Container image \"img:1\" already present on machine");
    // `latest` means pull policy Always.
    rt.present.lock().unwrap().insert("img:latest".into());
    fx.execute(&pod("img:latest", None), &observation(false), &[START], &mut kills()).await;
    assert!(rt.calls().iter().any(|c| c == "PullImage img:latest"));
}

#[tokio::test]
async fn pull_failure_is_reported_and_nothing_is_created() {
    let (fx, rt, events, _dir) = effects(FakeRuntime { fail_pull: true, ..Default::default() });
    let out = fx.execute(&pod("img:1", None), &observation(false), &[START], &mut kills()).await;
    assert!(matches!(&out[..], [Outcome::ImagePullFailed { container, .. }] if container == "main"));
    assert!(!rt.calls().iter().any(|c| c.starts_with("CreateContainer")));
    assert_eq!(reasons(&events), ["Pulling", "Failed", "Failed"]);
}

#[tokio::test]
async fn an_image_that_cannot_be_inspected_or_is_never_pulled_is_refused_as_upstream() {
    let (fx, rt, events, _dir) = effects(FakeRuntime { fail_status: true, ..Default::default() });
    let out = fx.execute(&pod("img:1", None), &observation(false), &[START], &mut kills()).await;
    let want = "Failed to inspect image \"img:1\": rpc error: code = Unavailable desc = runtime down";
    assert!(
        matches!(&out[..], [Outcome::CreateFailed { container, reason, message }] if container == "main" && reason == "ImageInspectError" && message == want),
        "{out:?}"
    );
    assert!(!rt.calls().iter().any(|c| c.starts_with("PullImage") || c.starts_with("CreateContainer")));
    assert_eq!(events.all(), [("InspectFailed".to_string(), want.to_string()), ("Failed".to_string(), "Error: ImageInspectError".to_string())]);
    // An absent image under policy Never is refused without a pull (upstream's ErrImageNeverPull).
    let (fx, rt, events, _dir) = effects(FakeRuntime::default());
    let mut never = pod("img:1", None);
    if let Some(c) = never.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        c.image_pull_policy = Some("Never".into());
    }
    let out = fx.execute(&never, &observation(false), &[START], &mut kills()).await;
    let want = "Container image \"img:1\" is not present with pull policy of Never";
    assert!(matches!(&out[..], [Outcome::CreateFailed { reason, message, .. }] if reason == "ErrImageNeverPull" && message == want), "{out:?}");
    assert!(!rt.calls().iter().any(|c| c.starts_with("PullImage")));
    assert_eq!(events.all(), [("ErrImageNeverPull".to_string(), want.to_string()), ("Failed".to_string(), "Error: ErrImageNeverPull".to_string())]);
    // Policy Always pulls without looking first (upstream's imagePullPrecheck).
    let (fx, rt, _, _dir) = effects(FakeRuntime { fail_status: true, ..Default::default() });
    fx.execute(&pod("img:latest", None), &observation(false), &[START], &mut kills()).await;
    assert_eq!(rt.calls().first().map(String::as_str), Some("PullImage img:latest"));
}

#[tokio::test(start_paused = true)]
async fn pre_stop_then_stop_with_remaining_grace() {
    let (fx, rt, events, _dir) = effects(FakeRuntime { hook_takes: Duration::from_secs(3), ..Default::default() });
    let hook = serde_json::json!({"exec": {"command": ["/bin/sh", "-c", "cleanup"]}});
    let kill = Action::KillContainer {
        id: "c1".into(),
        name: "main".into(),
        grace: Duration::from_secs(10),
        message: "Stopping container main".into(),
        pre_stop: true,
        minimum: false,
    };
    let mut kills = kills();
    let out = fx.execute(&pod("img:1", Some(hook)), &observation(true), &[kill], &mut kills).await;
    assert!(out.is_empty(), "a kill reports when its task finishes: {out:?}");
    assert_eq!(kills.next().await, Outcome::Killed { id: "c1".into() });
    assert_eq!(rt.calls(), ["ExecSync c1 /bin/sh -c cleanup", "StopContainer c1 7s"]);
    assert_eq!(events.all()[0], ("Killing".to_string(), "Stopping container main".to_string()));
}

#[tokio::test(start_paused = true)]
async fn pre_stop_longer_than_grace_is_cut_and_reported() {
    let (fx, rt, events, _dir) = effects(FakeRuntime { hook_takes: Duration::from_secs(60), ..Default::default() });
    let hook = serde_json::json!({"exec": {"command": ["sleep", "60"]}});
    let kill = Action::KillContainer {
        id: "c1".into(),
        name: "main".into(),
        grace: Duration::from_secs(5),
        message: "Stopping container main".into(),
        pre_stop: true,
        minimum: false,
    };
    let mut kills = kills();
    let out = fx.execute(&pod("img:1", Some(hook)), &observation(true), &[kill], &mut kills).await;
    assert!(out.is_empty(), "a kill reports when its task finishes: {out:?}");
    assert_eq!(kills.next().await, Outcome::Killed { id: "c1".into() });
    assert_eq!(rt.calls(), ["ExecSync c1 sleep 60", "StopContainer c1 2s"]);
    assert_eq!(reasons(&events), ["Killing", "FailedPreStopHook"]);
}

fn with_post_start(mut p: Pod, hook: serde_json::Value) -> Pod {
    let c = &mut p.spec.as_mut().unwrap().containers[0];
    c.lifecycle.get_or_insert_default().post_start = Some(serde_json::from_value(hook).unwrap());
    p
}

#[tokio::test]
async fn post_start_runs_after_the_start() {
    let (fx, rt, events, _dir) = effects(FakeRuntime::default());
    let p = with_post_start(pod("img:1", None), serde_json::json!({"exec": {"command": ["touch", "/tmp/ok"]}}));
    let out = fx.execute(&p, &observation(false), &[START], &mut kills()).await;
    assert!(matches!(out.as_slice(), [Outcome::Started { container, .. }] if container == "main"));
    assert_eq!(rt.calls()[4..], ["StartContainer c-new", "ExecSync c-new touch /tmp/ok"]);
    assert_eq!(reasons(&events), ["Pulling", "Pulled", "Created", "Started"]);
}

#[tokio::test]
async fn failed_post_start_kills_the_container_with_pre_stop_and_grace() {
    let (fx, rt, events, _dir) = effects(FakeRuntime { exec_exit: 1, ..Default::default() });
    let pre_stop = serde_json::json!({"exec": {"command": ["cleanup"]}});
    let p = with_post_start(pod("img:1", Some(pre_stop)), serde_json::json!({"exec": {"command": ["false"]}}));
    let out = fx.execute(&p, &observation(false), &[START], &mut kills()).await;
    // The container did start; it is killed and then restarts by its restart policy.
    assert!(matches!(out.as_slice(), [Outcome::Started { container, .. }] if container == "main"));
    assert_eq!(rt.calls()[4..], ["StartContainer c-new", "ExecSync c-new false", "ExecSync c-new cleanup", "StopContainer c-new 30s"]);
    let all = events.all();
    assert_eq!(all[4], ("FailedPostStartHook".to_string(), "PostStartHook failed".to_string()));
    assert_eq!(all[5], ("Killing".to_string(), "FailedPostStartHook".to_string()));
    // The preStop hook failed as well (every exec exits 1 here).
    assert_eq!(all[6].0, "FailedPreStopHook");
}

#[test]
fn default_pull_policy() {
    let c = |image: &str| Container { image: Some(image.into()), ..Default::default() };
    assert_eq!(pull_policy(&c("workload")), "Always");
    assert_eq!(pull_policy(&c("workload:latest")), "Always");
    assert_eq!(pull_policy(&c("workload:1.0")), "IfNotPresent");
    assert_eq!(pull_policy(&c("registry:5000/workload")), "Always");
    assert_eq!(pull_policy(&c("registry:5000/workload:v1")), "IfNotPresent");
    assert_eq!(pull_policy(&c("w@sha256:abc")), "IfNotPresent");
}

#[tokio::test(start_paused = true)]
async fn execute_does_not_wait_for_a_kill() {
    let (fx, rt, _events, _dir) = effects(FakeRuntime { hook_takes: Duration::from_secs(20), ..Default::default() });
    let hook = serde_json::json!({"exec": {"command": ["sleep", "20"]}});
    let kill = Action::KillContainer {
        id: "c1".into(),
        name: "main".into(),
        grace: Duration::from_secs(30),
        message: "Stopping container main".into(),
        pre_stop: true,
        minimum: false,
    };
    let mut kills = kills();
    let t0 = tokio::time::Instant::now();
    fx.execute(&pod("img:1", Some(hook)), &observation(true), &[kill], &mut kills).await;
    assert!(t0.elapsed() < Duration::from_secs(1), "execute blocked for {:?}", t0.elapsed());
    assert!(tokio::time::timeout(Duration::from_secs(5), kills.next()).await.is_err(), "kill still in its preStop hook");
    assert_eq!(kills.next().await, Outcome::Killed { id: "c1".into() });
    assert_eq!(rt.calls(), ["ExecSync c1 sleep 20", "StopContainer c1 10s"], "hook time comes off the grace");
}

/// Upstream's killContainer: a kill that is not the pod's termination (here a liveness
/// failure with a probe-level grace of 1 s) never stops with less than 2 s; a termination's
/// grace (an override upstream) is used as given.
#[tokio::test(start_paused = true)]
async fn probe_kills_get_the_two_second_minimum() {
    for (minimum, want) in [(true, "StopContainer c1 2s"), (false, "StopContainer c1 1s")] {
        let (fx, rt, _events, _dir) = effects(FakeRuntime::default());
        let kill = Action::KillContainer {
            id: "c1".into(),
            name: "main".into(),
            grace: Duration::from_secs(1),
            message: "Container main failed liveness probe, will be restarted".into(),
            pre_stop: true,
            minimum,
        };
        let mut kills = kills();
        fx.execute(&pod("img:1", None), &observation(true), &[kill], &mut kills).await;
        assert_eq!(kills.next().await, Outcome::Killed { id: "c1".into() });
        assert_eq!(rt.calls(), [want], "minimum {minimum}");
    }
}
