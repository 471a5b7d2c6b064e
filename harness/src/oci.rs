//! OCI image-layout tarballs built from a static binary (workload and pause images).
//!
//! The tarball holds `oci-layout`, `index.json` (one manifest per image, each annotated with both
//! `org.opencontainers.image.ref.name` and containerd's `io.containerd.image.name`), and
//! `blobs/sha256/…` (each blob once): per image the manifest, the image config (Entrypoint, Cmd,
//! Env, WorkingDir, Labels) and one uncompressed layer with the binary at `/workload`,
//! multi-call links (`/pause` → `/workload`, or `/agnhost`, `/bin/cat` …), `/etc/passwd`,
//! `/etc/group`, `/etc/hostname`, `/tmp` (1777) and empty mount points. Images with the same
//! binary and links share their layer. Every timestamp and owner is fixed, so the same binary
//! always gives the same digests. `ctr -n k8s.io images import FILE` accepts the result.
//!
//! Besides the kit's own images, [`ImageSpec::upstream_all`] gives stand-ins for upstream images
//! (`registry.k8s.io/e2e-test-images/agnhost:<tag>`, `registry.k8s.io/pause:<tag>`) built from
//! fake-cri's default catalog, so both runtimes offer the same references with the same
//! Entrypoint and Cmd; a label naming the reference gives each its own config digest (image id),
//! as upstream's tags are different images.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors while building an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the binary or writing the tarball failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The spec cannot be turned into an image.
    #[error("invalid image spec: {0}")]
    Invalid(String),
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Fixed modification time of every entry (2024-01-01T00:00:00Z).
pub const FIXED_MTIME: u64 = 1_704_067_200;
/// Fixed `created` of the image config.
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";
/// Where the binary lives inside the image.
pub const BINARY_IN_IMAGE: &str = "/workload";

/// Media types.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the image config.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an uncompressed layer.
pub const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of the index.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What to build.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Full reference, e.g. `nodekit.local/workload:1.0`.
    pub reference: String,
    /// Image Entrypoint.
    pub entrypoint: Vec<String>,
    /// Image Cmd.
    pub cmd: Vec<String>,
    /// Image Env (`KEY=value`).
    pub env: Vec<String>,
    /// Image WorkingDir (empty: unset).
    pub working_dir: String,
    /// The (static) binary copied to [`BINARY_IN_IMAGE`].
    pub binary_path: PathBuf,
    /// Absolute paths in the image made symlinks to [`BINARY_IN_IMAGE`] (multi-call names;
    /// parent directories are created).
    pub links: Vec<String>,
    /// Image config Labels (none: no `Labels` key).
    pub labels: Vec<(String, String)>,
}

/// Links of the agnhost stand-ins: upstream's two names of the binary and the tools
/// `kubectl exec` runs there without a shell (`hostname`, `cat`).
pub const AGNHOST_LINKS: &[&str] = &["/agnhost", "/agnhost-2", "/bin/cat", "/bin/hostname"];
/// Config label of the upstream stand-ins holding their reference.
pub const REFERENCE_LABEL: &str = "io.nodekit.image.reference";

/// Reference of the workload image.
pub const WORKLOAD_REF: &str = "nodekit.local/workload:1.0";
/// Reference of the pause image.
pub const PAUSE_REF: &str = "nodekit.local/pause:3.10";
/// One image under several references: three tags of one repository, then the first tag under
/// a second registry host (critest's `test-image-tags` and its two-registry specs).
pub const TAGGED_IMAGE_REFS: [&str; 4] = fake_cri::config::TAGGED_IMAGES;

impl ImageSpec {
    fn base(reference: &str, binary: &Path) -> Self {
        ImageSpec {
            reference: reference.into(),
            entrypoint: vec![BINARY_IN_IMAGE.into()],
            cmd: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: "/".into(),
            binary_path: binary.to_path_buf(),
            links: vec!["/pause".into()],
            labels: Vec::new(),
        }
    }

