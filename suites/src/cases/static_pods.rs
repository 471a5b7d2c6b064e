//! Area `static-pods` (upstream test/e2e_node/mirror_pod_test.go and
//! mirror_pod_grace_period_test.go): mirror pod name, annotations and owner reference; manifest
//! update, removal and re-add; a deleted mirror pod is recreated; the mirror pod stays while the
//! static pod terminates within its grace period; rapid rewrites converge; static pods run while
//! the API server is partitioned, and start when the agent starts before the API server answers
//! at all; an agent restart keeps their containers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use k8s_cri::v1 as cri_api;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use serde_json::json;

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait::{self, phase, pod_condition_status};
use crate::pods::{self, container, container_status, restarts};

pub fn cases() -> Vec<Case> {
    let case = |id, labels: &'static [Label], body| Case {
        id,
        labels,
        needs: &[],
        topology: Topology::SingleNode,
        runtimes: Runtimes::All,
        body,
    };
    const C: &[Label] = &[Label::Conformance];
    // The agent's container log layout; its own log.
    const REF: &[Label] = &[Label::Conformance, Label::ReferenceAgent];
    const D: &[Label] = &[Label::Conformance, Label::Disruptive];
    vec![
        case("static-pods/mirror-pod-name-annotations-owner", C, mirror_shape as fn(CaseCtx) -> BodyFuture),
        case("static-pods/manifest-update-replaces-mirror", C, update),
        case("static-pods/mirror-deleted-gracefully-recreated", C, mirror_deleted_gracefully),
        case("static-pods/mirror-deleted-at-once-recreated", C, mirror_deleted_at_once),
        case("static-pods/manifest-removed-and-readded", C, removed_and_readded),
        case("static-pods/removal-honours-grace-period", REF, removal_grace),
        case("static-pods/rapid-rewrites-converge", C, rapid_rewrites),
        case("static-pods/bad-manifest-isolated", REF, bad_manifest),
        case("static-pods/runs-while-api-partitioned", D, partitioned),
        case("static-pods/start-before-the-api-server-answers", D, before_api),
        case("static-pods/agent-restart-keeps-containers", D, agent_restart),
    ]
}

const READY: Duration = Duration::from_secs(20);
const START: Duration = Duration::from_secs(20);
const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
const CONFIG_HASH: &str = "kubernetes.io/config.hash";

/// A node whose agent reads static pods from a fresh directory (checked every second).
async fn env(ctx: &CaseCtx) -> anyhow::Result<(NodeEnv, PathBuf)> {
    env_with(ctx, "").await
}

/// Like [`env`]; `nodekit` lines (indented two spaces) go under the `nodekit:` block.
async fn env_with(ctx: &CaseCtx, nodekit: &str) -> anyhow::Result<(NodeEnv, PathBuf)> {
    let dir = harness::backend::scratch_dir("static-pods")?;
    let extra = format!("nodekit:\n{nodekit}staticPodPath: {}\nfileCheckFrequency: 1s\n", dir.display());
    let env = NodeEnv::start(ctx, &extra).await?;
    env.wait_ready(READY).await?;
    Ok((env, dir))
}

/// A static pod manifest (YAML) running `/workload args…`.
fn manifest(name: &str, args: &[&str], grace: i64) -> anyhow::Result<String> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container("c", args)], "terminationGracePeriodSeconds": grace},
    });
    // JSON is YAML; a YAML block style is used for the `.yaml` file to exercise the YAML path.
    let mut out = String::new();
    yaml_block(&pod, 0, &mut out);
    Ok(out)
}

fn yaml_block(v: &serde_json::Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if v.is_object() || v.is_array() {
                    out.push_str(&format!("{pad}{k}:\n"));
                    yaml_block(v, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{k}: {v}\n"));
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                if item.is_object() {
                    let mut inner = String::new();
                    yaml_block(item, indent + 2, &mut inner);
                    let inner = inner.trim_start().to_string();
                    out.push_str(&format!("{pad}- {inner}"));
                } else {
                    out.push_str(&format!("{pad}- {item}\n"));
                }
            }
        }
        other => out.push_str(&format!("{pad}{other}\n")),
    }
}

/// Writes `file` in `dir` atomically (a hidden temporary file, then rename).
fn write_manifest(dir: &Path, file: &str, text: &str) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(file))?;
    Ok(())
}

fn mirror_name(name: &str) -> String {
    format!("{name}-{NODE}")
}

fn annotation<'a>(p: &'a Pod, k: &str) -> Option<&'a str> {
    p.metadata.annotations.as_ref()?.get(k).map(String::as_str)
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

