//! Memory limits (OOMKilled), stats, bind mounts, hostPorts, faults, restart and cleanup.
mod common;
use common::*;
use k8s_cri::v1 as cri;
use std::time::Duration;
use tonic::Code;

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn memory_limit_breach_is_oom_killed() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("oom")).await;
    let mut cfg = container("hog", &["alloc-memory", "--mib", "96", "--step-mib", "8"]);
    cfg.linux = Some(cri::LinuxContainerConfig {
        resources: Some(cri::LinuxContainerResources { memory_limit_in_bytes: (32 * MIB) as i64, ..Default::default() }),
        security_context: None,
    });
    let c = w.run_container(&sid, cfg).await;
    let s = w.wait_exited(&c).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "OOMKilled"));
    // Under the limit it keeps running.
    let mut cfg = container("fits", &["alloc-memory", "--mib", "8"]);
    cfg.linux = Some(cri::LinuxContainerConfig {
        resources: Some(cri::LinuxContainerResources { memory_limit_in_bytes: (64 * MIB) as i64, ..Default::default() }),
        security_context: None,
    });
    let c = w.run_container(&sid, cfg).await;
    let mut rc = w.client.runtime.clone();
    let ws = wait_for("working set", Duration::from_secs(10), || {
        let mut rc = rc.clone();
        let c = c.clone();
        async move {
            let s = rc.container_stats(cri::ContainerStatsRequest { container_id: c }).await.ok()?.into_inner().stats?;
            s.memory?.working_set_bytes.map(|v| v.value).filter(|v| *v >= 8 * MIB)
        }
    })
    .await;
    assert!(ws < 64 * MIB);
    assert_eq!(w.status(&c).await.state, cri::ContainerState::ContainerRunning as i32);
    // A limit set later through UpdateContainerResources is enforced too.
    let late = w.run_container(&sid, container("late", &["alloc-memory", "--mib", "48", "--step-mib", "8", "--interval", "100ms"])).await;
    rc.update_container_resources(cri::UpdateContainerResourcesRequest {
        container_id: late.clone(),
        linux: Some(cri::LinuxContainerResources { memory_limit_in_bytes: (24 * MIB) as i64, ..Default::default() }),
        windows: None,
        annotations: Default::default(),
    })
    .await
    .unwrap();
    let s = w.wait_exited(&late).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "OOMKilled"));
    assert_eq!(s.resources.unwrap().linux.unwrap().memory_limit_in_bytes, (24 * MIB) as i64);
    let _ = rc.stop_container(cri::StopContainerRequest { container_id: c, timeout: 0 }).await;
}

#[tokio::test]
async fn stats_processes_memory_and_writable_layer() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("stats")).await;
    let forker = w.run_container(&sid, container("forker", &["fork-processes", "--count", "3"])).await;
    let filler = w.run_container(&sid, container("filler", &["fill-disk", "--path", "/tmp/fill", "--mib", "6"])).await;
    let rc = w.client.runtime.clone();
    let procs = wait_for("process count", Duration::from_secs(10), || {
        let mut rc = rc.clone();
        let sid = sid.clone();
        async move {
            let s = rc.pod_sandbox_stats(cri::PodSandboxStatsRequest { pod_sandbox_id: sid }).await.ok()?.into_inner().stats?;
            s.linux?.process?.process_count.map(|v| v.value).filter(|n| *n >= 5)
        }
    })
    .await;
    assert_eq!(procs, 5, "forker + 3 children + filler");
    let used = wait_for("writable layer", Duration::from_secs(10), || {
        let mut rc = rc.clone();
        let id = filler.clone();
        async move {
            let s = rc.container_stats(cri::ContainerStatsRequest { container_id: id }).await.ok()?.into_inner().stats?;
            s.writable_layer?.used_bytes.map(|v| v.value).filter(|v| *v >= 6 * MIB)
        }
    })
    .await;
    assert!(used < 64 * MIB);
    let mut rc2 = rc.clone();
    let all = rc2.list_container_stats(cri::ListContainerStatsRequest { filter: None }).await.unwrap().into_inner().stats;
    assert_eq!(all.len(), 2);
    let f = all.iter().find(|s| s.attributes.as_ref().unwrap().id == forker).unwrap();
    assert!(f.memory.as_ref().unwrap().rss_bytes.unwrap().value > 0);
    assert!(f.cpu.as_ref().unwrap().usage_core_nano_seconds.is_some());
    let pods = rc2.list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: None }).await.unwrap().into_inner().stats;
    assert_eq!(pods.len(), 1);
    let fs = w.client.images.image_fs_info(cri::ImageFsInfoRequest {}).await.unwrap().into_inner();
    assert!(fs.image_filesystems[0].used_bytes.unwrap().value > 0);
    let e = rc2.container_stats(cri::ContainerStatsRequest { container_id: "b".repeat(64) }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn bind_mounts_and_host_ports() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let host_dir = w.dir.path().join("empty-dir");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello"), "from host\n").unwrap();
    let mut p = pod_config("mounts");
    p.port_mappings = vec![cri::PortMapping { protocol: 0, container_port: 8080, host_port: 18080, host_ip: String::new() }];
    let sid = w.run_pod(p).await;
    let mut cfg = container("web", &["netexec", "--http-port", "8080"]);
    cfg.mounts = vec![cri::Mount { container_path: "/tmp/data".into(), host_path: host_dir.to_string_lossy().into_owned(), ..Default::default() }];
    let c = w.run_container(&sid, cfg).await;
    let r = w.exec(&c, &["/workload", "cat", "/tmp/data/hello"], 5).await.unwrap();
    assert_eq!(r.stdout, b"from host\n");
    assert_eq!(w.exec(&c, &["/workload", "touch", "/tmp/data/written"], 5).await.unwrap().exit_code, 0);
    assert!(host_dir.join("written").exists());
    let rules = String::from_utf8_lossy(&w.node_cmd(&["nft", "list", "table", "ip", "fake_cri_hostports"]).stdout).to_string();
    assert!(rules.contains("dport 18080") && rules.contains(":8080"), "{rules}");
    // Traffic to the node address on the host port reaches the pod.
    let body = w.in_node_net(|| {
        use std::io::{Read, Write};
        let addr: std::net::SocketAddr = "10.244.1.1:18080".parse().unwrap();
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET /hostname HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        Some(buf.split_once("\r\n\r\n")?.1.to_string())
    });
    assert_eq!(body.as_deref(), Some("mounts"));
    w.client.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: sid }).await.unwrap();
    let after = w.node_cmd(&["nft", "list", "table", "ip", "fake_cri_hostports"]);
    assert!(!after.status.success(), "hostport table still there");
}

