//! A CRI runtime started from a runtime profile ([`runtime_profile::RuntimeProfile`]) inside a
//! node host, sealed like the built-in runtimes: every path under the instance's directory in
//! the world's scratch tmpfs, the profile's files written from their templates, its sysctls set
//! in the node's network namespace, its command spawned in the node host (a private mount
//! namespace unless the profile says otherwise), ready when its socket answers CRI and every
//! world image is visible, the images imported with the profile's command when it has one.
//!
//! Stop: SIGTERM then SIGKILL after the profile's grace; SIGKILL to every process whose command
//! line names the instance's directory (shims, monitors); `<oci runtime> --root <root> delete
//! --force` for every container state the profile's OCI roots hold; the profile's cleanup
//! commands; then the node's cgroup tree. Files vanish with the world's tmpfs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_profile::{Images, Placeholder, RuntimeProfile, Values};

use super::containerd::{cri, daemon_path, delete_oci_containers, images, imported_references, log_tail, program, remove_node_cgroups};
use super::{Error, PAUSE_IMAGE, Result, node_cgroup_root, scratch_dir, workload_binary};
use super::engine::DockerEngine;
use crate::process::{Process, ProcessSpec};
use crate::timeline::Timeline;
use crate::world::World;

/// Where the CNI plugins are (Debian's containernetworking-plugins).
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// Finds a binary a profile names: next to nodekit's own binaries first (`fake-cri`), then on
/// PATH and in the sbin directories.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') {
        return Some(PathBuf::from(name)).filter(|p| p.is_file());
    }
    crate::bins::locate(name).ok().or_else(|| program(name).ok())
}

/// A runtime running from a profile.
pub struct ProfileRuntime {
    node: String,
    profile: Arc<RuntimeProfile>,
    dir: PathBuf,
    socket: PathBuf,
    values: Values,
    process: Process,
    cgroup_root: String,
    timeline: Timeline,
    registry: Option<super::WorldRegistry>,
    /// Image runtimes: the node's Docker Engine (`process` is then the keeper).
    engine: Option<DockerEngine>,
    /// Image runtimes: the running container.
    container: Option<runtime_image::Ready>,
}

impl std::fmt::Debug for ProfileRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileRuntime").field("profile", &self.profile.name).field("node", &self.node).finish_non_exhaustive()
    }
}

fn render(values: &Values, text: &str, field: &str, profile: &RuntimeProfile) -> Result<String> {
    values.render(text).map_err(|e| Error::Component(format!("{}: {field}: {e}", profile.source.display())))
}

/// The placeholder values of `node` with the instance directory `dir`.
fn values_for(world: &World, node: &str, dir: &Path) -> Result<Values> {
    let host = world.host(node)?;
    let mut v = Values::new();
    v.set(Placeholder::Socket, dir.join("cri.sock").to_string_lossy())
        .set(Placeholder::ConfigDir, dir.join("config").to_string_lossy())
        .set(Placeholder::StateDir, dir.join("state").to_string_lossy())
        .set(Placeholder::RootDir, dir.join("root").to_string_lossy())
        .set(Placeholder::CniBinDir, CNI_BIN_DIR)
        .set(Placeholder::CniConfDir, dir.join("cni/net.d").to_string_lossy())
        .set(Placeholder::CniDataDir, dir.join("cni/data").to_string_lossy())
        .set(Placeholder::PodBridge, "cbr0")
        .set(Placeholder::CgroupRoot, node_cgroup_root(node)?)
        .set(Placeholder::NodeName, node)
        .set(Placeholder::PauseImage, PAUSE_IMAGE)
        .set(Placeholder::WorkloadBin, workload_binary()?.to_string_lossy());
    if let Some(cidr) = host.pod_cidr() {
        v.set(Placeholder::PodCidr, cidr.to_string()).set(Placeholder::PodGateway, cidr.nth(1).to_string());
    }
    Ok(v)
}

