//! The world side of `nodekit up`: runs in the sealed case process. Builds the world like a
//! case does (control plane over HTTPS, then every node's runtime, agent and proxy), serves a
//! unix socket in the world's scratch directory that forwards to the API server, writes the
//! admin kubeconfig for the host side, says it is ready, and tears down when its stdin closes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use harness::backend::{AgentOptions, ControlPlane, NodeAgent, NodeProxy, ProxyMode, Runtime, RuntimeKind};
use harness::world::{Plan, Role, World};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpStream, UnixListener};

use super::commands::NodeCommand;
use super::spec::{LiveProxyMode, LiveRuntime, LiveSpec, NODE_GRACE};
use super::{ADMIN_KUBECONFIG, API_SOCKET, LIVE_ENV, READY_MARKER, STATE_DIR};

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

struct NodeParts {
    runtime: Runtime,
    agent: NodeAgent,
    proxy: NodeProxy,
    /// Killed by a `kill` command: its processes are gone.
    killed: bool,
    /// Cut from the API server by a `partition` command.
    partitioned: bool,
}

async fn run(spec: LiveSpec) -> anyhow::Result<()> {
    let state = harness::backend::scratch_dir(STATE_DIR)?;
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs)?;
    let plan = Plan::nodes(spec.nodes)?.named("live");
    let world = World::build_with(&plan, harness::artifacts::Artifacts::at(&logs)).await?;
    let cp = ControlPlane::start_secure(&world, ControlPlane::compressed_config(NODE_GRACE)).await?;
    let forwarder = serve_socket(&state.join(API_SOCKET), cp.handle().addr())?;
    let mut nodes = start_nodes(&world, &cp, &spec, &state).await?;
    let client = cp.client()?;
    for n in &nodes {
        crate::kube_wait::node_condition(&client, n.agent.node(), "Ready", "True", NODES_READY).await?;
    }
    let kubeconfig = cp
        .admin_kubeconfig(&format!("https://127.0.0.1:{}", spec.port))
        .context("the control plane serves plain HTTP")?;
    std::fs::write(state.join(ADMIN_KUBECONFIG), kubeconfig)?;
    println!("{READY_MARKER}");
    let cp_ip = world.host("cp")?.ip();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // Commands until the host side closes our stdin (it asks for the teardown, or it died).
    while let Ok(Some(line)) = stdin.next_line().await {
        let names: Vec<String> = nodes.iter().map(|n| n.agent.node().to_string()).collect();
        let answer = match super::commands::parse(&line, &names) {
            Ok(cmd) => execute(&world, cp_ip, &mut nodes, cmd).await.unwrap_or_else(|e| format!("failed: {e:#}")),
            Err(e) => e,
        };
        println!("nodekit up: {answer}");
    }
    forwarder.abort();
    for n in nodes {
        let _ = n.proxy.stop().await;
        let _ = n.agent.stop().await;
        let _ = n.runtime.stop().await;
    }
    cp.shutdown().await;
    Ok(())
}

async fn start_nodes(world: &World, cp: &ControlPlane, spec: &LiveSpec, state: &Path) -> anyhow::Result<Vec<NodeParts>> {
    let kind = match spec.runtime {
        LiveRuntime::FakeCri => RuntimeKind::FakeCri,
        LiveRuntime::Containerd => RuntimeKind::Containerd,
    };
    let mode = match spec.proxy_mode {
        LiveProxyMode::Nftables => ProxyMode::Nftables,
        LiveProxyMode::Iptables => ProxyMode::Iptables,
    };
    let proxy_config: PathBuf = state.join("kube-proxy-config.yaml");
    std::fs::write(&proxy_config, &spec.proxy_config)?;
    let proxy_args = vec!["--config".to_string(), proxy_config.to_string_lossy().into_owned()];
    let opts = AgentOptions { config_yaml: spec.agent_config.clone(), extra_args: Vec::new() };
    let names: Vec<String> =
        world.hosts().iter().filter(|h| h.role() == Some(Role::Node)).map(|h| h.name().to_string()).collect();
    let mut nodes = Vec::new();
    for node in &names {
        let runtime = Runtime::start(world, node, kind.clone()).await.with_context(|| format!("starting the runtime of {node}"))?;
        let agent = NodeAgent::start(world, cp, node, &runtime, &opts).await?;
        let proxy = NodeProxy::start(world, cp, node, mode, &proxy_args).await?;
        nodes.push(NodeParts { runtime, agent, proxy, killed: false, partitioned: false });
    }
    Ok(nodes)
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

/// Runs one command against the world; the answer is one line.
async fn execute(world: &World, cp: std::net::Ipv4Addr, nodes: &mut [NodeParts], cmd: NodeCommand) -> anyhow::Result<String> {
    let name = match &cmd {
        NodeCommand::Help => return Ok(super::commands::HELP.to_string()),
        NodeCommand::Kill(n) | NodeCommand::Partition(n) | NodeCommand::Heal(n) => n.clone(),
    };
    let part = nodes.iter_mut().find(|n| n.agent.node() == name).with_context(|| format!("no node {name}"))?;
    let host = world.host(&name)?;
    Ok(match cmd {
        NodeCommand::Kill(_) if part.killed => format!("{name} is dead already"),
        NodeCommand::Kill(_) => {
            part.proxy.process().kill().await?;
            part.agent.process().kill().await?;
            part.runtime.kill().await?;
            world.disconnect(&name).await?;
            part.killed = true;
            format!("{name} killed: agent, proxy and runtime SIGKILLed, off the network")
        }
        NodeCommand::Partition(_) if part.partitioned || part.killed => format!("{name} is cut off already"),
        NodeCommand::Partition(_) => {
            host.isolate_from(cp, true).await?;
            part.partitioned = true;
            format!("{name} cut from the API server; its pods keep running")
        }
        NodeCommand::Heal(_) if part.killed => {
            world.reconnect(&name).await?;
            if part.partitioned {
                host.isolate_from(cp, false).await?;
                part.partitioned = false;
            }
            format!("{name} is back on the network, but its agent, proxy and runtime stay dead")
        }
        NodeCommand::Heal(_) if part.partitioned => {
            host.isolate_from(cp, false).await?;
            part.partitioned = false;
            format!("{name} reconnected to the API server")
        }
        NodeCommand::Heal(_) => format!("{name} is not cut off"),
        NodeCommand::Help => super::commands::HELP.to_string(),
    })
}
