//! The `nodekit` command line: `conformance`, `list`, `up` and `bench`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::catalog::Label;
use crate::plan::{Run, Selection, Shard};
use crate::report;
use crate::runner::{self, Outcome, RunOptions, RunResult};
use crate::target::RuntimeTarget;

#[derive(Debug, Parser)]
#[command(name = "nodekit", version, about = "Hermetic conformance kit for Kubernetes worker nodes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance catalog (each case in its own sealed world).
    Conformance(ConformanceArgs),
    /// List the runs a selection expands to, with skip reasons.
    List(SelectArgs),
    /// Start a live world (control plane over HTTPS and N nodes) and keep it up for kubectl
    /// until SIGINT/SIGTERM.
    Up(crate::live::UpArgs),
    /// Run scenario files (nodekit.dev/v1alpha1 Scenario, chainsaw.kyverno.io/v1alpha1 Test),
    /// each in its own sealed world; writes an HTML report and optionally JUnit. Exit 0 when
    /// all passed, 1 when any failed, 2 when a file was refused (nothing ran).
    Run(crate::scenarios::RunArgs),
    /// Serve the kit's images (and any --image archive) as a read-only OCI registry for a
    /// runtime nodekit does not start, until SIGINT/SIGTERM.
    Registry(crate::registry_cmd::RegistryArgs),
    /// Measure the kit and print figures next to a floor measured in the same run.
    Bench {
        #[arg(value_enum)]
        what: BenchKind,
        /// Repetitions where the benchmark takes a count.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// `pods` only: measure this runtime alone (default: fake-cri, then containerd).
        #[arg(long, value_enum)]
        runtime: Option<BenchRuntime>,
    },
}

/// A runtime `nodekit bench pods` can measure on its own.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchRuntime {
    FakeCri,
    Containerd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchKind {
    /// Time to build a world (cp + two nodes + client) vs one bare unshare(CLONE_NEWNET).
    World,
    /// Fake API server: creates/s, create latency, list, watch fan-out, memory, start-to-ready.
    Apiserver,
    /// CRI call latency of fake-cri and containerd side by side.
    Runtime,
    /// Proxy sync time in both modes at 1,000 and 10,000 services vs a flat nft map load.
    Proxy,
    /// Pod startup latency through the agent (30 at once) vs raw CRI calls; agent memory.
    Pods,
    /// `nodekit up` to every node Ready for 1 and 3 nodes per runtime vs a bare world build.
    Up,
    /// Node death to service recovery on two nodes (one kill), next to the floor the
    /// compressed timings allow and an estimate with upstream's defaults.
    Heal,
}

#[derive(Debug, clap::Args)]
struct SelectArgs {
    /// Only runs whose name (`area/behaviour[runtime]`) contains EXPR, or matches it as a `*`
    /// glob (repeatable: a run matching any is kept).
    #[arg(long = "filter", value_name = "EXPR")]
    filters: Vec<String>,
    /// Leave out runs whose name contains EXPR or matches it as a `*` glob (repeatable).
    #[arg(long = "exclude", value_name = "EXPR")]
    excludes: Vec<String>,
    /// Only cases carrying this label (repeatable): Conformance, Disruptive, Slow.
    #[arg(long = "label", value_name = "LABEL", value_parser = parse_label)]
    labels: Vec<Label>,
    /// Runtime backend (repeatable): fake-cri (default), containerd, containerd-crun, a runtime
    /// profile file (*.yaml; see suites/examples/runtimes/), or unix:///path/to/cri.sock.
    #[arg(long = "runtime", value_name = "RUNTIME")]
    runtimes: Vec<RuntimeTarget>,
    /// Only part K of the selection split into N parts (1 <= K <= N); the N shards partition
    /// it, and a run's shard is a hash of its name, the same on every machine.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// A node agent profile (`kind: NodeAgentProfile`): node-level cases run its binary as the
    /// node under test instead of the reference agent, and cases it cannot run are skipped.
    #[arg(long = "node-agent", value_name = "FILE")]
    node_agent: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ConformanceArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Write JUnit XML here.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Directory for per-case artifacts (logs, pcaps, audit log, timeline).
    #[arg(long, value_name = "DIR", default_value = "nodekit-artifacts")]
    artifacts: PathBuf,
    /// Keep artifacts of passing cases too (failing cases always keep theirs).
    #[arg(long)]
    keep_artifacts: bool,
    /// Exit 0 even when every selected run was skipped (by default that is exit 3: nothing
    /// was tested).
    #[arg(long)]
    allow_skipped: bool,
    /// Cases run at once (default: the number of CPUs).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Per-case time limit in seconds; the world is killed when it runs out.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
}

