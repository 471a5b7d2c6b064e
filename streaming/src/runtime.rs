//! What the streaming server asks of a container runtime: run a command, attach to a container,
//! open a connection into a pod sandbox's network namespace.

use std::fmt;
use std::pin::Pin;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// A terminal size, as the client sends it on the resize channel (`{"Width":80,"Height":24}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TermSize {
    pub width: u16,
    pub height: u16,
}

/// The streams of one exec or attach session, as the client asked for them.
pub struct Stdio {
    /// The client's stdin; reads end (EOF) when the client closes it (the v5 CLOSE signal on
    /// WebSocket, FIN on SPDY) or the connection ends.
    pub stdin: Option<Pin<Box<dyn AsyncRead + Send>>>,
    pub stdout: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// Never set with `tty`: a terminal multiplexes stderr into stdout.
    pub stderr: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pub tty: bool,
    /// Terminal size changes; set with `tty` (on SPDY from v3 on, as upstream).
    pub resize: Option<mpsc::Receiver<TermSize>>,
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stdio")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("tty", &self.tty)
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

/// How an exec or attach ended other than successfully.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The command exited with this non-zero code; the client gets upstream's `NonZeroExitCode`
    /// status (`0` counts as success).
    #[error("exit code {0}")]
    ExitCode(i32),
    /// The runtime could not run or attach; the client gets an `InternalError` status.
    #[error("{0}")]
    Failed(String),
}

/// A byte stream both ways: what [`Runtime::port_forward`] connects to.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// The container runtime behind the streaming server.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `cmd` in the container with `io`; resolves when the command has ended and its output
    /// has been written.
    fn exec(&self, container_id: &str, cmd: &[String], io: Stdio) -> BoxFuture<'static, Result<(), ExecError>>;
    /// Attaches `io` to the container's main process; resolves when the attach ends.
    fn attach(&self, container_id: &str, io: Stdio) -> BoxFuture<'static, Result<(), ExecError>>;
    /// A connection to `port` inside the pod sandbox's network namespace.
    fn port_forward(&self, pod_sandbox_id: &str, port: u16) -> BoxFuture<'static, Result<Box<dyn Duplex>, String>>;
}
