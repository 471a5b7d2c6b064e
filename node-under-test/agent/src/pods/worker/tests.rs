//! Unit tests of the pod worker state machine (no IO).

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::pods::model::{Deletion, PodView, ProbeView, SandboxObs};

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

fn params() -> WorkerParams {
    let p = BackOffParams { base: Duration::from_secs(10), max: Duration::from_secs(300), reset_after: Duration::from_secs(600) };
    WorkerParams { container: p, image: p }
}

fn pod(init: &[&str], containers: &[&str], policy: RestartPolicy) -> PodView {
    PodView::example(init, containers, policy)
}

fn sandbox() -> Option<SandboxObs> {
    Some(SandboxObs { id: "sb1".into(), ready: true, ip: Some("10.244.1.2".into()), attempt: 0 })
}

fn running(name: &str, id: &str, restarts: u32, started: i64) -> ContainerObs {
    ContainerObs {
        id: id.into(),
        name: name.into(),
        restart_count: restarts,
        state: RunState::Running,
        exit_code: 0,
        reason: String::new(),
        message: String::new(),
        created_at: ts(started),
        started_at: Some(ts(started)),
        finished_at: None,
        image: "workload".into(),
        image_ref: "sha256:1".into(),
    }
}

fn exited(name: &str, id: &str, restarts: u32, started: i64, finished: i64, code: i32) -> ContainerObs {
    ContainerObs {
        state: RunState::Exited,
        exit_code: code,
        finished_at: Some(ts(finished)),
        ..running(name, id, restarts, started)
    }
}

fn obs(now: i64, pod: PodView, sandbox: Option<SandboxObs>, containers: Vec<ContainerObs>) -> Observation {
    Observation { now: ts(now), pod, sandbox, containers, probes: HashMap::new(), outcomes: vec![] }
}

fn starts(acts: &[Action]) -> Vec<(bool, usize, u32)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::StartContainer { init, index, restart_count, .. } => Some((*init, *index, *restart_count)),
            _ => None,
        })
        .collect()
}

#[test]
fn creates_sandbox_first_then_init_containers_in_order_then_containers() {
    let p = pod(&["i1", "i2"], &["a", "b"], RestartPolicy::Always);
    let (st, acts) = step(PodState::new(params()), &obs(0, p.clone(), None, vec![]));
    assert_eq!(acts, vec![Action::CreateSandbox { attempt: 0 }]);
    let (st, acts) = step(st, &obs(1, p.clone(), sandbox(), vec![]));
    assert_eq!(starts(&acts), vec![(true, 0, 0)]);
    // i1 still running: nothing new.
    let (st, acts) = step(st, &obs(2, p.clone(), sandbox(), vec![running("i1", "c1", 0, 1)]));
    assert!(starts(&acts).is_empty());
    let (st, acts) = step(st, &obs(3, p.clone(), sandbox(), vec![exited("i1", "c1", 0, 1, 2, 0)]));
    assert_eq!(starts(&acts), vec![(true, 1, 0)]);
    let done = vec![exited("i1", "c1", 0, 1, 2, 0), exited("i2", "c2", 0, 3, 3, 0)];
    let (_, acts) = step(st, &obs(4, p, sandbox(), done));
    assert_eq!(starts(&acts), vec![(false, 0, 0), (false, 1, 0)]);
}

#[test]
fn failed_init_container_with_never_fails_the_pod() {
    let p = pod(&["i1"], &["a"], RestartPolicy::Never);
    let o = obs(5, p, sandbox(), vec![exited("i1", "c1", 0, 1, 2, 1)]);
    let (st, acts) = step(PodState::new(params()), &o);
    assert_eq!(pod_phase(&o, &st), Phase::Failed);
    assert!(starts(&acts).is_empty());
    assert!(acts.contains(&Action::StopSandbox { id: "sb1".into() }));
}

#[test]
fn failed_init_container_with_on_failure_is_restarted() {
    let p = pod(&["i1"], &["a"], RestartPolicy::OnFailure);
    let o = obs(5, p, sandbox(), vec![exited("i1", "c1", 0, 1, 2, 1)]);
    let (st, acts) = step(PodState::new(params()), &o);
    assert_eq!(starts(&acts), vec![(true, 0, 1)]);
    assert_eq!(pod_phase(&o, &st), Phase::Pending);
}

