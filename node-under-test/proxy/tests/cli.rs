//! The `node-proxy` binary: `--cleanup` in a fresh network namespace (via `unshare -n`) removes
//! what a sync created in that namespace and exits 0; bad configuration fails naming the field.

mod common;

use std::process::Command;

use node_proxy::config::Mode;
use node_proxy::ctx::RenderCtx;
use node_proxy::engine::Engine;
use node_proxy::exec::Tools;
use node_proxy::netns::in_fresh_netns;

const BIN: &str = env!("CARGO_BIN_EXE_node-proxy");

#[test]
fn cleanup_flag_removes_both_modes_and_exits_zero() {
    in_fresh_netns(|| {
        let st = common::state(vec![common::svc("a", "10.96.0.10", 80, vec![common::ep("10.244.1.2", 80, false)])]);
        Engine::new(Mode::Nftables, Tools::default()).sync(&st, &RenderCtx::default(), true).unwrap();
        Engine::new(Mode::Iptables, Tools::default()).sync(&st, &RenderCtx::default(), true).unwrap();
        assert!(common::sh("nft list tables").contains("kube-proxy"));
        // Spawned from this thread, the binary runs in this namespace.
        let out = Command::new(BIN).args(["--cleanup", "--hostname-override", "n"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!common::sh("nft list tables").contains("kube-proxy"));
        assert!(!common::sh("iptables-save").contains("KUBE-"), "{}", common::sh("iptables-save"));
    })
    .unwrap();
}

#[test]
fn unknown_config_field_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kp.yaml");
    std::fs::write(&p, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmodee: iptables\n").unwrap();
    let out = Command::new(BIN).args(["--config", p.to_str().unwrap(), "--cleanup"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("modee"), "{err}");
}
