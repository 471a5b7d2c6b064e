//! Small subcommands: pause, exit, sleep, file operations, env, hostname, print.
use crate::args::Invocation;
use crate::{Error, Result};
use std::io::Write;
use std::time::Duration;

pub async fn pause() -> Result<i32> {
    println!("workload pause: started");
    eprintln!("workload pause: waiting for a signal");
    super::hold().await
}

pub async fn exit(inv: &Invocation) -> Result<i32> {
    let code: i32 = inv.num("code", 0)?;
    let after = inv.duration("after", Duration::ZERO)?;
    println!("workload exit: started, exiting with code {code} after {after:?}");
    if !after.is_zero() {
        tokio::time::sleep(after).await;
    }
    eprintln!("workload exit: exiting with code {code}");
    Ok(code)
}

pub async fn sleep(inv: &Invocation) -> Result<i32> {
    let d = crate::args::parse_duration(inv.arg(0, "a duration")?)?;
    println!("workload sleep: sleeping {d:?}");
    tokio::time::sleep(d).await;
    Ok(0)
}

pub fn check_file(inv: &Invocation) -> Result<i32> {
    let path = inv.arg(0, "a path")?;
    if !std::path::Path::new(path).exists() {
        eprintln!("{path} does not exist");
        return Ok(1);
    }
    // With --contains TEXT: the file must also hold TEXT.
    if let Some(text) = inv.flag("contains") {
        let content = std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {path}"), e))?;
        if !content.contains(text) {
            eprintln!("{path} does not contain {text:?}");
            return Ok(1);
        }
        println!("{path} contains {text:?}");
        return Ok(0);
    }
    println!("{path} exists");
    Ok(0)
}

pub fn touch(inv: &Invocation) -> Result<i32> {
    let path = inv.arg(0, "a path")?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("touch {path}"), e))?;
    println!("touched {path}");
    Ok(0)
}

pub fn rm(inv: &Invocation) -> Result<i32> {
    let path = inv.arg(0, "a path")?;
    std::fs::remove_file(path).map_err(|e| Error::io(format!("rm {path}"), e))?;
    println!("removed {path}");
    Ok(0)
}

/// `cat [PATH|-]...`: copies the files (`-` or no argument: stdin) to stdout; a file that
/// cannot be read is reported (`cat: PATH: reason`) and makes the exit code 1.
pub fn cat(inv: &Invocation) -> Result<i32> {
    let stdin = ["-".to_string()];
    let paths = if inv.positional.is_empty() { &stdin[..] } else { &inv.positional[..] };
    let mut out = std::io::stdout().lock();
    let mut code = 0;
    for path in paths {
        let copied = if path == "-" {
            std::io::copy(&mut std::io::stdin().lock(), &mut out)
        } else {
            std::fs::File::open(path).and_then(|mut f| std::io::copy(&mut f, &mut out))
        };
        if let Err(e) = copied {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(1);
            }
            eprintln!("cat: {path}: {}", io_reason(&e));
            code = 1;
        }
    }
    out.flush().map_err(|e| Error::io("flush stdout", e))?;
    Ok(code)
}

/// `No such file or directory` (the strerror text, without Rust's `(os error N)`).
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

pub fn env() -> Result<i32> {
    let mut out = std::io::stdout().lock();
    for (k, v) in std::env::vars_os() {
        let _ = writeln!(out, "{}={}", k.to_string_lossy(), v.to_string_lossy());
    }
    Ok(0)
}

pub fn hostname_cmd() -> Result<i32> {
    println!("{}", super::hostname());
    Ok(0)
}

/// `id`: the process's effective uid and gid and its supplementary groups, as the kernel
/// reports them in /proc/self/status: `uid=1234 gid=2345 groups=2345,3456`.
pub fn id() -> Result<i32> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| Error::io("read /proc/self/status", e))?;
    println!("{}", id_line(&status));
    Ok(0)
}

/// The `id` line for a /proc/<pid>/status text (effective ids: the second column).
pub fn id_line(status: &str) -> String {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("").split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let uid = field("Uid:").get(1).cloned().unwrap_or_default();
    let gid = field("Gid:").get(1).cloned().unwrap_or_default();
    format!("uid={uid} gid={gid} groups={}", field("Groups:").join(","))
}

/// Writes `--stdout` / `--stderr` lines and an optional `--partial` text without newline.
pub async fn print(inv: &Invocation) -> Result<i32> {
    if let Some(s) = inv.flag("stdout") {
        println!("{s}");
    }
    if let Some(s) = inv.flag("stderr") {
        eprintln!("{s}");
    }
    if let Some(s) = inv.flag("partial") {
        let mut out = std::io::stdout().lock();
        out.write_all(s.as_bytes()).map_err(|e| Error::io("write stdout", e))?;
        out.flush().map_err(|e| Error::io("flush stdout", e))?;
    }
    if let Some(d) = inv.flag("then-sleep") {
        tokio::time::sleep(crate::args::parse_duration(d)?).await;
    }
    Ok(0)
}

/// `tty-size`: prints `rows R cols C` of the terminal on stdin, then again after each
/// SIGWINCH that changed it, until stdin ends (Ctrl-D on the terminal); exit 1 when stdin is
/// not a terminal.
pub async fn tty_size() -> Result<i32> {
    use tokio::io::AsyncReadExt;
    use tokio::signal::unix::{SignalKind, signal};
    let size = || rustix::termios::tcgetwinsize(std::io::stdin()).map(|w| (w.ws_row, w.ws_col));
    // The handler is in place before the first line: a resize after it is always printed.
    let mut winch = signal(SignalKind::window_change()).map_err(|e| Error::io("SIGWINCH handler", e))?;
    let mut last = match size() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tty-size: stdin is not a terminal: {e}");
            return Ok(1);
        }
    };
    println!("rows {} cols {}", last.0, last.1);
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            _ = winch.recv() => {
                if let Ok(now) = size()
                    && now != last
                {
                    last = now;
                    println!("rows {} cols {}", now.0, now.1);
                }
            }
            n = stdin.read(&mut buf) => match n {
                Ok(0) | Err(_) => return Ok(0),
                Ok(_) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn id_line_reads_effective_ids() {
        let status = "Name:\tworkload\nUid:\t0\t1234\t1234\t1234\nGid:\t0\t2345\t2345\t2345\nGroups:\t3456 4567 \n";
        assert_eq!(super::id_line(status), "uid=1234 gid=2345 groups=3456,4567");
    }
}
