//! The official Kubernetes Python client (Debian's `python3-kubernetes`, installed by
//! `ci/bootstrap`) against the API server over HTTPS with client certificates and Node,RBAC
//! authorization: the admin's kubeconfig works for version, lists, create, patch, RBAC objects
//! and access reviews (every answer deserialized by the client's own models), and a user without
//! bindings gets upstream's 403.

mod common;

use common::pki::Tls;
use serde_json::{Value, json};

const PYTHON: &str = "/usr/bin/python3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_works_with_the_admin_kubeconfig() {
    let t = Tls::start(|c| c.authorization = true).await;
    let admin = t.kubeconfig_file("admin", Some(("nodekit-admin", &["system:masters"])));
    let nobody = t.kubeconfig_file("nobody", Some(("nobody", &[])));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/python_client.py");
    let out = tokio::process::Command::new(PYTHON).arg(script).arg(&admin).arg(&nobody).output().await.expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the Python client failed (is python3-kubernetes installed? ci/bootstrap installs it):\n{stderr}");
    let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(got["version"].as_str().is_some_and(|v| v.starts_with("v1.")), "{got}");
    for ns in ["default", "kube-system"] {
        assert!(got["namespaces"].as_array().unwrap().contains(&json!(ns)), "{got}");
    }
    assert_eq!(got["created"], json!(["py", "default", "Pending"]));
    assert_eq!(got["labels"], json!({"app": "py", "patched": "yes"}));
    assert_eq!(got["listed"], json!(["py"]));
    assert_eq!(got["roles"], json!(["py-reader"]));
    assert_eq!(got["admin_may_delete_secrets"], true);
    assert_eq!(
        got["nobody"],
        json!([403, "pods is forbidden: User \"nobody\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""])
    );
    t.h.shutdown().await;
}
