//! Keeps the runtime's sandbox-store readers apart from its stats calls.
//!
//! containerd 1.6 before 1.6.22 (Debian 12 ships 1.6.20) writes each sandbox's cached stats
//! under its sandbox store's read lock (`UpdateContainerStats`, fixed by containerd PR 8130,
//! backported in 8819). A ListPodSandboxStats or PodSandboxStats running beside a call that
//! reads that store ends containerd with "fatal error: concurrent map iteration and map write"
//! (or "… map read and map write"), and so does a second stats call. The calls that read the
//! store share this lock; a stats call takes it alone.

use std::sync::Arc;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The shared lock; clones share it.
#[derive(Clone, Debug, Default)]
pub struct SandboxStoreLock(Arc<RwLock<()>>);

impl SandboxStoreLock {
    /// Held by a call that reads the sandbox store (see [`reads_sandbox_store`]).
    pub async fn read(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read().await
    }

    /// Held by a stats call: no store reader and no other stats call runs meanwhile.
    pub async fn write(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }
}

/// The agent's CRI calls that read containerd 1.6's sandbox store (`sandboxStore.Get` or
/// `List`); the calls that write it hold its write lock and need nothing here.
pub fn reads_sandbox_store(op: &str) -> bool {
    matches!(op, "ListPodSandbox" | "PodSandboxStatus" | "CreateContainer" | "StartContainer" | "StopPodSandbox" | "RemovePodSandbox" | "PortForward")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Store readers run together; a stats call waits for them and keeps them out.
    #[tokio::test]
    async fn stats_calls_run_alone() {
        let lock = SandboxStoreLock::default();
        let a = lock.read().await;
        let b = lock.read().await;
        assert!(tokio::time::timeout(Duration::from_millis(20), lock.write()).await.is_err(), "a stats call ran beside store readers");
        drop((a, b));
        let w = lock.write().await;
        assert!(tokio::time::timeout(Duration::from_millis(20), lock.read()).await.is_err(), "a store reader ran beside a stats call");
        drop(w);
        assert!(reads_sandbox_store("ListPodSandbox") && reads_sandbox_store("PodSandboxStatus"));
        assert!(!reads_sandbox_store("ContainerStatus") && !reads_sandbox_store("PullImage"));
    }
}
