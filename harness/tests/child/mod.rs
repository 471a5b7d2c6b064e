//! The sealed-child side shared by the test binaries that re-execute themselves: enter a fresh
//! world, run the role's body with the artifacts directory (argv[1]), report its error.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs `body(dir)` in a fresh sealed world; the exit code is 0 when it returns `Ok`.
pub fn run<F, Fut>(role: &str, body: F) -> ExitCode
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let dir = PathBuf::from(std::env::args_os().nth(1).unwrap_or_default());
    match harness::sealed::block_on_sealed(body(dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{role}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
