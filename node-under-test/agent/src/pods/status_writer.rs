//! The pod status writer. As upstream's status manager does, a pod worker hands each status it
//! computes to this task and goes on at once; the task writes the statuses to the API server in
//! the order they were computed (each one: a crashed container's terminated state is published
//! before its restart). A sync never waits for the API server, except that an API delete waits
//! for the writes before it ([`StatusWriter::flush`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Writes one status; the worker's API write (also to mirror pods).
pub trait WriteStatus: Send + Sync + 'static {
    fn write(&self, pod: &Pod, status: &PodStatus) -> impl std::future::Future<Output = crate::Result<()>> + Send;
}

/// The handle a pod worker holds.
pub struct StatusWriter {
    tx: mpsc::UnboundedSender<(Pod, PodStatus)>,
    pending: watch::Sender<usize>,
    failed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusWriter {
    /// Starts the writer task of one pod; it stops when `cancel` fires or the handle is shut down.
    pub fn spawn<W: WriteStatus>(writer: Arc<W>, uid: String, cancel: CancellationToken) -> StatusWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Pod, PodStatus)>();
        let (pending, _) = watch::channel(0usize);
        let failed = Arc::new(AtomicBool::new(false));
        let (done, fail) = (pending.clone(), failed.clone());
        let task = tokio::spawn(async move {
            loop {
                let (pod, status) = tokio::select! {
                    _ = cancel.cancelled() => return,
                    next = rx.recv() => match next { Some(n) => n, None => return },
                };
                let wrote = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = writer.write(&pod, &status) => r,
                };
                if let Err(e) = wrote {
                    tracing::warn!(error = %e, %uid, "pod status update failed");
                    fail.store(true, Ordering::SeqCst);
                }
                done.send_modify(|n| *n = n.saturating_sub(1));
            }
        });
        StatusWriter { tx, pending, failed, task }
    }

    /// Queues `status` of `pod` for writing.
    pub fn send(&self, pod: &Pod, status: PodStatus) {
        self.pending.send_modify(|n| *n += 1);
        if self.tx.send((pod.clone(), status)).is_err() {
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    /// True once after a write failed (the worker then queues its current status again).
    pub fn take_failed(&self) -> bool {
        self.failed.swap(false, Ordering::SeqCst)
    }

    /// Waits until every queued status has been written (or has failed).
    pub async fn flush(&self) {
        let mut rx = self.pending.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Writes what is queued, then ends the task (at once when it was cancelled).
    pub async fn shutdown(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records the phases it was asked to write; the first `fail` writes fail; each write waits
    /// for `gate` to open.
    struct Recording {
        seen: Mutex<Vec<String>>,
        fail: Mutex<usize>,
        gate: watch::Receiver<bool>,
    }

    impl WriteStatus for Recording {
        async fn write(&self, _pod: &Pod, status: &PodStatus) -> crate::Result<()> {
            let _ = self.gate.clone().wait_for(|open| *open).await;
            self.seen.lock().unwrap().push(status.phase.clone().unwrap_or_default());
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(crate::Error::Other("refused".into()));
            }
            Ok(())
        }
    }

    fn phase(p: &str) -> PodStatus {
        PodStatus { phase: Some(p.into()), ..Default::default() }
    }

    /// Sends return at once while the API is slow; the writes happen in order, each one; flush
    /// waits for them; a failed write is reported once.
    #[tokio::test]
    async fn statuses_are_written_in_order_without_waiting() {
        let (open, gate) = watch::channel(false);
        let rec = Arc::new(Recording { seen: Mutex::default(), fail: Mutex::new(1), gate });
        let w = StatusWriter::spawn(rec.clone(), "u".into(), CancellationToken::new());
        let pod = Pod::default();
        for p in ["Pending", "Running", "Running2"] {
            w.send(&pod, phase(p));
        }
        assert!(tokio::time::timeout(Duration::from_millis(50), w.flush()).await.is_err(), "flush returned before the writes");
        assert!(rec.seen.lock().unwrap().is_empty());
        open.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.flush()).await.expect("flush waits for the writes, then returns");
        assert_eq!(*rec.seen.lock().unwrap(), ["Pending", "Running", "Running2"]);
        assert!(w.take_failed(), "the failed first write is reported");
        assert!(!w.take_failed(), "once");
        w.shutdown().await;
    }
}
