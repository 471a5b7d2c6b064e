//! `nodekit bench up`: the time from starting `nodekit up` to its `ready:` line (every node
//! Ready), for 1 and 3 nodes on each available runtime, next to a bare world build (cp + two
//! nodes + client, no components) measured in the same run as the floor.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one `nodekit up` may take to be ready before the run counts as failed.
const READY_LIMIT: Duration = Duration::from_secs(120);

/// Starts `nodekit up` once and returns the time to its `ready:` line; stops it with SIGINT.
fn one(nodes: usize, runtime: &str) -> Result<Duration, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating nodekit: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let kubeconfig = dir.path().join("bench.kubeconfig");
    let start = Instant::now();
    let mut up = Command::new(exe)
        .args(["up", "--nodes", &nodes.to_string(), "--runtime", runtime, "--kubeconfig"])
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting nodekit up: {e}"))?;
    let out = up.stdout.take().ok_or("nodekit up has no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("ready:") {
                let _ = tx.send(start.elapsed());
                return;
            }
        }
    });
    let took = rx.recv_timeout(READY_LIMIT);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(up.id() as i32), nix::sys::signal::Signal::SIGINT);
    let status = up.wait().map_err(|e| format!("waiting for nodekit up: {e}"))?;
    let took = took.map_err(|_| format!("nodekit up --nodes {nodes} --runtime {runtime}: no ready line within {READY_LIMIT:?} ({status})"))?;
    if !status.success() {
        return Err(format!("nodekit up --nodes {nodes} --runtime {runtime} exited with {status} after SIGINT"));
    }
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs the benchmark with `runs` repetitions of each configuration; returns the report.
pub fn run(runs: usize) -> Result<String, String> {
    let runs = runs.clamp(1, 50);
    let mut runtimes = vec!["fake-cri"];
    if crate::target::RuntimeTarget::Containerd.unavailable().is_none() {
        runtimes.push("containerd");
    }
    let mut rows = Vec::new();
    for runtime in &runtimes {
        for nodes in [1usize, 3] {
            let times = (0..runs).map(|_| one(nodes, runtime)).collect::<Result<Vec<_>, _>>()?;
            let min = times.iter().min().copied().unwrap_or_default();
            rows.push((runtime.to_string(), nodes, median(times), min));
        }
    }
    let floor = harness::bench::world(runs).map_err(|e| e.to_string())?;
    let mut out = format!("nodekit up to every node Ready, {runs} runs each\n");
    out.push_str("  runtime      nodes   median (ms)   min (ms)   goal\n");
    for (runtime, nodes, med, min) in &rows {
        let goal = match (runtime.as_str(), nodes) {
            ("fake-cri", 1) => format!("< 1000 ms: {}", if med.as_millis() < 1000 { "met" } else { "NOT met" }),
            ("fake-cri", 3) => format!("< 3000 ms: {}", if med.as_millis() < 3000 { "met" } else { "NOT met" }),
            _ => String::new(),
        };
        out.push_str(&format!("  {runtime:<12} {nodes:>5} {:>13.1} {:>10.1}   {goal}\n", med.as_secs_f64() * 1e3, min.as_secs_f64() * 1e3));
    }
    out.push_str(&format!(
        "  floor: a bare world build (cp + two nodes + client, no components), median {:.1} ms in the same run",
        floor.median_build.as_secs_f64() * 1e3
    ));
    Ok(out)
}
