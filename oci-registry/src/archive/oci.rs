//! OCI image layouts: `oci-layout`, `index.json` and `blobs/sha256/<hex>`.
//!
//! Each entry of `index.json` is one image, named by its `io.containerd.image.name` annotation,
//! else by `org.opencontainers.image.ref.name` when that holds a full reference (a bare tag such
//! as `1.0` names no repository). An entry with neither is refused ([`Error::Unnamed`]): an image
//! without a repository could not be pulled.
//!
//! Every blob an entry reaches is checked: present, hashing to its digest, of its descriptor's
//! size. Two exceptions: the child manifests of an index may be absent (a layout exported for
//! one platform keeps the index whole but only that platform's manifest) as long as one is
//! present, and a layer with `urls` (a foreign layer) may be absent. Blobs no image reaches are
//! ignored.

use super::{Loaded, LoadedImage, Members, parse_json, parse_name};
use crate::digest::{parse_sha256, sha256_digest};
use crate::error::{Error, Result};
use crate::media::{is_index, is_manifest};
use crate::reference::ImageReference;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// containerd's annotation of an image's full name.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The OCI annotation of an image's name (a full reference or only a tag).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Deepest nesting of indexes followed.
const MAX_DEPTH: usize = 4;
/// What is looked for to name an image.
const NAME_HINT: &str = "wants an io.containerd.image.name annotation, or a full reference in org.opencontainers.image.ref.name";

/// A content descriptor.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    schema_version: i64,
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexDoc {
    schema_version: i64,
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutDoc {
    image_layout_version: String,
}

/// Loads the OCI image layout of `file`.
pub(crate) fn load(file: &str, members: &Members) -> Result<Loaded> {
    if let Some(layout) = members.get("oci-layout") {
        let doc: LayoutDoc = parse_json(file, "oci-layout", layout)?;
        if doc.image_layout_version != "1.0.0" {
            return Err(invalid(file, format!("oci-layout: unsupported imageLayoutVersion {:?}", doc.image_layout_version)));
        }
    }
    let Some(index) = members.get("index.json") else { return Err(Error::UnknownFormat { file: file.into() }) };
    let index: IndexDoc = parse_json(file, "index.json", index)?;
    if index.schema_version != 2 {
        return Err(invalid(file, format!("index.json: schemaVersion {}, expected 2", index.schema_version)));
    }
    let mut walker = Walker { file, members, out: Loaded::default() };
    for (i, desc) in index.manifests.iter().enumerate() {
        let what = format!("index.json entry {i} ({})", desc.digest);
        let reference = entry_name(file, &what, desc)?;
        if reference.digest.as_ref().is_some_and(|d| *d != desc.digest) {
            return Err(invalid(file, format!("{what} is named {reference}, which pins another digest")));
        }
        let mut content = BTreeSet::new();
        walker.walk(desc, &what, 0, &mut content)?;
        walker.out.images.push(LoadedImage { reference, digest: desc.digest.clone(), content });
    }
    if walker.out.images.is_empty() {
        return Err(invalid(file, "index.json lists no image".into()));
    }
    Ok(walker.out)
}

fn invalid(file: &str, what: String) -> Error {
    Error::Invalid { file: file.into(), what }
}

/// The name of an `index.json` entry (see the module documentation).
fn entry_name(file: &str, what: &str, desc: &Descriptor) -> Result<ImageReference> {
    let annotations = desc.annotations.as_ref();
    let name = annotations.and_then(|a| a.get(CONTAINERD_NAME_ANNOTATION)).or_else(|| {
        annotations.and_then(|a| a.get(REF_NAME_ANNOTATION)).filter(|n| n.contains(['/', ':', '@']))
    });
    match name {
        Some(n) => parse_name(file, n),
        None => Err(Error::Unnamed { file: file.into(), what: what.into(), hint: NAME_HINT }),
    }
}

/// Follows descriptors through the layout, collecting what they reach into `out`.
struct Walker<'a> {
    file: &'a str,
    members: &'a Members,
    out: Loaded,
}

