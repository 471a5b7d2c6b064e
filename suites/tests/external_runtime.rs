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

/// Passed, failed and skipped of `area` in the summary table a run prints.
fn area_counts(stdout: &str, area: &str) -> Vec<u32> {
    let line = stdout.lines().find(|l| l.split_whitespace().next() == Some(area)).unwrap_or_default();
    line.split_whitespace().skip(1).take(3).filter_map(|w| w.parse().ok()).collect()
}

#[test]
fn the_cri_area_passes_on_a_runtime_started_by_hand_and_leaves_nothing() {
    assert!(nix::unistd::Uid::effective().is_root(), "this test needs root (network namespaces, fake-cri's pods)");
    let rt = start_fake_cri();
    let endpoint = format!("unix://{}", rt.dir.path().join("cri.sock").display());
    let artifacts = rt.dir.path().join("artifacts");
    // The run's own TMPDIR: its log directories are looked for there (tests run at once).
    let tmp = rt.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nodekit"))
        .args(["conformance", "--runtime", &endpoint, "--filter", "runtime/", "--filter", "pod-lifecycle/", "--artifacts"])
        .arg(&artifacts)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let cols = |area: &str| area_counts(&stdout, area);
    assert_eq!(cols("runtime"), [21, 0, 13], "runtime area: passed, failed, skipped\n{stderr}");
    let lifecycle = cols("pod-lifecycle");
    assert!(lifecycle.len() == 3 && lifecycle[0] == 0 && lifecycle[1] == 0 && lifecycle[2] > 0, "pod-lifecycle must be all skipped: {lifecycle:?}");
    assert!(stderr.contains("node areas need a runtime nodekit starts inside the world"), "{stderr}");
    // Nothing of the run is left on the runtime: fake-cri keeps one record file per sandbox
    // and container.
    let records = rt.dir.path().join("state/records");
    let left: Vec<_> = std::fs::read_dir(&records).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left on the runtime: {left:?}");
    let logs: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("nodekit-cri-logs-"))
        .map(|e| e.path())
        .collect();
    assert!(logs.is_empty(), "log directories left: {logs:?}");
}

/// containerd as a user runs it by hand: its own config, root, state and socket in a
/// directory, in network, mount and pid namespaces of its own (`unshare`), its CNI bridge
/// inside that network namespace, the kit's images imported with `ctr` and served by
/// `nodekit registry` on the namespace's loopback (containerd's `config_path` points at the
/// host files it writes), so `runtime/images` can pull the workload image back. Killing the namespace's
/// init on drop ends containerd, its shims and their containers at once.
struct HandContainerd {
    unshare: Child,
    dir: tempfile::TempDir,
    /// cgroup v1 `k8s.io` directories that existed before this test's containerd started
    /// (the ones that appear later are its own, removed on drop).
    cgroup_dirs_before: Vec<std::path::PathBuf>,
}

impl Drop for HandContainerd {
    fn drop(&mut self) {
        // unshare ignores SIGTERM while it waits for its child; its death SIGKILLs the child
        // (--kill-child), the namespace's init, and with it every process of the namespace.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        for d in k8s_io_cgroup_dirs().iter().filter(|d| !self.cgroup_dirs_before.contains(d)) {
            // Empty once the namespace's processes are gone; subdirectories first.
            let mut dirs: Vec<_> = walk(d);
            dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for sub in dirs {
                let _ = std::fs::remove_dir(sub);
            }
        }
    }
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![d.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(d) {
        for e in entries.flatten().filter(|e| e.path().is_dir()) {
            out.extend(walk(&e.path()));
        }
    }
    out
}

fn k8s_io_cgroup_dirs() -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.flatten().map(|e| e.path().join("k8s.io")).filter(|p| p.is_dir()).collect())
        .unwrap_or_default()
}

fn have(bin: &str) -> bool {
    harness::backend::find_binary(bin).is_some()
}

