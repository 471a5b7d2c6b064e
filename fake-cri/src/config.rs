//! Configuration: the image catalog (reference → binary, entrypoint, size, pull faults) and the
//! injectable faults (also read from `<state-dir>/faults.json` when that file changes).
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Reference of the default workload image.
pub const WORKLOAD_IMAGE: &str = "nodekit.local/workload:1.0";
/// Reference of the default pause image.
pub const PAUSE_IMAGE: &str = "nodekit.local/pause:3.10";
/// Repository of upstream's e2e test image agnhost.
pub const AGNHOST_REPOSITORY: &str = "registry.k8s.io/e2e-test-images/agnhost";
/// The agnhost tags the default catalog offers, each its own image (own id, as upstream's
/// tags are different images): 2.56 is what the e2e framework of Kubernetes 1.34 uses
/// (`test/utils/image/manifest.go`, bumped from 2.54 by kubernetes#132117), 2.52 to 2.55 are
/// what e2e tests of 1.31 to 1.33 and other copies name. Other tags do not resolve, as a
/// registry lacking them would not: a PullImage of one fails and says how to add it.
pub const AGNHOST_TAGS: &[&str] = &["2.52", "2.53", "2.54", "2.55", "2.56"];
/// The agnhost reference upstream's e2e framework uses for Kubernetes 1.34.
pub const AGNHOST_IMAGE: &str = "registry.k8s.io/e2e-test-images/agnhost:2.56";
/// Upstream's pause images (`registry.k8s.io/pause`, Entrypoint `/pause`), for pod specs that
/// name them as containers.
pub const REGISTRY_PAUSE_IMAGES: &[&str] = &["registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1"];
/// One image under several references — three tags of one repository, then the first tag
/// under a second registry host (critest's `test-image-tags`) — which the pulling runtimes get
/// as one image; the default catalog offers each reference with the workload image's Entrypoint
/// and Cmd, so that every backend has every world image.
pub const TAGGED_IMAGES: [&str; 4] = [
    "nodekit.local/test-image-tags:1",
    "nodekit.local/test-image-tags:2",
    "nodekit.local/test-image-tags:3",
    "mirror.nodekit.local/test-image-tags:1",
];

/// An image only a pull with credentials gets: the world's registry serves it to basic auth
/// with [`PRIVATE_IMAGE_CREDENTIALS`] only, no runtime has it before a pull, and fake-cri's
/// default catalog requires the same of a PullImage (a pod needs an image pull secret for it).
pub const PRIVATE_IMAGE: &str = "nodekit.local/private/workload:1.0";
/// Its repository path in the registry (the reference without host and tag).
pub const PRIVATE_IMAGE_PATH: &str = "private/workload";
/// The user name and password [`PRIVATE_IMAGE`] is pulled with.
pub const PRIVATE_IMAGE_CREDENTIALS: (&str, &str) = ("nodekit-puller", "pull-secret-7f3a");

/// Credentials a catalog image requires of a PullImage (basic auth at its registry).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PullCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for PullCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

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
    /// Another catalog reference whose image this one names (one image under several names,
    /// as a registry serves it under several tags): the same id, listed once with every
    /// present name among its repo tags, removed under all of them at once. The entry's image
    /// fields must equal that entry's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_image_as: Option<String>,
    /// If set, a PullImage must carry these credentials (its AuthConfig), or it fails as a
    /// runtime's pull from a registry that answers 401 does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PullCredentials>,
}

fn yes() -> bool {
    true
}

/// Paths inside an image that stand for the image binary (multi-call names; `/agnhost` and
/// `/agnhost-2` make it upstream's agnhost).
pub const IMAGE_BINARY_PATHS: &[&str] = &["/workload", "/pause", "/agnhost", "/agnhost-2"];

/// The image catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    /// Images by position.
    pub images: Vec<ImageEntry>,
}

/// An image entry backed by `binary`, preloaded, with a `PATH` environment unless `env` is given.
fn entry(binary: &Path, reference: &str, entrypoint: &[&str], cmd: &[&str], env: Option<Vec<String>>) -> ImageEntry {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ImageEntry {
        reference: reference.into(),
        binary: binary.to_path_buf(),
        entrypoint: strings(entrypoint),
        cmd: strings(cmd),
        env: env.unwrap_or_else(|| vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()]),
        working_dir: "/".into(),
        size: 0,
        pull_delay_ms: 0,
        pull_error: None,
        preloaded: true,
        same_image_as: None,
        credentials: None,
    }
}

/// Every `registry.k8s.io/e2e-test-images/agnhost:<tag>` of [`AGNHOST_TAGS`].
pub fn agnhost_references() -> Vec<String> {
    AGNHOST_TAGS.iter().map(|t| format!("{AGNHOST_REPOSITORY}:{t}")).collect()
}

/// Stand-ins for upstream images, backed by `workload_bin`: agnhost (Entrypoint `/agnhost`,
/// Cmd `pause`, as upstream's Dockerfile) for each of [`AGNHOST_TAGS`], and the pause images
/// of [`REGISTRY_PAUSE_IMAGES`] (Entrypoint `/pause`, no Env, as upstream's). The harness builds
/// containerd's images from the same list.
pub fn upstream_images(workload_bin: &Path) -> Vec<ImageEntry> {
    let mut out: Vec<ImageEntry> =
        agnhost_references().iter().map(|r| entry(workload_bin, r, &["/agnhost"], &["pause"], None)).collect();
    out.extend(REGISTRY_PAUSE_IMAGES.iter().map(|r| entry(workload_bin, r, &["/pause"], &[], Some(vec![]))));
    out
}