    /// The stand-in for an upstream image of fake-cri's catalog: the entry's Entrypoint, Cmd,
    /// Env and WorkingDir; links [`AGNHOST_LINKS`] for agnhost (Entrypoint `/agnhost`), else
    /// `/pause`; the reference as [`REFERENCE_LABEL`].
    pub fn upstream(entry: &fake_cri::ImageEntry, binary: &Path) -> Self {
        let agnhost = entry.entrypoint.first().is_some_and(|e| e == "/agnhost");
        let links = if agnhost { AGNHOST_LINKS.iter().map(|l| l.to_string()).collect() } else { vec!["/pause".into()] };
        ImageSpec {
            reference: entry.reference.clone(),
            entrypoint: entry.entrypoint.clone(),
            cmd: entry.cmd.clone(),
            env: entry.env.clone(),
            working_dir: entry.working_dir.clone(),
            binary_path: binary.to_path_buf(),
            links,
            labels: vec![(REFERENCE_LABEL.into(), entry.reference.clone())],
        }
    }

    /// Stand-ins for every upstream image of fake-cri's default catalog
    /// ([`fake_cri::config::upstream_images`]).
    pub fn upstream_all(binary: &Path) -> Vec<Self> {
        fake_cri::config::upstream_images(binary).iter().map(|e| Self::upstream(e, binary)).collect()
    }

    /// `nodekit.local/workload:1.0`: Entrypoint `/workload`, Cmd `pause`.
    pub fn workload(binary: &Path) -> Self {
        let mut s = Self::base(WORKLOAD_REF, binary);
        s.cmd = vec!["pause".into()];
        s
    }

    /// The image of [`TAGGED_IMAGE_REFS`], one spec per reference with the same content: the
    /// workload image with a label of its own (so that it is not the workload image itself).
    pub fn tagged(binary: &Path) -> Vec<Self> {
        TAGGED_IMAGE_REFS
            .iter()
            .map(|r| {
                let mut s = Self::workload(binary);
                s.reference = r.to_string();
                s.labels = vec![("io.nodekit.image.purpose".into(), "several-tags".into())];
                s
            })
            .collect()
    }

    /// [`fake_cri::config::PRIVATE_IMAGE`]: the workload image under a repository the world's
    /// registry serves only with credentials, with a label of its own (another image id).
    pub fn private(binary: &Path) -> Self {
        let mut s = Self::workload(binary);
        s.reference = fake_cri::config::PRIVATE_IMAGE.into();
        s.labels = vec![("io.nodekit.image.purpose".into(), "pull-secrets".into())];
        s
    }

    /// `nodekit.local/pause:3.10`: Entrypoint `/workload pause`.
    pub fn pause(binary: &Path) -> Self {
        let mut s = Self::base(PAUSE_REF, binary);
        s.entrypoint = vec![BINARY_IN_IMAGE.into(), "pause".into()];
        s
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image reference.
    pub reference: String,
    /// `sha256:…` of the manifest (the image digest containerd reports as repo digest target).
    pub digest: String,
    /// `sha256:…` of the config (containerd's image id).
    pub config_digest: String,
    /// `sha256:…` of the layer (also its diff id: the layer is not compressed).
    pub layer_digest: String,
    /// Manifest + config + layer bytes (what a runtime reports as image size).
    pub size: u64,
    /// Bytes of the tarball file.
    pub tar_size: u64,
}

/// `sha256:<hex>` of the bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(FIXED_MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("root").map_err(io(format!("tar header {path}")))?;
    h.set_groupname("root").map_err(io(format!("tar header {path}")))?;
    Ok(h)
}

fn add_file<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32, data: &[u8]) -> Result<()> {
    let mut h = header(path, tar::EntryType::Regular, mode, data.len() as u64)?;
    b.append_data(&mut h, path, data).map_err(io(format!("tar add {path}")))
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32) -> Result<()> {
    let mut h = header(path, tar::EntryType::Directory, mode, 0)?;
    b.append_data(&mut h, path, std::io::empty()).map_err(io(format!("tar add {path}")))
}

