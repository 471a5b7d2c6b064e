//! ExecSync: a real process inside the container's namespaces and cgroup, with a timeout that
//! kills its whole process group (nothing is left behind).
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::spawn::prepare;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Output cap per stream (containerd caps exec output as well).
pub const MAX_OUTPUT: usize = 16 << 20;

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: Option<R>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(r) = r {
        let _ = r.take(MAX_OUTPUT as u64).read_to_end(&mut out).await;
    }
    out
}

impl Runtime {
    /// Starts `cmd` in running container `id` (its namespaces, cgroup, user and environment)
    /// in its own process group, with the given stdio.
    /// Starts `cmd` in container `id`: stdout and stderr piped, stdin as given; with a
    /// `terminal` (the slave side of a pty) all three are that terminal, which becomes the
    /// process's controlling terminal.
    pub(crate) fn spawn_exec(&self, id: &str, cmd: &[String], stdin: std::process::Stdio, terminal: Option<&OwnedFd>) -> Result<tokio::process::Child> {
        let Some(argv0) = cmd.first().cloned() else {
            return Err(Error::InvalidArgument("exec command must not be empty".into()));
        };
        let (c, pid) = self.exec_target(id)?;
        let binary = self
            .cfg
            .catalog
            .images
            .iter()
            .find(|e| c.image_id == crate::images::image_id(e))
            .map(|e| e.binary.clone())
            .unwrap_or_else(|| c.exec_path.clone());
        let program = crate::container::resolve_program(&argv0, &binary);
        let mut enter = self.enter_container(&c, pid)?;
        enter.controlling_tty = terminal.is_some();
        let stdio = |piped: fn() -> std::process::Stdio| -> Result<std::process::Stdio> {
            match terminal {
                Some(t) => Ok(std::process::Stdio::from(t.try_clone().map_err(Error::io("dup terminal"))?)),
                None => Ok(piped()),
            }
        };
        let stdin = match terminal {
            Some(_) => stdio(std::process::Stdio::null)?,
            None => stdin,
        };
        // The image binary may be hidden inside the container's view (private /tmp): exec it
        // through an fd opened here; host programs are looked up inside the container's view.
        let pinned = if program == binary { Some(crate::spawn::pinned_program(&binary)?) } else { None };
        let mut command = tokio::process::Command::new(pinned.as_ref().map(|p| p.1.clone()).unwrap_or(program));
        command
            .arg0(&argv0)
            .args(cmd.iter().skip(1))
            .env_clear()
            .envs(c.env.iter().map(|e| e.split_once('=').unwrap_or((e.as_str(), ""))))
            .stdin(stdin)
            .stdout(stdio(std::process::Stdio::piped)?)
            .stderr(stdio(std::process::Stdio::piped)?)
            .kill_on_drop(true);
        prepare(command.as_std_mut(), &enter);
        let child = command
            .spawn()
            .map_err(|e| Error::Unknown(format!("failed to exec in container: failed to start exec {argv0:?}: {e}")))?;
        drop(enter);
        drop(pinned);
        Ok(child)
    }

    /// ExecSync: runs `cmd` in the container; `timeout` seconds (0: none).
    pub async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout: i64) -> Result<(Vec<u8>, Vec<u8>, i32)> {
        let mut child = self.spawn_exec(id, &cmd, std::process::Stdio::null(), None)?;
        let pgid = child.id().map(|p| p as i32);
        let out = tokio::spawn(read_capped(child.stdout.take()));
        let err = tokio::spawn(read_capped(child.stderr.take()));
        let wait = async {
            let status = child.wait().await.map_err(Error::io("wait exec"))?;
            if let Some(g) = pgid {
                let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
            }
            Ok::<_, Error>(status)
        };
        let status = if timeout > 0 {
            match tokio::time::timeout(Duration::from_secs(timeout as u64), wait).await {
                Ok(s) => s?,
                Err(_) => {
                    if let Some(g) = pgid {
                        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
                    }
                    let _ = child.wait().await;
                    out.abort();
                    err.abort();
                    return Err(Error::DeadlineExceeded(format!(
                        "command {:?} timed out: timeout {}s exceeded",
                        cmd.join(" "),
                        timeout
                    )));
                }
            }
        } else {
            wait.await?
        };
        let stdout = out.await.unwrap_or_default();
        let stderr = err.await.unwrap_or_default();
        Ok((stdout, stderr, exit_code(status)))
    }
}

/// The exit code of a finished process: 128 + the signal for a killed one, as runtimes report.
pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(9))
}