impl Walker<'_> {
    /// The blob of `desc`, checked against its digest and size; none if the layout lacks it.
    fn blob(&mut self, desc: &Descriptor, referenced_by: &str) -> Result<Option<Bytes>> {
        let file = self.file;
        parse_sha256(&desc.digest).map_err(|source| Error::Digest { file: file.into(), what: format!("a descriptor in {referenced_by}"), source })?;
        let bytes = match self.out.blobs.get(&desc.digest) {
            Some(b) => b.clone(),
            None => {
                let member = format!("blobs/sha256/{}", desc.digest.trim_start_matches("sha256:"));
                let Some(bytes) = self.members.get(&member) else { return Ok(None) };
                let actual = sha256_digest(bytes);
                if actual != desc.digest {
                    return Err(Error::DigestMismatch { file: file.into(), member, expected: desc.digest.clone(), actual });
                }
                bytes.clone()
            }
        };
        if u64::try_from(desc.size).ok() != Some(bytes.len() as u64) {
            return Err(Error::SizeMismatch { file: file.into(), digest: desc.digest.clone(), expected: desc.size, actual: bytes.len() as u64 });
        }
        self.out.blobs.insert(desc.digest.clone(), bytes.clone());
        Ok(Some(bytes))
    }

    fn missing(&self, desc: &Descriptor, referenced_by: &str) -> Error {
        Error::Missing { file: self.file.into(), member: format!("blob {}", desc.digest), referenced_by: referenced_by.into() }
    }

    /// Walks the manifest or index `desc` (at `depth` below `index.json`) into `content`;
    /// whether it was present (only an index's children may be absent).
    fn walk(&mut self, desc: &Descriptor, referenced_by: &str, depth: usize, content: &mut BTreeSet<String>) -> Result<bool> {
        let Some(bytes) = self.blob(desc, referenced_by)? else {
            if depth == 0 {
                return Err(self.missing(desc, referenced_by));
            }
            tracing::debug!(file = self.file, digest = %desc.digest, "child manifest not in the layout");
            return Ok(false);
        };
        content.insert(desc.digest.clone());
        let member = format!("manifest {}", desc.digest);
        if is_index(&desc.media_type) {
            if depth >= MAX_DEPTH {
                return Err(invalid(self.file, format!("{member}: indexes nested deeper than {MAX_DEPTH}")));
            }
            let doc: IndexDoc = parse_json(self.file, &member, &bytes)?;
            self.check_doc(desc, &member, doc.schema_version, doc.media_type.as_deref())?;
            let mut present = 0;
            for child in &doc.manifests {
                present += usize::from(self.walk(child, &member, depth + 1, content)?);
            }
            if present == 0 && !doc.manifests.is_empty() {
                return Err(Error::Missing { file: self.file.into(), member: "every child manifest".into(), referenced_by: member });
            }
        } else if is_manifest(&desc.media_type) {
            let doc: ManifestDoc = parse_json(self.file, &member, &bytes)?;
            self.check_doc(desc, &member, doc.schema_version, doc.media_type.as_deref())?;
            for part in std::iter::once(&doc.config).chain(&doc.layers) {
                match self.blob(part, &member)? {
                    Some(_) => {
                        content.insert(part.digest.clone());
                    }
                    None if part.urls.as_ref().is_some_and(|u| !u.is_empty()) => {}
                    None => return Err(self.missing(part, &member)),
                }
            }
        } else if depth == 0 {
            let what = format!("{referenced_by} has media type {:?}, neither an image manifest nor an index", desc.media_type);
            return Err(invalid(self.file, what));
        }
        // Manifests of other kinds (artifacts below an index) are served as they are.
        self.out.manifests.insert(desc.digest.clone(), desc.media_type.clone());
        Ok(true)
    }

    fn check_doc(&self, desc: &Descriptor, member: &str, schema_version: i64, media_type: Option<&str>) -> Result<()> {
        if schema_version != 2 {
            return Err(invalid(self.file, format!("{member}: schemaVersion {schema_version}, expected 2")));
        }
        match media_type {
            Some(m) if m != desc.media_type => {
                Err(invalid(self.file, format!("{member}: mediaType {m:?} differs from its descriptor's {:?}", desc.media_type)))
            }
            _ => Ok(()),
        }
    }
}