fn add_symlink<W: Write>(b: &mut tar::Builder<W>, path: &str, target: &str) -> Result<()> {
    let mut h = header(path, tar::EntryType::Symlink, 0o777, 0)?;
    b.append_link(&mut h, path, target).map_err(io(format!("tar add {path}")))
}

/// The layer tarball (uncompressed) for a spec.
pub fn build_layer(spec: &ImageSpec) -> Result<Vec<u8>> {
    let binary = std::fs::read(&spec.binary_path).map_err(io(format!("read {}", spec.binary_path.display())))?;
    let mut b = tar::Builder::new(Vec::new());
    for (dir, mode) in [("etc/", 0o755), ("tmp/", 0o1777), ("proc/", 0o555), ("sys/", 0o555), ("dev/", 0o755)] {
        add_dir(&mut b, dir, mode)?;
    }
    add_file(&mut b, "etc/passwd", 0o644, b"root:x:0:0:root:/:/workload\nnobody:x:65534:65534:nobody:/:/workload\n")?;
    add_file(&mut b, "etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    add_file(&mut b, "etc/hostname", 0o644, b"workload\n")?;
    add_file(&mut b, BINARY_IN_IMAGE.trim_start_matches('/'), 0o755, &binary)?;
    let mut links = spec.links.clone();
    links.sort();
    links.dedup();
    let mut dirs_made: Vec<String> = Vec::new();
    for link in &links {
        let rel = link.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") || rel == BINARY_IN_IMAGE.trim_start_matches('/') {
            return Err(Error::Invalid(format!("bad link path {link:?}")));
        }
        // Parent directories of nested links (`bin/` for `/bin/cat`), once each.
        let parts: Vec<&str> = rel.split('/').collect();
        for depth in 1..parts.len() {
            let dir = format!("{}/", parts[..depth].join("/"));
            if ["etc/", "tmp/", "proc/", "sys/", "dev/"].contains(&dir.as_str()) {
                return Err(Error::Invalid(format!("link {link:?} must not be below /{dir}")));
            }
            if !dirs_made.contains(&dir) {
                add_dir(&mut b, &dir, 0o755)?;
                dirs_made.push(dir);
            }
        }
        add_symlink(&mut b, rel, BINARY_IN_IMAGE)?;
    }
    b.into_inner().map_err(io("finish layer"))
}

fn descriptor(media: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({ "mediaType": media, "digest": sha256_digest(bytes), "size": bytes.len() })
}

/// Builds the three blobs: (manifest, config, layer).
pub fn build_blobs(spec: &ImageSpec) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let layer = build_layer(spec)?;
    let (manifest, config) = build_manifest_and_config(spec, &layer)?;
    Ok((manifest, config, layer))
}

/// The manifest and config of `spec` over an already built `layer`.
fn build_manifest_and_config(spec: &ImageSpec, layer: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    if spec.reference.is_empty() || spec.reference.contains(char::is_whitespace) {
        return Err(Error::Invalid(format!("bad reference {:?}", spec.reference)));
    }
    let mut cfg = serde_json::json!({
        "Env": spec.env,
        "Entrypoint": spec.entrypoint,
    });
    if !spec.cmd.is_empty() {
        cfg["Cmd"] = serde_json::json!(spec.cmd);
    }
    if !spec.working_dir.is_empty() {
        cfg["WorkingDir"] = serde_json::json!(spec.working_dir);
    }
    if !spec.labels.is_empty() {
        let labels: serde_json::Map<String, serde_json::Value> =
            spec.labels.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        cfg["Labels"] = serde_json::Value::Object(labels);
    }
    let config = serde_json::json!({
        "created": FIXED_CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": cfg,
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(layer)] },
        "history": [{ "created": FIXED_CREATED, "created_by": "nodekit harness oci builder" }],
    });
    let config = serde_json::to_vec(&config).map_err(|e| Error::Invalid(e.to_string()))?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": descriptor(MEDIA_CONFIG, &config),
        "layers": [descriptor(MEDIA_LAYER, layer)],
    });
    let manifest = serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok((manifest, config))
}

