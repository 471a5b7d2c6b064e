//! Typed errors of fake-cri and their mapping to gRPC status codes (containerd-like messages).
use tonic::{Code, Status};

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object does not exist.
    #[error("an error occurred when try to find {kind} {id:?}: not found")]
    NotFound {
        /// "container", "sandbox" or "image".
        kind: &'static str,
        /// The id or reference asked for.
        id: String,
    },
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The object is not in a state that allows the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The object already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A deadline passed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A bounded resource is used up.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A part of the runtime is not running.
    #[error("{0}")]
    Unavailable(String),
    /// An injected or runtime failure.
    #[error("{0}")]
    Unknown(String),
    /// An I/O failure with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A netlink failure.
    #[error("netlink {context}: {message}")]
    Netlink {
        /// What was being done.
        context: String,
        /// The error text.
        message: String,
    },
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys {
        /// What was being done.
        context: String,
        /// errno.
        #[source]
        source: nix::Error,
    },
    /// JSON (state, catalog, faults) could not be read.
    #[error("{context}: {source}")]
    Json {
        /// What was being read.
        context: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// Wraps an errno.
    pub fn sys(context: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
        let context = context.into();
        move |source| Error::Sys { context, source }
    }

    /// Wraps a netlink error.
    pub fn netlink(context: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
        let context = context.into();
        move |e| Error::Netlink { context, message: e.to_string() }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::NotFound { .. } => Code::NotFound,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::Unavailable(_) => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        Status::new(e.code(), e.to_string())
    }
}
