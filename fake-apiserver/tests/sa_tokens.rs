//! ServiceAccount tokens with the real kubectl: `kubectl create token` (the
//! `serviceaccounts/token` subresource), the tokens as bearer credentials (`kubectl --token`)
//! and in TokenReview, what makes them stop working (a deleted bound pod, another audience, a
//! recreated ServiceAccount, a changed signature), and the `default` ServiceAccount and
//! `kube-root-ca.crt` ConfigMap every namespace gets.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::kubectl::with_kubeconfig as kubectl;
use common::pki::{Tls, call};
use serde_json::{Value, json};

const ADMIN: (&str, &[&str]) = ("nodekit-admin", &["system:masters"]);
const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
const TR_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const UNAUTHORIZED: &str = "You must be logged in to the server (Unauthorized)";

/// An HTTPS server that authorizes (Node,RBAC), the admin's kubeconfig and one without
/// credentials (for `--token`).
struct World {
    t: Tls,
    admin: PathBuf,
    anonymous: PathBuf,
}

impl World {
    async fn start() -> World {
        let t = Tls::start(|c| c.authorization = true).await;
        let admin = t.kubeconfig_file("admin", Some(ADMIN));
        let anonymous = t.kubeconfig_file("anonymous", None);
        World { t, admin, anonymous }
    }

    /// kubectl as the admin; `None` when the machine has no kubectl.
    async fn admin(&self, args: &[&str]) -> Option<(bool, String, String)> {
        kubectl(&self.admin, args).await
    }

    /// kubectl with `token` and no certificate.
    async fn with_token(&self, token: &str, args: &[&str]) -> (bool, String, String) {
        let flag = format!("--token={token}");
        let mut all = vec![flag.as_str()];
        all.extend_from_slice(args);
        kubectl(&self.anonymous, &all).await.expect("kubectl is there")
    }

    /// `kubectl create token` as the admin: the token.
    async fn create_token(&self, args: &[&str]) -> String {
        let mut all = vec!["create", "token"];
        all.extend_from_slice(args);
        let (ok, out, err) = self.admin(&all).await.expect("kubectl is there");
        assert!(ok, "kubectl {all:?}: {err}");
        out.trim().to_string()
    }

    /// A TokenReview by the admin: its status.
    async fn review(&self, token: &str, audiences: &[&str]) -> Value {
        let admin = self.t.client(ADMIN.0, ADMIN.1).await;
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": audiences}});
        let (code, r) = call(&admin, "POST", TR_PATH, &[], Some(body)).await;
        assert_eq!(code, 201, "{r}");
        r["status"].clone()
    }
}

fn part(token: &str, i: usize) -> Value {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(i).expect("a JWT part")).expect("base64url");
    serde_json::from_slice(&raw).expect("JSON")
}

/// `kubectl auth whoami -o json`'s user info.
async fn whoami(w: &World, token: &str) -> Result<Value, String> {
    let (ok, out, err) = w.with_token(token, &["auth", "whoami", "-o", "json"]).await;
    if !ok {
        return Err(err);
    }
    let review: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    Ok(review["status"]["userInfo"].clone())
}

