//! The `fake-apiserver` binary prints a ready line with its URL and writes a kubeconfig.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn binary_serves_and_writes_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kc)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url = line.strip_prefix("fake-apiserver ready on ").expect("ready line").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains(&format!("server: {url}")), "{text}");
    let mut s = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200") && resp.contains("\"gitVersion\":\"v1.34.2\""), "{resp}");
    child.kill().await.unwrap();
}

/// A token file kube-apiserver would refuse stops the server before it serves: exit 2 with
/// the file and upstream's message.
#[test]
fn unusable_token_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tokens.csv");
    std::fs::write(&bad, "tok,alice\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--token-auth-file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("fake-apiserver: --token-auth-file: token file '{}' must have at least 3 columns (token, user name, user uid), found 2", bad.display());
    assert!(err.contains(&want), "{err}");
}