fn parse_label(s: &str) -> Result<Label, String> {
    Label::ALL
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<&str> = Label::ALL.iter().map(|l| l.as_str()).collect();
            format!("unknown label {s:?}; use one of {}", names.join(", "))
        })
}

impl SelectArgs {
    /// The selection, and the `--node-agent` profile read and checked (exit 2 with file, field
    /// and fix when it is bad).
    fn selection(&self) -> Result<(Selection, Option<runner::NodeAgentTarget>), ExitCode> {
        let node_agent = self.node_agent.as_deref().map(load_node_agent).transpose().map_err(|msg| {
            eprintln!("nodekit: --node-agent {msg}");
            ExitCode::from(2)
        })?;
        let agent = match &node_agent {
            None => crate::plan::AgentUnderTest::Reference,
            Some(a) => crate::plan::AgentUnderTest::Profile { nodekit_extensions: a.nodekit_extensions },
        };
        let selection = Selection {
            filters: self.filters.clone(),
            excludes: self.excludes.clone(),
            labels: self.labels.clone(),
            runtimes: if self.runtimes.is_empty() {
                vec![RuntimeTarget::FakeCri]
            } else {
                self.runtimes.clone()
            },
            shard: self.shard,
            agent,
        };
        Ok((selection, node_agent))
    }
}

/// Entry of the `nodekit` binary (after the child-process hooks).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Conformance(args) => conformance(args),
        Command::List(args) => list(&args),
        Command::Up(args) => crate::live::up(args),
        Command::Run(args) => crate::scenarios::run(args),
        Command::Registry(args) => crate::registry_cmd::run(args),
        Command::Bench { what, runs, runtime } => {
            if runtime.is_some() && !matches!(what, BenchKind::Pods) {
                eprintln!("nodekit bench: --runtime applies to `pods` only");
                return ExitCode::from(2);
            }
            if let Err(why) = crate::bench_pods::rounds_override() {
                eprintln!("nodekit bench: {why}");
                return ExitCode::from(2);
            }
            bench(what, runs, runtime)
        }
    }
}

/// `nodekit list`: one line per run with its labels, runtime and topology, and why it would
/// be skipped. Exit 2 when a selected target is unusable, as `conformance` would.
fn list(args: &SelectArgs) -> ExitCode {
    let selection = match args.selection() {
        Ok((selection, _)) => selection,
        Err(code) => return code,
    };
    if let Some(code) = refuse_unusable_targets(&selection) {
        return code;
    }
    print!("{}", report::list_table(&selection.runs()));
    ExitCode::SUCCESS
}

/// Exit 2 with the reason when a selected runtime target cannot be used at all (an external
/// socket that is missing or does not answer CRI): nothing would be tested on it.
fn refuse_unusable_targets(selection: &Selection) -> Option<ExitCode> {
    for (i, rt) in selection.runtimes.iter().enumerate() {
        if let Some(other) = selection.runtimes[..i].iter().find(|o| o.name() == rt.name()) {
            eprintln!(
                "nodekit: --runtime {other} and --runtime {rt} are both called {:?}: their runs would share names and artifacts; give one of them its own metadata.name",
                rt.name()
            );
            return Some(ExitCode::from(2));
        }
    }
    for rt in &selection.runtimes {
        if let RuntimeTarget::External(endpoint) = rt
            && let Err(why) = crate::target::probe_external(endpoint)
        {
            eprintln!("nodekit: --runtime {endpoint}: {why}");
            return Some(ExitCode::from(2));
        }
    }
    None
}

