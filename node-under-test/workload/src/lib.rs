//! `workload`: one static multi-call binary with agnhost-like subcommands that every test pod runs.
//!
//! The same pod spec must behave the same on fake-cri (which runs this binary directly from the
//! host filesystem) and on containerd (which runs it from an OCI image the harness builds), so the
//! binary is linked statically. Build the static flavour for a target triple, so that the
//! `-C target-feature=+crt-static` flag does not leak into the host build of build scripts and
//! proc-macros:
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static" \
//!     cargo build -p workload --target x86_64-unknown-linux-gnu
//! # → target/x86_64-unknown-linux-gnu/debug/workload (no PT_INTERP, no DT_NEEDED)
//! ```
//!
//! The test `tests/static_elf.rs` runs exactly that build and checks the ELF headers.
//!
//! Invocation: `workload [GLOBAL FLAGS] SUBCOMMAND [ARGS]`, or multi-call through a link whose
//! basename is the subcommand (`/pause` → `pause`). Global flags (accepted anywhere):
//! `--term-delay D` (env `WORKLOAD_TERM_DELAY`): on SIGTERM keep running for D, then exit 0;
//! `--ignore-sigterm` (env `WORKLOAD_IGNORE_SIGTERM=1`): ignore SIGTERM (only SIGKILL ends it).
//! Without them SIGTERM/SIGINT end the process promptly with exit code 0.
//! Durations are written like `500ms`, `2s`, `1m`, `1h` or a bare number of seconds.
//!
//! Subcommands: see [`cmd::USAGE`].
//!
//! agnhost: invoked as `/agnhost` or `/agnhost-2` (argv0 basename), or as `workload agnhost …`,
//! the binary is a stand-in for upstream's e2e test image `agnhost` instead (subcommands,
//! flags, texts and signal behaviour of upstream's; see [`agnhost`]).

pub mod agnhost;
pub mod args;
pub mod cmd;
pub mod http;
pub mod supervise;

/// Errors of the workload subcommands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line could not be understood.
    #[error("usage: {0}")]
    Usage(String),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

impl Error {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the binary with the given argv (`argv[0]` included) and returns the process exit code.
pub fn run(argv: Vec<String>) -> i32 {
    if let Some(args) = agnhost::requested(&argv) {
        return agnhost::run(args, &argv);
    }
    let inv = match args::Invocation::parse(argv) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("workload: {e}\n{}", cmd::USAGE);
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("workload: cannot start runtime: {e}");
            return 1;
        }
    };
    rt.block_on(supervise::supervise(inv))
}
