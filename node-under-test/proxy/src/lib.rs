//! The reference service proxy (kube-proxy): watches Services, EndpointSlices and its Node and
//! programs nftables (table `ip kube-proxy`) or iptables (`KUBE-*` chains) in the namespace it
//! runs in.

pub mod bench;
pub mod config;
pub mod conntrack;
pub mod convert;
pub mod ctx;
pub mod engine;
pub mod error;
pub mod exec;
pub mod ipt;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod names;
pub mod netns;
pub mod nft;
pub mod run;
pub mod server;
pub mod watch;

pub use error::{Error, Result};
