//! `nodekit up`: a live world that a person drives with real kubectl.
//!
//! Processes (host side outside in):
//! - the **host side** (the `nodekit up` process, in the host's namespaces) checks the command
//!   line, binds a free port on 127.0.0.1, starts the world and a janitor, forwards every
//!   connection on that port into the world, writes the admin kubeconfig and prints `ready:`;
//!   on SIGINT/SIGTERM it closes the world's stdin (graceful teardown), kills the world if that
//!   takes too long or a second signal comes, sweeps, removes the kubeconfig and exits 0;
//! - the **world** ([`world`]) is a sealed child, exactly like a case process; its scratch
//!   tmpfs holds the PKI, the logs and the unix socket the host side connects to through
//!   `/proc/<pid>/root` (the only path between host and world; no address of the world is
//!   reachable from the host);
//! - the **janitor** ([`janitor`]) waits for the host side to end however it ends (SIGKILL
//!   included), then for the world's pid namespace to empty, sweeps the world's cgroup
//!   directories and removes the kubeconfig it left.

pub mod bench;
pub mod commands;
pub mod janitor;
pub mod spec;
pub mod world;

use std::io::{BufRead, BufReader, Write};

use anyhow::Context;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use tokio::net::{TcpListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};

pub use spec::{LiveProxyMode, LiveRuntime, LiveSpec, UsageError};

/// Environment variable carrying the [`LiveSpec`] (JSON) to the world process.
pub const LIVE_ENV: &str = "NODEKIT_LIVE_WORLD";
/// The world's state directory under its scratch tmpfs (`/run/nodekit/live`).
pub const STATE_DIR: &str = "live";
/// The unix socket forwarding to the API server, in the state directory.
pub const API_SOCKET: &str = "api.sock";
/// The admin kubeconfig (server `https://127.0.0.1:PORT`), in the state directory.
pub const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";
/// What the world prints on stdout once every node is Ready.
pub const READY_MARKER: &str = "nodekit-live-world-ready";
/// First line of every kubeconfig `nodekit up` writes, followed by its pid.
pub const KUBECONFIG_MARKER: &str = "# written by nodekit up, pid ";

/// How long the world has to come up.
const START_TIMEOUT: Duration = Duration::from_secs(240);
/// How much longer the start may take per step of a `--scenario`.
const STEP_ALLOWANCE: Duration = Duration::from_secs(120);
/// What the world prints before the record (JSON) of a scenario it ran.
pub const RECORD_MARKER: &str = "nodekit-scenario-record ";

/// How long the graceful teardown may take before the world is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// `nodekit up` options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpArgs {
    /// Worker nodes (node-a, node-b, … at 10.77.0.11, .12, …; default 1).
    #[arg(long)]
    pub nodes: Option<usize>,
    /// The runtime of every node (default fake-cri, or the scenario's).
    #[arg(long, value_enum)]
    pub runtime: Option<LiveRuntime>,
    /// The proxy's rule backend (default: the --proxy-config file's mode, else nftables).
    #[arg(long, value_enum)]
    pub proxy_mode: Option<LiveProxyMode>,
    /// How the API server authorizes requests, as kube-apiserver's flag: `Node,RBAC` (the
    /// default: the Node authorizer, RBAC and NodeRestriction) or `AlwaysAllow`.
    #[arg(long, value_name = "MODE", value_parser = parse_authorization_mode)]
    pub authorization_mode: Option<scenario::model::AuthorizationMode>,
    /// Where to write the admin kubeconfig (removed again on exit).
    #[arg(long, value_name = "PATH", default_value = "nodekit.kubeconfig")]
    pub kubeconfig: PathBuf,
    /// A KubeletConfiguration file merged over the world's defaults.
    #[arg(long, value_name = "FILE")]
    pub kubelet_config: Option<PathBuf>,
    /// A KubeProxyConfiguration file merged over the world's defaults.
    #[arg(long, value_name = "FILE")]
    pub proxy_config: Option<PathBuf>,
    /// Build the world a scenario file describes (its spec.world), run its steps (faults
    /// heal at their end; cleanup operations do not run), and hand the world over.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// An OCI image-layout or docker-archive tarball the world's registry serves besides the
    /// kit's images (repeatable; needs --runtime containerd): pods pull its images by their
    /// names, e.g. `docker.io/library/busybox:1.36`.
    #[arg(long = "image", value_name = "ARCHIVE")]
    pub images: Vec<PathBuf>,
    /// With --scenario: write the report of its steps here (report.html, JUnit).
    #[arg(long, value_name = "DIR", default_value = "nodekit-report")]
    pub report: PathBuf,
    /// A node agent profile (`kind: NodeAgentProfile`): every node runs its binary instead of
    /// the reference agent.
    #[arg(long = "node-agent", value_name = "FILE")]
    pub node_agent: Option<PathBuf>,
}

