//! The CRI side: validating Exec / Attach / PortForward requests (upstream `server.go`
//! `validateExecRequest`, `validateAttachRequest`, `GetPortForward`) and what is kept for the
//! HTTP request that follows.

use crate::cache;

/// Why `Server::get_exec` / `get_attach` / `get_port_forward` refused; the messages are
/// upstream's (gRPC `InvalidArgument`, or `ResourceExhausted` for a full token cache).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("missing required container_id")]
    MissingContainerId,
    #[error("missing required pod_sandbox_id")]
    MissingPodSandboxId,
    /// A terminal cannot multiplex stderr.
    #[error("tty and stderr cannot both be true")]
    TtyWithStderr,
    #[error("one of stdin, stdout, or stderr must be set")]
    NoExecStreams,
    /// Upstream words the attach check differently from the exec one.
    #[error("one of stdin, stdout, and stderr must be set")]
    NoAttachStreams,
    #[error(transparent)]
    Cache(#[from] cache::Error),
}

/// The gRPC status code a CRI server answers a [`RequestError`] with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestErrorCode {
    InvalidArgument,
    ResourceExhausted,
    Internal,
}

impl RequestError {
    pub fn code(&self) -> RequestErrorCode {
        match self {
            Self::Cache(cache::Error::TooManyInFlight) => RequestErrorCode::ResourceExhausted,
            Self::Cache(cache::Error::NoUniqueToken) => RequestErrorCode::Internal,
            _ => RequestErrorCode::InvalidArgument,
        }
    }
}

pub type Result<T, E = RequestError> = std::result::Result<T, E>;

/// Which streams the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// What a token stands for.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Exec { container_id: String, cmd: Vec<String>, opts: StreamOptions },
    Attach { container_id: String, opts: StreamOptions },
    PortForward { pod_sandbox_id: String },
}

/// Exec and attach check the same things; only the last message differs.
pub(crate) fn validate(container_id: &str, opts: StreamOptions, attach: bool) -> Result<()> {
    if container_id.is_empty() {
        return Err(RequestError::MissingContainerId);
    }
    if opts.tty && opts.stderr {
        return Err(RequestError::TtyWithStderr);
    }
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return Err(if attach { RequestError::NoAttachStreams } else { RequestError::NoExecStreams });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> StreamOptions {
        StreamOptions { stdin, stdout, stderr, tty }
    }

    #[test]
    fn messages_are_upstreams() {
        let err = |id, o, attach| validate(id, o, attach).unwrap_err().to_string();
        assert_eq!(err("", opts(true, true, false, false), false), "missing required container_id");
        assert_eq!(err("c", opts(false, true, true, true), false), "tty and stderr cannot both be true");
        assert_eq!(err("c", opts(false, false, false, false), false), "one of stdin, stdout, or stderr must be set");
        assert_eq!(err("c", opts(false, false, false, true), true), "one of stdin, stdout, and stderr must be set");
        assert!(validate("c", opts(true, false, false, true), false).is_ok());
        assert_eq!(RequestError::from(cache::Error::TooManyInFlight).code(), RequestErrorCode::ResourceExhausted);
    }
}
