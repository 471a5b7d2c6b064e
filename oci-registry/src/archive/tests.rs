//! Loading archives built here with the `tar` crate: OCI layouts, docker-archives, and broken ones.

use crate::digest::sha256_digest;
use crate::error::Error;
use crate::media::*;
use crate::store::Store;
use serde_json::{Value, json};
use std::io::Write;

/// A tarball of `(path, content)` regular files.
fn tarball(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    tarball_with_links(files, &[])
}

/// A tarball of `(path, content)` regular files, then symbolic links `(path, target)`.
fn tarball_with_links(files: &[(String, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    for (path, target) in links {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, path, target).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len() })
}

fn blob_path(bytes: &[u8]) -> String {
    format!("blobs/sha256/{}", sha256_digest(bytes).trim_start_matches("sha256:"))
}

/// An OCI layout under construction: blobs and `index.json` entries.
#[derive(Default)]
struct Layout {
    blobs: Vec<Vec<u8>>,
    entries: Vec<Value>,
}

impl Layout {
    /// Adds an image manifest (config labelled `label`, the given layers) and returns its bytes.
    fn image(&mut self, label: &str, layers: &[&[u8]]) -> Vec<u8> {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
        let config = serde_json::to_vec(&json!({ "architecture": "amd64", "os": "linux", "config": { "Labels": { "l": label } }, "rootfs": { "type": "layers", "diff_ids": diff_ids } })).unwrap();
        let layer_descs: Vec<Value> = layers.iter().map(|l| descriptor(OCI_LAYER_TAR, l)).collect();
        let manifest = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, &config), "layers": layer_descs })).unwrap();
        self.blobs.push(config);
        self.blobs.extend(layers.iter().map(|l| l.to_vec()));
        self.blobs.push(manifest.clone());
        manifest
    }

    /// Lists `bytes` (of `media_type`) in `index.json` with the given annotations.
    fn entry(&mut self, media_type: &str, bytes: &[u8], annotations: Value) {
        let mut d = descriptor(media_type, bytes);
        if !annotations.is_null() {
            d["annotations"] = annotations;
        }
        self.entries.push(d);
    }

    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries });
        let mut files = vec![
            ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json".to_string(), serde_json::to_vec(&index).unwrap()),
        ];
        files.extend(self.blobs.iter().map(|b| (blob_path(b), b.clone())));
        files
    }

    fn tar(&self) -> Vec<u8> {
        tarball(&self.files())
    }
}

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

fn names(workload: &str) -> Value {
    json!({ "io.containerd.image.name": workload, "org.opencontainers.image.ref.name": workload })
}

/// Two images sharing a layer, as nodekit writes them; the second named by containerd's
/// annotation only. Returns the layout and the two manifests.
fn two_images() -> (Layout, Vec<u8>, Vec<u8>) {
    let mut l = Layout::default();
    let a = l.image("workload", &[b"shared layer", b"workload layer"]);
    let b = l.image("agnhost", &[b"shared layer"]);
    l.entry(OCI_MANIFEST, &a, names("nodekit.local/workload:1.0"));
    l.entry(OCI_MANIFEST, &b, json!({ "io.containerd.image.name": "registry.k8s.io/e2e-test-images/agnhost:2.52" }));
    (l, a, b)
}

