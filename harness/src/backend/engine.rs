//! Runtimes shipped as OCI images: a Docker Engine started inside the node host, and the
//! keeper (`runtime-image`, testcontainers) that loads the runtime's image into it and keeps
//! its container running.
//!
//! The engine is Debian's `dockerd`, sealed like containerd: its data root, exec root, socket,
//! pid file and config under the instance's directory in the world's scratch tmpfs; a private
//! mount namespace with an empty tmpfs over `/etc/docker` (where it would write its trust key);
//! no bridge, no iptables or masquerading, no forwarding sysctl; the vfs storage driver (no
//! kernel overlay state); the cgroupfs driver with every container below the node's cgroup
//! root. Its own containerd and shims run under the exec root, so the instance's cleanup (every
//! process naming the instance's directory) finds them.
//!
//! The container shares the node host's network and pid namespaces (the runtime's socket,
//! pod networks and processes are where a runtime started from a binary would put them), sees
//! the world's scratch directory at the same path (the CRI socket, its state, the node agent's
//! pod logs) and keeps only the capabilities its profile lists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime_image::{ContainerSpec, Ready};

use super::containerd::{daemon_path, program};
use super::{Error, Result};
use crate::oci::{ImageFile, write_files_image};
use crate::process::{Process, ProcessSpec};
use crate::world::Host;

/// The reference of nodekit's image around fake-cri.
pub const FAKE_CRI_IMAGE: &str = "nodekit.local/fake-cri-runtime:1";

/// A Docker Engine running in a node host.
pub struct DockerEngine {
    process: Process,
    dir: PathBuf,
}

impl std::fmt::Debug for DockerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerEngine").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl DockerEngine {
    /// Starts `dockerd` in `host` with everything under `dir`; containers go below
    /// `cgroup_parent`. Ready when its socket accepts connections (the keeper then waits for
    /// `/_ping`).
    pub async fn start(host: &Host, name: &str, dir: &Path, cgroup_parent: &str, timeout: Duration) -> Result<DockerEngine> {
        let dockerd = program("dockerd").map_err(|_| Error::Component("dockerd is not installed: a runtime profile with spec.image needs the Docker Engine (Debian's docker.io; ci/bootstrap installs it)".into()))?;
        if !Path::new("/etc/docker").is_dir() {
            return Err(Error::Component("/etc/docker does not exist: reinstall docker.io (the engine writes its trust key there, which nodekit hides under a private tmpfs)".into()));
        }
        for sub in ["data", "exec", "tmp"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let config = dir.join("daemon.json");
        std::fs::write(&config, "{}\n").map_err(|e| Error::io(format!("writing {}", config.display()), e))?;
        let socket = dir.join("docker.sock");
        let spec = ProcessSpec::new(dockerd, name)
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--config-file")
            .arg(&config)
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false"])
            .args(["--userland-proxy=false", "--storage-driver=vfs", "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level=warn"])
            .arg(format!("--cgroup-parent={cgroup_parent}"))
            .env("PATH", daemon_path())
            // Its shims' temporary files (runc's exec specs) stay in the instance's directory.
            .env("TMPDIR", dir.join("tmp"))
            .tmpfs(Path::new("/etc/docker"));
        let mut process = host.spawn(spec)?;
        super::runtime::wait_until_serving(&mut process, &socket, timeout, "dockerd").await?;
        Ok(DockerEngine { process, dir: dir.to_path_buf() })
    }

    /// `DOCKER_HOST` for clients.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// The engine's log.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// SIGTERM (it stops its containerd), SIGKILL after 10 s.
    pub async fn stop(mut self) -> Result<()> {
        self.process.stop(Duration::from_secs(10)).await?;
        Ok(())
    }
}

/// Starts the keeper for `spec` (written to `dir/container.json`) against `engine`.
pub fn spawn_keeper(host: &Host, name: &str, engine: &DockerEngine, spec: &ContainerSpec, dir: &Path) -> Result<Process> {
    let file = dir.join("container.json");
    let json = serde_json::to_vec_pretty(spec).map_err(|e| Error::Component(format!("container spec: {e}")))?;
    std::fs::write(&file, json).map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
    let keeper = crate::bins::locate("runtime-image")?;
    Ok(host.spawn(
        ProcessSpec::new(keeper, name)
            .arg("--spec")
            .arg(&file)
            .env(runtime_image::DOCKER_HOST_ENV, engine.docker_host())
            .env("PATH", daemon_path()),
    )?)
}

/// Waits for the keeper's `ready` line in its log; fails when it exits first.
pub async fn wait_for_container(keeper: &mut Process, timeout: Duration) -> Result<Ready> {
    let log = keeper.log_path().to_path_buf();
    let what = format!("the runtime's container to start (a ready line in {})", log.display());
    // Ok ends the wait: the ready line, or the keeper gone without one.
    crate::wait::wait_every(&what, timeout, Duration::from_millis(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        std::future::ready(match text.lines().find_map(Ready::parse) {
            Some(r) => Ok(Ok(r)),
            None if !keeper.is_running() => Ok(Err(Error::Component("the runtime-image keeper exited before the container ran".into()))),
            None => Err(format!("{} lines, none a ready line", text.lines().count())),
        })
    })
    .await?
}

/// Builds nodekit's FROM-scratch image around fake-cri into `out`: `/fake-cri` with the shared
/// libraries it links (at the paths `ldd` names), `/usr/sbin/nft` with its libraries (hostPort
/// rules), `/workload` (the static workload binary its containers run); Entrypoint `/fake-cri`.
pub fn build_fake_cri_image(out: &Path) -> Result<PathBuf> {
    let fake_cri = crate::bins::locate("fake-cri")?;
    let mut files = vec![
        ImageFile { path: "/fake-cri".into(), source: fake_cri.clone(), mode: 0o755 },
        ImageFile { path: "/workload".into(), source: super::workload_binary()?, mode: 0o755 },
    ];
    // fake-cri writes hostPort rules with `nft -f -`.
    let nft = program("nft")?;
    let mut libs = shared_libraries(&fake_cri)?;
    libs.extend(shared_libraries(&nft)?);
    libs.sort();
    libs.dedup();
    files.push(ImageFile { path: "/usr/sbin/nft".into(), source: nft, mode: 0o755 });
    for lib in libs {
        files.push(ImageFile { path: lib.to_string_lossy().into_owned(), source: lib, mode: 0o755 });
    }
    write_files_image(FAKE_CRI_IMAGE, &["/fake-cri".to_string()], &files, out)
        .map_err(|e| Error::Component(format!("building {FAKE_CRI_IMAGE}: {e}")))?;
    Ok(out.to_path_buf())
}

/// The shared libraries (and the dynamic loader) `binary` needs, by `ldd`.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let ldd = program("ldd")?;
    let out = std::process::Command::new(ldd).arg(binary).output().map_err(|e| Error::io("running ldd", e))?;
    if !out.status.success() {
        // A static binary: "not a dynamic executable".
        return Ok(Vec::new());
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// The absolute paths of `ldd` output: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`
/// and `/lib64/ld-linux-x86-64.so.2 (0x…)`; `linux-vdso.so.1` has no file.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut libs: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }
}
