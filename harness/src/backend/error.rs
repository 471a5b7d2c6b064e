//! Errors of the backends.

/// Result with the backend [`Error`] as default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or driving a backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A world operation failed.
    #[error(transparent)]
    Harness(#[from] crate::Error),
    /// The fake API server failed.
    #[error("fake API server: {0}")]
    ApiServer(#[from] fake_apiserver::Error),
    /// A Kubernetes client call failed.
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A component did not start or misbehaved.
    #[error("{0}")]
    Component(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }
}
