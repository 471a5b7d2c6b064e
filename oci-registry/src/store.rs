//! The content store: blobs by digest, and the repositories and tags that reach them.

use crate::archive::{self, Loaded};
use crate::error::{Error, Result};
use crate::reference::is_valid_repository;
use crate::stats::Stats;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// An image the store serves under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The full normalised reference (`registry.k8s.io/pause:3.10`, `docker.io/library/busybox:latest`).
    pub reference: String,
    /// The registry host the reference names (`registry.k8s.io`, `docker.io`).
    pub host: String,
    /// The repository it is served under (`pause`, `library/busybox`).
    pub repository: String,
    /// Its tag (none for a name that only pins a digest: served by digest alone).
    pub tag: Option<String>,
    /// The `sha256:…` digest of its manifest or index.
    pub digest: String,
    /// The media type of its manifest or index.
    pub media_type: String,
}

/// A repository: its tags and every digest its images reach.
#[derive(Debug, Default)]
pub(crate) struct Repository {
    tags: BTreeMap<String, String>,
    content: HashSet<String>,
}

impl Repository {
    /// The manifest digest tagged `tag`.
    pub fn tag(&self, tag: &str) -> Option<&str> {
        self.tags.get(tag).map(String::as_str)
    }

    /// Whether an image of this repository reaches `digest`.
    pub fn reaches(&self, digest: &str) -> bool {
        self.content.contains(digest)
    }

    /// The tags, sorted.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.keys().map(String::as_str)
    }
}

/// A manifest as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredManifest {
    /// Its media type (the `Content-Type` it is served with).
    pub media_type: String,
    /// Its bytes.
    pub bytes: Bytes,
}

/// The images of one repository path: per registry host, and the merged view.
#[derive(Debug, Default)]
struct PathEntry {
    /// By registry host.
    hosts: BTreeMap<String, Repository>,
    /// Every host's content; a tag names what the host loaded first tagged it.
    merged: Repository,
}

/// An in-memory content store filled from image archives.
///
/// Images are served under the repository path of their reference (the path without the
/// registry host), so one registry can stand in for several hosts ([`Store::registry_hosts`]).
/// As images of two hosts can share a path and tag (`nodekit.local/pause:3.10` and
/// `registry.k8s.io/pause:3.10`), a request names its host in one of two ways, and otherwise
/// gets the merged view:
///
/// - `/v2/<path>/…?ns=<host>`: the `ns` parameter containerd adds to requests to a mirror;
/// - `/v2/<host>/<path>/…`: the host as the first component of the name (a mirror location
///   with a path, as CRI-O's `registries.conf` allows); only for hosts without a port.
/// - `/v2/<path>/…`: every host's images; a tag names the image loaded first under it.
///
/// A blob is served under a repository only when one of its images reaches it.
#[derive(Debug, Default)]
pub struct Store {
    blobs: HashMap<String, Bytes>,
    manifests: HashMap<String, String>,
    paths: BTreeMap<String, PathEntry>,
    images: BTreeMap<String, Image>,
    /// Repository paths that require credentials, and theirs.
    protected: BTreeMap<String, Credentials>,
    stats: Stats,
}