#[test]
fn oci_layout_with_two_images_sharing_a_layer() {
    let (layout, a, b) = two_images();
    let mut store = Store::new();
    let images = store.load_archive_bytes("two.tar", &layout.tar()).unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].reference, "nodekit.local/workload:1.0");
    assert_eq!((images[0].repository.as_str(), images[0].tag.as_deref()), ("workload", Some("1.0")));
    assert_eq!(images[0].digest, sha256_digest(&a));
    assert_eq!(images[0].media_type, OCI_MANIFEST);
    assert_eq!(images[1].repository, "e2e-test-images/agnhost");
    assert_eq!(images[1].digest, sha256_digest(&b));
    assert_eq!(store.registry_hosts(), ["nodekit.local", "registry.k8s.io"]);
    assert_eq!(store.repositories(), ["e2e-test-images/agnhost", "nodekit.local/workload", "registry.k8s.io/e2e-test-images/agnhost", "workload"]);
    assert_eq!(store.tags("workload"), Some(vec!["1.0".to_string()]));
    assert_eq!(store.tags("nodekit.local/workload"), Some(vec!["1.0".to_string()]));
    assert_eq!(store.tags("nope"), None);
    let workload = store.repository("workload", None).unwrap();
    let agnhost = store.repository("e2e-test-images/agnhost", None).unwrap();
    let shared = sha256_digest(b"shared layer");
    let own = sha256_digest(b"workload layer");
    assert!(workload.reaches(&shared) && agnhost.reaches(&shared));
    assert!(workload.reaches(&own) && !agnhost.reaches(&own));
    assert_eq!(store.blob(&shared).as_deref(), Some(&b"shared layer"[..]));
    assert_eq!(store.manifest(&sha256_digest(&b)).unwrap().bytes, b);
    // Blobs are stored once, and config blobs are not manifests.
    assert!(store.manifest(&shared).is_none());
    assert_eq!(store.images(), images);
}

#[test]
fn gzip_compressed_archive_loads_the_same() {
    let (layout, a, _) = two_images();
    let mut store = Store::new();
    let images = store.load_archive_bytes("two.tar.gz", &gzip(&layout.tar())).unwrap();
    assert_eq!(images[0].digest, sha256_digest(&a));
    // Loading the same content again is harmless.
    store.load_archive_bytes("again.tar", &layout.tar()).unwrap();
    assert_eq!(store.images().len(), 2);
}

#[test]
fn archive_is_read_from_a_file() {
    let (layout, _, _) = two_images();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("images.tar");
    std::fs::write(&path, layout.tar()).unwrap();
    let mut store = Store::new();
    assert_eq!(store.load_archive(&path).unwrap().len(), 2);
    let err = store.load_archive(dir.path().join("missing.tar")).unwrap_err();
    assert!(matches!(&err, Error::Read { file, .. } if file.ends_with("missing.tar")), "{err}");
}

#[test]
fn index_is_served_with_its_present_children() {
    let mut l = Layout::default();
    let amd64 = l.image("amd64", &[b"amd64 layer"]);
    let absent = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let child = |m: &[u8], arch: &str| {
        let mut d = descriptor(OCI_MANIFEST, m);
        d["platform"] = json!({ "os": "linux", "architecture": arch });
        d
    };
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child(&amd64, "amd64"), child(absent, "arm64")] })).unwrap();
    l.blobs.push(index.clone());
    l.entry(OCI_INDEX, &index, names("docker.io/library/multi:1"));
    let mut store = Store::new();
    let images = store.load_archive_bytes("index.tar", &l.tar()).unwrap();
    assert_eq!((images[0].repository.as_str(), images[0].media_type.as_str()), ("library/multi", OCI_INDEX));
    let repo = store.repository("library/multi", None).unwrap();
    assert!(repo.reaches(&sha256_digest(&amd64)) && repo.reaches(&sha256_digest(b"amd64 layer")));
    assert_eq!(store.manifest(&sha256_digest(&amd64)).unwrap().media_type, OCI_MANIFEST);
    assert!(store.manifest(&sha256_digest(absent)).is_none());

    // An index none of whose children is present is refused.
    let mut l = Layout::default();
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [child(absent, "arm64")] })).unwrap();
    l.blobs.push(index.clone());
    l.entry(OCI_INDEX, &index, names("x.io/multi:1"));
    let err = Store::new().load_archive_bytes("empty-index.tar", &l.tar()).unwrap_err();
    assert!(matches!(err, Error::Missing { .. }), "{err}");
}

