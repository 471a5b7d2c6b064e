//! The reference node agent (kubelet): registration, heartbeats, pod workers, probes.
//!
//! `node-agent --config kubelet-config.yaml --kubeconfig PATH --node-name N
//!   --container-runtime-endpoint unix:///… [--root-dir DIR] [--node-ip IP] [--pod-cidr CIDR]
//!   [--healthz-bind-address HOST:PORT]` (see [`cli::Flags`]). The config file is a
//! `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1, [`config::KubeletConfiguration`]) with
//! upstream defaults; non-upstream knobs live in its `nodekit:` block ([`config::Extensions`]).
//! A bad config exits with status 2.
//!
//! Layout: [`node`] (registration, status, lease), [`pods`] (the pure worker state machine in
//! [`pods::worker`], its effects, status rendering, events, the pod manager), [`probes`] (the pure
//! probe state machine and the exec/http/tcp/grpc checkers), [`cri`] (the narrow [`cri::Runtime`]
//! trait and its tonic client), [`server`] (/healthz, /metrics), [`kubelet_api`] (the kubelet
//! API over HTTPS on 10250), [`agent`] (wiring).

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
pub mod static_pods;
pub mod eviction;
pub mod faults;
pub mod health;
pub mod kubelet_api;
pub mod container_logs;
