//! The kubelet API's TLS: the serving certificate (`tlsCertFile`/`tlsPrivateKeyFile`, or a
//! self-signed one kept as `<root-dir>/pki/kubelet.crt|key` like upstream), and client
//! certificates verified against `authentication.x509.clientCAFile` when one is presented.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::ServeError;
use crate::config::KubeletConfiguration;

fn pem_err(path: &Path, e: impl std::fmt::Display) -> ServeError {
    ServeError::Pem { path: path.display().to_string(), message: e.to_string() }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no CERTIFICATE block"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServeError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_err(path, e))
}

/// A self-signed serving certificate for the node (PEM certificate, PEM key).
pub fn self_signed(node_name: &str, node_ip: Option<IpAddr>) -> Result<(String, String), ServeError> {
    let tls = |e: rcgen::Error| ServeError::Tls(format!("generating the self-signed certificate: {e}"));
    let mut names = vec![node_name.to_string(), "localhost".to_string(), "127.0.0.1".to_string()];
    names.extend(node_ip.map(|ip| ip.to_string()));
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names).map_err(tls)?;
    let cn = format!("{node_name}@{}", jiff::Timestamp::now().as_second());
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let cert = params.self_signed(&key).map_err(tls)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Where the serving certificate comes from: the configured files, else `<root>/pki`
/// (made there, self-signed, when missing).
fn serving_files(cfg: &KubeletConfiguration, root_dir: &Path, node_name: &str, node_ip: Option<IpAddr>) -> Result<(PathBuf, PathBuf), ServeError> {
    if let (Some(c), Some(k)) = (&cfg.tls_cert_file, &cfg.tls_private_key_file) {
        return Ok((PathBuf::from(c), PathBuf::from(k)));
    }
    let dir = root_dir.join("pki");
    let (cert, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    if read_certs(&cert).is_ok() && read_key(&key).is_ok() {
        return Ok((cert, key));
    }
    let (cert_pem, key_pem) = self_signed(node_name, node_ip)?;
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ServeError::File { what: "writing", path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    std::fs::write(&cert, cert_pem).map_err(io(&cert))?;
    write_private(&key, key_pem.as_bytes()).map_err(io(&key))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed serving certificate for the kubelet API");
    Ok((cert, key))
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(data)
}

/// The server's TLS configuration (HTTP/1.1; client certificates asked for, verified against
/// the client CA when one is configured, and optional: callers without one are left to the
/// bearer token and anonymous authenticators of [`super::auth`]).
pub fn server_config(
    cfg: &KubeletConfiguration,
    root_dir: &Path,
    node_name: &str,
    node_ip: Option<IpAddr>,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let (cert_path, key_path) = serving_files(cfg, root_dir, node_name, node_ip)?;
    let chain = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = |e: rustls::Error| ServeError::Tls(e.to_string());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(tls)?;
    let builder = match &cfg.authentication.x509.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(Path::new(ca))? {
                roots.add(c).map_err(tls)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ServeError::Tls(format!("client CA {ca}: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = KubeletConfiguration::default();
        server_config(&cfg, dir.path(), "node-a", Some("10.0.0.1".parse().unwrap())).unwrap();
        let first = std::fs::read(dir.path().join("pki/kubelet.crt")).unwrap();
        server_config(&cfg, dir.path(), "node-a", None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("pki/kubelet.crt")).unwrap(), first, "the certificate was made again");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("pki/kubelet.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not pem").unwrap();
        let mut cfg = KubeletConfiguration::default();
        cfg.tls_cert_file = Some(bad.display().to_string());
        cfg.tls_private_key_file = Some(bad.display().to_string());
        let err = server_config(&cfg, dir.path(), "n", None).unwrap_err().to_string();
        assert!(err.contains("bad.pem"), "{err}");
        let mut cfg = KubeletConfiguration::default();
        cfg.authentication.x509.client_ca_file = Some(dir.path().join("missing-ca.pem").display().to_string());
        let err = server_config(&cfg, dir.path(), "n", None).unwrap_err().to_string();
        assert!(err.contains("missing-ca.pem"), "{err}");
    }
}
