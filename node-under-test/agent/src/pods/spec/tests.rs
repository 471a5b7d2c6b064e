//! Tests of the Pod → CRI translation.

use super::*;

fn pod(yaml_json: serde_json::Value) -> Pod {
    serde_json::from_value(yaml_json).unwrap()
}

fn ctx() -> SpecContext {
    SpecContext {
        root_dir: "/var/lib/agent".into(),
        node_name: "node-a".into(),
        node_ip: Some("10.77.0.11".into()),
        cluster_dns: vec!["10.96.0.10".into()],
        cluster_domain: Some("cluster.local".into()),
        host_dns: parse_resolv_conf("nameserver 1.1.1.1\nsearch example.org\n"),
        cgroup_root: "/nodekit-w1".into(),
    }
}

#[test]
fn cgroup_parent_follows_qos_like_cgroupfs() {
    let mk = |res: serde_json::Value| {
        pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n", "uid": "u-1"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": res}]}}))
    };
    let be = mk(serde_json::json!({}));
    let bu = mk(serde_json::json!({"requests": {"memory": "10Mi"}}));
    let gu = mk(serde_json::json!({"requests": {"memory": "10Mi", "cpu": "1"}, "limits": {"memory": "10Mi", "cpu": "1"}}));
    assert_eq!(pod_cgroup_parent(&be, "/nodekit-w1"), "/nodekit-w1/kubepods/besteffort/podu-1");
    assert_eq!(pod_cgroup_parent(&bu, "/nodekit-w1/"), "/nodekit-w1/kubepods/burstable/podu-1");
    assert_eq!(pod_cgroup_parent(&gu, ""), "/kubepods/podu-1");
    assert_eq!(sandbox_config(&be, &ctx(), 0).linux.unwrap().cgroup_parent, "/nodekit-w1/kubepods/besteffort/podu-1");
}

fn sample() -> Pod {
    pod(serde_json::json!({
        "metadata": {"name": "web", "namespace": "ns1", "uid": "u-1", "labels": {"app": "w"}},
        "spec": {
            "containers": [{
                "name": "c",
                "image": "workload",
                "command": ["/workload"],
                "args": ["serve", "--name=$(MY_POD)", "$$(KEEP)"],
                "env": [
                    {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "X", "value": "pod-$(MY_POD)"}
                ],
                "ports": [{"containerPort": 8080}],
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}},
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}, {"name": "cm", "mountPath": "/cm"}]
            }],
            "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "cm", "configMap": {"name": "x"}}]
        }
    }))
}

#[test]
fn sandbox_has_labels_hostname_dns_and_log_dir() {
    let p = sample();
    let cfg = sandbox_config(&p, &ctx(), 2);
    let md = cfg.metadata.unwrap();
    assert_eq!((md.name.as_str(), md.namespace.as_str(), md.uid.as_str(), md.attempt), ("web", "ns1", "u-1", 2));
    assert_eq!(cfg.hostname, "web");
    assert_eq!(cfg.log_directory, "/var/lib/agent/pods/ns1_web_u-1");
    assert_eq!(cfg.labels[keys::POD_UID], "u-1");
    assert_eq!(cfg.labels[keys::POD_NAME], "web");
    assert_eq!(cfg.labels[keys::POD_NAMESPACE], "ns1");
    let dns = cfg.dns_config.unwrap();
    assert_eq!(dns.servers, ["10.96.0.10"]);
    assert_eq!(dns.searches, ["ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.org"]);
    assert_eq!(dns.options, ["ndots:5"]);
    assert_eq!(cfg.port_mappings.len(), 1);
}

#[test]
fn container_env_command_resources_mounts() {
    let p = sample();
    let c = &p.spec.as_ref().unwrap().containers[0];
    let cfg = container_config(&p, c, 3, Some("10.244.1.5"), &ctx(), false, &EnvInputs::default()).unwrap();
    let env: Vec<(String, String)> = cfg.envs.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect();
    assert_eq!(
        env,
        [("MY_POD", "web"), ("IP", "10.244.1.5"), ("APP", "w"), ("MEM", "64"), ("X", "pod-web")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(cfg.args, ["serve", "--name=web", "$(KEEP)"]);
    let r = cfg.linux.unwrap().resources.unwrap();
    assert_eq!(r.memory_limit_in_bytes, 64 << 20);
    assert_eq!(r.cpu_shares, 256);
    assert_eq!((r.cpu_quota, r.cpu_period), (50_000, 100_000));
    assert_eq!(cfg.mounts.len(), 3, "{:?}", cfg.mounts);
    assert_eq!(cfg.mounts[0].host_path, "/var/lib/agent/pods/u-1/volumes/kubernetes.io~empty-dir/scratch");
    assert!(!cfg.mounts[0].readonly);
    // configMap (and secret) volumes are always mounted read-only.
    assert_eq!(cfg.mounts[1].host_path, "/var/lib/agent/pods/u-1/volumes/kubernetes.io~configmap/cm");
    assert!(cfg.mounts[1].readonly);
    // The pod has an IP: the kubelet-managed /etc/hosts.
    assert_eq!((cfg.mounts[2].container_path.as_str(), cfg.mounts[2].host_path.as_str()), ("/etc/hosts", "/var/lib/agent/pods/u-1/etc-hosts"));
    assert_eq!(cfg.annotations[keys::RESTART_COUNT], "3");
    assert_eq!(cfg.metadata.unwrap().attempt, 3);
    assert_eq!(cfg.labels[keys::CONTAINER_NAME], "c");
    assert_eq!(cfg.log_path, "c/3.log");
}

#[test]
fn env_from_objects_and_key_refs() {
    let p = pod(serde_json::json!({
        "metadata": {"name": "a", "namespace": "n", "uid": "u"},
        "spec": {"containers": [{"name": "c", "image": "i",
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "gone", "optional": true}}],
            "env": [
                {"name": "CM_a", "value": "overridden"},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope", "optional": true}}},
                {"name": "BOTH", "value": "$(S)-$(CM_b)"},
            ]}]}
    }));
    let c = &p.spec.as_ref().unwrap().containers[0];
    assert_eq!(env_object_refs(c), [(false, "cm".to_string()), (true, "gone".to_string()), (true, "s".to_string())]);
    let keys = |kv: &[(&str, &str)]| Some(kv.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect());
    let objects = EnvObjects::from([
        ((false, "cm".to_string()), keys(&[("a", "1"), ("b", "2")])),
        ((true, "gone".to_string()), None),
        ((true, "s".to_string()), keys(&[("k", "secret")])),
    ]);
    let env = container_env(&p, c, None, &ctx(), &EnvInputs { objects: objects.clone(), ..Default::default() }).unwrap();
    let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!((get("CM_a"), get("CM_b"), get("S"), get("MAYBE"), get("BOTH")), (Some("overridden"), Some("2"), Some("secret"), None, Some("secret-2")));
    assert_eq!(env.iter().filter(|(k, _)| k == "CM_a").count(), 1, "a later name replaces an earlier one");
    // A missing key or object that is not optional is an error that names it.
    let mut missing = objects.clone();
    missing.insert((true, "s".to_string()), keys(&[]));
    assert_eq!(container_env(&p, c, None, &ctx(), &EnvInputs { objects: missing.clone(), ..Default::default() }).unwrap_err().0, "couldn't find key k in Secret n/s");
    missing.insert((false, "cm".to_string()), None);
    assert_eq!(container_env(&p, c, None, &ctx(), &EnvInputs { objects: missing.clone(), ..Default::default() }).unwrap_err().0, "configmap \"cm\" not found");
}

