//! The kubelet API's authentication and authorization end to end, as upstream's kubelet does
//! them with `authentication.webhook.enabled` and `authorization.mode: Webhook`: the fake API
//! server (with a static token file, ServiceAccount tokens and RBAC), fake-cri and the agent
//! in fresh namespaces, and real HTTPS calls carrying bearer tokens or client certificates.

mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, PostParams};
use serde_json::json;
use support::kubelet::{Kubelet, NODE, Stack, TestCa};
use support::{enter_namespaces, wait_for};

/// Upstream's `--token-auth-file` format: token, user, uid[, "groups"].
const TOKENS: &str = "proxy-token,proxy-reader,uid-proxy\n\
stats-token,stats-reader,uid-stats\n\
nobody-token,nobody,uid-nobody,\"team-a,team-b\"\n\
review-fails-token,late,uid-late\n";

fn config(ca: &Path) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 0
authentication:
  x509:
    clientCAFile: {}
  webhook:
    enabled: true
    cacheTTL: 2m
  anonymous:
    enabled: false
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 5m
    cacheUnauthorizedTTL: 30s
nodeLeaseDurationSeconds: 4
nodeStatusUpdateFrequency: 500ms
maxPods: 20
nodekit:
  runtimeRelistPeriod: 200ms
  apiRequestTimeout: 3s
  nodeSize:
    cpu: \"2\"
    memory: 2Gi
    ephemeralStorage: 64Gi
    pids: 100000
",
        ca.display()
    )
}

/// A ClusterRole allowing `get` on `nodes/<subresource>`, bound to `subjects`.
async fn grant(client: &kube::Client, subresource: &str, subjects: serde_json::Value) -> Result<()> {
    let name = format!("node-{subresource}-reader");
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": [format!("nodes/{subresource}")], "verbs": ["get"]}],
    }))?;
    Api::<ClusterRole>::all(client.clone()).create(&PostParams::default(), &role).await?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await?;
    Ok(())
}

/// A TokenRequest token of ServiceAccount default/`name` (created first).
async fn service_account_token(client: &kube::Client, name: &str) -> Result<String> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": name}}))?).await?;
    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}});
    let issued: serde_json::Value = sas.create_subresource("token", name, &PostParams::default(), &request).await?;
    issued["status"]["token"].as_str().map(str::to_string).context("no status.token in the TokenRequest")
}

/// How many times `path` was created on the API server so far.
fn reviews(server: &fake_apiserver::Handle, path: &str) -> usize {
    server.audit().iter().filter(|e| e.method == "POST" && e.path == path).count()
}

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

fn forbidden(user: &str, verb: &str, subresources: &str) -> String {
    format!("Forbidden (user={user}, verb={verb}, resource=nodes, subresource(s)=[{subresources}])\n")
}

/// Bearer tokens: static file, ServiceAccount, unknown; no credentials; the reviews cached.
async fn tokens(k: &Kubelet, server: &fake_apiserver::Handle, sa_token: &str) -> Result<()> {
    let (status, body) = k.bearer("proxy-token", "GET", "/pods").await?;
    ensure!(status == 200, "get nodes/proxy reaches /pods: {status} {body}");
    let list: serde_json::Value = serde_json::from_str(&body)?;
    ensure!(list["kind"] == "PodList", "{list}");
    let (status, body) = k.bearer(sa_token, "GET", "/pods").await?;
    ensure!(status == 200, "a ServiceAccount token with nodes/proxy: {status} {body}");

    let (tr, sar) = (reviews(server, TOKEN_REVIEWS), reviews(server, ACCESS_REVIEWS));
    let (status, _) = k.bearer("proxy-token", "GET", "/pods").await?;
    ensure!(status == 200);
    let again = (reviews(server, TOKEN_REVIEWS) - tr, reviews(server, ACCESS_REVIEWS) - sar);
    ensure!(again == (0, 0), "a repeated request is answered from the caches, yet made (TokenReviews, SubjectAccessReviews) {again:?}");

    let (status, body) = k.bearer("nobody-token", "GET", "/pods").await?;
    ensure!(status == 403 && body == forbidden("nobody", "get", "pods proxy"), "no right: {status} {body:?}");
    for token in ["not-a-token", "proxy-token-but-longer"] {
        let (status, body) = k.bearer(token, "GET", "/pods").await?;
        ensure!(status == 401 && body == "Unauthorized", "unknown token {token}: {status} {body:?}");
    }
    for path in ["/pods", "/healthz", "/stats/summary"] {
        let (status, body) = k.call(false, "GET", path).await?;
        ensure!(status == 401 && body == "Unauthorized", "{path} anonymous (disabled): {status} {body:?}");
    }
    let (status, body) = k.bearer("proxy-token", "POST", "/run/default/nope/main?cmd=ls").await?;
    ensure!(status == 403 && body == forbidden("proxy-reader", "create", "proxy"), "POST is create: {status} {body:?}");
    Ok(())
}