#[test]
fn restart_policies() {
    for (policy, code, restarted, phase) in [
        (RestartPolicy::Always, 0, true, Phase::Running),
        (RestartPolicy::Always, 1, true, Phase::Running),
        (RestartPolicy::OnFailure, 0, false, Phase::Succeeded),
        (RestartPolicy::OnFailure, 1, true, Phase::Running),
        (RestartPolicy::Never, 0, false, Phase::Succeeded),
        (RestartPolicy::Never, 1, false, Phase::Failed),
    ] {
        let o = obs(10, pod(&[], &["a"], policy), sandbox(), vec![exited("a", "c1", 0, 1, 5, code)]);
        let st0 = PodState::new(params());
        assert_eq!(pod_phase(&o, &st0), phase, "{policy:?} exit {code}");
        let (_, acts) = step(st0, &o);
        assert_eq!(!starts(&acts).is_empty(), restarted, "{policy:?} exit {code}: {acts:?}");
    }
}

#[test]
fn crash_loop_back_off_doubles_and_caps() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let mut st = PodState::new(params());
    let mut now = 0i64;
    let mut restart_times = vec![];
    let mut restarts = 0u32;
    // The container exits 1s after each start; record when the worker restarts it.
    let mut last = exited("a", "c0", 0, 0, 1, 1);
    now = now.max(1);
    while restart_times.len() < 9 {
        let (s, acts) = step(st, &obs(now, p.clone(), sandbox(), vec![last.clone()]));
        st = s;
        if let Some((_, _, rc)) = starts(&acts).first().copied() {
            restart_times.push(now);
            restarts = rc;
            assert_eq!(rc as usize, restart_times.len());
            last = exited("a", &format!("c{rc}"), rc, now, now + 1, 1);
            now += 1;
        } else {
            assert_eq!(st.waiting["a"].reason, "CrashLoopBackOff");
            let wake = acts.iter().find_map(|a| match a { Action::WakeAt(t) => Some(*t), _ => None }).unwrap();
            now = (wake.as_second() - 1_700_000_000).max(now + 1);
        }
    }
    let gaps: Vec<i64> = restart_times.windows(2).map(|w| w[1] - w[0] - 1).collect();
    assert_eq!(restart_times[0], 1, "first restart is immediate");
    assert_eq!(gaps, [10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(restarts, 9);
}

#[test]
fn back_off_message_and_event_once() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let mut st = PodState::new(params());
    st.backoff.next("a", ts(0), ts(0));
    let o = obs(3, p.clone(), sandbox(), vec![exited("a", "c1", 1, 1, 2, 1)]);
    let (st, acts) = step(st, &o);
    assert_eq!(st.waiting["a"].message, "back-off 10s restarting failed container=a pod=p_ns(u1)");
    let events: Vec<_> = acts.iter().filter(|a| matches!(a, Action::Event { reason, .. } if reason == "BackOff")).collect();
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0], Action::Event { message, warning: true, .. } if message == "Back-off restarting failed container a in pod p_ns(u1)"));
    let (_, acts) = step(st, &obs(4, p, sandbox(), vec![exited("a", "c1", 1, 1, 2, 1)]));
    assert!(!acts.iter().any(|a| matches!(a, Action::Event { reason, .. } if reason == "BackOff")));
}

#[test]
fn back_off_resets_after_long_run() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let mut st = PodState::new(params());
    for t in 0..5 {
        st.backoff.next("a", ts(t), ts(t));
    }
    // Ran for 15 minutes before exiting: restarted at once, delay back to base.
    let (st, acts) = step(st, &obs(906, p, sandbox(), vec![exited("a", "c5", 5, 5, 905, 1)]));
    assert_eq!(starts(&acts), vec![(false, 0, 6)]);
    assert_eq!(st.backoff.delay("a"), Some(Duration::from_secs(10)));
}

#[test]
fn liveness_failure_kills_with_probe_grace_and_message() {
    let mut p = pod(&[], &["a"], RestartPolicy::Always);
    p.containers[0].liveness_grace = Some(Duration::from_secs(5));
    let mut o = obs(10, p, sandbox(), vec![running("a", "c1", 0, 1)]);
    o.probes.insert("c1".into(), ProbeView { ready: false, started: true, liveness_failed: true, startup_failed: false });
    let (_, acts) = step(PodState::new(params()), &o);
    assert_eq!(
        acts,
        vec![Action::KillContainer {
            id: "c1".into(),
            name: "a".into(),
            grace: Duration::from_secs(5),
            message: "Container a failed liveness probe, will be restarted".into(),
            pre_stop: true,
            minimum: true,
        }]
    );
}

