//! The kubelet API end to end: a test CA issuing client certificates, HTTPS calls to the
//! agent's kubelet API (its self-signed serving certificate trusted), and the agent started
//! in-process with a given KubeletConfiguration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::sync::CancellationToken;

pub const NODE: &str = "node-a";

/// A client certificate and its key (PEM).
pub type Identity = (String, String);

/// A test CA, written to a file the agent trusts as `authentication.x509.clientCAFile`.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(ca_path: &Path) -> Result<TestCa> {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "test-ca");
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let issuer = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate()?)?;
        std::fs::write(ca_path, issuer.pem())?;
        Ok(TestCa { issuer })
    }

    /// A client certificate for `cn`, in organization `org` when given.
    pub fn client(&self, cn: &str, org: Option<&str>) -> Result<Identity> {
        let mut client = rcgen::CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(org) = org {
            client.distinguished_name.push(rcgen::DnType::OrganizationName, org);
        }
        client.distinguished_name.push(rcgen::DnType::CommonName, cn);
        client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate()?;
        let cert = client.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// HTTPS to the kubelet API, trusting its self-signed certificate.
pub struct Kubelet {
    addr: SocketAddr,
    roots: rustls::RootCertStore,
    with_cert: tokio_rustls::TlsConnector,
    without_cert: tokio_rustls::TlsConnector,
}

impl Kubelet {
    pub fn new(addr: SocketAddr, serving_cert: &Path, client: &Identity) -> Result<Kubelet> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(serving_cert)? {
            roots.add(c?)?;
        }
        let with_cert = connector(&roots, Some(client))?;
        let without_cert = connector(&roots, None)?;
        Ok(Kubelet { addr, roots, with_cert, without_cert })
    }

    /// A connector that presents `client`.
    pub fn connector(&self, client: &Identity) -> Result<tokio_rustls::TlsConnector> {
        connector(&self.roots, Some(client))
    }

    /// One request on a fresh connection made with `connector`, with `headers`.
    pub async fn send_with(
        &self,
        connector: &tokio_rustls::TlsConnector,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let tls = connector.connect(ServerName::IpAddress(self.addr.ip().into()), tcp).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let mut req = http::Request::builder().method(method).uri(path).header("host", "kubelet");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        Ok(sender.send_request(req.body(Empty::<Bytes>::new())?).await?)
    }

    /// Status and body of a request made with `connector`.
    pub async fn call_with(&self, connector: &tokio_rustls::TlsConnector, method: &str, path: &str, headers: &[(&str, String)]) -> Result<(u16, String)> {
        let resp = self.send_with(connector, method, path, headers).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// A request with the client certificate given to [`Kubelet::new`] (`cert`), or none.
    pub async fn send(&self, cert: bool, method: &str, path: &str) -> Result<http::Response<hyper::body::Incoming>> {
        let connector = if cert { &self.with_cert } else { &self.without_cert };
        self.send_with(connector, method, path, &[]).await
    }

    pub async fn call(&self, cert: bool, method: &str, path: &str) -> Result<(u16, String)> {
        let connector = if cert { &self.with_cert } else { &self.without_cert };
        self.call_with(connector, method, path, &[]).await
    }

    /// A request without a client certificate, with `Authorization: Bearer <token>`.
    pub async fn bearer(&self, token: &str, method: &str, path: &str) -> Result<(u16, String)> {
        self.call_with(&self.without_cert, method, path, &[("authorization", format!("Bearer {token}"))]).await
    }

    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        self.call(true, "GET", path).await
    }

    pub async fn get_ok(&self, path: &str) -> Result<String> {
        let (status, body) = self.get(path).await?;
        anyhow::ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(body)
    }
}

/// A TLS connector trusting `roots`, presenting `client` when given.
fn connector(roots: &rustls::RootCertStore, client: Option<&Identity>) -> Result<tokio_rustls::TlsConnector> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone());
    let config = match client {
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes())?];
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes())?)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The agent, running in this process.
pub struct Agent {
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<node_agent::Result<()>>,
    pub kubelet_api: SocketAddr,
}

/// Starts the agent as node [`NODE`] with the KubeletConfiguration `config`; returns once the
/// kubelet API listens.
pub async fn start_agent(dir: &Path, kubeconfig: &Path, socket: &Path, config: &str) -> Result<Agent> {
    let cfg = dir.join("kubelet.yaml");
    std::fs::write(&cfg, config)?;
    let flags = <node_agent::cli::Flags as clap::Parser>::try_parse_from([
        "node-agent".to_string(),
        format!("--config={}", cfg.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--node-name={NODE}"),
        format!("--container-runtime-endpoint=unix://{}", socket.display()),
        format!("--root-dir={}", dir.join("root").display()),
        "--node-ip=127.0.0.1".into(),
        "--pod-cidr=10.244.1.0/24".into(),
        "--healthz-bind-address=127.0.0.1:0".into(),
    ])?;
    let (settings, healthz) = flags.settings()?;
    let cancel = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (c, kc) = (cancel.clone(), kubeconfig.to_path_buf());
    let task = tokio::spawn(async move {
        node_agent::agent::run(settings, &kc, healthz, c, move |l| {
            let _ = tx.send(l);
        })
        .await
    });
    let listening = tokio::time::timeout(Duration::from_secs(20), rx).await?.context("agent stopped before listening")?;
    let kubelet_api = listening.kubelet_api.context("the kubelet API is not served")?;
    Ok(Agent { cancel, task, kubelet_api })
}

/// The fake API server, fake-cri and the agent, each in this process, sharing one directory:
/// what the kubelet API tests run against.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub server: fake_apiserver::Handle,
    pub kubeconfig: PathBuf,
    pub cri: fake_cri::Handle,
    /// The test CA the agent trusts for client certificates (`client-ca.pem`).
    pub ca: TestCa,
    pub ca_path: PathBuf,
    pub agent: Agent,
}

impl Stack {
    /// Starts the API server with `server` (listening on loopback), fake-cri, and the agent with the KubeletConfiguration `config(ca_path)`. The directory
    /// is not under /tmp: fake-cri gives containers a private /tmp.
    pub async fn start(prefix: &str, server: fake_apiserver::Config, config: impl FnOnce(&Path) -> String) -> Result<Stack> {
        let _ = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
        let server = fake_apiserver::Server::start(server).await?;
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig)?;
        let socket = dir.path().join("cri.sock");
        let cri = fake_cri::FakeCri::start(fake_cri::Config::new(&socket, dir.path().join("cri-state"), &super::workload_bin())).await?;
        let ca_path = dir.path().join("client-ca.pem");
        let ca = TestCa::new(&ca_path)?;
        let agent = start_agent(dir.path(), &kubeconfig, &socket, &config(&ca_path)).await?;
        Ok(Stack { dir, server, kubeconfig, cri, ca, ca_path, agent })
    }

    /// A kubelet API client presenting `client`, trusting the agent's serving certificate.
    pub fn kubelet(&self, client: &Identity) -> Result<Kubelet> {
        Kubelet::new(self.agent.kubelet_api, &self.dir.path().join("root/pki/kubelet.crt"), client)
    }

    /// Stops the agent, then fake-cri, then the API server.
    pub async fn stop(self) -> Result<()> {
        self.agent.cancel.cancel();
        self.agent.task.await??;
        self.cri.shutdown().await?;
        self.server.shutdown().await;
        Ok(())
    }
}
