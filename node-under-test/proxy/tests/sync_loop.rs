//! The sync loop, driven through its cache (no API server): it programs the kernel of a fresh
//! network namespace, follows changes, reports metrics, and turns /healthz unhealthy when
//! syncs keep failing. Timing is compressed (syncPeriod 200 ms).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::sh;
use node_proxy::config::{Args, KubeProxyConfiguration, ProxyConfig};
use node_proxy::exec::Tools;
use node_proxy::metrics::Metrics;
use node_proxy::model::{EndpointIn, Protocol, ServiceIn, ServicePortIn, SliceIn, SlicePortIn};
use node_proxy::netns::in_fresh_netns;
use node_proxy::run::sync_loop;
use node_proxy::watch::Shared;
use tokio_util::sync::CancellationToken;

fn cfg() -> ProxyConfig {
    use clap::Parser;
    let args = Args::parse_from([
        "node-proxy",
        "--hostname-override",
        "node-a",
        "--sync-period",
        "200ms",
        "--min-sync-period",
        "20ms",
        "--cluster-cidr",
        "10.244.0.0/16",
    ]);
    ProxyConfig::merge(&args, &KubeProxyConfiguration::default()).unwrap()
}

fn service() -> ServiceIn {
    ServiceIn {
        namespace: "ns".into(),
        name: "web".into(),
        cluster_ip: Some("10.96.0.10".parse().unwrap()),
        ports: vec![ServicePortIn { name: "http".into(), protocol: Protocol::Tcp, port: 80, node_port: None }],
        external_ips: vec![],
        load_balancer_ips: vec![],
        node_port_type: false,
        internal_traffic_local: false,
        external_traffic_local: false,
        affinity_timeout: None,
    }
}

fn slice(ip: &str) -> SliceIn {
    SliceIn {
        namespace: "ns".into(),
        name: "web-1".into(),
        service: "web".into(),
        ports: vec![SlicePortIn { name: "http".into(), protocol: Protocol::Tcp, port: 8080 }],
        endpoints: vec![EndpointIn {
            ip: ip.parse().unwrap(),
            ready: true,
            serving: true,
            terminating: false,
            node_name: Some("node-b".into()),
        }],
    }
}

/// Polls `cond` every 10 ms until it holds or 10 s pass.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn table() -> String {
    let out = std::process::Command::new("nft").args(["list", "table", "ip", "kube-proxy"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn metric(m: &Metrics, name: &str) -> f64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.parse().ok()))
        .unwrap_or(-1.0)
}

#[test]
fn follows_changes_and_resyncs_periodically() {
    in_fresh_netns(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let cfg = cfg();
            let shared = Arc::new(Shared::default());
            {
                let mut c = shared.lock();
                c.upsert_service(service());
                c.upsert_slice(slice("10.244.2.5"));
                c.mark_all_synced();
            }
            shared.notify.notify_one();
            let metrics = Arc::new(Metrics::new(cfg.mode, cfg.sync_period * 2));
            let cancel = CancellationToken::new();
            let task = {
                let (cfg, shared, metrics, cancel) = (cfg.clone(), shared.clone(), metrics.clone(), cancel.clone());
                tokio::spawn(async move { sync_loop(&cfg, Tools::default(), shared, metrics, cancel).await })
            };
            wait_for("first sync", || table().contains("10.96.0.10 . tcp . 80 . 0 : 10.244.2.5 . 8080")).await;
            wait_for("metrics", || metric(&metrics, "kubeproxy_sync_proxy_rules_service_ports") == 1.0).await;

            // An endpoint change is applied by a partial sync.
            shared.lock().upsert_slice(slice("10.244.2.6"));
            shared.notify.notify_one();
            wait_for("endpoint change", || table().contains("10.244.2.6 . 8080")).await;
            assert!(!table().contains("10.244.2.5 . 8080"));

            // Periodic full resyncs keep happening without changes (syncPeriod 200 ms).
            let before = metric(&metrics, "kubeproxy_sync_full_proxy_rules_duration_seconds_count");
            wait_for("two more full syncs", || {
                metric(&metrics, "kubeproxy_sync_full_proxy_rules_duration_seconds_count") >= before + 2.0
            })
            .await;
            assert!(metrics.health().healthy);

            // Removing the service removes its elements.
            shared.lock().remove_service(&("ns".into(), "web".into()));
            shared.notify.notify_one();
            wait_for("service removal", || !table().contains("10.96.0.10")).await;

            cancel.cancel();
            task.await.unwrap().unwrap();
        });
    })
    .unwrap();
}

#[test]
fn failing_syncs_are_retried_counted_and_make_healthz_fail() {
    in_fresh_netns(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let cfg = cfg();
            let shared = Arc::new(Shared::default());
            {
                let mut c = shared.lock();
                c.upsert_service(service());
                c.mark_all_synced();
            }
            shared.notify.notify_one();
            let metrics = Arc::new(Metrics::new(cfg.mode, cfg.sync_period * 2));
            let cancel = CancellationToken::new();
            let tools = Tools { nft: "false".into(), ..Tools::default() };
            let task = {
                let (cfg, shared, metrics, cancel) = (cfg.clone(), shared.clone(), metrics.clone(), cancel.clone());
                tokio::spawn(async move { sync_loop(&cfg, tools, shared, metrics, cancel).await })
            };
            wait_for("retries", || metrics.failures() >= 3).await;
            assert!(metrics.render().contains("kubeproxy_sync_proxy_rules_last_error_info{error=\"false -f - failed"));
            wait_for("unhealthy", || !metrics.health().healthy).await;
            cancel.cancel();
            task.await.unwrap().unwrap();
            assert!(!sh("nft list tables").contains("kube-proxy"));
        });
    })
    .unwrap();
}