fn parse_authorization_mode(s: &str) -> Result<scenario::model::AuthorizationMode, String> {
    use scenario::model::AuthorizationMode;
    AuthorizationMode::parse(s).ok_or_else(|| format!("unknown authorization mode {s:?}; allowed: {}", AuthorizationMode::ALLOWED))
}

/// Checks everything that can be checked before a world starts.
fn prepare(args: &UpArgs) -> Result<(LiveSpec, PathBuf), UsageError> {
    let kubeconfig = janitor::check_kubeconfig_path(&args.kubeconfig)?;
    if let Some(file) = &args.scenario {
        for (given, flag) in [(args.nodes.is_some(), "--nodes"), (args.kubelet_config.is_some(), "--kubelet-config"), (args.proxy_config.is_some(), "--proxy-config"), (args.proxy_mode.is_some(), "--proxy-mode"), (args.authorization_mode.is_some(), "--authorization-mode")] {
            if given {
                return Err(UsageError(format!("{flag} and --scenario: the scenario's spec.world describes the world; drop {flag} or edit {}", file.display())));
            }
        }
        let mut prepared = crate::scenarios::prepare_one(file, args.runtime, args.report.clone())?;
        prepared.images = check_images(&args.images, prepared.runtime)?;
        prepared.node_agent = crate::scenarios::node_agent(args.node_agent.as_deref())?;
        return Ok((LiveSpec { port: 0, prepared, run_steps: true }, kubeconfig));
    }
    let nodes = args.nodes.unwrap_or(1);
    let max = harness::world::Plan::MAX_NODES;
    if nodes == 0 || nodes > max {
        return Err(UsageError(format!("--nodes {nodes}: give a number from 1 to {max}")));
    }
    let agent_config = spec::agent_config(args.kubelet_config.as_ref())?;
    let (proxy_config, proxy_mode) = spec::proxy_config(args.proxy_config.as_ref(), args.proxy_mode)?;
    let mut prepared = crate::scenarios::prepared_world(nodes, args.runtime.unwrap_or(LiveRuntime::FakeCri), proxy_mode, agent_config, proxy_config);
    if let Some(mode) = args.authorization_mode {
        prepared.scenario.world.authorization_mode = mode;
    }
    prepared.images = check_images(&args.images, prepared.runtime)?;
    prepared.node_agent = crate::scenarios::node_agent(args.node_agent.as_deref())?;
    Ok((LiveSpec { port: 0, prepared, run_steps: false }, kubeconfig))
}

/// The `--image` archives, absolute, each one loaded once to refuse a bad one before anything
/// starts; they need a runtime that pulls.
fn check_images(images: &[PathBuf], runtime: scenario::model::RuntimeName) -> Result<Vec<PathBuf>, UsageError> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    if runtime != scenario::model::RuntimeName::Containerd {
        return Err(UsageError(
            "--image needs --runtime containerd: fake-cri runs the kit's workload image alone and pulls nothing".into(),
        ));
    }
    let mut store = oci_registry::Store::new();
    images
        .iter()
        .map(|path| {
            let abs = std::fs::canonicalize(path).map_err(|e| UsageError(format!("--image {}: {e}", path.display())))?;
            store.load_archive(&abs).map_err(|e| UsageError(format!("--image {}: {e}", path.display())))?;
            Ok(abs)
        })
        .collect()
}

/// Entry of `nodekit up`.
pub fn up(args: UpArgs) -> ExitCode {
    let (mut spec, kubeconfig) = match prepare(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nodekit up: {e}");
            return ExitCode::from(2);
        }
    };
    let result = (|| -> anyhow::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        spec.port = listener.local_addr()?.port();
        if let Some(msg) = crate::runner::sweep_cgroups() {
            eprintln!("nodekit up: before the start: {msg}");
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        rt.block_on(host_side(spec, listener, kubeconfig))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nodekit up: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The world process and the pipe whose closing asks it to stop.
struct WorldChild {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    exited: tokio::sync::watch::Receiver<bool>,
}

fn spawn_world(spec: &LiveSpec) -> anyhow::Result<(WorldChild, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(LIVE_ENV, serde_json::to_string(spec)?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0); // a terminal's ^C reaches only the host side, which tears down in order
    let mut child = harness::sealed::spawn_sealed(cmd)?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout pipe"))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (exit_tx, exited) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
        let _ = exit_tx.send(true);
    });
    Ok((WorldChild { child, stdin, exited }, rx))
}