#[test]
fn deletion_kills_then_removes_then_deletes_once() {
    let mut p = pod(&[], &["a", "b"], RestartPolicy::Always);
    p.deletion = Some(Deletion { grace: Duration::from_secs(7), gone: false });
    let o = obs(10, p.clone(), sandbox(), vec![running("a", "c1", 0, 1), exited("b", "c2", 0, 1, 2, 0)]);
    let (st, acts) = step(PodState::new(params()), &o);
    assert_eq!(acts.len(), 1);
    assert!(matches!(&acts[0], Action::KillContainer { id, grace, .. } if id == "c1" && *grace == Duration::from_secs(7)));
    let o = obs(11, p.clone(), sandbox(), vec![exited("a", "c1", 0, 1, 10, 143), exited("b", "c2", 0, 1, 2, 0)]);
    let (st, acts) = step(st, &o);
    assert_eq!(acts, vec![Action::StopSandbox { id: "sb1".into() }, Action::RemoveAll, Action::DeleteFromApi]);
    let (_, acts) = step(st, &obs(12, p, None, vec![]));
    assert!(acts.is_empty(), "{acts:?}");
}

#[test]
fn active_deadline_fails_pod_and_stops_containers() {
    let mut p = pod(&[], &["a"], RestartPolicy::Always);
    p.active_deadline = Some(Duration::from_secs(5));
    p.start_time = Some(ts(0));
    let (st, acts) = step(PodState::new(params()), &obs(3, p.clone(), sandbox(), vec![running("a", "c1", 0, 1)]));
    assert!(acts.contains(&Action::WakeAt(ts(5))));
    let o = obs(5, p, sandbox(), vec![running("a", "c1", 0, 1)]);
    let (st, acts) = step(st, &o);
    let t = st.terminal.clone().unwrap();
    assert_eq!((t.phase, t.reason.as_deref()), (Phase::Failed, Some("DeadlineExceeded")));
    assert!(acts.iter().any(|a| matches!(a, Action::KillContainer { id, .. } if id == "c1")));
    assert_eq!(pod_phase(&o, &st), Phase::Failed);
}

#[test]
fn image_pull_failure_then_back_off() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let mut o = obs(1, p.clone(), sandbox(), vec![]);
    o.outcomes = vec![Outcome::ImagePullFailed { container: "a".into(), message: "not found".into() }];
    let (st, acts) = step(PodState::new(params()), &o);
    assert!(starts(&acts).is_empty());
    assert_eq!(st.waiting["a"], Waiting { reason: "ErrImagePull".into(), message: "not found".into() });
    // ErrImagePull stays through the first half of the 10 s back-off, then ImagePullBackOff.
    let (st, _) = step(st, &obs(2, p.clone(), sandbox(), vec![]));
    assert_eq!(st.waiting["a"].reason, "ErrImagePull");
    let (st, _) = step(st, &obs(7, p.clone(), sandbox(), vec![]));
    assert_eq!(st.waiting["a"], Waiting { reason: "ImagePullBackOff".into(), message: "Back-off pulling image \"workload\"".into() });
    let (_, acts) = step(st, &obs(11, p, sandbox(), vec![]));
    assert_eq!(starts(&acts), vec![(false, 0, 0)]);
}

#[test]
fn adoption_does_not_restart_running_containers() {
    // A fresh state (restarted agent) observing running containers with restart counts.
    let p = pod(&["i1"], &["a"], RestartPolicy::Always);
    let o = obs(100, p, sandbox(), vec![exited("i1", "c0", 0, 1, 2, 0), running("a", "c7", 3, 50)]);
    let (_, acts) = step(PodState::new(params()), &o);
    assert!(acts.is_empty(), "{acts:?}");
}

#[test]
fn restart_keeps_last_dead_instance_and_removes_older() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let o = obs(100, p, sandbox(), vec![exited("a", "c0", 0, 1, 2, 1), exited("a", "c1", 1, 3, 4, 1)]);
    let (_, acts) = step(PodState::new(params()), &o);
    assert!(acts.contains(&Action::StartContainer { init: false, index: 0, restart_count: 2, remove: vec!["c0".into()] }));
}

#[test]
fn sandbox_failure_backs_off_with_event() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let mut o = obs(1, p.clone(), None, vec![]);
    o.outcomes = vec![Outcome::SandboxFailed { message: "boom".into() }];
    let (st, acts) = step(PodState::new(params()), &o);
    assert!(acts.iter().any(|a| matches!(a, Action::Event { reason, message, warning: true, .. }
        if reason == "FailedCreatePodSandBox" && message == "Failed to create pod sandbox: boom")));
    assert!(!acts.iter().any(|a| matches!(a, Action::CreateSandbox { .. })));
    let (_, acts) = step(st, &obs(12, p, None, vec![]));
    assert_eq!(acts, vec![Action::CreateSandbox { attempt: 0 }]);
}

