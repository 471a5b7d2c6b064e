//! `nodekit` run once as a CLI user runs it, for tests of its exit codes and messages.

use std::path::Path;
use std::process::{Command, Output};

/// `nodekit <args> --artifacts <artifacts>`, its output captured.
pub fn nodekit(args: &[&str], artifacts: &Path) -> Output {
    Command::new(super::NODEKIT).args(args).arg("--artifacts").arg(artifacts).output().expect("running nodekit")
}

/// `nodekit <args>`, its output captured.
pub fn run(args: &[&str]) -> Output {
    Command::new(super::NODEKIT).args(args).output().expect("running nodekit")
}

/// Both streams, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
