//! Faults: each starts at once and stays active while the operations after it run; it heals
//! after its `duration`, at a `heal` naming it, or when the scenario ends, whatever happened.
//! Every fault knows its own undo, and the span it was active is kept for the report.
//!
//! Kernel paths: a partition is an nftables table in the node host dropping its traffic with
//! the API server (one way or both); link loss is an nftables `numgen random` drop between
//! two hosts; link down is the host's LAN port down. Link *delay* needs netem, which the
//! kernels here do not have (`CONFIG_NET_SCH_NETEM` unset): such a scenario is refused before
//! it runs ([`netem_available`]). Resource pressure is a critical pod on the node that uses
//! the resource: the reference agent's eviction signals are capacity minus what pods use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use scenario::model::{ApiServerFault, Component, Direction, Fault, FaultKind, LinkFault, PressureResource, RuntimeFaults};
use scenario::record::FaultSpan;

use super::world::ScenarioWorld;

/// How to undo an active fault.
enum Undo {
    NftTable { host: String, table: String },
    StartMissing { node: String },
    Restart { node: String, component: Component },
    Reconnect { host: String },
    ApiRule(u64),
    RuntimeFaults { node: String },
    DeletePod { name: String },
    Nothing,
}

struct Active {
    id: u64,
    name: Option<String>,
    text: String,
    target: String,
    start_ms: u64,
    undo: Undo,
}

