//! Memory cgroups (v1) per container, with a RSS-watching fallback when the controller is not
//! available. A container's cgroup is `<sandbox cgroup_parent>/<id>` when its sandbox config
//! names a parent (as containerd does with the cgroupfs driver), else `<instance parent>/<id>`;
//! the instance parent is `--cgroup-parent` when given, else `fake-cri-<dir>-<hash>`.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Root of the v1 memory controller.
pub const MEMORY_ROOT: &str = "/sys/fs/cgroup/memory";

/// The per-instance cgroup parent: `<memory root>/<cgroup_parent>` when one is configured,
/// else `fake-cri-<state dir name>-<hash of its absolute path>`, so instances with different
/// state dirs never share one. None when the memory controller is not available.
pub fn instance_parent(state_dir: &Path, cgroup_parent: Option<&str>) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let root = Path::new(MEMORY_ROOT);
    if !root.join("memory.limit_in_bytes").exists() {
        return None;
    }
    if let Some(p) = cgroup_parent.filter(|p| !p.trim_matches('/').is_empty()) {
        return in_hierarchy(p).ok();
    }
    let abs = std::path::absolute(state_dir).ok()?;
    let name = abs.file_name()?.to_string_lossy().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '.', "_");
    let hash = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
    Some(root.join(format!("fake-cri-{name}-{}", &hash[..12])))
}

/// The directory of cgroup path `cgroup` (`/a/b` or `a/b`) in the memory hierarchy; paths
/// with `..` or `.` components are refused.
pub fn in_hierarchy(cgroup: &str) -> Result<PathBuf> {
    let rel = cgroup.trim_matches('/');
    if rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(Error::InvalidArgument(format!("invalid cgroup parent {cgroup:?}")));
    }
    Ok(Path::new(MEMORY_ROOT).join(rel))
}

/// Creates cgroup directory `dir` with a limit (0: no limit). Returns the directories it had
/// to create, deepest first (`dir` itself excluded), for [`remove_created`].
pub fn create(dir: &Path, limit: i64) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let mut p = dir.parent();
    while let Some(a) = p {
        if a.exists() || a == Path::new(MEMORY_ROOT) {
            break;
        }
        created.push(a.to_path_buf());
        p = a.parent();
    }
    std::fs::create_dir_all(dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
    if limit > 0 {
        set_limit(dir, limit)?;
    }
    Ok(created)
}

/// Removes the ancestors [`create`] made (deepest first) that are empty now (stops at the first
/// one still in use; those already gone are skipped).
pub fn remove_created(created: &[PathBuf]) {
    for d in created {
        match std::fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return,
        }
    }
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

/// Removes the instance parent and every cgroup below it, deepest first (after killing what
/// is left in them).
pub fn remove_parent(parent: &Path) {
    if let Ok(rd) = std::fs::read_dir(parent) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_parent(&e.path());
            }
        }
    }
    remove(parent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths() {
        assert_eq!(in_hierarchy("/w/node-a/pod-x").unwrap(), Path::new(MEMORY_ROOT).join("w/node-a/pod-x"));
        assert_eq!(in_hierarchy("w/n").unwrap(), Path::new(MEMORY_ROOT).join("w/n"));
        assert!(in_hierarchy("/w/../etc").is_err());
        assert!(in_hierarchy("/").is_err());
        assert!(in_hierarchy("/a//b").is_err());
    }
}