/// `/stats/summary` needs nodes/stats, and nodes/stats alone does not open /pods.
async fn stats(k: &Kubelet) -> Result<()> {
    let waited = wait_for("stats/summary with nodes/stats", Duration::from_secs(20), || async {
        let (status, body) = k.bearer("stats-token", "GET", "/stats/summary").await.ok()?;
        (status == 200).then_some(body)
    })
    .await;
    let summary = match waited {
        Ok(s) => s,
        Err(e) => bail!("{e}; last answer {:?}", k.bearer("stats-token", "GET", "/stats/summary").await?),
    };
    let summary: serde_json::Value = serde_json::from_str(&summary)?;
    ensure!(summary["node"]["nodeName"] == NODE, "{summary}");
    let (status, body) = k.bearer("stats-token", "GET", "/pods").await?;
    ensure!(status == 403 && body == forbidden("stats-reader", "get", "pods proxy"), "nodes/stats only: {status} {body:?}");
    let (status, body) = k.bearer("proxy-token", "GET", "/stats/summary").await?;
    ensure!(status == 403 && body == forbidden("proxy-reader", "get", "stats"), "nodes/proxy only: {status} {body:?}");
    Ok(())
}

/// Client certificates: CN is the user, O the groups.
async fn certificates(k: &Kubelet, ca: &TestCa) -> Result<()> {
    let masters = k.connector(&ca.client("kube-apiserver-kubelet-client", Some("system:masters"))?)?;
    let (status, body) = k.call_with(&masters, "GET", "/pods", &[]).await?;
    ensure!(status == 200, "system:masters by its O: {status} {body}");
    let plain = k.connector(&ca.client("cert-user", None)?)?;
    let (status, body) = k.call_with(&plain, "GET", "/configz", &[]).await?;
    ensure!(status == 403 && body == forbidden("cert-user", "get", "configz proxy"), "CN as the user: {status} {body:?}");
    let header = [("authorization", "Bearer proxy-token".to_string())];
    let (status, body) = k.call_with(&plain, "GET", "/pods", &header).await?;
    ensure!(status == 403 && body == forbidden("cert-user", "get", "pods proxy"), "the certificate comes before the token: {status} {body:?}");
    Ok(())
}

/// A failed SubjectAccessReview is a 500, a failed TokenReview a 401; neither is cached.
async fn review_failures(k: &Kubelet, server: &fake_apiserver::Handle, ca: &TestCa) -> Result<()> {
    let fault = |path: &str| fake_apiserver::FaultRule {
        path_prefix: Some(path.to_string()),
        error_code: Some(403),
        times: Some(1),
        ..fake_apiserver::FaultRule::default()
    };
    let user = k.connector(&ca.client("fault-user", None)?)?;
    server.add_fault(fault(ACCESS_REVIEWS));
    let (status, body) = k.call_with(&user, "GET", "/metrics", &[]).await?;
    let want = "Authorization error (user=fault-user, verb=get, resource=nodes, subresource=metrics)";
    ensure!(status == 500 && body == want, "SubjectAccessReview failed: {status} {body:?}");
    let (status, body) = k.call_with(&user, "GET", "/metrics", &[]).await?;
    ensure!(status == 403 && body == forbidden("fault-user", "get", "metrics"), "after the failure: {status} {body:?}");
    server.add_fault(fault(TOKEN_REVIEWS));
    let (status, body) = k.bearer("review-fails-token", "GET", "/pods").await?;
    ensure!(status == 401 && body == "Unauthorized", "TokenReview failed: {status} {body:?}");
    let (status, body) = k.bearer("review-fails-token", "GET", "/pods").await?;
    ensure!(status == 403 && body == forbidden("late", "get", "pods proxy"), "after the failure: {status} {body:?}");
    Ok(())
}

async fn scenario() -> Result<()> {
    let (tokens_file, _) = fake_apiserver::auth::token_file::TokenFile::parse("tokens.csv", TOKENS)?;
    let cfg = fake_apiserver::Config { token_auth: Some(tokens_file), authorization: true, ..fake_apiserver::Config::with_listen("127.0.0.1:0") };
    let stack = Stack::start("kubelet-api-auth", cfg, config).await?;
    let (server, ca) = (&stack.server, &stack.ca);
    let k = stack.kubelet(&ca.client("unused", None)?)?;

    let admin = node_agent::agent::client_from_kubeconfig(&stack.kubeconfig).await?;
    let sa_token = service_account_token(&admin, "kubelet-reader").await?;
    let sa = json!({"kind": "ServiceAccount", "name": "kubelet-reader", "namespace": "default"});
    grant(&admin, "proxy", json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "proxy-reader"}, sa])).await?;
    grant(&admin, "stats", json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "stats-reader"}])).await?;

    tokens(&k, server, &sa_token).await?;
    stats(&k).await?;
    certificates(&k, ca).await?;
    review_failures(&k, server, ca).await?;
    stack.stop().await
}

#[test]
fn kubelet_api_auth() {
    if !enter_namespaces("kubelet_api_auth") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "node_agent=info".into()))
        .with_test_writer()
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if let Err(e) = rt.block_on(scenario()) {
        panic!("scenario failed: {e:#}");
    }
}
