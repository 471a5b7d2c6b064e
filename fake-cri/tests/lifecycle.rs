//! CRI lifecycle against a fake-cri in its own namespaces: version/status, sandboxes,
//! containers from every state, idempotent stop/remove, filters, errors, events, call log.
mod common;
use common::*;
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::time::Duration;
use tonic::Code;

#[tokio::test]
async fn version_status_and_runtime_config() {
    let mut w = World::start(&[]).await;
    let v = w.client.runtime.version(cri::VersionRequest::default()).await.unwrap().into_inner();
    assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("fake-cri", "v1"));
    let cond = |s: &cri::StatusResponse, t: &str| s.status.as_ref().unwrap().conditions.iter().find(|c| c.r#type == t).unwrap().status;
    let s = w.client.runtime.status(cri::StatusRequest { verbose: true }).await.unwrap().into_inner();
    assert!(cond(&s, "RuntimeReady"));
    assert!(!cond(&s, "NetworkReady"));
    assert!(s.info.contains_key("config"));
    // No pod network before a pod CIDR, like containerd without CNI config.
    let err = w.client.runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod_config("early")), runtime_handler: String::new() }).await.unwrap_err();
    assert!(err.message().contains("cni plugin not initialized"), "{err:?}");
    w.set_cidr().await;
    let s = w.client.runtime.status(cri::StatusRequest { verbose: false }).await.unwrap().into_inner();
    assert!(cond(&s, "NetworkReady"));
    // RuntimeReady is derived, not canned: a runtime_not_ready fault turns it false with its
    // message, and lifting the fault turns it true again.
    std::fs::write(w.state_dir().join("faults.json"), r#"{"runtime_not_ready":"disk full"}"#).unwrap();
    let s = w.client.runtime.status(cri::StatusRequest { verbose: false }).await.unwrap().into_inner();
    let rr = s.status.as_ref().unwrap().conditions.iter().find(|c| c.r#type == "RuntimeReady").unwrap().clone();
    assert_eq!((rr.status, rr.reason.as_str(), rr.message.as_str()), (false, "RuntimeNotReady", "disk full"));
    std::fs::write(w.state_dir().join("faults.json"), "{}").unwrap();
    let s = w.client.runtime.status(cri::StatusRequest { verbose: false }).await.unwrap().into_inner();
    assert!(cond(&s, "RuntimeReady"));
    let rc = w.client.runtime.runtime_config(cri::RuntimeConfigRequest {}).await.unwrap().into_inner();
    assert_eq!(rc.linux.unwrap().cgroup_driver, cri::CgroupDriver::Cgroupfs as i32);
    let e = w.client.runtime.exec(cri::ExecRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "exec in a container that does not exist: {e:?}");
    let e = w.client.runtime.checkpoint_container(cri::CheckpointContainerRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let gw = w.node_cmd(&["ip", "-4", "-o", "addr", "show", "cbr0"]);
    assert!(String::from_utf8_lossy(&gw.stdout).contains("10.244.1.1/24"), "{gw:?}");
    // The call log records every call.
    let log = std::fs::read_to_string(w.state_dir().join("cri-calls.jsonl")).unwrap();
    let methods: Vec<String> = log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["method"].as_str().unwrap().to_string()).collect();
    for m in ["Version", "Status", "RunPodSandbox", "UpdateRuntimeConfig", "RuntimeConfig", "Exec", "CheckpointContainer"] {
        assert!(methods.iter().any(|x| x == m), "{m} missing from {methods:?}");
    }
    assert!(log.contains("\"code\":\"Unimplemented\""));
}

#[tokio::test]
async fn sandbox_lifecycle_filters_and_errors() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let mut a = pod_config("a");
    a.labels = HashMap::from([("app".to_string(), "x".to_string())]);
    let sa = w.run_pod(a).await;
    let sb = w.run_pod(pod_config("b")).await;
    let st = w.client.runtime.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: sa.clone(), verbose: true }).await.unwrap().into_inner();
    let status = st.status.unwrap();
    assert_eq!(status.state, cri::PodSandboxState::SandboxReady as i32);
    let ip = status.network.unwrap().ip;
    assert!(ip.starts_with("10.244.1.") && ip != "10.244.1.1", "{ip}");
    assert_eq!(status.labels["app"], "x");
    assert!(st.info.contains_key("info"));
    let rc = w.client.runtime.clone();
    let list = |f: Option<cri::PodSandboxFilter>| {
        let mut c = rc.clone();
        async move { c.list_pod_sandbox(cri::ListPodSandboxRequest { filter: f }).await.unwrap().into_inner().items }
    };
    assert_eq!(list(None).await.len(), 2);
    assert_eq!(list(Some(cri::PodSandboxFilter { id: sa.clone(), ..Default::default() })).await.len(), 1);
    assert_eq!(list(Some(cri::PodSandboxFilter { id: sa[..12].to_string(), ..Default::default() })).await[0].id, sa);
    let by_label = list(Some(cri::PodSandboxFilter { label_selector: HashMap::from([("app".into(), "x".into())]), ..Default::default() })).await;
    assert_eq!(by_label.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![sa.clone()]);
    // Same name again is refused.
    let dup = w.client.runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod_config("b")), runtime_handler: String::new() }).await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    // Stop: NotReady, IP released, idempotent.
    w.client.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: sb.clone() }).await.unwrap();
    w.client.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: sb.clone() }).await.unwrap();
    let notready = list(Some(cri::PodSandboxFilter { state: Some(cri::PodSandboxStateValue { state: cri::PodSandboxState::SandboxNotready as i32 }), ..Default::default() })).await;
    assert_eq!(notready.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![sb.clone()]);
    let ready = list(Some(cri::PodSandboxFilter { state: Some(cri::PodSandboxStateValue { state: 0 }), ..Default::default() })).await;
    assert_eq!(ready.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![sa.clone()]);
    let links = String::from_utf8_lossy(&w.node_cmd(&["ip", "-o", "link"]).stdout).to_string();
    assert!(links.contains(&format!("veth{}", &sa[..8])) && !links.contains(&format!("veth{}", &sb[..8])), "{links}");
    // Remove: twice, and for ids that never existed.
    for id in [&sb, &sb, &"0".repeat(64)] {
        w.client.runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.to_string() }).await.unwrap();
    }
    let e = w.client.runtime.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: sb.clone(), verbose: false }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("not found"));
    let e = w.client.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: sb.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Bad requests.
    for cfg in [None, Some(cri::PodSandboxConfig::default()), Some(pod_config(""))] {
        let e = w.client.runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: cfg, runtime_handler: String::new() }).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
    }
    // A freed IP is handed out again.
    let sc = w.run_pod(pod_config("c")).await;
    let st = w.client.runtime.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: sc, verbose: false }).await.unwrap().into_inner();
    assert_ne!(st.status.unwrap().network.unwrap().ip, ip);
}

