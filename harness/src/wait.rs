//! Condition waits: poll a condition at a short interval until it holds or a deadline passes.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// Polling interval of [`wait_for`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// What a condition poll returns: the value when satisfied, or what was seen instead.
pub trait Observation {
    /// The value produced once the condition holds.
    type Value;
    /// `Ok(value)` if satisfied, `Err(description of what was observed)` otherwise.
    fn into_result(self) -> std::result::Result<Self::Value, String>;
}

impl Observation for bool {
    type Value = ();
    fn into_result(self) -> std::result::Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Observation for Option<T> {
    type Value = T;
    fn into_result(self) -> std::result::Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T, E: Debug> Observation for std::result::Result<T, E> {
    type Value = T;
    fn into_result(self) -> std::result::Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Polls `check` every [`POLL_INTERVAL`] until it returns `true` / `Some` / `Ok`, or fails with
/// [`Error::Timeout`] naming `what` and the last observation (`Err` values are shown with `{:?}`,
/// so returning `Err(state)` gives a helpful message).
pub async fn wait_for<F, Fut, O>(what: &str, timeout: Duration, check: F) -> Result<O::Value>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
    O: Observation,
{
    wait_every(what, timeout, POLL_INTERVAL, check).await
}

/// [`wait_for`] with an explicit polling interval.
pub async fn wait_every<F, Fut, O>(what: &str, timeout: Duration, interval: Duration, mut check: F) -> Result<O::Value>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
    O: Observation,
{
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    loop {
        let last = match check().await.into_result() {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::Timeout { what: what.to_string(), after: now - start, last });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

/// Blocking variant for code without a runtime (e.g. a test's parent process).
pub fn wait_blocking<O: Observation>(what: &str, timeout: Duration, mut check: impl FnMut() -> O) -> Result<O::Value> {
    let start = std::time::Instant::now();
    loop {
        let last = match check().into_result() {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(Error::Timeout { what: what.to_string(), after: elapsed, last });
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout - elapsed));
    }
}
