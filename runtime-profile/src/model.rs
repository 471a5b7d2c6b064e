//! The typed profile. Every string list or string called a template may hold placeholders
//! ([`crate::template`]); the harness renders them per node.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How to start, check, feed and clean up one CRI runtime inside a node host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeProfile {
    /// `metadata.name`: the target's name in run names and reports (`pod-lifecycle/x[<name>]`).
    pub name: String,
    /// The file the profile came from (messages name it).
    pub source: PathBuf,
    /// `spec.runtimeName`: the `runtime_name` the runtime's CRI `Version` reports, which a node
    /// shows as `containerRuntimeVersion: <runtimeName>://<version>`.
    pub runtime_name: String,
    /// `spec.command`: the runtime's command line (templates); the first word is the binary
    /// (with [`RuntimeProfile::image`]: the program inside the image).
    pub command: Vec<String>,
    /// `spec.image`: the runtime is an OCI image, run in a Docker Engine the harness starts in
    /// the node host, instead of a binary of the host.
    pub image: Option<ImageRuntime>,
    /// `spec.env`: extra environment (values are templates).
    pub env: BTreeMap<String, String>,
    /// `spec.files`: files written before the runtime starts.
    pub files: Vec<FileTemplate>,
    /// `spec.privateMounts`: run in a private mount namespace (mounts it makes vanish with it).
    pub private_mounts: bool,
    /// `spec.unmount`: mount points detached in the runtime's private mount namespace before it
    /// starts (e.g. `/sys/fs/cgroup/unified`: crun refuses a hybrid cgroup host); needs
    /// `privateMounts`.
    pub unmount: Vec<String>,
    /// `spec.tmpfs`: directories covered by an empty tmpfs in the runtime's private mount
    /// namespace (e.g. `/var/lib`, where CNI caches results); needs `privateMounts`.
    pub tmpfs: Vec<String>,
    /// `spec.sysctls`: sysctls set in the node host's network namespace before start.
    pub sysctls: BTreeMap<String, String>,
    /// `spec.readiness`.
    pub readiness: Readiness,
    /// `spec.images`: how the world's images reach the runtime.
    pub images: Images,
    /// `spec.images.pulls` (default true): whether `PullImage` fetches from a registry. A
    /// runtime that does not (fake-cri makes its images from the workload binary) skips the
    /// cases that pull from the world's registry, with that reason.
    pub pulls: bool,
    /// `spec.handlers`: the RuntimeClass handlers the runtime offers; the first is the default.
    pub handlers: Vec<String>,
    /// `spec.stop.grace`: time between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// `spec.cleanup`.
    pub cleanup: Cleanup,
}

/// A runtime shipped as an OCI image (`spec.image`). Its container shares the node host's
/// network and pid namespaces and sees the world's scratch directory (sockets, state, pod logs)
/// at the same path; it keeps only the capabilities listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRuntime {
    /// `reference`: the image (`repository:tag`) the container runs.
    pub reference: String,
    /// `archive`: a `docker load` archive holding it (a template: a path, or
    /// `{fake_cri_image}`); without one the image must already be in the engine, which starts
    /// empty, so in practice it is required.
    pub archive: String,
    /// `capabilities`: the capabilities the container keeps (every other one is dropped).
    pub capabilities: Vec<String>,
    /// `mounts`: more host paths bind-mounted read-write at the same path (templates).
    pub mounts: Vec<String>,
    /// `securityOpts`: Docker security options (`seccomp=unconfined`, `no-new-privileges`).
    pub security_opts: Vec<String>,
}

/// A file written before the runtime starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTemplate {
    /// Where (a template; must be inside the instance's directories).
    pub path: String,
    /// What (a template).
    pub content: String,
}

/// When the runtime counts as ready: its socket accepts connections, CRI `Version` answers,
/// `Status` reports `RuntimeReady` (and `NetworkReady` unless turned off) and every image the
/// world provides is visible through `ImageStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `spec.readiness.timeout` (default 30 s).
    pub timeout: Duration,
    /// `spec.readiness.networkReady` (default true).
    pub network_ready: bool,
}

/// How the world's images (workload, pause and the upstream stand-ins) reach the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Images {
    /// `import.command`: run once per image archive (`{archive}`, an OCI image-layout tarball)
    /// after the socket answers.
    Import { command: Vec<String> },
    /// `preloaded: true`: the runtime already offers them (fake-cri builds them from
    /// `{workload_bin}`).
    Preloaded,
}

/// What is removed after the runtime stopped, besides what the harness always does (SIGKILL
/// to every process whose command line names the instance's directory, then the node's
/// cgroup tree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// `spec.cleanup.ociRuntimes`: OCI runtimes whose state roots hold containers to delete
    /// (`<binary> --root <root> delete --force <id>` for each).
    pub oci_runtimes: Vec<OciRuntime>,
    /// `spec.cleanup.commands`: commands run last (templates).
    pub commands: Vec<Vec<String>>,
}

/// An OCI runtime binary and one of its state roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRuntime {
    /// The binary (`runc`, `crun`, or a path).
    pub binary: String,
    /// The state root (a template, e.g. `{state_dir}/runc/k8s.io`).
    pub root: String,
}

impl RuntimeProfile {
    /// The RuntimeClass handler a pod without a class gets.
    pub fn default_handler(&self) -> Option<&str> {
        self.handlers.first().map(String::as_str)
    }

    /// Every binary the profile runs, with the field that names it: the command (for an image
    /// runtime the Docker Engine, `dockerd`), the import command, the OCI runtimes and the
    /// cleanup commands.
    pub fn binaries(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if self.image.is_some() {
            // The program is inside the image; the host needs the engine.
            out.push(("spec.image".to_string(), "dockerd"));
        } else if let Some(b) = self.command.first() {
            out.push(("spec.command[0]".to_string(), b.as_str()));
        }
        if let Images::Import { command } = &self.images
            && let Some(b) = command.first()
        {
            out.push(("spec.images.import.command[0]".to_string(), b.as_str()));
        }
        for (i, r) in self.cleanup.oci_runtimes.iter().enumerate() {
            out.push((format!("spec.cleanup.ociRuntimes[{i}].binary"), r.binary.as_str()));
        }
        for (i, c) in self.cleanup.commands.iter().enumerate() {
            if let Some(b) = c.first() {
                out.push((format!("spec.cleanup.commands[{i}][0]"), b.as_str()));
            }
        }
        out
    }
}
