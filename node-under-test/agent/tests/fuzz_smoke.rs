//! A seconds-long smoke run of every `fuzz/` target body on stable: deterministic (xorshift)
//! random bytes, token soup and mutated realistic seeds. Each input must return (`Ok` or
//! `Err`) without panicking, and quickly. `fuzz/` runs the same bodies under libFuzzer.

use fuzz_smoke::smoke;

#[path = "../fuzz/bodies.rs"]
mod bodies;

fn strings(s: &[&str]) -> Vec<Vec<u8>> {
    s.iter().map(|s| s.as_bytes().to_vec()).collect()
}

const YAML_TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b":", b": ", b",", b"- ", b"\n", b"\n  ", b"\n- ", b"\t", b"\"", b"'", b"#", b"---\n", b"...\n",
    b"? ", b"&a ", b"*a", b"<<: *a", b"!!binary ", b"!!str ", b"|\n", b">-\n", b"~", b"null", b"true", b"0x1F", b"1e999",
    b"-1", b"0", b"18446744073709551616", b"-1s", b"0s", b"1.5h", b"99999999999999999999h", b"1h2m3.5s", b"500ms", b"1\xc2\xb5s",
    b".5s", b"1e3s", b"\xff", b"\\u0000",
];

#[test]
fn config_smoke() {
    let head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
    let seeds = strings(&[
        head,
        &format!(
            "{head}nodeLeaseDurationSeconds: 4\nnodeStatusUpdateFrequency: 500ms\nnodeStatusReportFrequency: 1m30s\n\
             maxPods: 8\npodCIDR: 10.244.1.0/24\nstaticPodPath: /etc/kubernetes/manifests\n\
             evictionHard:\n  memory.available: 1Mi\n\
             nodekit:\n  containerBackOffBase: 200ms\n  containerBackOffMax: 1s\n  nodeLeaseRenewIntervalFraction: 0.5\n  \
             nodeSize:\n    cpu: \"2\"\n    memory: 1Gi\n"
        ),
        &format!(
            "{head}cgroupDriver: systemd\nauthentication:\n  anonymous:\n    enabled: false\n  x509:\n    clientCAFile: /ca.crt\n\
             authorization:\n  mode: Webhook\nfeatureGates:\n  Foo: true\nsyncFrequency: 10s\nfileCheckFrequency: 1s\n"
        ),
        r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","nodekit":{"nodeSize":{"cpu":"4","ephemeralStorage":"64Gi","memory":"8Gi","pids":100000}},"tlsCertFile":"/a.crt","tlsPrivateKeyFile":"/a.key"}"#,
        "1h2m3.5s",
        "-1.5ms",
    ]);
    smoke("config", 0x5EED_C001, &seeds, YAML_TOKENS, bodies::config);
}

#[test]
fn static_pod_smoke() {
    let seeds = strings(&[
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: kube-system\n  labels: {app: web}\nspec:\n  containers:\n  - name: c\n    image: nginx:1\n    ports:\n    - containerPort: 80\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  initContainers: [{name: i, image: busybox}]\n  containers: [{name: c, image: busybox, command: [sleep, \"3600\"]}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, uid: fixed}\nspec:\n  containers: [{name: c, image: busybox}]\n  tolerations: [{operator: Exists, effect: NoExecute}]\n",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","annotations":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"100m","memory":"1Gi"}}}]}}"#,
        "---\n...\n",
    ]);
    smoke("static_pod", 0x5EED_C002, &seeds, YAML_TOKENS, bodies::static_pod);
}
