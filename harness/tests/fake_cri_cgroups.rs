//! fake-cri's cgroups belong to the world: each trial re-executes this binary in a sealed child
//! (role in `NODEKIT_CHILD`) that starts fake-cri in node-a (as `Runtime::start` does, with
//! `--cgroup-parent <node cgroup root>`) and runs memory-limited containers, one in a sandbox
//! with a `cgroup_parent` and one in a sandbox without. The parent then checks the host: after
//! a graceful stop, and after a SIGKILL of the whole world plus the cgroup sweep, no cgroup of
//! the world (nor any `fake-cri-*` cgroup) is left in any hierarchy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail, ensure};
use harness::artifacts::Artifacts;
use harness::backend::{Runtime, RuntimeKind, WORKLOAD_IMAGE, cgroup_parent, scratch_dir};
use harness::sealed::child_role;
use harness::world::{Plan, World};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use libtest_mimic::{Arguments, Failed, Trial};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::Channel;

const TOKEN_ENV: &str = "NODEKIT_FAKE_CRI_CG_TOKEN";
const LIMIT: i64 = 64 << 20;

mod child;
mod cri_crash;

use cri_crash::{Running, await_cleanup, cgroup_dirs, connect, marked, run_graceful, start_crash, trial};

fn main() -> ExitCode {
    if let Some(role) = child_role() {
        return child_main(&role);
    }
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test("graceful_stop_leaves_no_cgroup", graceful),
        Trial::test("sigkill_then_sweep_leaves_no_cgroup", crash),
    ];
    if let Some(why) = unavailable() {
        eprintln!("fake-cri cgroup tests ignored: {why}");
        trials = trials.into_iter().map(|t| t.with_ignored_flag(true)).collect();
    }
    libtest_mimic::run(&args, trials).exit_code()
}

fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (cgroups, /proc of other processes)".into());
    }
    if !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        return Some("no cgroup v1 memory controller".into());
    }
    if let Err(e) = harness::bins::locate("fake-cri") {
        return Some(e.to_string());
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

/// Runs sandbox `name` (with the world's `cgroup_parent` when `parented`) and a memory-limited
/// `pause` container in it; returns the container id.
async fn run_limited(c: &mut RuntimeServiceClient<Channel>, name: &str, parented: bool, token: &str) -> Result<String> {
    let logs = scratch_dir(&format!("logs-{name}"))?;
    let config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "default".into(), attempt: 0 }),
        hostname: name.into(),
        log_directory: logs.to_string_lossy().into_owned(),
        linux: parented
            .then(|| Ok::<_, anyhow::Error>(cri::LinuxPodSandboxConfig { cgroup_parent: cgroup_parent("node-a", name)?, ..Default::default() }))
            .transpose()?,
        ..Default::default()
    };
    let sandbox = c
        .run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let container = c
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox,
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata { name: "c".into(), attempt: 0 }),
                image: Some(cri::ImageSpec { image: WORKLOAD_IMAGE.into(), ..Default::default() }),
                args: vec!["pause".into()],
                envs: vec![cri::KeyValue { key: TOKEN_ENV.into(), value: token.into() }],
                log_path: "c.log".into(),
                linux: Some(cri::LinuxContainerConfig {
                    resources: Some(cri::LinuxContainerResources { memory_limit_in_bytes: LIMIT, ..Default::default() }),
                    security_context: None,
                }),
                ..Default::default()
            }),
            sandbox_config: Some(config),
        })
        .await?
        .into_inner()
        .container_id;
    c.start_container(cri::StartContainerRequest { container_id: container.clone() }).await?;
    Ok(container)
}

