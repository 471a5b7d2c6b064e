//! Host cgroups of a world's containers: the per-world cgroup root, removal of a world's
//! cgroup tree, and the sweep of trees left by worlds that were killed.
//!
//! cgroup v1 is not namespaced: directories runc creates under `/sys/fs/cgroup/<controller>/`
//! are host state and outlive the world. Every container of a world is therefore placed under
//! one top-level directory per world, `nodekit-w<pidns>-<nonce>`, where `<pidns>` is the inode
//! of the world's pid namespace. Callers pass a `cgroup_parent` below it in the pod sandbox
//! config ([`cgroup_parent`]); a graceful stop removes the tree, and
//! [`sweep_stale_cgroups`] — run from the host pid namespace — removes the trees of worlds
//! whose pid namespace has no process left.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::backend::{Error, Result};

/// Prefix of every per-world top-level cgroup directory.
pub const CGROUP_PREFIX: &str = "nodekit-w";

/// The world's cgroup root, `/nodekit-w<pidns>-<nonce>` (absolute, as CRI `cgroup_parent`s are).
/// Computed once per process; call it inside the sealed case process.
pub fn cgroup_root() -> Result<String> {
    static ROOT: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let inode = pid_ns_inode("self").map_err(|e| format!("reading the world's pid namespace: {e}"))?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        Ok(format!("/{CGROUP_PREFIX}{inode}-{nonce:x}"))
    })
    .clone()
    .map_err(Error::Component)
}

/// The cgroup root of node `node` of this world: `<cgroup_root>/<node>`. Give it to a node
/// agent as its cgroup root (kubelet's `cgroupRoot`); pod cgroup parents go below it.
pub fn node_cgroup_root(node: &str) -> Result<String> {
    Ok(format!("{}/{}", cgroup_root()?, sanitize(node)))
}

/// The `cgroup_parent` to put in a pod sandbox's linux config (CRI `LinuxPodSandboxConfig`)
/// for pod `pod` on `node`: `<cgroup_root>/<node>/pod-<pod>`. Sandboxes whose containers live
/// elsewhere are removed by a graceful stop but not by [`sweep_stale_cgroups`] after a crash.
pub fn cgroup_parent(node: &str, pod: &str) -> Result<String> {
    Ok(format!("{}/pod-{}", node_cgroup_root(node)?, sanitize(pod)))
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// The inode of `/proc/<pid>/ns/pid` (`pid` may be `self`).
fn pid_ns_inode(pid: &str) -> std::io::Result<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/pid"))?;
    link.to_str()
        .and_then(|s| s.strip_prefix("pid:["))
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("unexpected pid namespace link {link:?}")))
}

/// Mount points of every cgroup hierarchy (v1 controllers, named hierarchies, v2).
pub fn hierarchies() -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        // `… mountpoint … - fstype source options`
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let fstype = right.split_whitespace().next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        if let Some(mp) = left.split_whitespace().nth(4) {
            let p = PathBuf::from(mp.replace("\\040", " "));
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Directories of `tree` (a cgroup path such as `/nodekit-w…/node-a`) in every hierarchy.
pub fn tree_dirs(tree: &str) -> Result<Vec<PathBuf>> {
    let rel = tree.trim_start_matches('/');
    Ok(hierarchies()?.into_iter().map(|h| h.join(rel)).filter(|d| d.is_dir()).collect())
}

/// What a removal or sweep did.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    /// Directories removed.
    pub removed: Vec<PathBuf>,
    /// Directories that could not be removed yet (tasks still inside, or another error).
    pub busy: Vec<(PathBuf, String)>,
}

impl SweepReport {
    fn merge(&mut self, other: SweepReport) {
        self.removed.extend(other.removed);
        self.busy.extend(other.busy);
    }
}

/// Removes `dir` and every cgroup below it, deepest first. Directories that still hold tasks
/// (or fail otherwise) are reported in `busy`, their ancestors stay.
pub fn remove_dir_tree(dir: &Path) -> SweepReport {
    let mut report = SweepReport::default();
    remove_rec(dir, &mut report);
    report
}

fn remove_rec(dir: &Path, report: &mut SweepReport) -> bool {
    let mut children_gone = true;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                children_gone &= remove_rec(&e.path(), report);
            }
        }
    }
    if !children_gone {
        return false;
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => {
            report.removed.push(dir.to_path_buf());
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            report.busy.push((dir.to_path_buf(), e.to_string()));
            false
        }
    }
}

/// Removes cgroup `tree` in every hierarchy, retrying until `timeout` while directories are
/// busy (tasks that are still exiting). Returns what is left on timeout in `busy`.
pub async fn remove_tree(tree: &str, timeout: Duration) -> Result<SweepReport> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut total = SweepReport::default();
    loop {
        let mut pass = SweepReport::default();
        for d in tree_dirs(tree)? {
            pass.merge(remove_dir_tree(&d));
        }
        total.removed.extend(pass.removed);
        if pass.busy.is_empty() || tokio::time::Instant::now() >= deadline {
            total.busy = pass.busy;
            return Ok(total);
        }
        tokio::time::sleep(crate::wait::POLL_INTERVAL).await;
    }
}

