//! Image pull secrets.

use std::collections::BTreeMap;

use anyhow::ensure;
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::env;
use super::faults::{wait_event, wait_running, wait_waiting};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::NODE;
use crate::pods::{self, container};

/// The image only its credentials pull (the world's registry and fake-cri's catalog both
/// require them).
const PRIVATE: &str = fake_cri::config::PRIVATE_IMAGE;

/// A `kubernetes.io/dockerconfigjson` secret with one entry: `registry` → `user:password`
/// (as the `auth` field, as `kubectl create secret docker-registry` writes it).
fn docker_config_secret(name: &str, registry: &str, user: &str, password: &str) -> Secret {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = json!({"auths": {registry: {"username": user, "password": password, "auth": auth}}});
    Secret {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(".dockerconfigjson".to_string(), ByteString(config.to_string().into_bytes()))])),
        ..Default::default()
    }
}

/// Creates `regcred` in `default`: the right credentials for `nodekit.local`. Returns the
/// namespace's secrets.
async fn create_regcred(client: &kube::Client) -> anyhow::Result<Api<Secret>> {
    let (user, password) = fake_cri::config::PRIVATE_IMAGE_CREDENTIALS;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets.create(&PostParams::default(), &docker_config_secret("regcred", "nodekit.local", user, password)).await?;
    Ok(secrets)
}

/// A pod running [`PRIVATE`] (pulled every time) with `secrets` as its image pull secrets.
fn private_pod(name: &str, secrets: &[&str]) -> anyhow::Result<k8s_openapi::api::core::v1::Pod> {
    let mut c = container("c", &["pause"]);
    c["image"] = json!(PRIVATE);
    c["imagePullPolicy"] = json!("Always");
    let refs: Vec<_> = secrets.iter().map(|s| json!({"name": s})).collect();
    pods::pod(name, NODE, vec![c], json!({"imagePullSecrets": refs}))
}

/// Upstream's image pull credentials (`kuberuntime_image.go` PullImage with the keyring of
/// `credentialprovider/secrets`), against the world's registry, which serves [`PRIVATE`] only
/// to basic authentication. A pod without pull secrets, and one whose only secret does not
/// exist (upstream's `FailedToRetrieveImagePullSecret` warning "Unable to retrieve some image
/// pull secrets (absent); attempting to pull the image may not succeed."), wait in ErrImagePull
/// with the runtime's 401. A pod with a wrong credential for `nodekit.local/private` and the
/// right one for `nodekit.local` runs: the more specific entry is tried first, fails, and the
/// next one pulls. A pod created without secrets once its ServiceAccount names one is admitted
/// with it and runs. Catches an agent that pulls without the pod's secrets, uses only the first
/// matching credential, or drops the warning about a missing secret (and an API server that
/// does not give pods their account's pull secrets).
pub(super) fn pull_secrets_used(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let secrets = create_regcred(&env.client).await?;
        let user = fake_cri::config::PRIVATE_IMAGE_CREDENTIALS.0;
        secrets.create(&PostParams::default(), &docker_config_secret("stale", "https://nodekit.local/v2/private", user, "expired")).await?;
        pods::create(&env.client, &private_pod("anonymous", &[])?).await?;
        pods::create(&env.client, &private_pod("missing-secret", &["absent"])?).await?;
        pods::create(&env.client, &private_pod("with-secrets", &["stale", "regcred"])?).await?;
        // Created after "anonymous": the account's secrets go to pods admitted from now on.
        let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), "default");
        accounts.patch("default", &PatchParams::default(), &Patch::Merge(json!({"imagePullSecrets": [{"name": "regcred"}]}))).await?;
        let admitted = pods::create(&env.client, &private_pod("from-account", &[])?).await?;
        let got = admitted.spec.and_then(|s| s.image_pull_secrets).unwrap_or_default();
        ensure!(got.len() == 1 && got[0].name == "regcred", "a pod without pull secrets was admitted with {got:?}, not its account's");

        let failed = format!("Failed to pull image \"{PRIVATE}\": ");
        for name in ["anonymous", "missing-secret"] {
            let w = wait_waiting(&env, name, "ErrImagePull").await?;
            let message = w.message.unwrap_or_default();
            let runtime = format!("rpc error: code = Unknown desc = failed to pull and unpack image \"{PRIVATE}\": ");
            ensure!(
                message.starts_with(&runtime) && message.ends_with("401 Unauthorized"),
                "{name}: ErrImagePull message {message:?}, expected the runtime's error on the registry's 401 ({runtime:?}…)"
            );
            let (ty, m) = wait_event(&env, name, "Failed", |m| m.starts_with(&failed)).await?;
            ensure!(ty == "Warning" && m == format!("{failed}{message}"), "{name}: pull failure event {ty} {m:?}");
        }
        let want = "Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed.";
        let (ty, _) = wait_event(&env, "missing-secret", "FailedToRetrieveImagePullSecret", |m| m == want).await?;
        ensure!(ty == "Warning", "FailedToRetrieveImagePullSecret is {ty}, upstream records a Warning");

        wait_running(&env, "with-secrets").await?;
        wait_running(&env, "from-account").await?;
        wait_event(&env, "with-secrets", "Pulled", |m| m.starts_with(&format!("Successfully pulled image \"{PRIVATE}\" in "))).await?;
        let evs = pods::events_for(&env.client, "with-secrets").await?;
        ensure!(
            !evs.iter().any(|e| e.reason.as_deref() == Some("Failed") || e.reason.as_deref() == Some("FailedToRetrieveImagePullSecret")),
            "a pull that succeeds with the second credential is no failure: {:?}",
            evs.iter().map(|e| (e.reason.clone(), e.message.clone())).collect::<Vec<_>>()
        );
        env.stop().await
    })
}

