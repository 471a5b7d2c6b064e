//! In-memory Kubernetes API server with the control-plane controllers a node needs,
//! plus a test surface (audit log, fault injection, partition switch).
//!
//! Start it with [`Server::start`] (binds `Config::listen`) or [`Server::serve`] (an already-bound
//! listener, e.g. created inside a network namespace); both return a [`Handle`].
//!
//! Admin HTTP API (outside the Kubernetes API, never audited, answered during a partition):
//! - `GET /nodekit/audit` (JSON array; `?format=jsonl` for JSON lines), `DELETE /nodekit/audit`
//! - `GET /nodekit/faults`, `POST /nodekit/faults` (a [`FaultRule`] as JSON, returns `{"id": N}`),
//!   `DELETE /nodekit/faults` (all), `DELETE /nodekit/faults/{id}`
//! - `GET /nodekit/partition`, `POST /nodekit/partition` with `{"enabled": bool}` or `?enabled=bool`
//! - `GET /nodekit/healthz`
//!
//! With [`Config::tls`] set the server speaks HTTPS only and records the user a verified client
//! certificate names (`CN` = user, `O` = groups) in each audit entry.
//!
//! Every server stores upstream's bootstrap RBAC policy at start, serves the RBAC resources and
//! the review APIs (`kubectl auth whoami`, `kubectl auth can-i`). With
//! [`Config::authorization`] it also enforces them as kube-apiserver with
//! `--authorization-mode=Node,RBAC` and NodeRestriction ([`http::authz`]).
//!
//! ServiceAccount tokens are always on, as upstream's authenticator: `serviceaccounts/token`
//! (`kubectl create token`) issues JWTs signed with a key made at start (or
//! [`Config::service_accounts`]' key file), bearer tokens are checked against it and the
//! objects they name ([`auth::service_account`]), and TokenReview reviews them. The
//! serviceaccounts controller keeps a `default` ServiceAccount in every namespace, and over
//! HTTPS the root CA publisher a `kube-root-ca.crt` ConfigMap.

pub mod admission;
pub mod alloc;
pub mod api;
pub mod apply;
pub mod audit;
pub mod auth;
pub mod authz_snapshot;
pub mod bench;
pub mod bench_tls;
pub mod config;
pub mod controllers;
pub mod debug_faults;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod events;
pub mod eviction;
pub mod faults;
pub mod fields;
pub mod http;
pub mod kubelet_client;
pub mod openapi;
pub mod patch;
pub mod pdb;
pub mod protobuf;
pub mod rbac_resources;
pub mod resources;
pub mod runtime_classes;
pub mod runtimeclass_admission;
pub mod sa_admission;
pub mod selectors;
pub mod server;
pub mod store;
pub mod table;
pub mod tls;
pub mod validation;

pub use audit::{AuditEntry, UserInfo};
pub use auth::service_account::ServiceAccountConfig;
pub use bench::{BenchOpts, BenchReport, RunFigures};
pub use config::{Config, KubeletClientConfig, TlsConfig};
pub use error::{ApiError, Error, Result};
pub use faults::FaultRule;
pub use server::{Handle, Server, kubeconfig_yaml};
