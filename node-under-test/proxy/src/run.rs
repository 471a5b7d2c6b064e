//! The daemon: client from the kubeconfig, watches, the rate-limited sync loop (minSyncPeriod
//! between syncs, a full resync every syncPeriod, retry on failure) and the HTTP endpoints.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{DetectLocalMode, NodePortAddresses, ProxyConfig};
use crate::convert::NodeInfo;
use crate::ctx::{Cidr, LocalDetect, RenderCtx};
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::exec::Tools;
use crate::metrics::Metrics;
use crate::model::{ServicePortName, State, service_ports};
use crate::watch::{self, Cache, Shared, SvcKey};

/// The desired state, maintained incrementally from the cache's dirty services.
#[derive(Debug, Default)]
pub struct Desired {
    pub state: State,
    ports_of: HashMap<SvcKey, Vec<ServicePortName>>,
}

impl Desired {
    /// Recomputes the dirty services; returns the service ports that may have changed.
    pub fn refresh(&mut self, cache: &mut Cache, node: &str) -> BTreeSet<ServicePortName> {
        let dirty: Vec<SvcKey> = cache.dirty.drain().collect();
        let mut touched = BTreeSet::new();
        for key in &dirty {
            for name in self.ports_of.remove(key).unwrap_or_default() {
                self.state.services.remove(&name);
                touched.insert(name);
            }
            if let Some(svc) = cache.services.get(key) {
                let slices = cache.slices_of(key);
                let ports = service_ports(svc, &slices, node);
                self.ports_of.insert(key.clone(), ports.iter().map(|p| p.name.clone()).collect());
                for p in ports {
                    touched.insert(p.name.clone());
                    self.state.services.insert(p.name.clone(), p);
                }
            }
        }
        touched
    }
}

/// The render settings for this configuration and node.
pub fn render_ctx(cfg: &ProxyConfig, node: &NodeInfo) -> RenderCtx {
    let local = match &cfg.detect_local {
        DetectLocalMode::ClusterCidr => cfg.cluster_cidr.map_or(LocalDetect::None, LocalDetect::Cidr),
        DetectLocalMode::NodeCidr => node
            .pod_cidr
            .as_deref()
            .and_then(|c| c.parse::<Cidr>().ok())
            .map_or(LocalDetect::None, LocalDetect::Cidr),
        DetectLocalMode::BridgeInterface(b) => LocalDetect::Bridge(b.clone()),
        DetectLocalMode::InterfaceNamePrefix(p) => LocalDetect::InterfacePrefix(p.clone()),
    };
    let node_port_cidrs = match &cfg.node_port_addresses {
        NodePortAddresses::All => None,
        NodePortAddresses::Cidrs { primary, cidrs } => {
            let mut v = cidrs.clone();
            if *primary && let Some(ip) = node.internal_ip {
                v.push(Cidr { addr: ip, len: 32 });
            }
            v.sort();
            v.dedup();
            Some(v)
        }
    };
    RenderCtx { local, masquerade_all: cfg.masquerade_all, node_port_cidrs }
}

/// Writes the configured conntrack sysctls of this network namespace.
fn apply_conntrack_sysctls(cfg: &ProxyConfig) {
    let c = &cfg.conntrack;
    let mut writes: Vec<(&str, String)> = Vec::new();
    if let Some(m) = c.max {
        writes.push(("nf_conntrack_max", m.to_string()));
    }
    let secs = |d: Duration| d.as_secs().to_string();
    if let Some(d) = c.tcp_established_timeout {
        writes.push(("nf_conntrack_tcp_timeout_established", secs(d)));
    }
    if let Some(d) = c.tcp_close_wait_timeout {
        writes.push(("nf_conntrack_tcp_timeout_close_wait", secs(d)));
    }
    if let Some(b) = c.tcp_be_liberal {
        writes.push(("nf_conntrack_tcp_be_liberal", u8::from(b).to_string()));
    }
    if let Some(d) = c.udp_timeout {
        writes.push(("nf_conntrack_udp_timeout", secs(d)));
    }
    if let Some(d) = c.udp_stream_timeout {
        writes.push(("nf_conntrack_udp_timeout_stream", secs(d)));
    }
    for (name, v) in writes {
        let path = format!("/proc/sys/net/netfilter/{name}");
        if let Err(e) = std::fs::write(&path, &v) {
            tracing::warn!(%path, value = %v, error = %e, "cannot set conntrack sysctl");
        }
    }
}

