//! The case bodies, one module per area.

pub mod eviction;
pub mod heartbeats;
pub mod kubelet_api;
pub mod node_failure;
pub mod packet_paths;
pub mod pod_lifecycle;
pub mod probes;
pub mod registration;
pub mod runtime;
pub mod static_pods;
pub mod world;
