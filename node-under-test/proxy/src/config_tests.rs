//! Unit tests of configuration parsing and merging.

use super::*;

fn args(extra: &[&str]) -> Args {
    let mut v = vec!["node-proxy", "--hostname-override", "Node-A"];
    v.extend_from_slice(extra);
    Args::parse_from(v)
}

#[test]
fn durations_parse_like_go() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    assert!(parse_duration("30").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("3x").is_err());
}

#[test]
fn defaults_match_upstream() {
    let c = ProxyConfig::merge(&args(&[]), &KubeProxyConfiguration::default()).unwrap();
    assert_eq!(c.mode, Mode::Nftables);
    assert_eq!(c.hostname, "node-a");
    assert_eq!(c.sync_period, Duration::from_secs(30));
    assert_eq!(c.min_sync_period, Duration::from_secs(1));
    assert_eq!(c.node_port_addresses, NodePortAddresses::All);
    assert_eq!(c.metrics_bind, Some("127.0.0.1:10249".parse().unwrap()));
    assert_eq!(c.healthz_bind, Some("0.0.0.0:10256".parse().unwrap()));
    assert_eq!(c.detect_local, DetectLocalMode::ClusterCidr);
    assert_eq!(c.cluster_cidr, None);
}

#[test]
fn file_fields_apply_and_flags_override() {
    let yaml = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
kind: KubeProxyConfiguration\n\
mode: iptables\n\
clusterCIDR: 10.244.0.0/16\n\
nodePortAddresses: [primary, 10.77.0.0/24]\n\
syncPeriod: 10s\n\
minSyncPeriod: 200ms\n\
masqueradeAll: true\n\
detectLocalMode: BridgeInterface\n\
detectLocal:\n  bridgeInterface: cbr0\n\
conntrack:\n  tcpEstablishedTimeout: 1h\n  udpTimeout: 30s\n";
    let file = KubeProxyConfiguration::parse(yaml, Path::new("c.yaml")).unwrap();
    let c = ProxyConfig::merge(&args(&[]), &file).unwrap();
    assert_eq!(c.mode, Mode::Iptables);
    assert_eq!(c.cluster_cidr, Some("10.244.0.0/16".parse().unwrap()));
    assert_eq!(
        c.node_port_addresses,
        NodePortAddresses::Cidrs { primary: true, cidrs: vec!["10.77.0.0/24".parse().unwrap()] }
    );
    assert_eq!(c.sync_period, Duration::from_secs(10));
    assert_eq!(c.min_sync_period, Duration::from_millis(200));
    assert!(c.masquerade_all);
    assert_eq!(c.detect_local, DetectLocalMode::BridgeInterface("cbr0".into()));
    assert_eq!(c.conntrack.tcp_established_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(c.conntrack.udp_timeout, Some(Duration::from_secs(30)));

    let c = ProxyConfig::merge(
        &args(&["--proxy-mode", "nftables", "--sync-period", "5s", "--masquerade-all", "false", "--cluster-cidr", "10.0.0.0/8"]),
        &file,
    )
    .unwrap();
    assert_eq!(c.mode, Mode::Nftables);
    assert_eq!(c.sync_period, Duration::from_secs(5));
    assert!(!c.masquerade_all);
    assert_eq!(c.cluster_cidr, Some("10.0.0.0/8".parse().unwrap()));
}

#[test]
fn unknown_fields_are_errors_naming_the_field() {
    let err = KubeProxyConfiguration::parse("mode: nftables\nbogusField: 1\n", Path::new("c.yaml")).unwrap_err();
    assert!(err.to_string().contains("bogusField"), "{err}");
    let err = KubeProxyConfiguration::parse("conntrack:\n  maxPerCorez: 1\n", Path::new("c.yaml")).unwrap_err();
    assert!(err.to_string().contains("maxPerCorez"), "{err}");
    let err = KubeProxyConfiguration::parse("kind: KubeletConfiguration\n", Path::new("c.yaml")).unwrap_err();
    assert!(err.to_string().contains("KubeletConfiguration"), "{err}");
}

#[test]
fn invalid_values_are_rejected() {
    let bad = |yaml: &str| {
        let f = KubeProxyConfiguration::parse(yaml, Path::new("c.yaml")).unwrap();
        ProxyConfig::merge(&args(&[]), &f).unwrap_err().to_string()
    };
    assert!(bad("mode: ipvs\n").contains("ipvs"));
    assert!(bad("clusterCIDR: 10.0.0.0/40\n").contains("prefix"));
    assert!(bad("detectLocalMode: BridgeInterface\n").contains("bridgeInterface"));
    assert!(bad("syncPeriod: 0s\n").contains("syncPeriod"));
}

#[test]
fn config_file_is_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kp.yaml");
    std::fs::write(&p, "mode: iptables\nmetricsBindAddress: 127.0.0.1:0\n").unwrap();
    let mut a = args(&[]);
    a.config = Some(p);
    let c = ProxyConfig::resolve(&a).unwrap();
    assert_eq!(c.mode, Mode::Iptables);
    assert_eq!(c.metrics_bind, Some("127.0.0.1:0".parse().unwrap()));
}
