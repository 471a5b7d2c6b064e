//! Control-plane controllers run by the server.

pub mod endpointslices;
pub mod event_ttl;
pub mod node_lifecycle;
pub mod scheduler;
pub mod workloads;
