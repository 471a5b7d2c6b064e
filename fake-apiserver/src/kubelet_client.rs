//! Reaching a node's kubelet, as upstream's `--kubelet-client-certificate`,
//! `--kubelet-client-key` and `--kubelet-certificate-authority`: HTTPS to the node's InternalIP
//! and `status.daemonEndpoints.kubeletEndpoint.Port`, with this server's client certificate.
//! Without a CA the kubelet's serving certificate is not verified (upstream's default).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::KubeletClientConfig;
use crate::error::{ApiError, Error, Result};

/// The kubelet port when a node does not publish one (upstream's `ports.KubeletPort`).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long dialing a kubelet may take (upstream's kubelet client dial timeout is 30 s).
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Dials kubelets over TLS.
#[derive(Clone)]
pub struct KubeletDialer {
    tls: TlsConnector,
}

impl std::fmt::Debug for KubeletDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeletDialer")
    }
}

/// Accepts any serving certificate: upstream's behaviour without
/// `--kubelet-certificate-authority`. Signatures are still checked.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn pem_certs(what: &str, path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("{what} {}: {e}", path.display())))
}

impl KubeletDialer {
    /// A dialer presenting `cfg`'s certificate (none when `cfg` is `None`).
    pub fn new(cfg: Option<&KubeletClientConfig>) -> Result<KubeletDialer> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let builder = match cfg.and_then(|c| c.ca_file.as_ref()) {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in pem_certs("kubelet certificate authority", ca)? {
                    roots.add(c).map_err(|e| Error::Tls(format!("kubelet certificate authority {}: {e}", ca.display())))?;
                }
                builder.with_root_certificates(roots)
            }
            None => builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyServer(provider))),
        };
        let mut config = match cfg {
            Some(c) => {
                let certs = pem_certs("kubelet client certificate", &c.cert_file)?;
                let key = PrivateKeyDer::from_pem_file(&c.key_file)
                    .map_err(|e| Error::Tls(format!("kubelet client key {}: {e}", c.key_file.display())))?;
                builder.with_client_auth_cert(certs, key).map_err(|e| Error::Tls(format!("kubelet client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        // Streaming upgrades need HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletDialer { tls: TlsConnector::from(Arc::new(config)) })
    }

    /// A TLS connection to `addr`.
    pub async fn dial(&self, addr: SocketAddr) -> std::result::Result<TlsStream<TcpStream>, ApiError> {
        let unreachable = |e: String| ApiError::new(503, "ServiceUnavailable", format!("error dialing backend: {e}"));
        let connect = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| unreachable(format!("dial tcp {addr}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::IpAddress(addr.ip().into());
            self.tls.connect(name, tcp).await.map_err(|e| unreachable(format!("tls: {e}")))
        };
        tokio::time::timeout(DIAL_TIMEOUT, connect).await.map_err(|_| unreachable(format!("dial tcp {addr}: i/o timeout")))?
    }
}

/// Where node `node`'s kubelet listens: its InternalIP (ExternalIP when it has none, as
/// kubeadm's `--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname`) and
/// `port` or its published kubelet port.
pub fn kubelet_addr(node: &Value, port: Option<u16>) -> std::result::Result<SocketAddr, ApiError> {
    let name = node["metadata"]["name"].as_str().unwrap_or("");
    let addrs = node["status"]["addresses"].as_array().cloned().unwrap_or_default();
    let of = |t: &str| addrs.iter().find(|a| a["type"] == t).and_then(|a| a["address"].as_str()).and_then(|s| s.parse().ok());
    let ip: std::net::IpAddr = of("InternalIP")
        .or_else(|| of("ExternalIP"))
        .ok_or_else(|| ApiError::bad_request(format!("node {name} has no InternalIP or ExternalIP address")))?;
    let published = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
    Ok(SocketAddr::new(ip, port.or(published).unwrap_or(DEFAULT_KUBELET_PORT)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn address_and_port_from_the_node() {
        let n = json!({"metadata": {"name": "a"}, "status": {
            "addresses": [{"type": "Hostname", "address": "a"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        assert_eq!(kubelet_addr(&n, None).unwrap(), "10.0.0.5:12345".parse().unwrap());
        assert_eq!(kubelet_addr(&n, Some(4194)).unwrap(), "10.0.0.5:4194".parse().unwrap());
        let bare = json!({"metadata": {"name": "b"}, "status": {"addresses": [{"type": "ExternalIP", "address": "10.0.0.6"}]}});
        assert_eq!(kubelet_addr(&bare, None).unwrap(), "10.0.0.6:10250".parse().unwrap());
        let none = json!({"metadata": {"name": "c"}, "status": {}});
        assert_eq!(kubelet_addr(&none, None).unwrap_err().code, 400);
    }
}
