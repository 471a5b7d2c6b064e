//! Locating workspace binaries (node-agent, node-proxy, fake-cri, workload, …).

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Environment variable: directory searched first for binaries.
pub const BIN_DIR_ENV: &str = "NODEKIT_BIN_DIR";

/// Finds binary `name`: `$NODEKIT_BIN_DIR`, then the directory of the current executable and
/// its parent (test binaries live in `target/<profile>/deps`, binaries in `target/<profile>`).
pub fn locate(name: &str) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os(BIN_DIR_ENV) {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_path_buf());
        if let Some(parent) = dir.parent() {
            dirs.push(parent.to_path_buf());
        }
    }
    for d in &dirs {
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::NotFound(format!(
        "binary {name:?} not found in {dirs:?}; run `cargo build --workspace --bins` (or set {BIN_DIR_ENV})"
    )))
}
