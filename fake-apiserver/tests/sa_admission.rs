//! The ServiceAccount admission plugin on pod creation, through real clients: over HTTPS (a
//! root CA is published) every container gets the `kube-api-access-*` volume at upstream's
//! path, automounting off leaves it out, a pod naming a missing account is refused with
//! upstream's text, and a plain-HTTP server (no CA to publish) still checks the account but
//! injects nothing.

mod common;

use common::pki::{Tls, call};
use serde_json::{Value, json};

const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn pod(name: &str, spec: Value) -> Value {
    let mut s = json!({"containers": [{"name": "c", "image": "i"}], "initContainers": [{"name": "init", "image": "i"}]});
    if let (Some(o), Value::Object(e)) = (s.as_object_mut(), spec) {
        o.extend(e);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": s})
}

fn access_volume(p: &Value) -> Option<&Value> {
    p.pointer("/spec/volumes")?.as_array()?.iter().find(|v| v["name"].as_str().is_some_and(|n| n.starts_with("kube-api-access-")))
}

#[tokio::test]
async fn pods_get_the_api_access_volume_unless_automount_is_off() {
    let tls = Tls::start(|_| {}).await;
    let admin = tls.client("admin", &["system:masters"]).await;
    let (code, created) = call(&admin, "POST", "/api/v1/namespaces/default/pods", &[], Some(pod("p", json!({})))).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created.pointer("/spec/serviceAccountName"), Some(&json!("default")));
    let v = access_volume(&created).unwrap_or_else(|| panic!("no kube-api-access volume: {created}"));
    let name = v["name"].as_str().unwrap();
    assert_eq!(name.len(), "kube-api-access-".len() + 5, "{name}");
    let sources = v.pointer("/projected/sources").unwrap();
    assert_eq!(sources[0], json!({"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}));
    assert_eq!(sources[1], json!({"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}));
    assert_eq!(sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"], "metadata.namespace");
    for c in ["containers", "initContainers"] {
        let mounts = created.pointer(&format!("/spec/{c}/0/volumeMounts")).unwrap();
        assert_eq!(mounts, &json!([{"name": name, "readOnly": true, "mountPath": MOUNT}]), "{c}");
    }
    // Off on the pod, and off on its account.
    let (code, off) = call(&admin, "POST", "/api/v1/namespaces/default/pods", &[], Some(pod("q", json!({"automountServiceAccountToken": false})))).await;
    assert_eq!(code, 201, "{off}");
    assert!(access_volume(&off).is_none(), "{off}");
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"}, "automountServiceAccountToken": false});
    assert_eq!(call(&admin, "POST", "/api/v1/namespaces/default/serviceaccounts", &[], Some(sa)).await.0, 201);
    let (code, quiet) = call(&admin, "POST", "/api/v1/namespaces/default/pods", &[], Some(pod("r", json!({"serviceAccountName": "quiet"})))).await;
    assert_eq!(code, 201, "{quiet}");
    assert!(access_volume(&quiet).is_none(), "{quiet}");
    // A missing account.
    let (code, refused) = call(&admin, "POST", "/api/v1/namespaces/default/pods", &[], Some(pod("s", json!({"serviceAccountName": "ghost"})))).await;
    assert_eq!(code, 403, "{refused}");
    assert_eq!(refused["message"], "pods \"s\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found");
}

#[tokio::test]
async fn without_a_root_ca_the_account_is_checked_but_nothing_is_injected() {
    let h = common::start().await;
    let client = common::kube_client(&h);
    let (code, created) = call(&client, "POST", "/api/v1/namespaces/default/pods", &[], Some(pod("p", json!({})))).await;
    assert_eq!(code, 201, "{created}");
    assert!(access_volume(&created).is_none(), "{created}");
    let (code, refused) = call(&client, "POST", "/api/v1/namespaces/default/pods", &[], Some(pod("s", json!({"serviceAccountName": "ghost"})))).await;
    assert_eq!(code, 403, "{refused}");
}
