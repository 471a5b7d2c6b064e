//! `https-get URL [--ca FILE] [--bearer-file FILE] [--method GET] [--body TEXT]`: one HTTPS
//! request (HTTP/1.0, the server certificate verified against the CA bundle, the host name of
//! the URL as the server name), as a pod talks to the API server with its ServiceAccount token.
//! Prints `HTTP <status>` and the body; exits 0 when an answer came, whatever its status.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::Invocation;
use crate::{Error, Result};

/// `(host, port, path)` of an `https://` URL.
fn split_url(url: &str) -> Result<(String, u16, String)> {
    let rest = url.strip_prefix("https://").ok_or_else(|| Error::Usage(format!("https-get: {url:?} is not an https:// URL")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| Error::Usage(format!("https-get: bad port in {url:?}")))?),
        None => (authority, 443),
    };
    Ok((host.to_string(), port, path.to_string()))
}

fn tls_config(ca: Option<&str>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca {
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| Error::Usage(format!("--ca {path}: {e}")))? {
            let cert = cert.map_err(|e| Error::Usage(format!("--ca {path}: {e}")))?;
            roots.add(cert).map_err(|e| Error::Usage(format!("--ca {path}: {e}")))?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS: {e}")))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

pub async fn https_get(inv: &Invocation) -> Result<i32> {
    let url = inv.arg(0, "a URL")?;
    let (host, port, path) = split_url(url)?;
    let method = inv.flag("method").unwrap_or("GET");
    let token = match inv.flag("bearer-file") {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| Error::io(format!("reading {p}"), e))?.trim().to_string()),
        None => None,
    };
    let body = inv.flag("body").unwrap_or("");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(inv.flag("ca"))?));
    let name = ServerName::try_from(host.clone()).map_err(|e| Error::Usage(format!("https-get: server name {host:?}: {e}")))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| Error::io(format!("connecting to {host}:{port}"), e))?;
    let mut tls = connector.connect(name, tcp).await.map_err(|e| Error::io(format!("TLS with {host}:{port}"), e))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}:{port}\r\nAccept: application/json\r\n");
    if let Some(t) = &token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tls.write_all(req.as_bytes()).await.map_err(|e| Error::io("sending the request", e))?;
    let mut answer = Vec::new();
    // A server may end TLS without close_notify once the answer is complete.
    let _ = tls.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        eprintln!("https-get: no HTTP answer from {host}:{port}: {text:?}");
        return Ok(1);
    };
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    println!("HTTP {status}\n{body}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        assert_eq!(split_url("https://10.96.0.1:443/api?x=1").unwrap(), ("10.96.0.1".into(), 443, "/api?x=1".into()));
        assert_eq!(split_url("https://kubernetes.default.svc").unwrap(), ("kubernetes.default.svc".into(), 443, "/".into()));
        assert!(split_url("http://x/").is_err());
    }
}
