//! Flag files: a host directory mounted into a pod (hostPath volume) whose files a case creates
//! and removes to flip exec probes (`check-file`) at a moment of its choosing.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

/// One pod's flag directory.
pub struct Flags {
    dir: PathBuf,
}

impl Flags {
    /// Where the directory is mounted inside containers.
    pub const MOUNT: &str = "/tmp/flags";

    /// A fresh flag directory for pod `pod` (in the world's scratch space).
    pub fn new(pod: &str) -> anyhow::Result<Flags> {
        Ok(Flags { dir: harness::backend::scratch_dir(&format!("flags-{pod}"))? })
    }

    /// The pod's `volumes` entry.
    pub fn volumes(&self) -> Value {
        json!([{"name": "flags", "hostPath": {"path": self.dir.to_string_lossy(), "type": "Directory"}}])
    }

    /// A container's `volumeMounts` entry.
    pub fn mounts() -> Value {
        json!([{"name": "flags", "mountPath": Self::MOUNT}])
    }

    /// The path of flag `name` inside the container.
    pub fn path(name: &str) -> String {
        format!("{}/{name}", Self::MOUNT)
    }

    /// An exec probe handler that succeeds while flag `name` exists.
    pub fn exec_check(name: &str) -> Value {
        json!({"exec": {"command": ["/workload", "check-file", Self::path(name)]}})
    }

    pub fn set(&self, name: &str) -> anyhow::Result<()> {
        std::fs::write(self.dir.join(name), b"ok\n").with_context(|| format!("creating flag {name}"))
    }

    pub fn clear(&self, name: &str) -> anyhow::Result<()> {
        std::fs::remove_file(self.dir.join(name)).with_context(|| format!("removing flag {name}"))
    }
}
