//! Fixtures of the integration tests: image archives built here, a served store, and a small
//! HTTP client over loopback.
#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use oci_registry::Store;
use oci_registry::digest::sha256_digest;
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// What containerd sends as `Accept` for manifests.
pub const RUNTIME_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

/// The architecture of this machine as platforms name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn tarball(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len() })
}

/// A layer of `len` deterministic bytes.
pub fn layer(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// An OCI layout being built.
#[derive(Default)]
struct Layout {
    blobs: Vec<Vec<u8>>,
    entries: Vec<Value>,
}

impl Layout {
    fn image(&mut self, label: &str, layers: &[&[u8]]) -> Vec<u8> {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
        let config = serde_json::to_vec(&json!({ "os": "linux", "config": { "Labels": { "l": label } }, "rootfs": { "type": "layers", "diff_ids": diff_ids } })).unwrap();
        let layer_descs: Vec<Value> = layers.iter().map(|l| descriptor("application/vnd.oci.image.layer.v1.tar", l)).collect();
        let config_desc = descriptor("application/vnd.oci.image.config.v1+json", &config);
        let manifest = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layer_descs })).unwrap();
        self.blobs.push(config);
        self.blobs.extend(layers.iter().map(|l| l.to_vec()));
        self.blobs.push(manifest.clone());
        manifest
    }

    fn name(&mut self, media_type: &str, bytes: &[u8], name: &str) {
        let mut d = descriptor(media_type, bytes);
        d["annotations"] = json!({ "io.containerd.image.name": name, "org.opencontainers.image.ref.name": name });
        self.entries.push(d);
    }

    fn tar(&self) -> Vec<u8> {
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries });
        let mut files = vec![
            ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json".to_string(), serde_json::to_vec(&index).unwrap()),
        ];
        for b in &self.blobs {
            files.push((format!("blobs/sha256/{}", sha256_digest(b).trim_start_matches("sha256:")), b.clone()));
        }
        tarball(&files)
    }
}

/// What the fixture archives hold.
pub struct Fixture {
    /// OCI layout: `nodekit.local/workload` tags 1.0, 1.1, 2.0; the agnhost stand-in sharing
    /// the workload's big layer; `nodekit.local/multi:1`, an index for this host and another
    /// architecture.
    pub oci: Vec<u8>,
    /// docker-archive: `busybox:latest` with an uncompressed and a gzipped layer, and
    /// `other.io/workload:1.0` (the path and tag of the OCI layout's `nodekit.local/workload:1.0`).
    pub docker: Vec<u8>,
    /// The 64 KiB layer shared by the workload and agnhost images.
    pub big_layer: Vec<u8>,
    /// A layer only the agnhost image has.
    pub agnhost_layer: Vec<u8>,
    /// The manifest of the index's child for this host.
    pub native_child: Vec<u8>,
    /// The layer of `other.io/workload:1.0`.
    pub other_layer: Vec<u8>,
}

pub fn fixture() -> Fixture {
    let big_layer = layer(1, 64 * 1024);
    let agnhost_layer = layer(2, 300);
    let mut l = Layout::default();
    for tag in ["1.0", "1.1", "2.0"] {
        let m = l.image(&format!("workload {tag}"), &[&big_layer]);
        l.name(OCI_MANIFEST, &m, &format!("nodekit.local/workload:{tag}"));
    }
    let m = l.image("agnhost", &[&big_layer, &agnhost_layer]);
    l.name(OCI_MANIFEST, &m, "registry.k8s.io/e2e-test-images/agnhost:2.52");
    let other_arch = if host_arch() == "arm64" { "amd64" } else { "arm64" };
    let other = l.image("other", &[&layer(3, 100)]);
    let native_child = l.image("native", &[&layer(4, 100)]);
    let child = |m: &[u8], arch: &str| {
        let mut d = descriptor(OCI_MANIFEST, m);
        d["platform"] = json!({ "os": "linux", "architecture": arch });
        d
    };
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child(&other, other_arch), child(&native_child, host_arch())] })).unwrap();
    l.blobs.push(index.clone());
    l.name(OCI_INDEX, &index, "nodekit.local/multi:1");

    let plain = layer(5, 5000);
    let compressed = gzip(&layer(6, 5000));
    let ids = [sha256_digest(&plain), sha256_digest(&layer(6, 5000))];
    let config = serde_json::to_vec(&json!({ "os": "linux", "rootfs": { "type": "layers", "diff_ids": ids } })).unwrap();
    let other_layer = layer(7, 700);
    let other_config = serde_json::to_vec(&json!({ "os": "linux", "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&other_layer)] } })).unwrap();
    let listing = json!([
        { "Config": "config.json", "RepoTags": ["busybox:latest"], "Layers": ["a/layer.tar", "b/layer.tar"] },
        { "Config": "other.json", "RepoTags": ["other.io/workload:1.0"], "Layers": ["c/layer.tar"] },
    ]);
    let docker = tarball(&[
        ("manifest.json".into(), serde_json::to_vec(&listing).unwrap()),
        ("config.json".into(), config),
        ("a/layer.tar".into(), plain),
        ("b/layer.tar".into(), compressed),
        ("other.json".into(), other_config),
        ("c/layer.tar".into(), other_layer.clone()),
    ]);
    Fixture { oci: l.tar(), docker, big_layer, agnhost_layer, native_child, other_layer }
}

/// A store with both fixture archives (the OCI layout gzip-compressed).
pub fn store(f: &Fixture) -> Store {
    let mut store = Store::new();
    store.load_archive_bytes("fixture-oci.tar.gz", &gzip(&f.oci)).unwrap();
    store.load_archive_bytes("fixture-docker.tar", &f.docker).unwrap();
    store
}

/// A running registry.
pub struct Server {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    pub cancel: CancellationToken,
    pub task: JoinHandle<oci_registry::Result<()>>,
}

/// Serves `store` on a loopback port.
pub async fn start(store: Store, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = Arc::new(store);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(oci_registry::serve(listener, store.clone(), tls, cancel.clone()));
    Server { addr, store, cancel, task }
}

/// A response as received.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The header `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// Asserts this is the spec's error with `status` and `code`.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        let body = self.json();
        assert_eq!(body["errors"][0]["code"], code, "{body}");
        assert!(body["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    }
}

/// One HTTP/1.1 request on its own connection over `io`.
pub async fn request_on<I>(io: I, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}

/// One plain HTTP/1.1 request to `addr`.
pub async fn request(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    request_on(TcpStream::connect(addr).await.unwrap(), method, path, headers).await
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::GET, path, &[]).await
}