impl ProfileRuntime {
    /// Starts `profile` in node host `node` and waits until it is ready with the images.
    /// `extra_images`: archives the world's registry serves besides the kit's images.
    pub async fn start(world: &World, node: &str, profile: Arc<RuntimeProfile>, extra_images: &[PathBuf]) -> Result<ProfileRuntime> {
        let started = Instant::now();
        let host = world.host(node)?;
        let dir = scratch_dir(&format!("{}-{node}", profile.name))?;
        for sub in ["config", "config/registry-hosts", "state", "root", "cni/net.d", "cni/data", "images"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let mut values = values_for(world, node, &dir)?;
        // The host files go there once the registry has loaded its archives (before ready).
        let bound = super::registry::BoundRegistry::bind(world, node)?;
        let hosts_dir = dir.join("config/registry-hosts");
        values.set(Placeholder::Registry, bound.addr().to_string()).set(Placeholder::RegistryHostsDir, hosts_dir.to_string_lossy());
        write_files(&profile, &values, &dir)?;
        for (k, v) in &profile.sysctls {
            host.sysctl(k, v)?;
        }
        // The world's registry serves the tarballs whether or not the runtime imports them.
        let tarballs = {
            let (bin, out) = (workload_binary()?, dir.join("images"));
            tokio::task::spawn_blocking(move || images(&bin, &out))
        };
        let (process, engine) = match &profile.image {
            None => (host.spawn(process_spec(&profile, &values, node)?)?, None),
            Some(image) => {
                let (keeper, engine) = start_image(host, &profile, image, &mut values, node, &dir).await?;
                (keeper, Some(engine))
            }
        };
        let socket = PathBuf::from(values.get(Placeholder::Socket).unwrap_or_default());
        let mut rt = ProfileRuntime {
            node: node.to_string(),
            dir,
            socket,
            values,
            process,
            cgroup_root: node_cgroup_root(node)?,
            timeline: world.timeline().clone(),
            profile,
            registry: None,
            engine,
            container: None,
        };
        if let Err(e) = rt.become_ready(started, tarballs, bound, extra_images, &hosts_dir).await {
            let mut log = log_tail(rt.process.log_path());
            let _ = rt.process.kill().await;
            if let Some(engine) = rt.engine.take() {
                log = format!("{log}\ndockerd:\n{}", log_tail(engine.log_path()));
                let _ = engine.stop().await;
                let _ = kill_processes_naming(&rt.dir).await;
            }
            return Err(Error::Component(format!("{} on {node} did not start: {e}\n{log}", rt.profile.name)));
        }
        world.timeline().record_with(
            node,
            &format!("{} ready", rt.profile.name),
            serde_json::json!({"millis": started.elapsed().as_secs_f64() * 1000.0, "profile": rt.profile.source}),
        );
        Ok(rt)
    }

    async fn become_ready(
        &mut self,
        started: Instant,
        tarballs: tokio::task::JoinHandle<Result<Vec<PathBuf>>>,
        registry: super::registry::BoundRegistry,
        extra_images: &[PathBuf],
        hosts_dir: &Path,
    ) -> Result<()> {
        let timeout = self.profile.readiness.timeout;
        if self.engine.is_some() {
            let ready = super::engine::wait_for_container(&mut self.process, timeout).await?;
            self.timeline.record(&self.node, format!("{} container {} (pid {}) up after {:?}", self.profile.name, ready.id, ready.pid, started.elapsed()));
            self.container = Some(ready);
        }
        super::runtime::wait_until_serving(&mut self.process, &self.socket, timeout, &self.profile.name).await?;
        self.timeline.record(&self.node, format!("{} socket up after {:?}", self.profile.name, started.elapsed()));
        let tars = tarballs.await.map_err(|e| Error::Component(format!("building images: {e}")))??;
        if let Images::Import { command } = &self.profile.images {
            for tar in super::containerd::imported_tarballs(&tars) {
                self.import(command, tar).await?;
            }
            self.timeline.record(&self.node, format!("{} images imported after {:?}", self.profile.name, started.elapsed()));
        }
        let mut served = tars.clone();
        served.extend(extra_images.iter().cloned());
        self.registry = Some(registry.serve(&served, Some(hosts_dir))?);
        let refs = imported_references();
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        let left = (started + timeout).saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        cri::wait_ready_as(&self.profile.name, &self.socket, &refs, self.profile.readiness.network_ready, left).await
    }

    /// Runs the profile's import command for one archive.
    async fn import(&self, command: &[String], tar: &Path) -> Result<()> {
        let values = self.values.with(Placeholder::Archive, tar.to_string_lossy());
        let args: Vec<String> = command
            .iter()
            .enumerate()
            .map(|(i, a)| render(&values, a, &format!("spec.images.import.command[{i}]"), &self.profile))
            .collect::<Result<_>>()?;
        let out = run(&args).await?;
        if !out.status.success() {
            return Err(Error::Component(format!(
                "{} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// The profile this runtime runs.
    pub fn profile(&self) -> &Arc<RuntimeProfile> {
        &self.profile
    }

    /// The CRI socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The world's registry on this node.
    pub fn registry(&self) -> Option<&super::WorldRegistry> {
        self.registry.as_ref()
    }

    /// The instance's directory (config, state, root, CNI files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The OCI runtimes of the profile's cleanup with their state roots, rendered.
    pub fn oci_roots(&self) -> Result<Vec<(String, PathBuf)>> {
        self.profile
            .cleanup
            .oci_runtimes
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let root = render(&self.values, &o.root, &format!("spec.cleanup.ociRuntimes[{i}].root"), &self.profile)?;
                Ok((o.binary.clone(), PathBuf::from(root)))
            })
            .collect()
    }

    /// The value a placeholder has for this instance.
    pub fn value(&self, p: Placeholder) -> Option<&str> {
        self.values.get(p)
    }

    /// SIGKILLs the runtime alone, as a crash would; what it started keeps running until
    /// [`ProfileRuntime::stop`]. For an image runtime: the container's first process (its
    /// keeper then removes the container, and with it what runs in the container's cgroup).
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(c) = &self.container {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.pid as i32), nix::sys::signal::Signal::SIGKILL);
            self.process.wait().await?;
            return Ok(());
        }
        self.process.kill().await?;
        Ok(())
    }

    /// Stops the runtime and removes everything it left (see the module documentation).
    pub async fn stop(mut self) -> Result<()> {
        let started = Instant::now();
        // The keeper stops the container within the grace, then removes it.
        let grace = if self.engine.is_some() { self.profile.stop_grace + Duration::from_secs(10) } else { self.profile.stop_grace };
        self.process.stop(grace).await?;
        if let Some(engine) = self.engine.take() {
            engine.stop().await?;
        }
        let killed = kill_processes_naming(&self.dir).await?;
        let mut problems = Vec::new();
        for (i, oci) in self.profile.cleanup.oci_runtimes.iter().enumerate() {
            let Some(bin) = find_binary(&oci.binary) else {
                problems.push(format!("{} is not installed: its containers could not be deleted", oci.binary));
                continue;
            };
            let root = render(&self.values, &oci.root, &format!("spec.cleanup.ociRuntimes[{i}].root"), &self.profile)?;
            problems.extend(delete_oci_containers(&bin, Path::new(&root)).await?);
        }
        for (i, c) in self.profile.cleanup.commands.iter().enumerate() {
            let args: Vec<String> = c
                .iter()
                .enumerate()
                .map(|(j, a)| render(&self.values, a, &format!("spec.cleanup.commands[{i}][{j}]"), &self.profile))
                .collect::<Result<_>>()?;
            let out = run(&args).await?;
            if !out.status.success() {
                problems.push(format!("{} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        let removed = remove_node_cgroups(&self.cgroup_root, &mut problems).await?;
        if let Some(r) = self.registry.take() {
            r.stop().await?;
        }
        self.timeline.record_with(
            &self.node,
            &format!("{} stopped", self.profile.name),
            serde_json::json!({
                "millis": started.elapsed().as_secs_f64() * 1000.0,
                "processes_killed": killed,
                "cgroups_removed": removed,
            }),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Component(format!("{} on {} left things behind: {}", self.profile.name, self.node, problems.join("; "))))
        }
    }
}

/// Starts the node's Docker Engine and the keeper of `image`'s container; renders the
/// archive (building nodekit's fake-cri image when it names `{fake_cri_image}`).
async fn start_image(
    host: &crate::world::Host,
    profile: &Arc<RuntimeProfile>,
    image: &runtime_profile::ImageRuntime,
    values: &mut Values,
    node: &str,
    dir: &Path,
) -> Result<(Process, DockerEngine)> {
    let uses_fake_cri_image = runtime_profile::template::placeholders(&image.archive, &Placeholder::ALL)
        .map_err(|e| Error::Component(format!("{}: spec.image.archive: {e}", profile.source.display())))?
        .contains(&Placeholder::FakeCriImage);
    if uses_fake_cri_image {
        let out = dir.join("fake-cri-runtime.tar");
        let built = tokio::task::spawn_blocking(move || super::engine::build_fake_cri_image(&out))
            .await
            .map_err(|e| Error::Component(format!("building the fake-cri image: {e}")))??;
        values.set(Placeholder::FakeCriImage, built.to_string_lossy());
    }
    let archive = PathBuf::from(render(values, &image.archive, "spec.image.archive", profile)?);
    let archive = if archive.is_relative() { profile.source.parent().unwrap_or(Path::new(".")).join(archive) } else { archive };
    if !archive.is_file() {
        return Err(Error::Component(format!("{}: spec.image.archive: {} does not exist", profile.source.display(), archive.display())));
    }
    let command = rendered_command(profile, values)?;
    let env = rendered_env(profile, values)?;
    let mut mounts = vec![super::scratch()?];
    for (i, m) in image.mounts.iter().enumerate() {
        mounts.push(PathBuf::from(render(values, m, &format!("spec.image.mounts[{i}]"), profile)?));
    }
    // One level below the node's cgroup root, not in it: a runtime may sweep the cgroups
    // directly below its own parent at start (fake-cri removes those of containers it does not
    // know, which would be its own).
    let cgroup_parent = format!("{}/runtime-image", node_cgroup_root(node)?);
    let engine_name = format!("dockerd-{node}");
    let engine = DockerEngine::start(host, &engine_name, &dir.join("engine"), &cgroup_parent, profile.readiness.timeout).await?;
    let secs = |d: Duration| u32::try_from(d.as_secs_f64().ceil() as u64).unwrap_or(u32::MAX);
    let spec = runtime_image::ContainerSpec {
        name: format!("nodekit-{}-{node}", profile.name),
        reference: image.reference.clone(),
        archive: Some(archive),
        command,
        env,
        mounts,
        capabilities: image.capabilities.clone(),
        security_opts: image.security_opts.clone(),
        cgroup_parent: cgroup_parent.clone(),
        stop_grace_secs: secs(profile.stop_grace),
        start_timeout_secs: secs(profile.readiness.timeout),
    };
    match super::engine::spawn_keeper(host, &format!("{}-{node}", profile.name), &engine, &spec, dir) {
        Ok(keeper) => Ok((keeper, engine)),
        Err(e) => {
            let _ = engine.stop().await;
            Err(e)
        }
    }
}

/// Writes the profile's files; each must land inside the instance's directory.
fn write_files(profile: &RuntimeProfile, values: &Values, dir: &Path) -> Result<()> {
    for (i, f) in profile.files.iter().enumerate() {
        let path = PathBuf::from(render(values, &f.path, &format!("spec.files[{i}].path"), profile)?);
        let inside = path.is_absolute() && !path.components().any(|c| c == std::path::Component::ParentDir) && path.starts_with(dir);
        if !inside {
            return Err(Error::Component(format!(
                "{}: spec.files[{i}].path: {} is outside the runtime's directories; put files under {{config_dir}}, {{state_dir}}, {{root_dir}} or {{cni_conf_dir}}",
                profile.source.display(),
                path.display()
            )));
        }
        let content = render(values, &f.content, &format!("spec.files[{i}].content"), profile)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&path, content).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(())
}

/// The runtime's process: the rendered command, the profile's environment over PATH with the
/// sbin directories, in a private mount namespace when the profile asks.
/// `spec.command` with its placeholders filled in.
fn rendered_command(profile: &RuntimeProfile, values: &Values) -> Result<Vec<String>> {
    profile.command.iter().enumerate().map(|(i, a)| render(values, a, &format!("spec.command[{i}]"), profile)).collect()
}

/// `spec.env` with its placeholders filled in.
fn rendered_env(profile: &RuntimeProfile, values: &Values) -> Result<std::collections::BTreeMap<String, String>> {
    profile.env.iter().map(|(k, v)| Ok((k.clone(), render(values, v, &format!("spec.env.{k}"), profile)?))).collect()
}

fn process_spec(profile: &RuntimeProfile, values: &Values, node: &str) -> Result<ProcessSpec> {
    let args = rendered_command(profile, values)?;
    let (bin, rest) = args.split_first().ok_or_else(|| Error::Component("empty command".into()))?;
    let path = find_binary(bin).ok_or_else(|| {
        Error::Component(format!("{}: spec.command[0]: binary {bin:?} not found", profile.source.display()))
    })?;
    let mut spec = ProcessSpec::new(path, &format!("{}-{node}", profile.name))
        .args(rest)
        .env("PATH", daemon_path())
        .private_mounts(profile.private_mounts);
    for (k, v) in rendered_env(profile, values)? {
        spec = spec.env(&k, v);
    }
    for path in &profile.unmount {
        spec = spec.unmount(Path::new(path));
    }
    for path in &profile.tmpfs {
        spec = spec.tmpfs(Path::new(path));
    }
    Ok(spec)
}

/// Runs a short command (import, cleanup) to completion.
async fn run(args: &[String]) -> Result<std::process::Output> {
    let (bin, rest) = args.split_first().ok_or_else(|| Error::Component("empty command".into()))?;
    let path = find_binary(bin).ok_or_else(|| Error::Component(format!("binary {bin:?} not found")))?;
    tokio::process::Command::new(&path)
        .args(rest)
        .env("PATH", daemon_path())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::io(format!("running {}", args.join(" ")), e))
}

/// SIGKILLs every process (in this pid namespace) whose command line names `dir`, and waits
/// until they are gone; how many there were.
async fn kill_processes_naming(dir: &Path) -> Result<usize> {
    let pids = processes_naming(dir);
    for pid in &pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    let d = dir.to_path_buf();
    crate::wait::wait_for("the runtime's helper processes to exit", Duration::from_secs(10), || {
        let left = processes_naming(&d);
        async move { if left.is_empty() { Ok(()) } else { Err(left) } }
    })
    .await?;
    Ok(pids.len())
}

fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        // Zombies have an empty command line and are gone for this purpose.
        let names = |a: &str| a == needle || a.contains(&format!("{needle}/"));
        if cmdline.split(|b| *b == 0).any(|a| names(&String::from_utf8_lossy(a))) {
            pids.push(pid);
        }
    }
    pids
}