/// Writes the OCI image-layout tarball for `spec` to `out` and returns its digests.
pub fn write_image_tar(spec: &ImageSpec, out: &Path) -> Result<ImageInfo> {
    let mut infos = write_images_tar(std::slice::from_ref(spec), out)?;
    infos.pop().ok_or_else(|| Error::Invalid("no image written".into()))
}

/// Writes one OCI image-layout tarball holding every spec (one index entry each, shared blobs
/// once) to `out` and returns their digests, in order.
pub fn write_images_tar(specs: &[ImageSpec], out: &Path) -> Result<Vec<ImageInfo>> {
    if specs.is_empty() {
        return Err(Error::Invalid("no image to write".into()));
    }
    // Layers built so far, by (binary, sorted links).
    type LayerKey = (PathBuf, Vec<String>);
    let mut layers: Vec<(LayerKey, Vec<u8>)> = Vec::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut descs = Vec::new();
    let mut infos = Vec::new();
    for spec in specs {
        let mut links = spec.links.clone();
        links.sort();
        links.dedup();
        let key = (spec.binary_path.clone(), links);
        let layer = match layers.iter().find(|(k, _)| *k == key) {
            Some((_, l)) => l.clone(),
            None => {
                let l = build_layer(spec)?;
                layers.push((key, l.clone()));
                l
            }
        };
        let (manifest, config) = build_manifest_and_config(spec, &layer)?;
        let mut desc = descriptor(MEDIA_MANIFEST, &manifest);
        desc["annotations"] = serde_json::json!({
            "io.containerd.image.name": spec.reference,
            "org.opencontainers.image.ref.name": spec.reference,
        });
        desc["platform"] = serde_json::json!({ "architecture": "amd64", "os": "linux" });
        descs.push(desc);
        infos.push(ImageInfo {
            reference: spec.reference.clone(),
            digest: sha256_digest(&manifest),
            config_digest: sha256_digest(&config),
            layer_digest: sha256_digest(&layer),
            size: (manifest.len() + config.len() + layer.len()) as u64,
            tar_size: 0,
        });
        blobs.extend([manifest, config, layer]);
    }
    let index = serde_json::json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": descs });
    let index = serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?;
    let tar_size = write_layout(out, &index, blobs)?;
    for i in &mut infos {
        i.tar_size = tar_size;
    }
    Ok(infos)
}

/// A file of a hand-assembled image: its path in the image and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Absolute path inside the image.
    pub path: String,
    /// The host file (symlinks followed).
    pub source: PathBuf,
    /// Permission bits.
    pub mode: u32,
}