fn has_kubectl() -> bool {
    let there = Path::new(common::kubectl::KUBECTL).exists();
    if !there {
        eprintln!("skipping: {} is absent", common::kubectl::KUBECTL);
    }
    there
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_token_gives_a_jwt_that_is_the_service_account() {
    if !has_kubectl() {
        return;
    }
    let w = World::start().await;
    let token = w.create_token(&["default", "-n", "default"]).await;
    assert_eq!(token.split('.').count(), 3, "a compact JWT: {token}");
    let header = part(&token, 0);
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["kid"].as_str().map(str::len), Some(43), "base64url of a SHA-256: {header}");
    let claims = part(&token, 1);
    assert_eq!(claims["iss"], API_AUDIENCE);
    assert_eq!(claims["aud"], json!([API_AUDIENCE]));
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600, "the default hour");
    assert_eq!(claims["nbf"], claims["iat"]);
    let sa_uid = w.t.h.store().get(fake_apiserver::resources::SERVICEACCOUNTS, "default", "default").unwrap().value["metadata"]["uid"].clone();
    assert_eq!(claims["kubernetes.io"], json!({"namespace": "default", "serviceaccount": {"name": "default", "uid": sa_uid}}));
    let jti = claims["jti"].as_str().expect("a jti").to_string();

    let user = whoami(&w, &token).await.expect("the token authenticates");
    assert_eq!(user["username"], "system:serviceaccount:default:default");
    assert_eq!(user["uid"], sa_uid);
    assert_eq!(user["groups"], json!(["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]));
    assert_eq!(user["extra"], json!({"authentication.kubernetes.io/credential-id": [format!("JTI={jti}")]}));
    let (ok, out, _) = w.with_token(&token, &["auth", "whoami"]).await;
    assert!(ok && out.contains("system:serviceaccount:default:default"), "{out}");

    // Authorization sees the ServiceAccount: RBAC gives it nothing beyond the basics.
    let (ok, _, err) = w.with_token(&token, &["get", "pods"]).await;
    assert!(!ok);
    assert!(
        err.contains("pods is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    // The issue and the use are audited: the credential id and the user.
    let audit = w.t.h.audit();
    let issued = audit.iter().find(|e| e.path == "/api/v1/namespaces/default/serviceaccounts/default/token").expect("the TokenRequest is audited");
    assert_eq!((issued.verb.as_str(), issued.code), ("create", 201));
    assert_eq!(issued.annotations.get("authentication.kubernetes.io/issued-credential-id"), Some(&format!("JTI={jti}")));
    assert_eq!(issued.annotations.get("authorization.k8s.io/decision").map(String::as_str), Some("allow"));
    let used = audit.iter().find(|e| e.path.ends_with("/pods") && e.code == 403).expect("the refused list is audited");
    assert_eq!(used.user.as_ref().map(|u| u.username.as_str()), Some("system:serviceaccount:default:default"));

    // TokenReview reviews it for the API's audience.
    let status = w.review(&token, &[]).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["audiences"], json!([API_AUDIENCE]));
    assert_eq!(status["user"]["username"], "system:serviceaccount:default:default");
    w.t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_are_checked_as_upstreams() {
    if !has_kubectl() {
        return;
    }
    let w = World::start().await;
    let (ok, _, err) = w.admin(&["create", "token", "default", "--duration=5m"]).await.unwrap();
    assert!(!ok);
    assert!(
        err.contains("TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let (ok, _, err) = w.admin(&["create", "token", "missing"]).await.unwrap();
    assert!(!ok);
    assert!(err.contains("serviceaccounts \"missing\" not found"), "{err}");

    let token = w.create_token(&["default", "--duration=2h", "--audience=a", "--audience=b"]).await;
    let claims = part(&token, 1);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 7200);
    assert_eq!(claims["aud"], json!(["a", "b"]));
    assert!(claims["kubernetes.io"].get("warnafter").is_none(), "only extended pod tokens warn");

    // The raw API: 404 and 422 Status objects, 201 with status, 405 for other verbs, and
    // RBAC on `serviceaccounts/token`.
    let admin = w.t.client(ADMIN.0, ADMIN.1).await;
    let path = |sa: &str| format!("/api/v1/namespaces/default/serviceaccounts/{sa}/token");
    let (code, st) = call(&admin, "POST", &path("missing"), &[], Some(json!({"spec": {}}))).await;
    assert_eq!((code, st["reason"].as_str(), st["message"].as_str()), (404, Some("NotFound"), Some("serviceaccounts \"missing\" not found")));
    assert_eq!(st["details"], json!({"name": "missing", "kind": "serviceaccounts"}));
    let (code, tr) = call(&admin, "POST", &path("default"), &[], Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}))).await;
    assert_eq!(code, 201, "{tr}");
    assert_eq!(tr["metadata"]["name"], "default");
    assert_eq!(tr["spec"], json!({"audiences": [API_AUDIENCE], "expirationSeconds": 3600}));
    assert!(tr["status"]["token"].as_str().is_some_and(|t| t.split('.').count() == 3), "{tr}");
    let exp = part(tr["status"]["token"].as_str().unwrap(), 1)["exp"].as_i64().unwrap();
    let stamp: jiff::Timestamp = tr["status"]["expirationTimestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(stamp.as_second(), exp, "status.expirationTimestamp is the token's exp");
    let bad_uid = json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "s"}}});
    let (code, st) = call(&admin, "POST", &path("default"), &[], Some(bad_uid)).await;
    assert_eq!((code, st["message"].as_str()), (404, Some("secrets \"s\" not found")));
    let cm = json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}}});
    let (code, st) = call(&admin, "POST", &path("default"), &[], Some(cm)).await;
    assert_eq!((code, st["message"].as_str()), (400, Some("cannot bind token to object of type /v1, Kind=ConfigMap")));
    let (code, st) = call(&admin, "POST", &path("default"), &[], Some(json!({"metadata": {"uid": "nope"}}))).await;
    assert_eq!(code, 409, "{st}");
    assert!(st["message"].as_str().unwrap().starts_with("Operation cannot be fulfilled on TokenRequest.authentication.k8s.io \"default\": the UID in the token request (nope) does not match the UID of the service account"), "{st}");
    let (code, st) = call(&admin, "POST", &path("default"), &[], Some(json!({"metadata": {"name": "other"}}))).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "TokenRequest.authentication.k8s.io \"default\" is invalid: metadata.name: Invalid value: \"other\": must match the service account name if specified"
    );
    assert_eq!(call(&admin, "GET", &path("default"), &[], None).await.0, 405);
    let bob = w.t.client("bob", &[]).await;
    let (code, st) = call(&bob, "POST", &path("default"), &[], Some(json!({"spec": {}}))).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "serviceaccounts \"default\" is forbidden: User \"bob\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\"");

    // Discovery lists the subresource as upstream does.
    let (_, core) = call(&admin, "GET", "/api/v1", &[], None).await;
    let sub = core["resources"].as_array().unwrap().iter().find(|r| r["name"] == "serviceaccounts/token").cloned();
    assert_eq!(
        sub,
        Some(json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io",
                    "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}))
    );
    w.t.h.shutdown().await;
}

