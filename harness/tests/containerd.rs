//! containerd backend tests: each trial re-executes this binary in a sealed child (role in
//! `NODEKIT_CHILD`) that starts real containerd in node-a and runs a pod through CRI; the
//! parent then checks the host: after a graceful stop and after a SIGKILL of the whole world
//! (plus the cgroup sweep) no containerd, shim or container process, mount or cgroup remains.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use harness::artifacts::Artifacts;
use harness::backend::{Containerd, ContainerdOptions, WORKLOAD_IMAGE, cgroup_parent, scratch_dir};
use harness::sealed::child_role;
use harness::world::{Plan, World};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use libtest_mimic::{Arguments, Failed, Trial};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::Channel;

const TOKEN_ENV: &str = "NODEKIT_CONTAINERD_TOKEN";

mod child;
mod cri_crash;

use cri_crash::{Running, await_cleanup, cgroup_dirs, connect, marked, procs, run_graceful, start_crash, trial};

fn main() -> ExitCode {
    if let Some(role) = child_role() {
        return child_main(&role);
    }
    let args = Arguments::from_args();
    let skip = unavailable();
    let mut trials = vec![
        Trial::test("graceful_stop_leaves_nothing", graceful),
        Trial::test("sigkill_then_sweep_leaves_nothing", crash),
    ];
    if let Some(why) = skip {
        eprintln!("containerd tests ignored: {why}");
        trials = trials.into_iter().map(|t| t.with_ignored_flag(true)).collect();
    }
    libtest_mimic::run(&args, trials).exit_code()
}

fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (cgroups, /proc of other processes)".into());
    }
    let missing: Vec<&str> = ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        return Some(format!("missing {missing:?}"));
    }
    harness::backend::workload_binary().err().map(|e| e.to_string())
}

// ---------------------------------------------------------------- sealed child side

fn child_main(role: &str) -> ExitCode {
    child::run(role, |dir| async move {
        match role {
            "graceful" => graceful_child(&dir).await,
            "crash" => crash_child(&dir).await,
            other => bail!("unknown role {other}"),
        }
    })
}

/// Runs a sandbox and a `pause` container in it; returns (sandbox id, container id, timings).
async fn run_pod(c: &mut RuntimeServiceClient<Channel>, token: &str) -> Result<(String, String, Vec<(String, Duration)>)> {
    let logs = scratch_dir("pod-logs")?;
    let config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "pod".into(),
            uid: "uid-pod".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "crash-pod".into(),
        log_directory: logs.to_string_lossy().into_owned(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent("node-a", "pod")?,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut times = Vec::new();
    let t = Instant::now();
    let sandbox = c
        .run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() })
        .await?
        .into_inner()
        .pod_sandbox_id;
    times.push(("RunPodSandbox".to_string(), t.elapsed()));
    let t = Instant::now();
    let container = c
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata { name: "c".into(), attempt: 0 }),
                image: Some(cri::ImageSpec { image: WORKLOAD_IMAGE.into(), ..Default::default() }),
                args: vec!["pause".into()],
                envs: vec![cri::KeyValue { key: TOKEN_ENV.into(), value: token.into() }],
                log_path: "c.log".into(),
                ..Default::default()
            }),
            sandbox_config: Some(config),
        })
        .await?
        .into_inner()
        .container_id;
    times.push(("CreateContainer".to_string(), t.elapsed()));
    let t = Instant::now();
    c.start_container(cri::StartContainerRequest { container_id: container.clone() }).await?;
    times.push(("StartContainer".to_string(), t.elapsed()));
    let out = c
        .exec_sync(cri::ExecSyncRequest { container_id: container.clone(), cmd: vec!["/workload".into(), "hostname".into()], timeout: 10 })
        .await?
        .into_inner();
    ensure!(
        out.exit_code == 0 && String::from_utf8_lossy(&out.stdout).trim() == "crash-pod",
        "exec hostname: {} {:?} {:?}",
        out.exit_code,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((sandbox, container, times))
}

