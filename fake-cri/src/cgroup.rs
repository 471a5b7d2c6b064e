//! Memory cgroups (v1) per container under `/sys/fs/cgroup/memory/<instance>/<id>`, with a
//! RSS-watching fallback when the controller is not available.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Root of the v1 memory controller.
pub const MEMORY_ROOT: &str = "/sys/fs/cgroup/memory";

/// The per-instance cgroup parent: `fake-cri-<state dir name>-<hash of its absolute path>`, so
/// instances with different state dirs never share one.
pub fn instance_parent(state_dir: &Path) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let root = Path::new(MEMORY_ROOT);
    if !root.join("memory.limit_in_bytes").exists() {
        return None;
    }
    let abs = std::path::absolute(state_dir).ok()?;
    let name = abs.file_name()?.to_string_lossy().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '.', "_");
    let hash = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
    Some(root.join(format!("fake-cri-{name}-{}", &hash[..12])))
}

/// Creates the container cgroup with a limit (0: no limit), returning its directory.
pub fn create(parent: &Path, id: &str, limit: i64) -> Result<PathBuf> {
    let dir = parent.join(id);
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
    if limit > 0 {
        set_limit(&dir, limit)?;
    }
    Ok(dir)
}

/// Sets memory.limit_in_bytes (and memsw when present, so swap does not hide an OOM).
pub fn set_limit(dir: &Path, limit: i64) -> Result<()> {
    let f = dir.join("memory.limit_in_bytes");
    std::fs::write(&f, limit.to_string()).map_err(Error::io(format!("write {}", f.display())))?;
    let sw = dir.join("memory.memsw.limit_in_bytes");
    if sw.exists() {
        let _ = std::fs::write(&sw, limit.to_string());
    }
    Ok(())
}

/// Number of OOM kills recorded in the cgroup.
pub fn oom_kills(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("memory.oom_control"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// Pids in the cgroup.
pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// (usage, working set, rss) in bytes.
pub fn memory(dir: &Path) -> Option<(u64, u64, u64)> {
    let usage: u64 = std::fs::read_to_string(dir.join("memory.usage_in_bytes")).ok()?.trim().parse().ok()?;
    let stat = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
    let get = |k: &str| {
        stat.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse::<u64>().ok()))
            .unwrap_or(0)
    };
    let inactive = get("total_inactive_file ");
    let rss = get("total_rss ");
    Some((usage, usage.saturating_sub(inactive), rss))
}

/// Kills everything left in the cgroup and removes it (and the parent when empty).
pub fn remove(dir: &Path) {
    for pid in procs(dir) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes the instance parent (after every child is gone).
pub fn remove_parent(parent: &Path) {
    if let Ok(rd) = std::fs::read_dir(parent) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                remove(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(parent);
}
