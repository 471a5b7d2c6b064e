//! Resource consumers for eviction and OOM cases: alloc-memory, fill-disk, fork-processes.
use crate::args::Invocation;
use crate::{Error, Result};
use std::io::Write;
use std::time::Duration;

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

/// Allocates `--mib N` in steps of `--step-mib M` every `--interval D`, touching every page; holds.
pub async fn alloc_memory(inv: &Invocation) -> Result<i32> {
    let total: usize = inv.num_required("mib")?;
    let step: usize = inv.num("step-mib", total.max(1))?.max(1);
    let interval = inv.duration("interval", Duration::ZERO)?;
    println!("workload alloc-memory: allocating {total} MiB in steps of {step} MiB");
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut done = 0usize;
    while done < total {
        let n = step.min(total - done);
        let chunk = tokio::task::spawn_blocking(move || {
            let mut v = vec![0u8; n * MIB];
            for i in (0..v.len()).step_by(PAGE) {
                v[i] = 1;
            }
            v
        })
        .await
        .map_err(|e| Error::io("allocate", std::io::Error::other(e.to_string())))?;
        held.push(chunk);
        done += n;
        println!("workload alloc-memory: allocated {done} MiB");
        if done < total && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
    }
    eprintln!("workload alloc-memory: holding {done} MiB");
    let _keep = held;
    // With --ready-port, a TCP port opens once everything is allocated (for a tcpSocket
    // readiness probe): the pod turns Ready only when it holds all of its memory.
    if let Some(port) = inv.flag("ready-port") {
        let port: u16 = port.parse().map_err(|_| Error::Usage(format!("--ready-port {port:?} is not a port number")))?;
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .map_err(|e| Error::io(format!("bind tcp {port}"), e))?;
        println!("workload alloc-memory: ready on tcp {port}");
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        });
    }
    super::hold().await
}

/// Writes `--mib N` MiB to `--path P` (fsynced), then holds.
pub async fn fill_disk(inv: &Invocation) -> Result<i32> {
    let mib: usize = inv.num_required("mib")?;
    let path = inv
        .flag("path")
        .ok_or_else(|| Error::Usage("fill-disk needs --path".into()))?
        .to_string();
    println!("workload fill-disk: writing {mib} MiB to {path}");
    let p = path.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut f = std::fs::File::create(&p).map_err(|e| Error::io(format!("create {p}"), e))?;
        let buf = vec![0x5au8; MIB];
        for _ in 0..mib {
            f.write_all(&buf).map_err(|e| Error::io(format!("write {p}"), e))?;
        }
        f.sync_all().map_err(|e| Error::io(format!("sync {p}"), e))
    })
    .await
    .map_err(|e| Error::io("fill-disk", std::io::Error::other(e.to_string())))??;
    eprintln!("workload fill-disk: wrote {mib} MiB to {path}, holding");
    super::hold().await
}

/// Starts `--count N` child processes (this binary running `pause`) and holds them.
pub async fn fork_processes(inv: &Invocation) -> Result<i32> {
    let count: usize = inv.num_required("count")?;
    println!("workload fork-processes: starting {count} processes");
    for i in 0..count {
        let child = std::process::Command::new("/proc/self/exe")
            .arg("pause")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| Error::io(format!("start child {i}"), e))?;
        crate::supervise::hold_child(child);
    }
    eprintln!("workload fork-processes: holding {count} processes");
    super::hold().await
}
