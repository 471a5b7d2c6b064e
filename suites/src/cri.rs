//! A CRI v1 test client over the runtime's unix socket, with the config builders and waits the
//! runtime cases share. Every pod it builds sits under the world's cgroup root
//! ([`harness::backend::cgroup_parent`]), so a crashed world's cgroups can be swept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use k8s_cri::v1 as api;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

pub use k8s_cri::v1::{ContainerState, PodSandboxState};

/// The image every test container runs (entrypoint `/workload`, default cmd `pause`).
pub const IMAGE: &str = harness::backend::WORKLOAD_IMAGE;

/// Runtime and image clients sharing one connection, bound to one node.
#[derive(Clone)]
pub struct Cri {
    /// RuntimeService.
    pub rt: RuntimeServiceClient<Channel>,
    /// ImageService.
    pub img: ImageServiceClient<Channel>,
    node: String,
    /// Set for a runtime someone else runs: what this client creates is the case's only.
    scope: Option<std::sync::Arc<Scope>>,
}

/// Label on every sandbox and container a case creates on an external runtime.
pub const RUN_LABEL: &str = "nodekit.dev/run";

/// One case's share of an external runtime: a tag no other run has (on the labels and uids of
/// everything it creates, and on every list it makes) and a log directory outside the world,
/// where the runtime can write and the case can read.
#[derive(Debug)]
pub struct Scope {
    pub tag: String,
    pub logs: PathBuf,
}

impl Scope {
    /// A scope for this case process (pid and start time).
    pub fn new() -> anyhow::Result<Scope> {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let tag = format!("nk-{}-{:x}", std::process::id(), since.as_millis());
        let logs = std::env::temp_dir().join(format!("nodekit-cri-logs-{tag}"));
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        Ok(Scope { tag, logs })
    }
}

/// Connects to the CRI socket at `socket` (a runtime of node `node`).
pub async fn connect(socket: &Path, node: &str) -> anyhow::Result<Cri> {
    let channel = fake_cri::client::channel(socket)
        .await
        .with_context(|| format!("connecting to the CRI socket {}", socket.display()))?;
    Ok(Cri {
        rt: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
        img: ImageServiceClient::new(channel),
        node: node.to_string(),
        scope: None,
    })
}

/// A pod sandbox config under construction.
#[derive(Debug, Clone)]
pub struct Pod {
    /// The config sent with RunPodSandbox and CreateContainer.
    pub config: api::PodSandboxConfig,
}

impl Pod {
    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Pod {
        self.config.labels.insert(k.into(), v.into());
        self
    }
    /// Adds an annotation.
    pub fn annotation(mut self, k: &str, v: &str) -> Pod {
        self.config.annotations.insert(k.into(), v.into());
        self
    }
    /// Sets the DNS config.
    pub fn dns(mut self, servers: &[&str], searches: &[&str], options: &[&str]) -> Pod {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        self.config.dns_config = Some(api::DnsConfig { servers: v(servers), searches: v(searches), options: v(options) });
        self
    }
    /// Declares a TCP port of the pod: `container_port`, mapped to `host_port` of the node
    /// unless that is 0 (a port declared without a host port).
    pub fn port(mut self, container_port: i32, host_port: i32) -> Pod {
        self.config.port_mappings.push(api::PortMapping {
            protocol: api::Protocol::Tcp as i32,
            container_port,
            host_port,
            host_ip: String::new(),
        });
        self
    }
    /// The sandbox's log directory.
    pub fn log_dir(&self) -> PathBuf {
        PathBuf::from(&self.config.log_directory)
    }
}

/// A container config under construction.
#[derive(Debug, Clone)]
pub struct Ctr {
    /// The config sent with CreateContainer.
    pub config: api::ContainerConfig,
}

