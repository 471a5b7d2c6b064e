//! Control-plane controllers run by the server.

pub mod disruption;
pub mod endpointslices;
pub mod event_ttl;
pub mod node_lifecycle;
pub mod pod_gc;
pub mod scheduler;
pub mod taint_eviction;
pub mod workloads;