async fn graceful_child(dir: &Path) -> Result<()> {
    let world = World::build_with(&Plan::single_node(), Artifacts::at(dir)).await?;
    let node = world.host("node-a")?;
    let cidr = node.pod_cidr().context("node-a has a pod CIDR")?;
    let t = Instant::now();
    let containerd = Containerd::start(&world, "node-a", ContainerdOptions::new(cidr.to_string())).await?;
    let start_time = t.elapsed();
    let mut c = connect(containerd.socket()).await?;
    let (_sandbox, _container, times) = run_pod(&mut c, "graceful").await?;
    let root = harness::backend::cgroup_root()?;
    ensure!(!cgroup_dirs(&root).is_empty(), "the pod's cgroups are not under the world root {root}");
    let runc_state = containerd.layout().runc.join("k8s.io");
    let t = Instant::now();
    containerd.stop().await?;
    let stop_time = t.elapsed();
    let left = cgroup_dirs(&root);
    ensure!(left.is_empty(), "cgroups left after stop: {left:?}");
    let runc_left: Vec<_> = std::fs::read_dir(&runc_state).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    ensure!(runc_left.is_empty(), "runc state left after stop: {runc_left:?}");
    let shims: Vec<String> = procs().into_iter().filter(|(_, cmd)| cmd.contains("containerd-shim") || cmd.contains("containerd --config") || cmd.starts_with("runc"))
        .map(|(_, c)| c).collect();
    ensure!(shims.is_empty(), "containerd processes left after stop: {shims:?}");
    println!("cgroup-root {root}");
    println!("timing start {start_time:?}");
    for (what, d) in times {
        println!("timing {what} {d:?}");
    }
    println!("timing stop {stop_time:?}");
    Ok(())
}

async fn crash_child(dir: &Path) -> Result<()> {
    let token = std::env::var(TOKEN_ENV).unwrap_or_default();
    let world = World::build_with(&Plan::single_node(), Artifacts::at(dir)).await?;
    let cidr = world.host("node-a")?.pod_cidr().context("node-a has a pod CIDR")?;
    let containerd = Containerd::start(&world, "node-a", ContainerdOptions::new(cidr.to_string())).await?;
    let mut c = connect(containerd.socket()).await?;
    run_pod(&mut c, &token).await?;
    let root = harness::backend::cgroup_root()?;
    std::fs::write(dir.join("ready.tmp"), &root)?;
    std::fs::rename(dir.join("ready.tmp"), dir.join("ready"))?;
    std::future::pending::<()>().await;
    drop(containerd);
    Ok(())
}

// ---------------------------------------------------------------- parent side

fn graceful() -> Result<(), Failed> {
    trial((|| {
        let (stdout, root) = run_graceful("nodekit-containerd-")?;
        print!("{stdout}");
        let left = cgroup_dirs(&root);
        ensure!(left.is_empty(), "cgroups of the world left on the host: {left:?}");
        Ok(())
    })())
}

fn crash() -> Result<(), Failed> {
    trial((|| {
        let token = format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond());
        let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")?;
        let Running { mut child, root, .. } = start_crash("nodekit-containerd-crash-", TOKEN_ENV, &token)?;
        let procs_before = marked(TOKEN_ENV, &token);
        let dirs_before = cgroup_dirs(&root);
        let kinds: HashMap<&str, bool> = ["containerd --config", "containerd-shim", "/workload pause"]
            .into_iter()
            .map(|k| (k, procs_before.iter().any(|(_, c)| c.contains(k))))
            .collect();
        // The sweep leaves a live world alone.
        let early = harness::backend::sweep_stale_cgroups();
        let dirs_after_early_sweep = cgroup_dirs(&root);
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)?;
        let _ = child.wait();
        early?;
        ensure!(dirs_after_early_sweep == dirs_before, "a sweep removed cgroups of a live world: {dirs_before:?} → {dirs_after_early_sweep:?}");
        ensure!(kinds.values().all(|v| *v), "before the kill, expected containerd, a shim and the container: {procs_before:?}");
        ensure!(!dirs_before.is_empty(), "before the kill, the pod's cgroups should exist under {root}");

        let t = Instant::now();
        await_cleanup(TOKEN_ENV, &token, &root)?;
        println!("sweep took {:?}", t.elapsed());
        let mounts_after = std::fs::read_to_string("/proc/self/mountinfo")?;
        ensure!(mounts_before == mounts_after, "host mounts changed:\nbefore:\n{mounts_before}\nafter:\n{mounts_after}");
        let overlay: Vec<String> = mounts_after.lines().filter(|l| l.contains("nodekit")).map(str::to_string).collect();
        ensure!(overlay.is_empty(), "mounts of the world on the host: {overlay:?}");
        Ok(())
    })())
}
