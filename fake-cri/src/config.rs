//! Configuration: the image catalog (reference → binary, entrypoint, size, pull faults) and the
//! injectable faults (also read from `<state-dir>/faults.json` when that file changes).
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reference of the default workload image.
pub const WORKLOAD_IMAGE: &str = "nodekit.local/workload:1.0";
/// Reference of the default pause image.
pub const PAUSE_IMAGE: &str = "nodekit.local/pause:3.10";

/// One image of the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// Full reference (`nodekit.local/workload:1.0`).
    pub reference: String,
    /// Host path of the binary that `/workload` (and the multi-call links) in the image stand for.
    /// It must not live below /tmp: containers get a private /tmp that covers it.
    pub binary: PathBuf,
    /// Image Entrypoint.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Image Cmd.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Image Env (`KEY=value`).
    #[serde(default)]
    pub env: Vec<String>,
    /// Image WorkingDir.
    #[serde(default)]
    pub working_dir: String,
    /// Reported size in bytes (0: the binary's size).
    #[serde(default)]
    pub size: u64,
    /// Delay of PullImage in milliseconds.
    #[serde(default)]
    pub pull_delay_ms: u64,
    /// If set, PullImage fails with this message.
    #[serde(default)]
    pub pull_error: Option<String>,
    /// Present without a pull (like an imported image).
    #[serde(default = "yes")]
    pub preloaded: bool,
}

fn yes() -> bool {
    true
}

/// Paths inside an image that stand for the image binary (multi-call names).
pub const IMAGE_BINARY_PATHS: &[&str] = &["/workload", "/pause"];

/// The image catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    /// Images by position.
    pub images: Vec<ImageEntry>,
}

impl Catalog {
    /// The default catalog: the workload image (`/workload`, Cmd `pause`) and the pause image
    /// (`/workload pause`), both backed by `workload_bin`, both preloaded.
    pub fn default_for(workload_bin: &Path) -> Self {
        let entry = |reference: &str, entrypoint: Vec<String>, cmd: Vec<String>| ImageEntry {
            reference: reference.into(),
            binary: workload_bin.to_path_buf(),
            entrypoint,
            cmd,
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: "/".into(),
            size: 0,
            pull_delay_ms: 0,
            pull_error: None,
            preloaded: true,
        };
        Catalog {
            images: vec![
                entry(WORKLOAD_IMAGE, vec!["/workload".into()], vec!["pause".into()]),
                entry(PAUSE_IMAGE, vec!["/workload".into(), "pause".into()], vec![]),
            ],
        }
    }

    /// Reads a catalog JSON file (`{"images": [ImageEntry…]}`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(Error::io(format!("read catalog {}", path.display())))?;
        serde_json::from_slice(&text).map_err(|source| Error::Json { context: format!("catalog {}", path.display()), source })
    }
}

/// Faults that tests inject.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Extra latency of every RPC, in milliseconds.
    pub rpc_latency_ms: u64,
    /// Extra PullImage delay per image reference, in milliseconds.
    pub pull_delay_ms: BTreeMap<String, u64>,
    /// PullImage failure message per image reference.
    pub pull_error: BTreeMap<String, String>,
    /// If set, Status reports RuntimeReady=false with this message.
    pub runtime_not_ready: Option<String>,
    /// RunPodSandbox failure message per pod (sandbox metadata) name.
    pub sandbox_error: BTreeMap<String, String>,
    /// CreateContainer failure message per container name or image reference.
    pub create_error: BTreeMap<String, String>,
    /// Containers (by name or image reference) are killed (SIGKILL) this many ms after start.
    pub crash_after_ms: BTreeMap<String, u64>,
}

/// Runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The CRI unix socket to serve.
    pub socket: PathBuf,
    /// Persistent state, call log, netns mounts, faults.json.
    pub state_dir: PathBuf,
    /// The image catalog.
    pub catalog: Catalog,
    /// Faults active from the start.
    pub faults: Faults,
    /// Name of the node bridge.
    pub bridge: String,
    /// Pod CIDR set before any UpdateRuntimeConfig (None: NetworkReady=false until then).
    pub pod_cidr: Option<String>,
    /// Kill all containers and tear down networking on shutdown (false: leave them for a restart).
    pub kill_on_shutdown: bool,
    /// cgroup path (`/a/b`, relative to each hierarchy's root) under which per-container cgroups
    /// of sandboxes without a `cgroup_parent` go (None: `fake-cri-<state dir>-<hash>`).
    pub cgroup_parent: Option<String>,
    /// Container events buffered per GetContainerEvents subscriber.
    pub event_buffer: usize,
}

impl Config {
    /// A config with the default catalog for `workload_bin`.
    pub fn new(socket: impl Into<PathBuf>, state_dir: impl Into<PathBuf>, workload_bin: &Path) -> Self {
        Config {
            socket: socket.into(),
            state_dir: state_dir.into(),
            catalog: Catalog::default_for(workload_bin),
            faults: Faults::default(),
            bridge: "cbr0".into(),
            pod_cidr: None,
            kill_on_shutdown: true,
            cgroup_parent: None,
            event_buffer: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_round_trip_and_defaults() {
        let c = Catalog::default_for(Path::new("/bin/w"));
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Catalog>(&j).unwrap(), c);
        let min: Catalog = serde_json::from_str(r#"{"images":[{"reference":"a:1","binary":"/x"}]}"#).unwrap();
        assert!(min.images[0].preloaded);
        assert!(serde_json::from_str::<Catalog>(r#"{"images":[{"reference":"a:1"}]}"#).is_err());
        let f: Faults = serde_json::from_str(r#"{"rpc_latency_ms":5,"pull_error":{"a:1":"boom"}}"#).unwrap();
        assert_eq!(f.rpc_latency_ms, 5);
        assert!(serde_json::from_str::<Faults>(r#"{"nope":1}"#).is_err());
    }
}
