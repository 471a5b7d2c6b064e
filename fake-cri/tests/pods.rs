//! What a container sees and does: args/env/exit codes and reasons, logs, exec, hostname, DNS,
//! private /tmp, pod networking, OOM, stats.
mod common;
use common::*;
use k8s_cri::v1 as cri;
use std::io::{Read, Write};
use std::time::Duration;
use tonic::Code;

fn with_log(mut c: cri::ContainerConfig, path: &str) -> cri::ContainerConfig {
    c.log_path = path.into();
    c
}

fn logged_pod(w: &World, name: &str) -> cri::PodSandboxConfig {
    let mut p = pod_config(name);
    p.log_directory = w.logs().join(name).to_string_lossy().into_owned();
    p
}

#[tokio::test]
async fn exit_codes_reasons_env_and_args() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let p = logged_pod(&w, "exits");
    let sid = w.run_pod(p).await;
    let c = w.run_container(&sid, container("three", &["exit", "--code", "3"])).await;
    let s = w.wait_exited(&c).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (3, "Error"));
    let c = w.run_container(&sid, container("zero", &["exit"])).await;
    let s = w.wait_exited(&c).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
    // Env and args: args replace the image Cmd; env from the request wins over the image's.
    let mut cfg = with_log(container("env", &["env"]), "env/0.log");
    cfg.envs = vec![cri::KeyValue { key: "GREETING".into(), value: "hi there".into() }, cri::KeyValue { key: "PATH".into(), value: "/custom".into() }];
    let c = w.run_container(&sid, cfg).await;
    w.wait_exited(&c).await;
    let lines: Vec<String> = read_log(&w.logs().join("exits/env/0.log")).into_iter().map(|l| l.2).collect();
    assert!(lines.contains(&"GREETING=hi there".to_string()), "{lines:?}");
    assert!(lines.contains(&"PATH=/custom".to_string()));
    assert!(!lines.iter().any(|l| l.starts_with("PATH=/usr")));
    // Command replaces the entrypoint (multi-call name), args follow it.
    let mut cfg = container("cmd", &["--code", "5"]);
    cfg.command = vec!["/workload".into(), "exit".into()];
    let c = w.run_container(&sid, cfg).await;
    assert_eq!(w.wait_exited(&c).await.exit_code, 5);
    let mut cfg = container("killed", &[]);
    cfg.command = vec!["/pause".into()];
    let c = w.run_container(&sid, cfg).await;
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c.clone(), timeout: 0 }).await.unwrap();
    let s = w.status(&c).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
}

#[tokio::test]
async fn log_format_partial_lines_and_reopen() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let sid = w.run_pod(logged_pod(&w, "logs")).await;
    let long = "x".repeat(40_000);
    let c = w.run_container(&sid, with_log(container("p", &["print", "--stdout", "out1", "--stderr", "err1", "--partial", "tail"]), "p/0.log")).await;
    let s = w.wait_exited(&c).await;
    assert_eq!(s.log_path, w.logs().join("logs/p/0.log").to_string_lossy());
    let mut entries = read_log(&w.logs().join("logs/p/0.log"));
    entries.sort();
    assert_eq!(
        entries,
        vec![
            ("stderr".into(), "F".into(), "err1".into()),
            ("stdout".into(), "F".into(), "out1".into()),
            ("stdout".into(), "P".into(), "tail".into()),
        ]
    );
    let c = w.run_container(&sid, with_log(container("long", &["print", "--stdout", &long]), "long/0.log")).await;
    w.wait_exited(&c).await;
    let e = read_log(&w.logs().join("logs/long/0.log"));
    assert_eq!(e.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(), vec!["P", "P", "F"]);
    assert_eq!(e.iter().map(|x| x.2.as_str()).collect::<String>(), long);
    // Reopen after rotation: later output lands in the new file.
    let c = w.run_container(&sid, with_log(container("rot", &["pause"]), "rot/0.log")).await;
    let path = w.logs().join("logs/rot/0.log");
    wait_for("start line", Duration::from_secs(5), || {
        let p = path.clone();
        async move { read_log(&p).iter().any(|l| l.2.contains("pause: started")).then_some(()) }
    })
    .await;
    std::fs::rename(&path, w.logs().join("logs/rot/0.log.1")).unwrap();
    w.client.runtime.reopen_container_log(cri::ReopenContainerLogRequest { container_id: c.clone() }).await.unwrap();
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c.clone(), timeout: 5 }).await.unwrap();
    let fresh = read_log(&path);
    assert!(fresh.iter().any(|l| l.2.contains("SIGTERM received")), "{fresh:?}");
    assert!(!fresh.iter().any(|l| l.2.contains("started")));
    let e = w.client.runtime.reopen_container_log(cri::ReopenContainerLogRequest { container_id: c }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}

