//! Tests of pod status computation and patch rendering.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::pods::backoff::BackOffParams;
use crate::pods::model::{PodView, ProbeView, RestartPolicy, SandboxObs};
use crate::pods::worker::{WorkerParams, step};

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

fn view(init: &[&str], containers: &[&str], policy: RestartPolicy) -> PodView {
    PodView::example(init, containers, policy)
}

fn inst(name: &str, id: &str, rc: u32, state: RunState, code: i32) -> ContainerObs {
    ContainerObs {
        id: id.into(),
        name: name.into(),
        restart_count: rc,
        state,
        exit_code: code,
        reason: String::new(),
        message: String::new(),
        created_at: ts(rc as i64),
        started_at: Some(ts(rc as i64)),
        finished_at: (state == RunState::Exited).then(|| ts(rc as i64 + 1)),
        image: "workload".into(),
        image_ref: "sha256:abc".into(),
    }
}

fn observation(now: i64, v: PodView, containers: Vec<ContainerObs>) -> Observation {
    Observation {
        now: ts(now),
        pod: v,
        sandbox: Some(SandboxObs { id: "sb".into(), ready: true, ip: Some("10.244.1.7".into()), attempt: 0 }),
        containers,
        probes: HashMap::new(),
        outcomes: vec![],
    }
}

fn state() -> PodState {
    let p = BackOffParams { base: Duration::from_secs(10), max: Duration::from_secs(300), reset_after: Duration::from_secs(600) };
    PodState::new(WorkerParams { container: p, image: p })
}

fn cx() -> StatusContext<'static> {
    StatusContext { runtime_name: "fake", host_ip: Some("10.77.0.11"), messages: HashMap::new() }
}

fn kinds(s: &PodStatus) -> Vec<(String, String)> {
    s.conditions.iter().flatten().map(|c| (c.type_.clone(), c.status.clone())).collect()
}

#[test]
fn running_ready_pod_conditions_in_upstream_order() {
    let o = observation(5, view(&[], &["b", "a"], RestartPolicy::Always), vec![
        inst("a", "c1", 0, RunState::Running, 0),
        inst("b", "c2", 0, RunState::Running, 0),
    ]);
    let (st, _) = step(state(), &o);
    let s = compute_status(&Pod::default(), &o, &st, &cx(), None);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let expected = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];
    assert_eq!(kinds(&s), expected.map(|k| (k.to_string(), "True".to_string())));
    let names: Vec<_> = s.container_statuses.as_ref().unwrap().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "container statuses sorted by name as upstream");
    let a = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(a.container_id.as_deref(), Some("fake://c1"));
    assert!(a.ready);
    assert_eq!(a.started, Some(true));
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.7"));
    assert_eq!(s.host_ip.as_deref(), Some("10.77.0.11"));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
}