impl Ctr {
    /// Sets the command (overrides the image entrypoint).
    pub fn command(mut self, cmd: &[&str]) -> Ctr {
        self.config.command = cmd.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Ctr {
        self.config.envs.push(api::KeyValue { key: k.into(), value: v.into() });
        self
    }
    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Ctr {
        self.config.labels.insert(k.into(), v.into());
        self
    }
    /// Adds an annotation.
    pub fn annotation(mut self, k: &str, v: &str) -> Ctr {
        self.config.annotations.insert(k.into(), v.into());
        self
    }
    /// Sets the metadata's attempt (kubelet counts a container's restarts there).
    pub fn attempt(mut self, attempt: u32) -> Ctr {
        if let Some(m) = self.config.metadata.as_mut() {
            m.attempt = attempt;
        }
        self
    }
    /// Runs as `uid`:`gid`.
    pub fn user(mut self, uid: i64, gid: i64) -> Ctr {
        let sc = self.security();
        sc.run_as_user = Some(api::Int64Value { value: uid });
        sc.run_as_group = Some(api::Int64Value { value: gid });
        self
    }
    /// Gives the container a stdin (fed by attaches); `once`: closed when the first attach
    /// that writes to it ends its input.
    pub fn stdin(mut self, once: bool) -> Ctr {
        self.config.stdin = true;
        self.config.stdin_once = once;
        self
    }
    /// Runs the container on a terminal (its stdin, stdout and stderr), with a stdin fed by
    /// attaches.
    pub fn tty(mut self) -> Ctr {
        self.config.tty = true;
        self.stdin(false)
    }
    /// Mounts the root filesystem read-only.
    pub fn readonly_rootfs(mut self) -> Ctr {
        self.security().readonly_rootfs = true;
        self
    }
    fn security(&mut self) -> &mut api::LinuxContainerSecurityContext {
        let linux = self.config.linux.get_or_insert_with(Default::default);
        linux.security_context.get_or_insert_with(Default::default)
    }
    /// Bind-mounts `host_path` of the node at `container_path` (read-only when `readonly`).
    pub fn mount(mut self, host_path: &Path, container_path: &str, readonly: bool) -> Ctr {
        self.config.mounts.push(api::Mount {
            host_path: host_path.to_string_lossy().into_owned(),
            container_path: container_path.into(),
            readonly,
            ..Default::default()
        });
        self
    }
    /// Sets the memory limit.
    pub fn memory_limit(mut self, bytes: i64) -> Ctr {
        let linux = self.config.linux.get_or_insert_with(Default::default);
        linux.resources.get_or_insert_with(Default::default).memory_limit_in_bytes = bytes;
        self
    }
}

/// The config of a container named `name` running `/workload <args…>` (no args: the image's
/// default `pause`), logging to `<name>.log` in the sandbox's log directory.
pub fn container(name: &str, args: &[&str]) -> Ctr {
    Ctr {
        config: api::ContainerConfig {
            metadata: Some(api::ContainerMetadata { name: name.into(), attempt: 0 }),
            image: Some(api::ImageSpec { image: IMAGE.into(), ..Default::default() }),
            args: args.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            ..Default::default()
        },
    }
}

impl Cri {
    /// This client, scoped to one case's share of an external runtime.
    pub fn scoped(mut self, scope: Scope) -> Cri {
        self.scope = Some(std::sync::Arc::new(scope));
        self
    }

    /// Whether this client works on an external runtime's share (see [`Scope`]).
    pub fn is_scoped(&self) -> bool {
        self.scope.is_some()
    }

