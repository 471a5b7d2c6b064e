//! The `node-agent` binary: flags, logging, signals; everything else is in the library.

use clap::Parser;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let flags = node_agent::cli::Flags::parse();
    let (settings, healthz) = match flags.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("node-agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn,tower=warn,hyper=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("NODE_AGENT_LOG_FORMAT").is_ok_and(|v| v == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    // Fields the file sets that this agent accepts but does not apply are named, never silent.
    let ignored = std::fs::read_to_string(&flags.config).map(|t| node_agent::config::ignored_fields_in(&t)).unwrap_or_default();
    if !ignored.is_empty() {
        tracing::warn!(fields = ?ignored, "KubeletConfiguration fields accepted but not applied by this agent");
    }
    // One thread runs every task: the agent's work is waiting on the API server, the runtime
    // and probes, and a single-threaded scheduler spends no CPU on handing tasks between
    // threads (about a sixth of the agent's CPU while 30 pods start, by `nodekit bench pods`),
    // leaving the node's cores to its pods. Blocking work goes to `spawn_blocking`.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("node-agent: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let cancel = CancellationToken::new();
        let signals = cancel.clone();
        let sig = tokio::spawn(async move {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the SIGTERM handler");
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                _ = signals.cancelled() => {}
            }
            signals.cancel();
        });
        let r = node_agent::agent::run(settings, &flags.kubeconfig, healthz, cancel.clone(), |_| {}).await;
        cancel.cancel();
        let _ = sig.await;
        r
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node-agent: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
