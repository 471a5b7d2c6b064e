//! Entering a sealed world: fresh user (when not root), mount, network and pid namespaces.
//!
//! A case runs in its own process that calls [`enter`] first thing in `main`, before any
//! thread or async runtime exists:
//!
//! ```no_run
//! fn main() -> anyhow::Result<()> {
//!     if let Ok(id) = std::env::var("NODEKIT_CASE") {
//!         harness::sealed::enter()?; // returns only in the case process
//!         let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//!         return rt.block_on(async { /* run case `id` */ let _ = id; Ok(()) });
//!     }
//!     // the runner: one sealed child per case, killed with the runner if the runner dies
//!     let mut cmd = std::process::Command::new(std::env::current_exe()?);
//!     cmd.env("NODEKIT_CASE", "area/behaviour");
//!     let status = harness::sealed::spawn_sealed(cmd)?.wait()?;
//!     # let _ = status;
//!     Ok(())
//! }
//! ```
//!
//! What [`enter`] builds (processes from the outside in):
//!
//! 1. the **outer** process (the one that was exec'd): as non-root it unshares a user
//!    namespace mapping uid/gid 0 to its own ids; then it unshares mount + network namespaces,
//!    makes `/` recursively private (no mount propagates to the host), unshares a pid namespace
//!    and forks **init**. It waits for init and exits with the case's status (re-raising the
//!    signal if the case was killed by one). It never returns from `enter`.
//! 2. **init** is PID 1 of the new pid namespace. It gets `PR_SET_PDEATHSIG=SIGKILL` (checked
//!    against a pipe to close the race with the outer process dying first), mounts a fresh
//!    `/proc` (pid-namespace-correct) and a private tmpfs over `/run/netns` when that exists
//!    (so named netns of CNI plugins never leave files on the host), forks the **case** process
//!    and reaps every child. When the case process ends, init exits, and the kernel kills
//!    everything else in the pid namespace.
//! 3. the **case** process is where `enter` returns `Ok(())`. Its network namespace is the
//!    "world root" in which [`crate::world::World`] builds hosts.
//!
//! Killing the outer process (even with SIGKILL) kills init through its death signal, which
//! kills every process of the world; the namespaces, links, rules, sysctls and mounts die with
//! their last process. [`spawn_sealed`] adds the same death signal between a runner and the
//! outer process, so killing the runner also tears the world down.
//!
//! [`run_child`] / [`spawn_child`] re-execute the current binary in a role (env
//! [`CHILD_ENV`]); a binary's `main` dispatches on [`child_role`]. Tests and the world bench
//! use this. Test binaries must own `main` (`harness = false`, e.g. with `libtest-mimic`):
//! libtest starts threads before any test runs, and [`enter`] refuses a multi-threaded
//! process ([`Error::NotSingleThreaded`]).
//!
//! [`spawn_sealed`] forks from one long-lived thread (the death signal fires when the *thread*
//! that forked the child exits). It returns a `std::process::Child`; from async code wait for
//! it with `tokio::task::spawn_blocking(move || child.wait())`.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use nix::mount::{MsFlags, mount};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getegid, geteuid, getppid, pipe2};

use crate::error::{Context, Error, Result};

static SEALED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is a case process that returned from [`enter`].
pub fn is_sealed() -> bool {
    SEALED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Environment variable naming the role of a re-executed child (see [`run_child`]).
pub const CHILD_ENV: &str = "NODEKIT_CHILD";

/// [`enter`]s a fresh sealed world, then runs `body` to completion on a two-worker runtime
/// (only the case process gets here; the sealing processes exit with its status).
pub fn block_on_sealed<T, E, F>(body: F) -> std::result::Result<T, E>
where
    F: std::future::Future<Output = std::result::Result<T, E>>,
    E: From<Error>,
{
    enter()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("building a tokio runtime", e))?;
    rt.block_on(body)
}