    /// The sandbox config of pod `name` (namespace `default`, uid `uid-<name>`, hostname
    /// `name`), with a log directory in the world's scratch space and the world's cgroup parent.
    /// On an external runtime: the uid carries the scope's tag, the pod its label, the log
    /// directory is the scope's, and the runtime picks the cgroup parent.
    pub fn pod(&self, name: &str) -> anyhow::Result<Pod> {
        let (uid, logs, cgroup_parent) = match &self.scope {
            None => (
                format!("uid-{name}"),
                harness::backend::scratch_dir(&format!("pod-logs/{name}"))?,
                harness::backend::cgroup_parent(&self.node, name)?,
            ),
            Some(s) => {
                let logs = s.logs.join(name);
                std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
                (format!("uid-{name}-{}", s.tag), logs, String::new())
            }
        };
        let mut pod = Pod {
            config: api::PodSandboxConfig {
                metadata: Some(api::PodSandboxMetadata { name: name.into(), uid, namespace: "default".into(), attempt: 0 }),
                hostname: name.into(),
                log_directory: logs.to_string_lossy().into_owned(),
                linux: Some(api::LinuxPodSandboxConfig { cgroup_parent, ..Default::default() }),
                ..Default::default()
            },
        };
        if let Some(s) = &self.scope {
            pod = pod.label(RUN_LABEL, &s.tag);
        }
        Ok(pod)
    }

    /// Removes every container and sandbox of this client's scope, then fails when the
    /// runtime still lists any (a leftover check); a no-op for runtimes of the world.
    pub async fn remove_scoped(&mut self) -> anyhow::Result<()> {
        let Some(scope) = self.scope.clone() else { return Ok(()) };
        let sel = labels(&[(RUN_LABEL, &scope.tag)]);
        let mut errors = Vec::new();
        for c in self.list(api::ContainerFilter { label_selector: sel.clone(), ..Default::default() }).await? {
            let _ = self.stop(&c.id, 0).await;
            if let Err(e) = self.remove(&c.id).await {
                errors.push(format!("RemoveContainer {}: {}", c.id, e.message()));
            }
        }
        for p in self.list_pods(api::PodSandboxFilter { label_selector: sel.clone(), ..Default::default() }).await? {
            let _ = self.stop_pod(&p.id).await;
            if let Err(e) = self.remove_pod(&p.id).await {
                errors.push(format!("RemovePodSandbox {}: {}", p.id, e.message()));
            }
        }
        let pods = self.list_pods(api::PodSandboxFilter { label_selector: sel.clone(), ..Default::default() }).await?;
        let ctrs = self.list(api::ContainerFilter { label_selector: sel, ..Default::default() }).await?;
        let _ = std::fs::remove_dir_all(&scope.logs);
        if !pods.is_empty() || !ctrs.is_empty() {
            let ids = |v: Vec<String>| v.join(", ");
            bail!(
                "left behind on the runtime after removing everything labelled {RUN_LABEL}={}: sandboxes [{}], \
                 containers [{}] ({})",
                scope.tag,
                ids(pods.into_iter().map(|p| p.id).collect()),
                ids(ctrs.into_iter().map(|c| c.id).collect()),
                errors.join("; ")
            );
        }
        Ok(())
    }

    /// RunPodSandbox; returns the sandbox id.
    pub async fn run_pod(&mut self, pod: &Pod) -> anyhow::Result<String> {
        let r = self
            .rt
            .run_pod_sandbox(api::RunPodSandboxRequest { config: Some(pod.config.clone()), runtime_handler: String::new() })
            .await
            .context("RunPodSandbox")?;
        Ok(r.into_inner().pod_sandbox_id)
    }