/// The scenario's faults.
pub struct Faults {
    world: Arc<ScenarioWorld>,
    t0: Instant,
    next: AtomicU64,
    active: tokio::sync::Mutex<Vec<Active>>,
    spans: Mutex<Vec<FaultSpan>>,
    timers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Faults {
    pub fn new(world: Arc<ScenarioWorld>, t0: Instant) -> Arc<Faults> {
        Arc::new(Faults { world, t0, next: AtomicU64::new(1), active: tokio::sync::Mutex::new(Vec::new()), spans: Mutex::new(Vec::new()), timers: Mutex::new(Vec::new()) })
    }

    fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// Starts `f`; with a duration, a timer heals it.
    pub async fn start(self: &Arc<Self>, f: &Fault) -> anyhow::Result<String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (text, target, undo) = self.inject(id, &f.kind).await?;
        let start_ms = self.now_ms();
        let done = matches!(undo, Undo::Nothing);
        if done {
            self.spans.lock().unwrap_or_else(|e| e.into_inner()).push(FaultSpan { text: text.clone(), target, start_ms, end_ms: start_ms });
            return Ok(text);
        }
        self.active.lock().await.push(Active { id, name: f.name.clone(), text: text.clone(), target, start_ms, undo });
        if let Some(d) = f.duration {
            let me = self.clone();
            let timer = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                if let Err(e) = me.heal_id(id).await {
                    eprintln!("nodekit run: healing a fault after its duration: {e:#}");
                }
            });
            self.timers.lock().unwrap_or_else(|e| e.into_inner()).push(timer);
            return Ok(format!("{text} (for {})", scenario::duration::format(d)));
        }
        Ok(text)
    }

    /// Whether a fault named `name` is active.
    pub async fn is_active(&self, name: &str) -> bool {
        self.active.lock().await.iter().any(|a| a.name.as_deref() == Some(name))
    }

    /// Heals the fault named `name`, or every active one.
    pub async fn heal(&self, name: Option<&str>) -> anyhow::Result<String> {
        let ids: Vec<u64> = self.active.lock().await.iter().filter(|a| name.is_none() || a.name.as_deref() == name).map(|a| a.id).collect();
        if ids.is_empty() {
            return Ok(match name {
                Some(n) => format!("fault {n} had healed already"),
                None => "no fault was active".into(),
            });
        }
        let mut healed = Vec::new();
        for id in ids {
            healed.push(self.heal_id(id).await?);
        }
        Ok(healed.join("; "))
    }

    async fn heal_id(&self, id: u64) -> anyhow::Result<String> {
        let taken = {
            let mut active = self.active.lock().await;
            let i = active.iter().position(|a| a.id == id);
            i.map(|i| active.remove(i))
        };
        let Some(a) = taken else { return Ok(String::new()) };
        let result = self.undo(&a.undo).await;
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).push(FaultSpan { text: a.text.clone(), target: a.target, start_ms: a.start_ms, end_ms: self.now_ms() });
        result.with_context(|| format!("healing {}", a.text))?;
        Ok(format!("healed: {}", a.text))
    }

    /// Heals everything still active (the scenario's end) and returns every fault's span.
    pub async fn finish(&self) -> (Vec<FaultSpan>, Vec<String>) {
        for t in std::mem::take(&mut *self.timers.lock().unwrap_or_else(|e| e.into_inner())) {
            t.abort();
        }
        let mut errors = Vec::new();
        let ids: Vec<u64> = self.active.lock().await.iter().map(|a| a.id).collect();
        for id in ids {
            if let Err(e) = self.heal_id(id).await {
                errors.push(format!("{e:#}"));
            }
        }
        let mut spans = std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()));
        spans.sort_by_key(|s| s.start_ms);
        (spans, errors)
    }

    async fn inject(&self, id: u64, kind: &FaultKind) -> anyhow::Result<(String, String, Undo)> {
        let w = &self.world;
        Ok(match kind {
            FaultKind::Partition { node, direction } => {
                let table = format!("nodekit-fault-{id}");
                let cp = w.world.host("cp")?.ip();
                let (out, inp) = match direction {
                    Direction::Both => (true, true),
                    Direction::ToApiServer => (true, false),
                    Direction::FromApiServer => (false, true),
                };
                let mut rules = format!("table ip {table} {{\n");
                if out {
                    rules += &format!(" chain out {{ type filter hook output priority -300; ip daddr {cp} drop; }}\n");
                }
                if inp {
                    rules += &format!(" chain in {{ type filter hook input priority -300; ip saddr {cp} drop; }}\n");
                }
                rules += "}\n";
                w.world.host(node)?.nft(&rules).await?;
                let arrow = match direction {
                    Direction::Both => "from",
                    Direction::ToApiServer => "(its requests) from",
                    Direction::FromApiServer => "(the answers) from",
                };
                (format!("partition {node} {arrow} the API server"), node.clone(), Undo::NftTable { host: node.clone(), table })
            }
            FaultKind::Stop { node, component } => self.stop(node, *component).await?,
            FaultKind::Kill { node, component } => self.kill(node, *component).await?,
            FaultKind::Restart { node, component } => {
                self.restart(node, *component).await?;
                (format!("restart the {} of {node}", component.as_str()), node.clone(), Undo::Nothing)
            }
            FaultKind::ApiServer(a) => {
                let rule = api_rule(a);
                let rid = w.cp.handle().add_fault(rule);
                (describe_api(a), "API server".into(), Undo::ApiRule(rid))
            }
            FaultKind::DropWatches => {
                w.cp.handle().close_watches();
                ("drop every watch".into(), "API server".into(), Undo::Nothing)
            }
            FaultKind::Runtime { node, faults } => {
                self.write_runtime_faults(node, &fake_cri_faults(faults)).await?;
                (format!("fake-cri faults on {node}: {}", describe_runtime(faults)), node.clone(), Undo::RuntimeFaults { node: node.clone() })
            }
            FaultKind::Link(l) => self.link(id, l).await?,
            FaultKind::Pressure { node, resource } => {
                let name = format!("nodekit-pressure-{id}");
                let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(w.cp.client()?, PRESSURE_NAMESPACE);
                let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pressure_pod(&name, node, resource))?;
                pods.create(&kube::api::PostParams::default(), &pod).await.context("creating the pressure pod")?;
                let what = match resource {
                    PressureResource::Memory { mib } => format!("{mib} MiB of memory"),
                    PressureResource::Disk { mib } => format!("{mib} MiB of disk"),
                    PressureResource::Pids { count } => format!("{count} processes"),
                };
                (format!("pressure on {node}: pod kube-system/{name} holds {what}"), node.clone(), Undo::DeletePod { name })
            }
        })
    }

    async fn stop(&self, node: &str, c: Component) -> anyhow::Result<(String, String, Undo)> {
        let mut nodes = self.world.nodes.lock().await;
        let part = nodes.iter_mut().find(|n| n.name == node).with_context(|| format!("no node {node}"))?;
        match c {
            Component::Agent => part.agent.take().context("the agent is down already")?.stop().await?,
            Component::Proxy => part.proxy.take().context("the proxy is down already")?.stop().await?,
            Component::Runtime => part.runtime.take().context("the runtime is down already")?.stop().await?,
            Component::Node => bail!("stop takes agent, proxy or runtime; to take a whole node down use kill"),
        }
        Ok((format!("stop the {} of {node}", c.as_str()), node.to_string(), Undo::StartMissing { node: node.to_string() }))
    }

    async fn kill(&self, node: &str, c: Component) -> anyhow::Result<(String, String, Undo)> {
        let mut nodes = self.world.nodes.lock().await;
        let part = nodes.iter_mut().find(|n| n.name == node).with_context(|| format!("no node {node}"))?;
        let n = node.to_string();
        let undo = match c {
            Component::Agent => {
                part.agent.as_mut().context("the agent is down")?.process().kill().await?;
                Undo::Restart { node: n.clone(), component: c }
            }
            Component::Proxy => {
                part.proxy.as_mut().context("the proxy is down")?.process().kill().await?;
                Undo::Restart { node: n.clone(), component: c }
            }
            Component::Runtime => {
                let rt = part.runtime.as_mut().context("the runtime is down")?;
                if rt.fake_cri_process().is_none() {
                    bail!("killing and restarting containerd in place is not supported; stop it instead");
                }
                rt.kill().await?;
                Undo::Restart { node: n.clone(), component: c }
            }
            Component::Node => {
                if let Some(p) = part.proxy.as_mut() {
                    p.process().kill().await?;
                }
                if let Some(a) = part.agent.as_mut() {
                    a.process().kill().await?;
                }
                if let Some(r) = part.runtime.as_mut() {
                    r.kill().await?;
                }
                self.world.world.disconnect(node).await?;
                Undo::Reconnect { host: n.clone() }
            }
        };
        let text = match c {
            Component::Node => format!("kill {node}: agent, proxy and runtime SIGKILLed, off the network"),
            c => format!("kill the {} of {node}", c.as_str()),
        };
        Ok((text, n, undo))
    }

    async fn restart(&self, node: &str, c: Component) -> anyhow::Result<()> {
        let mut nodes = self.world.nodes.lock().await;
        let part = nodes.iter_mut().find(|n| n.name == node).with_context(|| format!("no node {node}"))?;
        match c {
            Component::Agent => part.agent.as_mut().context("the agent is down")?.process().restart().await?,
            Component::Proxy => part.proxy.as_mut().context("the proxy is down")?.process().restart().await?,
            Component::Runtime => part
                .runtime
                .as_mut()
                .and_then(|r| r.fake_cri_process())
                .context("only fake-cri can be restarted in place")?
                .restart()
                .await?,
            Component::Node => bail!("restart takes agent, proxy or runtime"),
        }
        Ok(())
    }

    async fn write_runtime_faults(&self, node: &str, json: &serde_json::Value) -> anyhow::Result<()> {
        let nodes = self.world.nodes.lock().await;
        let part = nodes.iter().find(|n| n.name == node).with_context(|| format!("no node {node}"))?;
        let dir = part.runtime.as_ref().and_then(|r| r.state_dir()).context("runtime faults need fake-cri")?;
        std::fs::write(dir.join("faults.json"), serde_json::to_vec(json)?)?;
        Ok(())
    }

    async fn link(&self, id: u64, l: &LinkFault) -> anyhow::Result<(String, String, Undo)> {
        let (a, b) = &l.between;
        let target = format!("{a}, {b}");
        if l.down {
            self.world.world.disconnect(a).await?;
            return Ok((format!("link of {a} down"), target, Undo::Reconnect { host: a.clone() }));
        }
        if l.delay.is_some() {
            bail!("link delay needs netem, which this kernel does not have (CONFIG_NET_SCH_NETEM is not set)");
        }
        let loss = l.loss.unwrap_or(0.0).clamp(0.0, 100.0);
        let ip_a = self.world.world.host(a)?.ip();
        let ip_b = self.world.world.host(b)?.ip();
        // numgen random mod 10000 < loss*100: drop that share of packets, both ways.
        let threshold = (loss * 100.0).round() as u32;
        // numgen's values are 0..=9999: total loss is a plain drop.
        let share = if threshold >= 10_000 { String::new() } else { format!("numgen random mod 10000 < {threshold} ") };
        let table = format!("nodekit-fault-{id}");
        let rules = format!(
            "table ip {table} {{\n chain out {{ type filter hook output priority -300; ip daddr {ip_b} {share}drop; }}\n \
             chain in {{ type filter hook input priority -300; ip saddr {ip_b} {share}drop; }}\n}}\n"
        );
        self.world.world.host(a)?.nft(&rules).await?;
        let _ = ip_a;
        Ok((format!("{loss}% packet loss between {a} and {b}"), target, Undo::NftTable { host: a.clone(), table }))
    }

    async fn undo(&self, undo: &Undo) -> anyhow::Result<()> {
        let w = &self.world;
        match undo {
            Undo::NftTable { host, table } => w.world.host(host)?.nft(&format!("delete table ip {table}\n")).await?,
            Undo::StartMissing { node } => w.start_missing(node).await?,
            Undo::Restart { node, component } => self.restart(node, *component).await?,
            Undo::Reconnect { host } => w.world.reconnect(host).await?,
            Undo::ApiRule(id) => {
                w.cp.handle().remove_fault(*id);
            }
            Undo::RuntimeFaults { node } => self.write_runtime_faults(node, &serde_json::json!({})).await?,
            Undo::DeletePod { name } => {
                let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(w.cp.client()?, PRESSURE_NAMESPACE);
                match pods.delete(name, &kube::api::DeleteParams::default().grace_period(0)).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e).context("deleting the pressure pod"),
                }
                let deadline = Instant::now() + std::time::Duration::from_secs(30);
                while pods.get_opt(name).await?.is_some() {
                    if Instant::now() > deadline {
                        bail!("the pressure pod {name} was still there 30 s after its deletion");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
            Undo::Nothing => {}
        }
        Ok(())
    }
}