/// Waits until the mirror pod of `name` is Running and Ready (optionally with another UID than
/// `not_uid`), and returns it.
async fn mirror_running(client: &kube::Client, name: &str, not_uid: Option<&str>) -> anyhow::Result<Pod> {
    let what = match not_uid {
        Some(u) => format!("mirror pod Running and Ready with a UID other than {u}"),
        None => "mirror pod Running and Ready".to_string(),
    };
    kube_wait::pod(client, "default", &mirror_name(name), &what, START, |p| {
        let fresh = not_uid.is_none_or(|u| p.metadata.uid.as_deref() != Some(u));
        (fresh
            && annotation(p, CONFIG_MIRROR).is_some()
            && p.metadata.deletion_timestamp.is_none()
            && phase(p) == "Running"
            && pod_condition_status(p, "Ready").as_deref() == Some("True"))
        .then(|| p.clone())
    })
    .await
}

fn container_id(p: &Pod) -> anyhow::Result<String> {
    container_status(p, "c").and_then(|c| c.container_id.clone()).context("no containerID in the mirror pod's status")
}

fn mirror_shape(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let (env, dir) = env(&ctx).await?;
        write_manifest(&dir, "web.yaml", &manifest("web", &["pause"], 2)?)?;
        let m = mirror_running(&env.client, "web", None).await?;
        let hash = annotation(&m, CONFIG_HASH).context("no config.hash annotation")?;
        ensure!(annotation(&m, CONFIG_MIRROR) == Some(hash), "config.mirror {:?} != config.hash {hash}", annotation(&m, CONFIG_MIRROR));
        ensure!(annotation(&m, "kubernetes.io/config.source") == Some("file"), "config.source {:?}", annotation(&m, "kubernetes.io/config.source"));
        ensure!(annotation(&m, "kubernetes.io/config.seen").is_some(), "no config.seen annotation");
        let node = Api::<Node>::all(env.client.clone()).get(NODE).await?;
        let owners = m.metadata.owner_references.clone().unwrap_or_default();
        ensure!(owners.len() == 1, "ownerReferences {owners:?}");
        let o = &owners[0];
        ensure!(
            o.api_version == "v1" && o.kind == "Node" && o.name == NODE && Some(&o.uid) == node.metadata.uid.as_ref() && o.controller == Some(true),
            "ownerReference {o:?} (node uid {:?})",
            node.metadata.uid
        );
        let spec = m.spec.clone().context("no spec")?;
        ensure!(spec.node_name.as_deref() == Some(NODE), "nodeName {:?}", spec.node_name);
        let tolerates = spec.tolerations.iter().flatten().any(|t| {
            t.operator.as_deref() == Some("Exists") && t.effect.as_deref() == Some("NoExecute") && t.key.is_none()
        });
        ensure!(tolerates, "no toleration for all NoExecute taints: {:?}", spec.tolerations);
        let cs = container_status(&m, "c").context("no container status mirrored")?;
        ensure!(cs.ready && cs.image == pods::IMAGE, "container status {cs:?}");
        env.stop().await
    })
}

fn update(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let (env, dir) = env(&ctx).await?;
        write_manifest(&dir, "web.yaml", &manifest("web", &["pause"], 1)?)?;
        let before = mirror_running(&env.client, "web", None).await?;
        write_manifest(&dir, "web.yaml", &manifest("web", &["netexec", "--http-port", "8080"], 1)?)?;
        let after = mirror_running(&env.client, "web", Some(&uid(&before))).await?;
        let args = after.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.args.clone()).unwrap_or_default();
        ensure!(args.first().map(String::as_str) == Some("netexec"), "the new mirror pod has args {args:?}");
        ensure!(annotation(&after, CONFIG_MIRROR) != annotation(&before, CONFIG_MIRROR), "config.mirror did not change");
        ensure!(container_id(&after)? != container_id(&before)?, "the container was not replaced");
        env.stop().await
    })
}

async fn mirror_deleted(ctx: CaseCtx, grace: Option<u32>) -> anyhow::Result<()> {
    let (env, dir) = env(&ctx).await?;
    write_manifest(&dir, "web.yaml", &manifest("web", &["pause"], 30)?)?;
    let before = mirror_running(&env.client, "web", None).await?;
    pods::delete(&env.client, &mirror_name("web"), grace).await?;
    let after = mirror_running(&env.client, "web", Some(&uid(&before))).await?;
    // Deleting the mirror pod does not touch the static pod: same container, no restart.
    ensure!(container_id(&after)? == container_id(&before)?, "the static pod's container was replaced");
    ensure!(restarts(&after, "c") == 0, "restartCount {}", restarts(&after, "c"));
    ensure!(annotation(&after, CONFIG_MIRROR) == annotation(&before, CONFIG_MIRROR), "config.mirror changed");
    env.stop().await
}