#[test]
fn terminal_phase_in_api_is_never_restarted() {
    let mut p = pod(&[], &["a"], RestartPolicy::Always);
    p.api_terminal = Some((false, Some("DeadlineExceeded".into()), None));
    // The runtime lost everything: nothing is created again.
    let o = obs(10, p, None, vec![]);
    let (st, acts) = step(PodState::new(params()), &o);
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(pod_phase(&o, &st), Phase::Failed);
    assert_eq!(st.terminal.unwrap().reason.as_deref(), Some("DeadlineExceeded"));
}

#[test]
fn kill_in_flight_is_not_repeated_until_it_finishes() {
    let mut p = pod(&[], &["a"], RestartPolicy::Always);
    p.deletion = Some(Deletion { grace: Duration::from_secs(30), gone: false });
    let o = obs(10, p.clone(), sandbox(), vec![running("a", "c1", 0, 1)]);
    let (st, acts) = step(PodState::new(params()), &o);
    assert!(matches!(&acts[..], [Action::KillContainer { id, pre_stop: true, .. }] if id == "c1"), "{acts:?}");
    // The container still runs its SIGTERM delay: the worker keeps stepping without killing again.
    let (st, acts) = step(st, &obs(11, p.clone(), sandbox(), vec![running("a", "c1", 0, 1)]));
    assert!(acts.is_empty(), "{acts:?}");
    // The kill finished but the container survived (the stop failed): it is killed again.
    let mut o = obs(12, p.clone(), sandbox(), vec![running("a", "c1", 0, 1)]);
    o.outcomes.push(Outcome::Killed { id: "c1".into() });
    let (st, acts) = step(st, &o);
    assert!(matches!(&acts[..], [Action::KillContainer { id, .. }] if id == "c1"), "{acts:?}");
    // Once it exited, the pod is cleaned up.
    let mut o = obs(13, p, sandbox(), vec![exited("a", "c1", 0, 1, 12, 143)]);
    o.outcomes.push(Outcome::Killed { id: "c1".into() });
    let (_, acts) = step(st, &o);
    assert_eq!(acts, vec![Action::StopSandbox { id: "sb1".into() }, Action::RemoveAll, Action::DeleteFromApi]);
}

#[test]
fn shorter_grace_kills_again_without_pre_stop() {
    let mut p = pod(&[], &["a"], RestartPolicy::Always);
    p.containers[0].liveness_grace = Some(Duration::from_secs(60));
    let mut o = obs(10, p.clone(), sandbox(), vec![running("a", "c1", 0, 1)]);
    o.probes.insert("c1".into(), ProbeView { ready: false, started: true, liveness_failed: true, startup_failed: false });
    let (st, acts) = step(PodState::new(params()), &o);
    assert!(matches!(&acts[..], [Action::KillContainer { grace, .. }] if *grace == Duration::from_secs(60)));
    p.deletion = Some(Deletion { grace: Duration::from_secs(2), gone: false });
    let (st, acts) = step(st, &obs(11, p.clone(), sandbox(), vec![running("a", "c1", 0, 1)]));
    assert!(
        matches!(&acts[..], [Action::KillContainer { grace, pre_stop: false, .. }] if *grace == Duration::from_secs(2)),
        "{acts:?}"
    );
    let (_, acts) = step(st, &obs(12, p, sandbox(), vec![running("a", "c1", 0, 1)]));
    assert!(acts.is_empty(), "{acts:?}");
}

#[test]
fn sandbox_changed_is_announced_once_per_kill() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let dead = Some(SandboxObs { id: "sb1".into(), ready: false, ip: None, attempt: 0 });
    let (st, acts) = step(PodState::new(params()), &obs(10, p.clone(), dead.clone(), vec![running("a", "c1", 0, 1)]));
    assert!(acts.iter().any(|a| matches!(a, Action::Event { reason, .. } if reason == "SandboxChanged")));
    assert!(acts.iter().any(|a| matches!(a, Action::KillContainer { .. })));
    let (_, acts) = step(st, &obs(11, p, dead, vec![running("a", "c1", 0, 1)]));
    assert!(acts.is_empty(), "{acts:?}");
}

/// A crash-looping container's worker does not keep one announcement per dead instance: only
/// instances the runtime still has are remembered.
#[test]
fn announcements_stay_bounded_through_a_crash_loop() {
    let p = pod(&[], &["a"], RestartPolicy::Always);
    let mut st = PodState::new(params());
    for i in 0..50u32 {
        let t = i64::from(i) * 1000;
        // Only the latest dead instance is still in the runtime (older ones were removed).
        let (next, _) = step(st, &obs(t + 1, p.clone(), sandbox(), vec![exited("a", &format!("c{i}"), i, t, t + 1, 1)]));
        st = next;
    }
    assert!(st.announced.len() <= 2, "{} announcements after 50 crashes: {:?}", st.announced.len(), st.announced);
}