/// Starts fake-cri in node-a of `world`, gives it the pod CIDR and runs both containers; checks
/// that their memory cgroups are below the world's root. Returns the runtime and the root.
async fn start_and_run(world: &World, token: &str) -> Result<(Runtime, String)> {
    let cidr = world.host("node-a")?.pod_cidr().context("node-a has a pod CIDR")?;
    let runtime = Runtime::start(world, "node-a", RuntimeKind::FakeCri).await?;
    let mut c = connect(runtime.socket()).await?;
    c.update_runtime_config(cri::UpdateRuntimeConfigRequest {
        runtime_config: Some(cri::RuntimeConfig { network_config: Some(cri::NetworkConfig { pod_cidr: cidr.to_string() }) }),
    })
    .await?;
    let parented = run_limited(&mut c, "parented", true, token).await?;
    let plain = run_limited(&mut c, "plain", false, token).await?;
    let root = harness::backend::cgroup_root()?;
    let memory = Path::new("/sys/fs/cgroup/memory");
    let node_root = harness::backend::node_cgroup_root("node-a")?;
    let in_parent = memory.join(cgroup_parent("node-a", "parented")?.trim_start_matches('/')).join(&parented);
    let in_node = memory.join(node_root.trim_start_matches('/')).join(&plain);
    for (what, d) in [("the sandbox's cgroup_parent", &in_parent), ("--cgroup-parent", &in_node)] {
        let limit = std::fs::read_to_string(d.join("memory.limit_in_bytes")).with_context(|| format!("cgroup below {what}: {}", d.display()))?;
        ensure!(limit.trim() == LIMIT.to_string(), "limit of {}: {limit}", d.display());
    }
    Ok((runtime, root))
}

async fn graceful_child(dir: &Path) -> Result<()> {
    let world = World::build_with(&Plan::single_node(), Artifacts::at(dir)).await?;
    let (runtime, root) = start_and_run(&world, "graceful").await?;
    ensure!(!cgroup_dirs(&root).is_empty(), "no cgroup under the world root {root}");
    runtime.stop().await?;
    let left = cgroup_dirs(&root);
    ensure!(left.is_empty(), "cgroups left after a graceful stop: {left:?}");
    println!("cgroup-root {root}");
    Ok(())
}

async fn crash_child(dir: &Path) -> Result<()> {
    let token = std::env::var(TOKEN_ENV).unwrap_or_default();
    let world = World::build_with(&Plan::single_node(), Artifacts::at(dir)).await?;
    let (runtime, root) = start_and_run(&world, &token).await?;
    std::fs::write(dir.join("ready.tmp"), &root)?;
    std::fs::rename(dir.join("ready.tmp"), dir.join("ready"))?;
    std::future::pending::<()>().await;
    drop(runtime);
    Ok(())
}

// ---------------------------------------------------------------- helpers and parent side

/// Top-level `fake-cri-*` cgroups (fake-cri's own parent when it has no `--cgroup-parent`).
fn fake_cri_parents() -> BTreeSet<PathBuf> {
    harness::backend::cgroup_hierarchies()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|h| std::fs::read_dir(h).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("fake-cri-")))
        .collect()
}

fn graceful() -> Result<(), Failed> {
    trial((|| {
        let before = fake_cri_parents();
        let (_, root) = run_graceful("nodekit-fake-cri-cg-")?;
        let left = cgroup_dirs(&root);
        ensure!(left.is_empty(), "cgroups of the world left on the host: {left:?}");
        let new: Vec<_> = fake_cri_parents().difference(&before).cloned().collect();
        ensure!(new.is_empty(), "fake-cri cgroups outside the world root: {new:?}");
        Ok(())
    })())
}

fn crash() -> Result<(), Failed> {
    trial((|| {
        let token = format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond());
        let before = fake_cri_parents();
        let Running { mut child, root, .. } = start_crash("nodekit-fake-cri-cg-crash-", TOKEN_ENV, &token)?;
        let containers: Vec<u32> = marked(TOKEN_ENV, &token)
            .into_iter()
            .filter(|(_, cmd)| cmd.split(' ').any(|a| a == "pause"))
            .map(|(p, _)| p)
            .collect();
        let dirs_before = cgroup_dirs(&root);
        let new_parents = fake_cri_parents().difference(&before).cloned().collect::<Vec<_>>();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)?;
        let _ = child.wait();
        ensure!(containers.len() == 2, "before the kill, expected both containers: {containers:?}");
        ensure!(!dirs_before.is_empty(), "before the kill, the containers' cgroups should exist under {root}");
        ensure!(new_parents.is_empty(), "fake-cri cgroups outside the world root: {new_parents:?}");
        await_cleanup(TOKEN_ENV, &token, &root)?;
        let new: Vec<_> = fake_cri_parents().difference(&before).cloned().collect();
        ensure!(new.is_empty(), "fake-cri cgroups left on the host: {new:?}");
        Ok(())
    })())
}
