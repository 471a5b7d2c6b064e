//! RuntimeClass: a pod's `runtimeClassName` picks the CRI runtime handler its sandbox runs with.

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::{START, env};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait::{self, phase};
use crate::pods::{self, container};

/// Creates RuntimeClass `name` with CRI handler `handler`.
async fn runtime_class(client: &kube::Client, name: &str, handler: &str) -> anyhow::Result<()> {
    let rc: RuntimeClass = serde_json::from_value(json!({"metadata": {"name": name}, "handler": handler}))?;
    Api::<RuntimeClass>::all(client.clone()).create(&PostParams::default(), &rc).await?;
    Ok(())
}

/// Creates a pausing pod `name` of RuntimeClass `class` and waits until it runs.
async fn running_pod(env: &NodeEnv, name: &str, class: &str) -> anyhow::Result<Pod> {
    pods::create(&env.client, &pods::pod(name, NODE, vec![container("c", &["pause"])], json!({"runtimeClassName": class}))?).await?;
    kube_wait::pod(&env.client, "default", name, "Running", START, |p| (phase(p) == "Running").then(|| p.clone())).await
}

/// The runtime handler the runtime reports for the sandbox of `pod`.
async fn sandbox_handler(env: &NodeEnv, pod: &Pod) -> anyhow::Result<String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut cri = crate::cri::connect(env.runtime.socket(), NODE).await?;
    let filter = k8s_cri::v1::PodSandboxFilter { label_selector: crate::cri::labels(&[("io.kubernetes.pod.uid", &uid)]), ..Default::default() };
    let sandboxes = cri.list_pods(filter).await?;
    let sb = sandboxes.first().with_context(|| format!("no sandbox of pod {uid}"))?;
    Ok(sb.runtime_handler.clone())
}

/// Upstream's RuntimeClass e2e (`test/e2e/common/node/runtimeclass.go`): a pod of a class
/// whose handler the runtime offers runs with that handler (the runtime reports it on the
/// sandbox); a class whose handler the runtime does not offer leaves the pod Pending with
/// FailedCreatePodSandBox naming the handler; a class that does not exist is refused by the
/// API server's RuntimeClass admission. Catches an agent that ignores `runtimeClassName` (the
/// sandbox runs with the default handler, and the unconfigured one "runs" too).
pub(super) fn handler_is_used(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let handlers = ctx.runtime()?.handlers();
        let offered = handlers.iter().find(|h| *h == "runc").or(handlers.first()).context("the runtime target declares no RuntimeClass handler")?.clone();
        runtime_class(&env.client, "runc-class", &offered).await?;
        runtime_class(&env.client, "unconfigured", "no-such-handler").await?;
        let pod = running_pod(&env, "with-class", "runc-class").await?;
        let handler = sandbox_handler(&env, &pod).await?;
        ensure!(handler == offered, "the sandbox of a pod of a class with handler {offered:?} runs with handler {handler:?}");
        let p = pods::pod("unconfigured", NODE, vec![container("c", &["pause"])], json!({"runtimeClassName": "unconfigured"}))?;
        pods::create(&env.client, &p).await?;
        let ev = harness::wait::wait_for("FailedCreatePodSandBox for the unconfigured handler", START, || async {
            let evs = pods::events_for(&env.client, "unconfigured").await.ok()?;
            evs.into_iter().find(|e| e.reason.as_deref() == Some("FailedCreatePodSandBox"))
        })
        .await?;
        let msg = ev.message.unwrap_or_default();
        ensure!(
            msg.starts_with("Failed to create pod sandbox: ") && msg.contains(r#"no runtime for "no-such-handler" is configured"#),
            "FailedCreatePodSandBox message {msg:?}"
        );
        let now: Pod = Api::namespaced(env.client.clone(), "default").get("unconfigured").await?;
        ensure!(phase(&now) == "Pending", "a pod whose handler is not configured is {}", phase(&now));
        let ghost = pods::pod("ghost", NODE, vec![container("c", &["pause"])], json!({"runtimeClassName": "ghost"}))?;
        match Api::<Pod>::namespaced(env.client.clone(), "default").create(&PostParams::default(), &ghost).await {
            Err(kube::Error::Api(s)) => ensure!(
                s.code == 403 && s.message.contains(r#"pod rejected: RuntimeClass "ghost" not found"#),
                "a pod of a missing RuntimeClass: {} {}",
                s.code,
                s.message
            ),
            other => anyhow::bail!("a pod of a missing RuntimeClass was not refused: {other:?}"),
        }
        env.stop().await
    })
}

/// Upstream's RuntimeClass promise on a runtime with two OCI runtimes behind two handlers: a
/// pod of a class with handler `crun` really runs under crun and a pod of a `runc` class under
/// runc. The proof is where each container's OCI state lives: a runtime keeps a directory
/// named by the container id under its own state root, so the crun pod's container must be
/// under crun's root and not runc's, and the other way round. Catches a runtime configuration
/// whose handlers both map to one OCI runtime, and an agent that drops `runtimeClassName`
/// (both pods run under the default handler).
pub(super) fn crun_and_runc(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let handlers = ctx.runtime()?.handlers();
        if !(handlers.iter().any(|h| h == "crun") && handlers.iter().any(|h| h == "runc")) {
            return Err(crate::context::skip(format!(
                "the runtime offers handlers {handlers:?}; this case needs both crun and runc (containerd, containerd-crun)"
            )));
        }
        let env = env(&ctx).await?;
        let roots = env.runtime.oci_roots()?;
        let root_of = |bin: &str| roots.iter().find(|(b, _)| b == bin).map(|(_, r)| r.clone());
        let (Some(crun_root), Some(runc_root)) = (root_of("crun"), root_of("runc")) else {
            anyhow::bail!("the runtime does not say where crun and runc keep state: {roots:?}");
        };
        for (class, handler) in [("crun-class", "crun"), ("runc-class", "runc")] {
            runtime_class(&env.client, class, handler).await?;
        }
        for (name, class, handler, own, other) in
            [("under-crun", "crun-class", "crun", &crun_root, &runc_root), ("under-runc", "runc-class", "runc", &runc_root, &crun_root)]
        {
            let pod = running_pod(&env, name, class).await?;
            let sandbox = sandbox_handler(&env, &pod).await?;
            ensure!(sandbox == handler, "the sandbox of pod {name} (class {class}) runs with handler {sandbox:?}");
            let id = pods::runtime_container_id(&pod, "c")?;
            ensure!(
                own.join(&id).is_dir(),
                "container {id} of pod {name} (handler {handler}) has no state under {handler}'s root {}",
                own.display()
            );
            ensure!(
                !other.join(&id).exists(),
                "container {id} of pod {name} (handler {handler}) has state under the other runtime's root {}",
                other.display()
            );
        }
        env.stop().await
    })
}
