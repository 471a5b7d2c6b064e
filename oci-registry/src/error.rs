//! Errors of loading archives and of serving.

use crate::digest::DigestError;
use crate::reference::ReferenceError;

/// An error of this crate. Archive errors name the archive (`file`) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive cannot be read from disk.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The archive.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The archive is not a (possibly gzip-compressed) tar archive.
    #[error("{file}: not a readable tar archive: {source}")]
    Tar {
        /// The archive.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The archive holds neither `index.json` (OCI image layout) nor `manifest.json` (docker-archive).
    #[error("{file}: neither an OCI image layout (index.json) nor a docker-archive (manifest.json)")]
    UnknownFormat {
        /// The archive.
        file: String,
    },
    /// A JSON document of the archive does not parse or has the wrong shape.
    #[error("{file}: {member}: invalid JSON: {source}")]
    Json {
        /// The archive.
        file: String,
        /// The member (path in the archive, or blob digest).
        member: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A file the archive refers to is not in it.
    #[error("{file}: {member} is missing (referenced by {referenced_by})")]
    Missing {
        /// The archive.
        file: String,
        /// The missing member (path in the archive, or blob digest).
        member: String,
        /// What refers to it.
        referenced_by: String,
    },
    /// A blob's content does not hash to its digest.
    #[error("{file}: {member}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// The archive.
        file: String,
        /// The blob's path in the archive.
        member: String,
        /// The digest it is stored and referenced under.
        expected: String,
        /// The digest of its content.
        actual: String,
    },
    /// A descriptor's size differs from its blob's.
    #[error("{file}: blob {digest} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The archive.
        file: String,
        /// The blob.
        digest: String,
        /// The descriptor's size.
        expected: i64,
        /// The blob's size.
        actual: u64,
    },
    /// A descriptor holds a digest that is invalid or not sha256.
    #[error("{file}: {what}: {source}")]
    Digest {
        /// The archive.
        file: String,
        /// Where the digest was found.
        what: String,
        /// Why it is refused.
        #[source]
        source: DigestError,
    },
    /// An image of the archive has no name to be served under.
    #[error("{file}: {what} has no image name ({hint})")]
    Unnamed {
        /// The archive.
        file: String,
        /// The image (index entry or manifest.json entry).
        what: String,
        /// Which names were looked for.
        hint: &'static str,
    },
    /// An image name is not a valid reference.
    #[error("{file}: image name {reference:?}: {source}")]
    Reference {
        /// The archive.
        file: String,
        /// The name as found.
        reference: String,
        /// Why it is refused.
        #[source]
        source: ReferenceError,
    },
    /// The archive holds something this registry cannot serve, or contradicts itself.
    #[error("{file}: {what}")]
    Invalid {
        /// The archive.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// A repository and tag of the archive are already served with other content.
    #[error("{file}: {reference} is {digest}, but its repository and tag already serve {existing}")]
    Conflict {
        /// The archive.
        file: String,
        /// The image name from this archive.
        reference: String,
        /// Its manifest digest.
        digest: String,
        /// The digest already served under that repository and tag.
        existing: String,
    },
    /// The server's listener failed.
    #[error("registry listener: {0}")]
    Listener(#[source] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
