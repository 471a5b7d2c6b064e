//! The harness's error type: one enum with the context of what was being done.

use std::path::PathBuf;

/// Result with the harness [`Error`] as default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the harness, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys {
        /// What was being done.
        context: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// A netlink request failed.
    #[error("{context}: {source}")]
    Netlink {
        /// What was being done.
        context: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// `sealed::enter` was called in a process that already runs several threads.
    #[error(
        "sealed::enter must run first in a single-threaded process, but this process has {threads} threads \
         (call it at the top of main, before any runtime or thread is started)"
    )]
    NotSingleThreaded {
        /// Threads counted in /proc/self/status.
        threads: usize,
    },
    /// A named thing (host, binary, capture) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A plan or argument is invalid.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        why: String,
    },
    /// A condition was not reached before its deadline.
    #[error("timed out after {after:?} waiting for {what}; last observation: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: std::time::Duration,
        /// The last thing observed.
        last: String,
    },
    /// A pcap file could not be parsed.
    #[error("bad pcap file {path}: {why}")]
    Pcap {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        why: String,
    },
    /// A packet-path assertion failed.
    #[error("{0}")]
    Path(String),
    /// A child process (sealed child, component) failed.
    #[error("{0}")]
    Child(String),
    /// A certificate or key of the world PKI could not be made.
    #[error("making {what}: {source}")]
    Certificate {
        /// What was being made.
        what: String,
        /// The generator's error.
        #[source]
        source: rcgen::Error,
    },
}

impl Error {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
    /// Wraps an errno with context.
    pub fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys { context: context.into(), source }
    }
    /// Wraps a netlink error with context.
    pub fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink { context: context.into(), source }
    }
    /// An invalid argument or plan.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), why: why.into() }
    }
}

/// Adds context to I/O and nix results.
pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(context(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, rtnetlink::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::netlink(context(), e))
    }
}