/// A pod on a node, as `kubectl` sees it: (pod uid, node uid).
async fn pod_on_node(w: &World) -> (String, String) {
    let admin = w.t.client(ADMIN.0, ADMIN.1).await;
    let (code, node) = call(&admin, "POST", "/api/v1/nodes", &[], Some(json!({"metadata": {"name": "node-a"}}))).await;
    assert_eq!(code, 201, "{node}");
    let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "registry.k8s.io/pause"}]}});
    let (code, pod) = call(&admin, "POST", "/api/v1/namespaces/default/pods", &[], Some(pod)).await;
    assert_eq!(code, 201, "{pod}");
    (pod["metadata"]["uid"].as_str().unwrap().to_string(), node["metadata"]["uid"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_bound_token_stops_working_when_the_pod_is_deleted() {
    if !has_kubectl() {
        return;
    }
    let w = World::start().await;
    let (pod_uid, node_uid) = pod_on_node(&w).await;
    let (ok, _, err) = w.admin(&["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "p", "--bound-object-uid", "wrong"]).await.unwrap();
    assert!(!ok);
    assert!(
        err.contains("Operation cannot be fulfilled on Pod \"p\": the UID in the bound object reference (wrong) does not match the UID in record. The object might have been deleted and then recreated"),
        "{err}"
    );
    let token = w.create_token(&["default", "--bound-object-kind", "Pod", "--bound-object-name", "p", "--bound-object-uid", &pod_uid]).await;
    let k8s = &part(&token, 1)["kubernetes.io"];
    assert_eq!(k8s["pod"], json!({"name": "p", "uid": pod_uid}));
    assert_eq!(k8s["node"], json!({"name": "node-a", "uid": node_uid}), "the pod's node is recorded");
    let user = whoami(&w, &token).await.expect("the bound token works while the pod exists");
    let extra = &user["extra"];
    assert_eq!(extra["authentication.kubernetes.io/pod-name"], json!(["p"]));
    assert_eq!(extra["authentication.kubernetes.io/pod-uid"], json!([pod_uid]));
    assert_eq!(extra["authentication.kubernetes.io/node-name"], json!(["node-a"]));
    assert_eq!(extra["authentication.kubernetes.io/node-uid"], json!([node_uid]));

    let to_node = w.create_token(&["default", "--bound-object-kind", "Node", "--bound-object-name", "node-a"]).await;
    let extra = whoami(&w, &to_node).await.expect("a node-bound token works")["extra"].clone();
    assert_eq!(extra["authentication.kubernetes.io/node-uid"], json!([node_uid]), "{extra}");

    // The kubelet's way: node-a may have tokens for its pods' ServiceAccount, bound to them
    // (the Node authorizer, then NodeRestriction on the request's body).
    let node = w.t.client("system:node:node-a", &["system:nodes"]).await;
    let path = "/api/v1/namespaces/default/serviceaccounts/default/token";
    let bound = json!({"spec": {"audiences": [API_AUDIENCE], "expirationSeconds": 3607,
                                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": pod_uid}}});
    let (code, tr) = call(&node, "POST", path, &[], Some(bound)).await;
    assert_eq!(code, 201, "{tr}");
    let projected = part(tr["status"]["token"].as_str().unwrap(), 1);
    let lifetime = projected["exp"].as_i64().unwrap() - projected["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 365 * 24 * 3600, "the kubelet's 3607 s are extended to a year");
    assert_eq!(projected["kubernetes.io"]["warnafter"].as_i64().unwrap() - projected["iat"].as_i64().unwrap(), 3607);
    let (code, st) = call(&node, "POST", path, &[], Some(json!({"spec": {}}))).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "serviceaccounts \"default\" is forbidden: node requested token not bound to a pod");
    let other_node = w.t.client("system:node:node-b", &["system:nodes"]).await;
    let (code, st) = call(&other_node, "POST", path, &[], Some(json!({"spec": {}}))).await;
    assert_eq!(code, 403, "{st}");
    assert!(st["message"].as_str().unwrap().contains("no relationship found between node 'node-b' and this object"), "{st}");

    let (ok, _, err) = w.admin(&["delete", "pod", "p", "--grace-period=0", "--force"]).await.unwrap();
    assert!(ok, "{err}");
    let err = whoami(&w, &token).await.expect_err("the token of a deleted pod is refused");
    assert!(err.contains(UNAUTHORIZED), "{err}");
    assert_eq!(w.review(&token, &[]).await, json!({"user": {}, "error": "service account token has been invalidated"}));
    w.t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_audiences_recreated_accounts_and_changed_signatures_are_refused() {
    if !has_kubectl() {
        return;
    }
    let w = World::start().await;
    // Another audience: refused by the API, accepted by a TokenReview for that audience.
    let vault = w.create_token(&["default", "--audience", "vault"]).await;
    assert!(whoami(&w, &vault).await.expect_err("not for the API").contains(UNAUTHORIZED));
    let status = w.review(&vault, &[]).await;
    assert_eq!(status["error"], format!("token audiences [\"vault\"] is invalid for the target audiences [\"{API_AUDIENCE}\"]"));
    let status = w.review(&vault, &["vault"]).await;
    assert_eq!((status["authenticated"].clone(), status["audiences"].clone()), (json!(true), json!(["vault"])), "{status}");

    // A ServiceAccount deleted and made again is another account.
    let (ok, _, err) = w.admin(&["create", "serviceaccount", "robot"]).await.unwrap();
    assert!(ok, "{err}");
    let token = w.create_token(&["robot"]).await;
    assert_eq!(whoami(&w, &token).await.expect("works")["username"], "system:serviceaccount:default:robot");
    let old_uid = part(&token, 1)["kubernetes.io"]["serviceaccount"]["uid"].as_str().unwrap().to_string();
    assert!(w.admin(&["delete", "serviceaccount", "robot"]).await.unwrap().0);
    assert!(whoami(&w, &token).await.expect_err("gone").contains(UNAUTHORIZED));
    assert_eq!(w.review(&token, &[]).await["error"], "serviceaccounts \"robot\" not found");
    assert!(w.admin(&["create", "serviceaccount", "robot"]).await.unwrap().0);
    assert!(whoami(&w, &token).await.expect_err("recreated").contains(UNAUTHORIZED));
    let error = w.review(&token, &[]).await["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("service account UID (") && error.ends_with(&format!(") does not match claim ({old_uid})")), "{error}");

    // A changed signature, and a token from another server (another key, same issuer).
    let fresh = w.create_token(&["default"]).await;
    let (rest, sig) = fresh.rsplit_once('.').unwrap();
    let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 0x01;
    let tampered = format!("{rest}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw));
    assert!(whoami(&w, &tampered).await.expect_err("tampered").contains(UNAUTHORIZED));
    assert_eq!(w.review(&tampered, &[]).await["error"], "go-jose/go-jose: error in cryptographic primitive");
    let other = World::start().await;
    let foreign = other.create_token(&["default"]).await;
    assert!(whoami(&w, &foreign).await.expect_err("another server's key").contains(UNAUTHORIZED));
    assert_eq!(w.review(&foreign, &[]).await["error"], "invalid signature, no keys found");
    assert!(whoami(&w, &fresh).await.is_ok(), "the untouched token still works");
    other.t.h.shutdown().await;
    w.t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_the_default_account_and_the_root_ca() {
    let w = World::start().await;
    let admin = w.t.client(ADMIN.0, ADMIN.1).await;
    let ca = w.t.ca.0.pem();
    let (code, ns) = call(&admin, "POST", "/api/v1/namespaces", &[], Some(json!({"metadata": {"name": "team"}}))).await;
    assert_eq!(code, 201, "{ns}");
    let sa_path = "/api/v1/namespaces/team/serviceaccounts/default";
    let cm_path = "/api/v1/namespaces/team/configmaps/kube-root-ca.crt";
    let get = |path: &'static str| {
        let admin = admin.clone();
        async move { Some(call(&admin, "GET", path, &[], None).await).filter(|(code, _)| *code == 200).map(|(_, v)| v) }
    };
    let sa = common::wait_for("the default ServiceAccount", Duration::from_secs(5), || get(sa_path)).await;
    let cm = common::wait_for("kube-root-ca.crt", Duration::from_secs(5), || get(cm_path)).await;
    assert_eq!(cm["data"], json!({"ca.crt": ca}));
    assert_eq!(
        cm["metadata"]["annotations"]["kubernetes.io/description"],
        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
    );
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let path = format!("/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt");
        common::wait_for("kube-root-ca.crt in the system namespaces", Duration::from_secs(5), || {
            let admin = admin.clone();
            let path = path.clone();
            async move { (call(&admin, "GET", &path, &[], None).await.0 == 200).then_some(()) }
        })
        .await;
    }

    // Deleted or edited, they come back.
    assert_eq!(call(&admin, "DELETE", sa_path, &[], None).await.0, 200);
    let again = common::wait_for("the default ServiceAccount again", Duration::from_secs(5), || get(sa_path)).await;
    assert_ne!(again["metadata"]["uid"], sa["metadata"]["uid"], "a new account");
    let (code, _) = call(&admin, "PATCH", cm_path, &[], Some(json!({"data": {"ca.crt": "forged"}}))).await;
    assert_eq!(code, 200);
    common::wait_for("ca.crt restored", Duration::from_secs(5), || {
        let ca = ca.clone();
        let fetched = get(cm_path);
        async move { fetched.await.filter(|cm| cm["data"]["ca.crt"] == json!(ca)) }
    })
    .await;
    assert_eq!(call(&admin, "DELETE", cm_path, &[], None).await.0, 200);
    common::wait_for("kube-root-ca.crt again", Duration::from_secs(5), || get(cm_path)).await;

    if let Some((ok, out, err)) = w.admin(&["get", "serviceaccounts,configmaps", "-n", "team", "-o", "name"]).await {
        assert!(ok, "{err}");
        assert_eq!(out, "serviceaccount/default\nconfigmap/kube-root-ca.crt\n");
    }
    w.t.h.shutdown().await;
}