fn proc_count_with(args: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&c).replace('\0', " ").contains(args) {
                n += 1;
            }
    }
    n
}

#[tokio::test]
async fn exec_sync_output_exit_code_and_timeout() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let mut p = pod_config("exec-pod");
    p.dns_config = Some(cri::DnsConfig { servers: vec!["10.96.0.10".into()], searches: vec!["default.svc.cluster.local".into()], options: vec!["ndots:5".into()] });
    let sid = w.run_pod(p).await;
    let c = w.run_container(&sid, container("main", &["pause"])).await;
    let r = w.exec(&c, &["/workload", "print", "--stdout", "o", "--stderr", "e"], 10).await.unwrap();
    assert_eq!((r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code), (&b"o\n"[..], &b"e\n"[..], 0));
    assert_eq!(w.exec(&c, &["/workload", "check-file", "/tmp/marker"], 10).await.unwrap().exit_code, 1);
    assert_eq!(w.exec(&c, &["/workload", "touch", "/tmp/marker"], 10).await.unwrap().exit_code, 0);
    assert_eq!(w.exec(&c, &["/workload", "check-file", "/tmp/marker"], 10).await.unwrap().exit_code, 0);
    // The hostname and DNS config of the pod, and a /tmp private to the container.
    assert_eq!(w.exec(&c, &["/workload", "hostname"], 10).await.unwrap().stdout, b"exec-pod\n");
    let resolv = String::from_utf8(w.exec(&c, &["/workload", "cat", "/etc/resolv.conf"], 10).await.unwrap().stdout).unwrap();
    assert!(resolv.contains("nameserver 10.96.0.10") && resolv.contains("search default.svc.cluster.local") && resolv.contains("options ndots:5"), "{resolv}");
    assert!(!std::path::Path::new("/tmp/marker").exists());
    let other = w.run_container(&sid, container("other", &["pause"])).await;
    assert_eq!(w.exec(&other, &["/workload", "check-file", "/tmp/marker"], 10).await.unwrap().exit_code, 1);
    // Timeout: DeadlineExceeded and nothing left running.
    let t = std::time::Instant::now();
    let e = w.exec(&c, &["/workload", "sleep", "47s"], 1).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    assert!(e.message().contains("timed out"), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(proc_count_with("sleep 47s"), 0);
    // Exec in a container that is not running.
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: other.clone(), timeout: 0 }).await.unwrap();
    assert_eq!(w.exec(&other, &["/workload", "hostname"], 1).await.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(w.exec(&"a".repeat(64), &["/workload"], 1).await.unwrap_err().code(), Code::NotFound);
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf.split_once("\r\n\r\n")?.1.to_string())
}

#[tokio::test]
async fn pod_ip_reachable_from_node_and_shared_pod_network() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("web-0")).await;
    let ip = w
        .client
        .runtime
        .pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: sid.clone(), verbose: false })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .network
        .unwrap()
        .ip;
    w.run_container(&sid, container("web", &["netexec", "--http-port", "8080"])).await;
    w.run_container(&sid, container("echo", &["tcp-echo", "--port", "9000"])).await;
    let addr: std::net::SocketAddr = format!("{ip}:8080").parse().unwrap();
    let ns = w.node_netns();
    let body = wait_for("pod http", Duration::from_secs(10), || {
        let ns = ns.clone();
        async move { in_netns(&ns, move || http_get(addr, "/hostname")) }
    })
    .await;
    assert_eq!(body, "web-0");
    // The echo server listens once it has started, which nothing above waited for.
    let echo: std::net::SocketAddr = format!("{ip}:9000").parse().unwrap();
    let got = wait_for("the echo server to answer", Duration::from_secs(10), || {
        let ns = ns.clone();
        async move {
            in_netns(&ns, move || {
                let mut s = std::net::TcpStream::connect_timeout(&echo, Duration::from_secs(2)).ok()?;
                s.write_all(b"ping").ok()?;
                let mut b = [0u8; 4];
                s.read_exact(&mut b).ok()?;
                Some(b)
            })
        }
    })
    .await;
    assert_eq!(got, *b"ping");
    // A second server on the same port in the same pod cannot bind: the network is shared.
    let dup = w.run_container(&sid, container("dup", &["netexec", "--http-port", "8080"])).await;
    let s = w.wait_exited(&dup).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (1, "Error"));
    // Another pod gets its own namespace: the same port binds there.
    let sid2 = w.run_pod(pod_config("web-1")).await;
    let c2 = w.run_container(&sid2, container("web", &["netexec", "--http-port", "8080"])).await;
    let ip2 = w.client.runtime.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: sid2, verbose: false }).await.unwrap().into_inner().status.unwrap().network.unwrap().ip;
    assert_ne!(ip, ip2);
    let addr2: std::net::SocketAddr = format!("{ip2}:8080").parse().unwrap();
    let b2 = wait_for("pod 2 http", Duration::from_secs(10), || {
        let ns = ns.clone();
        async move { in_netns(&ns, move || http_get(addr2, "/hostname")) }
    })
    .await;
    assert_eq!(b2, "web-1");
    assert_eq!(w.status(&c2).await.state, cri::ContainerState::ContainerRunning as i32);

}