/// Where pressure pods run.
const PRESSURE_NAMESPACE: &str = "kube-system";

/// The pod behind a pressure fault: pinned to `node`, with the priority upstream's admission
/// gives `system-node-critical` (critical pods are never evicted), running the workload that
/// uses the resource.
fn pressure_pod(name: &str, node: &str, r: &PressureResource) -> serde_json::Value {
    let args: Vec<String> = match r {
        PressureResource::Memory { mib } => vec!["alloc-memory".into(), "--mib".into(), mib.to_string()],
        PressureResource::Disk { mib } => vec!["fill-disk".into(), "--path".into(), "/pressure".into(), "--mib".into(), mib.to_string()],
        PressureResource::Pids { count } => vec!["fork-processes".into(), "--count".into(), count.to_string()],
    };
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": PRESSURE_NAMESPACE, "labels": {"nodekit.dev/fault": "pressure"}},
        "spec": {
            "nodeName": node,
            "priorityClassName": "system-node-critical",
            "priority": 2_000_001_000,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "pressure", "image": "nodekit.local/workload:1.0", "args": args}],
        },
    })
}

fn api_rule(a: &ApiServerFault) -> fake_apiserver::FaultRule {
    fake_apiserver::FaultRule {
        verb: a.verb.clone(),
        resource: a.resource.clone(),
        latency_ms: a.latency.map(|d| d.as_millis() as u64),
        error_code: a.code,
        error_message: a.message.clone(),
        times: a.times,
        ..Default::default()
    }
}

