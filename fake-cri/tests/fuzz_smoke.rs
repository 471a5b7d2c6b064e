//! A seconds-long smoke run of every `fuzz/` target body on stable: deterministic (xorshift)
//! random bytes, token soup and mutated realistic seeds. Each input must return without
//! panicking, and quickly. `fuzz/` runs the same bodies under libFuzzer.

use std::collections::HashMap;

use fuzz_smoke::smoke;
use k8s_cri::v1 as cri;

#[path = "../fuzz/bodies.rs"]
mod bodies;

fn strings(s: &[&str]) -> Vec<Vec<u8>> {
    s.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn image(reference: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec { image: reference.into(), ..Default::default() })
}

fn labels(kv: &[(&str, &str)]) -> HashMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A sandbox config as the kubelet sends it: metadata, labels, annotations, DNS, a hostPort,
/// a cgroup parent and host-network namespace options.
fn sandbox_config() -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: "web".into(), uid: "u-1".into(), namespace: "default".into(), attempt: 1 }),
        hostname: "web".into(),
        log_directory: "/var/log/pods/default_web_u-1".into(),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        port_mappings: vec![cri::PortMapping { protocol: 0, container_port: 80, host_port: 8080, host_ip: "0.0.0.0".into() }],
        labels: labels(&[("app", "web"), ("io.kubernetes.pod.name", "web")]),
        annotations: labels(&[("kubernetes.io/config.source", "api")]),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: "/kubepods/besteffort/podu-1".into(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption { network: cri::NamespaceMode::Node as i32, ..Default::default() }),
                ..Default::default()
            }),
            sysctls: labels(&[("net.ipv4.ip_forward", "1")]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container config as the kubelet sends it: image, command, env, mounts, log path,
/// resources and a security context with a user and groups.
fn container_config(reference: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: "c".into(), attempt: 0 }),
        image: image(reference),
        command: vec!["/workload".into()],
        args: vec!["serve".into(), "--port=80".into()],
        working_dir: "/srv".into(),
        envs: vec![cri::KeyValue { key: "PATH".into(), value: "/bin".into() }, cri::KeyValue { key: "A".into(), value: "1=2".into() }],
        mounts: vec![
            cri::Mount {
                container_path: "/data".into(),
                host_path: "/var/lib/kubelet/pods/u-1/volumes/x".into(),
                readonly: true,
                ..Default::default()
            },
            cri::Mount { container_path: "/dev/termination-log".into(), host_path: "/tmp/t".into(), ..Default::default() },
        ],
        labels: labels(&[("io.kubernetes.container.name", "c")]),
        annotations: labels(&[("io.kubernetes.container.restartCount", "0")]),
        log_path: "c/0.log".into(),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_shares: 2,
                cpu_quota: -1,
                oom_score_adj: 1000,
                ..Default::default()
            }),
            security_context: Some(cri::LinuxContainerSecurityContext {
                run_as_user: Some(cri::Int64Value { value: 1000 }),
                run_as_group: Some(cri::Int64Value { value: -1 }),
                supplemental_groups: vec![5, 1 << 40],
                readonly_rootfs: true,
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Every request type with an empty body, and realistic ones of those fake-cri checks.
fn request_seeds() -> Vec<Vec<u8>> {
    use bodies::request_seed as seed;
    let mut seeds: Vec<Vec<u8>> = (0..bodies::REQUESTS.len() as u8).map(|i| vec![i]).collect();
    let [s0, s1] = bodies::SANDBOX_IDS;
    let [c0, _, c2] = bodies::CONTAINER_IDS;
    seeds.extend([
        seed("RunPodSandbox", &cri::RunPodSandboxRequest { config: Some(sandbox_config()), runtime_handler: String::new() }),
        seed("CreateContainer", &cri::CreateContainerRequest {
            pod_sandbox_id: s0[..10].into(),
            config: Some(container_config("nodekit.local/workload:1.0")),
            sandbox_config: Some(sandbox_config()),
        }),
        seed("CreateContainer", &cri::CreateContainerRequest {
            pod_sandbox_id: s1.into(),
            config: Some(container_config("registry.k8s.io/e2e-test-images/agnhost:2.56")),
            sandbox_config: None,
        }),
        seed("StopPodSandbox", &cri::StopPodSandboxRequest { pod_sandbox_id: s1.into() }),
        seed("PodSandboxStatus", &cri::PodSandboxStatusRequest { pod_sandbox_id: "5a5a".into(), verbose: true }),
        seed("StopContainer", &cri::StopContainerRequest { container_id: c0.into(), timeout: 30 }),
        seed("ContainerStatus", &cri::ContainerStatusRequest { container_id: c2[..12].into(), verbose: true }),
        seed("UpdateContainerResources", &cri::UpdateContainerResourcesRequest {
            container_id: c0.into(),
            linux: container_config("x").linux.and_then(|l| l.resources),
            ..Default::default()
        }),
        seed("ExecSync", &cri::ExecSyncRequest { container_id: c0.into(), cmd: vec!["/agnhost".into(), "dns-suffix".into()], timeout: 5 }),
        seed("Exec", &cri::ExecRequest {
            container_id: c2.into(),
            cmd: vec!["sh".into()],
            tty: true,
            stdin: true,
            stdout: true,
            ..Default::default()
        }),
        seed("ListContainers", &cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter { id: "c0".into(), label_selector: labels(&[("app", "web")]), ..Default::default() }),
        }),
        seed("UpdateRuntimeConfig", &cri::UpdateRuntimeConfigRequest {
            runtime_config: Some(cri::RuntimeConfig { network_config: Some(cri::NetworkConfig { pod_cidr: "10.244.1.0/24".into() }) }),
        }),
        seed("UpdateRuntimeConfig", &cri::UpdateRuntimeConfigRequest {
            runtime_config: Some(cri::RuntimeConfig { network_config: Some(cri::NetworkConfig { pod_cidr: "10.0.0.0/8".into() }) }),
        }),
        seed("ListImages", &cri::ListImagesRequest { filter: Some(cri::ImageFilter { image: image("nodekit.local/pause:3.10") }) }),
        seed("ImageStatus", &cri::ImageStatusRequest { image: image("registry.k8s.io/pause:3.10"), verbose: true }),
        seed("PullImage", &cri::PullImageRequest { image: image("busybox"), ..Default::default() }),
        seed("PullImage", &cri::PullImageRequest { image: image("registry.k8s.io/e2e-test-images/agnhost:2.53"), ..Default::default() }),
        seed("RemoveImage", &cri::RemoveImageRequest { image: image("sha256:0123456789ab") }),
    ]);
    seeds
}

