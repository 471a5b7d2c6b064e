//! `nodekit registry`: the world's read-only image registry, served for a runtime nodekit does
//! not start (`--runtime unix:///…`): the kit's images (workload, pause, the upstream
//! stand-ins) and any archive given with `--image`, optionally with containerd registry host
//! files that send every registry host those images name to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `nodekit registry`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Address to listen on (plain HTTP); put it where your runtime can reach it, e.g. the
    /// loopback of its network namespace.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// An OCI image-layout or docker-archive tarball to serve besides the kit's images
    /// (repeatable).
    #[arg(long = "image", value_name = "ARCHIVE")]
    images: Vec<PathBuf>,
    /// Write containerd registry host files (`DIR/<host>/hosts.toml`) that send every registry
    /// host of the served images to this registry; point containerd's CRI `registry.config_path`
    /// at DIR.
    #[arg(long, value_name = "DIR")]
    hosts_dir: Option<PathBuf>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("nodekit registry: {msg}");
    ExitCode::from(2)
}

/// Loads the images, binds, writes the host files and serves until SIGINT or SIGTERM. Exit 2
/// when an archive is refused or the address cannot be bound (nothing is served then).
pub fn run(args: RegistryArgs) -> ExitCode {
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return fail(format!("creating a scratch directory: {e}")),
    };
    let kit = match harness::backend::world_image_tarballs(scratch.path()) {
        Ok(t) => t,
        Err(e) => return fail(format!("building the kit's images: {e}")),
    };
    let mut store = oci_registry::Store::new();
    for archive in kit.iter().chain(&args.images) {
        if let Err(e) = store.load_archive(archive) {
            return fail(format!("--image {}: {e}", archive.display()));
        }
    }
    // The store holds what it serves: the scratch directory goes now, not when the process
    // ends (a registry killed by a signal would leave it behind).
    drop(scratch);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("starting the async runtime: {e}")),
    };
    rt.block_on(serve(args, store))
}

async fn serve(args: RegistryArgs, store: oci_registry::Store) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("--listen {}: {e}", args.listen)),
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    let hosts = store.registry_hosts();
    if let Some(dir) = &args.hosts_dir
        && let Err(e) = harness::backend::write_containerd_hosts(dir, &hosts, addr)
    {
        return fail(format!("--hosts-dir {}: {e}", dir.display()));
    }
    let images = store.images();
    println!("nodekit registry: serving {} images on http://{addr} for {}", images.len(), hosts.join(", "));
    for i in &images {
        println!("  {} {}", i.reference, i.digest);
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(oci_registry::serve(listener, Arc::new(store), None, cancel.clone()));
    let stop = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    stop.await;
    cancel.cancel();
    match serving.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => fail(e),
        Err(e) => fail(e),
    }
}