/// Whether `/proc/<pid>/stat` shows a zombie (or dead) process.
fn is_zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])))
        .unwrap_or(false)
}

/// Pid-namespace inodes of every running process visible in this `/proc`. Zombies do not
/// count: a killed world's init can wait a while for its parent to reap it.
fn live_pid_namespaces() -> HashSet<u64> {
    let mut set = HashSet::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
            if is_zombie(pid) {
                continue;
            }
            if let Ok(i) = pid_ns_inode(pid) {
                set.insert(i);
            }
        }
    }
    set
}

/// The pid-namespace inode encoded in a top-level directory name `nodekit-w<inode>-<nonce>`.
pub fn world_of(name: &str) -> Option<u64> {
    name.strip_prefix(CGROUP_PREFIX)?.split('-').next()?.parse().ok()
}

/// Every `nodekit-w…` tree in every hierarchy, with the pid-namespace inode of its world.
pub fn world_trees() -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for h in hierarchies()? {
        let Ok(entries) = std::fs::read_dir(&h) else { continue };
        for e in entries.flatten() {
            if let Some(w) = e.file_name().to_str().and_then(world_of)
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                out.push((e.path(), w));
            }
        }
    }
    Ok(out)
}

/// The `nodekit-w…` trees of worlds whose pid namespace has no process left (what
/// [`sweep_stale_cgroups`] would remove).
pub fn stale_cgroup_trees() -> Result<Vec<PathBuf>> {
    let live = live_pid_namespaces();
    Ok(world_trees()?.into_iter().filter(|(_, w)| !live.contains(w)).map(|(p, _)| p).collect())
}

/// One pass: removes, in every hierarchy, the `nodekit-w…` trees of worlds whose pid
/// namespace has no process left. Must run in the host's pid namespace (a runner, never a
/// sealed world: inside one, every other world would look dead).
pub fn sweep_stale_cgroups() -> Result<SweepReport> {
    if crate::sealed::is_sealed() {
        return Err(Error::Component(
            "sweep_stale_cgroups must run in the host pid namespace, not inside a sealed world".into(),
        ));
    }
    let live = live_pid_namespaces();
    let mut report = SweepReport::default();
    for h in hierarchies()? {
        let Ok(entries) = std::fs::read_dir(&h) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(world) = name.to_str().and_then(world_of) else { continue };
            if live.contains(&world) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            report.merge(remove_dir_tree(&e.path()));
        }
    }
    Ok(report)
}

/// [`sweep_stale_cgroups`] repeated (blocking) until no tree of a dead world is busy or
/// `timeout` passes: tasks of a world that was just killed take a moment to leave their
/// cgroups. Returns everything removed and what is still busy.
pub fn sweep_stale_cgroups_within(timeout: Duration) -> Result<SweepReport> {
    let start = std::time::Instant::now();
    let mut total = SweepReport::default();
    loop {
        let pass = sweep_stale_cgroups()?;
        total.removed.extend(pass.removed);
        if pass.busy.is_empty() || start.elapsed() >= timeout {
            total.busy = pass.busy;
            return Ok(total);
        }
        std::thread::sleep(crate::wait::POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_the_world() {
        assert_eq!(world_of("nodekit-w4026532001-18a3f"), Some(4026532001));
        assert_eq!(world_of("nodekit-wx-1"), None);
        assert_eq!(world_of("kubepods"), None);
        let root = cgroup_root().unwrap();
        let inode = pid_ns_inode("self").unwrap();
        assert!(root.starts_with(&format!("/{CGROUP_PREFIX}{inode}-")), "{root}");
        assert_eq!(world_of(root.trim_start_matches('/')), Some(inode));
        let p = cgroup_parent("node-a", "ns/name").unwrap();
        assert_eq!(p, format!("{root}/node-a/pod-ns_name"));
    }

    #[test]
    fn hierarchies_are_found() {
        let h = hierarchies().unwrap();
        assert!(h.iter().all(|p| p.is_absolute()), "{h:?}");
    }

    #[test]
    fn removal_is_depth_first_on_plain_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("c")).unwrap();
        let r = remove_dir_tree(&root);
        assert!(r.busy.is_empty(), "{:?}", r.busy);
        assert_eq!(r.removed.len(), 4);
        assert!(!root.exists());
        // A non-empty leaf (a file stands in for tasks) keeps its ancestors.
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/tasks"), "1").unwrap();
        let r = remove_dir_tree(&root);
        assert_eq!(r.busy.len(), 1);
        assert!(root.join("a").exists());
    }
}
