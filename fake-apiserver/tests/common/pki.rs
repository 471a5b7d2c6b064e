//! A throwaway CA, client certificates and an HTTPS server that verifies them, with
//! kube-rs clients and kubeconfigs per user (`CN` = user name, each `O` = a group).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use fake_apiserver::{Config, Handle, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

pub struct Ca(pub CertifiedIssuer<'static, KeyPair>);

pub struct Cred {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap())
    }

    pub fn issue(&self, cn: &str, orgs: &[&str], sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Cred {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        // rcgen keeps one value per attribute type: a second `O` goes in as the same OID
        // (2.5.4.10) spelled as a custom type.
        assert!(orgs.len() <= 2, "at most two organizations per certificate");
        let types = [DnType::OrganizationName, DnType::CustomDnType(vec![2, 5, 4, 10])];
        for (ty, o) in types.into_iter().zip(orgs) {
            p.distinguished_name.push(ty, *o);
        }
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.0).unwrap();
        Cred { cert: cert.pem(), key: key.serialize_pem() }
    }

    pub fn client(&self, cn: &str, orgs: &[&str]) -> Cred {
        self.issue(cn, orgs, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// An HTTPS server whose serving and client CA is one fresh CA.
pub struct Tls {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    pub h: Handle,
}

impl Tls {
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test-ca");
        let serving = ca.issue("kube-apiserver", &[], &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let write = |name: &str, s: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, s).unwrap();
            p
        };
        let tls = TlsConfig {
            cert_file: write("apiserver.crt", &serving.cert),
            key_file: write("apiserver.key", &serving.key),
            client_ca_file: Some(write("ca.crt", &ca.0.pem())),
        };
        let h = super::start_with(|c| {
            c.tls = Some(tls);
            configure(c);
        })
        .await;
        Tls { dir, ca, h }
    }

    /// A kubeconfig for a user with a certificate for `cn` in `orgs` (anonymous: `None`).
    pub fn kubeconfig(&self, user: Option<(&str, &[&str])>) -> String {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let user = match user {
            Some((cn, orgs)) => {
                let c = self.ca.client(cn, orgs);
                format!("    client-certificate-data: {}\n    client-key-data: {}\n", b(&c.cert), b(&c.key))
            }
            None => "    {}\n".to_string(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
             contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: default\ncurrent-context: t\nusers:\n- name: u\n  user:\n{user}",
            self.h.url(),
            b(&self.ca.0.pem())
        )
    }

    /// The kubeconfig of [`Tls::kubeconfig`] written to a file named after `name`.
    pub fn kubeconfig_file(&self, name: &str, user: Option<(&str, &[&str])>) -> PathBuf {
        let p = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&p, self.kubeconfig(user)).unwrap();
        p
    }

    /// A kube-rs client for a user with a certificate for `cn` in `orgs`.
    pub async fn client(&self, cn: &str, orgs: &[&str]) -> kube::Client {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig(Some((cn, orgs)))).unwrap();
        let mut cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await.unwrap();
        cfg.connect_timeout = Some(Duration::from_secs(5));
        kube::Client::try_from(cfg).unwrap()
    }
}

/// A raw request through `client`: (status code, body as JSON, or as a string when not JSON).
pub async fn call(client: &kube::Client, method: &str, path: &str, headers: &[(&str, &str)], body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let ct = if method == "PATCH" { "application/merge-patch+json" } else { "application/json" };
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    let req = req.header("content-type", ct).body(kube::client::Body::from(bytes)).unwrap();
    let resp = client.send(req).await.expect("request is answered");
    let code = resp.status().as_u16();
    let b: Bytes = resp.into_body().collect_bytes().await.unwrap();
    let v = serde_json::from_slice(&b).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&b).into_owned()));
    (code, v)
}
