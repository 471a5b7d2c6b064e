//! Network-namespace plumbing: create a namespace held by fd, run code on a thread inside one.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::sched::{CloneFlags, setns, unshare};

use crate::error::{Context, Error, Result};

/// A network namespace held open by a file descriptor (never named in /run/netns).
#[derive(Debug, Clone)]
pub struct NetNs {
    fd: Arc<OwnedFd>,
}

impl NetNs {
    /// The network namespace of the calling thread.
    pub fn current() -> Result<NetNs> {
        let f = File::open("/proc/thread-self/ns/net").ctx(|| "opening /proc/thread-self/ns/net".into())?;
        Ok(NetNs { fd: Arc::new(OwnedFd::from(f)) })
    }

    /// Creates a fresh network namespace (on a short-lived thread that unshares it).
    pub fn create() -> Result<NetNs> {
        std::thread::scope(|s| {
            s.spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).ctx(|| "unshare(CLONE_NEWNET)".into())?;
                NetNs::current()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// The namespace's file descriptor.
    pub fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    /// Runs `f` on a thread that has joined this namespace; sockets created there stay bound to it.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&*self.fd, CloneFlags::CLONE_NEWNET).ctx(|| "setns(CLONE_NEWNET)".into())?;
                Ok::<R, Error>(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// The namespace's inode number (`net:[N]`), for diagnostics.
    pub fn inode(&self) -> Result<u64> {
        let st = nix::sys::stat::fstat(&*self.fd).ctx(|| "fstat of a netns fd".into())?;
        Ok(st.st_ino)
    }
}