    /// CreateContainer in `sandbox`; returns the container id.
    pub async fn create(&mut self, sandbox: &str, pod: &Pod, c: &Ctr) -> anyhow::Result<String> {
        let r = self
            .rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox.into(),
                config: Some(match &self.scope {
                    None => c.config.clone(),
                    Some(s) => c.clone().label(RUN_LABEL, &s.tag).config,
                }),
                sandbox_config: Some(pod.config.clone()),
            })
            .await
            .context("CreateContainer")?;
        Ok(r.into_inner().container_id)
    }

    /// StartContainer.
    pub async fn start(&mut self, id: &str) -> anyhow::Result<()> {
        self.rt.start_container(api::StartContainerRequest { container_id: id.into() }).await.context("StartContainer")?;
        Ok(())
    }

    /// CreateContainer + StartContainer.
    pub async fn run(&mut self, sandbox: &str, pod: &Pod, c: &Ctr) -> anyhow::Result<String> {
        let id = self.create(sandbox, pod, c).await?;
        self.start(&id).await?;
        Ok(id)
    }

    /// StopContainer with `timeout` seconds of grace.
    pub async fn stop(&mut self, id: &str, timeout: i64) -> Result<(), tonic::Status> {
        self.rt.stop_container(api::StopContainerRequest { container_id: id.into(), timeout }).await.map(|_| ())
    }

    /// RemoveContainer.
    pub async fn remove(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.rt.remove_container(api::RemoveContainerRequest { container_id: id.into() }).await.map(|_| ())
    }

    /// StopPodSandbox.
    pub async fn stop_pod(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.rt.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id.into() }).await.map(|_| ())
    }

    /// RemovePodSandbox.
    pub async fn remove_pod(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.rt.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id.into() }).await.map(|_| ())
    }

    /// ContainerStatus.
    pub async fn status(&mut self, id: &str) -> Result<api::ContainerStatus, tonic::Status> {
        let r = self.rt.container_status(api::ContainerStatusRequest { container_id: id.into(), verbose: false }).await?;
        r.into_inner().status.ok_or_else(|| tonic::Status::internal("ContainerStatus without a status"))
    }

    /// PodSandboxStatus.
    pub async fn pod_status(&mut self, id: &str) -> Result<api::PodSandboxStatus, tonic::Status> {
        let r = self.rt.pod_sandbox_status(api::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false }).await?;
        r.into_inner().status.ok_or_else(|| tonic::Status::internal("PodSandboxStatus without a status"))
    }

    /// The sandbox's pod IP.
    pub async fn pod_ip(&mut self, id: &str) -> anyhow::Result<std::net::Ipv4Addr> {
        let st = self.pod_status(id).await.context("PodSandboxStatus")?;
        let ip = st.network.map(|n| n.ip).unwrap_or_default();
        ip.parse().with_context(|| format!("pod {id} has no IPv4 address ({ip:?})"))
    }

    /// ListPodSandbox with a filter.
    /// On an external runtime only this case's sandboxes are listed.
    pub async fn list_pods(&mut self, mut filter: api::PodSandboxFilter) -> anyhow::Result<Vec<api::PodSandbox>> {
        if let Some(s) = &self.scope {
            filter.label_selector.insert(RUN_LABEL.into(), s.tag.clone());
        }
        let r = self.rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: Some(filter) }).await.context("ListPodSandbox")?;
        Ok(r.into_inner().items)
    }

    /// `filter` limited to this client's share of an external runtime (unchanged otherwise).
    pub fn scope_filter(&self, mut filter: api::ContainerStatsFilter) -> api::ContainerStatsFilter {
        if let Some(s) = &self.scope {
            filter.label_selector.insert(RUN_LABEL.into(), s.tag.clone());
        }
        filter
    }

    /// ListContainers with a filter.
    /// On an external runtime only this case's containers are listed.
    pub async fn list(&mut self, mut filter: api::ContainerFilter) -> anyhow::Result<Vec<api::Container>> {
        if let Some(s) = &self.scope {
            filter.label_selector.insert(RUN_LABEL.into(), s.tag.clone());
        }
        let r = self.rt.list_containers(api::ListContainersRequest { filter: Some(filter) }).await.context("ListContainers")?;
        Ok(r.into_inner().containers)
    }

    /// ExecSync of `cmd` with a timeout in seconds (0: none).
    pub async fn exec(&mut self, id: &str, cmd: &[&str], timeout: i64) -> Result<api::ExecSyncResponse, tonic::Status> {
        let req = api::ExecSyncRequest { container_id: id.into(), cmd: cmd.iter().map(|s| s.to_string()).collect(), timeout };
        Ok(self.rt.exec_sync(req).await?.into_inner())
    }

    /// ExecSync that must exit 0; returns stdout.
    pub async fn exec_ok(&mut self, id: &str, cmd: &[&str]) -> anyhow::Result<String> {
        let r = self.exec(id, cmd, 10).await.with_context(|| format!("ExecSync {cmd:?}"))?;
        if r.exit_code != 0 {
            bail!("ExecSync {cmd:?} exited {}: stdout {:?} stderr {:?}", r.exit_code, text(&r.stdout), text(&r.stderr));
        }
        Ok(text(&r.stdout))
    }

    /// Waits until the container is in `state`; returns its status.
    pub async fn wait_state(&mut self, id: &str, state: ContainerState, timeout: Duration) -> anyhow::Result<api::ContainerStatus> {
        let what = format!("container {id} to be {}", state.as_str_name());
        let st = harness::wait::wait_for(&what, timeout, || {
            let mut c = self.clone();
            async move {
                match c.status(id).await {
                    Ok(s) if s.state == state as i32 => Ok(s),
                    Ok(s) => Err(format!("state {:?}", ContainerState::try_from(s.state))),
                    Err(e) => Err(format!("ContainerStatus: {e}")),
                }
            }
        })
        .await?;
        Ok(st)
    }

    /// ImageStatus (`None` when the image is absent).
    pub async fn image(&mut self, image: &str) -> anyhow::Result<Option<api::Image>> {
        let r = self
            .img
            .image_status(api::ImageStatusRequest { image: Some(image_spec(image)), verbose: false })
            .await
            .with_context(|| format!("ImageStatus {image}"))?;
        Ok(r.into_inner().image)
    }
}

