//! The CRI call log: one JSON line per RPC (`<state-dir>/cri-calls.jsonl`).
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Appends call records.
pub struct CallLog {
    file: Mutex<std::fs::File>,
}

impl CallLog {
    /// Opens the log for appending.
    pub fn open(path: &Path) -> Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::io(format!("open {}", path.display())))?;
        Ok(CallLog { file: Mutex::new(f) })
    }

    /// Records one call: method, the id it was about, duration, gRPC code name.
    pub fn record(&self, method: &str, id: &str, took: Duration, code: tonic::Code) {
        let line = serde_json::json!({
            "ts": crate::logs::format_ts(jiff::Timestamp::now()),
            "method": method,
            "id": id,
            "duration_us": took.as_micros() as u64,
            "code": format!("{code:?}"),
        });
        let mut g = crate::runtime::lock(&self.file);
        let _ = writeln!(g, "{line}");
    }
}
