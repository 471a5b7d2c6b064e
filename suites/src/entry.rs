//! The libtest-compatible entry: `cargo nextest run` lists every run as its own test and
//! runs each in its own process (nextest), which in turn runs the case in a sealed child.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::plan::Selection;
use crate::runner::{self, Outcome, RunOptions};
use crate::target::RuntimeTarget;

/// Where nextest runs keep artifacts: `$NODEKIT_ARTIFACTS_DIR`, else `target/nodekit-artifacts`
/// next to the test binary.
fn artifacts_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("NODEKIT_ARTIFACTS_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("nodekit-artifacts")))
        .unwrap_or_else(|| std::env::temp_dir().join("nodekit-artifacts"))
}

/// `main` of the nextest entry binary.
pub fn main() -> ExitCode {
    if let Some(code) = runner::child_entry() {
        return code;
    }
    let args = Arguments::from_args();
    if !args.list {
        // Leftovers of earlier runs that were killed.
        let _ = runner::sweep_cgroups();
    }
    // Every runtime backend; a backend this machine lacks shows as ignored (skipped) at list time.
    let selection = Selection {
        runtimes: vec![RuntimeTarget::FakeCri, RuntimeTarget::Containerd],
        ..Selection::default()
    };
    let opts = RunOptions {
        artifacts_root: artifacts_root(),
        keep_artifacts: std::env::var_os("NODEKIT_KEEP_ARTIFACTS").is_some(),
        timeout: Duration::from_secs(170),
        capture_output: false,
        node_agent: None,
    };
    let trials = selection
        .runs()
        .into_iter()
        .map(|run| {
            let name = run.name();
            let kind = run.case.labels.first().map(|l| l.as_str()).unwrap_or("");
            let ignored = run.skip.is_some();
            if let Some(reason) = &run.skip {
                // nextest shows ignored tests as skipped; keep the reason visible in the listing run.
                eprintln!("nodekit: {name}: skipped: {reason}");
            }
            let opts = opts.clone();
            Trial::ignorable_test(name, move || {
                let result = runner::run(&run, &opts);
                match result.outcome {
                    Outcome::Passed => Ok(Completion::Completed),
                    Outcome::Skipped(why) => Ok(Completion::ignored_with(why)),
                    Outcome::Failed(why) => Err(Failed::from(match result.artifacts {
                        Some(dir) => format!("{why}\nartifacts: {}", dir.display()),
                        None => why,
                    })),
                }
            })
            .with_kind(kind)
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
