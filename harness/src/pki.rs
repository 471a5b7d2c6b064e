//! The world PKI: a CA made when a world starts, kept in the world's temp directory, and the
//! certificates its components use, written as PEM files, plus kubeconfig writers that embed
//! them (`certificate-authority-data`, `client-certificate-data`, `client-key-data`).
//!
//! Identities follow upstream's conventions:
//! - API server serving certificate: SANs `kubernetes`, `kubernetes.default`,
//!   `kubernetes.default.svc`, `kubernetes.default.svc.cluster.local`, `localhost`, the first
//!   service address (10.96.0.1), 127.0.0.1 and the control-plane host's address;
//! - a node's client certificate: `CN=system:node:<node>, O=system:nodes`;
//! - a node's kubelet serving certificate: SANs the node name and its address;
//! - the admin: `CN=nodekit-admin, O=system:masters`; the proxy: `CN=system:kube-proxy`.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::error::{Context, Error, Result};

/// The admin user's name (its certificate's CN).
pub const ADMIN_USER: &str = "nodekit-admin";
/// The group that bypasses authorization upstream.
pub const MASTERS_GROUP: &str = "system:masters";
/// The proxy's user name.
pub const PROXY_USER: &str = "system:kube-proxy";
/// The nodes' group.
pub const NODES_GROUP: &str = "system:nodes";

/// The user name of node `node` (`system:node:<node>`).
pub fn node_user(node: &str) -> String {
    format!("system:node:{node}")
}

/// A certificate and its private key, in memory and on disk.
#[derive(Clone)]
pub struct Credential {
    /// Base name of the files (`<name>.crt`, `<name>.key`).
    pub name: String,
    /// The certificate's PEM file.
    pub cert: PathBuf,
    /// The private key's PEM file (mode 0600).
    pub key: PathBuf,
    /// The certificate as PEM.
    pub cert_pem: String,
    /// The private key as PEM (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("name", &self.name).field("cert", &self.cert).finish_non_exhaustive()
    }
}

