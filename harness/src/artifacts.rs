//! Per-case artifacts directory: logs, pcaps, audit and timeline; kept on failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Context, Result};

/// Environment variable: `1` keeps artifacts of passing cases too.
pub const KEEP_ENV: &str = "NODEKIT_KEEP_ARTIFACTS";
/// Environment variable: parent directory of all artifacts (default `$TMPDIR/nodekit-artifacts`).
pub const DIR_ENV: &str = "NODEKIT_ARTIFACTS_DIR";

/// `$TMPDIR/nodekit-artifacts`.
fn default_root() -> PathBuf {
    std::env::temp_dir().join("nodekit-artifacts")
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// `None` while the case runs; the outcome once [`Artifacts::finish`] was called.
    finished: Mutex<Option<bool>>,
}

/// A case's artifacts directory. Cheap to clone. If [`Artifacts::finish`] is never called
/// (crash, panic) the directory is kept.
#[derive(Debug, Clone)]
pub struct Artifacts {
    inner: Arc<Inner>,
}

impl Artifacts {
    /// Creates `<root>/<name>-<unique>` where root is `NODEKIT_ARTIFACTS_DIR` or
    /// `$TMPDIR/nodekit-artifacts`. `name` may contain `/` (case ids); it is flattened.
    pub fn create(name: &str) -> Result<Artifacts> {
        let root = std::env::var_os(DIR_ENV).map(PathBuf::from).unwrap_or_else(default_root);
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
            .collect();
        // Another world's `finish` may remove the empty default root between the two steps:
        // then make it again.
        let mut attempt = 0;
        let dir = loop {
            std::fs::create_dir_all(&root).ctx(|| format!("creating {}", root.display()))?;
            match tempfile::Builder::new().prefix(&format!("{safe}-")).tempdir_in(&root) {
                Ok(d) => break d.keep(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 3 => attempt += 1,
                Err(e) => return Err(e).ctx(|| format!("creating an artifacts dir in {}", root.display())),
            }
        };
        Ok(Artifacts::at(dir))
    }

    /// Uses an existing directory.
    pub fn at(dir: impl Into<PathBuf>) -> Artifacts {
        Artifacts { inner: Arc::new(Inner { dir: dir.into(), finished: Mutex::new(None) }) }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A path inside the directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.inner.dir.join(file)
    }

    /// Records the outcome: on success the directory is removed unless `NODEKIT_KEEP_ARTIFACTS=1`.
    /// Returns the directory if it was kept.
    pub fn finish(&self, passed: bool) -> Option<PathBuf> {
        if let Ok(mut f) = self.inner.finished.lock() {
            *f = Some(passed);
        }
        let keep = !passed || std::env::var(KEEP_ENV).is_ok_and(|v| v == "1");
        if keep {
            Some(self.inner.dir.clone())
        } else {
            let _ = std::fs::remove_dir_all(&self.inner.dir);
            // The default root goes too once it is empty (a kept directory keeps it).
            if let Some(parent) = self.inner.dir.parent()
                && parent == default_root()
            {
                let _ = std::fs::remove_dir(parent);
            }
            None
        }
    }

    /// Whether [`Artifacts::finish`] was called, and with which outcome.
    pub fn outcome(&self) -> Option<bool> {
        self.inner.finished.lock().ok().and_then(|f| *f)
    }
}