fn mirror_deleted_gracefully(ctx: CaseCtx) -> BodyFuture {
    Box::pin(mirror_deleted(ctx, None))
}

fn mirror_deleted_at_once(ctx: CaseCtx) -> BodyFuture {
    Box::pin(mirror_deleted(ctx, Some(0)))
}

/// The runtime's containers of pod `pod_name` (running only when `running`).
async fn runtime_containers(env: &NodeEnv, pod_name: &str, running: bool) -> anyhow::Result<Vec<cri_api::Container>> {
    let mut cri = crate::cri::connect(env.runtime.socket(), NODE).await?;
    let filter = cri_api::ContainerFilter {
        label_selector: crate::cri::labels(&[("io.kubernetes.pod.name", pod_name)]),
        state: running.then_some(cri_api::ContainerStateValue { state: cri_api::ContainerState::ContainerRunning as i32 }),
        ..Default::default()
    };
    cri.list(filter).await
}

fn removed_and_readded(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let (env, dir) = env(&ctx).await?;
        let text = manifest("web", &["pause"], 1)?;
        write_manifest(&dir, "web.yaml", &text)?;
        let first = mirror_running(&env.client, "web", None).await?;
        std::fs::remove_file(dir.join("web.yaml"))?;
        kube_wait::pod_gone(&env.client, "default", &mirror_name("web"), START).await?;
        let name = mirror_name("web");
        harness::wait::wait_for("the static pod's containers to stop", START, || async {
            matches!(runtime_containers(&env, &name, true).await, Ok(c) if c.is_empty())
        })
        .await?;
        write_manifest(&dir, "web.yaml", &text)?;
        let again = mirror_running(&env.client, "web", Some(&uid(&first))).await?;
        ensure!(container_id(&again)? != container_id(&first)?, "the re-added pod reused the old container");
        env.stop().await
    })
}

fn removal_grace(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        const GRACE: u64 = 4;
        let (env, dir) = env(&ctx).await?;
        write_manifest(&dir, "slow.yaml", &manifest("slow", &["pause", "--ignore-sigterm"], GRACE as i64)?)?;
        let m = mirror_running(&env.client, "slow", None).await?;
        let mirror_uid = uid(&m);
        let name = mirror_name("slow");
        crate::pods::wait_log_line(env.agent.root_dir(), "default", &name, "c", crate::pods::SIGTERM_IGNORED, START).await?;
        let removed = Instant::now();
        std::fs::remove_file(dir.join("slow.yaml"))?;
        // While the static pod terminates (it ignores SIGTERM), its mirror pod stays, same UID.
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let hold = Duration::from_secs(GRACE - 1);
        while removed.elapsed() < hold {
            let p = api.get_opt(&name).await?;
            let elapsed = removed.elapsed();
            match p {
                Some(p) => ensure!(uid(&p) == mirror_uid, "the mirror pod was replaced after {elapsed:?} of a {GRACE}s grace period"),
                None if elapsed < hold => anyhow::bail!("the mirror pod was deleted {elapsed:?} into a {GRACE}s grace period"),
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        kube_wait::pod_gone(&env.client, "default", &name, Duration::from_secs(GRACE) + START).await?;
        ensure!(removed.elapsed() >= hold, "mirror pod gone after {:?}", removed.elapsed());
        ensure!(runtime_containers(&env, &name, true).await?.is_empty(), "a container still runs after the mirror pod was deleted");
        env.stop().await
    })
}

fn rapid_rewrites(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let (env, dir) = env(&ctx).await?;
        write_manifest(&dir, "web.yaml", &manifest("web", &["pause"], 1)?)?;
        let first = mirror_running(&env.client, "web", None).await?;
        for i in 0..100 {
            write_manifest(&dir, "web.yaml", &manifest("web", &["pause", "--generation", &i.to_string()], 1)?)?;
        }
        let name = mirror_name("web");
        let last = kube_wait::pod(&env.client, "default", &name, "mirror pod of generation 99 Running and Ready", Duration::from_secs(40), |p| {
            let args = p.spec.as_ref()?.containers.first()?.args.clone()?;
            (args.last().map(String::as_str) == Some("99")
                && phase(p) == "Running"
                && pod_condition_status(p, "Ready").as_deref() == Some("True")
                && container_status(p, "c").is_some_and(|c| c.ready))
            .then(|| p.clone())
        })
        .await?;
        ensure!(uid(&last) != uid(&first), "mirror pod UID unchanged");
        // Converged: exactly one running container for the pod, the one the mirror reports.
        let id = container_id(&last)?;
        harness::wait::wait_for("exactly one running container of the static pod", START, || async {
            matches!(runtime_containers(&env, &name, true).await, Ok(c) if c.len() == 1 && id.ends_with(&c[0].id))
        })
        .await?;
        env.stop().await
    })
}