#[tokio::test]
async fn images_and_pull_faults() {
    let mut w = World::start(&[]).await;
    let mut img = w.client.images.clone();
    let list = img.list_images(cri::ListImagesRequest { filter: None }).await.unwrap().into_inner().images;
    let tags: Vec<String> = list.iter().flat_map(|i| i.repo_tags.clone()).collect();
    assert!(tags.contains(&IMAGE.to_string()) && tags.contains(&fake_cri::PAUSE_IMAGE.to_string()));
    let spec = |s: &str| Some(cri::ImageSpec { image: s.into(), ..Default::default() });
    let st = img.image_status(cri::ImageStatusRequest { image: spec(IMAGE), verbose: false }).await.unwrap().into_inner();
    let id = st.image.unwrap().id;
    assert!(id.starts_with("sha256:"));
    // By id as well; unknown images have no status (and no error).
    assert!(img.image_status(cri::ImageStatusRequest { image: spec(&id), verbose: false }).await.unwrap().into_inner().image.is_some());
    assert!(img.image_status(cri::ImageStatusRequest { image: spec("busybox"), verbose: false }).await.unwrap().into_inner().image.is_none());
    assert_eq!(img.image_status(cri::ImageStatusRequest { image: None, verbose: false }).await.unwrap_err().code(), Code::InvalidArgument);
    // Remove (idempotent), then pull back.
    for _ in 0..2 {
        img.remove_image(cri::RemoveImageRequest { image: spec(IMAGE) }).await.unwrap();
    }
    assert!(img.image_status(cri::ImageStatusRequest { image: spec(IMAGE), verbose: false }).await.unwrap().into_inner().image.is_none());
    let pulled = img.pull_image(cri::PullImageRequest { image: spec(IMAGE), auth: None, sandbox_config: None }).await.unwrap().into_inner();
    assert_eq!(pulled.image_ref, id);
    let e = img.pull_image(cri::PullImageRequest { image: spec("busybox"), auth: None, sandbox_config: None }).await.unwrap_err();
    assert!(e.message().contains("docker.io/library/busybox:latest"), "{e:?}");
    // Faults from faults.json: slow and failing pulls, failing creates.
    let faults = serde_json::json!({
        "pull_delay_ms": { fake_cri::PAUSE_IMAGE: 300 },
        "pull_error": { IMAGE: "registry unavailable" },
        "create_error": { "doomed": "injected create failure" }
    });
    std::fs::write(w.state_dir().join("faults.json"), faults.to_string()).unwrap();
    let e = img.pull_image(cri::PullImageRequest { image: spec(IMAGE), auth: None, sandbox_config: None }).await.unwrap_err();
    assert!(e.message().contains("registry unavailable"));
    let t = std::time::Instant::now();
    img.pull_image(cri::PullImageRequest { image: spec(fake_cri::PAUSE_IMAGE), auth: None, sandbox_config: None }).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("f")).await;
    let e = w.create(&sid, container("doomed", &["pause"])).await.unwrap_err();
    assert!(e.message().contains("injected create failure"));
    assert!(w.create(&sid, container("fine", &["pause"])).await.is_ok());
}

#[tokio::test]
async fn crash_fault_and_rpc_latency() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    std::fs::write(w.state_dir().join("faults.json"), r#"{"crash_after_ms":{"crashy":200},"rpc_latency_ms":50}"#).unwrap();
    let sid = w.run_pod(pod_config("crash")).await;
    let t = std::time::Instant::now();
    let c = w.run_container(&sid, container("crashy", &["pause"])).await;
    assert!(t.elapsed() >= Duration::from_millis(100), "two RPCs with 50 ms latency each");
    let s = w.wait_exited(&c).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
    assert!(s.message.contains("crash"));
}

