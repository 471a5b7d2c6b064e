//! Runs the `workload` binary as a process: exit codes, files, SIGTERM policies, HTTP, TCP/UDP,
//! gRPC health, memory and child processes.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

#[test]
fn exit_codes_and_streams() {
    let out = Command::new(BIN).args(["exit", "--code", "7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("exit: started"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exiting with code 7"));
    let t = Instant::now();
    let out = Command::new(BIN).args(["exit", "--code", "3", "--after", "200ms"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(t.elapsed() >= Duration::from_millis(200));
    let out = Command::new(BIN).args(["bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).args(["print", "--stdout", "o", "--stderr", "e", "--partial", "p"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "o\np");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "e\n");
}

#[test]
fn file_commands() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("marker");
    let f = f.to_str().unwrap();
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    assert_eq!(run(&["check-file", f]).status.code(), Some(1));
    assert_eq!(run(&["touch", f]).status.code(), Some(0));
    assert_eq!(run(&["check-file", f]).status.code(), Some(0));
    std::fs::write(f, "content\n").unwrap();
    assert_eq!(String::from_utf8_lossy(&run(&["cat", f]).stdout), "content\n");
    assert_eq!(run(&["rm", f]).status.code(), Some(0));
    assert_eq!(run(&["check-file", f]).status.code(), Some(1));
    assert_eq!(run(&["rm", f]).status.code(), Some(1));
    let env = Command::new(BIN).arg("env").env("WL_TEST", "v1").output().unwrap();
    assert!(String::from_utf8_lossy(&env.stdout).lines().any(|l| l == "WL_TEST=v1"));
    let host = run(&["hostname"]);
    let want = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), want.trim());
}

#[test]
fn multi_call_through_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("check-file");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let out = Command::new(&link).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn sigterm_exits_promptly_with_zero() {
    let mut c = spawn(&["pause"]);
    let mut line = [0u8; 8];
    c.stdout.as_mut().unwrap().read_exact(&mut line).unwrap(); // started
    let t = Instant::now();
    sigterm(&c);
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(0));
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn term_delay_keeps_serving_then_exits() {
    let port = free_port();
    let mut c = Command::new(BIN)
        .args(["netexec", "--http-port", &port.to_string()])
        .env("WORKLOAD_TERM_DELAY", "700ms")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("http", Duration::from_secs(10), || http_get(port, "/healthz"));
    let t = Instant::now();
    sigterm(&c);
    // Still serving during the delay.
    let (st, _) = wait_for("http during delay", Duration::from_secs(1), || http_get(port, "/hostname"));
    assert_eq!(st, 200);
    assert!(t.elapsed() < Duration::from_millis(700));
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(0));
    assert!(t.elapsed() >= Duration::from_millis(700));
}

#[test]
fn ignore_sigterm() {
    let mut c = spawn(&["--ignore-sigterm", "pause"]);
    let mut r = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut next_line = || {
        let mut out = String::new();
        std::io::BufRead::read_line(&mut r, &mut out).unwrap();
        out
    };
    // Said once the policy is in force; only then is the signal sent.
    let first = next_line();
    assert_eq!(first, "workload pause: SIGTERM will be ignored\n");
    sigterm(&c);
    // The process acknowledges the signal on stdout and keeps running.
    let ack = std::iter::repeat_with(&mut next_line).take(3).find(|l| l.contains("SIGTERM received"));
    assert_eq!(ack.as_deref(), Some("workload pause: SIGTERM received, ignored\n"));
    assert!(c.try_wait().unwrap().is_none());
    c.kill().unwrap();
    c.wait().unwrap();
}