fn bad_manifest(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let (mut env, dir) = env(&ctx).await?;
        write_manifest(&dir, "broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [\n")?;
        write_manifest(&dir, "nocontainers.json", r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"empty"},"spec":{"containers":[]}}"#)?;
        let good = serde_json::to_string(&json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"},
            "spec": {"containers": [container("c", &["pause"])], "terminationGracePeriodSeconds": 1},
        }))?;
        write_manifest(&dir, "good.json", &good)?;
        mirror_running(&env.client, "good", None).await?;
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        ensure!(api.get_opt(&mirror_name("empty")).await?.is_none(), "an invalid static pod got a mirror pod");
        let log = std::fs::read_to_string(env.agent.process().log_path()).unwrap_or_default();
        ensure!(log.contains("broken.yaml") && log.contains("nocontainers.json"), "the agent log does not name the bad manifests");
        env.stop().await
    })
}

fn partitioned(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // API requests (events, status) give up after 1 s, so the partition costs seconds.
        let (env, dir) = env_with(&ctx, "  apiRequestTimeout: 1s\n").await?;
        let handle = env.cp.handle();
        handle.set_partition(true);
        let result: anyhow::Result<()> = async {
            write_manifest(&dir, "web.yaml", &manifest("web", &["pause"], 1)?)?;
            let name = mirror_name("web");
            harness::wait::wait_for("the static pod's container running while the API is partitioned", START, || async {
                matches!(runtime_containers(&env, &name, true).await, Ok(c) if c.len() == 1)
            })
            .await?;
            Ok(())
        }
        .await;
        handle.set_partition(false);
        result.context("during the partition")?;
        let m = mirror_running(&env.client, "web", None).await.context("after the partition healed")?;
        let running = runtime_containers(&env, &mirror_name("web"), true).await?;
        let id = container_id(&m)?;
        ensure!(running.len() == 1 && id.ends_with(&running[0].id), "mirror reports {id}, runtime runs {running:?}");
        env.stop().await
    })
}

fn before_api(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // The manifest is there before the agent starts, and the API server does not answer:
        // the static pod runs anyway (upstream's kubelet runs static pods without an API
        // server); once the API server answers, the node registers and the mirror pod reports
        // the same container.
        let dir = harness::backend::scratch_dir("static-pods")?;
        write_manifest(&dir, "web.yaml", &manifest("web", &["pause"], 1)?)?;
        let extra = format!("nodekit:\n  apiRequestTimeout: 1s\nstaticPodPath: {}\nfileCheckFrequency: 1s\n", dir.display());
        let env = NodeEnv::start_partitioned(&ctx, &extra).await?;
        let name = mirror_name("web");
        let running = harness::wait::wait_for("the static pod's container running before the API server answers", START, || async {
            runtime_containers(&env, &name, true).await.ok().filter(|c| c.len() == 1)
        })
        .await;
        env.cp.handle().set_partition(false);
        let running = running?;
        env.wait_ready(READY).await.context("the node registers once the API server answers")?;
        let m = mirror_running(&env.client, "web", None).await?;
        ensure!(container_id(&m)?.ends_with(&running[0].id), "mirror reports {}, the runtime ran {}", container_id(&m)?, running[0].id);
        ensure!(restarts(&m, "c") == 0, "restartCount {}", restarts(&m, "c"));
        env.stop().await
    })
}

fn agent_restart(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let (mut env, dir) = env(&ctx).await?;
        write_manifest(&dir, "web.yaml", &manifest("web", &["pause"], 1)?)?;
        let before = mirror_running(&env.client, "web", None).await?;
        let id_before = container_id(&before)?;
        env.agent.process().stop(Duration::from_secs(5)).await?;
        env.agent.process().restart().await?;
        let restarted_at = jiff::Timestamp::now();
        kube_wait::heartbeat_since(&env.client, NODE, restarted_at, READY).await?;
        let after = mirror_running(&env.client, "web", None).await?;
        ensure!(container_id(&after)? == id_before, "the container was replaced across the restart");
        ensure!(restarts(&after, "c") == 0, "restartCount {}", restarts(&after, "c"));
        let running = runtime_containers(&env, &mirror_name("web"), true).await?;
        ensure!(running.len() == 1, "{} running containers after the restart", running.len());
        let all: HashMap<String, String> = runtime_containers(&env, &mirror_name("web"), false)
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), format!("{:?}", c.state)))
            .collect();
        ensure!(all.len() == 1, "containers of the static pod after the restart: {all:?}");
        env.stop().await
    })
}
