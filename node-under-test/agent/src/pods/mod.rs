//! Pods: the per-pod worker state machine, its effects, status rendering, events and the
//! manager that watches the node's pods.

pub mod backoff;
pub mod model;
pub mod worker;
pub mod spec;
pub mod etc_hosts;
pub mod status;
pub mod status_writer;
pub mod events;
pub mod effects;
pub mod kills;
pub mod observe;
pub mod pleg;
pub mod security;
pub mod runner;
pub mod manager;
pub mod changes;
pub mod registry;
pub mod volumes;
pub mod host_path;
pub mod objects;
pub mod service_env;
pub mod services;
pub mod token_cache;
pub mod volumes_projected;
pub mod pull_secrets;
pub mod node_credentials;
