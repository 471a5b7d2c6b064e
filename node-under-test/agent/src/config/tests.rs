//! Tests of configuration parsing, defaults and errors.

use std::path::Path;
use std::time::Duration;

use super::*;

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn parse(body: &str) -> Result<KubeletConfiguration> {
    parse_config(&format!("{HEAD}{body}"), Path::new("test.yaml"))
}

#[test]
fn defaults_match_upstream() {
    let c = parse("").unwrap();
    assert_eq!(c.node_lease_duration_seconds, 40);
    assert_eq!(c.node_status_update_frequency.0, Duration::from_secs(10));
    assert_eq!(c.node_status_report_frequency.0, Duration::from_secs(300));
    assert_eq!(c.sync_frequency.0, Duration::from_secs(60));
    assert_eq!(c.file_check_frequency.0, Duration::from_secs(20));
    assert_eq!(c.max_pods, 110);
    assert_eq!(c.eviction_pressure_transition_period.0, Duration::from_secs(300));
    assert_eq!(c.eviction_hard.get("memory.available").map(String::as_str), Some("100Mi"));
    assert_eq!(c.eviction_hard.get("nodefs.available").map(String::as_str), Some("10%"));
    assert_eq!(c.eviction_hard.get("imagefs.available").map(String::as_str), Some("15%"));
    assert_eq!(c.eviction_hard.get("nodefs.inodesFree").map(String::as_str), Some("5%"));
    assert_eq!(c.nodekit.container_back_off_base.0, Duration::from_secs(10));
    assert_eq!(c.nodekit.container_back_off_max.0, Duration::from_secs(300));
    assert_eq!(c.nodekit.container_back_off_reset_after.0, Duration::from_secs(600));
    assert!((c.nodekit.node_lease_renew_interval_fraction - 0.25).abs() < 1e-9);
    assert!((c.nodekit.node_lease_renew_jitter - 0.04).abs() < 1e-9);
}

#[test]
fn overrides_and_extensions() {
    let c = parse(
        "nodeLeaseDurationSeconds: 4\nnodeStatusUpdateFrequency: 500ms\nnodeStatusReportFrequency: 1m30s\n\
         maxPods: 8\npodCIDR: 10.244.1.0/24\nstaticPodPath: /etc/kubernetes/manifests\n\
         evictionHard:\n  memory.available: 1Mi\n\
         nodekit:\n  containerBackOffBase: 200ms\n  containerBackOffMax: 1s\n  nodeLeaseRenewIntervalFraction: 0.5\n  \
         nodeSize:\n    cpu: \"2\"\n    memory: 1Gi\n",
    )
    .unwrap();
    assert_eq!(c.node_lease_duration_seconds, 4);
    assert_eq!(c.node_status_update_frequency.0, Duration::from_millis(500));
    assert_eq!(c.node_status_report_frequency.0, Duration::from_secs(90));
    assert_eq!(c.max_pods, 8);
    assert_eq!(c.pod_cidr.as_deref(), Some("10.244.1.0/24"));
    assert_eq!(c.eviction_hard.len(), 1, "a configured map replaces the defaults, as upstream");
    assert_eq!(c.nodekit.container_back_off_base.0, Duration::from_millis(200));
    assert_eq!(c.nodekit.node_size.memory.as_deref(), Some("1Gi"));
    assert_eq!(c.nodekit.kubelet_version, "v1.34.2-nodekit");
}

#[test]
fn unknown_field_is_named() {
    let err = parse("nodeLeaseDurationSecs: 4\n").unwrap_err().to_string();
    assert!(err.contains("unknown field `nodeLeaseDurationSecs`"), "{err}");
    assert!(!err.contains("expected one of"), "{err}");
    let err = parse("nodekit:\n  bogusKnob: 1\n").unwrap_err().to_string();
    assert!(err.contains("bogusKnob"), "{err}");
}

#[test]
fn ignored_upstream_fields_are_accepted() {
    let c = parse("cgroupDriver: systemd\nauthentication:\n  anonymous:\n    enabled: false\nfeatureGates:\n  Foo: true\n");
    assert!(c.is_ok(), "{c:?}");
    assert!(IGNORED_FIELDS.contains(&"cgroupDriver"));
}

#[test]
fn bad_values_are_refused() {
    assert!(parse("nodeStatusUpdateFrequency: 10\n").unwrap_err().to_string().contains("10"));
    assert!(parse("nodeLeaseDurationSeconds: 0\n").is_err());
    assert!(parse("nodekit:\n  nodeLeaseRenewIntervalFraction: 1.5\n").is_err());
    assert!(parse("nodekit:\n  nodeSize:\n    memory: lots\n").is_err());
    assert!(parse("nodeStatusUpdateFrequency: 1m\nnodeStatusReportFrequency: 10s\n").is_err());
    let e = parse_config("kind: KubeletConfiguration\n", Path::new("x")).unwrap_err();
    assert!(e.to_string().contains("apiVersion"), "{e}");
}

