//! A container's identity and filesystem view, as containerd gives them: /etc/hostname of the
//! pod, run_as_user/run_as_group/supplemental groups for the container and its execs, a root
//! filesystem whose writes stay in the container (read-only on request), memory cgroups below
//! the sandbox's cgroup_parent or `--cgroup-parent`.
mod common;
use common::*;
use k8s_cri::v1 as cri;
use std::path::Path;

fn with_security(mut c: cri::ContainerConfig, sc: cri::LinuxContainerSecurityContext) -> cri::ContainerConfig {
    let linux = c.linux.get_or_insert_with(Default::default);
    linux.security_context = Some(sc);
    c
}

fn with_memory(mut c: cri::ContainerConfig, bytes: i64) -> cri::ContainerConfig {
    let linux = c.linux.get_or_insert_with(Default::default);
    linux.resources = Some(cri::LinuxContainerResources { memory_limit_in_bytes: bytes, ..Default::default() });
    c
}

async fn out(w: &mut World, id: &str, cmd: &[&str]) -> String {
    let r = w.exec(id, cmd, 10).await.unwrap();
    assert_eq!(r.exit_code, 0, "{cmd:?}: {}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8(r.stdout).unwrap()
}

/// The (real, effective) ids of a `/proc/self/status` line such as `Uid:`.
fn ids(status: &str, key: &str) -> (String, String) {
    let f: Vec<&str> = status.lines().find(|l| l.starts_with(key)).unwrap().split_whitespace().collect();
    (f[1].to_string(), f[2].to_string())
}

#[tokio::test]
async fn hostname_file_user_and_root_filesystem() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let sid = w.run_pod(pod_config("named-pod")).await;
    let root = w.run_container(&sid, container("root", &["pause"])).await;
    assert_eq!(out(&mut w, &root, &["/workload", "cat", "/etc/hostname"]).await, "named-pod\n");
    let status = out(&mut w, &root, &["/workload", "cat", "/proc/self/status"]).await;
    assert_eq!(ids(&status, "Uid:"), ("0".into(), "0".into()));

    // run_as_user / run_as_group / supplemental_groups: the container and its execs.
    let sc = cri::LinuxContainerSecurityContext {
        run_as_user: Some(cri::Int64Value { value: 65534 }),
        run_as_group: Some(cri::Int64Value { value: 65533 }),
        supplemental_groups: vec![4242],
        ..Default::default()
    };
    let nobody = w.run_container(&sid, with_security(container("nobody", &["pause"]), sc)).await;
    let status = out(&mut w, &nobody, &["/workload", "cat", "/proc/self/status"]).await;
    assert_eq!(ids(&status, "Uid:"), ("65534".into(), "65534".into()), "{status}");
    assert_eq!(ids(&status, "Gid:"), ("65533".into(), "65533".into()), "{status}");
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(groups.contains("4242") && groups.contains("65533"), "{groups}");
    assert_eq!(w.status(&nobody).await.state, cri::ContainerState::ContainerRunning as i32);

    // Writes to the root filesystem stay in the container.
    let probe = "/fake-cri-isolation-probe";
    out(&mut w, &root, &["/workload", "touch", probe]).await;
    assert_eq!(w.exec(&root, &["/workload", "check-file", probe], 10).await.unwrap().exit_code, 0);
    assert!(!Path::new(probe).exists(), "a container's write reached the host root");
    assert_eq!(w.exec(&nobody, &["/workload", "check-file", probe], 10).await.unwrap().exit_code, 1);

    // A read-only root filesystem refuses writes; its private /tmp still accepts them.
    let sc = cri::LinuxContainerSecurityContext { readonly_rootfs: true, ..Default::default() };
    let ro = w.run_container(&sid, with_security(container("ro", &["pause"]), sc)).await;
    assert_ne!(w.exec(&ro, &["/workload", "touch", "/ro-probe"], 10).await.unwrap().exit_code, 0);
    assert_eq!(w.exec(&ro, &["/workload", "touch", "/tmp/ok"], 10).await.unwrap().exit_code, 0);
    assert_eq!(out(&mut w, &ro, &["/workload", "cat", "/etc/hostname"]).await, "named-pod\n");
}

/// The memory cgroup of a container with a limit: `<sandbox cgroup_parent>/<id>` when the
/// sandbox names one, else `<--cgroup-parent>/<id>`; removal takes the directories it made.
#[tokio::test]
async fn memory_cgroups_follow_the_cgroup_parents() {
    let memory = Path::new(fake_cri::cgroup::MEMORY_ROOT);
    if !memory.join("memory.limit_in_bytes").exists() {
        eprintln!("skipped: no cgroup v1 memory controller");
        return;
    }
    let base = format!("fake-cri-test-{}", std::process::id());
    let instance = format!("/{base}/node");
    let mut w = World::start(&["--cgroup-parent", &instance]).await;
    w.set_cidr().await;
    let plain = w.run_pod(pod_config("plain")).await;
    let c1 = w.run_container(&plain, with_memory(container("a", &["pause"]), 64 << 20)).await;
    assert!(memory.join(&base).join("node").join(&c1).join("memory.limit_in_bytes").exists());

    let mut cfg = pod_config("parented");
    cfg.linux = Some(cri::LinuxPodSandboxConfig { cgroup_parent: format!("/{base}/node/pod-parented"), ..Default::default() });
    let parented = w.run_pod(cfg).await;
    let c2 = w.run_container(&parented, with_memory(container("b", &["pause"]), 64 << 20)).await;
    let dir = memory.join(&base).join("node/pod-parented").join(&c2);
    assert_eq!(std::fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap().trim(), (64u64 << 20).to_string());
    let st = w.status(&c2).await;
    let info = w
        .client
        .runtime
        .container_status(cri::ContainerStatusRequest { container_id: c2.clone(), verbose: true })
        .await
        .unwrap()
        .into_inner()
        .info["info"]
        .clone();
    assert!(info.contains("pod-parented"), "{info}");
    assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32);
    assert!(!std::fs::read_to_string(dir.join("cgroup.procs")).unwrap().trim().is_empty());

    // Removing the container removes its cgroup and the pod directory made for it.
    w.client.runtime.remove_container(cri::RemoveContainerRequest { container_id: c2 }).await.unwrap();
    assert!(!memory.join(&base).join("node/pod-parented").exists());
    // A parent with `..` is refused.
    let mut bad = pod_config("bad");
    bad.linux = Some(cri::LinuxPodSandboxConfig { cgroup_parent: "/../escape".into(), ..Default::default() });
    let bad = w.run_pod(bad).await;
    let c3 = w.create(&bad, with_memory(container("c", &["pause"]), 64 << 20)).await.unwrap();
    assert_eq!(w.start_c(&c3).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    w.stop_cri().await;
    assert!(!memory.join(&base).join("node").exists(), "the --cgroup-parent tree is left after shutdown");
    let _ = std::fs::remove_dir(memory.join(&base));
}
