//! Supervised processes started inside a host (`pre_exec` setns), logging to the artifacts dir.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::artifacts::Artifacts;
use crate::error::{Context, Error, Result};
use crate::ns::NetNs;
use crate::timeline::Timeline;

/// What to start.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program path (see [`crate::bins::locate`] for workspace binaries).
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Environment added to the inherited one.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// stdout and stderr are appended to `<artifacts>/<log_name>.log`.
    pub log_name: String,
    /// Give the process its own mount namespace (private propagation), e.g. for containerd.
    pub private_mounts: bool,
    /// Mount points detached in that private mount namespace before the program starts (paths
    /// that are not mount points are left alone); only with `private_mounts`.
    pub unmount: Vec<std::ffi::CString>,
    /// Directories covered by an empty tmpfs in that private mount namespace (what the program
    /// writes there stays in it); only with `private_mounts`.
    pub tmpfs: Vec<std::ffi::CString>,
}

impl ProcessSpec {
    /// A spec for `program` logging to `<log_name>.log`.
    pub fn new(program: impl Into<PathBuf>, log_name: &str) -> ProcessSpec {
        ProcessSpec {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            log_name: log_name.to_string(),
            private_mounts: false,
            unmount: Vec::new(),
            tmpfs: Vec::new(),
        }
    }
    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }
    /// Adds an environment variable.
    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// Requests a private mount namespace.
    pub fn private_mounts(mut self, on: bool) -> Self {
        self.private_mounts = on;
        self
    }
    /// Detaches the mount at `path` in the private mount namespace before the program starts
    /// (implies [`ProcessSpec::private_mounts`]); nothing happens when it is not a mount point.
    pub fn unmount(mut self, path: &std::path::Path) -> Self {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
            self.unmount.push(c);
        }
        self.private_mounts = true;
        self
    }
    /// Covers the directory `path` with an empty tmpfs in the private mount namespace before the
    /// program starts (implies [`ProcessSpec::private_mounts`]), e.g. `/var/lib` so that CNI's
    /// result cache (`/var/lib/cni`) never reaches the host.
    pub fn tmpfs(mut self, path: &std::path::Path) -> Self {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
            self.tmpfs.push(c);
        }
        self.private_mounts = true;
        self
    }
}

/// A process running inside a host. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process {
    host: String,
    ns: NetNs,
    spec: ProcessSpec,
    log: PathBuf,
    timeline: Timeline,
    child: tokio::process::Child,
    pid: u32,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `spec` inside `ns`. Needs a tokio runtime.
    pub fn start(host: &str, ns: NetNs, artifacts: &Artifacts, timeline: &Timeline, spec: ProcessSpec) -> Result<Process> {
        let log = artifacts.path(&format!("{}.log", spec.log_name));
        let (child, pid) = spawn(&ns, &log, &spec)?;
        timeline.record_with(
            "harness",
            "process started",
            serde_json::json!({"host": host, "name": spec.log_name, "pid": pid, "program": spec.program}),
        );
        Ok(Process { host: host.to_string(), ns, spec, log, timeline: timeline.clone(), child, pid, status: None })
    }

    /// The pid (in the world's pid namespace) of the current incarnation.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// The log file.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }
    /// The spec it was started with.
    pub fn spec(&self) -> &ProcessSpec {
        &self.spec
    }

    /// Whether the process is still running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.exited(s);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let s = self.child.wait().await.ctx(|| format!("waiting for {}", self.spec.log_name))?;
        self.exited(s);
        Ok(s)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaps it. Returns the exit status.
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus> {
        if !self.is_running() {
            return self.wait().await;
        }
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(r) => {
                let s = r.ctx(|| format!("waiting for {}", self.spec.log_name))?;
                self.exited(s);
                Ok(s)
            }
            Err(_) => self.kill().await,
        }
    }

    /// SIGKILL and reap.
    pub async fn kill(&mut self) -> Result<ExitStatus> {
        if self.is_running() {
            let _ = self.child.start_kill();
        }
        self.wait().await
    }

    /// Stops (SIGKILL) the current incarnation if running and starts the same spec again.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await?;
        let (child, pid) = spawn(&self.ns, &self.log, &self.spec)?;
        self.child = child;
        self.pid = pid;
        self.status = None;
        self.timeline.record_with(
            "harness",
            "process restarted",
            serde_json::json!({"host": self.host, "name": self.spec.log_name, "pid": pid}),
        );
        Ok(())
    }

    fn exited(&mut self, s: ExitStatus) {
        self.status = Some(s);
        self.timeline.record_with(
            "harness",
            "process exited",
            serde_json::json!({"host": self.host, "name": self.spec.log_name, "pid": self.pid, "status": s.to_string()}),
        );
    }
}

fn spawn(ns: &NetNs, log: &std::path::Path, spec: &ProcessSpec) -> Result<(tokio::process::Child, u32)> {
    let out = OpenOptions::new().create(true).append(true).open(log).ctx(|| format!("opening {}", log.display()))?;
    let err = out.try_clone().ctx(|| "duplicating the log fd".into())?;
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args).stdin(Stdio::null()).stdout(out).stderr(err);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    let fd = ns.fd().clone();
    let private = spec.private_mounts;
    let unmount = spec.unmount.clone();
    let tmpfs = spec.tmpfs.clone();
    // SAFETY: between fork and exec only async-signal-safe calls (setns, unshare, mount,
    // umount2) on values prepared before the fork.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            setns(&*fd, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            if private {
                unshare(CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(std::io::Error::from)?;
                for path in &unmount {
                    // EINVAL: not a mount point; ENOENT: not there. Both leave nothing to hide.
                    match nix::mount::umount2(path.as_c_str(), nix::mount::MntFlags::MNT_DETACH) {
                        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
                        Err(e) => return Err(std::io::Error::from(e)),
                    }
                }
                for path in &tmpfs {
                    nix::mount::mount(
                        Some(c"tmpfs"),
                        path.as_c_str(),
                        Some(c"tmpfs"),
                        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                        Some(c"mode=755"),
                    )
                    .map_err(std::io::Error::from)?;
                }
            }
            Ok(())
        });
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let child = cmd.spawn().ctx(|| format!("starting {} ({})", spec.log_name, spec.program.display()))?;
    let pid = child.id().ok_or_else(|| Error::Child(format!("{} exited at once", spec.log_name)))?;
    Ok((child, pid))
}