#[test]
fn requests_smoke() {
    let tokens: &[&[u8]] = &[
        b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x2a", b"\x32", b"\x3a", b"\x42", b"\x08", b"\x10", b"\x18", b"\x00", b"\x01",
        b"\x7f", b"\x80", b"\xff\xff\xff\xff\x0f", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x0a\x7f", b"\x0b",
        b"\x0d\x00\x00\x00\x00",
        b"5a5a", b"c0c0", b"nodekit.local/workload:1.0", b"busybox", b"sha256:", b"@sha256:", b"10.244.1.0/24", b"/8", b"/31",
        b"/a/../b", b"/", b"\xc3\xa9", b"\xff",
    ];
    smoke("requests", 0x5EED_C001, &request_seeds(), tokens, bodies::requests);
}

#[test]
fn image_ref_smoke() {
    let seeds = strings(&[
        "nodekit.local/workload:1.0",
        "busybox",
        "user/app:1",
        "localhost:5000/x",
        "registry.k8s.io/e2e-test-images/agnhost@sha256:0123456789abcdef",
        "docker.io/library/busybox:latest",
        "sha256:0123456789ab",
        " a.io/x@sha256:ab ",
        "",
    ]);
    let tokens: &[&[u8]] = &[
        b"/", b":", b"@", b".", b"sha256:", b"localhost", b"docker.io/", b"library/", b":latest", b" ", b"\t", b"\n", b"\xc2\x85",
        b"\xe3\x80\x80", b"\xc3\xa9", b"\xff", b"nodekit.local", b"workload", b"0123456789abcdef",
    ];
    smoke("image_ref", 0x5EED_C002, &seeds, tokens, bodies::image_ref);
}

#[test]
fn config_smoke() {
    let seeds = strings(&[
        r#"{"rpc_latency_ms":5,"runtime_not_ready":"down","pull_delay_ms":{"nodekit.local/workload:1.0":100},"pull_error":{"busybox":"boom"},"sandbox_error":{"web":"no"},"create_error":{"c":"x"},"crash_after_ms":{"c":50}}"#,
        r#"{"images":[{"reference":"a.io/x:1","binary":"/bin/true","entrypoint":["/workload"],"cmd":["pause"],"env":["K=V","PATH"],"working_dir":"/","size":7,"pull_delay_ms":3,"pull_error":null,"preloaded":false}]}"#,
        "{\"pull_delay_ms\":{\"a.io/x:1\":18446744073709551615}}\0{\"images\":[{\"reference\":\"a.io/x:1\",\"binary\":\"/x\",\"pull_delay_ms\":18446744073709551615}]}",
        "{\"crash_after_ms\":{\"b\":1}}\0{\"images\":[{\"reference\":\"b\",\"binary\":\"\",\"entrypoint\":[\"/pause\"]}]}",
        "{}",
    ]);
    let tokens: &[&[u8]] = &[
        b"{", b"}", b"[", b"]", b":", b",", b"\"", b"\\", b"\\u0000", b"null", b"true", b"-1", b"1e3", b"18446744073709551615",
        b"18446744073709551616", b"\0", b"\"images\"", b"\"reference\"", b"\"binary\"", b"\"entrypoint\"", b"\"cmd\"", b"\"env\"",
        b"\"pull_delay_ms\"", b"\"pull_error\"", b"\"crash_after_ms\"", b"\"rpc_latency_ms\"", b"\"runtime_not_ready\"",
        b"\"a.io/x:1\"", b"\"/workload\"",
    ];
    smoke("config", 0x5EED_C003, &seeds, tokens, bodies::config);
}