/// Upstream's node docker config (`credentialprovider/default_provider.go`, `config.go`
/// `ReadDockerConfigFile`): a `config.json` in the node agent's root directory gives the node's
/// own credentials, read when a pull needs them, after the pod's pull secrets
/// (`UnionDockerKeyring`). A pod without pull secrets pulls [`PRIVATE`] with the node's
/// credential and runs; a pod whose only secret holds a wrong password for `nodekit.local` runs
/// too: its secret's credential fails with the registry's 401, then the node's pulls, and no
/// failure is reported. Catches an agent that ignores the node's docker config, uses only the
/// pod's secrets when it has some, or has no root directory until its first pod.
pub(super) fn node_credentials_used(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let (user, password) = fake_cri::config::PRIVATE_IMAGE_CREDENTIALS;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = json!({"auths": {"nodekit.local": {"auth": auth}}});
        let file = env.agent.root_dir().join("config.json");
        // Not created here: a running agent has its root directory (upstream's setupDataDirs).
        std::fs::write(&file, config.to_string()).map_err(|e| anyhow::anyhow!("writing {} (the agent's root directory should exist once it runs): {e}", file.display()))?;
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");
        secrets.create(&PostParams::default(), &docker_config_secret("stale", "nodekit.local", user, "expired")).await?;
        pods::create(&env.client, &private_pod("node-credentials", &[])?).await?;
        pods::create(&env.client, &private_pod("stale-secret", &["stale"])?).await?;
        for name in ["node-credentials", "stale-secret"] {
            wait_running(&env, name).await?;
            wait_event(&env, name, "Pulled", |m| m.starts_with(&format!("Successfully pulled image \"{PRIVATE}\" in "))).await?;
            let evs = pods::events_for(&env.client, name).await?;
            let failures: Vec<_> = evs.iter().filter(|e| e.type_.as_deref() == Some("Warning")).map(|e| (e.reason.clone(), e.message.clone())).collect();
            ensure!(failures.is_empty(), "{name}: a pull the node's credential completes reports {failures:?}");
        }
        env.stop().await
    })
}

/// Upstream's pull policy Never (`image_manager.go`, `EnsureImageExists`): an image the node
/// does not have is never pulled, even with the pod's pull secret at hand. The container waits
/// in `ErrImageNeverPull` with `Container image "…" is not present with pull policy of Never`,
/// the same Warning event and `Error: ErrImageNeverPull`, and it never turns into an image
/// back-off; a present image runs under Never. Catches an agent that pulls anyway, or reports
/// the absent image as a failed pull (ErrImagePull, ImagePullBackOff).
pub(super) fn never_pulls(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        create_regcred(&env.client).await?;
        let mut absent = private_pod("absent", &["regcred"])?;
        let mut present = pods::pod("present", NODE, vec![container("c", &["pause"])], json!({}))?;
        for p in [&mut absent, &mut present] {
            for c in p.spec.iter_mut().flat_map(|s| s.containers.iter_mut()) {
                c.image_pull_policy = Some("Never".into());
            }
        }
        pods::create(&env.client, &absent).await?;
        pods::create(&env.client, &present).await?;
        wait_running(&env, "present").await?;
        let want = format!("Container image \"{PRIVATE}\" is not present with pull policy of Never");
        let w = wait_waiting(&env, "absent", "ErrImageNeverPull").await?;
        ensure!(w.message.as_deref() == Some(want.as_str()), "ErrImageNeverPull message {:?}, expected {want:?}", w.message);
        let (ty, _) = wait_event(&env, "absent", "ErrImageNeverPull", |m| m == want).await?;
        ensure!(ty == "Warning", "the ErrImageNeverPull event is {ty}, upstream records a Warning");
        wait_event(&env, "absent", "Failed", |m| m == "Error: ErrImageNeverPull").await?;
        // Retried syncs keep the reason: it never becomes a pull or an image back-off.
        let before = pods::events_for(&env.client, "absent").await?.iter().filter(|e| e.reason.as_deref() == Some("ErrImageNeverPull")).map(|e| e.count.unwrap_or(1)).sum::<i32>();
        harness::wait::wait_for("a retried sync of the absent image", super::START, || async {
            let evs = pods::events_for(&env.client, "absent").await.ok()?;
            let now: i32 = evs.iter().filter(|e| e.reason.as_deref() == Some("ErrImageNeverPull")).map(|e| e.count.unwrap_or(1)).sum();
            (now > before).then_some(())
        })
        .await?;
        let evs = pods::events_for(&env.client, "absent").await?;
        let pulls: Vec<_> = evs.iter().filter(|e| matches!(e.reason.as_deref(), Some("Pulling" | "Pulled" | "BackOff"))).map(|e| (e.reason.clone(), e.message.clone())).collect();
        ensure!(pulls.is_empty(), "an image under policy Never was pulled or backed off: {pulls:?}");
        let w = wait_waiting(&env, "absent", "ErrImageNeverPull").await?;
        ensure!(w.message.as_deref() == Some(want.as_str()), "after a retry the container waits with {w:?}");
        env.stop().await
    })
}