/// The layer of an image made of `files` and the usual empty directories (`/etc`, `/tmp`,
/// `/proc`, `/sys`, `/dev`, `/run`, `/var/log`), with `/etc/passwd` and `/etc/group` for root.
pub fn build_files_layer(files: &[ImageFile]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = vec!["etc/".into(), "tmp/".into(), "proc/".into(), "sys/".into(), "dev/".into(), "run/".into(), "var/".into(), "var/log/".into()];
    let mut sorted = files.to_vec();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &sorted {
        let rel = f.path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") || rel.starts_with("etc/") {
            return Err(Error::Invalid(format!("bad image file path {:?}", f.path)));
        }
        let parts: Vec<&str> = rel.split('/').collect();
        for depth in 1..parts.len() {
            let dir = format!("{}/", parts[..depth].join("/"));
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.sort();
    for d in &dirs {
        add_dir(&mut b, d, if d == "tmp/" { 0o1777 } else { 0o755 })?;
    }
    add_file(&mut b, "etc/passwd", 0o644, b"root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/:/nonexistent\n")?;
    add_file(&mut b, "etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    for f in &sorted {
        let data = std::fs::read(&f.source).map_err(io(format!("read {}", f.source.display())))?;
        add_file(&mut b, f.path.trim_start_matches('/'), f.mode, &data)?;
    }
    b.into_inner().map_err(io("finish layer"))
}

/// Writes an image of `files` (see [`build_files_layer`]) with `entrypoint`, as an OCI layout
/// that also carries `manifest.json` (the `docker save` index: config, tags, layers), so that
/// both `docker load` (Engine 20.10 reads only `manifest.json`) and `ctr images import` take it.
pub fn write_files_image(reference: &str, entrypoint: &[String], files: &[ImageFile], out: &Path) -> Result<ImageInfo> {
    let layer = build_files_layer(files)?;
    let spec = ImageSpec {
        reference: reference.into(),
        entrypoint: entrypoint.to_vec(),
        cmd: Vec::new(),
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        working_dir: "/".into(),
        binary_path: PathBuf::new(),
        links: Vec::new(),
        labels: Vec::new(),
    };
    let (manifest, config) = build_manifest_and_config(&spec, &layer)?;
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let mut info = ImageInfo {
        reference: reference.into(),
        digest: sha256_digest(&manifest),
        config_digest: sha256_digest(&config),
        layer_digest: sha256_digest(&layer),
        size: (manifest.len() + config.len() + layer.len()) as u64,
        tar_size: 0,
    };
    let docker = serde_json::json!([{ "Config": blob(&info.config_digest), "RepoTags": [reference], "Layers": [blob(&info.layer_digest)] }]);
    let docker = serde_json::to_vec(&docker).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut desc = descriptor(MEDIA_MANIFEST, &manifest);
    desc["annotations"] = serde_json::json!({ "io.containerd.image.name": reference, "org.opencontainers.image.ref.name": reference });
    let index = serde_json::json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [desc] });
    let index = serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?;
    info.tar_size = write_layout_with(out, &index, vec![manifest, config, layer], &[("manifest.json", &docker)])?;
    Ok(info)
}

/// Writes `oci-layout`, `index.json` and the blobs (sorted by digest, each once); the file size.
fn write_layout(out: &Path, index: &[u8], blobs: Vec<Vec<u8>>) -> Result<u64> {
    write_layout_with(out, index, blobs, &[])
}

