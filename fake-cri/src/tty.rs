//! Exec with a terminal: the command's stdin, stdout and stderr are the slave side of a pty,
//! its controlling terminal; the master side carries the client's input to it and its output
//! (stdout and stderr merged, with the terminal's line discipline: echo, `\r\n`) to the client,
//! and the client's resizes set the terminal's size.

use std::os::fd::{AsRawFd, OwnedFd};

use streaming::{ExecError, Stdio, TermSize};

use crate::runtime::Runtime;
use crate::streams::{drain, pump, wait_exec};

/// Sets the size of the terminal whose master side is `master`.
pub(crate) fn set_size(master: &OwnedFd, size: TermSize) -> std::io::Result<()> {
    let ws = nix::pty::Winsize { ws_row: size.height, ws_col: size.width, ws_xpixel: 0, ws_ypixel: 0 };
    #[allow(unsafe_code)]
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which lives across the call; the
    // fd is open (borrowed from `master`).
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const nix::pty::Winsize) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

impl Runtime {
    /// Runs `cmd` in container `id` on a new terminal connected to the client; a non-zero exit
    /// is [`ExecError::ExitCode`].
    pub(crate) async fn exec_tty(&self, id: &str, cmd: &[String], io: Stdio) -> Result<(), ExecError> {
        let pty = nix::pty::openpty(None, None).map_err(|e| ExecError::Failed(format!("allocating a terminal: {e}")))?;
        let failed = |what: &str, e: std::io::Error| ExecError::Failed(format!("{what}: {e}"));
        let sizer = pty.master.try_clone().map_err(|e| failed("dup terminal", e))?;
        let input = pty.master.try_clone().map_err(|e| failed("dup terminal", e))?;
        let child = self
            .spawn_exec(id, cmd, std::process::Stdio::null(), Some(&pty.slave))
            .map_err(|e| ExecError::Failed(e.to_string()))?;
        // Only the command holds the terminal now: the master reads EIO once it is gone.
        drop(pty.slave);
        let session = child.id().map(|p| p as i32);
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(mut from) = io.stdin {
            let mut to = tokio::fs::File::from_std(std::fs::File::from(input));
            tasks.spawn(async move { pump(&mut from, &mut to).await });
        }
        if let Some(mut sizes) = io.resize {
            tasks.spawn(async move {
                while let Some(size) = sizes.recv().await {
                    if let Err(e) = set_size(&sizer, size) {
                        tracing::warn!(error = %e, "resizing an exec's terminal failed");
                    }
                }
            });
        }
        // The master side reads EIO, the end of the output, once nothing holds the terminal;
        // what the command left on the terminal's session is killed when it exits.
        let output = tokio::fs::File::from_std(std::fs::File::from(pty.master));
        let (outcome, ()) = tokio::join!(wait_exec(child, session), drain(Some(output), io.stdout));
        tasks.abort_all();
        outcome
    }
}
