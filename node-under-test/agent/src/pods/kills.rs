//! A pod worker's in-flight container stops: each kill (preStop hook, then StopContainer with
//! the grace period) runs as a task owned here, so the worker keeps observing, probing and
//! writing status meanwhile; a finished kill comes back as [`Outcome::Killed`].

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use super::model::Outcome;

/// The kill tasks of one pod worker.
pub struct KillTasks {
    set: JoinSet<()>,
    ids: HashMap<Id, String>,
    cancel: CancellationToken,
}

impl KillTasks {
    /// Kill tasks stop early (abandoning the stop) when `cancel` fires.
    pub fn new(cancel: CancellationToken) -> Self {
        KillTasks { set: JoinSet::new(), ids: HashMap::new(), cancel }
    }

    /// Runs `kill` of container `id` as a task.
    pub fn spawn(&mut self, id: String, kill: impl Future<Output = ()> + Send + 'static) {
        let token = self.cancel.clone();
        let handle = self.set.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = kill => {}
            }
        });
        self.ids.insert(handle.id(), id);
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn finished(&mut self, r: Result<(Id, ()), tokio::task::JoinError>) -> Outcome {
        let task = match r {
            Ok((task, ())) => task,
            Err(e) => {
                tracing::warn!(error = %e, "container kill task failed");
                e.id()
            }
        };
        Outcome::Killed { id: self.ids.remove(&task).unwrap_or_default() }
    }

    /// The next finished kill; pending while none is in flight (cancel-safe, for `select!`).
    pub async fn next(&mut self) -> Outcome {
        match self.set.join_next_with_id().await {
            Some(r) => self.finished(r),
            None => std::future::pending().await,
        }
    }

    /// A kill that has already finished, if any.
    pub fn try_next(&mut self) -> Option<Outcome> {
        let r = self.set.try_join_next_with_id()?;
        Some(self.finished(r))
    }

    /// Graceful then forceful: cancels the kills, waits up to `grace` for them, aborts the rest.
    pub async fn shutdown(mut self, grace: Duration) {
        self.cancel.cancel();
        let drained = tokio::time::timeout(grace, async { while self.set.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            self.set.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn finished_kill_comes_back_as_outcome() {
        let mut k = KillTasks::new(CancellationToken::new());
        assert!(k.try_next().is_none());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        k.spawn("c1".into(), async move {
            let _ = rx.await;
        });
        assert!(!k.is_empty());
        let pending = tokio::time::timeout(Duration::from_secs(1), k.next()).await;
        assert!(pending.is_err(), "a kill in flight is not reported");
        tx.send(()).unwrap();
        assert_eq!(k.next().await, Outcome::Killed { id: "c1".into() });
        assert!(k.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_cancels_kills_in_flight() {
        let cancel = CancellationToken::new();
        let mut k = KillTasks::new(cancel.child_token());
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        k.spawn("c1".into(), async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let _ = done_tx.send(());
        });
        let t0 = tokio::time::Instant::now();
        k.shutdown(Duration::from_secs(5)).await;
        assert!(t0.elapsed() < Duration::from_secs(5), "shutdown waited {:?}", t0.elapsed());
        assert!(done_rx.recv().await.is_none(), "the kill was abandoned, not completed");
        assert!(!cancel.is_cancelled(), "only the kills' own token is cancelled");
    }
}