#[test]
fn readiness_probe_and_unready_message() {
    let mut o = observation(5, view(&[], &["a", "b"], RestartPolicy::Always), vec![
        inst("a", "c1", 0, RunState::Running, 0),
        inst("b", "c2", 0, RunState::Running, 0),
    ]);
    o.probes.insert("c1".into(), ProbeView { ready: false, started: true, liveness_failed: false, startup_failed: false });
    o.probes.insert("c2".into(), ProbeView { ready: false, started: false, liveness_failed: false, startup_failed: false });
    let (st, _) = step(state(), &o);
    let s = compute_status(&Pod::default(), &o, &st, &cx(), None);
    let ready = &s.conditions.as_ref().unwrap()[2];
    assert_eq!(ready.type_, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(ready.message.as_deref(), Some("containers with unready status: [a b]"));
    assert_eq!(s.container_statuses.as_ref().unwrap()[1].started, Some(false));
}

#[test]
fn init_containers_pending_and_pod_initializing() {
    let o = observation(5, view(&["i1", "i2"], &["a"], RestartPolicy::Always), vec![inst("i1", "c1", 0, RunState::Running, 0)]);
    let (st, _) = step(state(), &o);
    let s = compute_status(&Pod::default(), &o, &st, &cx(), None);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let init = &s.conditions.as_ref().unwrap()[1];
    assert_eq!((init.type_.as_str(), init.status.as_str()), ("Initialized", "False"));
    assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(init.message.as_deref(), Some("containers with incomplete status: [i1 i2]"));
    let a = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(a.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("PodInitializing"));
    let i2 = &s.init_container_statuses.as_ref().unwrap()[1];
    assert_eq!(i2.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("PodInitializing"));
}

#[test]
fn crash_loop_shows_waiting_with_last_state() {
    let mut st = state();
    st.backoff.next("a", ts(0), ts(0));
    let o = observation(3, view(&[], &["a"], RestartPolicy::Always), vec![
        inst("a", "c0", 0, RunState::Exited, 1),
        inst("a", "c1", 1, RunState::Exited, 2),
    ]);
    let (st, _) = step(st, &o);
    let s = compute_status(&Pod::default(), &o, &st, &cx(), None);
    let a = &s.container_statuses.as_ref().unwrap()[0];
    let w = a.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = a.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    assert_eq!(last.container_id.as_deref(), Some("fake://c1"));
    assert_eq!(a.restart_count, 1);
    assert_eq!(s.phase.as_deref(), Some("Running"));
}

#[test]
fn completed_pod_conditions_and_transition_times() {
    let v = view(&[], &["a"], RestartPolicy::Never);
    let o = observation(5, v.clone(), vec![inst("a", "c0", 0, RunState::Running, 0)]);
    let (st, _) = step(state(), &o);
    let first = compute_status(&Pod::default(), &o, &st, &cx(), None);
    let o2 = observation(9, v, vec![inst("a", "c0", 0, RunState::Exited, 0)]);
    let (st, _) = step(st, &o2);
    let s = compute_status(&Pod::default(), &o2, &st, &cx(), Some(&first));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let conds = s.conditions.as_ref().unwrap();
    assert_eq!(conds[2].reason.as_deref(), Some("PodCompleted"));
    assert_eq!(conds[2].last_transition_time, Some(Time(ts(9))), "Ready changed");
    assert_eq!(conds[1].last_transition_time, Some(Time(ts(5))), "Initialized unchanged");
    let term = s.container_statuses.as_ref().unwrap()[0].state.as_ref().unwrap().terminated.clone().unwrap();
    assert_eq!(term.reason.as_deref(), Some("Completed"));
}

#[test]
fn patch_has_uid_and_element_order() {
    let o = observation(5, view(&[], &["a"], RestartPolicy::Always), vec![inst("a", "c1", 0, RunState::Running, 0)]);
    let (st, _) = step(state(), &o);
    let s = compute_status(&Pod::default(), &o, &st, &cx(), None);
    let p = status_patch("u1", &s);
    assert_eq!(p["metadata"]["uid"], "u1");
    let order: Vec<&str> = p["status"]["$setElementOrder/conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
    assert_eq!(p["status"]["phase"], "Running");
}

/// Applies a pod-status strategic merge patch the way the API server does for the fields the
/// agent writes: null deletes, conditions merge by type, podIPs/hostIPs by ip (or are replaced
/// on a `$patch: replace` element), other lists are replaced whole.
fn apply_status_patch(server: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    fn merge(orig: &mut Value, patch: &Value, field: &str) {
        match (orig, patch) {
            (Value::Object(o), Value::Object(p)) => {
                for (k, v) in p.iter().filter(|(k, _)| !k.starts_with('$')) {
                    if v.is_null() {
                        o.remove(k);
                    } else {
                        merge(o.entry(k.clone()).or_insert(Value::Null), v, k);
                    }
                }
            }
            (o @ Value::Array(_), Value::Array(p)) if matches!(field, "conditions" | "podIPs" | "hostIPs") => {
                let replace = p.iter().any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"));
                let items: Vec<&Value> = p.iter().filter(|e| e.get("$patch").is_none()).collect();
                let Value::Array(base) = o else { unreachable!() };
                if replace {
                    base.clear();
                }
                let key = if field == "conditions" { "type" } else { "ip" };
                for item in items {
                    match base.iter_mut().find(|b| b.get(key) == item.get(key)) {
                        Some(b) => merge(b, item, ""),
                        None => base.push(item.clone()),
                    }
                }
            }
            (o, p) => *o = p.clone(),
        }
    }
    merge(server, &patch["status"], "status");
}

fn condition_json<'a>(server: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    server["conditions"].as_array().unwrap().iter().find(|c| c["type"] == kind).unwrap()
}

#[test]
fn ready_true_clears_reason_and_message_left_by_false() {
    let mut o = observation(5, view(&[], &["web"], RestartPolicy::Always), vec![inst("web", "c1", 0, RunState::Running, 0)]);
    o.probes.insert("c1".into(), ProbeView { ready: false, started: true, liveness_failed: false, startup_failed: false });
    let (st, _) = step(state(), &o);
    let unready = compute_status(&Pod::default(), &o, &st, &cx(), None);
    let mut server = serde_json::json!({});
    apply_status_patch(&mut server, &status_patch("u1", &unready));
    assert_eq!(condition_json(&server, "Ready")["reason"], "ContainersNotReady");

    o.probes.insert("c1".into(), ProbeView { ready: true, started: true, liveness_failed: false, startup_failed: false });
    let ready = compute_status(&Pod::default(), &o, &st, &cx(), Some(&unready));
    let patch = status_patch("u1", &ready);
    let ready_patch = patch["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert!(ready_patch["reason"].is_null() && ready_patch.get("reason").is_some(), "reason written as null: {ready_patch}");
    apply_status_patch(&mut server, &patch);
    for kind in ["Ready", "ContainersReady"] {
        let c = condition_json(&server, kind);
        assert_eq!(c["status"], "True");
        assert!(c.get("reason").is_none() && c.get("message").is_none(), "{kind} keeps stale fields: {c}");
    }
}

#[test]
fn waiting_to_running_and_new_pod_ip_leave_nothing_stale() {
    let v = view(&[], &["web"], RestartPolicy::Always);
    let mut o = observation(5, v.clone(), vec![]);
    let (st, _) = step(state(), &o);
    let pending = compute_status(&Pod::default(), &o, &st, &cx(), None);
    let mut server = serde_json::json!({});
    apply_status_patch(&mut server, &status_patch("u1", &pending));
    assert_eq!(server["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");

    o = observation(6, v, vec![inst("web", "c1", 0, RunState::Running, 0)]);
    o.sandbox.as_mut().unwrap().ip = Some("10.244.1.9".into());
    let (st, _) = step(st, &o);
    let running = compute_status(&Pod::default(), &o, &st, &cx(), Some(&pending));
    apply_status_patch(&mut server, &status_patch("u1", &running));
    let state = &server["containerStatuses"][0]["state"];
    assert!(state.get("waiting").is_none() && state.get("running").is_some(), "state {state}");
    assert_eq!(server["podIP"], "10.244.1.9");
    assert_eq!(server["podIPs"], serde_json::json!([{"ip": "10.244.1.9"}]), "old address replaced");
}

#[test]
fn terminal_reason_and_message_are_cleared_when_absent() {
    let o = observation(5, view(&[], &["a"], RestartPolicy::Always), vec![inst("a", "c1", 0, RunState::Running, 0)]);
    let (st, _) = step(state(), &o);
    let s = compute_status(&Pod::default(), &o, &st, &cx(), None);
    let mut server = serde_json::json!({"reason": "Stale", "message": "left over", "nominatedNodeName": "other"});
    apply_status_patch(&mut server, &status_patch("u1", &s));
    assert!(server.get("reason").is_none() && server.get("message").is_none(), "{server}");
    assert_eq!(server["nominatedNodeName"], "other", "fields the agent does not own are left alone");
}

#[test]
fn readiness_gates_hold_ready_with_upstream_messages() {
    let mut p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "g", "namespace": "default", "uid": "u"},
        "spec": {"containers": [{"name": "c"}], "readinessGates": [{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]},
        "status": {"conditions": [{"type": "example.com/b", "status": "False"}]},
    }))
    .unwrap();
    assert_eq!(
        unready_gates(&p).as_deref(),
        Some("corresponding condition of pod readiness gate \"example.com/a\" does not exist., the status of pod readiness gate \"example.com/b\" is not \"True\", but False")
    );
    p.status = serde_json::from_value(serde_json::json!({"conditions": [
        {"type": "example.com/a", "status": "True"}, {"type": "example.com/b", "status": "True"}]}))
    .unwrap();
    assert_eq!(unready_gates(&p), None);
}
