//! Translation of a Pod spec into CRI sandbox and container configs: labels, annotations, DNS,
//! hostname, ports, env (values, fieldRef, $(VAR) expansion), resources, emptyDir mounts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use sha2::{Digest, Sha256};

use crate::cri::{api, keys};
use crate::quantity;

/// Node-level inputs of the translation.
#[derive(Clone, Debug, Default)]
pub struct SpecContext {
    pub root_dir: PathBuf,
    pub node_name: String,
    pub node_ip: Option<String>,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: Option<String>,
    /// The host's resolv.conf (servers, searches, options).
    pub host_dns: api::DnsConfig,
    /// cgroupRoot: pods' cgroups go under `<root>/kubepods/…` (empty: `/`).
    pub cgroup_root: String,
}

/// The pod's cgroup parent as upstream's cgroupfs driver names it:
/// `<root>/kubepods/pod<uid>` (Guaranteed), `<root>/kubepods/burstable/pod<uid>`,
/// `<root>/kubepods/besteffort/pod<uid>`.
pub fn pod_cgroup_parent(pod: &Pod, root: &str) -> String {
    let root = root.trim_end_matches('/');
    let qos = match crate::pods::status::qos_class(pod) {
        "Guaranteed" => String::new(),
        "Burstable" => "/burstable".into(),
        _ => "/besteffort".into(),
    };
    format!("{root}/kubepods{qos}/pod{}", pod_uid(pod))
}

/// Why a container config could not be made (reported as CreateContainerConfigError).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SpecError(pub String);

pub fn pod_uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn name_ns(pod: &Pod) -> (String, String) {
    (pod.metadata.name.clone().unwrap_or_default(), pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()))
}

/// `<root>/pods/<ns>_<name>_<uid>`: the sandbox's log directory.
pub fn pod_log_dir(root: &Path, pod: &Pod) -> PathBuf {
    let (name, ns) = name_ns(pod);
    root.join("pods").join(format!("{ns}_{name}_{}", pod_uid(pod)))
}

/// `<root>/pods/<uid>`: the pod's own directory (volumes, termination messages).
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// Host file bind-mounted at the container's terminationMessagePath.
pub fn termination_message_file(root: &Path, uid: &str, container: &str, restart_count: u32) -> PathBuf {
    pod_dir(root, uid).join("containers").join(container).join(restart_count.to_string())
}

/// Reads a container's termination message (upstream limits: 4096 bytes from the file; with
/// FallbackToLogsOnError and a failed container, the last 80 log lines up to 2048 bytes).
pub fn read_termination_message(file: &Path, policy: Option<&str>, failed: bool, log_file: &Path) -> Option<String> {
    let mut text = std::fs::read(file).ok().unwrap_or_default();
    text.truncate(4096);
    if text.is_empty() && failed && policy == Some("FallbackToLogsOnError") {
        let log = std::fs::read_to_string(log_file).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        let start = tail.len().saturating_sub(2048);
        let start = (start..tail.len()).find(|i| tail.is_char_boundary(*i)).unwrap_or(tail.len());
        text = tail.as_bytes()[start..].to_vec();
    }
    let s = String::from_utf8_lossy(&text).into_owned();
    (!s.is_empty()).then_some(s)
}

/// Parses a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> api::DnsConfig {
    let mut cfg = api::DnsConfig::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => cfg.servers.extend(words.next().map(str::to_string)),
            Some("search") => cfg.searches = words.map(str::to_string).collect(),
            Some("options") => cfg.options = words.map(str::to_string).collect(),
            _ => {}
        }
    }
    cfg
}

