//! A CRI runtime shipped as an OCI image, kept running by one process: the **keeper**.
//!
//! The harness starts a Docker Engine inside the node host and then the keeper, with
//! `DOCKER_HOST` naming that engine's socket and a [`ContainerSpec`] file. The keeper
//!
//! 1. waits until the engine answers `/_ping`;
//! 2. loads the spec's archive (`docker load`: a docker-archive, or an OCI layout that carries a
//!    `manifest.json`) when it names one, and checks that the image reference is there (so
//!    nothing is ever pulled from outside the world);
//! 3. starts the container with testcontainers: the image's reference, the spec's command, the
//!    node host's network and pid namespaces, the spec's bind mounts (each at its own path),
//!    every capability dropped but the spec's, the cgroup parent below the node's cgroup root;
//! 4. prints one line, `ready <container id> <pid of its first process>`, and forwards the
//!    container's output to its own stderr;
//! 5. on SIGTERM or SIGINT stops the container (SIGTERM, then SIGKILL after the spec's grace),
//!    removes it and exits 0; when the container exits by itself it removes it and exits 1,
//!    naming the exit code, so that whoever watches the keeper sees the runtime die.
//!
//! Running one keeper per engine keeps testcontainers' process-wide client pointed at the right
//! engine without touching the environment of a running process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod keeper;

pub use keeper::run;

/// Environment variable the keeper reads the engine's address from (testcontainers' own).
pub const DOCKER_HOST_ENV: &str = "DOCKER_HOST";

/// Errors of the keeper.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or parsing the spec, or reading the archive.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec is not usable.
    #[error("{0}")]
    Spec(String),
    /// The engine refused or failed a request.
    #[error("{context}: {source}")]
    Engine {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
    /// testcontainers could not start the container.
    #[error("starting the container: {0}")]
    Start(#[from] testcontainers::TestcontainersError),
    /// The engine did not answer in time.
    #[error("the Docker Engine at {host} did not answer /_ping within {waited:?}: {last}")]
    NotAnswering {
        /// `DOCKER_HOST`.
        host: String,
        /// How long the keeper waited.
        waited: Duration,
        /// The last error.
        last: String,
    },
    /// The container exited by itself.
    #[error("the runtime's container exited with code {0}")]
    Exited(i64),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to run: written by the harness as JSON, read by the keeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSpec {
    /// The container's name.
    pub name: String,
    /// The image reference (`repository:tag`); must be present after the archive is loaded.
    pub reference: String,
    /// A `docker load` archive to load first.
    #[serde(default)]
    pub archive: Option<PathBuf>,
    /// The command line inside the container; the first word is the program.
    pub command: Vec<String>,
    /// Environment of the container's first process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Host paths bind-mounted read-write at the same path inside the container.
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// The only capabilities the container keeps (`SYS_ADMIN`, `NET_ADMIN`, …); every other
    /// one is dropped.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Docker `--security-opt` values (e.g. `seccomp=unconfined`).
    #[serde(default)]
    pub security_opts: Vec<String>,
    /// The cgroup parent of the container (`--cgroup-parent`).
    pub cgroup_parent: String,
    /// Time between SIGTERM and SIGKILL when the keeper stops the container.
    pub stop_grace_secs: u32,
    /// How long to wait for the engine to answer and the container to start.
    pub start_timeout_secs: u32,
}

impl ContainerSpec {
    /// Reads a spec file.
    pub fn read(path: &Path) -> Result<ContainerSpec> {
        let text = std::fs::read(path).map_err(|source| Error::Io { context: format!("reading {}", path.display()), source })?;
        let spec: ContainerSpec = serde_json::from_slice(&text)
            .map_err(|e| Error::Spec(format!("{}: not a container spec: {e}", path.display())))?;
        spec.check()?;
        Ok(spec)
    }

    /// Refuses specs that cannot be run.
    pub fn check(&self) -> Result<()> {
        if self.command.is_empty() {
            return Err(Error::Spec("command: must name at least the program to run".into()));
        }
        if self.reference.is_empty() {
            return Err(Error::Spec("reference: must name the image".into()));
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if !m.is_absolute() {
                return Err(Error::Spec(format!("mounts[{i}]: {} must be an absolute path", m.display())));
            }
        }
        Ok(())
    }

    /// The image's repository and tag (`latest` when the reference has none).
    pub fn repository_and_tag(&self) -> (String, String) {
        split_reference(&self.reference)
    }
}

/// `repo:tag` → (`repo`, `tag`); a colon inside the registry's `host:port` is not a tag.
pub fn split_reference(reference: &str) -> (String, String) {
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(i) => (reference[..last_slash + i].to_string(), reference[last_slash + i + 1..].to_string()),
        None => (reference.to_string(), "latest".to_string()),
    }
}

/// The keeper's line once the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The container's id.
    pub id: String,
    /// The pid of its first process (in the engine's pid namespace, which is the node host's).
    pub pid: u32,
}