#[tokio::test]
async fn restart_reattaches_to_running_containers() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let mut p = pod_config("survivor");
    p.log_directory = w.logs().to_string_lossy().into_owned();
    let sid = w.run_pod(p).await;
    let mut cfg = container("web", &["netexec", "--http-port", "8080"]);
    cfg.log_path = "web.log".into();
    let c = w.run_container(&sid, cfg).await;
    let before = w.client.runtime.container_status(cri::ContainerStatusRequest { container_id: c.clone(), verbose: true }).await.unwrap().into_inner();
    w.crash_cri().await;
    w.start_cri(&[]).await;
    let after = w.client.runtime.container_status(cri::ContainerStatusRequest { container_id: c.clone(), verbose: true }).await.unwrap().into_inner();
    assert_eq!(after.status.as_ref().unwrap().state, cri::ContainerState::ContainerRunning as i32);
    assert_eq!(before.info["info"], after.info["info"], "same pid");
    let s = w.client.runtime.status(cri::StatusRequest { verbose: false }).await.unwrap().into_inner();
    assert!(s.status.unwrap().conditions.iter().all(|c| c.status), "pod CIDR survives the restart");
    assert_eq!(w.exec(&c, &["/workload", "hostname"], 5).await.unwrap().stdout, b"survivor\n");
    // Logs keep flowing into the same file through the reopened pipes.
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c.clone(), timeout: 5 }).await.unwrap();
    let s = w.status(&c).await;
    assert_eq!(s.state, cri::ContainerState::ContainerExited as i32);
    let log = read_log(&w.logs().join("web.log"));
    assert!(log.iter().any(|l| l.2.contains("SIGTERM received")), "{log:?}");
    // A new pod works after the restart.
    let sid2 = w.run_pod(pod_config("after")).await;
    let c2 = w.run_container(&sid2, container("x", &["exit", "--code", "4"])).await;
    assert_eq!(w.wait_exited(&c2).await.exit_code, 4);
}

/// A container with a terminal survives a restart too: a restarted fake-cri reopens the
/// terminal's master side (kept by the container at fd 3) and the output keeps reaching the log
/// as `stdout`, with the terminal's `\r` line ends.
#[tokio::test]
async fn restart_reattaches_to_a_container_terminal() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let mut p = pod_config("term");
    p.log_directory = w.logs().to_string_lossy().into_owned();
    let sid = w.run_pod(p).await;
    let mut cfg = container("term", &["pause"]);
    cfg.tty = true;
    cfg.log_path = "term.log".into();
    let c = w.run_container(&sid, cfg).await;
    let log = w.logs().join("term.log");
    wait_for("the first line", Duration::from_secs(10), || async { read_log(&log).iter().any(|l| l.2.contains("waiting for a signal")).then_some(()) }).await;
    w.crash_cri().await;
    w.start_cri(&[]).await;
    assert_eq!(w.status(&c).await.state, cri::ContainerState::ContainerRunning as i32);
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c.clone(), timeout: 5 }).await.unwrap();
    let lines = read_log(&log);
    assert!(lines.iter().all(|l| l.0 == "stdout"), "a terminal's output is stdout: {lines:?}");
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(raw.contains(" stdout F workload pause: waiting for a signal\r\n"), "stderr on the terminal, \\r\\n line ends: {raw:?}");
    assert!(lines.iter().any(|l| l.2.contains("SIGTERM received")), "output after the restart reached the log: {lines:?}");
}

#[tokio::test]
async fn shutdown_leaves_nothing_behind() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("leak")).await;
    let mut cfg = container("c", &["pause"]);
    cfg.linux = Some(cri::LinuxContainerConfig {
        resources: Some(cri::LinuxContainerResources { memory_limit_in_bytes: (64 * MIB) as i64, ..Default::default() }),
        security_context: None,
    });
    w.run_container(&sid, cfg).await;
    let cg = fake_cri::cgroup::instance_parent(&w.state_dir(), None);
    if let Some(cg) = &cg {
        assert!(cg.exists());
    }
    w.stop_cri().await;
    let links = String::from_utf8_lossy(&w.node_cmd(&["ip", "-o", "link"]).stdout).to_string();
    assert!(!links.contains("veth") && !links.contains("cbr0"), "{links}");
    let mounts = String::from_utf8_lossy(&w.node_cmd(&["cat", "/proc/self/mountinfo"]).stdout).to_string();
    assert!(!mounts.contains(&w.state_dir().join("netns").to_string_lossy().to_string()), "netns mounts left");
    if let Some(cg) = &cg {
        assert!(!cg.exists(), "cgroup {} left", cg.display());
    }
    let pids = String::from_utf8_lossy(&w.node_cmd(&["ls", "/proc"]).stdout).split_whitespace().filter(|s| s.parse::<u32>().is_ok()).count();
    assert!(pids <= 3, "processes left in the node pid namespace: {pids}");
}
