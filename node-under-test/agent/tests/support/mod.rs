//! Shared by the agent's end-to-end tests: the workload binary, re-running a test inside fresh
//! namespaces, and waiting on conditions; [`kubelet`]: HTTPS to the kubelet API.

#![allow(dead_code)]

pub mod kubelet;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

const INNER: &str = "NODE_AGENT_E2E_INNER";

pub fn workload_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NODEKIT_WORKLOAD_BIN") {
        return PathBuf::from(p);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo).args(["build", "-q", "-p", "workload"]).current_dir(&root).status().expect("cargo build");
    assert!(st.success(), "building workload failed");
    target.join("debug/workload")
}

/// Runs `name` of this test binary inside fresh namespaces; true when we are already inside.
pub fn enter_namespaces(name: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        return true;
    }
    let bin = workload_bin();
    // Run a private copy: concurrent builds may replace this test binary while it runs.
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::copy("/proc/self/exe", &exe).expect("copy the test binary");
    let mut unshare = Command::new("unshare");
    if !nix::unistd::geteuid().is_root() {
        unshare.args(["--user", "--map-root-user"]);
    }
    let status = unshare
        .args(["--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .env("NODEKIT_WORKLOAD_BIN", bin)
        .status();
    let _ = std::fs::remove_file(&exe);
    let status = status.expect("unshare");
    assert!(status.success(), "{name} failed inside the namespaces: {status}");
    false
}

pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > end {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
