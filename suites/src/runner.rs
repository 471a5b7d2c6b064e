//! Runs one case in its own child process: the parent side (spawn, timeout, outcome) and the
//! child side (enter the sealed world, build it, run the body).
//!
//! Protocol: the parent re-executes the current binary with `NODEKIT_CASE=<id>`,
//! `NODEKIT_RUNTIME=<target>` and `NODEKIT_CASE_ARTIFACTS=<dir>`. Every binary that can run cases
//! (the `nodekit` CLI and the nextest entry) calls [`child_entry`] first thing in `main`. The child
//! exits 0 when the case passed, [`EXIT_SKIPPED`] when it skipped itself (the reason is the last
//! line of its stdout, after [`SKIP_MARKER`]) and 1 when it failed.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::catalog;
use crate::context::{CaseCtx, Skipped};
use crate::plan::Run;
use crate::target::RuntimeTarget;

pub const CASE_ENV: &str = "NODEKIT_CASE";
pub const RUNTIME_ENV: &str = "NODEKIT_RUNTIME";
/// The text of the runtime profile named by [`RUNTIME_ENV`], as the run read it.
pub const RUNTIME_PROFILE_ENV: &str = "NODEKIT_RUNTIME_PROFILE";
pub const ARTIFACTS_ENV: &str = "NODEKIT_CASE_ARTIFACTS";
/// The text of the node agent profile of the run, as the run read it.
pub const NODE_AGENT_PROFILE_ENV: &str = "NODEKIT_NODE_AGENT_PROFILE";
/// Where that profile came from (messages name it).
pub const NODE_AGENT_SOURCE_ENV: &str = "NODEKIT_NODE_AGENT_SOURCE";
pub const EXIT_SKIPPED: i32 = 77;
pub const SKIP_MARKER: &str = "nodekit-case-skipped: ";

/// A node agent profile a run uses instead of the reference agent: its file and its text.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeAgentTarget {
    pub source: PathBuf,
    pub text: String,
    /// The profile's `spec.config.nodekitExtensions`.
    pub nodekit_extensions: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub name: String,
    pub area: String,
    pub outcome: Outcome,
    pub duration: Duration,
    /// Where the case's artifacts are, when they were kept.
    pub artifacts: Option<PathBuf>,
    /// The case's own output (captured runs only).
    pub output: String,
}

/// Options of the parent side.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Directory under which each run gets its own artifacts directory.
    pub artifacts_root: PathBuf,
    /// Keep artifacts of passing runs too.
    pub keep_artifacts: bool,
    /// Kill the case (and with it its whole world) after this long.
    pub timeout: Duration,
    /// Capture the child's output into `case.log` (CLI) instead of inheriting it (nextest).
    pub capture_output: bool,
    /// The node agent under test, when it is not the reference agent.
    pub node_agent: Option<NodeAgentTarget>,
}

/// If this process was started to run one case, run it and return the exit code.
/// Call it first thing in `main`, before any thread or runtime exists.
pub fn child_entry() -> Option<ExitCode> {
    if let Some(code) = harness::reaper::run_if_reaper() {
        return Some(ExitCode::from(code as u8));
    }
    let id = std::env::var(CASE_ENV).ok()?;
    let code = match run_child(&id) {
        Ok(()) => 0,
        Err(err) => match err.downcast_ref::<Skipped>() {
            Some(Skipped(reason)) => {
                println!("{SKIP_MARKER}{reason}");
                EXIT_SKIPPED
            }
            None => {
                eprintln!("case {id} failed: {err:#}");
                1
            }
        },
    };
    let _ = io::stdout().flush();
    Some(ExitCode::from(code as u8))
}

fn run_child(id: &str) -> anyhow::Result<()> {
    let case = catalog::find(id).ok_or_else(|| anyhow::anyhow!("no case with id {id:?}"))?;
    let runtime = match (std::env::var(RUNTIME_ENV), std::env::var(RUNTIME_PROFILE_ENV)) {
        (Ok(spec), Ok(text)) if !spec.is_empty() => Some(RuntimeTarget::from_profile_text(&spec, &text)?),
        (Ok(s), _) if !s.is_empty() => Some(s.parse::<RuntimeTarget>()?),
        _ => None,
    };
    let artifacts = std::env::var_os(ARTIFACTS_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("{ARTIFACTS_ENV} is not set"))?;
    if let Ok(text) = std::env::var(NODE_AGENT_PROFILE_ENV) {
        let source = PathBuf::from(std::env::var_os(NODE_AGENT_SOURCE_ENV).unwrap_or_default());
        let profile = runtime_profile::load_agent_str(&text, &source)?;
        crate::context::set_node_agent_profile(std::sync::Arc::new(profile));
    }
    // Only the case process returns from here; the sealing processes wait and exit.
    harness::sealed::block_on_sealed(async move {
        let plan = crate::topology_plan(case.topology);
        let world =
            harness::world::World::build_with(&plan, harness::artifacts::Artifacts::at(&artifacts)).await?;
        let ctx = CaseCtx { world, runtime, artifacts: artifacts.clone() };
        let result = (case.body)(ctx).await;
        collect_runtime_logs(&artifacts);
        result
    })
}

