//! HTTP probe tests against a tiny loopback server.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// Serves `responses` (path -> raw response) on 127.0.0.1 until dropped.
async fn serve(routes: Vec<(&'static str, String)>) -> (u16, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let resp = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".into());
                let resp = if path == "/echo-host" {
                    let host = req.lines().find(|l| l.to_lowercase().starts_with("host:")).unwrap_or("").to_string();
                    let code = if host.contains("example.test") { 200 } else { 500 };
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n")
                } else {
                    resp
                };
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, h)
}

fn target(port: u16, path: &str) -> HttpTarget {
    HttpTarget { scheme: "HTTP".into(), host: "127.0.0.1".into(), port, path: path.into(), headers: vec![] }
}

fn ok() -> String {
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".into()
}

#[tokio::test]
async fn status_codes_and_redirects() {
    let (port, h) = serve(vec![
        ("/ok", ok()),
        ("/fail", "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".into()),
        ("/same", "HTTP/1.1 302 Found\r\nlocation: /ok\r\ncontent-length: 0\r\n\r\n".into()),
        ("/same-bad", "HTTP/1.1 302 Found\r\nlocation: /fail\r\ncontent-length: 0\r\n\r\n".into()),
        ("/other", "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.2:1/x\r\ncontent-length: 4\r\n\r\nbody".into()),
    ])
    .await;
    let t = Duration::from_secs(2);
    assert_eq!(http_probe(&target(port, "/ok"), t).await, ProbeOutcome::Success);
    assert_eq!(
        http_probe(&target(port, "/fail"), t).await,
        ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(http_probe(&target(port, "/same"), t).await, ProbeOutcome::Success);
    assert_eq!(
        http_probe(&target(port, "/same-bad"), t).await,
        ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(
        http_probe(&target(port, "/other"), t).await,
        ProbeOutcome::Warning("Probe terminated redirects, Response body: body".into())
    );
    let mut with_host = target(port, "/echo-host");
    assert!(matches!(http_probe(&with_host, t).await, ProbeOutcome::Failure(_)));
    with_host.headers.push(("Host".into(), "example.test".into()));
    assert_eq!(http_probe(&with_host, t).await, ProbeOutcome::Success);
    h.abort();
}

#[tokio::test]
async fn refused_and_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    // Accepts but never answers: the probe times out.
    let out = http_probe(&target(port, "/x"), Duration::from_millis(200)).await;
    assert!(matches!(&out, ProbeOutcome::Failure(m) if m.contains("context deadline exceeded")), "{out:?}");
    drop(l);
    let out = http_probe(&target(port, "/x"), Duration::from_secs(1)).await;
    assert!(matches!(&out, ProbeOutcome::Failure(m) if m.contains("connection refused")), "{out:?}");
}
