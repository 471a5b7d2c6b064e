//! SPDY/3.1 as Kubernetes streaming speaks it (the framing of moby/spdystream): frames
//! ([`frame`]), header blocks compressed with zlib and SPDY's dictionary ([`headers`]), and a
//! session that multiplexes streams over one byte stream, as server (a runtime's streaming
//! server) or client (the API server towards a kubelet, and tests).
//!
//! As spdystream, the session neither sends nor enforces flow-control windows (WINDOW_UPDATE
//! and SETTINGS from the peer are ignored); what a stream writes is bounded by a byte budget
//! per session instead, so a slow peer slows writers down rather than growing memory.

pub mod dictionary;
pub mod frame;
pub mod headers;
mod session;
mod stream;

pub use session::{Incoming, Session};
pub use stream::Stream;

/// Header names are lower case, as SPDY/3 requires; a name may repeat.
pub type Headers = Vec<(String, String)>;

/// What can go wrong on a session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spdy: {0}")]
    Protocol(String),
    #[error("spdy: io: {0}")]
    Io(#[from] std::io::Error),
    #[error("spdy: the session is closed")]
    Closed,
    #[error("spdy: stream {0} was reset by the peer (status {1})")]
    Reset(u32, u32),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
