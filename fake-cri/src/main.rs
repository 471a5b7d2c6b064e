//! The `fake-cri` binary: parses flags and runs the library server until SIGTERM/SIGINT.
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;

/// CRI v1 runtime whose containers are real processes.
#[derive(Parser, Debug)]
#[command(name = "fake-cri", version)]
struct Args {
    /// CRI unix socket to serve.
    #[arg(long)]
    socket: PathBuf,
    /// State directory (state.json, cri-calls.jsonl, faults.json, netns mounts).
    #[arg(long)]
    state_dir: PathBuf,
    /// Image catalog JSON (`{"images": [...]}`); default: workload and pause images.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// The workload binary behind the default catalog.
    #[arg(long, env = "NODEKIT_WORKLOAD_BIN")]
    workload_bin: Option<PathBuf>,
    /// Faults JSON applied at start.
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Pod CIDR known from the start (otherwise NetworkReady=false until UpdateRuntimeConfig).
    #[arg(long)]
    pod_cidr: Option<String>,
    /// Node bridge name.
    #[arg(long, default_value = "cbr0")]
    bridge: String,
    /// On SIGTERM leave containers and networking in place (for restart tests).
    #[arg(long)]
    keep_on_exit: bool,
    /// cgroup path (`/a/b`) under which per-container cgroups go when a sandbox names no
    /// `cgroup_parent` (default: `fake-cri-<state dir>-<hash>`); shutdown removes what is below.
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// Container events buffered for each GetContainerEvents subscriber; one that falls further
    /// behind loses events and its stream ends with ResourceExhausted.
    #[arg(long, default_value_t = 1024)]
    event_buffer: usize,
    /// Where the streaming server for Exec, Attach and PortForward listens (containerd's
    /// `stream_server_address` and `stream_server_port`).
    #[arg(long, default_value = "127.0.0.1:0")]
    stream_address: String,
    /// The named runtime handlers RuntimeClasses may name (repeatable; default: runc, as
    /// containerd's default configuration offers).
    #[arg(long = "runtime-handler", value_name = "NAME")]
    runtime_handlers: Vec<String>,
    /// Run the latency benchmark against --socket (a running fake-cri) with this many runs.
    #[arg(long)]
    bench: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    if let Some(runs) = args.bench {
        let r = fake_cri::bench::run(&args.socket, runs, fake_cri::WORKLOAD_IMAGE, None).await?;
        println!("{r:#?}");
        return Ok(());
    }
    let workload = args.workload_bin.clone().unwrap_or_else(|| PathBuf::from("/workload"));
    let mut cfg = fake_cri::Config::new(&args.socket, &args.state_dir, &workload);
    cfg.event_buffer = args.event_buffer.max(1);
    cfg.stream_address = args.stream_address.clone();
    if !args.runtime_handlers.is_empty() {
        cfg.runtime_handlers = args.runtime_handlers.clone();
    }
    if let Some(c) = &args.catalog {
        // A catalog that cannot be used is bad input: say so and exit 2 before anything starts.
        cfg.catalog = fake_cri::Catalog::load(c).unwrap_or_else(|e| {
            eprintln!("fake-cri: {e}");
            std::process::exit(2)
        });
    }
    if let Some(f) = &args.faults {
        let text = std::fs::read(f).with_context(|| format!("read {}", f.display()))?;
        cfg.faults = serde_json::from_slice(&text).with_context(|| format!("parse {}", f.display()))?;
    }
    cfg.pod_cidr = args.pod_cidr.clone();
    cfg.bridge = args.bridge.clone();
    cfg.kill_on_shutdown = !args.keep_on_exit;
    cfg.cgroup_parent = args.cgroup_parent.clone();
    let handle = fake_cri::FakeCri::start(cfg).await?;
    println!("fake-cri serving on {}", args.socket.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    if args.keep_on_exit {
        handle.abandon().await;
    } else {
        handle.shutdown().await?;
    }
    Ok(())
}
