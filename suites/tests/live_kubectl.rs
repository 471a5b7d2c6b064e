//! A user's kubectl session on a live world, on each runtime: logs (follow, previous, tail,
//! since), exec (stdout, stdin, exit codes), attach, port-forward, the node proxy and top, with
//! every kubectl version the machine offers for the streaming commands (older ones speak SPDY,
//! newer ones WebSocket first).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{KUBECTL, Live, have_kubectl, up};

/// The image and arguments of the session's pod, as an upstream e2e test writes them.
const IMAGE: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";

/// Every kubectl of the machine's dispatcher (`kubectl.1.27` …), the default one first.
fn kubectls() -> Vec<String> {
    let mut all = vec![KUBECTL.to_string()];
    let dir = std::path::Path::new("/usr/lib/google-cloud-sdk/bin");
    let mut versions: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kubectl.1."))
        .collect();
    versions.sort();
    all.extend(versions.into_iter().map(|v| dir.join(v).display().to_string()));
    all
}

struct Session<'a> {
    live: &'a Live,
}

impl Session<'_> {
    fn cmd(&self, kubectl: &str, args: &[&str]) -> Command {
        let mut c = Command::new(kubectl);
        c.args(args).env("HOME", self.live.dir.path()).env("KUBECONFIG", &self.live.kubeconfig);
        c
    }

    /// Runs kubectl; (exit code, stdout, stderr).
    fn run(&self, kubectl: &str, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
        let mut c = self.cmd(kubectl, args);
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(data) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(data).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(KUBECTL, args, None);
        assert_eq!(code, 0, "kubectl {args:?}: {err}");
        out
    }

    /// A kubectl that keeps running, with its stdout lines on a channel.
    fn spawn(&self, kubectl: &str, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
        let mut child = self.cmd(kubectl, args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Its stderr goes on the same channel, marked, so a failure shows what kubectl said.
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx2.send(format!("stderr: {line}")).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    fn wait_pod(&self, condition: &str) {
        self.ok(&["wait", &format!("--for={condition}"), "pod/web", "--timeout=90s"]);
    }
}

/// The first line on `rx` that contains `needle`, within `within`; the other lines seen.
fn find_line(rx: &mpsc::Receiver<String>, needle: &str, within: Duration) -> Result<String, Vec<String>> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return Ok(l),
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    Err(seen)
}

fn expect_line(rx: &mpsc::Receiver<String>, needle: &str, within: Duration) -> String {
    find_line(rx, needle, within).unwrap_or_else(|seen| panic!("no line with {needle:?} within {within:?}; saw {seen:?}"))
}

/// One HTTP/1.1 GET on 127.0.0.1:`port`; the body, read up to its Content-Length as curl
/// does (how the forward ends the connection afterwards is kubectl's business).
fn http_get(port: u16, path: &str) -> String {
    try_http_get(port, path).unwrap_or_else(|e| panic!("{e}"))
}

fn try_http_get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connecting to the forward: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&resp).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()));
            if len.is_some_and(|n| body.len() >= n) {
                return if head.starts_with("HTTP/1.1 200") { Ok(body.to_string()) } else { Err(text) };
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("the forward closed before the whole answer: {text:?}")),
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("reading through the forward: {e}; got {text:?}")),
        }
    }
}