/// A pod with sidecar `log` (init container 0) before regular init container `i` and main `a`.
fn sidecar_pod(policy: RestartPolicy) -> PodView {
    let mut p = pod(&["log", "i"], &["a"], policy);
    p.init_containers[0].sidecar = true;
    p
}

fn kills_of(acts: &[Action]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| match a {
            Action::KillContainer { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Native sidecars (upstream KEP-753): the sidecar starts first and keeps running; the next
/// init container starts only once it has started; the main container after that.
#[test]
fn sidecar_starts_first_and_keeps_running() {
    let p = sidecar_pod(RestartPolicy::Never);
    let (st, acts) = step(PodState::new(params()), &obs(0, p.clone(), sandbox(), vec![]));
    assert_eq!(starts(&acts), vec![(true, 0, 0)]);
    // Not yet started (startup probe pending): nothing else starts.
    let mut o = obs(1, p.clone(), sandbox(), vec![running("log", "s1", 0, 1)]);
    o.probes.insert("s1".into(), ProbeView { ready: false, started: false, liveness_failed: false, startup_failed: false });
    let (st, acts) = step(st, &o);
    assert!(starts(&acts).is_empty(), "{acts:?}");
    assert_eq!(pod_phase(&o, &st), Phase::Pending);
    let (st, acts) = step(st, &obs(2, p.clone(), sandbox(), vec![running("log", "s1", 0, 1)]));
    assert_eq!(starts(&acts), vec![(true, 1, 0)]);
    let o = obs(3, p.clone(), sandbox(), vec![running("log", "s1", 0, 1), exited("i", "i1", 0, 2, 3, 0)]);
    let (st, acts) = step(st, &o);
    assert_eq!(starts(&acts), vec![(false, 0, 0)]);
    // The main container runs with the sidecar: the pod is Running.
    let o = obs(4, p.clone(), sandbox(), vec![running("log", "s1", 0, 1), exited("i", "i1", 0, 2, 3, 0), running("a", "a1", 0, 4)]);
    let (st, acts) = step(st, &o);
    assert!(acts.is_empty() || starts(&acts).is_empty(), "{acts:?}");
    assert_eq!(pod_phase(&o, &st), Phase::Running);
}

/// A sidecar that exits is restarted even under restartPolicy Never, without stopping the
/// main container; when the main container completes, the pod Succeeded and only then is
/// the sidecar stopped.
#[test]
fn sidecar_restarts_and_stops_after_the_main_container() {
    let p = sidecar_pod(RestartPolicy::Never);
    let base = vec![exited("i", "i1", 0, 2, 3, 0), running("a", "a1", 0, 4)];
    let mut cs = base.clone();
    cs.push(exited("log", "s1", 0, 1, 5, 1));
    let (st, acts) = step(PodState::new(params()), &obs(5, p.clone(), sandbox(), cs));
    assert_eq!(starts(&acts), vec![(true, 0, 1)], "the sidecar is restarted at once the first time");
    assert!(kills_of(&acts).is_empty(), "{acts:?}");
    let o = obs(9, p.clone(), sandbox(), vec![running("log", "s2", 1, 6), exited("i", "i1", 0, 2, 3, 0), exited("a", "a1", 0, 4, 9, 0)]);
    let (st, acts) = step(st, &o);
    assert_eq!(pod_phase(&o, &st), Phase::Succeeded);
    assert_eq!(kills_of(&acts), ["log"], "the sidecar is stopped once the main container is done");
}

/// On deletion the main containers are stopped first, the sidecars after them.
#[test]
fn deletion_stops_sidecars_last() {
    let mut p = sidecar_pod(RestartPolicy::Always);
    p.deletion = Some(Deletion { grace: Duration::from_secs(5), gone: false });
    let cs = vec![running("log", "s1", 0, 1), exited("i", "i1", 0, 2, 3, 0), running("a", "a1", 0, 4)];
    let (st, acts) = step(PodState::new(params()), &obs(10, p.clone(), sandbox(), cs));
    assert_eq!(kills_of(&acts), ["a"]);
    let cs = vec![running("log", "s1", 0, 1), exited("i", "i1", 0, 2, 3, 0), exited("a", "a1", 0, 4, 11, 0)];
    let (_, acts) = step(st, &obs(11, p, sandbox(), cs));
    assert_eq!(kills_of(&acts), ["log"]);
}
