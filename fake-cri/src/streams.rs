//! CRI Exec, Attach and PortForward on real processes and sockets, behind the runtime's
//! streaming server ([`streaming::Server`]): an exec runs in the container's namespaces with
//! its stdio connected to the client; an attach streams the container's output as it is read
//! from its pipes; a port-forward connects to localhost inside the sandbox's network
//! namespace, as containerd does.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use streaming::{Duplex, ExecError, Stdio};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::runtime::{Runtime, lock};

/// How long connecting to a forwarded port may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime as the streaming server sees it.
pub struct Streams(pub Arc<Runtime>);

impl streaming::Runtime for Streams {
    fn exec(&self, container_id: &str, cmd: &[String], io: Stdio) -> BoxFuture<'static, Result<(), ExecError>> {
        let (rt, id, cmd) = (self.0.clone(), container_id.to_string(), cmd.to_vec());
        Box::pin(async move { rt.exec_streaming(&id, &cmd, io).await })
    }

    fn attach(&self, container_id: &str, io: Stdio) -> BoxFuture<'static, Result<(), ExecError>> {
        let (rt, id) = (self.0.clone(), container_id.to_string());
        Box::pin(async move { rt.attach_streaming(&id, io).await })
    }

    fn port_forward(&self, pod_sandbox_id: &str, port: u16) -> BoxFuture<'static, Result<Box<dyn Duplex>, String>> {
        let (rt, id) = (self.0.clone(), pod_sandbox_id.to_string());
        Box::pin(async move { rt.dial_in_sandbox(&id, port).await.map(|s| Box::new(s) as Box<dyn Duplex>) })
    }
}

/// Copies `from` into `to` until EOF, then closes `to`.
pub(crate) async fn pump<R: AsyncRead + Unpin + ?Sized, W: AsyncWrite + Unpin + ?Sized>(from: &mut R, to: &mut W) {
    let _ = tokio::io::copy(from, to).await;
    let _ = to.shutdown().await;
}

/// Reads `from` to its end, into `to` when there is one.
pub(crate) async fn drain<R: AsyncRead + Unpin>(from: Option<R>, to: Option<Pin<Box<dyn AsyncWrite + Send>>>) {
    let Some(mut from) = from else { return };
    match to {
        Some(mut to) => pump(&mut from, &mut to).await,
        None => pump(&mut from, &mut tokio::io::sink()).await,
    }
}

