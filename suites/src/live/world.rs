//! The world side of `nodekit up`: runs in the sealed case process. Builds the world as a
//! scenario's is built (control plane over HTTPS, then every node's runtime, agent and proxy),
//! serves a unix socket in the world's scratch directory that forwards to the API server,
//! writes the admin kubeconfig for the host side, runs the `--scenario` steps if any, says it
//! is ready, then takes commands on stdin (kill / partition / heal through the scenarios'
//! faults, and scenarios from `nodekit run --attach`) and tears down when its stdin closes.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use scenario::model::{Component, Direction, Fault, FaultKind};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpStream, UnixListener};

use super::commands::NodeCommand;
use super::spec::{LiveProxyMode, LiveRuntime, LiveSpec};
use super::{ADMIN_KUBECONFIG, API_SOCKET, LIVE_ENV, READY_MARKER, RECORD_MARKER, SCENARIO_COMMAND, STATE_DIR};
use crate::scenarios::Prepared;
use crate::scenarios::child::execute;
use crate::scenarios::faults::Faults;
use crate::scenarios::world::ScenarioWorld;

/// How long every node has to become Ready.
const NODES_READY: Duration = Duration::from_secs(120);

/// If this process was started as the world side of `nodekit up`, run it and return the exit
/// code. Call it first thing in `main`, before any thread or runtime exists.
pub fn child_entry() -> Option<ExitCode> {
    let json = std::env::var(LIVE_ENV).ok()?;
    let result = serde_json::from_str::<LiveSpec>(&json)
        .context("reading the world specification")
        .and_then(|spec| harness::sealed::block_on_sealed(run(spec)));
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nodekit up: the world failed: {err:#}");
            ExitCode::FAILURE
        }
    })
}

async fn run(spec: LiveSpec) -> anyhow::Result<()> {
    let state = harness::backend::scratch_dir(STATE_DIR)?;
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut prepared = spec.prepared;
    prepared.out = logs.clone();
    let world = Arc::new(ScenarioWorld::build(&prepared, "live", &logs).await?);
    let forwarder = serve_socket(&state.join(API_SOCKET), world.cp.handle().addr())?;
    let client = world.cp.client()?;
    crate::scenarios::objects::nodes_ready(&client, &world.node_names, NODES_READY).await?;
    let kubeconfig = world
        .cp
        .admin_kubeconfig(&format!("https://127.0.0.1:{}", spec.port))
        .context("the control plane serves plain HTTP")?;
    std::fs::write(state.join(ADMIN_KUBECONFIG), kubeconfig)?;
    if spec.run_steps {
        let record = execute(&prepared, world.clone(), client.clone(), Instant::now(), false).await;
        println!("{RECORD_MARKER}{}", serde_json::to_string(&record)?);
    }
    println!("{READY_MARKER}");
    let faults = Faults::new(world.clone(), Instant::now());
    let mut dead = BTreeSet::new();
    let mut attached = 0;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // Commands until the host side closes our stdin (it asks for the teardown, or it died).
    while let Ok(Some(line)) = stdin.next_line().await {
        if let Some(json) = line.strip_prefix(SCENARIO_COMMAND) {
            attached += 1;
            let record = run_attached(json, &world, &client, &logs, attached).await;
            println!("{RECORD_MARKER}{}", serde_json::to_string(&record)?);
            continue;
        }
        let answer = match super::commands::parse(&line, &world.node_names) {
            Ok(cmd) => execute_command(&faults, &mut dead, cmd).await.unwrap_or_else(|e| format!("failed: {e:#}")),
            Err(e) => e,
        };
        println!("nodekit up: {answer}");
    }
    forwarder.abort();
    let _ = faults.finish().await;
    drop(faults);
    match Arc::try_unwrap(world) {
        Ok(w) => w.shutdown().await,
        Err(_) => eprintln!("nodekit up: the world is still in use at its end; it goes with the process"),
    }
    Ok(())
}

/// Runs a scenario `nodekit run --attach` sent (its artifacts in `logs/attach-<n>`); a scenario
/// whose nodes this world does not have gets an error record saying so.
async fn run_attached(json: &str, world: &Arc<ScenarioWorld>, client: &kube::Client, logs: &Path, n: usize) -> scenario::record::ScenarioRecord {
    let mut p: Prepared = match serde_json::from_str(json) {
        Ok(p) => p,
        Err(e) => {
            let mut r = crate::scenarios::error_record(&crate::scenarios::prepared_world(1, LiveRuntime::FakeCri, LiveProxyMode::Nftables, String::new(), String::new()), format!("the scenario did not parse: {e}"), 0);
            r.name = "(unreadable)".into();
            return r;
        }
    };
    p.out = logs.join(format!("attach-{n}"));
    let wanted: Vec<String> = p.scenario.world.nodes.iter().map(|n| n.name.clone()).collect();
    if wanted.iter().any(|n| !world.node_names.contains(n)) {
        let why = format!("this world's nodes are {}; the scenario's spec.world names {}", world.node_names.join(", "), wanted.join(", "));
        return crate::scenarios::error_record(&p, why, 0);
    }
    if let Err(e) = std::fs::create_dir_all(&p.out) {
        return crate::scenarios::error_record(&p, format!("creating {}: {e}", p.out.display()), 0);
    }
    execute(&p, world.clone(), client.clone(), Instant::now(), true).await
}

/// Accepts on a unix socket at `path` and pipes each connection to `api` (TLS passes through).
fn serve_socket(path: &Path, api: std::net::SocketAddr) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    Ok(tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(api).await {
                    let _ = up.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                }
            });
        }
    }))
}

/// Runs one typed command against the world through the same faults scenarios use; the
/// answer is one line.
async fn execute_command(faults: &Arc<Faults>, dead: &mut BTreeSet<String>, cmd: NodeCommand) -> anyhow::Result<String> {
    let fault = |name: String, kind: FaultKind| Fault { name: Some(name), duration: None, kind };
    Ok(match cmd {
        NodeCommand::Help => super::commands::HELP.to_string(),
        NodeCommand::Kill(n) if dead.contains(&n) => format!("{n} is dead already"),
        NodeCommand::Kill(n) => {
            faults.heal(Some(&format!("partition {n}"))).await?;
            faults.start(&fault(format!("kill {n}"), FaultKind::Kill { node: n.clone(), component: Component::Node })).await?;
            dead.insert(n.clone());
            format!("{n} killed: agent, proxy and runtime SIGKILLed, off the network")
        }
        NodeCommand::Partition(n) if dead.contains(&n) || faults.is_active(&format!("partition {n}")).await => format!("{n} is cut off already"),
        NodeCommand::Partition(n) => {
            faults.start(&fault(format!("partition {n}"), FaultKind::Partition { node: n.clone(), direction: Direction::Both })).await?;
            format!("{n} cut from the API server; its pods keep running")
        }
        NodeCommand::Heal(n) if faults.is_active(&format!("kill {n}")).await => {
            faults.heal(Some(&format!("kill {n}"))).await?;
            format!("{n} is back on the network, but its agent, proxy and runtime stay dead")
        }
        NodeCommand::Heal(n) if faults.is_active(&format!("partition {n}")).await => {
            faults.heal(Some(&format!("partition {n}"))).await?;
            format!("{n} reconnected to the API server")
        }
        NodeCommand::Heal(n) => format!("{n} is not cut off"),
    })
}
