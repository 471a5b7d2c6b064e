use super::*;

fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

fn ctx(root: &Path) -> SpecContext {
    SpecContext { root_dir: root.to_path_buf(), cluster_domain: Some("cluster.local".into()), ..Default::default() }
}

fn alias(ip: &str, names: &[&str]) -> HostAlias {
    HostAlias { ip: ip.into(), hostnames: Some(names.iter().map(|n| n.to_string()).collect()) }
}

/// Catches a file that differs from upstream's by a byte: header, localhost lines, the pod's
/// line with and without a domain, the aliases one line per IP.
#[test]
fn managed_file_is_upstreams() {
    let without = managed_content(&["10.244.1.4"], "nginx", None, &[]);
    assert_eq!(
        without,
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.1.4\tnginx\n"
    );
    let with = managed_content(&["10.244.1.4"], "web", Some("sub.ns.svc.cluster.local"), &[alias("123.45.67.89", &["foo", "bar"]), alias("1.2.3.4", &["baz"])]);
    assert!(with.ends_with("fe00::2\tip6-allrouters\n10.244.1.4\tweb.sub.ns.svc.cluster.local\tweb\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n1.2.3.4\tbaz\n"), "{with}");
    assert_eq!(host_network_content("127.0.0.1 localhost\n", &[alias("1.2.3.4", &["a"])]), "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n\n# Entries added by HostAliases.\n1.2.3.4\ta\n");
}

/// Catches a hostname that ignores spec.hostname or the 63-character cut, a domain without
/// the namespace, and a FQDN used without setHostnameAsFQDN or accepted when too long.
#[test]
fn hostname_domain_and_fqdn() {
    let dir = tempfile::tempdir().unwrap();
    let cx = ctx(dir.path());
    let p = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [], "hostname": "h", "subdomain": "s"}}));
    assert_eq!(hostname(&p), "h");
    assert_eq!(domain(&p, &cx).as_deref(), Some("s.n.svc.cluster.local"));
    assert_eq!(kernel_hostname(&p, &cx).unwrap(), "h");
    let fqdn = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [], "hostname": "h", "subdomain": "s", "setHostnameAsFQDN": true}}));
    assert_eq!(kernel_hostname(&fqdn, &cx).unwrap(), "h.s.n.svc.cluster.local");
    let long_name = format!("{}-", "a".repeat(70));
    let long = pod(serde_json::json!({"metadata": {"name": long_name, "namespace": "n"}, "spec": {"containers": [], "subdomain": "s", "setHostnameAsFQDN": true}}));
    assert_eq!(hostname(&long), "a".repeat(63));
    let err = kernel_hostname(&long, &cx).unwrap_err();
    assert!(err.starts_with("failed to construct FQDN from pod hostname and cluster domain, FQDN aaa") && err.ends_with("is too long (64 characters is the max, 85 characters requested)"), "{err}");
}

/// Catches a managed file over a container's own /etc/hosts mount, or one mounted before the
/// pod has an IP.
#[test]
fn mounted_only_with_an_ip_and_no_own_mount() {
    let p = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a"}, {"name": "b", "volumeMounts": [{"name": "v", "mountPath": "/etc/hosts"}]}]}}));
    let [a, b] = [&p.spec.as_ref().unwrap().containers[0], &p.spec.as_ref().unwrap().containers[1]];
    assert!(mounted(&p, Some("10.0.0.2"), a));
    assert!(!mounted(&p, None, a));
    assert!(!mounted(&p, Some("10.0.0.2"), b));
    let host = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true, "containers": [{"name": "a"}]}}));
    assert!(mounted(&host, None, &host.spec.as_ref().unwrap().containers[0]));
}

/// Catches a file written elsewhere than `<pod dir>/etc-hosts`, or without the pod's names.
#[test]
fn write_puts_the_file_in_the_pod_dir() {
    let dir = tempfile::tempdir().unwrap();
    let p = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n", "uid": "u1"}, "spec": {"containers": [], "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["x"]}]}}));
    let file = write(&p, Some("10.0.0.7"), &ctx(dir.path())).unwrap();
    assert_eq!(file, dir.path().join("pods/u1/etc-hosts"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(HEADER) && text.contains("10.0.0.7\tp\n") && text.ends_with("1.2.3.4\tx\n"), "{text}");
}
