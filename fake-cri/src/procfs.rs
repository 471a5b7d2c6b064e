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

/// Nanoseconds on CPU of the live threads of `pid` (first field of each
/// `/proc/<pid>/task/<tid>/schedstat`); None when schedstat is not available.
fn sched_ns(pid: i32) -> Option<u64> {
    let rd = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = None;
    for t in rd.flatten() {
        let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) else { continue };
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            total = Some(total.unwrap_or(0) + ns);
        }
    }
    total
}

/// Total CPU of the processes, in ns: per process the nanosecond scheduler time of its threads
/// (or the tick-granular user+system time of /proc/<pid>/stat when that is larger, as it also
/// counts threads that ended), plus the time of children it has reaped.
pub fn cpu_ns(pids: &[i32]) -> u64 {
    const TICK_NS: u64 = 1_000_000_000 / TICKS;
    pids.iter()
        .filter_map(|p| {
            let f = stat_fields(*p)?;
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let ticks = (field(11) + field(12)) * TICK_NS;
            let reaped = (field(13) + field(14)) * TICK_NS;
            Some(sched_ns(*p).unwrap_or(0).max(ticks) + reaped)
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
        // Nanosecond CPU time: a short busy loop already shows.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(2) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(sched_ns(me).is_some_and(|n| n > 0), "schedstat of the test process");
        let before = sched_ns(me).unwrap_or(0);
        assert!(cpu_ns(&[me]) >= before);
        assert!(fs_used(std::path::Path::new("/")).is_some());
    }
}
