//! The library's error type.

use std::time::Duration;

/// Errors of the agent's loops and setup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("runtime: {0}")]
    Cri(#[from] crate::cri::CriError),
    #[error("API {op}: {source}")]
    Kube { op: String, source: Box<kube::Error> },
    #[error("API {op}: no answer within {after:?}")]
    ApiTimeout { op: String, after: Duration },
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    KubeletApi(#[from] crate::kubelet_api::ServeError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The HTTP status code of an API error, if any.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Kube { source, .. } => match source.as_ref() {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs one API request with a deadline so that a hanging server cannot wedge a loop.
pub async fn api<T, F>(op: impl Into<String>, after: Duration, fut: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T, kube::Error>>,
{
    let op = op.into();
    match tokio::time::timeout(after, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Error::Kube { op, source: Box::new(source) }),
        Err(_) => Err(Error::ApiTimeout { op, after }),
    }
}