/// Reads and checks a node agent profile (fields, placeholders, the binary): its path and text,
/// which every case process gets; the error names file, field and what to fix.
pub(crate) fn load_node_agent(path: &std::path::Path) -> Result<runner::NodeAgentTarget, String> {
    let profile = runtime_profile::load_agent_file(path).map_err(|e| e.to_string())?;
    runtime_profile::agent_binary(&profile, harness::backend::find_binary).map_err(|e| e.to_string())?;
    if !profile.nodekit_extensions {
        eprintln!(
            "nodekit: node agent {:?} does not read nodekit's KubeletConfiguration extensions (spec.config.nodekitExtensions): node cases run with upstream's back-off, relist period and the host's size, so cases whose timings rely on the compressed ones may time out; it gets evictionHard with 1% disk thresholds where a case sets none, so that the host's disk does not put the node under DiskPressure",
            profile.name
        );
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(runner::NodeAgentTarget { source: std::fs::canonicalize(path).unwrap_or(path.to_path_buf()), text, nodekit_extensions: profile.nodekit_extensions })
}

fn conformance(args: ConformanceArgs) -> ExitCode {
    let (selection, node_agent) = match args.select.selection() {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(code) = refuse_unusable_targets(&selection) {
        return code;
    }
    let runs = selection.runs();
    if runs.is_empty() {
        eprintln!("nodekit: no case matches the selection (see `nodekit list`)");
        return ExitCode::from(2);
    }
    if let Err(err) = std::fs::create_dir_all(&args.artifacts) {
        eprintln!("nodekit: cannot create the artifacts directory {}: {err}", args.artifacts.display());
        return ExitCode::from(2);
    }
    let artifacts_root = std::fs::canonicalize(&args.artifacts).unwrap_or(args.artifacts.clone());
    let opts = RunOptions {
        artifacts_root: artifacts_root.clone(),
        keep_artifacts: args.keep_artifacts,
        timeout: Duration::from_secs(args.timeout),
        capture_output: true,
        node_agent,
    };
    let external = selection.runtimes.iter().any(|r| matches!(r, RuntimeTarget::External(_)));
    let jobs = if external {
        // Runs on an external runtime share it: one at a time, so that no case sees another's
        // objects or loses an image another case removed.
        if args.jobs.is_some_and(|j| j > 1) {
            eprintln!("nodekit: an external runtime is shared by its runs: they run one at a time");
        }
        1
    } else {
        args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1)
    };
    if let Some(msg) = runner::sweep_cgroups() {
        eprintln!("nodekit: before the run: {msg}");
    }
    // Sweeps this run's cgroups even if the run is killed.
    let _reaper = match harness::reaper::spawn() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("nodekit: {e}; cgroups of worlds killed with this run are swept only by the next run");
            None
        }
    };
    let total = runs.len();
    let tty = std::io::stderr().is_terminal();
    eprintln!("nodekit: {total} runs, {jobs} at a time, artifacts in {}", artifacts_root.display());
    let results = run_all(runs, &opts, jobs, |done, r| {
        let line = report::progress_line(done, total, r);
        if tty {
            eprintln!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    });
    println!();
    print!("{}", report::table(&results));
    let failed: Vec<&RunResult> = results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).collect();
    for r in &failed {
        if let Some(dir) = &r.artifacts {
            println!("failed: {}  artifacts: {}", r.name, dir.display());
        }
    }
    if let Some(path) = &args.junit {
        if let Err(err) = std::fs::write(path, report::junit(&results)) {
            eprintln!("nodekit: cannot write JUnit XML to {}: {err}", path.display());
            return ExitCode::from(2);
        }
        println!("junit: {}", path.display());
    }
    exit_code(&results, args.allow_skipped)
}

/// 1 when a run failed; 3 when none failed but none ran either (every run skipped), unless
/// skipped runs are accepted; 0 otherwise.
fn exit_code(results: &[RunResult], allow_skipped: bool) -> ExitCode {
    let failed = results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count();
    let ran = results.iter().filter(|r| !matches!(r.outcome, Outcome::Skipped(_))).count();
    if failed > 0 {
        ExitCode::FAILURE
    } else if ran == 0 && !allow_skipped {
        eprintln!(
            "nodekit: all {} selected runs were skipped: nothing was tested (see the reasons above; \
             --allow-skipped accepts this)",
            results.len()
        );
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs everything with `jobs` worker threads, in catalog order of completion reporting.
fn run_all(
    runs: Vec<Run>,
    opts: &RunOptions,
    jobs: usize,
    on_done: impl Fn(usize, &RunResult) + Send + Sync,
) -> Vec<RunResult> {
    let queue = Arc::new(Mutex::new(runs.into_iter().enumerate().collect::<Vec<_>>()));
    let results: Mutex<Vec<(usize, RunResult)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let queue = Arc::clone(&queue);
            let results = &results;
            let on_done = &on_done;
            scope.spawn(move || loop {
                let next = {
                    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                    if q.is_empty() { None } else { Some(q.remove(0)) }
                };
                let Some((idx, run)) = next else { break };
                let result = runner::run(&run, opts);
                let mut all = results.lock().unwrap_or_else(|p| p.into_inner());
                all.push((idx, result));
                on_done(all.len(), &all[all.len() - 1].1);
            });
        }
    });
    let mut all = results.into_inner().unwrap_or_else(|p| p.into_inner());
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

