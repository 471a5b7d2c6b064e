//! Running work inside a fresh network namespace: a dedicated thread calls
//! `unshare(CLONE_NEWNET)`, and every process it spawns (nft, iptables-restore, ip) inherits
//! that namespace. The namespace disappears when the thread and its children are gone.
//! Used by the bench and the kernel tests so nothing ever touches the caller's namespace.

use nix::sched::{CloneFlags, unshare};

use crate::error::{Error, Result};

/// Runs `f` on a new thread that first entered a new, empty network namespace.
pub fn in_fresh_netns<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = std::thread::Builder::new()
        .name("fresh-netns".into())
        .spawn(move || -> Result<T> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns(format!("unshare(CLONE_NEWNET): {e}")))?;
            Ok(f())
        })
        .map_err(|e| Error::Netns(format!("spawning thread: {e}")))?;
    handle.join().map_err(|_| Error::Netns("worker thread panicked".into()))?
}

/// The inode of this thread's network namespace (to check isolation).
pub fn current_netns_id() -> Result<String> {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| Error::Netns(format!("reading /proc/thread-self/ns/net: {e}")))
}
