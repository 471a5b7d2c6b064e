//! `--runtime unix:///…` against a runtime nodekit did not start: fake-cri run by hand in
//! namespaces of its own (its own network: nothing it does reaches the host's), outside any
//! world. The CRI-level area passes on it, node-level and in-world cases are skipped with
//! their reason, and afterwards the runtime holds no sandbox or container of the run.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Runtime {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // unshare execs fake-cri: the pid is fake-cri's. SIGTERM lets it tear its pods down.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn start_fake_cri() -> Runtime {
    let dir = tempfile::tempdir().unwrap();
    let bin = harness::bins::locate("fake-cri").expect("fake-cri is built");
    let socket = dir.path().join("cri.sock");
    let child = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private"])
        .arg(bin)
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--pod-cidr", "10.250.0.0/24"])
        .arg("--workload-bin")
        .arg(harness::backend::workload_binary().expect("the workload binary is built"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("fake-cri.log")).unwrap())
        .spawn()
        .expect("starting fake-cri under unshare");
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "fake-cri did not create {}", socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Runtime { child, dir }
}

#[test]
fn the_cri_area_passes_on_a_runtime_started_by_hand_and_leaves_nothing() {
    assert!(nix::unistd::Uid::effective().is_root(), "this test needs root (network namespaces, fake-cri's pods)");
    let rt = start_fake_cri();
    let endpoint = format!("unix://{}", rt.dir.path().join("cri.sock").display());
    let artifacts = rt.dir.path().join("artifacts");
    let out = Command::new(env!("CARGO_BIN_EXE_nodekit"))
        .args(["conformance", "--runtime", &endpoint, "--filter", "runtime/", "--filter", "pod-lifecycle/", "--artifacts"])
        .arg(&artifacts)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let line = |area: &str| stdout.lines().find(|l| l.split_whitespace().next() == Some(area)).unwrap_or_default().to_string();
    let cols = |area: &str| -> Vec<u32> { line(area).split_whitespace().skip(1).take(3).filter_map(|w| w.parse().ok()).collect() };
    assert_eq!(cols("runtime"), [20, 0, 3], "runtime area: passed, failed, skipped\n{stderr}");
    let lifecycle = cols("pod-lifecycle");
    assert!(lifecycle.len() == 3 && lifecycle[0] == 0 && lifecycle[1] == 0 && lifecycle[2] > 0, "pod-lifecycle must be all skipped: {lifecycle:?}");
    assert!(stderr.contains("node areas need a runtime nodekit starts inside the world"), "{stderr}");
    // Nothing of the run is left on the runtime: fake-cri keeps one record file per sandbox
    // and container.
    let records = rt.dir.path().join("state/records");
    let left: Vec<_> = std::fs::read_dir(&records).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left on the runtime: {left:?}");
    let logs: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("nodekit-cri-logs-"))
        .map(|e| e.path())
        .collect();
    assert!(logs.is_empty(), "log directories left: {logs:?}");
}
