//! HTTPS: the rustls server configuration built from PEM files, and the user a verified client
//! certificate authenticates (`CN` = user name, each `O` = a group), as upstream's x509
//! authenticator does.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::audit::UserInfo;
use crate::config::TlsConfig;
use crate::error::{Error, Result};

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The user of a request without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of requests without credentials.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";

fn read_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("{what} {}: no CERTIFICATE block in the file", path.display())));
    }
    Ok(certs)
}

/// Builds the acceptor for `cfg`: TLS 1.2 and 1.3 with the ring provider, ALPN `h2` and
/// `http/1.1`, client certificates verified against `client_ca_file` when the client offers one.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs("serving certificate", &cfg.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| Error::Tls(format!("private key {}: {e}", cfg.key_file.display())))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match &cfg.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs("client CA", ca)? {
                roots.add(c).map_err(|e| Error::Tls(format!("client CA {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Tls(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(format!("serving certificate {} and key {}: {e}", cfg.cert_file.display(), cfg.key_file.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The user of a connection: from its verified client certificate, else anonymous.
pub fn user_of(peer: Option<&[CertificateDer<'_>]>) -> UserInfo {
    let leaf = peer.and_then(|chain| chain.first());
    let parsed = leaf.and_then(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok());
    let Some((_, cert)) = parsed else {
        return UserInfo { username: ANONYMOUS.into(), groups: vec![UNAUTHENTICATED.into()], ..UserInfo::default() };
    };
    let subject = cert.subject();
    let username = subject.iter_common_name().find_map(|a| a.as_str().ok()).unwrap_or("").to_string();
    let mut groups: Vec<String> =
        subject.iter_organization().filter_map(|a| a.as_str().ok()).map(str::to_string).collect();
    groups.push(AUTHENTICATED.into());
    UserInfo { username, groups, ..UserInfo::default() }
}