#[test]
fn netexec_routes_and_exit() {
    let port = free_port();
    let udp = free_port();
    let mut c = spawn(&["netexec", "--http-port", &port.to_string(), "--udp-port", &udp.to_string()]);
    let (st, body) = wait_for("http", Duration::from_secs(10), || http_get(port, "/healthz"));
    assert_eq!((st, body.as_str()), (200, "ok"));
    assert_eq!(http_get(port, "/echo?msg=hello%20there").unwrap(), (200, "hello there".into()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(http_get(port, "/hostname").unwrap().1, host.trim());
    assert_eq!(http_get(port, "/redirect?loc=/healthz").unwrap().0, 302);
    assert_eq!(http_get(port, "/missing").unwrap().0, 404);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.send_to(b"echo ping", ("127.0.0.1", udp)).unwrap();
    let mut buf = [0u8; 64];
    let n = u.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(http_get(port, "/exit?code=5").unwrap().0, 200);
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(5));
}

#[test]
fn liveness_fails_after_delay() {
    let port = free_port();
    let mut c = spawn(&["liveness", "--port", &port.to_string(), "--fail-after", "400ms"]);
    let t0 = Instant::now();
    let (st, _) = wait_for("http", Duration::from_secs(10), || http_get(port, "/healthz"));
    if t0.elapsed() < Duration::from_millis(300) {
        assert_eq!(st, 200);
    }
    wait_for("500", Duration::from_secs(5), || http_get(port, "/healthz").filter(|r| r.0 == 500));
    c.kill().unwrap();
    c.wait().unwrap();
}

#[test]
fn serve_hostname_and_echo_servers() {
    let (hp, tp, up) = (free_port(), free_port(), free_port());
    let mut a = spawn(&["serve-hostname", "--port", &hp.to_string()]);
    let mut b = spawn(&["tcp-echo", "--port", &tp.to_string()]);
    let mut c = spawn(&["udp-echo", "--port", &up.to_string()]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let (_, body) = wait_for("http", Duration::from_secs(10), || http_get(hp, "/anything"));
    assert_eq!(body, host.trim());
    let mut s = wait_for("tcp", Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", tp)).ok());
    s.write_all(b"abc").unwrap();
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abc");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let got = wait_for("udp", Duration::from_secs(10), || {
        u.send_to(b"xyz", ("127.0.0.1", up)).ok()?;
        let mut b = [0u8; 8];
        let n = u.recv(&mut b).ok()?;
        Some(b[..n].to_vec())
    });
    assert_eq!(got, b"xyz");
    for p in [&mut a, &mut b, &mut c] {
        sigterm(p);
        assert_eq!(wait_exit(p, Duration::from_secs(5)), Some(0));
    }
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn alloc_memory_touches_pages() {
    let mut c = spawn(&["alloc-memory", "--mib", "64", "--step-mib", "16", "--interval", "10ms"]);
    let rss = wait_for("rss", Duration::from_secs(20), || {
        status_field(c.id(), "VmRSS:").filter(|kb| *kb >= 64 * 1024)
    });
    assert!(rss >= 64 * 1024);
    sigterm(&c);
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(0));
}

#[test]
fn fork_processes_are_held_and_reaped() {
    let mut c = spawn(&["fork-processes", "--count", "3"]);
    let pid = c.id();
    let children = || -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    };
    let kids = wait_for("children", Duration::from_secs(10), || Some(children()).filter(|k| k.len() == 3));
    sigterm(&c);
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(0));
    for k in kids {
        assert!(!std::path::Path::new(&format!("/proc/{k}")).exists() || {
            let st = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
            st.contains(") Z")
        });
    }
}

#[test]
fn fill_disk_writes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("fill");
    let mut c = spawn(&["fill-disk", "--path", f.to_str().unwrap(), "--mib", "3"]);
    wait_for("file", Duration::from_secs(10), || {
        std::fs::metadata(&f).ok().filter(|m| m.len() == 3 << 20)
    });
    sigterm(&c);
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(0));
}

#[test]
fn grpc_health_check_and_fail_after() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let port = free_port();
    let mut c = spawn(&["grpc-health", "--port", &port.to_string(), "--fail-after", "500ms", "--service", "svc"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let url = format!("http://127.0.0.1:{port}");
        let end = Instant::now() + Duration::from_secs(10);
        let mut client = loop {
            if let Ok(ch) = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await {
                break HealthClient::new(ch);
            }
            assert!(Instant::now() < end, "grpc server did not come up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let t = Instant::now();
        let st = client.check(HealthCheckRequest { service: "svc".into() }).await.unwrap().into_inner().status;
        if t.elapsed() < Duration::from_millis(400) {
            assert_eq!(st, 1, "SERVING");
        }
        let err = client.check(HealthCheckRequest { service: "other".into() }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        let mut watch = client.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), watch.message()).await.unwrap().unwrap().unwrap();
            if m.status == 2 {
                break; // NOT_SERVING
            }
        }
    });
    sigterm(&c);
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(0));
}
