//! Real containerd started inside a node host with its own root, state, sockets, CNI config
//! and imported images (the design's recipe), and its removal: processes, runc state and the
//! host cgroups its containers used.
//!
//! Start: containerd runs in the node host's network namespace and a private mount namespace
//! (`pre_exec` setns + unshare, never `ip netns exec`), configured by [`config`] with every
//! path under `scratch_dir("containerd-<node>")`. Once its socket answers, the workload and
//! pause images and the stand-ins for upstream's agnhost and pause images (built by
//! [`crate::oci`], the same references fake-cri's default catalog has) are imported with
//! `ctr -n k8s.io images import`, and `start` returns when CRI `Status` reports the runtime and
//! network ready and every image is visible through CRI `ImageStatus`.
//!
//! Stop: SIGTERM then SIGKILL for containerd, SIGKILL for its shims, `runc delete --force` for
//! every container in its runc root (kills what still runs and removes runc's cgroups), then
//! the node's cgroup tree (see [`cgroups`]). Mounts live in containerd's private mount
//! namespace and files in the world's tmpfs: both vanish with their last process.
//!
//! Callers must put pods under [`cgroup_parent`]: cgroup v1 is not namespaced, and only the
//! per-world tree is found again by [`sweep_stale_cgroups`] after a world was SIGKILLed.

mod cgroups;
mod config;
pub(super) mod cri;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use cgroups::{
    CGROUP_PREFIX, SweepReport, cgroup_parent, cgroup_root, hierarchies as cgroup_hierarchies, node_cgroup_root,
    stale_cgroup_trees, sweep_stale_cgroups, sweep_stale_cgroups_within, world_trees,
};
pub use config::Layout;

use super::{Error, PAUSE_IMAGE, Result, WORKLOAD_IMAGE, scratch_dir, workload_binary};
use crate::oci::{ImageSpec, write_images_tar};
use crate::process::{Process, ProcessSpec};
use crate::timeline::Timeline;
use crate::world::{Cidr, World};

/// How to start containerd.
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// The node's pod CIDR (host-local IPAM range of the CNI bridge).
    pub pod_cidr: String,
    /// The node's existing pod bridge the CNI bridge plugin attaches pods to (`cbr0`).
    pub bridge: String,
    /// containerd's log level (`info`, `debug`, …).
    pub log_level: String,
    /// Import the workload and pause images (the pause image is the sandbox image) and the
    /// upstream stand-ins (agnhost, registry.k8s.io/pause).
    pub import_images: bool,
    /// How long containerd may take to answer and report ready.
    pub start_timeout: Duration,
    /// How long containerd gets after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Image archives (OCI image layout or docker-archive) the world's registry serves besides
    /// the kit's images: pulled on demand, not imported.
    pub extra_images: Vec<PathBuf>,
}

impl ContainerdOptions {
    /// Defaults for a node with `pod_cidr`: bridge `cbr0`, log level `info`, images imported,
    /// 30 s to start, 5 s of grace at stop.
    pub fn new(pod_cidr: String) -> ContainerdOptions {
        ContainerdOptions {
            pod_cidr,
            bridge: "cbr0".into(),
            log_level: "info".into(),
            import_images: true,
            start_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            extra_images: Vec::new(),
        }
    }
}

/// A running containerd.
pub struct Containerd {
    registry: Option<super::WorldRegistry>,
    node: String,
    layout: Layout,
    process: Process,
    cgroup_root: String,
    stop_grace: Duration,
    timeline: Timeline,
}

impl std::fmt::Debug for Containerd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containerd").field("node", &self.node).field("dir", &self.layout.dir).finish_non_exhaustive()
    }
}

/// Covered by a tmpfs in containerd's mount namespace: libcni caches every sandbox's result
/// under `/var/lib/cni` (containerd's own root and state are elsewhere).
pub const PRIVATE_VAR_LIB: &str = "/var/lib";

/// Where a hybrid cgroup host mounts its cgroup v2 hierarchy next to the v1 controllers.
pub const HYBRID_CGROUP2: &str = "/sys/fs/cgroup/unified";

/// Finds `name` on PATH or in the sbin directories.
pub(super) fn program(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Component(format!("{name} is not installed (run ci/bootstrap)")))
}

/// PATH for containerd: the caller's plus the sbin directories (runc lives in /usr/sbin).
pub(super) fn daemon_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    for d in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(PathBuf::from(d));
        }
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context, e)
}