fn start_containerd_by_hand() -> HandContainerd {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["root", "state", "net.d", "ipam", "images"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "nodekit.local/pause:3.10"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d}/hosts"
"#,
        d = d.display()
    );
    std::fs::write(d.join("config.toml"), config).unwrap();
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "by-hand",
        "plugins": [{
            "type": "bridge", "bridge": "nk0", "isGateway": true, "ipMasq": false,
            "ipam": {"type": "host-local", "dataDir": d.join("ipam"), "ranges": [[{"subnet": "10.250.1.0/24"}]]},
        }],
    });
    std::fs::write(d.join("net.d/10-by-hand.conflist"), conflist.to_string()).unwrap();
    let before = k8s_io_cgroup_dirs();
    let containerd = harness::backend::find_binary("containerd").unwrap();
    let unshare = Command::new("unshare")
        .args(["--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private", "sh", "-c"])
        // `nodekit registry` serves the kit's images on the namespace's loopback and writes the
        // host files containerd's config points at, so the runtime can pull them back.
        // Its network namespaces (/run/netns) and CNI's result cache (/var/lib/cni) stay in its
        // own mount namespace.
        .arg(r#"mount -t tmpfs nodekit /run && mkdir /run/netns && mount -t tmpfs nodekit /var/lib && ip link set lo up && "$2" registry --listen 127.0.0.1:5000 --hosts-dir "$3" > "$4" 2>&1 & exec "$0" --config "$1""#)
        .arg(&containerd)
        .arg(d.join("config.toml"))
        .arg(env!("CARGO_BIN_EXE_nodekit"))
        .arg(d.join("hosts"))
        .arg(d.join("registry.log"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("containerd.log")).unwrap())
        .spawn()
        .expect("starting containerd under unshare");
    let rt = HandContainerd { unshare, dir, cgroup_dirs_before: before };
    let socket = rt.dir.path().join("containerd.sock");
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "containerd did not answer on {}", socket.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let hosts = rt.dir.path().join("hosts/nodekit.local/hosts.toml");
    while !hosts.exists() {
        let log = std::fs::read_to_string(rt.dir.path().join("registry.log")).unwrap_or_default();
        assert!(start.elapsed() < Duration::from_secs(60), "nodekit registry did not write {}: {log}", hosts.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    for tar in harness::backend::world_image_tarballs(&rt.dir.path().join("images")).unwrap() {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args(["-n", "k8s.io", "images", "import", "--snapshotter", "overlayfs"])
            .arg(&tar)
            .output()
            .unwrap();
        assert!(out.status.success(), "ctr images import {}: {}", tar.display(), String::from_utf8_lossy(&out.stderr));
    }
    rt
}

fn ctr_ids(socket: &std::path::Path, what: &str) -> Vec<String> {
    let out = Command::new("ctr").arg("--address").arg(socket).args(["-n", "k8s.io", what, "ls", "-q"]).output().unwrap();
    assert!(out.status.success(), "ctr {what} ls: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}

#[test]
fn the_cri_area_passes_on_containerd_started_by_hand_and_leaves_nothing() {
    assert!(nix::unistd::Uid::effective().is_root(), "this test needs root (namespaces, containerd)");
    if !(have("containerd") && have("ctr") && have("runc") && std::path::Path::new("/usr/lib/cni/bridge").exists()) {
        eprintln!("skipped: containerd, ctr, runc or the CNI plugins are missing (run ci/bootstrap)");
        return;
    }
    let rt = start_containerd_by_hand();
    let socket = rt.dir.path().join("containerd.sock");
    let endpoint = format!("unix://{}", socket.display());
    let artifacts = rt.dir.path().join("artifacts");
    let tmp = rt.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nodekit"))
        .args(["conformance", "--runtime", &endpoint, "--filter", "runtime/", "--artifacts"])
        .arg(&artifacts)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let cols = area_counts(&stdout, "runtime");
    assert_eq!(cols, [21, 0, 13], "runtime area: passed, failed, skipped\n{stdout}");
    // containerd keeps sandboxes as containers too: none of either is left, nor a task.
    assert_eq!(ctr_ids(&socket, "containers"), Vec::<String>::new(), "containers left on containerd");
    assert_eq!(ctr_ids(&socket, "tasks"), Vec::<String>::new(), "tasks left on containerd");
}