/// `kubectl port-forward pod/web :8080`; the child and the local port it chose.
fn port_forward(s: &Session<'_>, kubectl: &str) -> (Child, u16, mpsc::Receiver<String>) {
    let (child, rx) = s.spawn(kubectl, &["port-forward", "pod/web", ":8080"]);
    let line = expect_line(&rx, "Forwarding from 127.0.0.1:", Duration::from_secs(30));
    let port = line.trim_start_matches("Forwarding from 127.0.0.1:").split_whitespace().next().unwrap().parse().unwrap();
    (child, port, rx)
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn session(runtime: &str) {
    if !have_kubectl() {
        return;
    }
    let mut live = up(&["--runtime", runtime]);
    let s = Session { live: &live };
    let out = s.ok(&["run", "web", &format!("--image={IMAGE}"), "--", "netexec", "--http-port=8080"]);
    assert!(out.contains("pod/web created"), "{out}");
    s.wait_pod("condition=Ready");
    // logs: what the container printed at start.
    let logs = s.ok(&["logs", "web"]);
    assert!(logs.contains("8080"), "{logs}");
    exec_with_every_kubectl(&s);
    port_forward_with_every_kubectl(&s);
    let (pf, port, _pf_out) = port_forward(&s, KUBECTL);
    let marker = follow_and_attach(&s, port);
    // --tail and --since.
    let tail = s.ok(&["logs", "web", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.contains(marker), "{tail}");
    let since = s.ok(&["logs", "web", "--since=1h"]);
    assert!(since.contains("marker-1"), "{since}");
    previous_after_a_restart(&s, pf, port, marker);
    node_proxy_and_top(&s);
    deployment_rolls_out(&s);
    live.interrupt();
}

/// `kubectl create deployment` and `rollout status`: the scheduler binds, the node runs, the
/// controllers report the rollout done; a new image rolls out too.
fn deployment_rolls_out(s: &Session<'_>) {
    s.ok(&["create", "deployment", "hello", &format!("--image={IMAGE}"), "--replicas=2", "--", "/agnhost", "serve-hostname"]);
    let out = s.ok(&["rollout", "status", "deployment/hello", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    s.ok(&["set", "image", "deployment/hello", "agnhost=registry.k8s.io/e2e-test-images/agnhost:2.56"]);
    let out = s.ok(&["rollout", "status", "deployment/hello", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods: serde_json::Value = serde_json::from_str(&s.ok(&["get", "pods", "-l", "app=hello", "-o", "json"])).unwrap();
    let running: Vec<&serde_json::Value> = pods["items"].as_array().unwrap().iter().filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()).collect();
    assert_eq!(running.len(), 2, "{pods}");
    assert!(running.iter().all(|p| p["spec"]["containers"][0]["image"].as_str().unwrap().ends_with(":2.56")), "{pods}");
}

/// exec with every kubectl: stdout, stdin, exit codes.
fn exec_with_every_kubectl(s: &Session<'_>) {
    for k in kubectls() {
        let (code, out, err) = s.run(&k, &["exec", "web", "--", "hostname"], None);
        assert_eq!((code, out.as_str()), (0, "web\n"), "{k} exec hostname: {err}");
        let (code, out, err) = s.run(&k, &["exec", "-i", "web", "--", "cat"], Some(b"line one\nline two\n"));
        assert_eq!((code, out.as_str()), (0, "line one\nline two\n"), "{k} exec -i cat: {err}");
        let (code, _, err) = s.run(&k, &["exec", "web", "--", "cat", "/no/such/file"], None);
        assert_ne!(code, 0, "{k} a failing command fails kubectl: {err}");
        assert!(err.contains("command terminated with exit code"), "{k}: {err}");
    }
}

/// port-forward with every kubectl: an HTTP GET through it. `kubectl run` gives the pod no
/// readiness probe, so first wait until netexec answers inside the pod.
fn port_forward_with_every_kubectl(s: &Session<'_>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.run(KUBECTL, &["exec", "web", "--", "/agnhost", "connect", "127.0.0.1:8080"], None).0 != 0 {
        assert!(Instant::now() < deadline, "netexec never listened on 8080");
        std::thread::sleep(Duration::from_millis(200));
    }
    for k in kubectls() {
        let (pf, port, rx) = port_forward(s, &k);
        let body = try_http_get(port, "/hostname").unwrap_or_else(|e| panic!("{k} port-forward: {e}; kubectl said {:?}", rx.try_iter().collect::<Vec<_>>()));
        assert_eq!(body, "web", "{k} port-forward");
        stop(pf);
    }
}

/// logs -f and attach through the forward on `port`: once established, a new line shows in the
/// follow within a second and in the attach too. Returns the last line's marker.
fn follow_and_attach(s: &Session<'_>, port: u16) -> &'static str {
    let (follow, follow_rx) = s.spawn(KUBECTL, &["logs", "-f", "web"]);
    let (attach, attach_rx) = s.spawn(KUBECTL, &["attach", "web"]);
    // Each stream is established once a line sent after its start reaches it (kubectl gives no
    // other sign); from then on a new line must show within a second.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut follow_up, mut attach_up) = (false, false);
    for n in 1.. {
        let marker = format!("marker-{n}");
        http_get(port, &format!("/echo?msg={marker}"));
        follow_up |= find_line(&follow_rx, &marker, Duration::from_millis(1500)).is_ok();
        attach_up |= find_line(&attach_rx, &marker, Duration::from_millis(500)).is_ok();
        if follow_up && attach_up {
            break;
        }
        assert!(Instant::now() < deadline, "a new line never reached logs -f ({follow_up}) or attach ({attach_up})");
    }
    let marker = "after-both-streams";
    let sent = Instant::now();
    http_get(port, &format!("/echo?msg={marker}"));
    expect_line(&follow_rx, marker, Duration::from_secs(1));
    assert!(sent.elapsed() < Duration::from_secs(1));
    expect_line(&attach_rx, marker, Duration::from_secs(5));
    stop(follow);
    stop(attach);
    marker
}

/// netexec exits (code 3) when asked through the forward `pf`; after the restart
/// `logs --previous` holds the old instance's last line.
fn previous_after_a_restart(s: &Session<'_>, pf: Child, port: u16, marker: &str) {
    let mut ask = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = write!(ask, "GET /exit?code=3 HTTP/1.1\r\nHost: x\r\n\r\n");
    // netexec exits without answering: the forwarded connection ends when it has.
    ask.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = ask.read(&mut [0u8; 64]);
    stop(pf);
    s.ok(&["wait", "--for=jsonpath={.status.containerStatuses[0].restartCount}=1", "pod/web", "--timeout=90s"]);
    s.wait_pod("condition=Ready");
    let previous = s.ok(&["logs", "web", "--previous"]);
    assert!(previous.contains(marker), "the previous instance's log: {previous}");
}

/// The node proxy, describe and top.
fn node_proxy_and_top(s: &Session<'_>) {
    let summary: serde_json::Value = serde_json::from_str(&s.ok(&["get", "--raw", "/api/v1/nodes/node-a/proxy/stats/summary"])).unwrap();
    assert_eq!(summary["node"]["nodeName"], "node-a", "{summary}");
    let probes = s.ok(&["get", "--raw", "/api/v1/nodes/node-a/proxy/metrics/probes"]);
    // The pod has no probes, so only the endpoint's own series is there (the probe series are
    // asserted by the kubelet-api/ cases).
    assert!(probes.contains("# TYPE process_start_time_seconds gauge"), "{probes}");
    let describe = s.ok(&["describe", "node", "node-a"]);
    assert!(describe.contains("Kubelet Version:") && describe.contains("default") && describe.contains("web"), "{describe}");
    top(s);
}

/// `kubectl top node` / `top pod` once the metrics API has two samples.
fn top(s: &Session<'_>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (nodes, pods) = loop {
        let (c1, nodes, _) = s.run(KUBECTL, &["top", "node", "--no-headers"], None);
        let (c2, pods, e2) = s.run(KUBECTL, &["top", "pod", "--no-headers"], None);
        if c1 == 0 && c2 == 0 {
            break (nodes, pods);
        }
        assert!(Instant::now() < deadline, "kubectl top never answered: {e2}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(nodes.starts_with("node-a "), "{nodes}");
    assert!(nodes.contains("m ") && nodes.contains("Mi "), "cores in millicores and memory in Mi: {nodes}");
    assert!(pods.starts_with("web "), "{pods}");
}

#[test]
fn kubectl_session_on_fake_cri() {
    session("fake-cri");
}

#[test]
fn kubectl_session_on_containerd() {
    session("containerd");
}