/// SIGINT and SIGTERM, either of which asks for the teardown.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

async fn host_side(spec: LiveSpec, listener: std::net::TcpListener, kubeconfig: PathBuf) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    let (mut world, mut lines) = spawn_world(&spec).context("starting the world process")?;
    let pid = world.child.id();
    let janitor = janitor::spawn(pid, &kubeconfig).context("starting the janitor")?;
    let root = PathBuf::from(format!("/proc/{pid}/root/run/nodekit/{STATE_DIR}"));
    let nodes = spec.prepared.scenario.world.nodes.len();
    eprintln!("nodekit up: starting {nodes} node(s) on {}; logs in {}", spec.prepared.runtime.as_str(), root.join("logs").display());
    let timeout = START_TIMEOUT + spec.prepared.scenario.steps.len() as u32 * STEP_ALLOWANCE;
    let started = tokio::time::timeout(timeout, async {
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(l) if l == READY_MARKER => return Ok(true),
                    Some(l) if l.starts_with(RECORD_MARKER) => {
                        report_handover(&spec, &l);
                        continue;
                    }
                    Some(_) => continue,
                    None => return Err(anyhow::anyhow!("the world ended before it was ready (see the messages above)")),
                },
                _ = signals.recv() => return Ok(false),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("the world was not ready within {timeout:?}")));
    let outcome = match started {
        Ok(true) => serve(&spec, listener, &root, &kubeconfig, &mut signals, &mut world, &mut lines).await,
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    teardown(&mut world, &mut signals).await;
    let _ = std::fs::remove_file(&kubeconfig);
    if let Some(msg) = crate::runner::sweep_cgroups() {
        eprintln!("nodekit up: {msg}");
    }
    janitor.finish();
    outcome
}

/// Writes the user's kubeconfig, forwards the loopback port into the world, prints `ready:`,
/// hands the commands typed on stdin to the world (printing its answers) and returns on a
/// signal (or an error when the world ends by itself).
async fn serve(
    spec: &LiveSpec,
    listener: std::net::TcpListener,
    root: &Path,
    kubeconfig: &Path,
    signals: &mut Signals,
    world: &mut WorldChild,
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<()> {
    let pid = world.child.id();
    let admin = std::fs::read_to_string(root.join(ADMIN_KUBECONFIG))?;
    janitor::write_kubeconfig(kubeconfig, &admin)?;
    let listener = TcpListener::from_std(listener)?;
    let socket = root.join(API_SOCKET);
    let forwarder = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                let _ = conn.set_nodelay(true);
                if let Ok(mut world) = UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut world).await;
                }
            });
        }
    });
    let path = kubeconfig.display();
    println!(
        "ready: {} node(s) Ready; API server https://127.0.0.1:{} (world pid {pid}); kubeconfig {path}; run: export KUBECONFIG={path}",
        spec.prepared.scenario.world.nodes.len(),
        spec.port
    );
    eprintln!("nodekit up: type `help` for the commands that break nodes by hand");
    let _ = std::io::stdout().flush();
    let mut exited = world.exited.clone();
    let mut typed = read_stdin_lines();
    let nodes: Vec<String> = spec.prepared.scenario.world.nodes.iter().map(|n| n.name.clone()).collect();
    let (attach_tx, mut attached) = tokio::sync::mpsc::unbounded_channel::<Attach>();
    let control = control_socket(kubeconfig);
    let _ = std::fs::remove_file(&control);
    let control_listener = tokio::net::UnixListener::bind(&control).with_context(|| format!("binding {}", control.display()))?;
    let control_task = tokio::spawn(accept_attach(control_listener, attach_tx));
    let mut pending: std::collections::VecDeque<tokio::sync::oneshot::Sender<String>> = std::collections::VecDeque::new();
    let result = loop {
        tokio::select! {
            _ = signals.recv() => break Ok(()),
            _ = exited.wait_for(|e| *e) => break Err(anyhow::anyhow!("the world ended unexpectedly (see the messages above)")),
            Some(line) = typed.recv() => match commands::parse(&line, &nodes) {
                Ok(cmd) => send_to_world(world, &commands::render(&cmd)),
                Err(e) if line.trim().is_empty() => drop(e),
                Err(e) => eprintln!("nodekit up: {e}"),
            },
            Some(a) = attached.recv() => {
                eprintln!("nodekit up: running scenario {} (nodekit run --attach)", a.name);
                send_to_world(world, &format!("{SCENARIO_COMMAND}{}", a.request));
                pending.push_back(a.reply);
            }
            Some(line) = lines.recv() => match line.strip_prefix(RECORD_MARKER) {
                Some(record) => {
                    if let Some(reply) = pending.pop_front() {
                        let _ = reply.send(record.to_string());
                    }
                }
                None => {
                    println!("{line}");
                    let _ = std::io::stdout().flush();
                }
            }
        }
    };
    control_task.abort();
    let _ = std::fs::remove_file(&control);
    forwarder.abort();
    let _ = forwarder.await; // the listener is closed once the task is gone
    result
}

