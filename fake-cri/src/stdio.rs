//! A container's stdio: two log pipes, or a terminal (`tty: true`).
//!
//! With pipes, stdout and stderr are the write ends of two pipes whose read ends fake-cri
//! copies to the log as `stdout` and `stderr` lines; the container keeps the read ends at fds 3
//! and 4, so writes never fail with EPIPE and a restarted fake-cri reopens them via
//! `/proc/<pid>/fd`. With a terminal, stdin, stdout and stderr are the slave side of a pty, the
//! process's controlling terminal (as runc gives a container with a console); fake-cri copies the
//! master side to the log as `stdout` (a terminal merges the streams and ends lines with
//! `\r\n`), attaches write their input to it and set its size, and the container keeps the
//! master side at fd 3, which a restarted fake-cri takes back with `pidfd_getfd` ([`take_fd`]).

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::logs::{LogSink, copy_stream};
use crate::store::ContainerRecord;

/// The container's side and fake-cri's side of its stdio.
pub(crate) enum ContainerIo {
    Pipes { out_r: OwnedFd, out_w: OwnedFd, err_r: OwnedFd, err_w: OwnedFd },
    Terminal { master: OwnedFd, slave: OwnedFd },
}

/// [`ContainerIo`] once the child holds its side: what fake-cri keeps.
pub(crate) enum Spawned {
    Pipes { out_r: OwnedFd, err_r: OwnedFd },
    Terminal { master: Arc<OwnedFd> },
}

impl ContainerIo {
    /// Pipes, or a terminal when the container asks for `tty`.
    pub(crate) fn new(rec: &ContainerRecord) -> Result<ContainerIo> {
        if rec.config.tty {
            let pty = nix::pty::openpty(None, None)
                .map_err(|e| Error::Unknown(format!("failed to start container {:?}: allocating a terminal: {e}", rec.id)))?;
            return Ok(ContainerIo::Terminal { master: pty.master, slave: pty.slave });
        }
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
        Ok(ContainerIo::Pipes { out_r, out_w, err_r, err_w })
    }

    /// Whether stdin is a terminal that becomes the controlling one.
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self, ContainerIo::Terminal { .. })
    }

    /// The fds the container keeps beyond its stdio (see the module documentation).
    pub(crate) fn kept_fds(&self) -> Result<Vec<(OwnedFd, i32)>> {
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(Error::io("dup fd"));
        Ok(match self {
            ContainerIo::Pipes { out_r, err_r, .. } => vec![(dup(out_r)?, 3), (dup(err_r)?, 4)],
            ContainerIo::Terminal { master, .. } => vec![(dup(master)?, 3)],
        })
    }

    /// Sets the command's stdio; `stdin`: the container was created with one (a terminal is
    /// always stdin too, as it must be the controlling terminal).
    pub(crate) fn attach(self, cmd: &mut tokio::process::Command, stdin: bool) -> Result<Spawned> {
        use std::process::Stdio;
        match self {
            ContainerIo::Pipes { out_r, out_w, err_r, err_w } => {
                cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
                Ok(Spawned::Pipes { out_r, err_r })
            }
            ContainerIo::Terminal { master, slave } => {
                let dup = |fd: &OwnedFd| fd.try_clone().map_err(Error::io("dup terminal"));
                cmd.stdin(Stdio::from(dup(&slave)?)).stdout(Stdio::from(dup(&slave)?)).stderr(Stdio::from(slave));
                Ok(Spawned::Terminal { master: Arc::new(master) })
            }
        }
    }
}

impl Spawned {
    /// Where attaches write the container's input: its stdin pipe, or the terminal.
    pub(crate) fn stdin(&self, child: &mut tokio::process::Child, stdin: bool) -> Result<Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>> {
        Ok(match self {
            Spawned::Pipes { .. } => child.stdin.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>),
            Spawned::Terminal { master } if stdin => {
                let w = master.try_clone().map_err(Error::io("dup terminal"))?;
                Some(Box::new(tokio::fs::File::from_std(std::fs::File::from(w))))
            }
            Spawned::Terminal { .. } => None,
        })
    }

    /// The terminal's master side, for resizes.
    pub(crate) fn terminal(&self) -> Option<Arc<OwnedFd>> {
        match self {
            Spawned::Terminal { master } => Some(master.clone()),
            Spawned::Pipes { .. } => None,
        }
    }

    /// Starts copying the container's output to its log.
    pub(crate) fn copy_output(self, tasks: &TaskTracker, log: Option<Arc<LogSink>>) -> Result<Vec<JoinHandle<()>>> {
        Ok(match self {
            Spawned::Pipes { out_r, err_r } => {
                let out = tokio::net::unix::pipe::Receiver::from_owned_fd(out_r).map_err(Error::io("log pipe"))?;
                let err = tokio::net::unix::pipe::Receiver::from_owned_fd(err_r).map_err(Error::io("log pipe"))?;
                vec![tasks.spawn(copy_stream(out, "stdout", log.clone())), tasks.spawn(copy_stream(err, "stderr", log))]
            }
            Spawned::Terminal { master } => {
                // The master side reads EIO, the end of the output, once nothing holds the
                // terminal's slave side.
                let r = master.try_clone().map_err(Error::io("dup terminal"))?;
                vec![tasks.spawn(copy_stream(tokio::fs::File::from_std(std::fs::File::from(r)), "stdout", log))]
            }
        })
    }
}

/// A duplicate of fd `fd` of process `pid` (`pidfd_getfd`, Linux 5.6); `None` when the process
/// is gone or the kernel refuses.
pub(crate) fn take_fd(pid: i32, fd: i32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty()).ok()
}
