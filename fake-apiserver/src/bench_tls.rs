//! The secure half of the benchmark ([`crate::bench`]): the server serves HTTPS with a serving
//! certificate from a throwaway CA, verifies client certificates against that CA and
//! authorizes every request (Node,RBAC). The benchmark's clients present an x509 client
//! certificate of [`BENCH_USER`], a user outside `system:masters` whom a ClusterRole and
//! ClusterRoleBinding (created through the API by an admin in `system:masters`) allow exactly
//! what the benchmark does, so every one of its requests goes through RBAC.
//!
//! The client is hyper-util's pooled client, as in the plain run, over a rustls (ring)
//! connector offering only `http/1.1`, so both runs use the same HTTP version, concurrency and
//! connection reuse.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;

use crate::bench::{self, BenchClient, BenchOpts, RunFigures};
use crate::config::{Config, TlsConfig};
use crate::error::{Error, Result};
use crate::http::authz::{DECISION_ANNOTATION, REASON_ANNOTATION};
use crate::server::Handle;

/// The user the benchmark's requests are made as (its certificate's CN; no groups).
pub const BENCH_USER: &str = "bench-user";
/// The admin that grants [`BENCH_USER`] its role (CN; in `system:masters`).
pub const BENCH_ADMIN: &str = "bench-admin";
/// The name of the ClusterRole and ClusterRoleBinding made for [`BENCH_USER`].
pub const BENCH_ROLE: &str = "nodekit-bench";
/// The group that bypasses authorization.
const MASTERS: &str = "system:masters";

fn tls_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Tls(format!("benchmark PKI, {what}: {e}"))
}

fn write_file(dir: &Path, name: &str, contents: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|source| Error::Write { path: path.display().to_string(), source })?;
    Ok(path)
}

/// A throwaway CA in a temporary directory with the server's serving certificate, key and
/// client CA bundle written there ([`Pki::tls`]).
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The server's HTTPS files.
    pub tls: TlsConfig,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki").field("tls", &self.tls).finish_non_exhaustive()
    }
}

impl Pki {
    /// A fresh CA, a serving certificate for 127.0.0.1 and localhost, and their files.
    pub fn new() -> Result<Pki> {
        let dir = tempfile::tempdir().map_err(|e| Error::Tls(format!("benchmark PKI, temporary directory: {e}")))?;
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "nodekit-bench-ca");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().map_err(tls_err("CA key"))?;
        let ca = CertifiedIssuer::self_signed(p, key).map_err(tls_err("CA certificate"))?;
        let client_ca_file = Some(write_file(dir.path(), "ca.crt", &ca.pem())?);
        let tls = TlsConfig { cert_file: dir.path().join("apiserver.crt"), key_file: dir.path().join("apiserver.key"), client_ca_file };
        let pki = Pki { tls, ca, dir };
        let (cert, key) = pki.issue("kube-apiserver", None, &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth)?;
        write_file(pki.dir.path(), "apiserver.crt", &cert.pem())?;
        write_file(pki.dir.path(), "apiserver.key", &key.serialize_pem())?;
        Ok(pki)
    }

    fn issue(&self, cn: &str, org: Option<&str>, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Result<(rcgen::Certificate, KeyPair)> {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).map_err(tls_err("certificate parameters"))?;
        p.distinguished_name.push(DnType::CommonName, cn);
        if let Some(o) = org {
            p.distinguished_name.push(DnType::OrganizationName, o);
        }
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().map_err(tls_err("key"))?;
        let cert = p.signed_by(&key, &self.ca).map_err(tls_err("signing"))?;
        Ok((cert, key))
    }

    /// A connector presenting a client certificate for `cn` (in group `org`) and trusting
    /// this CA only.
    pub fn connector(&self, cn: &str, org: Option<&str>) -> Result<TlsConnector> {
        let (cert, key) = self.issue(cn, org, &[], ExtendedKeyUsagePurpose::ClientAuth)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).map_err(|e| Error::Tls(format!("benchmark PKI, CA: {e}")))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::Tls(format!("benchmark client certificate for {cn}: {e}")))?;
        // HTTP/1.1 only, as the plain run's client: same connection reuse, same framing.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConnector(tokio_rustls::TlsConnector::from(Arc::new(config))))
    }
}

/// Connects TCP (TCP_NODELAY) and runs the TLS handshake; hyper-util's client pools the
/// connections it makes.
#[derive(Clone)]
pub struct TlsConnector(tokio_rustls::TlsConnector);

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConnector")
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl tower_service::Service<Uri> for TlsConnector {
    type Response = TlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let host = dst.host().ok_or_else(|| invalid(format!("{dst}: no host")))?.trim_matches(['[', ']']).to_string();
            let port = dst.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone()).map_err(|e| invalid(format!("{host}: {e}")))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(TlsStream(TokioIo::new(tls.connect(name, tcp).await?)))
        })
    }
}

/// A client TLS connection as hyper's IO.
pub struct TlsStream(TokioIo<tokio_rustls::client::TlsStream<TcpStream>>);

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsStream")
    }
}

impl Connection for TlsStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for TlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: hyper::rt::ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}