impl Containerd {
    /// Starts containerd in node host `node` and waits until it is ready with the images.
    pub async fn start(world: &World, node: &str, opts: ContainerdOptions) -> Result<Containerd> {
        let started = Instant::now();
        let host = world.host(node)?;
        let cidr: Cidr = opts.pod_cidr.parse()?;
        let layout = Layout::new(&scratch_dir(&format!("containerd-{node}"))?);
        for d in layout.dirs() {
            std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        std::fs::write(&layout.config, config::containerd_toml(&layout, PAUSE_IMAGE, &opts.log_level))
            .map_err(io_err(format!("writing {}", layout.config.display())))?;
        let conflist = layout.cni_conf.join("10-nodekit-bridge.conflist");
        std::fs::write(&conflist, config::bridge_conflist(&opts.bridge, cidr, &layout.ipam))
            .map_err(io_err(format!("writing {}", conflist.display())))?;
        // Its host files (layout.registry_hosts) are written when it serves, before ready.
        let bound = super::registry::BoundRegistry::bind(world, node)?;
        // Pod → ClusterIP → pod on the same bridge needs bridged traffic to traverse iptables.
        host.sysctl("net.bridge.bridge-nf-call-iptables", "1")?;
        let cgroup_root = node_cgroup_root(node)?;

        // The image tarballs are built while containerd starts.
        let tarballs = if opts.import_images {
            let dir = layout.images.clone();
            let bin = workload_binary()?;
            Some(tokio::task::spawn_blocking(move || images(&bin, &dir)))
        } else {
            None
        };
        // Temporary files of containerd and its shims (runc's `runc-process*` exec specs, left
        // behind when a world ends mid-exec) go to the instance's directory, not the host's /tmp.
        let tmp = layout.dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let spec = ProcessSpec::new(program("containerd")?, &format!("containerd-{node}"))
            .arg("--config")
            .arg(&layout.config)
            .env("PATH", daemon_path())
            .env("TMPDIR", &tmp)
            .private_mounts(true)
            // crun (the `crun` handler) refuses a hybrid cgroup host; containerd and runc work
            // on cgroup v1 alone. Hidden only in containerd's own mount namespace.
            .unmount(Path::new(HYBRID_CGROUP2))
            // CNI's result cache (/var/lib/cni/results) would otherwise collect a file per
            // sandbox on the host.
            .tmpfs(Path::new(PRIVATE_VAR_LIB));
        let mut process = host.spawn(spec)?;
        let log = process.log_path().to_path_buf();
        let deadline = started + opts.start_timeout;

        let wait = super::runtime::wait_until_serving(&mut process, &layout.socket, opts.start_timeout, "containerd").await;
        if let Err(e) = wait {
            let _ = process.kill().await;
            return Err(Error::Component(format!("containerd on {node} did not start: {e}\n{}", log_tail(&log))));
        }
        world.timeline().record(node, format!("containerd socket up after {:?}", started.elapsed()));

        let mut containerd =
            Containerd { registry: None, node: node.to_string(), layout, process, cgroup_root, stop_grace: opts.stop_grace, timeline: world.timeline().clone() };
        if let Some(t) = tarballs {
            let tars = t.await.map_err(|e| Error::Component(format!("building images: {e}")))??;
            world.timeline().record(node, format!("containerd image tarballs built after {:?}", started.elapsed()));
            if let Err(e) = containerd.import(&tars).await {
                let _ = containerd.process.kill().await;
                return Err(e);
            }
            let mut served = tars.clone();
            served.extend(opts.extra_images.iter().cloned());
            containerd.registry = Some(bound.serve(&served, Some(&containerd.layout.registry_hosts))?);
            world.timeline().record(node, format!("containerd images imported after {:?}", started.elapsed()));
        }
        let images = if opts.import_images { imported_references() } else { Vec::new() };
        let images: Vec<&str> = images.iter().map(String::as_str).collect();
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        if let Err(e) = cri::wait_ready(&containerd.layout.socket, &images, left).await {
            let _ = containerd.process.kill().await;
            return Err(Error::Component(format!("containerd on {node} is not ready: {e}\n{}", log_tail(&log))));
        }
        world.timeline().record_with(
            node,
            "containerd ready",
            serde_json::json!({"millis": started.elapsed().as_secs_f64() * 1000.0, "cgroup_root": containerd.cgroup_root}),
        );
        Ok(containerd)
    }

    /// Imports the tarballs one after the other: they share their layer, and concurrent
    /// imports of one blob wait on each other's ingest lock.
    async fn import(&self, tars: &[PathBuf]) -> Result<()> {
        let ctr = program("ctr")?;
        for tar in imported_tarballs(tars) {
            let out = tokio::process::Command::new(&ctr)
                .arg("--address")
                .arg(&self.layout.socket)
                .args(["-n", "k8s.io", "images", "import", "--snapshotter", "overlayfs"])
                .arg(tar)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(io_err(format!("running ctr images import {}", tar.display())))?;
            if !out.status.success() {
                return Err(Error::Component(format!(
                    "ctr images import {} failed ({}): {}{}",
                    tar.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
        Ok(())
    }

    /// The CRI socket.
    pub fn socket(&self) -> &Path {
        &self.layout.socket
    }

    /// The world's registry this containerd pulls from (when it was started with images).
    pub fn registry(&self) -> Option<&super::WorldRegistry> {
        self.registry.as_ref()
    }

    /// `unix:///…` endpoint for CRI clients.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.layout.socket.display())
    }

    /// Where this instance keeps its config, root, state, runc state and CNI files.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The daemon's pid (in the world's pid namespace).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The node's cgroup root (`<cgroup_root>/<node>`); pod cgroup parents go below it.
    pub fn cgroup_root(&self) -> &str {
        &self.cgroup_root
    }

    /// The `cgroup_parent` for pod `pod` on this node (see [`cgroup_parent`]).
    pub fn cgroup_parent(&self, pod: &str) -> Result<String> {
        cgroup_parent(&self.node, pod)
    }

    /// SIGKILLs containerd alone, as a crash would: its shims and containers keep running
    /// until [`Containerd::stop`] removes them.
    pub async fn kill(&mut self) -> Result<()> {
        self.process.kill().await?;
        Ok(())
    }

    /// Stops containerd and removes everything it left: shims, containers (and their runc
    /// state and cgroups) and the node's cgroup tree.
    pub async fn stop(mut self) -> Result<()> {
        let started = Instant::now();
        self.process.stop(self.stop_grace).await?;
        let shims = shims_of(&self.layout.socket);
        for pid in &shims {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        let sock = self.layout.socket.clone();
        crate::wait::wait_for("containerd's shims to exit", Duration::from_secs(10), || {
            let left = shims_of(&sock);
            async move { if left.is_empty() { Ok(()) } else { Err(left) } }
        })
        .await?;
        let runc = program("runc")?;
        let mut problems = delete_oci_containers(&runc, &self.layout.runc.join("k8s.io")).await?;
        let crun_root = self.layout.crun.join("k8s.io");
        if !oci_containers(&crun_root).is_empty() {
            problems.extend(delete_oci_containers(Path::new(config::CRUN), &crun_root).await?);
        }
        let removed = remove_node_cgroups(&self.cgroup_root, &mut problems).await?;
        if let Some(r) = self.registry.take() {
            r.stop().await?;
        }
        self.timeline.record_with(
            &self.node,
            "containerd stopped",
            serde_json::json!({
                "millis": started.elapsed().as_secs_f64() * 1000.0,
                "shims_killed": shims.len(),
                "cgroups_removed": removed,
            }),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Component(format!("containerd on {} left things behind: {}", self.node, problems.join("; "))))
        }
    }
}

/// Environment variable: a directory holding prebuilt `pause.tar`, `workload.tar` and
/// `agnhost.tar` (see [`image_sets`]).
pub const IMAGE_DIR_ENV: &str = "NODEKIT_IMAGE_DIR";

/// The image tarballs and what each holds: `pause.tar` the sandbox image and the
/// `registry.k8s.io/pause` stand-ins (one shared layer), `workload.tar` the workload image,
/// and the image of [`crate::oci::TAGGED_IMAGE_REFS`] under each of its references, `agnhost.tar`
/// every agnhost stand-in (one shared layer).
pub fn image_sets(bin: &Path) -> Vec<(&'static str, Vec<ImageSpec>)> {
    let (agnhost, pause): (Vec<ImageSpec>, Vec<ImageSpec>) =
        ImageSpec::upstream_all(bin).into_iter().partition(|s| s.reference.starts_with(fake_cri::config::AGNHOST_REPOSITORY));
    let mut pauses = vec![ImageSpec::pause(bin)];
    pauses.extend(pause);
    vec![
        ("pause.tar", pauses),
        ("workload.tar", std::iter::once(ImageSpec::workload(bin)).chain(ImageSpec::tagged(bin)).collect()),
        ("agnhost.tar", agnhost),
        (PRIVATE_TAR, vec![ImageSpec::private(bin)]),
    ]
}

/// The tarball of the image only a pull with credentials gets: served by the world's registry,
/// never imported into a runtime.
pub const PRIVATE_TAR: &str = "private.tar";

/// The tarballs of `tars` a runtime imports (all but [`PRIVATE_TAR`]).
pub fn imported_tarballs(tars: &[PathBuf]) -> impl Iterator<Item = &PathBuf> {
    tars.iter().filter(|t| !t.ends_with(PRIVATE_TAR))
}

/// Every reference the tarballs hold.
pub fn imported_references() -> Vec<String> {
    let mut refs = vec![PAUSE_IMAGE.to_string(), WORKLOAD_IMAGE.to_string()];
    refs.extend(crate::oci::TAGGED_IMAGE_REFS.iter().map(|r| r.to_string()));
    refs.extend(fake_cri::config::upstream_images(Path::new("/workload")).into_iter().map(|e| e.reference));
    refs
}

/// The image tarballs: from [`IMAGE_DIR_ENV`] when set, else from a cache
/// next to the workload binary (`nodekit-images/<key>/`, keyed by the workload binary and the
/// running executable, so a rebuild of either builds them again), else built into `scratch`.
/// Building them costs seconds in unoptimised builds (hashing a few MiB several times).
pub(super) fn images(bin: &Path, scratch: &Path) -> Result<Vec<PathBuf>> {
    const FILES: [&str; 4] = ["pause.tar", "workload.tar", "agnhost.tar", PRIVATE_TAR];
    if let Some(dir) = std::env::var_os(IMAGE_DIR_ENV).map(PathBuf::from) {
        let tars: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
        if tars.iter().all(|t| t.is_file()) {
            return Ok(tars);
        }
        return Err(Error::Component(format!("{IMAGE_DIR_ENV}={} lacks {FILES:?}", dir.display())));
    }
    if let Some(cache) = cache_dir(bin) {
        let tars: Vec<PathBuf> = FILES.iter().map(|f| cache.join(f)).collect();
        if tars.iter().all(|t| t.is_file()) {
            return Ok(tars);
        }
        if std::fs::create_dir_all(&cache).is_ok() && build_images(bin, &cache).is_ok() {
            prune_cache(&cache);
            return Ok(tars);
        }
    }
    build_images(bin, scratch)
}

/// `<dir of the workload binary>/nodekit-images/<key>`.
fn cache_dir(bin: &Path) -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in [bin.to_path_buf(), std::env::current_exe().ok()?] {
        let m = std::fs::metadata(&p).ok()?;
        (p, m.len(), m.mtime(), m.mtime_nsec(), m.ino()).hash(&mut h);
    }
    Some(bin.parent()?.join("nodekit-images").join(format!("{:016x}", h.finish())))
}

/// Removes cache entries other than `keep` that were last written more than an hour ago
/// (binaries rebuilt since; a run still using one would have started within the hour).
fn prune_cache(keep: &Path) {
    let Some(parent) = keep.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && e.path() != keep {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Builds the image tarballs of [`image_sets`] into `dir` (each written to a temporary name
/// and renamed, so concurrent builders never expose a partial file).
fn build_images(bin: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (file, specs) in image_sets(bin) {
        let path = dir.join(file);
        let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
        write_images_tar(&specs, &tmp).map_err(|e| Error::Component(format!("building {file}: {e}")))?;
        std::fs::rename(&tmp, &path).map_err(io_err(format!("renaming {}", tmp.display())))?;
        out.push(path);
    }
    Ok(out)
}

/// Pids (in this pid namespace) of the shims serving containerd at `socket`.
fn shims_of(socket: &Path) -> Vec<u32> {
    let needle = socket.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let is_shim = args.first().is_some_and(|a| a.contains("containerd-shim"));
        // Zombies have an empty cmdline and are already gone for our purpose.
        if is_shim && args.windows(2).any(|w| w[0] == "-address" && w[1] == needle) {
            pids.push(pid);
        }
    }
    pids
}

/// `<runtime> --root <root> delete --force <id>` for every container with state under `root`
/// (kills what still runs and removes the runtime's cgroups); what could not be deleted.
pub(super) async fn delete_oci_containers(runtime: &Path, root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for id in oci_containers(root) {
        let out = tokio::process::Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", &id])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(io_err(format!("running {} delete {id}", runtime.display())))?;
        if !out.status.success() && root.join(&id).exists() {
            problems.push(format!("{} delete --force {id}: {}", runtime.display(), String::from_utf8_lossy(&out.stderr).trim()));
        }
    }
    Ok(problems)
}

/// Removes the node's cgroup tree, and the world's root once no other node uses it; how many
/// directories went (what could not go is added to `problems`).
pub(super) async fn remove_node_cgroups(node_root: &str, problems: &mut Vec<String>) -> Result<usize> {
    let report = cgroups::remove_tree(node_root, Duration::from_secs(10)).await?;
    if let Ok(root) = cgroup_root() {
        for d in cgroups::tree_dirs(&root)? {
            let _ = std::fs::remove_dir(d);
        }
    }
    for (dir, why) in &report.busy {
        problems.push(format!("cgroup {} could not be removed: {why}", dir.display()));
    }
    Ok(report.removed.len())
}

/// Container ids that have OCI runtime state under `root`: a directory each (runc keeps
/// `state.json` in it, crun `status`).
pub(super) fn oci_containers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The last lines of a log file, for error messages.
pub(super) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(15);
    format!("last lines of {}:\n{}", path.display(), lines[from..].join("\n"))
}
