//! Exit codes a CI gate can trust: nothing tested is not a pass. Every selected run skipped →
//! exit 3 (0 only with `--allow-skipped`); an external CRI socket that is missing → exit 2
//! before anything runs; a selection that matches nothing → exit 2.

use std::process::Output;

mod support;
use support::cli::nodekit;


fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Heartbeat cases that are declared for fake-cri only: on containerd every one is skipped.
const FAKE_ONLY: &str = "heartbeats/status-reported-infrequently*";

#[test]
fn every_run_skipped_is_exit_3_unless_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let o = nodekit(&["conformance", "--runtime", "containerd", "--filter", FAKE_ONLY], dir.path());
    assert_eq!(o.status.code(), Some(3), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(stderr(&o).contains("nothing was tested"), "{}", stderr(&o));
    let o = nodekit(&["conformance", "--runtime", "containerd", "--filter", FAKE_ONLY, "--allow-skipped"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn missing_external_socket_is_exit_2_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let o = nodekit(&["conformance", "--runtime", "unix:///nonexistent/nodekit-test/cri.sock"], &artifacts);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("CRI socket /nonexistent/nodekit-test/cri.sock does not exist"), "{}", stderr(&o));
    assert!(!artifacts.exists(), "the run started: {} was created", artifacts.display());
}

/// A bench option that does not apply, and a bench rounds count that is not one, are refused
/// with exit 2 before any world is built.
#[test]
fn bad_bench_input_is_exit_2() {
    let o = support::cli::run(&["bench", "world", "--runtime", "fake-cri"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--runtime applies to `pods` only"), "{}", stderr(&o));
    let o = std::process::Command::new(support::NODEKIT).args(["bench", "pods"]).env("NODEKIT_BENCH_ROUNDS", "0").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("NODEKIT_BENCH_ROUNDS=\"0\": not a whole number of rounds above 0; give e.g. 15, or unset it"), "{}", stderr(&o));
}

#[test]
fn a_selection_excluded_to_nothing_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = nodekit(&["conformance", "--filter", "heartbeats/", "--exclude", "heartbeats/*"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no case matches"), "{}", stderr(&o));
}