fn bench(what: BenchKind, runs: usize, runtime: Option<BenchRuntime>) -> ExitCode {
    let result: Result<String, String> = match what {
        BenchKind::Apiserver => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(fake_apiserver::bench::run(fake_apiserver::bench::BenchOpts::default()))
                    .map(|r| r.to_string())
                    .map_err(|e| e.to_string())
            }),
        BenchKind::Proxy => node_proxy::bench::run(&node_proxy::bench::BenchOpts::default())
            .map(|r| r.to_string())
            .map_err(|e| e.to_string()),
        BenchKind::Runtime => bench_in_world("bench/runtime"),
        BenchKind::Pods => bench_in_world_on(
            "bench/pods",
            runtime.map(|r| match r {
                BenchRuntime::FakeCri => crate::target::RuntimeTarget::FakeCri,
                BenchRuntime::Containerd => crate::target::RuntimeTarget::Containerd,
            }),
        ),
        BenchKind::Heal => bench_in_world_on("bench/heal", Some(crate::target::RuntimeTarget::FakeCri)),
        BenchKind::World => world_bench(runs),
        BenchKind::Up => crate::live::bench::run(runs),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("nodekit bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a hidden `bench/…` entry in a sealed child and returns what it printed.
fn bench_in_world(id: &str) -> Result<String, String> {
    bench_in_world_on(id, None)
}

/// [`bench_in_world`] with the runtime the entry's world runs.
fn bench_in_world_on(id: &str, runtime: Option<crate::target::RuntimeTarget>) -> Result<String, String> {
    let case = crate::catalog::find(id).ok_or_else(|| format!("no bench entry {id}"))?;
    sweep_bench_dirs(&std::env::temp_dir());
    let dir = std::env::temp_dir().join(format!("{BENCH_DIR_PREFIX}{}", std::process::id()));
    let opts = RunOptions {
        artifacts_root: dir.clone(),
        keep_artifacts: false,
        timeout: Duration::from_secs(600),
        capture_output: true,
        node_agent: None,
    };
    let run = Run { case, runtime, skip: None };
    let result = runner::run(&run, &opts);
    let _ = std::fs::remove_dir_all(&dir);
    match result.outcome {
        Outcome::Passed => Ok(result.output),
        Outcome::Failed(why) => Err(format!("{why}\n{}", result.output)),
        Outcome::Skipped(why) => Err(why),
    }
}

/// A bench's scratch directory in the temporary directory is this plus its process id.
const BENCH_DIR_PREFIX: &str = "nodekit-bench-";

/// Removes the scratch directories of `nodekit bench` processes that no longer run (one that
/// was killed cannot remove its own; its pid may name another program by now); a running
/// bench's directory is left alone. Returns what it removed.
fn sweep_bench_dirs(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(BENCH_DIR_PREFIX)).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if runner::nodekit_runs(pid) {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

fn world_bench(runs: usize) -> Result<String, String> {
    let r = harness::bench::world(runs).map_err(|e| e.to_string())?;
    Ok(format!(
        "world build (cp + node-a + node-b + client, ready), {} runs\n  \
         median build            {:>9.2} ms\n  \
         median bare unshare(NET) {:>8.3} ms   (floor, same run)\n  \
         ratio                   {:>9.1}x\n  \
         goal                     < 150 ms: {}",
        r.builds.len(),
        r.median_build.as_secs_f64() * 1e3,
        r.median_netns.as_secs_f64() * 1e3,
        r.median_build.as_secs_f64() / r.median_netns.as_secs_f64().max(1e-9),
        if r.median_build.as_millis() < 150 { "met" } else { "NOT met" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_bench_s_scratch_directory_is_swept_a_running_one_s_is_kept() {
        let base = tempfile::tempdir().unwrap();
        // A process that has exited: its pid names no process (nothing reuses it this soon).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        // A running nodekit (its command line names it) and a running other program.
        let mut bench = std::os::unix::process::CommandExt::arg0(&mut std::process::Command::new("sleep"), "nodekit").arg("60").spawn().unwrap();
        let mut other = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let dir = |pid: &str| base.path().join(format!("{BENCH_DIR_PREFIX}{pid}"));
        let (dead, live, reused, not_a_pid) = (dir(&gone.to_string()), dir(&bench.id().to_string()), dir(&other.id().to_string()), dir("ca"));
        for d in [&dead, &live, &reused, &not_a_pid] {
            std::fs::create_dir_all(d.join("case")).unwrap();
            std::fs::write(d.join("case").join("log"), "x").unwrap();
        }
        let mut removed = sweep_bench_dirs(base.path());
        for c in [&mut bench, &mut other] {
            let _ = c.kill();
            let _ = c.wait();
        }
        removed.sort();
        let mut want = vec![dead.clone(), reused.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(!dead.exists() && !reused.exists() && live.exists() && not_a_pid.exists());
    }
}