/// Enters a fresh sealed world. Returns `Ok(())` only in the case process; the calling
/// process becomes the outer waiter and exits with the case's status.
///
/// Must be called first in a fresh, single-threaded process (before any tokio runtime).
pub fn enter() -> Result<()> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(Error::NotSingleThreaded { threads });
    }
    let parent = getppid();
    let death_signal = prctl::get_pdeathsig().ctx(|| "reading the parent death signal".into())?;
    let (uid, gid) = (geteuid(), getegid());
    if !uid.is_root() {
        unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "unshare(CLONE_NEWUSER)".into())?;
        write_proc("/proc/self/setgroups", "deny")?;
        write_proc("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_proc("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    }
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)
        .ctx(|| "unshare(CLONE_NEWNS | CLONE_NEWNET)".into())?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .ctx(|| "making / recursively private".into())?;
    unshare(CloneFlags::CLONE_NEWPID).ctx(|| "unshare(CLONE_NEWPID)".into())?;
    // Keep a death signal given by a runner (spawn_sealed) across the credential change.
    if let Some(sig) = death_signal {
        prctl::set_pdeathsig(sig).ctx(|| "re-arming the parent death signal".into())?;
        if getppid() != parent {
            std::process::exit(1);
        }
    }
    let (alive_r, alive_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe2".into())?;
    let (status_r, status_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe2".into())?;
    // SAFETY: the process is single-threaded (checked above), so the child may run any code.
    #[allow(unsafe_code)]
    let forked = unsafe { fork() }.ctx(|| "forking the world's init".into())?;
    match forked {
        ForkResult::Parent { child } => {
            drop(alive_r);
            drop(status_w);
            outer_wait(child, status_r, alive_w)
        }
        ForkResult::Child => {
            drop(alive_w);
            drop(status_r);
            init(alive_r, status_w)
        }
    }
}

/// Waits for init, then exits like the case process did. Keeps `alive` open until then.
fn outer_wait(init: Pid, status_r: OwnedFd, alive: OwnedFd) -> ! {
    let status = loop {
        match waitpid(init, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => std::process::exit(125),
            Ok(status) => break status,
        }
    };
    drop(alive);
    let mut buf = [0u8; 8];
    let reported = fs::File::from(status_r).read_exact(&mut buf).is_ok();
    if reported {
        let kind = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let value = i32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        if kind == 1 {
            exit_by_signal(value);
        }
        std::process::exit(value);
    }
    match status {
        WaitStatus::Exited(_, code) => std::process::exit(code),
        WaitStatus::Signaled(_, sig, _) => exit_by_signal(sig as i32),
        _ => std::process::exit(125),
    }
}

/// Dies of `sig` (default action), or exits 128+sig if the signal does not kill.
fn exit_by_signal(sig: i32) -> ! {
    if let Ok(signal) = Signal::try_from(sig) {
        // SAFETY: restoring the default disposition of a signal is always sound.
        #[allow(unsafe_code)]
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(signal);
        let _ = set.thread_unblock();
        let _ = nix::sys::signal::raise(signal);
    }
    std::process::exit(128 + sig)
}

/// PID 1 of the world: mounts /proc, forks the case process, reaps everything.
fn init(alive_r: OwnedFd, status_w: OwnedFd) -> Result<()> {
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        std::process::exit(125);
    }
    // The outer process may have died before the death signal was armed: its end of the
    // pipe is then closed and poll reports a hangup.
    {
        let mut fds = [PollFd::new(alive_r.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::ZERO).unwrap_or(1) != 0 {
            std::process::exit(125);
        }
    }
    if let Err(e) = init_mounts() {
        eprintln!("nodekit sealed init: {e}");
        std::process::exit(125);
    }
    // SAFETY: init is single-threaded (a fork of a single-threaded process).
    #[allow(unsafe_code)]
    let forked = unsafe { fork() };
    let case = match forked {
        Ok(ForkResult::Child) => {
            drop(alive_r);
            drop(status_w);
            SEALED.store(true, std::sync::atomic::Ordering::SeqCst);
            return Ok(());
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("nodekit sealed init: fork: {e}");
            std::process::exit(125);
        }
    };
    let (kind, value): (u32, i32) = loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == case => break (0, code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == case => break (1, sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break (0, 125),
        }
    };
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&kind.to_le_bytes());
    buf[4..].copy_from_slice(&value.to_le_bytes());
    let _ = nix::unistd::write(&status_w, &buf);
    std::process::exit(if kind == 0 { value } else { 128 + value })
}

fn init_mounts() -> Result<()> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .ctx(|| "mounting a fresh /proc".into())?;
    if Path::new("/run/netns").is_dir() {
        private_tmpfs(Path::new("/run/netns"))?;
    }
    Ok(())
}

/// Mounts a fresh tmpfs over `dir` (only visible inside the world's mount namespace).
pub fn private_tmpfs(dir: &Path) -> Result<()> {
    mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755"))
        .ctx(|| format!("mounting a private tmpfs on {}", dir.display()))
}

