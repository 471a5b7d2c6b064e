//! In-memory Kubernetes API server with the control-plane controllers a node needs,
//! plus a test surface (audit log, fault injection, partition switch).

pub mod alloc;
pub mod api;
pub mod apply;
pub mod audit;
pub mod bench;
pub mod config;
pub mod controllers;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod events;
pub mod faults;
pub mod http;
pub mod openapi;
pub mod protobuf;
pub mod patch;
pub mod resources;
pub mod selectors;
pub mod server;
pub mod store;
pub mod table;
pub mod validation;

pub use audit::AuditEntry;
pub use config::Config;
pub use error::{ApiError, Error, Result};
pub use faults::FaultRule;
pub use server::{Handle, Server, kubeconfig_yaml};
