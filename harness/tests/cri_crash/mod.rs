//! What the runtime crash tests (containerd.rs, fake_cri_cgroups.rs) share: a CRI client, the
//! host-side view of a world's cgroups and processes, and the parent's part of a graceful and
//! of a SIGKILLed run of a sealed child.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use harness::sealed::{ChildSpec, run_child, spawn_child};
use harness::wait::wait_blocking;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use libtest_mimic::Failed;
use tonic::transport::Channel;

pub fn trial(r: Result<()>) -> Result<(), Failed> {
    r.map_err(|e| Failed::from(format!("{e:#}")))
}

pub async fn connect(socket: &Path) -> Result<RuntimeServiceClient<Channel>> {
    Ok(fake_cri::client::connect(socket).await?.runtime)
}

/// Every cgroup directory of `tree` that exists in some hierarchy.
pub fn cgroup_dirs(tree: &str) -> Vec<PathBuf> {
    let rel = tree.trim_start_matches('/');
    harness::backend::cgroup_hierarchies()
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|d| d.exists())
        .collect()
}

/// (pid, cmdline with spaces) of every process visible here.
pub fn procs() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let c = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
                    Some((p, String::from_utf8_lossy(&c).replace('\0', " ").trim().to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// [`procs`] whose environment carries `key=token` (a sealed child, everything it started,
/// and the containers that got the token in their CRI env).
pub fn marked(key: &str, token: &str) -> Vec<(u32, String)> {
    let needle = format!("{key}={token}\0").into_bytes();
    procs()
        .into_iter()
        .filter(|(p, _)| std::fs::read(format!("/proc/{p}/environ")).is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle)))
        .collect()
}

/// Runs the `graceful` role to its end; returns its stdout and the cgroup root it printed.
pub fn run_graceful(prefix: &str) -> Result<(String, String)> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let out = run_child(&ChildSpec::new("graceful").arg(dir.path()).timeout(Duration::from_secs(120)))?;
    if !out.status.success() {
        bail!("sealed child failed ({}):\nstdout:\n{}\nstderr:\n{}", out.status, out.stdout, out.stderr);
    }
    let root = out.stdout.lines().find_map(|l| l.strip_prefix("cgroup-root ")).context("no cgroup root printed")?.to_string();
    Ok((out.stdout, root))
}

/// A running `crash` role that has written its cgroup root to `<dir>/ready`.
pub struct Running {
    pub child: Child,
    pub root: String,
    _dir: tempfile::TempDir,
}

/// Starts the `crash` role with `key=token` in its environment and waits until it is ready.
pub fn start_crash(prefix: &str, key: &str, token: &str) -> Result<Running> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let mut child = spawn_child(&ChildSpec::new("crash").arg(dir.path()).env(key, token))?;
    let ready = dir.path().join("ready");
    let waited = wait_blocking("the crash child to run its pods", Duration::from_secs(60), || {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(Err(anyhow::anyhow!("the crash child exited early: {st}")));
        }
        std::fs::read_to_string(&ready).ok().map(Ok)
    });
    match waited.map_err(anyhow::Error::from).and_then(|r| r) {
        Ok(root) => Ok(Running { child, root, _dir: dir }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{e}");
        }
    }
}

/// After a SIGKILL: waits until no process carries the token, then until the sweep has removed
/// every cgroup directory under `root`.
pub fn await_cleanup(key: &str, token: &str, root: &str) -> Result<()> {
    wait_blocking("every process of the world to die", Duration::from_secs(10), || {
        let left = marked(key, token);
        if left.is_empty() { Ok(()) } else { Err(left) }
    })?;
    wait_blocking("the sweep to remove the world's cgroups", Duration::from_secs(10), || {
        let report = harness::backend::sweep_stale_cgroups();
        let left = cgroup_dirs(root);
        if left.is_empty() { Ok(()) } else { Err(format!("left: {left:?}; last sweep: {report:?}")) }
    })?;
    Ok(())
}
