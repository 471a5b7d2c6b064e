//! ReplicaSet and Deployment controllers end to end through the API. No kubelet runs here:
//! a small loop in the test plays one, marking every new pod Running and Ready through
//! `pods/status`.

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn active(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    p.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

fn ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default()
}

/// The stand-in kubelet: every pod not yet Ready and not being deleted becomes Running/Ready.
fn spawn_kubelet(pods: Api<Pod>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for p in list.items.iter().filter(|p| active(p) && !ready(p)) {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let status = json!({"status": {"phase": "Running", "podIP": "10.0.0.1",
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}]}});
                    let _ = pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

fn deployment(replicas: i32, img: &str) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": img}]}}},
    }))?)
}

async fn active_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default()).await.map(|l| l.items.into_iter().filter(active).collect()).unwrap_or_default()
}

/// Wait until the Deployment reports a finished rollout as `kubectl rollout status` reads it.
async fn rolled_out(deploys: &Api<Deployment>, replicas: i32) -> Deployment {
    common::wait_for("rollout to finish", WAIT, || async {
        let d = deploys.get("web").await.ok()?;
        let s = d.status.clone()?;
        let progressed = s.conditions.as_ref()?.iter().any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        let done = s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && progressed;
        done.then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_replaces_and_scales() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.scheduler = false;
        c.node_lifecycle = false;
        c.endpointslices = false;
    })
    .await;
    let c = common::kube_client(&h);
    let (deploys, sets, pods): (Api<Deployment>, Api<ReplicaSet>, Api<Pod>) =
        (Api::namespaced(c.clone(), "default"), Api::namespaced(c.clone(), "default"), Api::namespaced(c.clone(), "default"));
    let kubelet = spawn_kubelet(pods.clone());

    // A Deployment of 3: one ReplicaSet `web-<hash>` and 3 pods it owns.
    deploys.create(&PostParams::default(), &deployment(3, "img:1")?).await?;
    let d = rolled_out(&deploys, 3).await;
    let rs_list = sets.list(&ListParams::default()).await?.items;
    assert_eq!(rs_list.len(), 1);
    let rs = &rs_list[0];
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let hash = rs.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")).cloned().unwrap_or_default();
    assert_eq!(rs_name, format!("web-{hash}"));
    assert_eq!(rs.metadata.owner_references.as_ref().map(|o| o[0].uid.clone()), d.metadata.uid.clone());
    assert_eq!(d.metadata.annotations.as_ref().and_then(|a| a.get("deployment.kubernetes.io/revision")).map(String::as_str), Some("1"));
    let first = active_pods(&pods).await;
    assert_eq!(first.len(), 3);
    for p in &first {
        let name = p.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6, "{name}");
        let oref = &p.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!((oref.kind.as_str(), oref.controller, oref.block_owner_deletion), ("ReplicaSet", Some(true), Some(true)));
    }
    let available = d.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Available").cloned());
    assert_eq!(available.map(|c| (c.status, c.reason)), Some(("True".into(), Some("MinimumReplicasAvailable".into()))));

    // Graceful deletion: the pod stays Terminating, and a replacement comes at once.
    let victim = first[0].metadata.name.clone().unwrap_or_default();
    pods.delete(&victim, &DeleteParams::default()).await?;
    common::wait_for("a replacement pod", WAIT, || async {
        let all = pods.list(&ListParams::default()).await.ok()?.items;
        let terminating = all.iter().any(|p| p.metadata.name.as_deref() == Some(victim.as_str()) && p.metadata.deletion_timestamp.is_some());
        // Ready too: the rollout below asserts that no fewer than 3 are ever ready.
        (terminating && all.iter().filter(|p| active(p) && ready(p)).count() == 3).then_some(())
    })
    .await;
    pods.delete(&victim, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await?;

    // A template change rolls out with maxSurge 1 / maxUnavailable 0: never more than 4 active
    // pods, never fewer than 3 ready ones.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:2"}]}}}});
    deploys.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await?;
    common::wait_for("the new template everywhere", WAIT, || async {
        let act = active_pods(&pods).await;
        assert!(act.len() <= 4, "maxSurge exceeded: {} active pods", act.len());
        let ready_n = act.iter().filter(|p| ready(p)).count();
        assert!(ready_n >= 3, "maxUnavailable exceeded: {ready_n} ready pods");
        (act.len() == 3 && act.iter().all(|p| image(p) == "img:2" && ready(p))).then_some(())
    })
    .await;
    let d = rolled_out(&deploys, 3).await;
    assert_eq!(d.metadata.annotations.as_ref().and_then(|a| a.get("deployment.kubernetes.io/revision")).map(String::as_str), Some("2"));
    let rs_list = sets.list(&ListParams::default()).await?.items;
    assert_eq!(rs_list.len(), 2);
    let old = rs_list.iter().find(|r| r.metadata.name.as_deref() == Some(rs_name.as_str())).expect("old rs kept");
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(0));

    // Scale down: surplus pods are deleted.
    deploys.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await?;
    rolled_out(&deploys, 1).await;
    common::wait_for("one active pod", WAIT, || async { (active_pods(&pods).await.len() == 1).then_some(()) }).await;

    // Events as upstream words them.
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let msgs: Vec<(String, String)> = events.list(&ListParams::default()).await?.items.into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default())).collect();
    let has = |reason: &str, msg: &str| msgs.iter().any(|(r, m)| r == reason && m == msg);
    assert!(has("ScalingReplicaSet", &format!("Scaled up replica set {rs_name} from 0 to 3")), "{msgs:?}");
    assert!(msgs.iter().any(|(r, m)| r == "ScalingReplicaSet" && m.starts_with("Scaled down replica set ") && m.ends_with(" from 3 to 1")), "{msgs:?}");
    assert!(has("SuccessfulCreate", &format!("Created pod: {victim}")), "{msgs:?}");
    assert!(msgs.iter().any(|(r, m)| r == "SuccessfulDelete" && m.starts_with("Deleted pod: ")), "{msgs:?}");
    kubelet.abort();
    Ok(())
}