/// Waits until the CRI log file at `path` has a line whose message contains `needle`.
pub async fn wait_log(path: &Path, needle: &str, timeout: Duration) -> anyhow::Result<()> {
    let what = format!("{} to log {needle:?}", path.display());
    harness::wait::wait_for(&what, timeout, || async {
        let lines = std::fs::read_to_string(path).ok().and_then(|t| parse_log(&t).ok()).unwrap_or_default();
        lines.iter().any(|l| l.msg.contains(needle))
    })
    .await?;
    Ok(())
}

/// An `ImageSpec` for a reference.
pub fn image_spec(image: &str) -> api::ImageSpec {
    api::ImageSpec { image: image.into(), ..Default::default() }
}

/// Bytes as (lossy) text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A label selector map.
pub fn labels(kv: &[(&str, &str)]) -> HashMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Asserts that `r` failed with `code`.
pub fn expect_code<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: tonic::Code, what: &str) -> anyhow::Result<()> {
    match r {
        Err(s) if s.code() == code => Ok(()),
        Err(s) => Err(anyhow!("{what}: expected {code:?}, got {:?}: {}", s.code(), s.message())),
        Ok(v) => Err(anyhow!("{what}: expected {code:?}, got OK: {v:?}")),
    }
}

/// One line of a CRI container log: `<RFC3339Nano> <stdout|stderr> <P|F> <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The timestamp as written.
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// `P` (partial) or `F` (full).
    pub tag: String,
    /// The message (without the newline).
    pub msg: String,
}

/// Parses a CRI log file's text; fails on any line that is not in the CRI format.
pub fn parse_log(text: &str) -> anyhow::Result<Vec<LogLine>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(4, ' ');
        let (Some(time), Some(stream), Some(tag)) = (it.next(), it.next(), it.next()) else {
            bail!("not a CRI log line: {line:?}");
        };
        let msg = it.next().unwrap_or("");
        time.parse::<jiff::Timestamp>().with_context(|| format!("bad RFC 3339 time in {line:?}"))?;
        if !time.ends_with('Z') && !time.contains('+') && !time[10..].contains('-') {
            bail!("time without an offset in {line:?}");
        }
        if stream != "stdout" && stream != "stderr" {
            bail!("bad stream {stream:?} in {line:?}");
        }
        if tag != "P" && tag != "F" {
            bail!("bad tag {tag:?} in {line:?}");
        }
        out.push(LogLine { time: time.into(), stream: stream.into(), tag: tag.into(), msg: msg.into() });
    }
    Ok(out)
}
