//! The case timeline: JSON lines `{"time": RFC3339, "source": …, "event": …}` appended by components.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Context, Result};

/// An append-only JSON-lines timeline. Cheap to clone; writes are serialised and unbuffered
/// (each event is one `write`, so a crash loses nothing already recorded).
#[derive(Debug, Clone)]
pub struct Timeline {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl Timeline {
    /// Opens (appending) or creates `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Timeline> {
        let path = path.into();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ctx(|| format!("opening timeline {}", path.display()))?;
        Ok(Timeline { path, file: Arc::new(Mutex::new(file)) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event with free-form details (ignored if they are `Null`).
    pub fn record_with(&self, source: &str, event: &str, details: serde_json::Value) {
        let mut line = serde_json::json!({
            "time": jiff::Timestamp::now().to_string(),
            "source": source,
            "event": event,
        });
        if !details.is_null()
            && let Some(obj) = line.as_object_mut()
        {
            obj.insert("details".into(), details);
        }
        let mut text = line.to_string();
        text.push('\n');
        if let Ok(mut f) = self.file.lock() {
            // Best effort: a timeline must never fail the thing it observes.
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// Appends an event.
    pub fn record(&self, source: &str, event: impl AsRef<str>) {
        self.record_with(source, event.as_ref(), serde_json::Value::Null);
    }

    /// Reads all events back (for assertions and reports).
    pub fn read(&self) -> Result<Vec<serde_json::Value>> {
        let text = std::fs::read_to_string(&self.path).ctx(|| format!("reading {}", self.path.display()))?;
        Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }
}
