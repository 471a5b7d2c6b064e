//! The cgroup reaper: a process that outlives a runner to sweep the cgroups of its worlds.
//!
//! cgroup v1 directories that runtimes make for a world are host state; a runner sweeps them
//! after each world, but a runner that is SIGKILLed sweeps nothing. So a runner first starts a
//! reaper — the same binary re-executed in role [`ROLE`], in a process group of its own (a
//! Ctrl-C to the runner's group does not reach it) — and holds the write end of its stdin. When
//! the runner ends, however it ends, the reaper reads EOF, sweeps every dead world's cgroup tree
//! (waiting for their tasks to leave) and exits.

use std::io::Read;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sealed::CHILD_ENV;

/// The role the reaper is re-executed in (`NODEKIT_CHILD`).
pub const ROLE: &str = "cgroup-reaper";

/// How long the reaper waits for the worlds that existed when the runner ended to die and for
/// their tasks to leave their cgroups.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running reaper; it sweeps once this handle (or the whole process) is gone.
#[derive(Debug)]
pub struct Reaper {
    _stdin: ChildStdin,
    _child: Child,
}

/// Starts the reaper for this runner. The binary's `main` must call [`run_if_reaper`] first.
pub fn spawn() -> Result<Reaper> {
    let exe = std::env::current_exe().map_err(|e| Error::Child(format!("locating the current executable: {e}")))?;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .env(CHILD_ENV, ROLE)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Child(format!("starting the cgroup reaper: {e}")))?;
    let stdin = child.stdin.take().ok_or_else(|| Error::Child("the cgroup reaper has no stdin".into()))?;
    Ok(Reaper { _stdin: stdin, _child: child })
}

/// If this process was started as the reaper: wait for the runner to end, then sweep until
/// every world tree that existed at that moment is gone or [`SWEEP_TIMEOUT`] passes (trees of
/// other runners' live worlds are left to them). Returns the exit code: 0, or 1 when a dead
/// world's tree could not be removed.
pub fn run_if_reaper() -> Option<i32> {
    if crate::sealed::child_role().as_deref() != Some(ROLE) {
        return None;
    }
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    // EOF (or an error) means the runner is gone.
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    let snapshot: Vec<_> = crate::backend::world_trees().unwrap_or_default().into_iter().map(|(p, _)| p).collect();
    let start = Instant::now();
    loop {
        let _ = crate::backend::sweep_stale_cgroups();
        if snapshot.iter().all(|p| !p.exists()) {
            return Some(0);
        }
        if start.elapsed() >= SWEEP_TIMEOUT {
            let stale = crate::backend::stale_cgroup_trees().unwrap_or_default();
            return Some(if stale.is_empty() { 0 } else { 1 });
        }
        std::thread::sleep(crate::wait::POLL_INTERVAL * 10);
    }
}