fn describe_api(a: &ApiServerFault) -> String {
    let what = format!("{} {}", a.verb.as_deref().unwrap_or("every verb on"), a.resource.as_deref().unwrap_or("every resource"));
    let mut effects = Vec::new();
    if let Some(c) = a.code {
        effects.push(format!("answer {c}"));
    }
    if let Some(l) = a.latency {
        effects.push(format!("{} latency", scenario::duration::format(l)));
    }
    let times = a.times.map(|t| format!(" for {t} requests")).unwrap_or_default();
    format!("API server: {} to {what}{times}", effects.join(" and "))
}

fn fake_cri_faults(f: &RuntimeFaults) -> serde_json::Value {
    let ms = |m: &std::collections::BTreeMap<String, std::time::Duration>| -> serde_json::Map<String, serde_json::Value> {
        m.iter().map(|(k, v)| (k.clone(), serde_json::json!(v.as_millis() as u64))).collect()
    };
    serde_json::json!({
        "rpc_latency_ms": f.latency.map(|d| d.as_millis() as u64).unwrap_or(0),
        "runtime_not_ready": f.not_ready,
        "pull_error": f.pull_error,
        "sandbox_error": f.sandbox_error,
        "create_error": f.create_error,
        "crash_after_ms": ms(&f.crash_after),
    })
}

fn describe_runtime(f: &RuntimeFaults) -> String {
    let mut parts = Vec::new();
    for (what, m) in [("pull error", &f.pull_error), ("create error", &f.create_error), ("sandbox error", &f.sandbox_error)] {
        for (k, v) in m {
            parts.push(format!("{what} for {k} ({v})"));
        }
    }
    for (k, d) in &f.crash_after {
        parts.push(format!("{k} crashes after {}", scenario::duration::format(*d)));
    }
    if let Some(m) = &f.not_ready {
        parts.push(format!("not ready ({m})"));
    }
    if let Some(l) = f.latency {
        parts.push(format!("{} per call", scenario::duration::format(l)));
    }
    parts.join(", ")
}

/// Whether this kernel has netem (link delay): `/proc/config.gz` says so, or cannot be read.
pub fn netem_available() -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::File::open("/proc/config.gz") else { return true };
    let mut text = String::new();
    if flate2::read::GzDecoder::new(f).read_to_string(&mut text).is_err() {
        return true;
    }
    text.lines().any(|l| l == "CONFIG_NET_SCH_NETEM=y" || l == "CONFIG_NET_SCH_NETEM=m")
}
