//! A container runtime's streaming server, as upstream's `k8s.io/kubelet/pkg/cri/streaming`:
//! CRI Exec / Attach / PortForward hand out a single-use URL ([`Server::get_exec`] …); a client
//! (the node agent, which proxies kubectl) upgrades on it to WebSocket channels or SPDY/3.1 and
//! the server runs the command, attaches, or forwards a port through a [`Runtime`].
//!
//! - exec/attach over WebSocket: `v5.channel.k8s.io`, `v4.channel.k8s.io`,
//!   `v4.base64.channel.k8s.io`, `channel.k8s.io`, `base64.channel.k8s.io` (or none);
//! - exec/attach over SPDY: `X-Stream-Protocol-Version` v5 (= v4), v4, v3, v2, `channel.k8s.io`;
//! - port-forward over SPDY (`portforward.k8s.io`) or WebSocket (`v4.channel.k8s.io`, with the
//!   `ports` query parameter).
//!
//! Anything else (such as kubectl's `SPDY/3.1+portforward.k8s.io` tunnel) is refused with a
//! non-101 answer, on which clients fall back to plain SPDY.

mod activity;
mod cache;
pub mod constants;
mod http;
mod httpstream;
mod portforward;
mod remotecommand;
mod request;
mod runtime;
mod server;
mod ws;

pub use cache::{CACHE_TTL, MAX_IN_FLIGHT, TOKEN_LEN};
pub use request::{RequestError, RequestErrorCode};
pub use runtime::{Duplex, ExecError, Runtime, Stdio, TermSize};
pub use server::{Config, Server};

/// Token cache errors, carried by [`RequestError::Cache`].
pub use cache::Error as CacheError;