#[test]
fn renew_interval_is_fraction_of_duration() {
    let kubelet = parse("").unwrap();
    let s = AgentSettings {
        node_name: "n".into(),
        node_ip: None,
        pod_cidr: None,
        root_dir: "/tmp".into(),
        runtime_endpoint: "unix:///x".into(),
        kubelet,
    };
    assert_eq!(s.lease_renew_interval(), Duration::from_secs(10));
}

#[test]
fn kubelet_api_server_defaults_match_upstream() {
    let c = parse("").unwrap();
    assert!(c.enable_server);
    assert_eq!((c.address.as_str(), c.port), ("0.0.0.0", 10250));
    assert_eq!((c.tls_cert_file.as_deref(), c.tls_private_key_file.as_deref()), (None, None));
    assert!(!c.authentication.anonymous.enabled);
    assert!(c.authentication.webhook.enabled);
    assert_eq!(c.authentication.webhook.cache_ttl.0, Duration::from_secs(120));
    assert_eq!(c.authentication.x509.client_ca_file, None);
    assert_eq!(c.authorization.mode, "Webhook");
    assert_eq!(c.authorization.webhook.cache_authorized_ttl.0, Duration::from_secs(300));
    assert_eq!(c.authorization.webhook.cache_unauthorized_ttl.0, Duration::from_secs(30));
}

#[test]
fn kubelet_api_server_fields_parse() {
    let c = parse(
        "address: 127.0.0.1\nport: 0\ntlsCertFile: /c.pem\ntlsPrivateKeyFile: /k.pem\n\
         authentication:\n  x509:\n    clientCAFile: /ca.pem\n  anonymous:\n    enabled: true\n\
         authorization:\n  mode: AlwaysAllow\n",
    )
    .unwrap();
    assert_eq!((c.address.as_str(), c.port), ("127.0.0.1", 0));
    assert_eq!(c.tls_cert_file.as_deref(), Some("/c.pem"));
    assert_eq!(c.authentication.x509.client_ca_file.as_deref(), Some("/ca.pem"));
    assert!(c.authentication.anonymous.enabled);
    assert!(c.authentication.webhook.enabled, "an unset block keeps its defaults");
    assert_eq!(c.authorization.mode, "AlwaysAllow");
}

#[test]
fn kubelet_api_server_fields_are_validated() {
    let err = parse("authorization:\n  mode: RBAC\n").unwrap_err().to_string();
    assert!(err.contains("authorization.mode \"RBAC\""), "{err}");
    let err = parse("address: localhost\n").unwrap_err().to_string();
    assert!(err.contains("address \"localhost\" is not an IP address"), "{err}");
    let err = parse("tlsCertFile: /c.pem\n").unwrap_err().to_string();
    assert!(err.contains("tlsCertFile and tlsPrivateKeyFile"), "{err}");
    let err = parse("authentication:\n  x509:\n    clientCaFile: /ca.pem\n").unwrap_err().to_string();
    assert!(err.contains("unknown field `clientCaFile`"), "{err}");
}

#[test]
fn serializes_with_upstream_names_without_extensions() {
    let c = parse("port: 10250\nauthentication:\n  x509:\n    clientCAFile: /ca.pem\n").unwrap();
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["port"], 10250);
    assert_eq!(v["syncFrequency"], "1m0s");
    assert_eq!(v["authentication"]["x509"]["clientCAFile"], "/ca.pem");
    assert_eq!(v["authentication"]["webhook"]["cacheTTL"], "2m0s");
    assert_eq!(v["authorization"]["webhook"]["cacheAuthorizedTTL"], "5m0s");
    assert_eq!(v["evictionHard"]["memory.available"], "100Mi");
    for absent in ["nodekit", "apiVersion", "kind", "readOnlyPort", "api_version"] {
        assert!(v.get(absent).is_none(), "{absent} serialized: {v}");
    }
}

#[test]
fn ignored_fields_are_named() {
    let text = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\nmaxPods: 20\nfeatureGates:\n  X: true\n";
    let mut got = super::ignored_fields_in(text);
    got.sort();
    assert_eq!(got, ["cgroupDriver", "featureGates"]);
    assert!(super::ignored_fields_in("maxPods: 20\n").is_empty());
}

#[test]
fn change_detection_strategy_defaults_to_watch_and_takes_upstream_values_only() {
    assert_eq!(parse("").unwrap().config_map_and_secret_change_detection_strategy, ChangeDetectionStrategy::Watch);
    for (text, want) in [("Watch", ChangeDetectionStrategy::Watch), ("Cache", ChangeDetectionStrategy::Cache), ("Get", ChangeDetectionStrategy::Get)] {
        let c = parse(&format!("configMapAndSecretChangeDetectionStrategy: {text}\n")).unwrap();
        assert_eq!(c.config_map_and_secret_change_detection_strategy, want);
        assert_eq!(serde_json::to_value(&c).unwrap()["configMapAndSecretChangeDetectionStrategy"], text);
    }
    let err = parse("configMapAndSecretChangeDetectionStrategy: watch\n").unwrap_err().to_string();
    assert!(err.contains("test.yaml") && err.contains("watch") && err.contains("Watch"), "{err}");
}
