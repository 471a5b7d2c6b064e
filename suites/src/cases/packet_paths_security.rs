//! Area `security` (here for the cluster fixture it shares with the packet paths): a pod's
//! ServiceAccount credentials, as the API server's admission plugin mounts them and the agent
//! writes them, reach the API server from inside the pod through the `kubernetes` Service's
//! ClusterIP (DNAT by the reference proxy), verify its serving certificate with the published
//! root CA, authenticate as the pod's ServiceAccount, and are held to RBAC.

use anyhow::{Context, ensure};
use harness::backend::ProxyMode;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::basic::NODE_A;
use super::env::{Cluster, POD_READY};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::pods::{self, container};
use crate::{cri, kube_wait};

/// Where upstream mounts the token, CA bundle and namespace.
const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The `kubernetes` Service, as a pod addresses it.
const API: &str = "https://10.96.0.1:443";

/// One HTTPS request from inside container `id` with the pod's token and CA: `(status, body)`.
async fn from_pod(cri: &mut cri::Cri, id: &str, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<(String, String)> {
    let url = format!("{API}{path}");
    let (ca, token) = (format!("{MOUNT}/ca.crt"), format!("{MOUNT}/token"));
    let mut cmd = vec!["/workload", "https-get", &url, "--ca", &ca, "--bearer-file", &token, "--method", method];
    if let Some(b) = body {
        cmd.extend(["--body", b]);
    }
    let out = cri.exec_ok(id, &cmd).await?;
    let (status, rest) = out.split_once('\n').unwrap_or((out.as_str(), ""));
    Ok((status.trim_start_matches("HTTP ").to_string(), rest.to_string()))
}

/// Broken behaviour caught: no ServiceAccount volume in the pod (admission or agent), a token
/// the API server does not take, no route from a pod to the API through the Service (proxy
/// or endpoints), a CA bundle that does not verify the server, a token that is allowed more
/// than its account's RBAC, or RBAC that ignores a new binding.
pub(super) fn pod_token_reaches_the_api(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let cl = Cluster::start_secure(&ctx, ProxyMode::Nftables, true).await?;
        pods::create(&cl.client, &pods::pod("api-client", NODE_A, vec![container("c", &["pause"])], json!({}))?).await?;
        let pod: Pod = kube_wait::pod(&cl.client, "default", "api-client", "Ready", POD_READY, |p| {
            (kube_wait::pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        let mounts = pod.spec.as_ref().and_then(|s| s.containers[0].volume_mounts.clone()).unwrap_or_default();
        ensure!(mounts.iter().any(|m| m.mount_path == MOUNT), "no ServiceAccount volume mounted at {MOUNT}: {mounts:?}");
        let id = pods::runtime_container_id(&pod, "c")?;
        let mut cri = cri::connect(cl.runtime_socket(NODE_A)?, NODE_A).await?;

        // Who the pod is, to the API server.
        let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).to_string();
        let (status, body) = from_pod(&mut cri, &id, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", Some(&review)).await?;
        ensure!(status == "201", "SelfSubjectReview from the pod: {status} {body}");
        let who: serde_json::Value = serde_json::from_str(&body).with_context(|| format!("SelfSubjectReview answer {body:?}"))?;
        let user = who.pointer("/status/userInfo/username").and_then(|u| u.as_str()).unwrap_or_default();
        ensure!(user == "system:serviceaccount:default:default", "the pod is {user:?} to the API server: {body}");

        // Beyond its RBAC: refused with upstream's message.
        let (status, body) = from_pod(&mut cri, &id, "GET", "/api/v1/namespaces/default/pods", None).await?;
        ensure!(status == "403", "listing pods with the default account's token: {status} {body}");
        let want = r#"pods is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""#;
        ensure!(body.contains(want), "403 without upstream's message: {body}");

        // Granted `view` in the namespace, the same token lists the pods.
        let rb: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "default-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
        }))?;
        Api::<RoleBinding>::namespaced(cl.client.clone(), "default").create(&PostParams::default(), &rb).await?;
        let listed = harness::wait::wait_for("the pod's token to list pods once bound to view", std::time::Duration::from_secs(10), || {
            let mut cri = cri.clone();
            let id = id.clone();
            async move {
                match from_pod(&mut cri, &id, "GET", "/api/v1/namespaces/default/pods", None).await {
                    Ok((s, b)) if s == "200" && b.contains("\"api-client\"") => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
        listed?;
        cl.stop().await
    })
}

/// A kube client with node `node`'s own credentials (its kubeconfig from the world PKI).
async fn node_client(cl: &Cluster, node: &str) -> anyhow::Result<kube::Client> {
    let path = cl.control_plane().node_kubeconfig(node)?;
    let kc = kube::config::Kubeconfig::read_from(&path)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// `(status code, message)` of a failed API call; `(200, "")` when it succeeded.
fn outcome<T>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Ok(_) => (200, String::new()),
        Err(kube::Error::Api(s)) => (s.code, s.message.clone()),
        Err(e) => (0, e.to_string()),
    }
}

/// Broken behaviour caught: a node credential that may read pods bound to another node or
/// their secrets (Node authorizer), write another node's status or give itself a role label
/// (NodeRestriction) — while its own pods, secrets and status stay reachable, so a server that
/// refuses everything fails too.
pub(super) fn node_credentials_confined(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        use k8s_openapi::api::core::v1::{Node, Secret};
        use kube::api::{Patch, PatchParams};
        let cl = Cluster::start_secure(&ctx, ProxyMode::Nftables, true).await?;
        let secrets: Api<Secret> = Api::namespaced(cl.client.clone(), "default");
        for name in ["a-secret", "b-secret"] {
            let s: Secret = serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {"k": "v"}}))?;
            secrets.create(&PostParams::default(), &s).await?;
        }
        for (pod, node, secret) in [("on-a", NODE_A, "a-secret"), ("on-b", "node-b", "b-secret")] {
            let mut c = container("c", &["pause"]);
            pods::merge(&mut c, json!({"volumeMounts": [{"name": "s", "mountPath": "/etc/s"}]}));
            let spec = json!({"volumes": [{"name": "s", "secret": {"secretName": secret}}]});
            pods::create(&cl.client, &pods::pod(pod, node, vec![c], spec)?).await?;
        }
        let a = node_client(&cl, NODE_A).await?;
        let (pods_a, secrets_a, nodes_a): (Api<Pod>, Api<Secret>, Api<Node>) =
            (Api::namespaced(a.clone(), "default"), Api::namespaced(a.clone(), "default"), Api::all(a.clone()));
        // Its own: allowed.
        ensure!(outcome(pods_a.get("on-a").await).0 == 200, "node-a cannot read its own pod");
        ensure!(outcome(secrets_a.get("a-secret").await).0 == 200, "node-a cannot read its own pod's secret");
        let status = json!({"status": {"conditions": [{"type": "NodekitProbe", "status": "True", "reason": "Probe", "message": "own status"}]}});
        let (code, msg) = outcome(nodes_a.patch_status(NODE_A, &PatchParams::default(), &Patch::Strategic(&status)).await);
        ensure!(code == 200, "node-a cannot patch its own status: {code} {msg}");
        // Another node's: refused, each with the reason upstream gives.
        let (code, msg) = outcome(pods_a.get("on-b").await);
        ensure!(code == 403 && msg.contains("no relationship found between node 'node-a' and this object"), "node-a reading node-b's pod: {code} {msg}");
        let (code, msg) = outcome(secrets_a.get("b-secret").await);
        ensure!(code == 403 && msg.contains("no relationship found between node 'node-a' and this object"), "node-a reading node-b's secret: {code} {msg}");
        let (code, msg) = outcome(nodes_a.patch_status("node-b", &PatchParams::default(), &Patch::Strategic(&status)).await);
        ensure!(code == 403 && msg.contains("node-b"), "node-a patching node-b's status: {code} {msg}");
        let label = json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}});
        let (code, msg) = outcome(nodes_a.patch(NODE_A, &PatchParams::default(), &Patch::Strategic(&label)).await);
        ensure!(code == 403 && msg.contains("node-role.kubernetes.io/control-plane"), "node-a labelling itself with a role: {code} {msg}");
        cl.stop().await
    })
}