/// Waits for an exec's process, then kills what it left in its process group (`pgid`, which
/// is its session's too for a terminal exec); a non-zero exit is [`ExecError::ExitCode`].
pub(crate) async fn wait_exec(mut child: tokio::process::Child, pgid: Option<i32>) -> Result<(), ExecError> {
    let status = child.wait().await;
    if let Some(g) = pgid {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
    let status = status.map_err(|e| ExecError::Failed(format!("waiting for the exec process: {e}")))?;
    match crate::exec::exit_code(status) {
        0 => Ok(()),
        code => Err(ExecError::ExitCode(code)),
    }
}

impl Runtime {
    /// Runs `cmd` in container `id` with the client's stdio; a non-zero exit is
    /// [`ExecError::ExitCode`]. Whatever the command left running in its process group is
    /// killed when it exits, and everything when the client goes away.
    pub async fn exec_streaming(&self, id: &str, cmd: &[String], io: Stdio) -> Result<(), ExecError> {
        if io.tty {
            return self.exec_tty(id, cmd, io).await;
        }
        let stdin = if io.stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() };
        let mut child = self.spawn_exec(id, cmd, stdin, None).map_err(|e| ExecError::Failed(e.to_string()))?;
        let pgid = child.id().map(|p| p as i32);
        // Stdin is fed until the client closes it or the command exits.
        let mut feeder = tokio::task::JoinSet::new();
        if let (Some(mut from), Some(mut to)) = (io.stdin, child.stdin.take()) {
            feeder.spawn(async move { pump(&mut from, &mut to).await });
        }
        let out = drain(child.stdout.take(), io.stdout);
        let err = drain(child.stderr.take(), io.stderr);
        let (outcome, (), ()) = tokio::join!(wait_exec(child, pgid), out, err);
        feeder.abort_all();
        outcome
    }

    /// Streams container `id`'s output from now until it exits or the client goes away. The
    /// client's input goes to the container's stdin when it was created with `stdin` (the end of
    /// that input closes it under `stdin_once`); to a container without stdin it is dropped.
    pub async fn attach_streaming(&self, id: &str, io: Stdio) -> Result<(), ExecError> {
        let full_id = lock(&self.state).container_id(id).map_err(|e| ExecError::Failed(e.to_string()))?;
        let live = lock(&self.live).get(&full_id).cloned();
        let Some(live) = live else {
            return Err(ExecError::Failed(format!("container {id:?} is not running")));
        };
        let Some(log) = live.log.clone() else {
            return Err(ExecError::Failed(format!("container {id:?} has no output to attach to (no log path)")));
        };
        let mut output = log.subscribe();
        let mut exited = live.exited.clone();
        // An attach with a terminal resizes the container's terminal.
        let mut resizer = tokio::task::JoinSet::new();
        if let (Some(mut sizes), Some(master)) = (io.resize, live.terminal.clone()) {
            resizer.spawn(async move {
                while let Some(size) = sizes.recv().await {
                    if let Err(e) = crate::tty::set_size(&master, size) {
                        tracing::warn!(error = %e, "resizing a container's terminal failed");
                    }
                }
            });
        }
        let (mut stdout, mut stderr) = (io.stdout, io.stderr);
        let mut stdin_gone = io.stdin.is_none();
        let mut stdin = io.stdin;
        let mut target = if stdin_gone { None } else { Some(live.stdin.lock().await) };
        let mut sink = [0u8; 4096];
        loop {
            tokio::select! {
                chunk = output.recv() => match chunk {
                    Ok(c) => {
                        let to = if c.stream == "stderr" && !io.tty { stderr.as_mut() } else { stdout.as_mut() };
                        if let Some(w) = to && w.write_all(&c.data).await.is_err() {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!(container = id, missed = n, "attached client fell behind: output chunks skipped"),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                n = async { tokio::io::AsyncReadExt::read(stdin.as_mut().expect("guarded"), &mut sink).await }, if !stdin_gone => {
                    let container_stdin = target.as_mut().and_then(|g| g.as_mut());
                    match (n, container_stdin) {
                        (Ok(k), Some(w)) if k > 0 => {
                            if w.write_all(&sink[..k]).await.and(w.flush().await).is_err() {
                                stdin_gone = true;
                            }
                        }
                        (Ok(k), None) if k > 0 => {}
                        _ => {
                            stdin_gone = true;
                            if live.stdin_once && let Some(g) = target.as_mut() {
                                g.take();
                            }
                        }
                    }
                }
                _ = futures::FutureExt::map(exited.wait_for(|e| *e), |r| r.is_ok()) => break,
            }
        }
        resizer.abort_all();
        drop(stdin);
        drop(target);
        for w in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
            let _ = w.shutdown().await;
        }
        Ok(())
    }

    /// A connection to `port` on localhost inside sandbox `id`'s network namespace (IPv4,
    /// then IPv6), with containerd's message when neither answers.
    pub async fn dial_in_sandbox(&self, id: &str, port: u16) -> Result<tokio::net::TcpStream, String> {
        let full_id = lock(&self.state).sandbox_id(id).map_err(|e| e.to_string())?;
        let netns = lock(&self.netns).get(&full_id).cloned();
        let std = std::thread::spawn(move || -> Result<std::net::TcpStream, String> {
            if let Some(fd) = &netns {
                setns(fd.as_ref(), CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering the sandbox's network namespace: {e}"))?;
            }
            let v4 = std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), DIAL_TIMEOUT);
            let v4_err = match v4 {
                Ok(s) => return Ok(s),
                Err(e) => e,
            };
            std::net::TcpStream::connect_timeout(&SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)), DIAL_TIMEOUT).map_err(|v6_err| {
                format!("failed to connect to localhost:{port} inside namespace {full_id:?}, IPv4: {v4_err} IPv6 {v6_err} ")
            })
        })
        .join()
        .map_err(|_| "the port-forward dialer thread panicked".to_string())??;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let _ = std.set_nodelay(true);
        tokio::net::TcpStream::from_std(std).map_err(|e| e.to_string())
    }
}
