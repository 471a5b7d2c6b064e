//! Volume contents of a running pod: configMap and secret changes reach its containers.

use std::time::Duration;

use anyhow::ensure;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::{START, env, merge_probe};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::NODE;
use crate::kube_wait::{self, pod_condition_status};
use crate::pods::{self, container, restarts};

/// How soon a changed object must reach the running pod and show in its Ready condition: the
/// agent's syncFrequency (2 s in the case worlds; upstream's bound is syncFrequency plus its
/// object cache's TTL), a readiness period (1 s) and the status write.
const PROPAGATION: Duration = Duration::from_secs(6);

/// Upstream's ConfigMap "updates should be reflected in volume" and Secrets "optional updates
/// should be reflected in volume" (`test/e2e/common/storage/`): a running pod's configMap and secret volumes follow changes of their objects,
/// without a restart. Each container starts once its volume holds the first value (startup
/// probe) and is Ready only once it holds the second (readiness probe), so the pod turns Ready
/// when both changes arrived. Catches an agent that writes volume files only when a container
/// starts.
pub(super) fn updates_reach_running_pod(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");
        maps.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"key": "first"}}))?).await?;
        secrets.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "sec"}, "stringData": {"key": "first"}}))?).await?;
        let check = |path: &str, text: &str| json!({"exec": {"command": ["/workload", "check-file", path, "--contains", text]}});
        let reader = |name: &str, volume: &str| {
            let mut c = container(name, &["pause"]);
            let file = format!("/etc/{volume}/key");
            pods::merge(
                &mut c,
                json!({
                    "volumeMounts": [{"name": volume, "mountPath": format!("/etc/{volume}")}],
                    "startupProbe": merge_probe(check(&file, "first")),
                    "readinessProbe": {"exec": check(&file, "second")["exec"], "periodSeconds": 1},
                }),
            );
            c
        };
        let spec = json!({"volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "sec", "secret": {"secretName": "sec"}}]});
        pods::create(&env.client, &pods::pod("reader", NODE, vec![reader("c", "cfg"), reader("s", "sec")], spec)?).await?;
        kube_wait::pod(&env.client, "default", "reader", "both containers started with the first values", START, |p| {
            let started = ["c", "s"].iter().all(|c| pods::container_status(p, c).is_some_and(|s| s.started == Some(true)));
            (started && pod_condition_status(p, "Ready").as_deref() == Some("False")).then_some(())
        })
        .await?;
        let patch = |data: serde_json::Value| Patch::Merge(data);
        maps.patch("cfg", &PatchParams::default(), &patch(json!({"data": {"key": "second"}}))).await?;
        secrets.patch("sec", &PatchParams::default(), &patch(json!({"stringData": {"key": "second"}}))).await?;
        let pod = kube_wait::pod(&env.client, "default", "reader", "Ready: both volumes hold the second values", PROPAGATION, |p| {
            (pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
        })
        .await?;
        ensure!(restarts(&pod, "c") == 0 && restarts(&pod, "s") == 0, "the containers restarted: {} {}", restarts(&pod, "c"), restarts(&pod, "s"));
        env.stop().await
    })
}
