//! nodekit's harness: sealed worlds, hosts and links, processes, capture, waits and artifacts.
//!
//! Layering: `sealed` (namespaces of the case process) → `world` (hosts, links, addresses)
//! → `process` (components started inside hosts) → `capture` / `packets` / `path` (what crossed
//! the wire) → `backend` (runtime and node targets built from the pieces above).
//!
//! A case process starts with [`sealed::enter`] (see its module docs for the `main` pattern),
//! builds a [`world::World`] inside a tokio runtime, starts components with
//! [`world::Host::spawn`], captures with [`capture::Capture`] and asserts paths with
//! [`path::Flow`].

pub mod artifacts;
pub mod backend;
pub mod bench;
pub mod bins;
pub mod capture;
mod error;
pub mod ns;
pub mod oci;
pub mod packets;
pub mod path;
pub mod pki;
pub mod process;
pub mod reaper;
pub mod sealed;
pub mod timeline;
pub mod wait;
pub mod world;

pub use error::{Error, Result};
