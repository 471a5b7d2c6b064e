//! `nodekit up` as a user runs it: the built binary as a child, real kubectl against the world
//! through the loopback forwarder, then SIGINT (exit 0) or SIGKILL, and nothing left on the host.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{NODEKIT, have_kubectl, listeners_of, netns_list, up};

#[test]
fn up_two_nodes_kubectl_then_sigint_leaves_nothing() {
    if !have_kubectl() {
        return;
    }
    let netns_before = netns_list();
    let mut live = up(&["--nodes", "2"]);
    // The forwarder's port is the only host socket of the run; no world component is in the
    // host's network namespace.
    let ours = listeners_of(live.child.id());
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0].contains(&format!("127.0.0.1:{}", live.port)), "{ours:?}");
    let ss = String::from_utf8_lossy(&Command::new("ss").args(["-ltnupH"]).output().unwrap().stdout).into_owned();
    for comp in ["node-agent", "node-proxy", "fake-cri"] {
        assert!(!ss.contains(comp), "{comp} listens on the host: {ss}");
    }
    let kc = std::fs::read_to_string(&live.kubeconfig).unwrap();
    assert!(kc.contains("client-certificate-data:") && kc.contains("certificate-authority-data:"), "{kc}");
    live.drive(&["node-a", "node-b"], "node-b");
    // The world authorizes as clusters do (Node,RBAC): the admin may, a ServiceAccount without
    // bindings may not, and a node may write its own status but not read an unrelated secret.
    assert_eq!(live.can_i(&["list", "secrets", "-A"]), "yes");
    assert_eq!(live.can_i(&["list", "secrets", "--as=system:serviceaccount:default:default"]), "no");
    let node_a = ["--as=system:node:node-a", "--as-group=system:nodes"];
    assert_eq!(live.can_i(&["patch", "nodes/node-a", "--subresource=status", node_a[0], node_a[1]]), "yes");
    assert_eq!(live.can_i(&["get", "secrets/db", node_a[0], node_a[1]]), "no", "a secret no pod of node-a references");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(live.child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = live.child.wait().unwrap();
    let stderr = live.stderr.take().unwrap().join().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    // Graceful: everything is gone when the command has returned (the janitor finished too).
    assert_eq!(live.leftovers(), Vec::<String>::new());
    assert_eq!(netns_list(), netns_before);
}

#[test]
fn up_sigkill_leaves_nothing() {
    if !have_kubectl() {
        return;
    }
    let netns_before = netns_list();
    let mut live = up(&["--nodes", "1", "--proxy-mode", "iptables", "--authorization-mode", "AlwaysAllow"]);
    live.drive(&["node-a"], "node-a");
    // A bare server on request: everyone may do everything.
    assert_eq!(live.can_i(&["list", "secrets", "--as=system:serviceaccount:default:default"]), "yes");
    // Pods have cgroup directories where the runtime makes them (containerd always; fake-cri
    // when the v1 memory controller is mounted): they must be swept too.
    eprintln!("cgroup directories of the world before the kill: {:?}", live.cgroup_dirs());
    live.child.kill().unwrap();
    let _ = live.child.wait();
    live.wait_clean(Duration::from_secs(60));
    assert_eq!(netns_list(), netns_before);
}

#[test]
fn up_refuses_bad_files_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("k");
    let run = |args: &[&str]| {
        let out = Command::new(NODEKIT).arg("up").args(args).arg("--kubeconfig").arg(&kubeconfig).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let missing = dir.path().join("missing.yaml");
    let (code, err) = run(&["--kubelet-config", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("--kubelet-config {}", missing.display())) && err.contains("cannot read"), "{err}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "mode: [iptables\n").unwrap();
    let (code, err) = run(&["--proxy-config", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--proxy-config") && err.contains("not a YAML document"), "{err}");
    let (code, err) = run(&["--nodes", "0"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["--authorization-mode", "Webhook"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(r#"unknown authorization mode "Webhook"; allowed: Node,RBAC or AlwaysAllow"#), "{err}");
    // Someone else's file is never overwritten.
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("was not written by nodekit up"), "{err}");
    assert_eq!(std::fs::read_to_string(&kubeconfig).unwrap(), "apiVersion: v1\nkind: Config\n");
}
