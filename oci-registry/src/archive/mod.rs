//! Reading image archives: an OCI image layout ([`oci`]) or a `docker save` archive
//! ([`docker`]), either as a plain or gzip-compressed tarball.
//!
//! An archive is read whole into memory, then turned into a [`Loaded`]: the blobs every named
//! image needs (manifests included), which of them are manifests (with their media type), and
//! the images with their names. Nothing is kept from an archive that fails to load.

pub(crate) mod docker;
pub(crate) mod oci;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::reference::ImageReference;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;

/// What an archive yields.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Every blob some image reaches, by digest (manifests included).
    pub blobs: HashMap<String, Bytes>,
    /// The manifests and indexes among the blobs, digest → media type.
    pub manifests: HashMap<String, String>,
    /// The named images.
    pub images: Vec<LoadedImage>,
}

/// One name of an image in an archive.
#[derive(Debug)]
pub(crate) struct LoadedImage {
    /// The parsed name.
    pub reference: ImageReference,
    /// The digest of its top manifest (or index).
    pub digest: String,
    /// Every blob digest the image reaches, its own included.
    pub content: BTreeSet<String>,
}

/// The regular files of a tarball by normalised path, links resolved.
#[derive(Debug, Default)]
pub(crate) struct Members {
    files: HashMap<String, Bytes>,
}

impl Members {
    /// The content of `path` (normalised as archive paths are).
    pub fn get(&self, path: &str) -> Option<&Bytes> {
        normalise(path).and_then(|p| self.files.get(&p))
    }
}

/// The gzip magic number.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Most bytes reserved ahead for one member (its header's size is not trusted beyond this).
const PREALLOCATE_MAX: usize = 64 << 20;
/// Longest chain of links followed.
const MAX_LINK_HOPS: usize = 16;

/// Whether `data` starts as a gzip stream does.
pub(crate) fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&GZIP_MAGIC)
}

/// Loads the archive `data`; `file` names it in errors.
pub(crate) fn load(file: &str, data: &[u8]) -> Result<Loaded> {
    let members = read_members(file, data)?;
    if members.get("index.json").is_some() {
        oci::load(file, &members)
    } else if members.get("manifest.json").is_some() {
        docker::load(file, &members)
    } else {
        Err(Error::UnknownFormat { file: file.into() })
    }
}

/// Reads every regular file of the (possibly gzip-compressed) tarball `data`.
pub(crate) fn read_members(file: &str, data: &[u8]) -> Result<Members> {
    let tar_error = |source| Error::Tar { file: file.into(), source };
    let reader: Box<dyn Read + '_> = if is_gzip(data) { Box::new(flate2::read::GzDecoder::new(data)) } else { Box::new(data) };
    let mut archive = tar::Archive::new(reader);
    let mut files = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        let Some(path) = normalise(&entry.path().map_err(tar_error)?.to_string_lossy()) else { continue };
        let kind = entry.header().entry_type();
        if kind.is_file() || kind.is_contiguous() {
            let mut content = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(PREALLOCATE_MAX));
            entry.read_to_end(&mut content).map_err(tar_error)?;
            files.insert(path, Bytes::from(content));
        } else if kind.is_symlink() || kind.is_hard_link() {
            let Some(target) = entry.link_name().map_err(tar_error)? else { continue };
            let target = target.to_string_lossy();
            // A symbolic link is relative to its directory, a hard link to the archive root.
            let joined = match path.rsplit_once('/') {
                Some((dir, _)) if kind.is_symlink() && !target.starts_with('/') => format!("{dir}/{target}"),
                _ => target.into_owned(),
            };
            if let Some(t) = normalise(&joined) {
                links.insert(path, t);
            }
        }
    }
    for (link, target) in &links {
        let mut current = target;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(content) = files.get(current).cloned() {
                files.insert(link.clone(), content);
                break;
            }
            let Some(next) = links.get(current) else { break };
            current = next;
        }
    }
    Ok(Members { files })
}

/// `path` without `.` and empty components, `..` applied; none if it leaves the root or is empty.
fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Parses the JSON `member` of `file`.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(file: &str, member: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json { file: file.into(), member: member.into(), source })
}

/// Parses an image name found in `file`.
pub(crate) fn parse_name(file: &str, name: &str) -> Result<ImageReference> {
    ImageReference::parse(name).map_err(|source| Error::Reference { file: file.into(), reference: name.into(), source })
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise("./index.json").as_deref(), Some("index.json"));
        assert_eq!(normalise("/blobs//sha256/./x").as_deref(), Some("blobs/sha256/x"));
        assert_eq!(normalise("a/../b").as_deref(), Some("b"));
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("./"), None);
    }
}