#[tokio::test]
async fn container_lifecycle_from_every_state() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("p")).await;
    let mut events = w.client.runtime.get_container_events(cri::GetEventsRequest {}).await.unwrap().into_inner();
    let mut cfg = container("main", &[]);
    cfg.labels = HashMap::from([("role".to_string(), "main".to_string())]);
    let c1 = w.create(&sid, cfg).await.unwrap();
    let s = w.status(&c1).await;
    assert_eq!(s.state, cri::ContainerState::ContainerCreated as i32);
    assert!(s.created_at > 0 && s.started_at == 0);
    assert_eq!(s.image.unwrap().image, IMAGE);
    assert!(s.image_ref.starts_with("nodekit.local/workload@sha256:"));
    // Stop of a created container is a no-op; it can still be started.
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c1.clone(), timeout: 1 }).await.unwrap();
    w.start_c(&c1).await.unwrap();
    let s = w.status(&c1).await;
    assert_eq!(s.state, cri::ContainerState::ContainerRunning as i32);
    assert!(s.started_at >= s.created_at);
    assert_eq!(w.start_c(&c1).await.unwrap_err().code(), Code::FailedPrecondition);
    // Filters.
    let c2 = w.create(&sid, container("second", &["pause"])).await.unwrap();
    let rc = w.client.runtime.clone();
    let list = |f: cri::ContainerFilter| {
        let mut c = rc.clone();
        async move { c.list_containers(cri::ListContainersRequest { filter: Some(f) }).await.unwrap().into_inner().containers }
    };
    assert_eq!(list(cri::ContainerFilter { pod_sandbox_id: sid.clone(), ..Default::default() }).await.len(), 2);
    assert_eq!(list(cri::ContainerFilter { id: c2.clone(), ..Default::default() }).await[0].id, c2);
    let running = list(cri::ContainerFilter { state: Some(cri::ContainerStateValue { state: 1 }), ..Default::default() }).await;
    assert_eq!(running.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![c1.clone()]);
    let by_label = list(cri::ContainerFilter { label_selector: HashMap::from([("role".into(), "main".into())]), ..Default::default() }).await;
    assert_eq!(by_label.len(), 1);
    // Stop a running one: SIGTERM → exit 0 (Completed); stop again is fine.
    let t = std::time::Instant::now();
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c1.clone(), timeout: 10 }).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    let s = w.status(&c1).await;
    assert_eq!((s.state, s.exit_code, s.reason.as_str()), (cri::ContainerState::ContainerExited as i32, 0, "Completed"));
    assert!(s.finished_at >= s.started_at);
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c1.clone(), timeout: 10 }).await.unwrap();
    // Remove from exited and from created; removing twice and unknown ids is fine.
    for id in [&c1, &c2, &c1, &"f".repeat(64)] {
        w.client.runtime.remove_container(cri::RemoveContainerRequest { container_id: id.to_string() }).await.unwrap();
    }
    // Remove a running one (force).
    let c3 = w.run_container(&sid, container("third", &["pause"])).await;
    w.client.runtime.remove_container(cri::RemoveContainerRequest { container_id: c3.clone() }).await.unwrap();
    for (code, r) in [
        (Code::NotFound, w.client.runtime.container_status(cri::ContainerStatusRequest { container_id: c3.clone(), verbose: false }).await.map(|_| ())),
        (Code::NotFound, w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c3.clone(), timeout: 0 }).await.map(|_| ())),
        (Code::NotFound, w.start_c(&c3).await),
    ] {
        assert_eq!(r.unwrap_err().code(), code);
    }
    // Bad create requests.
    assert_eq!(w.create(&sid, cri::ContainerConfig::default()).await.unwrap_err().code(), Code::InvalidArgument);
    let mut no_image = container("x", &[]);
    no_image.image = None;
    assert_eq!(w.create(&sid, no_image).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(w.create(&"0".repeat(64), container("x", &[])).await.unwrap_err().code(), Code::NotFound);
    let mut unknown = container("x", &[]);
    unknown.image = Some(cri::ImageSpec { image: "nope:1".into(), ..Default::default() });
    assert_eq!(w.create(&sid, unknown).await.unwrap_err().code(), Code::NotFound);
    // Events for c1: created, started, stopped, deleted in that order.
    let mut seen = vec![];
    while seen.len() < 4 {
        let e = tokio::time::timeout(Duration::from_secs(5), events.message()).await.unwrap().unwrap().unwrap();
        if e.container_id == c1 {
            seen.push(e.container_event_type);
        }
    }
    assert_eq!(seen, vec![0, 1, 2, 3]);
}


