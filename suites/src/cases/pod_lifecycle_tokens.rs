//! A projected ServiceAccount token (upstream's `kube-api-access-*` volume: a TokenRequest bound
//! to the pod, next to downwardAPI files) is written into the pod, is the pod's ServiceAccount
//! to the API server, names the pod it is bound to, and stops working once the pod is gone.

use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::{START, env, merge_probe};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::NODE;
use crate::kube_wait::{self, pod_condition_status};
use crate::pods::{self, container};

/// Where upstream mounts the token, CA and namespace in every container.
const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// TokenReview of `token` as the admin client: `(authenticated, user name, extra)`.
async fn review(client: &kube::Client, token: &str) -> anyhow::Result<(bool, String, std::collections::BTreeMap<String, Vec<String>>)> {
    let api: Api<TokenReview> = Api::all(client.clone());
    let r = TokenReview { spec: TokenReviewSpec { token: Some(token.into()), audiences: None }, ..Default::default() };
    let st = api.create(&PostParams::default(), &r).await.context("TokenReview")?.status.unwrap_or_default();
    let user = st.user.unwrap_or_default();
    Ok((st.authenticated == Some(true), user.username.unwrap_or_default(), user.extra.unwrap_or_default()))
}

/// Broken behaviour caught: projected volumes not mounted (FailedMount, no token file: the
/// pod never starts), a token not requested for the pod's ServiceAccount, a token not bound
/// to the pod (no pod claims, and it outlives the pod), downwardAPI files missing or wrong.
pub(super) fn projected_token(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        // The container is Ready once the namespace file holds the pod's namespace; the token
        // is then read from inside it (ExecSync through the runtime).
        let mut c = container("c", &["pause"]);
        pods::merge(
            &mut c,
            json!({
                "volumeMounts": [{"name": "kube-api-access", "mountPath": MOUNT, "readOnly": true}],
                "startupProbe": merge_probe(json!({"exec": {"command": ["/workload", "check-file", format!("{MOUNT}/namespace"), "--contains", "default"]}})),
            }),
        );
        let spec = json!({
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}}],
        });
        pods::create(&env.client, &pods::pod("tok", NODE, vec![c], spec)?).await?;
        let pod: Pod = kube_wait::pod(&env.client, "default", "tok", "Ready with its projected files", START, |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        let id = pods::runtime_container_id(&pod, "c")?;
        let mut cri = crate::cri::connect(env.runtime.socket(), NODE).await?;
        let token = cri.exec_ok(&id, &["/workload", "cat", &format!("{MOUNT}/token")]).await?;
        let token = token.trim();
        ensure!(token.split('.').count() == 3, "the projected token file does not hold a JWT: {token:?}");
        let (ok, user, extra) = review(&env.client, token).await?;
        ensure!(ok, "the projected token does not authenticate");
        ensure!(user == "system:serviceaccount:default:default", "the projected token is {user:?}, not the pod's ServiceAccount");
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let claim = |k: &str| extra.get(&format!("authentication.kubernetes.io/{k}")).cloned().unwrap_or_default();
        ensure!(claim("pod-name") == ["tok"] && claim("pod-uid") == [uid.clone()], "the token is not bound to pod tok ({uid}): extra {extra:?}");
        ensure!(claim("node-name") == [NODE.to_string()], "the token does not name the pod's node: extra {extra:?}");
        pods::delete(&env.client, "tok", Some(0)).await?;
        kube_wait::pod_gone(&env.client, "default", "tok", Duration::from_secs(20)).await?;
        let (still, _, _) = review(&env.client, token).await?;
        ensure!(!still, "the token of a deleted pod still authenticates");
        env.stop().await
    })
}