/// The line prefix that hands the world a scenario (JSON of a `Prepared`) to run.
pub const SCENARIO_COMMAND: &str = "scenario ";

/// The control socket of a `nodekit up` whose kubeconfig is `kubeconfig`: `nodekit run
/// --attach` sends scenarios through it.
pub fn control_socket(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".sock");
    kubeconfig.with_file_name(name)
}

/// A scenario sent by `nodekit run --attach`, and where its record goes.
struct Attach {
    name: String,
    request: String,
    reply: tokio::sync::oneshot::Sender<String>,
}

/// Accepts `nodekit run --attach` connections: one line (the prepared scenario, JSON) in, one
/// line (the record, JSON) out.
async fn accept_attach(listener: tokio::net::UnixListener, to_loop: tokio::sync::mpsc::UnboundedSender<Attach>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    while let Ok((conn, _)) = listener.accept().await {
        let to_loop = to_loop.clone();
        tokio::spawn(async move {
            let (read, mut write) = conn.into_split();
            let mut line = String::new();
            if tokio::io::BufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            let request = line.trim_end().to_string();
            let name = serde_json::from_str::<crate::scenarios::Prepared>(&request).map(|p| p.scenario.name).unwrap_or_default();
            let (reply, answer) = tokio::sync::oneshot::channel();
            if to_loop.send(Attach { name, request, reply }).is_err() {
                return;
            }
            if let Ok(record) = answer.await {
                let _ = write.write_all(format!("{record}\n").as_bytes()).await;
            }
        });
    }
}

/// Writes the report of the steps `nodekit up --scenario` ran before the handover and says how
/// they went.
fn report_handover(spec: &LiveSpec, line: &str) {
    let Some(json) = line.strip_prefix(RECORD_MARKER) else { return };
    let record: scenario::record::ScenarioRecord = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nodekit up: the scenario's record did not parse: {e}");
            return;
        }
    };
    let dir = spec.prepared.out.clone();
    let run = scenario::record::RunRecord { started: jiff::Timestamp::now().to_string(), scenarios: vec![record] };
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("report.html"), scenario::report::render(&run)))
        .and_then(|()| std::fs::write(dir.join("junit.xml"), scenario::junit::render(&run)));
    let r = &run.scenarios[0];
    let how = match r.outcome {
        scenario::record::Outcome::Passed => "passed".to_string(),
        _ => format!("FAILED: {}", r.message.clone().unwrap_or_default()),
    };
    eprintln!("nodekit up: scenario {} {how}", r.name);
    match written {
        Ok(()) => eprintln!("nodekit up: report {}", dir.join("report.html").display()),
        Err(e) => eprintln!("nodekit up: writing the report to {}: {e}", dir.display()),
    }
}

/// The lines typed on our stdin (none when it is not open).
fn read_stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Writes one command line to the world's stdin.
fn send_to_world(world: &mut WorldChild, line: &str) {
    if let Some(stdin) = world.stdin.as_mut()
        && let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush())
    {
        eprintln!("nodekit up: the world did not take the command: {e}");
    }
}

/// Asks the world to stop (closes its stdin), then kills it after [`STOP_TIMEOUT`] or on a
/// second signal, and reaps it.
async fn teardown(world: &mut WorldChild, signals: &mut Signals) {
    eprintln!("nodekit up: stopping the world");
    drop(world.stdin.take());
    let mut exited = world.exited.clone();
    let graceful = tokio::select! {
        r = tokio::time::timeout(STOP_TIMEOUT, exited.wait_for(|e| *e)) => r.is_ok(),
        _ = signals.recv() => false,
    };
    if !graceful {
        eprintln!("nodekit up: killing the world");
        let _ = world.child.kill();
    }
    let _ = world.child.wait();
}
