//! `nodekit run FILE|DIR…`: every scenario in its own sealed world, a JUnit file and one HTML
//! report.
//!
//! The host side loads every file first (a refused file: its `file:line:column` message and
//! exit 2, nothing runs), checks each scenario's merged agent and proxy configurations with
//! their own parsers, then runs up to `-j` scenarios at once, each in a sealed child process
//! ([`child`]) that builds the world, runs the steps and writes `record.json` into the
//! scenario's directory under `--report`. The host side gathers the records into
//! `report.html` (and `--junit`), prints one line per scenario and exits 0 when all passed,
//! 1 otherwise.

pub mod attach;
pub mod child;
pub mod exec;
pub mod faults;
pub mod objects;
pub mod recorder;
pub mod steps;
pub mod traffic;
pub mod world;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};

use scenario::model::{Action, FaultKind, RuntimeName, Scenario};
use scenario::record::{Outcome, RunRecord, ScenarioRecord};
use serde::{Deserialize, Serialize};

use crate::live::spec::{LiveProxyMode, LiveRuntime, UsageError};

/// Environment variable carrying a [`Prepared`] scenario (JSON) to its sealed child.
pub const SCENARIO_ENV: &str = "NODEKIT_SCENARIO_RUN";
/// The record each child writes into its directory.
pub const RECORD_FILE: &str = "record.json";

/// `nodekit run` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenario files (nodekit.dev/v1alpha1 Scenario or chainsaw.kyverno.io/v1alpha1 Test) or
    /// directories of them.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// The runtime of scenarios whose world names none (default fake-cri); a scenario that
    /// needs fake-cri's faults is skipped on another runtime.
    #[arg(long, value_enum)]
    pub runtime: Option<LiveRuntime>,
    /// Where to write the report (report.html, one directory of logs per scenario).
    #[arg(long, value_name = "DIR", default_value = "nodekit-report")]
    pub report: PathBuf,
    /// Also write JUnit XML here (one testcase per step).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Scenarios run at once.
    #[arg(short = 'j', long, default_value_t = 1)]
    pub jobs: usize,
    /// Run the steps against the world a `nodekit up` is serving: PATH is its kubeconfig (or
    /// the directory holding it); the scenario's spec.world must match that world's nodes.
    #[arg(long, value_name = "PATH")]
    pub attach: Option<PathBuf>,
    /// Leave the world up after the last step (or the first failure) for kubectl, like
    /// `nodekit up`, until Ctrl-C (one scenario; the kubeconfig is ./nodekit.kubeconfig).
    #[arg(long, conflicts_with = "attach")]
    pub keep_world: bool,
    /// A node agent profile (`kind: NodeAgentProfile`): every node of the scenarios' worlds runs
    /// its binary instead of the reference agent.
    #[arg(long = "node-agent", value_name = "FILE", conflicts_with = "attach")]
    pub node_agent: Option<PathBuf>,
}

/// What a scenario's child needs: the scenario and everything checked for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepared {
    pub scenario: Scenario,
    pub runtime: RuntimeName,
    /// The whole KubeletConfiguration of each node, in the order of `scenario.world.nodes`.
    pub agent_configs: Vec<String>,
    pub proxy_config: String,
    /// The scenario's directory in the report.
    pub out: PathBuf,
    /// Why it does not run here (it needs what this runtime cannot do).
    pub skip: Option<String>,
    /// Image archives the world's registry serves besides the kit's images (`nodekit up
    /// --image`), absolute.
    #[serde(default)]
    pub images: Vec<PathBuf>,
    /// The node agent profile every node runs instead of the reference agent (`--node-agent`).
    #[serde(default)]
    pub node_agent: Option<crate::runner::NodeAgentTarget>,
}