/// Removes cgroup directories of worlds that no longer exist; returns a message when some
/// could not be removed.
pub fn sweep_cgroups() -> Option<String> {
    match harness::backend::sweep_stale_cgroups_within(Duration::from_secs(5)) {
        Ok(report) if report.busy.is_empty() => None,
        Ok(report) => Some(format!("cgroup directories left behind and still busy: {:?}", report.busy)),
        Err(err) => Some(format!("sweeping stale cgroups failed: {err}")),
    }
}

/// Whether process `pid` runs and is nodekit (its command line names it): a pid that names
/// no process, or one reused by another program, does not count.
pub fn nodekit_runs(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("nodekit"))
}

/// Copies what runtimes logged inside the world's scratch tmpfs (which vanishes with the world)
/// into the artifacts: fake-cri's CRI call log of every node.
fn collect_runtime_logs(artifacts: &Path) {
    let Ok(entries) = fs::read_dir("/run/nodekit") else { return };
    for entry in entries.flatten() {
        let calls = entry.path().join("state").join("cri-calls.jsonl");
        if calls.is_file() {
            let name = format!("cri-calls-{}.jsonl", entry.file_name().to_string_lossy());
            let _ = fs::copy(&calls, artifacts.join(name));
        }
    }
}

/// Run one planned run in a child process and wait for it.
pub fn run(run: &Run, opts: &RunOptions) -> RunResult {
    let name = run.name();
    let area = run.case.area().to_string();
    if let Some(reason) = &run.skip {
        return RunResult {
            name,
            area,
            outcome: Outcome::Skipped(reason.clone()),
            duration: Duration::ZERO,
            artifacts: None,
            output: String::new(),
        };
    }
    let started = Instant::now();
    let dir = opts.artifacts_root.join(sanitize(&name));
    let (mut outcome, output) = match spawn_and_wait(run, &dir, opts) {
        Ok(v) => v,
        Err(err) => (Outcome::Failed(format!("could not run the case process: {err}")), String::new()),
    };
    // cgroup v1 directories are not namespaced: what runtimes created for this world outlives
    // it when it was killed. Sweep the dead worlds' directories now; busy ones are a failure.
    if let Some(leftover) = sweep_cgroups()
        && matches!(outcome, Outcome::Passed)
    {
        outcome = Outcome::Failed(leftover);
    }
    let keep = opts.keep_artifacts || matches!(outcome, Outcome::Failed(_));
    let artifacts = if keep {
        Some(dir)
    } else {
        let _ = fs::remove_dir_all(&dir);
        None
    };
    RunResult { name, area, outcome, duration: started.elapsed(), artifacts, output }
}

fn spawn_and_wait(run: &Run, dir: &Path, opts: &RunOptions) -> io::Result<(Outcome, String)> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.env(CASE_ENV, run.case.id)
        .env(RUNTIME_ENV, run.runtime.as_ref().map(|r| r.to_string()).unwrap_or_default())
        .env(ARTIFACTS_ENV, dir)
        .stdin(Stdio::null());
    if let Some(text) = run.runtime.as_ref().and_then(RuntimeTarget::profile_text) {
        cmd.env(RUNTIME_PROFILE_ENV, text);
    }
    if let Some(agent) = &opts.node_agent {
        cmd.env(NODE_AGENT_PROFILE_ENV, &agent.text).env(NODE_AGENT_SOURCE_ENV, &agent.source);
    }
    let log_path = dir.join("case.log");
    if opts.capture_output {
        let log = fs::File::create(&log_path)?;
        cmd.stdout(log.try_clone()?).stderr(log);
    } else {
        // Keep the skip marker readable while still showing everything to the caller.
        cmd.stdout(Stdio::piped());
    }
    let mut child = harness::sealed::spawn_sealed(cmd).map_err(io::Error::other)?;
    let stdout_pipe = child.stdout.take();
    let echo = stdout_pipe.map(|mut out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = io::copy(&mut out, &mut TeeStdout(&mut buf));
            String::from_utf8_lossy(&buf).into_owned()
        })
    });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let status = match rx.recv_timeout(opts.timeout) {
        Ok(()) => Some(waiter.join().map_err(|_| io::Error::other("waiter panicked"))??),
        Err(_) => {
            // SIGKILL of the outermost process takes the whole sealed world with it.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = waiter.join();
            None
        }
    };
    let mut output = echo.and_then(|h| h.join().ok()).unwrap_or_default();
    if opts.capture_output {
        output = fs::read_to_string(&log_path).unwrap_or_default();
    }
    let outcome = match status {
        None => Outcome::Failed(format!("timed out after {:?}; the world was killed", opts.timeout)),
        Some(s) if s.success() => Outcome::Passed,
        Some(s) if s.code() == Some(EXIT_SKIPPED) => {
            let reason = output
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix(SKIP_MARKER))
                .unwrap_or("skipped by the case")
                .to_string();
            Outcome::Skipped(reason)
        }
        Some(s) => {
            let last = output
                .lines()
                .rev()
                .find(|l| l.contains("failed:"))
                .unwrap_or("")
                .to_string();
            Outcome::Failed(if last.is_empty() { format!("case process exited with {s}") } else { last })
        }
    };
    Ok((outcome, output))
}

/// Copies to our stdout while keeping a copy.
struct TeeStdout<'a>(&'a mut Vec<u8>);

impl Write for TeeStdout<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(data);
        io::stdout().write_all(data)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

/// A run name as a directory name.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
        .collect()
}