async fn client(cfg: &ProxyConfig) -> Result<Client> {
    let config = match &cfg.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?
        }
        None => kube::Config::infer().await.map_err(|e| Error::Kubeconfig(e.to_string()))?,
    };
    Client::try_from(config).map_err(Error::from)
}

/// Runs `--cleanup`: removes every rule of both modes.
pub async fn cleanup(tools: Tools) -> Result<()> {
    tokio::task::spawn_blocking(move || engine::cleanup(&tools))
        .await
        .map_err(|e| Error::Netns(format!("cleanup task: {e}")))?
}

/// Runs the proxy until `cancel`.
pub async fn run(cfg: ProxyConfig, tools: Tools, cancel: CancellationToken) -> Result<()> {
    if cfg.cleanup {
        return cleanup(tools).await;
    }
    let client = client(&cfg).await?;
    apply_conntrack_sysctls(&cfg);
    // Remove the other mode's rules, as upstream does when switching modes.
    {
        let t = tools.clone();
        let mode = cfg.mode;
        let res = tokio::task::spawn_blocking(move || match mode {
            crate::config::Mode::Nftables => engine::cleanup_iptables(&t),
            crate::config::Mode::Iptables => {
                crate::exec::run(&t.nft, &["-f", "-"], Some(&crate::nft::sync::cleanup_script())).map(|_| ())
            }
        })
        .await;
        if let Ok(Err(e)) = res {
            tracing::warn!(error = %e, "cleaning up the other mode's rules failed");
        }
    }
    let metrics = Arc::new(Metrics::new(cfg.mode, cfg.sync_period * 2));
    let mut tasks = JoinSet::new();
    for addr in [cfg.metrics_bind, cfg.healthz_bind].into_iter().flatten() {
        let bound = crate::server::serve(addr, metrics.clone(), cancel.clone(), &mut tasks).await?;
        tracing::info!(%bound, "serving /metrics and /healthz");
    }
    let shared = Arc::new(Shared::default());
    watch::spawn(client, &cfg.hostname, shared.clone(), cancel.clone(), &mut tasks);
    tracing::info!(node = %cfg.hostname, mode = ?cfg.mode, "node-proxy started");

    let result = sync_loop(&cfg, tools, shared, metrics, cancel.clone()).await;
    cancel.cancel();
    let stop = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if stop.is_err() {
        tasks.abort_all();
    }
    result
}