/// A world's certificate authority and the directory its files live in.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_cert: PathBuf,
    ca_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn cert_err(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> Error {
    let what = what.into();
    move |source| Error::Certificate { what, source }
}

impl Pki {
    /// Makes a fresh CA (`CN=nodekit-world-ca`) and writes `ca.crt` / `ca.key` into `dir`
    /// (created if missing; it should be the world's temp directory).
    pub fn create(dir: &Path) -> Result<Pki> {
        fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        let key = KeyPair::generate().map_err(cert_err("generating the CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "nodekit-world-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key_pem = key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(params, key).map_err(cert_err("self-signing the CA"))?;
        let ca_pem = ca.pem();
        let ca_cert = dir.join("ca.crt");
        write_file(&ca_cert, &ca_pem, 0o644)?;
        write_file(&dir.join("ca.key"), &key_pem, 0o600)?;
        Ok(Pki { dir: dir.to_path_buf(), ca, ca_cert, ca_pem })
    }

    /// The directory holding every file of this PKI.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate's PEM file (what `--client-ca-file` and kubeconfigs trust).
    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate as DER (what TLS clients take as a root).
    pub fn ca_der(&self) -> Result<Vec<u8>> {
        use base64::Engine as _;
        let body: String = self.ca_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| crate::Error::invalid("the world CA PEM", e.to_string()))
    }

    /// The API server's serving certificate for a control plane at `cp_ip`, with `extra`
    /// SANs (IP addresses or DNS names) on top of the upstream ones and 127.0.0.1.
    pub fn api_server(&self, cp_ip: IpAddr, extra: &[&str]) -> Result<Credential> {
        let mut sans: Vec<String> = [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "localhost",
            "127.0.0.1",
            "10.96.0.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        sans.push(cp_ip.to_string());
        sans.extend(extra.iter().map(|s| s.to_string()));
        self.issue("apiserver", "kube-apiserver", &[], sans, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate `CN=<cn>, O=<orgs…>` written as `<name>.crt` / `<name>.key`.
    pub fn client(&self, name: &str, cn: &str, orgs: &[&str]) -> Result<Credential> {
        self.issue(name, cn, orgs, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Node `node`'s client certificate (`system:node:<node>` in `system:nodes`).
    pub fn node_client(&self, node: &str) -> Result<Credential> {
        self.client(&format!("node-{node}"), &node_user(node), &[NODES_GROUP])
    }

    /// Node `node`'s kubelet serving certificate (SANs: the node name and `ip`).
    pub fn kubelet_serving(&self, node: &str, ip: Ipv4Addr) -> Result<Credential> {
        let sans = vec![node.to_string(), ip.to_string()];
        self.issue(&format!("kubelet-{node}"), &node_user(node), &[NODES_GROUP], sans, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// The admin's client certificate (`nodekit-admin` in `system:masters`).
    pub fn admin(&self) -> Result<Credential> {
        self.client("admin", ADMIN_USER, &[MASTERS_GROUP])
    }

    /// The API server's client certificate towards kubelets (kubeadm's
    /// `apiserver-kubelet-client`: `kube-apiserver-kubelet-client` in `system:masters`).
    pub fn apiserver_kubelet_client(&self) -> Result<Credential> {
        self.client("apiserver-kubelet-client", "kube-apiserver-kubelet-client", &[MASTERS_GROUP])
    }

    /// The proxy's client certificate (`system:kube-proxy`).
    pub fn proxy(&self) -> Result<Credential> {
        self.client("kube-proxy", PROXY_USER, &[])
    }

    fn issue(
        &self,
        name: &str,
        cn: &str,
        orgs: &[&str],
        sans: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<Credential> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return Err(Error::invalid("credential name", format!("{name:?} is not a file name of [a-zA-Z0-9._-]")));
        }
        let what = format!("the certificate {name:?} ({cn})");
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err(what.clone()))?;
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => s.clone().try_into().map(SanType::DnsName),
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(cert_err(what.clone()))?;
        params.distinguished_name.push(DnType::CommonName, cn);
        for o in orgs {
            params.distinguished_name.push(DnType::OrganizationName, *o);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(cert_err(what.clone()))?;
        let cert = params.signed_by(&key, &self.ca).map_err(cert_err(what))?;
        let (cert_path, key_path) = (self.dir.join(format!("{name}.crt")), self.dir.join(format!("{name}.key")));
        let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
        write_file(&cert_path, &cert_pem, 0o644)?;
        write_file(&key_path, &key_pem, 0o600)?;
        Ok(Credential { name: name.to_string(), cert: cert_path, key: key_path, cert_pem, key_pem })
    }

    /// A kubeconfig for `user` at `server` (e.g. `https://10.77.0.2:6443`) trusting this CA.
    pub fn kubeconfig(&self, server: &str, user: &Credential) -> String {
        kubeconfig_yaml(server, &self.ca_pem, user)
    }

    /// Writes [`Pki::kubeconfig`] to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path, server: &str, user: &Credential) -> Result<()> {
        write_file(path, &self.kubeconfig(server, user), 0o600)
    }
}

/// A kubeconfig (cluster, user and context all named `nodekit`) for `server`, trusting
/// `ca_pem` and authenticating with `user`'s certificate, everything embedded as data.
pub fn kubeconfig_yaml(server: &str, ca_pem: &str, user: &Credential) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: nodekit\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\ncontexts:\n- name: nodekit\n  context:\n    cluster: nodekit\n    \
         user: {name}\n    namespace: default\ncurrent-context: nodekit\nusers:\n- name: {name}\n  user:\n    \
         client-certificate-data: {crt}\n    client-key-data: {key}\npreferences: {{}}\n",
        ca = b64(ca_pem),
        name = user.name,
        crt = b64(&user.cert_pem),
        key = b64(&user.key_pem),
    )
}

/// Writes `contents` to `path` with `mode` (replacing any file there).
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .ctx(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes()).ctx(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_files_and_kubeconfigs() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path()).unwrap();
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let api = pki.api_server(IpAddr::from([10, 77, 0, 2]), &["api.example"]).unwrap();
        let node = pki.node_client("node-a").unwrap();
        let serving = pki.kubelet_serving("node-a", Ipv4Addr::new(10, 77, 0, 11)).unwrap();
        for c in [&api, &node, &serving, &pki.admin().unwrap(), &pki.proxy().unwrap()] {
            assert!(c.cert.is_file() && c.key.is_file(), "{c:?}");
            let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&c.key).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "{c:?}");
            assert!(c.key_pem.contains("PRIVATE KEY"));
        }
        let kc = pki.kubeconfig("https://10.77.0.2:6443", &node);
        assert!(kc.contains("server: https://10.77.0.2:6443"));
        assert!(kc.contains("certificate-authority-data: LS0t"), "{kc}");
        assert!(kc.contains("client-certificate-data: LS0t"));
        assert!(kc.contains("client-key-data: LS0t"));
        assert!(kc.contains("user: node-node-a"));
        assert!(pki.client("../x", "x", &[]).is_err());
    }
}