/// The basic-auth credentials a protected repository requires.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the image archive at `path`: an OCI image layout or a docker-archive tarball,
    /// plain or gzip-compressed. Returns the images it named. On error the store is unchanged.
    pub fn load_archive(&mut self, path: impl AsRef<Path>) -> Result<Vec<Image>> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| Error::Read { file: file.clone(), source })?;
        self.load_archive_bytes(&file, &data)
    }

    /// Loads an archive held in memory; `name` names it in errors. As [`Store::load_archive`].
    ///
    /// A reference serves one image only: an archive naming one already served with other
    /// content is refused ([`Error::Conflict`]); loading the same content twice is harmless.
    pub fn load_archive_bytes(&mut self, name: &str, data: &[u8]) -> Result<Vec<Image>> {
        let loaded = archive::load(name, data)?;
        self.check_conflicts(name, &loaded)?;
        let Loaded { blobs, manifests, images } = loaded;
        let mut added = Vec::with_capacity(images.len());
        for image in images {
            let reference = image.reference;
            let entry = self.paths.entry(reference.repository.clone()).or_default();
            let repository = entry.hosts.entry(reference.host.clone()).or_default();
            if let Some(tag) = &reference.tag {
                repository.tags.insert(tag.clone(), image.digest.clone());
                let merged = entry.merged.tags.entry(tag.clone()).or_insert_with(|| image.digest.clone());
                if *merged != image.digest {
                    tracing::warn!(archive = name, %reference, "/v2/{}/ without a host serves tag {tag} as {merged}", reference.repository);
                }
            }
            repository.content.extend(image.content.iter().cloned());
            entry.merged.content.extend(image.content);
            let record = Image {
                reference: reference.to_string(),
                host: reference.host.clone(),
                repository: reference.repository.clone(),
                tag: reference.tag.clone(),
                media_type: manifests.get(&image.digest).cloned().unwrap_or_default(),
                digest: image.digest,
            };
            tracing::debug!(archive = name, reference = %record.reference, digest = %record.digest, "image loaded");
            self.images.insert(record.reference.clone(), record.clone());
            added.push(record);
        }
        self.blobs.extend(blobs);
        self.manifests.extend(manifests);
        Ok(added)
    }

    /// Refuses `loaded` if it tags a reference with content other than the store's, or with
    /// two contents itself.
    fn check_conflicts(&self, file: &str, loaded: &Loaded) -> Result<()> {
        let mut seen: HashMap<(&str, &str, &str), &str> = HashMap::new();
        for image in &loaded.images {
            let Some(tag) = image.reference.tag.as_deref() else { continue };
            let (host, path) = (image.reference.host.as_str(), image.reference.repository.as_str());
            let existing = self.paths.get(path).and_then(|e| e.hosts.get(host)).and_then(|r| r.tag(tag));
            let existing = existing.or_else(|| seen.get(&(host, path, tag)).copied());
            if let Some(existing) = existing.filter(|e| *e != image.digest) {
                return Err(Error::Conflict {
                    file: file.into(),
                    reference: image.reference.to_string(),
                    digest: image.digest.clone(),
                    existing: existing.into(),
                });
            }
            seen.insert((host, path, tag), &image.digest);
        }
        Ok(())
    }

    /// Every image served, sorted by reference.
    pub fn images(&self) -> Vec<Image> {
        self.images.values().cloned().collect()
    }

    /// The registry hosts the images were named under, sorted: the hosts a runtime must
    /// mirror to this registry.
    pub fn registry_hosts(&self) -> Vec<String> {
        let hosts: BTreeSet<&str> = self.images.values().map(|i| i.host.as_str()).collect();
        hosts.into_iter().map(String::from).collect()
    }

    /// The repository names served, sorted: every repository path, and `<host>/<path>` for
    /// hosts without a port.
    pub fn repositories(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        for (path, entry) in &self.paths {
            names.insert(path.clone());
            names.extend(entry.hosts.keys().map(|h| format!("{h}/{path}")).filter(|n| is_valid_repository(n)));
        }
        names.into_iter().collect()
    }

    /// The tags of the repository `name` (a path, or `<host>/<path>`), sorted; none if it is
    /// unknown.
    pub fn tags(&self, name: &str) -> Option<Vec<String>> {
        self.repository(name, None).map(|r| r.tags().map(String::from).collect())
    }

    /// Makes the repository `path` (the reference's path without the registry host, under every
    /// host) answer only requests with these basic-auth credentials, as a registry with
    /// htpasswd authentication does; without them its tags, manifests and blobs are `401
    /// UNAUTHORIZED` with a `WWW-Authenticate: Basic` challenge.
    pub fn require_credentials(&mut self, path: &str, credentials: Credentials) {
        self.protected.insert(path.to_string(), credentials);
    }

    /// The credentials the repository `name` requires (named as a request names it, see
    /// [`Store`]), if any.
    pub(crate) fn required_credentials(&self, name: &str, ns: Option<&str>) -> Option<&Credentials> {
        if self.protected.is_empty() {
            return None;
        }
        if let Some(c) = self.protected.get(name) {
            return Some(c);
        }
        let host_stripped = match ns {
            Some(host) => name.strip_prefix(host).and_then(|rest| rest.strip_prefix('/')),
            None => name.split_once('/').map(|(_, path)| path),
        };
        host_stripped.and_then(|path| self.protected.get(path))
    }

    /// What was served so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The repository `name` as a request names it, with the `ns` parameter if any (see
    /// [`Store`]).
    pub(crate) fn repository(&self, name: &str, ns: Option<&str>) -> Option<&Repository> {
        if let Some(host) = ns {
            let host = if host == "index.docker.io" { crate::reference::DEFAULT_HOST } else { host };
            // A host-qualified name with the same host in `ns` (containerd sends both when the
            // mirror's path already names the host).
            let name = match name.strip_prefix(host).and_then(|rest| rest.strip_prefix('/')) {
                Some(rest) if !self.paths.contains_key(name) => rest,
                _ => name,
            };
            return self.paths.get(name)?.hosts.get(host);
        }
        if let Some(entry) = self.paths.get(name) {
            return Some(&entry.merged);
        }
        let (host, path) = name.split_once('/')?;
        self.paths.get(path)?.hosts.get(host)
    }

    /// The manifest with `digest`, if it is one.
    pub(crate) fn manifest(&self, digest: &str) -> Option<StoredManifest> {
        let media_type = self.manifests.get(digest)?;
        let bytes = self.blobs.get(digest)?;
        Some(StoredManifest { media_type: media_type.clone(), bytes: bytes.clone() })
    }

    /// The blob with `digest`.
    pub(crate) fn blob(&self, digest: &str) -> Option<Bytes> {
        self.blobs.get(digest).cloned()
    }
}