/// A client of node-a's kubelet API (verifying it against the world CA) as `who`: a client
/// certificate, a bearer token, or nobody.
enum Caller<'a> {
    Cert(&'a harness::pki::Credential),
    Token(&'a str),
    Anonymous,
}

async fn kubelet_client(cl: &Cluster, ctx: &CaseCtx, who: Caller<'_>) -> anyhow::Result<kube::Client> {
    use base64::Engine as _;
    let node: k8s_openapi::api::core::v1::Node = Api::all(cl.client.clone()).get(NODE_A).await?;
    let port = node.status.and_then(|s| s.daemon_endpoints?.kubelet_endpoint).map(|e| e.port).context("daemonEndpoints")?;
    let mut cfg = kube::Config::new(format!("https://{}:{port}", ctx.world.host(NODE_A)?.ip()).parse()?);
    let pki = cl.control_plane().pki().context("the world serves HTTPS")?;
    cfg.root_cert = Some(vec![pki.ca_der()?]);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    match who {
        Caller::Cert(c) => {
            cfg.auth_info.client_certificate_data = Some(b64(&c.cert_pem));
            cfg.auth_info.client_key_data = Some(b64(&c.key_pem).into());
        }
        Caller::Token(t) => cfg.auth_info.token = Some(t.to_string().into()),
        Caller::Anonymous => {}
    }
    Ok(kube::Client::try_from(cfg)?)
}

/// `(status, body)` of `GET path` on the kubelet.
async fn kubelet_get(client: &kube::Client, path: &str) -> anyhow::Result<(u16, String)> {
    let req = http::Request::get(path).body(Vec::new())?;
    Ok(match client.request_text(req).await {
        Ok(body) => (200, body),
        Err(kube::Error::Api(s)) => (s.code, s.message.clone()),
        Err(e) => return Err(e.into()),
    })
}

/// Grants `subject` (RBAC subject JSON) `get` on `nodes/<sub>` through a ClusterRole of its own.
async fn grant(client: &kube::Client, name: &str, sub: &str, subject: serde_json::Value) -> anyhow::Result<()> {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let role: ClusterRole = serde_json::from_value(json!({"metadata": {"name": name}, "rules": [{"apiGroups": [""], "resources": [format!("nodes/{sub}")], "verbs": ["get"]}]}))?;
    Api::<ClusterRole>::all(client.clone()).create(&PostParams::default(), &role).await?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [subject],
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await?;
    Ok(())
}

/// Broken behaviour caught: a kubelet API that serves callers without credentials, that takes
/// any authenticated caller (no SubjectAccessReview), that ignores bearer tokens, or that checks
/// the wrong subresource (stats rights reading pods).
pub(super) fn kubelet_api_authorizes(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        use k8s_openapi::api::core::v1::ServiceAccount;
        let cl = Cluster::start_secure(&ctx, ProxyMode::Nftables, true).await?;
        let pki = cl.control_plane().pki().context("the world serves HTTPS")?;
        let (eve, olive) = (pki.client("eve", "eve", &[])?, pki.client("olive", "olive", &["ops"])?);
        grant(&cl.client, "kubelet-pods-readers", "proxy", json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"})).await?;
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "stats-reader"}}))?;
        Api::<ServiceAccount>::namespaced(cl.client.clone(), "default").create(&PostParams::default(), &sa).await?;
        grant(&cl.client, "kubelet-stats-readers", "stats", json!({"kind": "ServiceAccount", "name": "stats-reader", "namespace": "default"})).await?;
        let tr = TokenRequest { spec: TokenRequestSpec { audiences: vec![], ..Default::default() }, ..Default::default() };
        let tr: TokenRequest = Api::<ServiceAccount>::namespaced(cl.client.clone(), "default").create_subresource("token", "stats-reader", &PostParams::default(), &tr).await?;
        let token = tr.status.map(|s| s.token).context("TokenRequest gave no token")?;

        let (code, body) = kubelet_get(&kubelet_client(&cl, &ctx, Caller::Anonymous).await?, "/pods").await?;
        ensure!(code == 401, "anonymous GET /pods on the kubelet: {code} {body}");
        let (code, body) = kubelet_get(&kubelet_client(&cl, &ctx, Caller::Cert(&eve)).await?, "/pods").await?;
        ensure!(code == 403 && body.contains("Forbidden (user=eve, verb=get, resource=nodes, subresource(s)=[pods proxy])"), "eve (no rights) GET /pods: {code} {body}");
        let (code, body) = kubelet_get(&kubelet_client(&cl, &ctx, Caller::Cert(&olive)).await?, "/pods").await?;
        ensure!(code == 200 && body.contains("\"PodList\""), "olive (nodes/proxy through group ops) GET /pods: {code} {body}");
        let reader = kubelet_client(&cl, &ctx, Caller::Token(&token)).await?;
        let (code, body) = kubelet_get(&reader, "/stats/summary").await?;
        ensure!(code == 200 && body.contains("\"node\""), "the stats-reader token GET /stats/summary: {code} {body}");
        let (code, body) = kubelet_get(&reader, "/pods").await?;
        ensure!(code == 403 && body.contains("user=system:serviceaccount:default:stats-reader"), "the stats-reader token GET /pods: {code} {body}");
        cl.stop().await
    })
}
