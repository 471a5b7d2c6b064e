//! Running the kernel tools (`nft`, `iptables-restore`, `iptables`, `iptables-save`,
//! `conntrack`) with input on stdin; blocking, so async callers use `spawn_blocking`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Program names (looked up on PATH unless absolute).
#[derive(Clone, Debug)]
pub struct Tools {
    pub nft: String,
    pub iptables: String,
    pub iptables_restore: String,
    pub iptables_save: String,
    pub conntrack: String,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            nft: "nft".into(),
            iptables: "iptables".into(),
            iptables_restore: "iptables-restore".into(),
            iptables_save: "iptables-save".into(),
            conntrack: "conntrack".into(),
        }
    }
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args…`, feeding `stdin`; returns its output whatever the exit status.
pub fn run_raw(program: &str, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let cmd = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn { cmd: cmd.clone(), source })?;
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        // A write error (the tool exited early) shows up in its exit status and stderr.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| Error::Spawn { cmd, source })?;
    Ok(Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs a command and fails with its stderr unless it exits 0.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    checked(program, args, run_raw(program, args, stdin)?)
}

/// `out` of `program args…` as [`run`] judges it: its stdout, or an error with its stderr.
pub fn checked(program: &str, args: &[&str], out: Output) -> Result<String> {
    if out.success {
        Ok(out.stdout)
    } else {
        let mut stderr = out.stderr.trim().to_string();
        if stderr.len() > 4000 {
            let mut cut = 4000;
            while !stderr.is_char_boundary(cut) {
                cut -= 1;
            }
            stderr.truncate(cut);
            stderr.push_str(" …");
        }
        Err(Error::Command {
            cmd: format!("{program} {}", args.join(" ")),
            status: out.code.map_or("killed".to_string(), |c| format!("exit {c}")),
            stderr,
        })
    }
}