fn write_proc(path: &str, value: &str) -> Result<()> {
    fs::write(path, value).ctx(|| format!("writing {value:?} to {path}"))
}

fn thread_count() -> Result<usize> {
    let status = fs::read_to_string("/proc/self/status").ctx(|| "reading /proc/self/status".into())?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1))
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// The thread that spawns sealed children. `PR_SET_PDEATHSIG` fires when the *thread* that
/// forked the child exits, so children are forked from one thread that lives as long as the
/// process.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("nodekit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static: this loop never ends while the process runs.
            })
            .map(|_| ())
            .unwrap_or(());
        Mutex::new(tx)
    })
}

/// Spawns `cmd` so that it receives SIGKILL when this process dies (`PR_SET_PDEATHSIG`,
/// re-checked against the parent pid to close the race). Use it to start processes that call
/// [`enter`]: killing the runner then tears down the whole world.
pub fn spawn_sealed(mut cmd: Command) -> Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
    // functions (prctl, getppid) without allocating.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            if getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::other("parent exited before the child started"));
            }
            Ok(())
        });
    }
    let program = format!("{:?}", cmd.get_program());
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .map_err(|_| Error::Child("the spawner lock is poisoned".into()))?
        .send((cmd, tx))
        .map_err(|_| Error::Child("the spawner thread is gone".into()))?;
    rx.recv()
        .map_err(|_| Error::Child("the spawner thread is gone".into()))?
        .ctx(|| format!("spawning {program}"))
}

/// The role this process was re-executed in (`NODEKIT_CHILD`), if any.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A re-execution of the current binary in a role.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Role passed in [`CHILD_ENV`].
    pub role: String,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Extra environment.
    pub env: Vec<(OsString, OsString)>,
    /// Run as this user id (and drop supplementary groups); needs root.
    pub uid: Option<u32>,
    /// Run as this group id; needs root.
    pub gid: Option<u32>,
    /// Kill the child (SIGKILL) if it has not finished by then (only for [`run_child`]).
    pub timeout: Duration,
    /// The program; defaults to `current_exe()`.
    pub program: Option<PathBuf>,
}

impl ChildSpec {
    /// A child of role `role`, 60 s timeout, running the current executable.
    pub fn new(role: impl Into<String>) -> Self {
        ChildSpec {
            role: role.into(),
            args: Vec::new(),
            env: Vec::new(),
            uid: None,
            gid: None,
            timeout: Duration::from_secs(60),
            program: None,
        }
    }
    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Adds an environment variable.
    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Runs the child as `uid`/`gid`.
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.uid = Some(uid);
        self.gid = Some(gid);
        self
    }
    /// Sets the timeout of [`run_child`].
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    fn command(&self) -> Result<Command> {
        let program = match &self.program {
            Some(p) => p.clone(),
            None => std::env::current_exe().ctx(|| "locating the current executable".into())?,
        };
        let mut cmd = Command::new(program);
        cmd.args(&self.args).env(CHILD_ENV, &self.role);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(gid) = self.gid {
            cmd.gid(gid);
        }
        if let Some(uid) = self.uid {
            cmd.uid(uid);
        }
        Ok(cmd)
    }
}

/// What a finished child printed and how it ended.
#[derive(Debug, Clone)]
pub struct ChildOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Starts a child of the current binary (via [`spawn_sealed`]) without waiting; stdout and
/// stderr are inherited.
pub fn spawn_child(spec: &ChildSpec) -> Result<Child> {
    spawn_sealed(spec.command()?)
}

/// Runs a child of the current binary to completion (blocking), capturing its output; the
/// child is SIGKILLed when `spec.timeout` passes.
pub fn run_child(spec: &ChildSpec) -> Result<ChildOutput> {
    let mut cmd = spec.command()?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = spawn_sealed(cmd)?;
    let pid = Pid::from_raw(child.id() as i32);
    let out = child.stdout.take().map(reader_thread);
    let err = child.stderr.take().map(reader_thread);
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match rx.recv_timeout(spec.timeout) {
        Ok(status) => (status, false),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            (rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("waiter thread died"))), true)
        }
    };
    let _ = waiter.join();
    let status = status.ctx(|| format!("waiting for child {:?}", spec.role))?;
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    if timed_out {
        return Err(Error::Child(format!(
            "child {:?} timed out after {:?} and was killed; stdout:\n{stdout}\nstderr:\n{stderr}",
            spec.role, spec.timeout
        )));
    }
    Ok(ChildOutput { status, stdout, stderr })
}

fn reader_thread(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}
