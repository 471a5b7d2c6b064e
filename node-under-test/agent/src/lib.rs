//! The reference node agent (kubelet): registration, heartbeats, pod workers, probes.

pub mod config;
pub mod quantity;
pub mod cri;
pub mod error;
pub mod metrics;
pub mod node;

pub use error::{Error, Result};
pub mod pods;
pub mod probes;
pub mod agent;
pub mod cli;
pub mod server;
