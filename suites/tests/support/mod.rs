//! A `nodekit up` run as a user drives it: the built binary as a child, real kubectl against
//! the world through the loopback forwarder, and what it leaves on the host.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod cli;

pub const NODEKIT: &str = env!("CARGO_BIN_EXE_nodekit");
pub const KUBECTL: &str = "/usr/bin/kubectl";

pub struct Live {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub port: u16,
    pub world_pid: u32,
    /// `pid:[inode]` of the world's pid namespace.
    pub pid_ns: String,
    pub stderr: Option<std::thread::JoinHandle<String>>,
    /// What the user types into `nodekit up`.
    pub stdin: Option<std::process::ChildStdin>,
    /// The lines `nodekit up` prints after `ready:`.
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Live {
    /// A failing test must not leave its world running, nor end before the janitor has swept
    /// what the killed world left (the test run checks the host's cgroups afterwards).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !self.leftovers().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

pub fn up(args: &[&str]) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("live.kubeconfig");
    let mut child = Command::new(NODEKIT)
        .arg("up")
        .args(args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = match rx.recv_timeout(Duration::from_secs(200)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no ready line; stderr:\n{}", stderr.join().unwrap());
        }
    };
    assert!(ready.starts_with("ready: "), "{ready}");
    let path = kubeconfig.display().to_string();
    assert!(ready.contains(&format!("export KUBECONFIG={path}")), "{ready}");
    let field = |after: &str, until: char| -> String {
        let i = ready.find(after).unwrap_or_else(|| panic!("{after:?} in {ready}")) + after.len();
        ready[i..].chars().take_while(|c| *c != until).collect()
    };
    let port: u16 = field("https://127.0.0.1:", ' ').parse().unwrap();
    let world_pid: u32 = field("world pid ", ')').parse().unwrap();
    let pid_ns = std::fs::read_link(format!("/proc/{world_pid}/ns/pid_for_children")).unwrap().to_string_lossy().into_owned();
    let stdin = child.stdin.take();
    Live { child, dir, kubeconfig, port, world_pid, pid_ns, stderr: Some(stderr), stdin, lines: rx }
}

impl Live {
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new(KUBECTL)
            .args(args)
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl auth can-i ARGS`'s answer (`yes` or `no`; it exits 1 on `no`), without the reason.
    pub fn can_i(&self, args: &[&str]) -> String {
        let out = Command::new(KUBECTL)
            .args(["auth", "can-i"])
            .args(args)
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap();
        // `no` may be followed by the authorizer's reason (`no - no relationship found …`).
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let answer = stdout.split_whitespace().next().unwrap_or_default().to_string();
        assert!(matches!(answer.as_str(), "yes" | "no"), "kubectl auth can-i {args:?}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        answer
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&a)).unwrap()
    }

    /// Every node Ready, a pod bound to `node` running, all through real kubectl.
    pub fn drive(&self, nodes: &[&str], pod_node: &str) {
        let list = self.kubectl_json(&["get", "nodes"]);
        let mut names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|n| n["metadata"]["name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, nodes);
        for n in list["items"].as_array().unwrap() {
            let ready = n["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
            assert_eq!(ready["status"], "True", "{n}");
        }
        let overrides = format!(r#"{{"spec":{{"nodeName":"{pod_node}"}}}}"#);
        let out = self.kubectl(&["run", "web", "--image=nodekit.local/workload:1.0", "--overrides", &overrides, "--", "serve-hostname"]);
        assert!(out.contains("pod/web created"), "{out}");
        self.kubectl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
        let pods = self.kubectl_json(&["get", "pods"]);
        let web = &pods["items"][0];
        assert_eq!(web["status"]["phase"], "Running", "{web}");
        assert_eq!(web["spec"]["nodeName"], pod_node);
        assert!(web["status"]["podIP"].as_str().unwrap().starts_with("10.244."), "{web}");
    }

    /// The cgroup directories of this world in every hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let inode = self.pid_ns.trim_start_matches("pid:[").trim_end_matches(']');
        let prefix = format!("nodekit-w{inode}-");
        harness::backend::cgroup_hierarchies()
            .unwrap()
            .into_iter()
            .flat_map(|h| std::fs::read_dir(h).into_iter().flatten().flatten())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect()
    }

    pub fn pid_ns_in_use(&self) -> bool {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l.to_string_lossy() == self.pid_ns)
        })
    }

    /// What is left on the host right now (empty when nothing).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if Path::new(&format!("/proc/{}", self.world_pid)).exists() {
            left.push(format!("world process {}", self.world_pid));
        }
        if self.pid_ns_in_use() {
            left.push(format!("processes in {}", self.pid_ns));
        }
        if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            left.push(format!("port {} still open", self.port));
        }
        if self.kubeconfig.exists() {
            left.push(format!("{}", self.kubeconfig.display()));
        }
        let control = self.kubeconfig.with_file_name(format!("{}.sock", self.kubeconfig.file_name().unwrap().to_string_lossy()));
        if control.exists() {
            left.push(format!("{}", control.display()));
        }
        left.extend(self.cgroup_dirs().iter().map(|p| p.display().to_string()));
        left
    }

    /// Types `command` into `nodekit up` and returns the answer it prints.
    pub fn command(&mut self, command: &str) -> String {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        self.lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| panic!("no answer to {command:?}: {e}"))
    }

    /// Ctrl-C as a user ends it: exit 0, and nothing left once the command has returned.
    pub fn interrupt(&mut self) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().map(|h| h.join().unwrap()).unwrap_or_default();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert_eq!(self.leftovers(), Vec::<String>::new());
    }

    pub fn wait_clean(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "left on the host: {left:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn netns_list() -> String {
    Command::new("ip").args(["netns", "list"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// The host's listening sockets owned by `pid` (`ss` in the host network namespace).
pub fn listeners_of(pid: u32) -> Vec<String> {
    let out = Command::new("ss").args(["-ltnupH"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(&format!("pid={pid},"))).map(str::to_string).collect()
}

pub fn have_kubectl() -> bool {
    let ok = Path::new(KUBECTL).exists();
    if !ok {
        eprintln!("skipping: {KUBECTL} is absent");
    }
    ok
}