fn dns_config(pod: &Pod, ctx: &SpecContext) -> api::DnsConfig {
    let spec = pod.spec.as_ref();
    let policy = spec.and_then(|s| s.dns_policy.as_deref()).unwrap_or("ClusterFirst");
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let (_, ns) = name_ns(pod);
    let cluster_first = (policy == "ClusterFirst" && !host_network) || policy == "ClusterFirstWithHostNet";
    let mut cfg = match policy {
        "None" => api::DnsConfig::default(),
        _ if cluster_first && !ctx.cluster_dns.is_empty() => {
            let domain = ctx.cluster_domain.clone().unwrap_or_else(|| "cluster.local".into());
            let mut searches = vec![format!("{ns}.svc.{domain}"), format!("svc.{domain}"), domain];
            searches.extend(ctx.host_dns.searches.iter().cloned());
            api::DnsConfig { servers: ctx.cluster_dns.clone(), searches, options: vec!["ndots:5".into()] }
        }
        _ => ctx.host_dns.clone(),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        cfg.servers.extend(extra.nameservers.clone().unwrap_or_default());
        cfg.searches.extend(extra.searches.clone().unwrap_or_default());
        for o in extra.options.iter().flatten() {
            let name = o.name.clone().unwrap_or_default();
            cfg.options.retain(|x| x.split(':').next() != Some(name.as_str()));
            cfg.options.push(match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            });
        }
    }
    cfg
}

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let (name, ns) = name_ns(pod);
    let mut labels: HashMap<String, String> =
        pod.metadata.labels.clone().unwrap_or_default().into_iter().collect();
    labels.insert(keys::POD_NAME.into(), name);
    labels.insert(keys::POD_NAMESPACE.into(), ns);
    labels.insert(keys::POD_UID.into(), pod_uid(pod));
    labels
}

fn protocol(p: Option<&str>) -> i32 {
    match p {
        Some("UDP") => api::Protocol::Udp as i32,
        Some("SCTP") => api::Protocol::Sctp as i32,
        _ => api::Protocol::Tcp as i32,
    }
}

/// The sandbox config for attempt `attempt`.
pub fn sandbox_config(pod: &Pod, ctx: &SpecContext, attempt: u32) -> api::PodSandboxConfig {
    let (name, ns) = name_ns(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    // A FQDN too long is refused before the sandbox is asked for (effects' create_sandbox).
    let hostname = super::etc_hosts::kernel_hostname(pod, ctx).unwrap_or_else(|_| super::etc_hosts::hostname(pod));
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| api::PortMapping {
            protocol: protocol(p.protocol.as_deref()),
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let annotations = pod.metadata.annotations.clone().unwrap_or_default().into_iter().collect();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata { name, uid: pod_uid(pod), namespace: ns, attempt }),
        hostname: if spec.host_network.unwrap_or(false) { String::new() } else { hostname },
        log_directory: pod_log_dir(&ctx.root_dir, pod).to_string_lossy().into_owned(),
        dns_config: Some(dns_config(pod, ctx)),
        port_mappings,
        labels: pod_labels(pod),
        annotations,
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: pod_cgroup_parent(pod, &ctx.cgroup_root),
            security_context: Some(super::security::sandbox_security(pod)),
            sysctls: super::security::sysctls(pod),
            ..Default::default()
        }),
        windows: None,
    }
}

/// A short stable hash of the container spec (annotation io.kubernetes.container.hash).
pub fn container_hash(c: &Container) -> String {
    let json = serde_json::to_vec(c).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..4])
}

fn field_value(pod: &Pod, path: &str, pod_ip: Option<&str>, ctx: &SpecContext) -> Result<String, SpecError> {
    let (name, ns) = name_ns(pod);
    let spec = pod.spec.as_ref();
    let map_key = |prefix: &str, m: &Option<BTreeMap<String, String>>| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(m.as_ref().and_then(|m| m.get(key).cloned()).unwrap_or_default())
    };
    if let Some(v) = map_key("metadata.labels['", &pod.metadata.labels) {
        return Ok(v);
    }
    if let Some(v) = map_key("metadata.annotations['", &pod.metadata.annotations) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => name,
        "metadata.namespace" => ns,
        "metadata.uid" => pod_uid(pod),
        "spec.nodeName" => ctx.node_name.clone(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.podIP" | "status.podIPs" => pod_ip.unwrap_or_default().to_string(),
        "status.hostIP" | "status.hostIPs" => ctx.node_ip.clone().unwrap_or_default(),
        other => return Err(SpecError(format!("unsupported fieldRef path {other:?}"))),
    })
}

