//! Control-plane controllers run by the server.

pub mod endpointslices;
pub mod node_lifecycle;
