//! Exec and attach sessions (upstream `remotecommand/{exec,attach,httpstream,websocket}.go`):
//! set up the client's streams over WebSocket channels or SPDY streams, run the runtime, write
//! the outcome on the error channel, close.

mod resize;
pub(crate) mod spdy;
mod status;
pub(crate) mod websocket;

use std::sync::Arc;

use crate::runtime::{ExecError, Runtime, Stdio};
pub(crate) use status::{Status, StatusFormat};

/// What a session runs.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Exec { container_id: String, cmd: Vec<String> },
    Attach { container_id: String },
}

/// Runs the exec or attach and words its outcome as upstream's `ServeExec` / `ServeAttach`.
pub(crate) async fn run<R: Runtime>(runtime: &Arc<R>, target: &Target, stdio: Stdio) -> Status {
    match target {
        Target::Exec { container_id, cmd } => match runtime.exec(container_id, cmd, stdio).await {
            Ok(()) | Err(ExecError::ExitCode(0)) => Status::success(),
            // As containerd words a `CodeExitError`; kubectl shows only the code.
            Err(ExecError::ExitCode(code)) => {
                Status::non_zero_exit(code, &format!("error executing command [{}], exit code {code}", cmd.join(" ")))
            }
            Err(ExecError::Failed(msg)) => {
                let err = format!("error executing command in container: {msg}");
                tracing::warn!(container_id, "{err}");
                Status::internal(&err)
            }
        },
        Target::Attach { container_id } => match runtime.attach(container_id, stdio).await {
            Ok(()) | Err(ExecError::ExitCode(0)) => Status::success(),
            Err(e) => {
                let err = format!("error attaching to container: {e}");
                tracing::warn!(container_id, "{err}");
                Status::internal(&err)
            }
        },
    }
}
