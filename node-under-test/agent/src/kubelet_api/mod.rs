//! The kubelet API (HTTPS, `address:port` of the configuration, upstream paths; see
//! kubernetes pkg/kubelet/server/server.go).

pub mod logs;
pub mod query;
pub mod summary;
pub mod prom;
pub mod resource;
