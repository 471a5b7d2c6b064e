//! Choosing the manifest to serve from the request's `Accept`.
//!
//! The stored manifest is served as it is, whatever `Accept` says: the runtimes send broad
//! lists, and a client that cannot read the type will say so itself. One conversion exists:
//! when the stored manifest is an index, the client accepts neither index type nor a wildcard
//! but does accept an image manifest type, the index's child for this host's platform (Linux
//! and this machine's architecture, else the first acceptable child) is served instead, as
//! registries do for clients that predate indexes.

use crate::media::{is_index, is_manifest};
use crate::store::{Repository, Store, StoredManifest};
use http::HeaderMap;
use http::header::ACCEPT;
use serde::Deserialize;

/// The media types of the request's `Accept` headers, parameters dropped.
pub(crate) fn accepted(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty())
        .collect()
}

fn accepts(accepted: &[String], media_type: &str) -> bool {
    accepted.is_empty() || accepted.iter().any(|a| a == media_type || a == "*/*" || a == "application/*")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexDoc {
    #[serde(default)]
    manifests: Vec<Child>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Child {
    media_type: String,
    digest: String,
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    os: String,
    architecture: String,
}

/// This machine's architecture as image platforms name it.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The manifest to serve for the stored `digest` / `manifest` of `repository`: itself, or a
/// child of an index (see the module documentation).
pub(crate) fn choose(
    store: &Store,
    repository: &Repository,
    digest: String,
    manifest: StoredManifest,
    accepted: &[String],
) -> (String, StoredManifest) {
    if !is_index(&manifest.media_type) || accepts(accepted, &manifest.media_type) || !accepted.iter().any(|a| is_manifest(a)) {
        return (digest, manifest);
    }
    let Ok(index) = serde_json::from_slice::<IndexDoc>(&manifest.bytes) else { return (digest, manifest) };
    let candidates: Vec<&Child> = index
        .manifests
        .iter()
        .filter(|c| is_manifest(&c.media_type) && accepts(accepted, &c.media_type) && repository.reaches(&c.digest))
        .collect();
    let native = |c: &&&Child| c.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == host_architecture());
    let chosen = candidates.iter().find(native).or(candidates.first());
    match chosen.and_then(|c| store.manifest(&c.digest).map(|m| (c.digest.clone(), m))) {
        Some(child) => child,
        None => (digest, manifest),
    }
}
