//! Runs the `workload` binary as `agnhost` (through a symlink named like upstream's binary):
//! netexec over HTTP and UDP, exit codes on SIGTERM, unknown subcommands, `cat` from stdin.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `<dir>/agnhost` → the workload binary.
fn agnhost(dir: &Path) -> PathBuf {
    let link = dir.join("agnhost");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    link
}

#[test]
fn netexec_serves_upstream_endpoints_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (port, udp) = (free_port(), free_udp_port());
    let mut c = Command::new(agnhost(dir.path()))
        .args(["netexec", &format!("--http-port={port}"), "--udp-port", &udp.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (st, _) = wait_for("healthz", Duration::from_secs(10), || http_get(port, "/healthz"));
    assert_eq!(st, 200);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(http_get(port, "/hostname").unwrap(), (200, host.trim().to_string()));
    assert_eq!(http_get(port, "/echo?msg=hello%20there").unwrap(), (200, "hello there".into()));
    assert!(http_get(port, "/clientip").unwrap().1.starts_with("127.0.0.1:"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(b"echo ping", ("127.0.0.1", udp)).unwrap();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    signal(&c, "-TERM");
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(0));
    let mut log = String::new();
    c.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains(&format!("Started HTTP server on port {port}")), "{log}");
    assert!(log.contains("GET /echo?msg=hello there&code="), "{log}");
}

#[test]
fn pause_prints_paused_and_exits_two_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(agnhost(dir.path())).arg("pause").stdout(Stdio::piped()).spawn().unwrap();
    let mut line = [0u8; 7];
    c.stdout.as_mut().unwrap().read_exact(&mut line).unwrap();
    assert_eq!(&line, b"Paused\n");
    signal(&c, "-TERM");
    assert_eq!(wait_exit(&mut c, Duration::from_secs(5)), Some(2));
}

#[test]
fn unknown_subcommands_exit_two_naming_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(agnhost(dir.path())).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frobnicate") && err.contains("netexec") && err.contains("serve-hostname"), "{err}");
    let out = Command::new(BIN).args(["agnhost", "entrypoint-tester", "a", "b"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("[{BIN} agnhost entrypoint-tester a b]\n"));
}

#[test]
fn cat_copies_stdin_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    std::os::unix::fs::symlink(BIN, &cat).unwrap();
    let mut c = Command::new(&cat).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(b"line one\nline two\n").unwrap();
    let out = c.wait_with_output().unwrap();
    assert_eq!((out.status.code(), out.stdout.as_slice()), (Some(0), b"line one\nline two\n".as_slice()));
    let f = dir.path().join("f");
    std::fs::write(&f, "abc").unwrap();
    let out = Command::new(&cat).arg(&f).arg(&f).output().unwrap();
    assert_eq!(out.stdout, b"abcabc");
    let out = Command::new(&cat).arg("/no/such/file").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file: No such file or directory"));
}

#[test]
fn logs_generator_writes_klog_lines_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let out = Command::new(agnhost(dir.path()))
        .args(["logs-generator", "--log-lines-total", "4", "--run-duration", "200ms"])
        .output()
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for (id, l) in lines.iter().enumerate() {
        assert!(l.starts_with('I') && l.contains(" logs_generator.go:76] "), "{l}");
        let msg = l.split("] ").nth(1).unwrap();
        assert!(msg.starts_with(&format!("{id} ")) && msg.contains(" /api/v1/namespaces/"), "{l}");
    }
    let out = Command::new(dir.path().join("agnhost")).args(["logs-generator", "-t", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with('F') && err.ends_with(" logs_generator.go:64] Invalid total number of lines: 0\n"), "{err}");
}