/// A docker-archive: `manifest.json` entries over `files`, plus symbolic links `(path, target)`.
fn docker_tar(manifest: Value, files: &[(String, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
    let mut all = vec![("manifest.json".to_string(), serde_json::to_vec(&manifest).unwrap())];
    all.extend(files.iter().cloned());
    tarball_with_links(&all, links)
}

fn docker_config(diff_ids: &[&[u8]]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|l| sha256_digest(l)).collect();
    serde_json::to_vec(&json!({ "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": ids } })).unwrap()
}

#[test]
fn docker_archive_with_two_layers_and_two_tags() {
    let plain = b"layer one, uncompressed".to_vec();
    let compressed = gzip(b"layer two, gzipped");
    let config = docker_config(&[&plain, b"layer two, gzipped"]);
    let listing = json!([{ "Config": "cfg.json", "RepoTags": ["busybox:latest", "quay.io/tools/box:1"], "Layers": ["a/layer.tar", "b/layer.tar"] }]);
    let files = [("cfg.json".into(), config.clone()), ("a/layer.tar".into(), plain.clone()), ("b/layer.tar".into(), compressed.clone())];
    let mut store = Store::new();
    let images = store.load_archive_bytes("save.tar", &docker_tar(listing, &files, &[])).unwrap();
    let refs: Vec<&str> = images.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(refs, ["docker.io/library/busybox:latest", "quay.io/tools/box:1"]);
    assert_eq!(images[0].digest, images[1].digest);
    assert_eq!(images[0].media_type, DOCKER_MANIFEST);
    assert_eq!(store.registry_hosts(), ["docker.io", "quay.io"]);
    assert_eq!(store.repositories(), ["docker.io/library/busybox", "library/busybox", "quay.io/tools/box", "tools/box"]);
    let manifest = store.manifest(&images[0].digest).unwrap();
    assert_eq!(sha256_digest(&manifest.bytes), images[0].digest);
    let doc: Value = serde_json::from_slice(&manifest.bytes).unwrap();
    assert_eq!(doc["schemaVersion"], 2);
    assert_eq!(doc["mediaType"], DOCKER_MANIFEST);
    assert_eq!(doc["config"], descriptor(DOCKER_CONFIG, &config));
    assert_eq!(doc["layers"], json!([descriptor(DOCKER_LAYER, &plain), descriptor(DOCKER_LAYER_GZIP, &compressed)]));
    let repo = store.repository("tools/box", None).unwrap();
    for blob in [&config, &plain, &compressed] {
        assert!(repo.reaches(&sha256_digest(blob)));
        assert_eq!(store.blob(&sha256_digest(blob)).as_deref(), Some(blob.as_slice()));
    }
}

#[test]
fn docker_archive_layers_may_be_links() {
    let layer = b"the one layer".to_vec();
    let listing = json!([
        { "Config": "one.json", "RepoTags": ["x.io/one:1"], "Layers": ["aaa/layer.tar"] },
        { "Config": "two.json", "RepoTags": ["x.io/two:1"], "Layers": ["bbb/layer.tar"] },
    ]);
    let files = [
        ("one.json".into(), docker_config(&[&layer])),
        ("two.json".into(), [docker_config(&[&layer]), b" ".to_vec()].concat()),
        ("aaa/layer.tar".into(), layer.clone()),
    ];
    let mut store = Store::new();
    let images = store.load_archive_bytes("linked.tar", &docker_tar(listing, &files, &[("bbb/layer.tar", "../aaa/layer.tar")])).unwrap();
    assert_ne!(images[0].digest, images[1].digest);
    assert!(store.repository("two", None).unwrap().reaches(&sha256_digest(&layer)));
}

/// The error of loading `data`.
fn load_error(data: &[u8]) -> Error {
    Store::new().load_archive_bytes("broken.tar", data).expect_err("archive must be refused")
}