/// The sync loop over an already filled (or watched) cache: waits for the initial lists,
/// then syncs on changes (at most once per minSyncPeriod), fully every syncPeriod, and
/// retries failures with back-off (minSyncPeriod doubling, capped at syncPeriod).
pub async fn sync_loop(
    cfg: &ProxyConfig,
    tools: Tools,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<()> {
    // Wait for the initial lists.
    loop {
        if shared.lock().synced() && shared.lock().node_synced() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = shared.notify.notified() => {}
        }
    }
    let mut engine = Some(Engine::new(cfg.mode, tools));
    let mut desired = Some(Desired::default());
    let mut pending = true;
    let mut last_start: Option<Instant> = None;
    let mut next_full = Instant::now();
    let mut retry_at: Option<Instant> = None;
    let mut failures: u32 = 0;
    // Service ports changed since the last successful sync.
    let mut hint: Option<BTreeSet<ServicePortName>> = Some(BTreeSet::new());
    metrics.queued();
    loop {
        let now = Instant::now();
        let due = if pending {
            let rate = last_start.map_or(now, |t| t + cfg.min_sync_period);
            rate.max(retry_at.unwrap_or(now))
        } else {
            next_full
        };
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = shared.notify.notified() => {
                pending = true;
                metrics.queued();
                continue;
            }
            _ = tokio::time::sleep_until(due) => {}
        }
        let start = Instant::now();
        let full = start >= next_full;
        last_start = Some(start);
        let (Some(mut eng), Some(mut des)) = (engine.take(), desired.take()) else {
            return Err(Error::Netns("sync state lost".into()));
        };
        let sh = shared.clone();
        let node = cfg.hostname.clone();
        let cfg2 = cfg.clone();
        let mut h = hint.take().unwrap_or_default();
        let joined = tokio::task::spawn_blocking(move || {
            let ctx = {
                let mut c = sh.lock();
                h.extend(des.refresh(&mut c, &node));
                render_ctx(&cfg2, &c.node)
            };
            let r = eng.sync_hinted(&des.state, &ctx, full, Some(&h));
            let n = des.state.services.len();
            (eng, des, r, n, h)
        })
        .await;
        let (eng, des, res, n, h) = joined.map_err(|e| Error::Netns(format!("sync task: {e}")))?;
        hint = Some(if res.is_ok() { BTreeSet::new() } else { h });
        engine = Some(eng);
        desired = Some(des);
        match res {
            Ok(rep) => {
                for e in &rep.conntrack_errors {
                    tracing::warn!(error = %e, "conntrack cleanup failed");
                }
                tracing::debug!(full = rep.full, changed = rep.changed_services, took = ?rep.total_time, "synced proxy rules");
                metrics.synced(&rep, n);
                pending = false;
                retry_at = None;
                failures = 0;
                if rep.full {
                    next_full = start + cfg.sync_period;
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, failures, "syncing proxy rules failed; will retry");
                metrics.failed(&e.to_string());
                pending = true;
                let backoff = cfg.min_sync_period.max(Duration::from_millis(100)) * 2u32.saturating_pow(failures.min(5) - 1);
                retry_at = Some(Instant::now() + backoff.min(cfg.sync_period));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Args, KubeProxyConfiguration};
    use clap::Parser;

    fn cfg(yaml: &str) -> ProxyConfig {
        let file = KubeProxyConfiguration::parse(yaml, std::path::Path::new("t.yaml")).unwrap();
        ProxyConfig::merge(&Args::parse_from(["node-proxy", "--hostname-override", "n"]), &file).unwrap()
    }

    #[test]
    fn render_ctx_follows_detect_local_mode_and_primary_node_ip() {
        let node = NodeInfo { pod_cidr: Some("10.244.3.0/24".into()), internal_ip: Some("10.77.0.11".parse().unwrap()) };
        let c = render_ctx(&cfg("clusterCIDR: 10.244.0.0/16\n"), &node);
        assert_eq!(c.local, LocalDetect::Cidr("10.244.0.0/16".parse().unwrap()));
        assert_eq!(c.node_port_cidrs, None);
        let c = render_ctx(&cfg("detectLocalMode: NodeCIDR\nnodePortAddresses: [primary]\n"), &node);
        assert_eq!(c.local, LocalDetect::Cidr("10.244.3.0/24".parse().unwrap()));
        assert_eq!(c.node_port_cidrs, Some(vec!["10.77.0.11/32".parse().unwrap()]));
        let c = render_ctx(&cfg("detectLocalMode: NodeCIDR\n"), &NodeInfo::default());
        assert_eq!(c.local, LocalDetect::None, "no podCIDR yet: no detection");
        let c = render_ctx(&cfg("detectLocalMode: InterfaceNamePrefix\ndetectLocal: {interfaceNamePrefix: veth}\n"), &node);
        assert_eq!(c.local.nft_not_local().unwrap(), "iifname != \"veth*\"");
    }
}