impl Catalog {
    /// The default catalog: the workload image (`/workload`, Cmd `pause`) and the pause image
    /// (`/workload pause`), the [`TAGGED_IMAGES`], then the [`upstream_images`], all preloaded;
    /// last [`PRIVATE_IMAGE`], not preloaded, pulled only with its credentials. All backed by
    /// `workload_bin`.
    pub fn default_for(workload_bin: &Path) -> Self {
        let mut images = vec![
            entry(workload_bin, WORKLOAD_IMAGE, &["/workload"], &["pause"], None),
            entry(workload_bin, PAUSE_IMAGE, &["/workload", "pause"], &[], None),
        ];
        images.extend(TAGGED_IMAGES.iter().map(|r| ImageEntry {
            same_image_as: (*r != TAGGED_IMAGES[0]).then(|| TAGGED_IMAGES[0].to_string()),
            ..entry(workload_bin, r, &["/workload"], &["pause"], None)
        }));
        images.extend(upstream_images(workload_bin));
        let (username, password) = PRIVATE_IMAGE_CREDENTIALS;
        images.push(ImageEntry {
            preloaded: false,
            credentials: Some(PullCredentials { username: username.into(), password: password.into() }),
            ..entry(workload_bin, PRIVATE_IMAGE, &["/workload"], &["pause"], None)
        });
        Catalog { images }
    }

    /// The references of the catalog, in order.
    pub fn references(&self) -> Vec<&str> {
        self.images.iter().map(|e| e.reference.as_str()).collect()
    }

    /// Reads a catalog JSON file (`{"images": [ImageEntry…]}`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(Error::io(format!("read catalog {}", path.display())))?;
        let c: Catalog = serde_json::from_slice(&text).map_err(|source| Error::Json { context: format!("catalog {}", path.display()), source })?;
        c.validate().map_err(|e| Error::InvalidArgument(format!("catalog {}: {e}", path.display())))?;
        Ok(c)
    }

    /// Each `same_image_as` names another entry that names no other itself, with the same
    /// image fields; the error names the entry, the field and what to fix.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for e in &self.images {
            let Some(target) = &e.same_image_as else { continue };
            let which = format!("image {:?}: same_image_as {target:?}", e.reference);
            let Some(t) = self.images.iter().find(|o| o.reference == *target) else {
                return Err(format!("{which} is not a reference of the catalog; name one of its references"));
            };
            if t.reference == e.reference || t.same_image_as.is_some() {
                return Err(format!("{which} must name an entry without same_image_as (the image's first name)"));
            }
            let fields = |x: &ImageEntry| (x.binary.clone(), x.entrypoint.clone(), x.cmd.clone(), x.env.clone(), x.working_dir.clone(), x.size);
            if fields(e) != fields(t) {
                return Err(format!("{which}: binary, entrypoint, cmd, env, working_dir and size must equal that entry's"));
            }
        }
        Ok(())
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

impl Faults {
    /// How long PullImage of `entry` waits: the catalog entry's delay plus this fault's for its
    /// reference (saturating: both come from files).
    pub fn pull_delay(&self, entry: &ImageEntry) -> Duration {
        let extra = self.pull_delay_ms.get(&entry.reference).copied().unwrap_or(0);
        Duration::from_millis(entry.pull_delay_ms.saturating_add(extra))
    }
}

/// The named handler offered by default, as containerd's default configuration names runc.
pub const DEFAULT_RUNTIME_HANDLER: &str = "runc";

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
    /// Where the streaming server (Exec, Attach, PortForward URLs) listens; containerd's
    /// default is 127.0.0.1 with a free port.
    pub stream_address: String,
    /// The named runtime handlers a RunPodSandbox may ask for besides the default ("").
    pub runtime_handlers: Vec<String>,
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
            stream_address: "127.0.0.1:0".into(),
            runtime_handlers: vec![DEFAULT_RUNTIME_HANDLER.to_string()],
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

    #[test]
    fn default_catalog_keeps_its_first_images_and_adds_upstream_ones() {
        let c = Catalog::default_for(Path::new("/bin/w"));
        let (w, p) = (&c.images[0], &c.images[1]);
        assert_eq!((w.reference.as_str(), w.entrypoint.clone(), w.cmd.clone()), (WORKLOAD_IMAGE, vec!["/workload".to_string()], vec!["pause".to_string()]));
        assert_eq!((p.reference.as_str(), p.entrypoint.clone(), p.cmd.clone()), (PAUSE_IMAGE, vec!["/workload".to_string(), "pause".into()], vec![]));
        let refs = c.references();
        assert!(refs.contains(&AGNHOST_IMAGE) && refs.contains(&"registry.k8s.io/e2e-test-images/agnhost:2.53"));
        assert!(refs.contains(&"registry.k8s.io/pause:3.10"));
        let agnhost = c.images.iter().find(|e| e.reference == AGNHOST_IMAGE).unwrap();
        assert_eq!((agnhost.entrypoint.clone(), agnhost.cmd.clone()), (vec!["/agnhost".to_string()], vec!["pause".to_string()]));
        assert!(c.images.iter().all(|e| e.binary == Path::new("/bin/w")));
        let (private, others): (Vec<_>, Vec<_>) = c.images.iter().partition(|e| e.credentials.is_some());
        assert!(others.iter().all(|e| e.preloaded));
        assert_eq!(private.iter().map(|e| (e.reference.as_str(), e.preloaded)).collect::<Vec<_>>(), [(PRIVATE_IMAGE, false)]);
        assert_eq!(PRIVATE_IMAGE, format!("nodekit.local/{PRIVATE_IMAGE_PATH}:1.0"));
        assert!(IMAGE_BINARY_PATHS.contains(&"/agnhost") && IMAGE_BINARY_PATHS.contains(&"/agnhost-2"));
    }
}
