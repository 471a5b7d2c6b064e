//! A read-only container registry: the pull API of the OCI distribution spec (v2), serving
//! images loaded from OCI image-layout and docker-archive tarballs, so that container runtimes
//! can pull without any public registry.
//!
//! ```no_run
//! # async fn run() -> oci_registry::Result<()> {
//! let mut store = oci_registry::Store::new();
//! store.load_archive("images/workload.tar")?;
//! let hosts = store.registry_hosts(); // mirror each of these to the registry
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(oci_registry::Error::Listener)?;
//! let cancel = tokio_util::sync::CancellationToken::new();
//! oci_registry::serve(listener, std::sync::Arc::new(store), None, cancel).await
//! # }
//! ```
//!
//! Images are served under their repository (the reference's path without the registry host,
//! `busybox` normalised to `library/busybox`) and tag; [`Store::registry_hosts`] lists the
//! hosts the references named, which a runtime must mirror to this registry. Where two hosts
//! share a path, a request picks its host with containerd's `ns` query parameter or as the
//! first component of the name (see [`Store`]).

#![warn(missing_docs)]

mod archive;
pub mod digest;
mod error;
mod http;
pub mod media;
pub mod reference;
mod stats;
mod store;

pub use archive::oci::{CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION};
pub use error::{Error, Result};
pub use http::serve;
pub use reference::ImageReference;
pub use stats::Stats;
pub use store::{Credentials, Image, Store};
