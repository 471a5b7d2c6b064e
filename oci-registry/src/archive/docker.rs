//! `docker save` archives: `manifest.json` lists images as `Config` (a member holding the image
//! config), `RepoTags` and `Layers` (members holding the layer tarballs, possibly gzipped).
//!
//! Each entry becomes a Docker schema 2 manifest (config
//! `application/vnd.docker.container.image.v1+json`, layers
//! `application/vnd.docker.image.rootfs.diff.tar` or `….tar.gzip` by their content) served
//! under every one of its `RepoTags`. An entry without `RepoTags` (saved by image id) is
//! refused ([`Error::Unnamed`]). The config's `rootfs.diff_ids` must count the layers, and an
//! uncompressed layer must hash to its diff id.

use super::{Loaded, LoadedImage, Members, is_gzip, parse_json, parse_name};
use crate::digest::sha256_digest;
use crate::error::{Error, Result};
use crate::media::{DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The parts of an image config checked against the layers.
#[derive(Debug, Deserialize)]
struct ConfigDoc {
    rootfs: Option<RootFs>,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// A descriptor of the generated manifest (fields in the order Docker writes them).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    size: usize,
    digest: String,
}

/// The generated Docker schema 2 manifest.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Loads the docker-archive of `file`.
pub(crate) fn load(file: &str, members: &Members) -> Result<Loaded> {
    let Some(listing) = members.get("manifest.json") else { return Err(Error::UnknownFormat { file: file.into() }) };
    let entries: Vec<Entry> = parse_json(file, "manifest.json", listing)?;
    if entries.is_empty() {
        return Err(Error::Invalid { file: file.into(), what: "manifest.json lists no image".into() });
    }
    let mut out = Loaded::default();
    for (i, entry) in entries.iter().enumerate() {
        let what = format!("manifest.json entry {i} ({})", entry.config);
        let names = entry.repo_tags.as_deref().unwrap_or_default();
        if names.is_empty() {
            return Err(Error::Unnamed { file: file.into(), what, hint: "wants RepoTags" });
        }
        let references = names.iter().map(|n| parse_name(file, n)).collect::<Result<Vec<_>>>()?;
        let (digest, content) = convert(file, &what, members, entry, &mut out)?;
        for reference in references {
            out.images.push(LoadedImage { reference, digest: digest.clone(), content: content.clone() });
        }
    }
    Ok(out)
}

/// Builds the manifest of `entry` into `out`; its digest and the digests it reaches.
fn convert(file: &str, what: &str, members: &Members, entry: &Entry, out: &mut Loaded) -> Result<(String, BTreeSet<String>)> {
    let member = |path: &str| -> Result<Bytes> {
        members.get(path).cloned().ok_or_else(|| Error::Missing { file: file.into(), member: path.into(), referenced_by: what.into() })
    };
    let config = member(&entry.config)?;
    let doc: ConfigDoc = parse_json(file, &entry.config, &config)?;
    let diff_ids = doc.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    if diff_ids.len() != entry.layers.len() {
        let what = format!("{what}: {} layers but {} rootfs.diff_ids in the config", entry.layers.len(), diff_ids.len());
        return Err(Error::Invalid { file: file.into(), what });
    }
    let mut content = BTreeSet::new();
    let mut add = |bytes: Bytes, media_type: &'static str, out: &mut Loaded| {
        let digest = sha256_digest(&bytes);
        let descriptor = Descriptor { media_type, size: bytes.len(), digest: digest.clone() };
        content.insert(digest.clone());
        out.blobs.insert(digest, bytes);
        descriptor
    };
    let config = add(config, DOCKER_CONFIG, out);
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
        let bytes = member(path)?;
        let media_type = if is_gzip(&bytes) { DOCKER_LAYER_GZIP } else { DOCKER_LAYER };
        let layer = add(bytes, media_type, out);
        if media_type == DOCKER_LAYER && layer.digest != *diff_id {
            return Err(Error::DigestMismatch { file: file.into(), member: path.clone(), expected: diff_id.clone(), actual: layer.digest });
        }
        layers.push(layer);
    }
    let manifest = Manifest { schema_version: 2, media_type: DOCKER_MANIFEST, config, layers };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|source| Error::Json { file: file.into(), member: format!("generated manifest of {what}"), source })?;
    let manifest = add(Bytes::from(bytes), DOCKER_MANIFEST, out);
    out.manifests.insert(manifest.digest.clone(), DOCKER_MANIFEST.into());
    Ok((manifest.digest, content))
}
