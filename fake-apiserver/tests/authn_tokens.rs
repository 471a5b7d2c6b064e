//! Static token authentication (`--token-auth-file`): a bearer token acts as its user for
//! RBAC and the reviews, an unknown token is upstream's 401 (never anonymous), a client
//! certificate comes first; TokenReview; the real kubectl with a token kubeconfig.

mod common;

use std::path::PathBuf;

use common::kubectl::with_kubeconfig as kubectl;
use common::pki::{Tls, call};
use fake_apiserver::auth::token_file::TokenFile;
use serde_json::json;

const SSR_PATH: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const TOKENS: &str = "alice-token,alice,uid-alice,\"dev,qa\"\nadmin-token,root,uid-root,system:masters\n";

/// A kube-rs client and a kubeconfig file that present `token` and no certificate.
async fn token_user(t: &Tls, name: &str, token: &str) -> (kube::Client, PathBuf) {
    let text = t.kubeconfig(None).replace("  user:\n    {}\n", &format!("  user:\n    token: {token}\n"));
    assert!(text.contains(token), "the kubeconfig carries the token");
    let p = t.dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(&p, &text).unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await.unwrap();
    (kube::Client::try_from(cfg).unwrap(), p)
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_authenticate_and_unknown_ones_are_refused() {
    let (tokens, warnings) = TokenFile::parse("tokens.csv", TOKENS).unwrap();
    assert!(warnings.is_empty());
    let t = Tls::start(|c| {
        c.authorization = true;
        c.token_auth = Some(tokens);
    })
    .await;
    let ssr = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});

    let (alice, alice_kc) = token_user(&t, "alice", "alice-token").await;
    let (code, review) = call(&alice, "POST", SSR_PATH, &[], Some(ssr.clone())).await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(review["status"]["userInfo"], json!({"username": "alice", "uid": "uid-alice", "groups": ["dev", "qa", "system:authenticated"]}));
    let (code, st) = call(&alice, "GET", "/api/v1/namespaces/default/pods", &[], None).await;
    assert_eq!(code, 403);
    assert_eq!(st["message"], "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
    let (admin, _) = token_user(&t, "admin", "admin-token").await;
    assert_eq!(call(&admin, "GET", "/api/v1/namespaces/default/pods", &[], None).await.0, 200);

    // An unknown token is refused, not served as anonymous; the refusal is audited.
    let (stranger, stranger_kc) = token_user(&t, "stranger", "no-such-token").await;
    let (code, st) = call(&stranger, "POST", SSR_PATH, &[], Some(ssr.clone())).await;
    assert_eq!(code, 401);
    assert_eq!(st, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}));
    assert!(t.h.audit().iter().any(|e| e.path == SSR_PATH && e.code == 401), "the 401 is audited");

    // A verified client certificate comes first: its user, whatever token rides along.
    let bob = t.client("bob", &["team"]).await;
    let (code, review) = call(&bob, "POST", SSR_PATH, &[("Authorization", "Bearer no-such-token")], Some(ssr)).await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(review["status"]["userInfo"]["username"], "bob");

    // TokenReview answers for the same tokens, for the API's audience only; it needs RBAC.
    let tr = |token: &str, auds: &[&str]| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": auds}});
    const TR_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
    let (code, r) = call(&admin, "POST", TR_PATH, &[], Some(tr("alice-token", &[]))).await;
    assert_eq!(code, 201, "{r}");
    assert_eq!(
        r["status"],
        json!({"authenticated": true, "user": {"username": "alice", "uid": "uid-alice", "groups": ["dev", "qa", "system:authenticated"]},
               "audiences": ["https://kubernetes.default.svc.cluster.local"]})
    );
    let (_, r) = call(&admin, "POST", TR_PATH, &[], Some(tr("no-such-token", &[]))).await;
    assert_eq!(r["status"], json!({"user": {}, "error": "invalid bearer token"}));
    let (_, r) = call(&admin, "POST", TR_PATH, &[], Some(tr("alice-token", &["vault"]))).await;
    assert_eq!(r["status"], json!({"user": {}, "error": "invalid bearer token"}), "a static token is not for other audiences");
    let (code, st) = call(&admin, "POST", TR_PATH, &[], Some(tr("", &[]))).await;
    assert_eq!((code, st["message"].as_str()), (400, Some("token is required for TokenReview in authentication")));
    let (code, st) = call(&alice, "POST", TR_PATH, &[], Some(tr("admin-token", &[]))).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "tokenreviews.authentication.k8s.io is forbidden: User \"alice\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope");

    let Some((ok, out, err)) = kubectl(&alice_kc, &["auth", "whoami"]).await else { return t.h.shutdown().await };
    assert!(ok, "{err}");
    assert!(out.contains("alice") && out.contains("uid-alice") && out.contains("[dev qa system:authenticated]"), "{out}");
    let (ok, _, err) = kubectl(&alice_kc, &["get", "pods"]).await.unwrap();
    assert!(!ok);
    assert!(err.contains("Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\""), "{err}");
    let (ok, _, err) = kubectl(&stranger_kc, &["get", "pods"]).await.unwrap();
    assert!(!ok);
    assert!(err.contains("You must be logged in to the server (Unauthorized)"), "{err}");
    t.h.shutdown().await;
}

/// Go clients (the kubelet's webhook authenticator) send TokenReviews as protobuf.
#[test]
fn token_reviews_decode_from_protobuf() {
    let field = common::pb::bytes;
    let spec = [field(1, b"alice-token"), field(2, b"aud-1"), field(2, b"aud-2")].concat();
    let type_meta = [field(1, b"authentication.k8s.io/v1"), field(2, b"TokenReview")].concat();
    let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &field(2, &spec))].concat();
    let v = fake_apiserver::protobuf::decode(&body).expect("decodes");
    assert_eq!(
        v,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "alice-token", "audiences": ["aud-1", "aud-2"]}})
    );
}

/// Anonymous HTTPS requests: `system:anonymous` held to RBAC by default (a 403 naming the
/// user, discovery still allowed by `system:public-info-viewer`), 401 for everything with
/// `--anonymous-auth=false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_system_anonymous_or_refused() {
    let on = Tls::start(|c| c.authorization = true).await;
    // An empty token: no credential at all. (kubectl without any credential prompts for a
    // user name instead of calling, so the calls are kube-rs's.)
    let (anon, _) = token_user(&on, "anon-client", "").await;
    let (code, st) = call(&anon, "GET", "/api/v1/namespaces/default/pods", &[], None).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
    assert_eq!(call(&anon, "GET", "/version", &[], None).await.0, 200, "/version is public");

    let off = Tls::start(|c| {
        c.authorization = true;
        c.anonymous_auth = false;
    })
    .await;
    let (anon, _) = token_user(&off, "anon-client", "").await;
    for path in ["/api/v1/namespaces/default/pods", "/version", "/api"] {
        let (code, st) = call(&anon, "GET", path, &[], None).await;
        assert_eq!(code, 401, "{path}: {st}");
        assert_eq!(st["reason"], "Unauthorized");
    }
    // Credentials still work.
    let admin = off.client("root", &["system:masters"]).await;
    assert_eq!(call(&admin, "GET", "/api/v1/namespaces/default/pods", &[], None).await.0, 200);
}
