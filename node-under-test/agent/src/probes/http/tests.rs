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

/// A self-signed certificate (P-256, CN nodekit-probe-test, IP SAN 127.0.0.1) made for this
/// test only; the probe must accept it without verification, as upstream's kubelet does.
const TEST_CERT: &str = include_str!("test-cert.pem");
const TEST_KEY: &str = include_str!("test-key.pem");

/// Serves one HTTPS route on 127.0.0.1 with the test certificate.
async fn serve_tls(path: &'static str, response: String) -> (u16, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (acceptor, response) = (acceptor.clone(), response.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else { return };
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let resp = if req.starts_with(&format!("GET {path} ")) {
                    response
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".into()
                };
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, h)
}

#[tokio::test]
async fn https_probes_skip_certificate_verification() {
    let (port, h) = serve_tls("/healthz", ok()).await;
    let https = |path: &str| HttpTarget { scheme: "HTTPS".into(), ..target(port, path) };
    assert_eq!(http_probe(&https("/healthz"), Duration::from_secs(5)).await, ProbeOutcome::Success);
    assert!(matches!(http_probe(&https("/other"), Duration::from_secs(5)).await, ProbeOutcome::Failure(m) if m.contains("statuscode: 404")));
    // Plain HTTP to a TLS port fails (the server answers with a TLS alert or closes).
    assert!(matches!(http_probe(&target(port, "/healthz"), Duration::from_secs(5)).await, ProbeOutcome::Failure(_)));
    // Other schemes are refused with a message that names them.
    let ftp = HttpTarget { scheme: "FTP".into(), ..target(port, "/") };
    assert!(matches!(http_probe(&ftp, Duration::from_secs(1)).await, ProbeOutcome::Error(m) if m.contains("FTP")));
    h.abort();
}