#[test]
fn dns_default_policy_uses_host() {
    let mut p = sample();
    p.spec.as_mut().unwrap().dns_policy = Some("Default".into());
    let dns = sandbox_config(&p, &ctx(), 0).dns_config.unwrap();
    assert_eq!(dns.servers, ["1.1.1.1"]);
}

#[test]
fn termination_message_mount_and_reading() {
    let mut p = sample();
    p.spec.as_mut().unwrap().containers[0].termination_message_path = Some("/dev/termination-log".into());
    let c = &p.spec.as_ref().unwrap().containers[0];
    let cfg = container_config(&p, c, 2, None, &ctx(), false, &EnvInputs::default()).unwrap();
    let m = cfg.mounts.iter().find(|m| m.container_path == "/dev/termination-log").unwrap();
    assert_eq!(m.host_path, "/var/lib/agent/pods/u-1/containers/c/2");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg");
    let log = dir.path().join("0.log");
    std::fs::write(&file, "bye").unwrap();
    assert_eq!(read_termination_message(&file, None, true, &log).as_deref(), Some("bye"));
    std::fs::write(&file, "").unwrap();
    std::fs::write(&log, "2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:01Z stderr F two words\n").unwrap();
    assert_eq!(read_termination_message(&file, Some("File"), true, &log), None);
    assert_eq!(read_termination_message(&file, Some("FallbackToLogsOnError"), false, &log), None);
    assert_eq!(
        read_termination_message(&file, Some("FallbackToLogsOnError"), true, &log).as_deref(),
        Some("one\ntwo words")
    );
}

#[test]
fn unsupported_mounts_are_named_with_their_type() {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "containers": [{"name": "c", "volumeMounts": [
                {"name": "scratch", "mountPath": "/s"},
                {"name": "cfg", "mountPath": "/cfg"},
                {"name": "missing", "mountPath": "/m"},
            ]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "nfs": {"server": "s", "path": "/"}}],
        }
    }))
    .unwrap();
    let c = &pod.spec.as_ref().unwrap().containers[0];
    let got = unsupported_mounts(&pod, c);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "cfg");
    assert!(got[0].1.starts_with("nfs volumes are not supported"), "{got:?}");
    assert_eq!(got[1], ("missing".to_string(), "the pod has no such volume".to_string()));
}

/// Catches service variables that override a container's own (also in `$(VAR)`), that
/// `$(VAR)` cannot see, or that are left out.
#[test]
fn service_variables_come_last_and_expand() {
    let p = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n", "uid": "u"}, "spec": {"containers": [{
        "name": "c",
        "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "mine"}, {"name": "URL", "value": "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/"}, {"name": "SEEN", "value": "$(KUBERNETES_SERVICE_HOST)"}],
    }]}}));
    let c = &p.spec.as_ref().unwrap().containers[0];
    let services: BTreeMap<String, String> =
        [("KUBERNETES_SERVICE_HOST", "10.96.0.1"), ("WEB_SERVICE_HOST", "10.96.0.20"), ("WEB_SERVICE_PORT", "80")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let env = container_env(&p, c, None, &ctx(), &EnvInputs { services, ..Default::default() }).unwrap();
    let get = |n: &str| env.iter().filter(|(k, _)| k == n).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(get("KUBERNETES_SERVICE_HOST"), ["mine"]);
    assert_eq!(get("URL"), ["http://10.96.0.20:80/"]);
    assert_eq!(get("SEEN"), ["mine"], "a variable the container set wins over the service one in $(VAR)");
    assert_eq!(get("WEB_SERVICE_HOST"), ["10.96.0.20"]);
}
