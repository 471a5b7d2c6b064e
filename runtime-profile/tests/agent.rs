//! Loading node agent profiles: what a good one gives, the message each kind of bad one gets,
//! and that the shipped profile loads.

use std::path::Path;
use std::time::Duration;

use runtime_profile::{Placeholder, Values, load_agent_file, load_agent_str};

const GOOD: &str = r#"
apiVersion: nodekit.dev/v1alpha1
kind: NodeAgentProfile
metadata: {name: my-kubelet}
spec:
  command: [kubelet, --kubeconfig, "{kubeconfig}", --config, "{kubelet_config}", --container-runtime-endpoint, "{cri_socket}", --hostname-override, "{node_name}"]
  env: {TLS_CA: "{ca}"}
  stop: {grace: 3s}
"#;

fn load(text: &str) -> Result<runtime_profile::NodeAgentProfile, String> {
    load_agent_str(text, Path::new("agent.yaml")).map_err(|e| e.to_string())
}

#[test]
fn a_good_agent_profile_loads_and_renders() {
    let p = load(GOOD).unwrap();
    assert_eq!(p.name, "my-kubelet");
    assert!(!p.nodekit_extensions, "a kubelet does not read nodekit's extensions unless the profile says so");
    assert_eq!(p.stop_grace, Duration::from_secs(3));
    let mut v = Values::new();
    v.set(Placeholder::CriSocket, "unix:///run/x.sock");
    assert_eq!(v.render(&p.command[6]).unwrap(), "unix:///run/x.sock");
}

#[test]
fn bad_agent_profiles_name_the_field_and_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        ("stop: {grace: 3s}", "stopp: {grace: 3s}", "agent.yaml: spec.stopp: unknown field; the fields here are command, env, config, stop"),
        ("\"{cri_socket}\"", "/run/containerd.sock", "agent.yaml: spec.command: the agent is never given {cri_socket}: use it in spec.command or spec.env"),
        ("\"{kubeconfig}\"", "/etc/kubernetes/kubelet.conf", "agent.yaml: spec.command: the agent is never given {kubeconfig}"),
        ("\"{node_name}\"", "\"{socket}\"", "agent.yaml: spec.command[8]: unknown placeholder {socket}: use one of {kubeconfig}, {kubelet_config}, {cri_socket}"),
        ("kind: NodeAgentProfile", "kind: RuntimeProfile", "agent.yaml: kind: \"RuntimeProfile\": a node agent profile is kind NodeAgentProfile"),
        ("TLS_CA: \"{ca}\"", "TLS_CA: \"{archive}\"", "agent.yaml: spec.env.TLS_CA: unknown placeholder {archive}"),
    ];
    for (from, to, want) in cases {
        assert!(GOOD.contains(from), "{from:?}");
        let err = load(&GOOD.replacen(from, to, 1)).expect_err(to);
        assert!(err.starts_with(want), "{to}: {err}");
    }
}

#[test]
fn the_shipped_agent_profile_loads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/examples/agents/node-agent.yaml");
    let p = load_agent_file(&file).unwrap();
    assert_eq!(p.command[0], "node-agent");
    assert!(p.nodekit_extensions, "the reference agent reads its own extensions");
}
