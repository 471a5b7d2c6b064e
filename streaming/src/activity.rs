//! Idle tracking for a streaming connection: upstream sets an idle timeout on the connection
//! (reads and writes push it back); here every frame touches an [`Activity`].

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Activity {
    last: Mutex<Instant>,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self { last: Mutex::new(Instant::now()) }
    }

    pub(crate) fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Resolves once nothing touched this for `timeout`.
    pub(crate) async fn idle(&self, timeout: Duration) {
        loop {
            let deadline = *self.last.lock().unwrap_or_else(|e| e.into_inner()) + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}