#[tokio::test]
async fn workload_binary_below_tmp_still_runs() {
    // The container's private /tmp covers the binary's path; it is executed through an fd.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("workload");
    std::fs::copy(workload_bin(), &bin).unwrap();
    assert!(bin.starts_with("/tmp"));
    let mut w = World::start_with(&[], bin).await;
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("tmp-bin")).await;
    let c = w.run_container(&sid, container("main", &["pause"])).await;
    assert_eq!(w.exec(&c, &["/workload", "hostname"], 5).await.unwrap().stdout, b"tmp-bin\n");
    let c2 = w.run_container(&sid, container("exit", &["exit", "--code", "6"])).await;
    assert_eq!(w.wait_exited(&c2).await.exit_code, 6);
}

/// Malformed port mappings, escaping log paths and `sha256:`-only id "prefixes" are refused (or
/// name no image) over gRPC, leaving nothing behind; fake-cri keeps serving.
#[tokio::test]
async fn malformed_ports_log_paths_and_id_prefixes_are_refused() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let pm = |container_port: i32, host_port: i32, protocol: i32, host_ip: &str| cri::PortMapping { protocol, container_port, host_port, host_ip: host_ip.into() };
    for (m, field) in [
        (pm(70000, 8080, 0, ""), "container_port 70000"),
        (pm(80, -1, 0, ""), "host_port -1"),
        (pm(80, 65536, 0, ""), "host_port 65536"),
        (pm(80, 8080, 9, ""), "protocol 9"),
        (pm(80, 8080, 0, "10.0.0.1\nflush ruleset"), "host_ip"),
    ] {
        let mut p = pod_config("badports");
        p.port_mappings = vec![m];
        let e = w.client.runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(p), runtime_handler: String::new() }).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(field), "{e:?}");
    }
    let left = w.client.runtime.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }).await.unwrap().into_inner().items;
    assert!(left.is_empty(), "{left:?}");

    let sid = w.run_pod(logged_pod(&w, "badlogs")).await;
    for path in ["../other/0.log", "c/../../../x.log", "/"] {
        let e = w.create(&sid, with_log(container("escape", &["exit"]), path)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{path}: {e:?}");
        assert!(e.message().contains("log_path"), "{e:?}");
    }
    let c = w.run_container(&sid, with_log(container("abs", &["print", "--stdout", "hello"]), "/abs/0.log")).await;
    let s = w.wait_exited(&c).await;
    assert_eq!(s.log_path, w.logs().join("badlogs/abs/0.log").to_string_lossy());
    assert_eq!(read_log(&w.logs().join("badlogs/abs/0.log")).into_iter().map(|l| l.2).collect::<Vec<_>>(), vec!["hello".to_string()]);

    let status = |image: &str| cri::ImageStatusRequest { image: Some(cri::ImageSpec { image: image.into(), ..Default::default() }), verbose: false };
    let id = w.client.images.image_status(status(IMAGE)).await.unwrap().into_inner().image.unwrap().id;
    for q in ["sha256:sha256:", "sha256:", &id[..12]] {
        assert!(w.client.images.image_status(status(q)).await.unwrap().into_inner().image.is_none(), "{q}");
    }
    for q in [id.clone(), id[7..].to_string(), id[..19].to_string(), id[7..19].to_string()] {
        assert_eq!(w.client.images.image_status(status(&q)).await.unwrap().into_inner().image.map(|i| i.id), Some(id.clone()), "{q}");
    }
}