impl Ready {
    /// The line the keeper prints.
    pub fn line(&self) -> String {
        format!("ready {} {}", self.id, self.pid)
    }

    /// Parses [`Ready::line`].
    pub fn parse(line: &str) -> Option<Ready> {
        let mut words = line.split_whitespace();
        if words.next()? != "ready" {
            return None;
        }
        let id = words.next()?.to_string();
        let pid = words.next()?.parse().ok()?;
        words.next().is_none().then_some(Ready { id, pid })
    }
}

/// Deadline helper: the time left of `budget` since `started`.
pub(crate) fn left(started: Instant, budget: Duration) -> Duration {
    budget.saturating_sub(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(split_reference("nodekit.local/fake-cri-runtime:1"), ("nodekit.local/fake-cri-runtime".into(), "1".into()));
        assert_eq!(split_reference("127.0.0.1:5000/x/y:v2"), ("127.0.0.1:5000/x/y".into(), "v2".into()));
        assert_eq!(split_reference("127.0.0.1:5000/x"), ("127.0.0.1:5000/x".into(), "latest".into()));
        assert_eq!(split_reference("busybox"), ("busybox".into(), "latest".into()));
    }

    #[test]
    fn ready_lines_round_trip_and_refuse_garbage() {
        let r = Ready { id: "abc123".into(), pid: 42 };
        assert_eq!(Ready::parse(&r.line()), Some(r));
        assert_eq!(Ready::parse("ready abc"), None);
        assert_eq!(Ready::parse("ready abc x"), None);
        assert_eq!(Ready::parse("ready abc 1 2"), None);
        assert_eq!(Ready::parse("started abc 1"), None);
    }

    #[test]
    fn specs_without_a_command_or_with_relative_mounts_are_refused() {
        let base = ContainerSpec {
            name: "n".into(),
            reference: "r:1".into(),
            archive: None,
            command: vec!["/fake-cri".into()],
            env: BTreeMap::new(),
            mounts: vec![PathBuf::from("/run/nodekit")],
            capabilities: vec![],
            security_opts: vec![],
            cgroup_parent: "/nodekit".into(),
            stop_grace_secs: 5,
            start_timeout_secs: 30,
        };
        base.check().unwrap();
        let no_command = ContainerSpec { command: vec![], ..base.clone() };
        assert!(no_command.check().unwrap_err().to_string().contains("command"));
        let relative = ContainerSpec { mounts: vec![PathBuf::from("run")], ..base.clone() };
        assert!(relative.check().unwrap_err().to_string().contains("mounts[0]"));
        let json = serde_json::to_string(&base).unwrap();
        let back: ContainerSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, base);
        let unknown = json.replacen('{', "{\"privileged\":true,", 1);
        assert!(serde_json::from_str::<ContainerSpec>(&unknown).is_err());
    }
}