/// [`write_layout`] with more top-level files.
fn write_layout_with(out: &Path, index: &[u8], mut blobs: Vec<Vec<u8>>, extra: &[(&str, &[u8])]) -> Result<u64> {
    let file = std::fs::File::create(out).map_err(io(format!("create {}", out.display())))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    add_file(&mut b, "oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for (name, data) in extra {
        add_file(&mut b, name, 0o644, data)?;
    }
    add_file(&mut b, "index.json", 0o644, index)?;
    add_dir(&mut b, "blobs/", 0o755)?;
    add_dir(&mut b, "blobs/sha256/", 0o755)?;
    let mut named: Vec<(String, Vec<u8>)> = blobs.drain(..).map(|blob| (sha256_digest(&blob), blob)).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.dedup_by(|a, b| a.0 == b.0);
    for (d, blob) in &named {
        let name = format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        add_file(&mut b, &name, 0o644, blob)?;
    }
    let mut w = b.into_inner().map_err(io("finish image tar"))?;
    w.flush().map_err(io(format!("write {}", out.display())))?;
    drop(w);
    Ok(std::fs::metadata(out).map_err(io(format!("stat {}", out.display())))?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    fn entries(bytes: &[u8]) -> BTreeMap<String, (tar::EntryType, Vec<u8>, Option<String>)> {
        let mut a = tar::Archive::new(bytes);
        let mut m = BTreeMap::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            assert_eq!(e.header().mtime().unwrap(), FIXED_MTIME);
            let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            m.insert(path, (kind, data, link));
        }
        m
    }

    fn fake_binary(dir: &Path) -> PathBuf {
        let p = dir.join("bin");
        std::fs::write(&p, b"\x7fELF not really a binary, but bytes to carry").unwrap();
        p
    }

    #[test]
    fn tarball_parses_back_and_digests_match() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_binary(dir.path());
        let out = dir.path().join("workload.tar");
        let spec = ImageSpec::workload(&bin);
        let info = write_image_tar(&spec, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(info.tar_size, bytes.len() as u64);
        let files = entries(&bytes);
        // Every blob is named by its digest.
        for (path, (_, data, _)) in &files {
            if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                assert_eq!(sha256_digest(data), format!("sha256:{hex}"), "{path}");
            }
        }
        let layout: serde_json::Value = serde_json::from_slice(&files["oci-layout"].1).unwrap();
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"].1).unwrap();
        let desc = &index["manifests"][0];
        assert_eq!(desc["digest"], info.digest.as_str());
        assert_eq!(desc["annotations"]["io.containerd.image.name"], WORKLOAD_REF);
        assert_eq!(desc["annotations"]["org.opencontainers.image.ref.name"], WORKLOAD_REF);
        let blob = |d: &str| files[&format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))].1.clone();
        let manifest_bytes = blob(&info.digest);
        assert_eq!(desc["size"], manifest_bytes.len());
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(manifest["config"]["digest"], info.config_digest.as_str());
        assert_eq!(manifest["layers"][0]["digest"], info.layer_digest.as_str());
        let config: serde_json::Value = serde_json::from_slice(&blob(&info.config_digest)).unwrap();
        assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/workload"]));
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["pause"]));
        assert_eq!(config["config"]["WorkingDir"], "/");
        assert_eq!(config["rootfs"]["diff_ids"][0], info.layer_digest.as_str());
        let layer = entries(&blob(&info.layer_digest));
        let (kind, data, _) = &layer["workload"];
        assert_eq!(*kind, tar::EntryType::Regular);
        assert_eq!(data, &std::fs::read(&bin).unwrap());
        assert_eq!(layer["pause"].2.as_deref(), Some("/workload"));
        assert!(layer.contains_key("tmp/") && layer.contains_key("etc/passwd"));
        let size = manifest_bytes.len() + blob(&info.config_digest).len() + blob(&info.layer_digest).len();
        assert_eq!(info.size, size as u64);
    }

    #[test]
    fn digests_are_deterministic_and_differ_per_image() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_binary(dir.path());
        let a = write_image_tar(&ImageSpec::pause(&bin), &dir.path().join("a.tar")).unwrap();
        let b = write_image_tar(&ImageSpec::pause(&bin), &dir.path().join("b.tar")).unwrap();
        assert_eq!(a, ImageInfo { tar_size: a.tar_size, ..b.clone() });
        assert_eq!(std::fs::read(dir.path().join("a.tar")).unwrap(), std::fs::read(dir.path().join("b.tar")).unwrap());
        let w = write_image_tar(&ImageSpec::workload(&bin), &dir.path().join("w.tar")).unwrap();
        assert_ne!(w.digest, a.digest);
        assert_eq!(w.layer_digest, a.layer_digest, "same binary, same layer");
    }

    #[test]
    fn tar_tool_lists_the_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_binary(dir.path());
        let out = dir.path().join("p.tar");
        let info = write_image_tar(&ImageSpec::pause(&bin), &out).unwrap();
        let listed = std::process::Command::new("tar").arg("-tf").arg(&out).output().unwrap();
        assert!(listed.status.success());
        let text = String::from_utf8_lossy(&listed.stdout);
        assert!(text.lines().any(|l| l == "oci-layout"));
        assert!(text.lines().any(|l| l == "index.json"));
        let m = format!("blobs/sha256/{}", info.digest.trim_start_matches("sha256:"));
        assert!(text.lines().any(|l| l == m), "{text}");
    }

    #[test]
    fn upstream_stand_ins_share_a_tarball_and_a_layer_but_not_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_binary(dir.path());
        let specs: Vec<ImageSpec> =
            ImageSpec::upstream_all(&bin).into_iter().filter(|s| s.reference.contains("/agnhost:")).collect();
        assert!(specs.iter().any(|s| s.reference == fake_cri::config::AGNHOST_IMAGE));
        let out = dir.path().join("agnhost.tar");
        let infos = write_images_tar(&specs, &out).unwrap();
        assert_eq!(infos.len(), specs.len());
        let files = entries(&std::fs::read(&out).unwrap());
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"].1).unwrap();
        let names: Vec<&str> =
            index["manifests"].as_array().unwrap().iter().map(|m| m["annotations"]["io.containerd.image.name"].as_str().unwrap()).collect();
        assert_eq!(names, specs.iter().map(|s| s.reference.as_str()).collect::<Vec<_>>());
        // One layer for all, one config (image id) and manifest per reference.
        assert!(infos.iter().all(|i| i.layer_digest == infos[0].layer_digest));
        let configs: std::collections::BTreeSet<&str> = infos.iter().map(|i| i.config_digest.as_str()).collect();
        assert_eq!(configs.len(), infos.len());
        let blob = |d: &str| files[&format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))].1.clone();
        let config: serde_json::Value = serde_json::from_slice(&blob(&infos[0].config_digest)).unwrap();
        assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/agnhost"]));
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["pause"]));
        assert_eq!(config["config"]["Labels"][REFERENCE_LABEL], specs[0].reference.as_str());
        let layer = entries(&blob(&infos[0].layer_digest));
        for link in AGNHOST_LINKS {
            assert_eq!(layer[link.trim_start_matches('/')].2.as_deref(), Some(BINARY_IN_IMAGE), "{link}");
        }
        assert_eq!(layer["bin/"].0, tar::EntryType::Directory);
        // The kit's own images are what they were: no labels, and one image per tarball is
        // the same file either way.
        let a = write_image_tar(&ImageSpec::workload(&bin), &dir.path().join("a.tar")).unwrap();
        let b = write_images_tar(&[ImageSpec::workload(&bin)], &dir.path().join("b.tar")).unwrap();
        assert_eq!(vec![a], b);
        assert_eq!(std::fs::read(dir.path().join("a.tar")).unwrap(), std::fs::read(dir.path().join("b.tar")).unwrap());
        let pause = ImageSpec::upstream_all(&bin).into_iter().find(|s| s.reference == "registry.k8s.io/pause:3.10").unwrap();
        assert_eq!((pause.entrypoint.clone(), pause.links.clone()), (vec!["/pause".to_string()], vec!["/pause".to_string()]));
    }

    #[test]
    fn bad_specs_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_binary(dir.path());
        let mut s = ImageSpec::pause(&bin);
        s.links = vec!["/a/../b".into()];
        assert!(matches!(write_image_tar(&s, &dir.path().join("x.tar")), Err(Error::Invalid(_))));
        s.links = vec!["/etc/x".into()];
        assert!(matches!(write_image_tar(&s, &dir.path().join("x.tar")), Err(Error::Invalid(_))));
        assert!(matches!(write_images_tar(&[], &dir.path().join("x.tar")), Err(Error::Invalid(_))));
        let mut s = ImageSpec::pause(&dir.path().join("missing"));
        s.reference = "x:1".into();
        assert!(matches!(write_image_tar(&s, &dir.path().join("x.tar")), Err(Error::Io { .. })));
        let mut s = ImageSpec::pause(&bin);
        s.reference = String::new();
        assert!(matches!(write_image_tar(&s, &dir.path().join("x.tar")), Err(Error::Invalid(_))));
    }
}