/// Runtime handlers (RuntimeClass): the default and `runc` are offered unless `--runtime-handler`
/// names others; a sandbox remembers its handler (PodSandboxStatus, ListPodSandbox); a handler
/// not offered is containerd's error, and no sandbox is left.
#[tokio::test]
async fn runtime_handlers_are_offered_recorded_and_refused() {
    let mut w = World::start(&["--runtime-handler", "runc", "--runtime-handler", "kata"]).await;
    w.set_cidr().await;
    let s = w.client.runtime.status(cri::StatusRequest { verbose: false }).await.unwrap().into_inner();
    let names: Vec<&str> = s.runtime_handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["", "runc", "kata"]);
    let run = |name: &str, handler: &str| cri::RunPodSandboxRequest { config: Some(pod_config(name)), runtime_handler: handler.into() };
    let id = w.client.runtime.run_pod_sandbox(run("k", "kata")).await.unwrap().into_inner().pod_sandbox_id;
    let st = w.client.runtime.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose: false }).await.unwrap().into_inner();
    assert_eq!(st.status.unwrap().runtime_handler, "kata");
    let list = w.client.runtime.list_pod_sandbox(cri::ListPodSandboxRequest::default()).await.unwrap().into_inner().items;
    assert_eq!(list.iter().map(|s| s.runtime_handler.as_str()).collect::<Vec<_>>(), ["kata"]);
    let err = w.client.runtime.run_pod_sandbox(run("x", "gvisor")).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::Unknown, r#"failed to get sandbox runtime: no runtime for "gvisor" is configured"#));
    let list = w.client.runtime.list_pod_sandbox(cri::ListPodSandboxRequest::default()).await.unwrap().into_inner().items;
    assert_eq!(list.len(), 1, "a refused handler leaves no sandbox");
}
