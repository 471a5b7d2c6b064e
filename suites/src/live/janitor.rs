//! What `nodekit up` leaves on the host and how it goes away: the kubeconfig it writes (marked
//! with the writer's pid) and, since cgroup v1 directories are not namespaced, the cgroup
//! directories the world's runtimes made. The janitor is a small host process that outlives
//! `nodekit up` however it ends (SIGKILL included), waits for the world's pid namespace to
//! empty, sweeps those directories and removes the kubeconfig and its control socket.

use std::io::{Read, Write};

use anyhow::Context;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::{KUBECONFIG_MARKER, UsageError};

/// Environment variable that makes the binary a janitor: `<pid ns inode> <host pid> <kubeconfig>`.
pub const JANITOR_ENV: &str = "NODEKIT_LIVE_JANITOR";

/// How long the world's processes may take to die once the host side is gone.
const WORLD_GONE: Duration = Duration::from_secs(60);

/// The absolute kubeconfig path, refused when the file is someone else's or in use by a running
/// `nodekit up`.
pub fn check_kubeconfig_path(path: &Path) -> Result<PathBuf, UsageError> {
    let abs = std::path::absolute(path).map_err(|e| UsageError(format!("--kubeconfig {}: {e}", path.display())))?;
    let bad = |why: String| UsageError(format!("--kubeconfig {}: {why}", abs.display()));
    match abs.parent() {
        Some(dir) if dir.is_dir() => {}
        _ => return Err(bad("its directory does not exist".into())),
    }
    if !abs.exists() {
        return Ok(abs);
    }
    let text = std::fs::read_to_string(&abs).map_err(|e| bad(format!("cannot read the existing file: {e}")))?;
    let Some(pid) = text.lines().next().and_then(|l| l.strip_prefix(KUBECONFIG_MARKER)) else {
        return Err(bad("the file exists and was not written by nodekit up; remove it or choose another path".into()));
    };
    let alive = pid.trim().parse().is_ok_and(crate::runner::nodekit_runs);
    if alive {
        return Err(bad(format!("in use by a running `nodekit up` (pid {}); choose another path", pid.trim())));
    }
    Ok(abs)
}

/// Writes the admin kubeconfig (mode 0600) with the marker line naming this process.
pub fn write_kubeconfig(path: &Path, admin: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    write!(f, "{KUBECONFIG_MARKER}{}\n{admin}", std::process::id())
}

/// A running janitor; [`Janitor::finish`] lets it do its work now and waits for it.
pub struct Janitor {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Janitor {
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The pid namespace the world's processes run in (the sealed child unshares it right after
/// it starts: waits for that). Between the unshare and the namespace's first process the kernel
/// answers ENOENT for `pid_for_children` (the namespace has no init yet): that is "not yet".
fn world_pid_ns(world_pid: u32) -> anyhow::Result<String> {
    let ours = std::fs::read_link("/proc/self/ns/pid").context("reading our pid namespace")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let link = format!("/proc/{world_pid}/ns/pid_for_children");
        match std::fs::read_link(&link) {
            Ok(theirs) if theirs != ours => return Ok(theirs.to_string_lossy().into_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && Path::new(&format!("/proc/{world_pid}")).exists() => {}
            Err(e) => return Err(anyhow::anyhow!("reading {link}: {e}")),
        }
        anyhow::ensure!(Instant::now() < deadline, "the world process {world_pid} did not make its pid namespace");
        std::thread::sleep(harness::wait::POLL_INTERVAL);
    }
}

/// Starts the janitor for the world process `world_pid` and the kubeconfig at `kubeconfig`.
pub fn spawn(world_pid: u32, kubeconfig: &Path) -> anyhow::Result<Janitor> {
    let ns = world_pid_ns(world_pid)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(JANITOR_ENV, format!("{ns} {} {}", std::process::id(), kubeconfig.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let stdin = child.stdin.take();
    Ok(Janitor { child, stdin })
}

/// If this process was started as a janitor, do its work and return the exit code.
pub fn child_entry() -> Option<ExitCode> {
    let arg = std::env::var(JANITOR_ENV).ok()?;
    let mut parts = arg.splitn(3, ' ');
    let (Some(ns), Some(host_pid), Some(kubeconfig)) = (parts.next(), parts.next(), parts.next()) else {
        eprintln!("nodekit up janitor: bad {JANITOR_ENV}={arg:?}");
        return Some(ExitCode::from(2));
    };
    // Returns when the host side is gone or asks: its end of our stdin is closed.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let deadline = Instant::now() + WORLD_GONE;
    while pid_ns_in_use(ns) && Instant::now() < deadline {
        std::thread::sleep(harness::wait::POLL_INTERVAL);
    }
    if let Some(msg) = crate::runner::sweep_cgroups() {
        eprintln!("nodekit up janitor: {msg}");
    }
    let kubeconfig = Path::new(kubeconfig);
    let ours = std::fs::read_to_string(kubeconfig)
        .is_ok_and(|t| t.lines().next().and_then(|l| l.strip_prefix(KUBECONFIG_MARKER)) == Some(host_pid));
    if ours {
        let _ = std::fs::remove_file(kubeconfig);
        let control = super::control_socket(kubeconfig);
        if std::fs::symlink_metadata(&control).is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type())) {
            let _ = std::fs::remove_file(control);
        }
    }
    Some(ExitCode::SUCCESS)
}

/// Whether any process runs in the pid namespace `ns` (`pid:[inode]`).
fn pid_ns_in_use(ns: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|e| {
        e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l.to_string_lossy() == ns)
    })
}