#[test]
fn broken_oci_layouts_are_refused_with_what_is_wrong() {
    let (layout, _, _) = two_images();
    let missing = sha256_digest(b"workload layer");
    let without = |path: &str| -> Vec<(String, Vec<u8>)> { layout.files().into_iter().filter(|(p, _)| p != path).collect() };
    let err = load_error(&tarball(&without(&blob_path(b"workload layer"))));
    assert!(matches!(&err, Error::Missing { file, member, .. } if file == "broken.tar" && member.contains(&missing)), "{err}");
    assert!(err.to_string().contains("broken.tar") && err.to_string().contains(&missing), "{err}");

    let mut tampered = layout.files();
    tampered.iter_mut().filter(|(p, _)| *p == blob_path(b"workload layer")).for_each(|(_, d)| d[0] ^= 1);
    let err = load_error(&tarball(&tampered));
    assert!(matches!(&err, Error::DigestMismatch { expected, .. } if *expected == missing), "{err}");

    let mut l = Layout::default();
    let m = l.image("x", &[b"layer"]);
    l.entry(OCI_MANIFEST, &m, json!({ "org.opencontainers.image.ref.name": "1.0" }));
    assert!(matches!(load_error(&l.tar()), Error::Unnamed { .. }));
    l.entries[0]["annotations"] = Value::Null;
    let err = load_error(&l.tar());
    assert!(matches!(&err, Error::Unnamed { what, .. } if what.contains("entry 0")), "{err}");
    l.entries[0]["annotations"] = json!({ "org.opencontainers.image.ref.name": "Upper/Case:1" });
    assert!(matches!(load_error(&l.tar()), Error::Reference { .. }));
    l.entries[0]["annotations"] = names("x.io/a:1");
    l.entries[0]["size"] = json!(m.len() + 1);
    assert!(matches!(load_error(&l.tar()), Error::SizeMismatch { .. }));
    l.entries[0]["size"] = json!(m.len());
    l.entries[0]["digest"] = json!("sha256:1234");
    assert!(matches!(load_error(&l.tar()), Error::Digest { .. }));
    l.entries[0]["digest"] = json!(sha256_digest(&m));
    l.entries[0]["mediaType"] = json!("application/vnd.example+json");
    assert!(matches!(load_error(&l.tar()), Error::Invalid { .. }));
    l.entries[0]["mediaType"] = json!(OCI_MANIFEST);
    assert!(Store::new().load_archive_bytes("fixed.tar", &l.tar()).is_ok());
}

#[test]
fn broken_docker_archives_are_refused_with_what_is_wrong() {
    let layer = b"layer".to_vec();
    let files = [("c.json".to_string(), docker_config(&[&layer])), ("l.tar".to_string(), layer.clone())];
    let entry = |tags: Value, layers: Value| json!([{ "Config": "c.json", "RepoTags": tags, "Layers": layers }]);
    let err = load_error(&docker_tar(entry(Value::Null, json!(["l.tar"])), &files, &[]));
    assert!(matches!(&err, Error::Unnamed { hint, .. } if hint.contains("RepoTags")), "{err}");
    let err = load_error(&docker_tar(entry(json!(["a:1"]), json!(["missing.tar"])), &files, &[]));
    assert!(matches!(&err, Error::Missing { member, .. } if member == "missing.tar"), "{err}");
    let err = load_error(&docker_tar(entry(json!(["a:1"]), json!(["l.tar", "l.tar"])), &files, &[]));
    assert!(matches!(&err, Error::Invalid { what, .. } if what.contains("diff_ids")), "{err}");
    let other = [files[0].clone(), ("l.tar".to_string(), b"other".to_vec())];
    assert!(matches!(load_error(&docker_tar(entry(json!(["a:1"]), json!(["l.tar"])), &other, &[])), Error::DigestMismatch { .. }));
    assert!(matches!(load_error(&docker_tar(json!({ "not": "a list" }), &files, &[])), Error::Json { .. }));
}