/// Entry of `nodekit run`.
pub fn run(args: RunArgs) -> ExitCode {
    if args.keep_world {
        return keep_world(&args);
    }
    let prepared = match prepare_all(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nodekit run: {e}");
            return ExitCode::from(2);
        }
    };
    let records = match &args.attach {
        Some(path) => match attach::run_attached(path, &prepared) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("nodekit run: --attach {}: {e:#}", path.display());
                return ExitCode::from(2);
            }
        },
        None => run_sealed(&prepared, args.jobs),
    };
    let run = RunRecord { started: jiff::Timestamp::now().to_string(), scenarios: records };
    match write_outputs(&args, &run) {
        Ok(report) => eprintln!("nodekit run: report {}", report.display()),
        Err(e) => {
            eprintln!("nodekit run: writing the report: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    let failed = run.scenarios.iter().filter(|s| matches!(s.outcome, Outcome::Failed | Outcome::Error)).count();
    let passed = run.scenarios.iter().filter(|s| s.outcome == Outcome::Passed).count();
    let skipped = run.scenarios.len() - failed - passed;
    eprintln!("nodekit run: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Runs each scenario in its own sealed world, sweeping stale cgroups before and after.
fn run_sealed(prepared: &[Prepared], jobs: usize) -> Vec<ScenarioRecord> {
    if let Some(msg) = crate::runner::sweep_cgroups() {
        eprintln!("nodekit run: before the start: {msg}");
    }
    let records = run_all(prepared, jobs.max(1));
    if let Some(msg) = crate::runner::sweep_cgroups() {
        eprintln!("nodekit run: {msg}");
    }
    records
}

/// `nodekit run --keep-world FILE`: `nodekit up --scenario FILE`, with the report where
/// `--report` says.
fn keep_world(args: &RunArgs) -> ExitCode {
    let file = match args.paths.as_slice() {
        [one] if one.is_file() => one.clone(),
        _ => {
            eprintln!("nodekit run: --keep-world takes one scenario file, not {}", show_paths(&args.paths));
            return ExitCode::from(2);
        }
    };
    crate::live::up(crate::live::UpArgs {
        runtime: args.runtime,
        kubeconfig: PathBuf::from("nodekit.kubeconfig"),
        scenario: Some(file),
        report: args.report.clone(),
        node_agent: args.node_agent.clone(),
        ..Default::default()
    })
}

/// One file holding exactly one scenario, prepared (for `nodekit up --scenario`).
pub fn prepare_one(file: &Path, runtime: Option<LiveRuntime>, out: PathBuf) -> Result<Prepared, UsageError> {
    let mut all = scenario::load::load_file(file).map_err(|e| UsageError(e.to_string()))?;
    if all.len() != 1 {
        return Err(UsageError(format!("{}: holds {} scenarios; --scenario takes a file with one", file.display(), all.len())));
    }
    let p = prepare(all.remove(0), runtime, out)?;
    match &p.skip {
        Some(why) => Err(UsageError(format!("{}: cannot run here: {why}", file.display()))),
        None => Ok(p),
    }
}

/// The world of a plain `nodekit up`: `nodes` nodes (node-a, …) and no steps.
pub fn prepared_world(nodes: usize, runtime: LiveRuntime, mode: LiveProxyMode, agent_config: String, proxy_config: String) -> Prepared {
    use scenario::model::{AuthorizationMode, NodeSpec, Origin, ProxyMode, Timeouts, WorldSpec};
    let runtime = match runtime {
        LiveRuntime::FakeCri => RuntimeName::FakeCri,
        LiveRuntime::Containerd => RuntimeName::Containerd,
    };
    let names = (0..nodes).map(|i| format!("node-{}", (b'a' + i as u8) as char));
    let world = WorldSpec {
        nodes: names.map(|name| NodeSpec { name, kubelet_config: serde_json::Value::Null }).collect(),
        runtime: Some(runtime),
        proxy_mode: match mode {
            LiveProxyMode::Nftables => ProxyMode::Nftables,
            LiveProxyMode::Iptables => ProxyMode::Iptables,
        },
        kubelet_config: serde_json::Value::Null,
        proxy_config: serde_json::Value::Null,
        node_monitor_grace_period: crate::live::spec::NODE_GRACE,
        authorization_mode: AuthorizationMode::NodeRbac,
    };
    let scenario = Scenario {
        name: "live".into(),
        file: PathBuf::from("(nodekit up)"),
        description: None,
        reproduces: Vec::new(),
        origin: Origin::Scenario,
        world,
        timeouts: Timeouts::default(),
        steps: Vec::new(),
    };
    Prepared { scenario, runtime, agent_configs: vec![agent_config; nodes], proxy_config, out: PathBuf::new(), skip: None, images: Vec::new(), node_agent: None }
}

/// Loads and checks every file; the first refusal is the error (nothing has run).
fn prepare_all(args: &RunArgs) -> Result<Vec<Prepared>, UsageError> {
    let files = scenario::load::discover(&args.paths).map_err(|e| UsageError(e.to_string()))?;
    if files.is_empty() {
        return Err(UsageError(format!("no scenario files in {}", show_paths(&args.paths))));
    }
    let mut all = Vec::new();
    for file in &files {
        for s in scenario::load::load_file(file).map_err(|e| UsageError(e.to_string()))? {
            all.push(s);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, s) in all.into_iter().enumerate() {
        if !seen.insert(s.name.clone()) {
            return Err(UsageError(format!("{}: metadata.name: a second scenario is named {:?}; names must be unique in a run", s.file.display(), s.name)));
        }
        let dir = args.report.join(format!("{:02}-{}", i + 1, s.name));
        out.push(prepare(s, args.runtime, dir)?);
    }
    let node_agent = node_agent(args.node_agent.as_deref())?;
    for p in &mut out {
        p.node_agent = node_agent.clone();
    }
    Ok(out)
}

/// The `--node-agent` profile, checked (fields, placeholders, the binary) before anything runs.
pub fn node_agent(path: Option<&Path>) -> Result<Option<crate::runner::NodeAgentTarget>, UsageError> {
    path.map(|p| crate::cli::load_node_agent(p).map_err(|msg| UsageError(format!("--node-agent {msg}")))).transpose()
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Resolves the runtime and merges and checks the configurations of one scenario.
fn prepare(s: Scenario, cli: Option<LiveRuntime>, out: PathBuf) -> Result<Prepared, UsageError> {
    let runtime = match (cli, s.world.runtime) {
        (Some(LiveRuntime::FakeCri), _) => RuntimeName::FakeCri,
        (Some(LiveRuntime::Containerd), _) => RuntimeName::Containerd,
        (None, Some(r)) => r,
        (None, None) => RuntimeName::FakeCri,
    };
    if let Some(line) = link_delay_line(&s)
        && !faults::netem_available()
    {
        return Err(UsageError(format!(
            "{}:{line}: fault.link.delay: this kernel has no netem (CONFIG_NET_SCH_NETEM is not set), so a link cannot be delayed here; use loss or down",
            s.file.display()
        )));
    }
    let skip = (runtime != RuntimeName::FakeCri && needs_fake_cri(&s))
        .then(|| format!("it injects fake-cri faults; {} cannot do them", runtime.as_str()));
    let file = s.file.display().to_string();
    let mut agent_configs = Vec::new();
    for n in &s.world.nodes {
        let origin = format!("{file}: spec.world (node {})", n.name);
        agent_configs.push(crate::live::spec::agent_config_layers(&[&s.world.kubelet_config, &n.kubelet_config], &origin)?);
    }
    let mode = match s.world.proxy_mode {
        scenario::model::ProxyMode::Nftables => LiveProxyMode::Nftables,
        scenario::model::ProxyMode::Iptables => LiveProxyMode::Iptables,
    };
    let proxy_config = crate::live::spec::proxy_config_layers(&s.world.proxy_config, mode, &format!("{file}: spec.world.proxyConfig"))?;
    Ok(Prepared { scenario: s, runtime, agent_configs, proxy_config, out, skip, images: Vec::new(), node_agent: None })
}

/// The line of the first fault that delays a link.
fn link_delay_line(s: &Scenario) -> Option<usize> {
    s.steps
        .iter()
        .flat_map(|st| st.try_.iter())
        .find(|op| matches!(&op.action, Action::Fault(f) if matches!(&f.kind, FaultKind::Link(l) if l.delay.is_some())))
        .map(|op| op.line)
}

/// True when a step injects fake-cri faults.
pub fn needs_fake_cri(s: &Scenario) -> bool {
    s.steps.iter().flat_map(|st| st.try_.iter().chain(&st.catch).chain(&st.finally).chain(&st.cleanup)).any(|op| {
        matches!(&op.action, Action::Fault(f) if matches!(f.kind, FaultKind::Runtime { .. }))
    })
}

/// Runs the scenarios, `jobs` at a time, in file order; returns their records in that order.
fn run_all(prepared: &[Prepared], jobs: usize) -> Vec<ScenarioRecord> {
    let next = Arc::new(Mutex::new(0usize));
    let results: Arc<Mutex<Vec<Option<ScenarioRecord>>>> = Arc::new(Mutex::new(vec![None; prepared.len()]));
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(prepared.len()) {
            let (next, results) = (next.clone(), results.clone());
            scope.spawn(move || {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(p) = prepared.get(i) else { break };
                    let record = run_one(p);
                    eprintln!("nodekit run: {} {} ({:.1} s)", outcome_word(record.outcome), record.name, record.duration_ms as f64 / 1000.0);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(record);
                }
            });
        }
    });
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    results.into_iter().zip(prepared).map(|(r, p)| r.unwrap_or_else(|| error_record(p, "the scenario did not run".into(), 0))).collect()
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::Error => "ERROR",
        Outcome::Skipped => "SKIP",
    }
}

/// Runs one scenario in a sealed child and reads its record.
fn run_one(p: &Prepared) -> ScenarioRecord {
    if let Some(why) = &p.skip {
        let mut r = error_record(p, format!("skipped: {why}"), 0);
        r.outcome = Outcome::Skipped;
        return r;
    }
    let started = std::time::Instant::now();
    let status = (|| -> anyhow::Result<std::process::ExitStatus> {
        std::fs::create_dir_all(&p.out)?;
        let _ = std::fs::remove_file(p.out.join(RECORD_FILE));
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(SCENARIO_ENV, serde_json::to_string(p)?);
        Ok(harness::sealed::spawn_sealed(cmd)?.wait()?)
    })();
    let ms = started.elapsed().as_millis() as u64;
    let read = std::fs::read(p.out.join(RECORD_FILE)).ok().and_then(|b| serde_json::from_slice::<ScenarioRecord>(&b).ok());
    match (read, status) {
        (Some(r), _) => r,
        (None, Ok(s)) => error_record(p, format!("the scenario's process ended ({s}) without a record; its output is above"), ms),
        (None, Err(e)) => error_record(p, format!("the scenario could not start: {e:#}"), ms),
    }
}

/// A record for a scenario that has no steps to show.
pub fn error_record(p: &Prepared, message: String, duration_ms: u64) -> ScenarioRecord {
    let s = &p.scenario;
    ScenarioRecord {
        name: s.name.clone(),
        file: s.file.display().to_string(),
        description: s.description.clone(),
        cites: s.reproduces.clone(),
        runtime: p.runtime.as_str().into(),
        proxy_mode: s.world.proxy_mode.as_str().into(),
        duration_ms,
        outcome: Outcome::Error,
        message: Some(message),
        steps: Vec::new(),
        nodes: Vec::new(),
        pods: Vec::new(),
        faults: Vec::new(),
        events: Vec::new(),
        traffic: Vec::new(),
        artifacts: Vec::new(),
    }
}

/// Writes `report.html` (artifact links relative to it) and the JUnit file.
fn write_outputs(args: &RunArgs, run: &RunRecord) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&args.report)?;
    let report = args.report.join("report.html");
    std::fs::write(&report, scenario::report::render(run))?;
    std::fs::write(args.report.join("run.json"), serde_json::to_vec_pretty(run)?)?;
    if let Some(junit) = &args.junit {
        if let Some(dir) = junit.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(junit, scenario::junit::render(run))?;
    }
    Ok(report)
}

/// The report-relative path of a file in a scenario's directory.
pub fn relative(out: &Path, file: &Path) -> String {
    let dir = out.file_name().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let name = file.strip_prefix(out).unwrap_or(file);
    format!("{dir}/{}", name.display())
}
