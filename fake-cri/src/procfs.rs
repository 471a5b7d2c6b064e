//! Reading /proc: process start times, process trees, CPU and memory of a set of processes.
use std::collections::BTreeSet;

/// Clock ticks per second used by /proc/<pid>/stat.
const TICKS: u64 = 100;

/// Fields after the command name of /proc/<pid>/stat (index 0 = state, field 3).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Start time (field 22) of a live, non-zombie process.
pub fn start_time(pid: i32) -> Option<u64> {
    let f = stat_fields(pid)?;
    if f.first().map(String::as_str) == Some("Z") {
        return None;
    }
    f.get(19)?.parse().ok()
}

/// Whether `pid` is alive and started at `start`.
pub fn alive(pid: i32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// `pid` and all its descendants.
pub fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![];
    let mut todo = vec![pid];
    let mut seen = BTreeSet::new();
    while let Some(p) = todo.pop() {
        if !seen.insert(p) || start_time(p).is_none() {
            continue;
        }
        out.push(p);
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in rd.flatten() {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                todo.extend(kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Total user+system CPU of the processes, in ns.
pub fn cpu_ns(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|p| {
            let f = stat_fields(*p)?;
            let u: u64 = f.get(11)?.parse().ok()?;
            let s: u64 = f.get(12)?.parse().ok()?;
            Some((u + s) * (1_000_000_000 / TICKS))
        })
        .sum()
}

/// Total VmRSS of the processes, in bytes.
pub fn rss_bytes(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|p| {
            let s = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let kb: u64 = s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .sum()
}

/// Bytes used on the filesystem holding `path` (statvfs).
pub fn fs_used(path: &std::path::Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let used = (st.blocks() - st.blocks_free()) * st.fragment_size();
    let inodes = st.files() - st.files_free();
    Some((used, inodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(alive(me, st));
        assert!(!alive(me, st + 1));
        assert!(tree(me).contains(&me));
        assert!(rss_bytes(&[me]) > 0);
        assert!(fs_used(std::path::Path::new("/")).is_some());
    }
}