/// What the secure server's audit log says about authorization of the benchmark's requests.
#[derive(Debug, Clone, Default)]
pub struct RbacEvidence {
    /// Pod creates by [`BENCH_USER`] in the audit log.
    pub creates_audited: usize,
    /// Those with `authorization.k8s.io/decision: allow` and an `RBAC: allowed by` reason.
    pub creates_allowed_by_rbac: usize,
    /// The reason of one of them.
    pub reason: String,
    /// Status of a request outside the role ([`BENCH_USER`] reading secrets): 403 when RBAC
    /// is consulted.
    pub out_of_role_status: u16,
}

impl RbacEvidence {
    /// Every create allowed by RBAC and the out-of-role request refused.
    pub fn rbac_consulted(&self) -> bool {
        self.creates_audited > 0 && self.creates_allowed_by_rbac == self.creates_audited && self.out_of_role_status == 403
    }

    fn from_audit(handle: &Handle, out_of_role_status: u16) -> RbacEvidence {
        let mut ev = RbacEvidence { out_of_role_status, ..RbacEvidence::default() };
        let by_user = |e: &crate::AuditEntry| e.user.as_ref().is_some_and(|u| u.username == BENCH_USER);
        for e in handle.audit().iter().filter(|e| e.verb == "create" && e.path == "/api/v1/namespaces/bench/pods" && by_user(e)) {
            ev.creates_audited += 1;
            let allowed = e.annotations.get(DECISION_ANNOTATION).is_some_and(|d| d == "allow");
            let reason = e.annotations.get(REASON_ANNOTATION).map(String::as_str).unwrap_or("");
            if allowed && reason.starts_with("RBAC: allowed by") {
                ev.creates_allowed_by_rbac += 1;
                if ev.reason.is_empty() {
                    ev.reason = reason.to_string();
                }
            }
        }
        ev
    }
}

impl fmt::Display for RbacEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = if self.rbac_consulted() { "yes" } else { "NO" };
        writeln!(f, "RBAC consulted in the secure run: {yes} (audit log)")?;
        writeln!(f, "    pod creates by {BENCH_USER} allowed by RBAC: {} of {}: {}", self.creates_allowed_by_rbac, self.creates_audited, self.reason)?;
        writeln!(f, "    {BENCH_USER} listing secrets (outside its role): {}", self.out_of_role_status)
    }
}

/// The secure server's configuration: [`bench::base_config`] with HTTPS, client certificates
/// and authorization. The root CA publisher stays off so that pods get no injected
/// `kube-api-access` volume: both runs store the same pods.
pub fn secure_config(pki: &Pki) -> Config {
    Config { tls: Some(pki.tls.clone()), authorization: true, root_ca_publisher: false, ..bench::base_config() }
}

/// Through `admin` (in `system:masters`): the `bench` namespace, and a ClusterRole and
/// ClusterRoleBinding allowing [`BENCH_USER`] what the benchmark does and nothing else.
pub async fn grant(admin: &BenchClient<TlsConnector>, base: &str) -> Result<()> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    bench::expect(admin, "POST", &format!("{base}/api/v1/namespaces"), Some(ns), 201).await?;
    let rbac = format!("{base}/apis/rbac.authorization.k8s.io/v1");
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": BENCH_ROLE},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]},
        ],
    });
    bench::expect(admin, "POST", &format!("{rbac}/clusterroles"), Some(role), 201).await?;
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": BENCH_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": BENCH_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": BENCH_USER}],
    });
    bench::expect(admin, "POST", &format!("{rbac}/clusterrolebindings"), Some(binding), 201).await?;
    Ok(())
}

/// A finished secure run; the server is still running (shut it down with the handle).
pub struct SecureRun {
    pub figures: RunFigures,
    pub rbac: RbacEvidence,
    pub handle: Handle,
    /// The benchmark's client ([`BENCH_USER`]).
    pub client: BenchClient<TlsConnector>,
    /// The CA and files the server was started with.
    pub pki: Pki,
}

/// The secure run: HTTPS, [`BENCH_USER`]'s client certificate, Node,RBAC authorization.
pub async fn run_secure(opts: &BenchOpts) -> Result<SecureRun> {
    let pki = Pki::new()?;
    let client = bench::client(pki.connector(BENCH_USER, None)?, opts.concurrency);
    let admin = bench::client(pki.connector(BENCH_ADMIN, Some(MASTERS))?, 1);
    let (handle, start_to_ready) = bench::measure_start(secure_config(&pki), &client).await?;
    let measured = async {
        grant(&admin, &handle.url()).await?;
        let figures = bench::measure(&handle, &client, opts, start_to_ready).await?;
        let probe = format!("{}/api/v1/namespaces/bench/secrets", handle.url());
        let (status, _) = bench::request(&client, "GET", &probe, None).await?;
        Ok::<_, Error>((figures, RbacEvidence::from_audit(&handle, status)))
    };
    match measured.await {
        Ok((figures, rbac)) => Ok(SecureRun { figures, rbac, handle, client, pki }),
        Err(e) => {
            handle.shutdown().await;
            Err(e)
        }
    }
}
