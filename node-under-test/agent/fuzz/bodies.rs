//! The bodies of the node-agent fuzz targets, shared by `fuzz_targets/*.rs` (libFuzzer) and
//! `tests/fuzz_smoke.rs` (stable, deterministic). Each takes arbitrary bytes (a file an
//! operator or a scenario wrote) and must return, never panic.
#![allow(dead_code)]

use std::path::Path;

use node_agent::config;
use node_agent::static_pods::manifest;

/// `config::parse_config` of a KubeletConfiguration (and the helpers that read the same text).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match config::parse_config(&text, Path::new("/etc/nodekit/kubelet-config.yaml")) {
        Ok(cfg) => {
            let _ = serde_json::to_string(&cfg);
            // The agent derives its lease timing from the parsed values.
            let settings = config::AgentSettings {
                node_name: "node-a".into(),
                node_ip: None,
                pod_cidr: cfg.pod_cidr.clone(),
                root_dir: "/var/lib/nodekit".into(),
                runtime_endpoint: "unix:///run/nodekit/cri.sock".into(),
                kubelet: cfg,
            };
            let _ = settings.lease_renew_interval();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = config::ignored_fields_in(&text);
    if let Ok(d) = config::parse_go_duration(&text) {
        let _ = config::format_go_duration(d);
    }
}

/// `manifest::parse_documents` of one static pod manifest file, then `manifest::prepare` of
/// every pod in it, as the directory source does.
pub fn static_pod(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/etc/kubernetes/manifests/fuzz.yaml");
    match manifest::parse_documents(path, &text) {
        Ok(pods) => {
            for pod in pods {
                if let Ok(pod) = manifest::prepare(pod, "node-A", path, "2026-01-01T00:00:00Z") {
                    let _ = node_agent::static_pods::full_name(&pod);
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
