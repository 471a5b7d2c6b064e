//! CRI v1 runtime whose containers are real processes.
//!
//! `fake-cri` serves the CRI v1 RuntimeService and ImageService (bindings from `k8s-cri`) on a
//! unix socket. Containers are real processes of the image's entrypoint (the `workload` binary,
//! from a catalog of images) started in the pod's network namespace with the pod hostname, a
//! private /tmp, the pod's resolv.conf and request bind mounts, logging in the CRI format, with
//! real exit codes, memory limits (cgroup v1) and stats from /proc. Pod sandboxes get a network
//! namespace with a veth into the node bridge (`cbr0`) and an IP from the pod CIDR given by
//! UpdateRuntimeConfig. Faults (pull delay/failure, create failure, crashes, RPC latency) come
//! from the config, `<state-dir>/faults.json`, or [`Handle::set_faults`]. State is persisted in
//! `<state-dir>/state.json`, so a restarted instance re-attaches to running containers.
//!
//! Run it only inside a network namespace made for the node (never in the host's): it creates
//! links, addresses and nft rules in the namespace it runs in.

pub mod bench;
pub mod calllog;
pub mod cgroup;
pub mod client;
pub mod config;
pub mod container;
pub mod error;
pub mod exec;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod net;
pub mod procfs;
pub mod runtime;
pub mod server;
pub mod service;
pub mod spawn;
pub mod stats;
pub mod store;

pub use config::{Catalog, Config, Faults, ImageEntry, PAUSE_IMAGE, WORKLOAD_IMAGE};
pub use error::{Error, Result};
pub use server::{FakeCri, Handle};
