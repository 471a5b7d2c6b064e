//! `nodekit conformance` SIGKILLed mid-run (its world's pods running) leaves no cgroup
//! directory on the host: the cgroup reaper it started sweeps the killed worlds' trees. Runs alone (see .config/nextest.toml):
//! any other runner's sweep would hide a missing reaper.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every `nodekit-w…` tree in the host's cgroup hierarchies.
fn world_trees() -> Vec<std::path::PathBuf> {
    harness::backend::world_trees().unwrap_or_default().into_iter().map(|(p, _)| p).collect()
}

fn kill_mid_run(runtime: &str) {
    assert!(
        nix::unistd::Uid::effective().is_root() && harness::backend::cgroup_hierarchies().is_ok_and(|h| !h.is_empty()),
        "this test needs root and the host's cgroup v1 hierarchies"
    );
    let before = world_trees();
    let artifacts = tempfile::tempdir().unwrap();
    let mut cli = Command::new(env!("CARGO_BIN_EXE_nodekit"))
        .args(["conformance", "--runtime", runtime, "--filter", "eviction/memory-ranking-besteffort-then-burstable*", "--artifacts"])
        .arg(artifacts.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The world's pods have cgroups: kill the runner now.
    wait_until("a world's cgroup tree with pod cgroups", Duration::from_secs(60), || {
        world_trees().iter().filter(|t| !before.contains(t)).any(|t| walkdir_has_pod(t))
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cli.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    cli.wait().unwrap();
    let start = Instant::now();
    loop {
        let left: Vec<_> = world_trees().into_iter().filter(|t| !before.contains(t)).collect();
        if left.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "40 s after the kill the run's cgroup trees are still there: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a world tree holds a pod's cgroup (a directory below `…/node-a`). The case's
/// guaranteed pod has a memory limit, so both runtimes make one.
fn walkdir_has_pod(tree: &std::path::Path) -> bool {
    let node = tree.join("node-a");
    std::fs::read_dir(node).into_iter().flatten().flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
}

#[test]
fn cli_sigkill_mid_run_leaves_no_cgroups_fake_cri() {
    kill_mid_run("fake-cri");
}

#[test]
fn cli_sigkill_mid_run_leaves_no_cgroups_containerd() {
    assert!(std::path::Path::new("/usr/bin/containerd").exists(), "containerd is not installed (run ci/bootstrap)");
    kill_mid_run("containerd");
}