#[test]
fn what_is_no_image_archive_is_refused() {
    assert!(matches!(load_error(&tarball(&[])), Error::UnknownFormat { .. }));
    assert!(matches!(load_error(&tarball(&[("README".into(), b"hi".to_vec())])), Error::UnknownFormat { .. }));
    let garbage: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    assert!(matches!(load_error(&garbage), Error::Tar { .. }));
    assert!(matches!(load_error(&gzip(&garbage)), Error::Tar { .. }));
    assert!(matches!(load_error(&garbage[..2]), Error::Tar { .. } | Error::UnknownFormat { .. }));
    let bad_json = tarball(&[("index.json".into(), b"{".to_vec())]);
    assert!(matches!(&load_error(&bad_json), Error::Json { member, .. } if member == "index.json"));
}

#[test]
fn a_reference_serves_one_image_only() {
    let (layout, _, _) = two_images();
    let mut store = Store::new();
    store.load_archive_bytes("first.tar", &layout.tar()).unwrap();
    let mut other = Layout::default();
    let m = other.image("different", &[b"different layer"]);
    other.entry(OCI_MANIFEST, &m, names("nodekit.local/workload:1.0"));
    let extra = other.image("extra", &[b"extra"]);
    other.entry(OCI_MANIFEST, &extra, names("nodekit.local/extra:1"));
    let err = store.load_archive_bytes("second.tar", &other.tar()).unwrap_err();
    assert!(matches!(&err, Error::Conflict { reference, .. } if reference == "nodekit.local/workload:1.0"), "{err}");
    // Nothing of the refused archive was kept.
    assert_eq!(store.images().len(), 2);
    assert!(store.blob(&sha256_digest(b"extra")).is_none());
    // Within one archive too.
    let mut twice = Layout::default();
    let a = twice.image("a", &[b"a"]);
    let b = twice.image("b", &[b"b"]);
    twice.entry(OCI_MANIFEST, &a, names("x.io/r:1"));
    twice.entry(OCI_MANIFEST, &b, names("x.io/r:1"));
    assert!(matches!(Store::new().load_archive_bytes("twice.tar", &twice.tar()), Err(Error::Conflict { .. })));
}

#[test]
fn hosts_sharing_a_path_and_tag_are_told_apart() {
    let mut l = Layout::default();
    let own = l.image("own", &[b"own layer"]);
    let upstream = l.image("upstream", &[b"upstream layer"]);
    l.entry(OCI_MANIFEST, &own, names("nodekit.local/pause:3.10"));
    l.entry(OCI_MANIFEST, &upstream, names("registry.k8s.io/pause:3.10"));
    let mut store = Store::new();
    store.load_archive_bytes("pause.tar", &l.tar()).unwrap();
    assert_eq!(store.repositories(), ["nodekit.local/pause", "pause", "registry.k8s.io/pause"]);
    let tagged = |name: &str, ns: Option<&str>| store.repository(name, ns).and_then(|r| r.tag("3.10")).map(String::from);
    assert_eq!(tagged("pause", Some("nodekit.local")), Some(sha256_digest(&own)));
    assert_eq!(tagged("pause", Some("registry.k8s.io")), Some(sha256_digest(&upstream)));
    assert_eq!(tagged("nodekit.local/pause", None), Some(sha256_digest(&own)));
    assert_eq!(tagged("registry.k8s.io/pause", None), Some(sha256_digest(&upstream)));
    // Without a host, the image loaded first.
    assert_eq!(tagged("pause", None), Some(sha256_digest(&own)));
    assert!(store.repository("pause", Some("quay.io")).is_none());
    assert!(store.repository("quay.io/pause", None).is_none());
    let upstream_only = sha256_digest(b"upstream layer");
    assert!(!store.repository("pause", Some("nodekit.local")).unwrap().reaches(&upstream_only));
    assert!(store.repository("pause", None).unwrap().reaches(&upstream_only));
}
