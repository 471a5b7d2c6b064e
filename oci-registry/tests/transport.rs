//! The registry over TLS (HTTP/1.1 and HTTP/2 by ALPN) and over cleartext HTTP/2.

mod common;

use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use oci_registry::digest::sha256_digest;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config with a fresh self-signed certificate for `localhost`, and that certificate.
fn server_tls() -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (Arc::new(config), cert)
}

async fn tls_connect(addr: std::net::SocketAddr, cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()
}

#[tokio::test]
async fn pulls_over_tls() {
    let f = fixture();
    let (tls, cert) = server_tls();
    let s = start(store(&f), Some(tls)).await;
    let stream = tls_connect(s.addr, &cert, &[b"http/1.1"]).await;
    let r = request_on(stream, Method::GET, "/v2/library/busybox/manifests/latest", &[("accept", RUNTIME_ACCEPT)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(DOCKER_MANIFEST));
    assert_eq!(r.header("docker-content-digest"), Some(sha256_digest(&r.body).as_str()));
    let layer = r.json()["layers"][1]["digest"].as_str().unwrap().to_string();
    let stream = tls_connect(s.addr, &cert, &[b"http/1.1"]).await;
    let b = request_on(stream, Method::GET, &format!("/v2/library/busybox/blobs/{layer}"), &[]).await;
    assert_eq!((b.status, sha256_digest(&b.body)), (StatusCode::OK, layer));
    // Plain HTTP to the TLS port gets nothing.
    let plain = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let handshake = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(plain)).await.unwrap();
    let (mut sender, conn) = handshake;
    tokio::spawn(conn);
    let req = http::Request::get("/v2/").header("host", "localhost").body(Empty::new()).unwrap();
    assert!(sender.send_request(req).await.is_err());
    s.cancel.cancel();
    assert!(s.task.await.unwrap().is_ok());
}

/// `GET path` over HTTP/2 on `io`.
async fn h2_get<I>(io: I, path: &str) -> (StatusCode, Bytes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("https://localhost{path}")).body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn http2_by_alpn_and_by_prior_knowledge() {
    let f = fixture();
    let (tls, cert) = server_tls();
    let secure = start(store(&f), Some(tls)).await;
    let stream = tls_connect(secure.addr, &cert, &[b"h2"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = h2_get(stream, "/v2/workload/manifests/2.0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sha256_digest(&body), secure.store.images().iter().find(|i| i.reference == "nodekit.local/workload:2.0").unwrap().digest);

    let plain = start(store(&f), None).await;
    let digest = sha256_digest(&f.big_layer);
    let (status, body) = h2_get(tokio::net::TcpStream::connect(plain.addr).await.unwrap(), &format!("/v2/workload/blobs/{digest}")).await;
    assert_eq!((status, sha256_digest(&body)), (StatusCode::OK, digest));
}
