//! The CRI call log: one JSON line per RPC (`<state-dir>/cri-calls.jsonl`).
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallRecord {
    /// When the call returned (RFC 3339, nanoseconds).
    pub ts: String,
    pub method: String,
    /// The id the call was about (a RunPodSandbox: the sandbox's name; a filtered List: the
    /// pod uid of its filter).
    pub id: String,
    pub duration_us: u64,
    /// The gRPC code's name (`Ok`, `NotFound`, …).
    pub code: String,
}

impl CallRecord {
    /// When the call began and returned; `None` if `ts` does not parse.
    pub fn span(&self) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
        let end: jiff::Timestamp = self.ts.parse().ok()?;
        let began = end.checked_sub(jiff::SignedDuration::from_micros(i64::try_from(self.duration_us).ok()?)).ok()?;
        Some((began, end))
    }
}

/// The records of the log at `path`, in order; lines that are not records are left out.
pub fn read(path: &Path) -> Result<Vec<CallRecord>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(format!("read {}", path.display())))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

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
        let record = CallRecord {
            ts: crate::logs::format_ts(jiff::Timestamp::now()),
            method: method.into(),
            id: id.into(),
            duration_us: took.as_micros() as u64,
            code: format!("{code:?}"),
        };
        let line = serde_json::to_string(&record).unwrap_or_default();
        let mut g = crate::runtime::lock(&self.file);
        let _ = writeln!(g, "{line}");
    }
}