fn resource_value(c: &Container, resource: &str, divisor: Option<&str>) -> Result<String, SpecError> {
    let res = c.resources.as_ref();
    let (map, key) = match resource.split_once('.') {
        Some(("limits", k)) => (res.and_then(|r| r.limits.as_ref()), k),
        Some(("requests", k)) => (res.and_then(|r| r.requests.as_ref()), k),
        _ => return Err(SpecError(format!("unsupported resourceFieldRef {resource:?}"))),
    };
    let value = map.and_then(|m| m.get(key)).and_then(|q| quantity::parse_quantity(&q.0)).unwrap_or(0.0);
    let div = divisor.and_then(quantity::parse_quantity).filter(|d| *d > 0.0).unwrap_or(1.0);
    Ok(((value / div).ceil() as i64).to_string())
}

/// Expands `$(VAR)` references (upstream semantics: `$$` escapes, unknown references stay).
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    expand_with(input, |var| env.iter().rev().find(|(k, _)| k == var).map(|(_, v)| v.as_str()))
}

/// [`expand`] with the values from `lookup`.
fn expand_with<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let var = &inner[..end];
            match lookup(var) {
                Some(v) => out.push_str(v),
                None => out.push_str(&format!("$({var})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The configMaps and secrets a container's environment reads, by (is secret, name): their
/// keys, or `None` when the object does not exist. Filled by the executor before the start.
pub type EnvObjects = BTreeMap<(bool, String), Option<BTreeMap<String, Vec<u8>>>>;

/// What a container's environment reads besides its pod: the objects of its `envFrom` and
/// `valueFrom`, and the service variables ([`super::service_env`]).
#[derive(Clone, Debug, Default)]
pub struct EnvInputs {
    pub objects: EnvObjects,
    pub services: BTreeMap<String, String>,
}

/// The objects `c`'s `envFrom` and `valueFrom` refer to: (is secret, name).
pub fn env_object_refs(c: &Container) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for f in c.env_from.iter().flatten() {
        if let Some(r) = &f.config_map_ref {
            out.push((false, r.name.clone()));
        }
        if let Some(r) = &f.secret_ref {
            out.push((true, r.name.clone()));
        }
    }
    for e in c.env.iter().flatten() {
        if let Some(r) = e.value_from.as_ref().and_then(|f| f.config_map_key_ref.as_ref()) {
            out.push((false, r.name.clone()));
        }
        if let Some(r) = e.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()) {
            out.push((true, r.name.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn kind_of(secret: bool) -> (&'static str, &'static str) {
    if secret { ("secret", "Secret") } else { ("configmap", "ConfigMap") }
}

/// One key of a referenced object: `Ok(None)` when it (or the object) is absent but optional.
fn object_key(pod: &Pod, objects: &EnvObjects, secret: bool, name: &str, key: &str, optional: bool) -> Result<Option<String>, SpecError> {
    let (lower, upper) = kind_of(secret);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    match objects.get(&(secret, name.to_string())).and_then(Option::as_ref) {
        None if optional => Ok(None),
        None => Err(SpecError(format!("{lower} {name:?} not found"))),
        Some(keys) => match keys.get(key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
            None if optional => Ok(None),
            None => Err(SpecError(format!("couldn't find key {key} in {upper} {ns}/{name}"))),
        },
    }
}

fn set(env: &mut Vec<(String, String)>, name: String, value: String) {
    env.retain(|(n, _)| *n != name);
    env.push((name, value));
}

/// The container's environment in order: `envFrom` first, then `env` (a later name replaces
/// an earlier one, as upstream), then the service variables `services` the container does not
/// set itself; `$(VAR)` in `env` values sees the variables set before it and the service ones.
pub fn container_env(
    pod: &Pod,
    c: &Container,
    pod_ip: Option<&str>,
    ctx: &SpecContext,
    inputs: &EnvInputs,
) -> Result<Vec<(String, String)>, SpecError> {
    let (objects, services) = (&inputs.objects, &inputs.services);
    let mut env: Vec<(String, String)> = Vec::new();
    for f in c.env_from.iter().flatten() {
        let prefix = f.prefix.clone().unwrap_or_default();
        let refs = [
            f.config_map_ref.as_ref().map(|r| (false, r.name.as_str(), r.optional.unwrap_or(false))),
            f.secret_ref.as_ref().map(|r| (true, r.name.as_str(), r.optional.unwrap_or(false))),
        ];
        for (secret, name, optional) in refs.into_iter().flatten() {
            match objects.get(&(secret, name.to_string())).and_then(Option::as_ref) {
                Some(keys) => {
                    for (k, v) in keys {
                        set(&mut env, format!("{prefix}{k}"), String::from_utf8_lossy(v).into_owned());
                    }
                }
                None if optional => {}
                None => return Err(SpecError(format!("{} {name:?} not found", kind_of(secret).0))),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            // The variables set so far win over the service ones.
            let set_so_far = |var: &str| env.iter().rev().find(|(k, _)| k == var).map(|(_, v)| v.as_str());
            expand_with(v, |var| set_so_far(var).or_else(|| services.get(var).map(String::as_str)))
        } else if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, &f.field_path, pod_ip, ctx)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(c, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()))?
            } else if let Some(r) = &from.config_map_key_ref {
                match object_key(pod, objects, false, &r.name, &r.key, r.optional.unwrap_or(false))? {
                    Some(v) => v,
                    None => continue,
                }
            } else if let Some(r) = &from.secret_key_ref {
                match object_key(pod, objects, true, &r.name, &r.key, r.optional.unwrap_or(false))? {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                return Err(SpecError(format!("env {}: valueFrom names no source", e.name)));
            }
        } else {
            String::new()
        };
        set(&mut env, e.name.clone(), value);
    }
    let own: std::collections::HashSet<String> = env.iter().map(|(n, _)| n.clone()).collect();
    env.extend(services.iter().filter(|(k, _)| !own.contains(*k)).map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

fn linux_resources(c: &Container) -> api::LinuxContainerResources {
    let mut r = api::LinuxContainerResources::default();
    let res = c.resources.as_ref();
    let get = |which: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>, key: &str| {
        which.and_then(|m| m.get(key)).map(|q| q.0.clone())
    };
    let limits = res.and_then(|r| r.limits.as_ref());
    let requests = res.and_then(|r| r.requests.as_ref());
    if let Some(mem) = get(limits, "memory").as_deref().and_then(quantity::bytes) {
        r.memory_limit_in_bytes = mem;
    }
    let cpu_req = get(requests, "cpu").or_else(|| get(limits, "cpu"));
    let shares = cpu_req.as_deref().and_then(quantity::cpu_millis).map(|m| (m * 1024 / 1000).max(2)).unwrap_or(2);
    r.cpu_shares = shares;
    if let Some(m) = get(limits, "cpu").as_deref().and_then(quantity::cpu_millis) {
        r.cpu_period = 100_000;
        r.cpu_quota = (m * 100_000 / 1000).max(1000);
    }
    r
}

/// The volume host directory of `volume` (emptyDir, hostPath, configMap, secret or projected)
/// and whether it is always mounted read-only (configMap, secret and projected).
fn volume_host_path(pod: &Pod, root: &Path, volume: &str) -> Option<(PathBuf, bool)> {
    let v = pod.spec.as_ref()?.volumes.as_ref()?.iter().find(|v| v.name == volume)?;
    if v.empty_dir.is_some() {
        return Some((pod_dir(root, &pod_uid(pod)).join("volumes/kubernetes.io~empty-dir").join(volume), false));
    }
    if let Some(dir) = super::volumes::host_dir(&pod_dir(root, &pod_uid(pod)), v) {
        return Some((dir, true));
    }
    v.host_path.as_ref().map(|h| (PathBuf::from(&h.path), false))
}

/// The volume mounts of `c` that this agent cannot provide (volume types other than emptyDir,
/// hostPath, configMap, secret and projected, or no such volume): `(volume, why)`. The container starts
/// without them.
pub fn unsupported_mounts(pod: &Pod, c: &Container) -> Vec<(String, String)> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    c.volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let Some(v) = volumes.and_then(|vs| vs.iter().find(|v| v.name == m.name)) else {
                return Some((m.name.clone(), "the pod has no such volume".to_string()));
            };
            if v.empty_dir.is_some() || v.host_path.is_some() || v.config_map.is_some() || v.secret.is_some() || v.projected.is_some() {
                return None;
            }
            let kind = serde_json::to_value(v)
                .ok()
                .and_then(|j| j.as_object().and_then(|o| o.keys().find(|k| *k != "name").cloned()))
                .unwrap_or_else(|| "unknown".into());
            Some((m.name.clone(), format!("{kind} volumes are not supported by this agent (emptyDir, hostPath, configMap, secret and projected are)")))
        })
        .collect()
}

/// The container config for instance `restart_count`.
pub fn container_config(
    pod: &Pod,
    c: &Container,
    restart_count: u32,
    pod_ip: Option<&str>,
    ctx: &SpecContext,
    init: bool,
    inputs: &EnvInputs,
) -> Result<api::ContainerConfig, SpecError> {
    let env = container_env(pod, c, pod_ip, ctx, inputs)?;
    let command = c.command.iter().flatten().map(|s| expand(s, &env)).collect();
    let args = c.args.iter().flatten().map(|s| expand(s, &env)).collect();
    let mut mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        match volume_host_path(pod, &ctx.root_dir, &m.name) {
            Some((host, always_ro)) => mounts.push(api::Mount {
                container_path: m.mount_path.clone(),
                host_path: host.to_string_lossy().into_owned(),
                readonly: always_ro || m.read_only.unwrap_or(false),
                ..Default::default()
            }),
            None => tracing::debug!(volume = %m.name, "volume type not supported; mount skipped"),
        }
    }
    if super::etc_hosts::mounted(pod, pod_ip, c) {
        mounts.push(api::Mount {
            container_path: super::etc_hosts::ETC_HOSTS.to_string(),
            host_path: super::etc_hosts::path(&ctx.root_dir, pod).to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    if let Some(path) = c.termination_message_path.as_deref().filter(|p| !p.is_empty()) {
        mounts.push(api::Mount {
            container_path: path.to_string(),
            host_path: termination_message_file(&ctx.root_dir, &pod_uid(pod), &c.name, restart_count)
                .to_string_lossy()
                .into_owned(),
            ..Default::default()
        });
    }
    let (name, ns) = name_ns(pod);
    let mut labels = HashMap::from([
        (keys::POD_NAME.to_string(), name),
        (keys::POD_NAMESPACE.to_string(), ns),
        (keys::POD_UID.to_string(), pod_uid(pod)),
        (keys::CONTAINER_NAME.to_string(), c.name.clone()),
    ]);
    if init {
        labels.insert(keys::INIT_CONTAINER.into(), "true".into());
    }
    let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    let mut annotations = HashMap::from([
        (keys::CONTAINER_HASH.to_string(), container_hash(c)),
        (keys::RESTART_COUNT.to_string(), restart_count.to_string()),
        (keys::TERMINATION_GRACE.to_string(), grace.to_string()),
    ]);
    if let Some(p) = &c.termination_message_path {
        annotations.insert(keys::TERMINATION_MESSAGE_PATH.into(), p.clone());
    }
    Ok(api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: c.name.clone(), attempt: restart_count }),
        image: Some(api::ImageSpec {
            image: c.image.clone().unwrap_or_default(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command,
        args,
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: env.into_iter().map(|(key, value)| api::KeyValue { key, value }).collect(),
        mounts,
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(linux_resources(c)),
            security_context: Some(super::security::container_security(pod, c)),
        }),
        ..Default::default()
    })
}

/// Host directories that must exist before the containers start (emptyDir volumes, log dir).
pub fn host_dirs(pod: &Pod, root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![pod_log_dir(root, pod)];
    for v in pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
        if v.empty_dir.is_some() {
            dirs.push(pod_dir(root, &pod_uid(pod)).join("volumes/kubernetes.io~empty-dir").join(&v.name));
        }
    }
    dirs
}

#[cfg(test)]
mod tests;
