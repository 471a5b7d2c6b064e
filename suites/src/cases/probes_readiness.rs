//! Readiness probe cases: initial delay, a probe that never succeeds, an exec probe that times
//! out, and readiness / liveness while the pod terminates.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::json;

use super::*;

/// Upstream "with readiness probe should not be ready before initial delay and never restart":
/// Ready's lastTransitionTime − the container's startedAt ≥ initialDelaySeconds, restartCount 0.
pub fn initial_delay(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        const DELAY: i64 = 3;
        let env = node(&ctx).await?;
        let name = "readiness-delay";
        let web = container(
            "web",
            &["netexec", "--http-port", "8080"],
            json!({"readinessProbe": probe(http_get("/", 8080), json!({"initialDelaySeconds": DELAY}))}),
        );
        create(&env, name, vec![web], json!({})).await?;
        let p = kube_wait::pod(&env.client, "default", name, "Ready=True", START + Duration::from_secs(10), |p| {
            pod_ready(p).then(|| p.clone())
        })
        .await?;
        ensure!(kube_wait::phase(&p) == "Running", "phase {:?}, expected Running", kube_wait::phase(&p));
        ensure!(status(&p, "web").is_some_and(|s| s.ready), "container web not ready: {}", status_json(&p));
        let ready_at = condition_transition(&p, "Ready").context("Ready condition without lastTransitionTime")?;
        let started = started_at(&p, "web").context("container web without state.running.startedAt")?;
        let took = (ready_at - started).get_seconds();
        ensure!(
            took >= DELAY,
            "pod became Ready {took}s after the container started ({started} → {ready_at}), before its {DELAY}s initial delay"
        );
        ensure!(pods::restarts(&p, "web") == 0, "restartCount {}", pods::restarts(&p, "web"));
        // A Ready=True condition carries no leftover reason/message from its False phase
        // (upstream writes {type: Ready, status: True} only).
        let cond = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .context("no Ready condition")?;
        ensure!(
            cond.reason.is_none() && cond.message.is_none(),
            "Ready=True still carries reason {:?} / message {:?} from when it was False",
            cond.reason,
            cond.message
        );
        env.stop().await
    })
}

/// Upstream "with readiness probe that fails should never be ready and never restart"
/// (readiness on a port nobody listens on): Running, never Ready, no restarts; the probe does
/// run (Unhealthy "Readiness probe failed: …" events).
pub fn never_ready(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "readiness-failing";
        let web = container(
            "web",
            &["netexec", "--http-port", "8080"],
            json!({"readinessProbe": probe(http_get("/", 8081), json!({}))}),
        );
        create(&env, name, vec![web], json!({})).await?;
        wait_running(&env, name, "web").await?;
        let p = hold(&env, name, "never Ready, never restarted", Duration::from_secs(5), not_ready_not_restarted("web"))
            .await?;
        ensure!(kube_wait::phase(&p) == "Running", "phase {:?}", kube_wait::phase(&p));
        ensure!(
            kube_wait::pod_condition_status(&p, "Ready").as_deref() == Some("False"),
            "Ready condition should be present and False: {}",
            status_json(&p)
        );
        wait_event(&env, name, "Unhealthy", "for the readiness failure", Duration::from_secs(3), |m| {
            m.starts_with("Readiness probe failed: ")
        })
        .await?;
        env.stop().await
    })
}

/// Upstream "should not be ready with an exec readiness probe timeout": the probe command
/// (`sleep 10s`) outlives timeoutSeconds 1, which counts as a failure: never Ready.
pub fn exec_timeout(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "readiness-exec-timeout";
        let c = container(
            "sleeper",
            &["pause"],
            json!({"readinessProbe": probe(exec(&["sleep", "10s"]), json!({"timeoutSeconds": 1}))}),
        );
        create(&env, name, vec![c], json!({})).await?;
        wait_running(&env, name, "sleeper").await?;
        hold(&env, name, "never Ready", Duration::from_secs(4), not_ready_not_restarted("sleeper")).await?;
        // Each attempt ends after ~1 s, not 10 s: failures are reported well within the window.
        wait_event(&env, name, "Unhealthy", "for the timed-out readiness probe", Duration::from_secs(3), |m| {
            m.starts_with("Readiness probe failed: ")
        })
        .await?;
        env.stop().await
    })
}

fn not_ready_not_restarted(c: &str) -> impl Fn(&Pod) -> Result<(), String> + '_ {
    move |p| {
        if pod_ready(p) {
            return Err("the pod is Ready".into());
        }
        if status(p, c).is_some_and(|s| s.ready) {
            return Err(format!("container {c} is ready"));
        }
        never_restarted(c)(p)
    }
}

/// Upstream "should mark readiness on pods to false and disable liveness probes while pod is in
/// progress of terminating". The container serves /healthz with 200 for 5 s and 500 afterwards
/// and delays its exit by 10 s after SIGTERM; readiness and liveness both probe /healthz. The
/// pod is deleted while still healthy: once /healthz fails, readiness must report not ready
/// (readiness keeps running while terminating), and liveness must stay silent (no Unhealthy
/// liveness event, no kill, no restart) until the pod is gone.
pub fn terminating(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "terminating";
        let app = container(
            "app",
            &["--term-delay", "10s", "liveness", "--fail-after", "5s", "--port", "8080"],
            json!({
                "readinessProbe": probe(http_get("/healthz", 8080), json!({})),
                "livenessProbe": probe(http_get("/healthz", 8080), json!({})),
            }),
        );
        create(&env, name, vec![app], json!({"terminationGracePeriodSeconds": 30})).await?;
        let p = kube_wait::pod(&env.client, "default", name, "Ready=True", START, |p| pod_ready(p).then(|| p.clone()))
            .await?;
        let started = started_at(&p, "app").context("container app without startedAt")?;
        let since_start = (jiff::Timestamp::now() - started).get_seconds();
        ensure!(since_start < 4, "Ready came {since_start}s after the start, too late to delete before /healthz fails");
        pods::delete(&env.client, name, None).await?;
        kube_wait::pod(&env.client, "default", name, "Ready≠True while terminating", Duration::from_secs(10), |p| {
            (p.metadata.deletion_timestamp.is_some() && !pod_ready(p)).then_some(())
        })
        .await?;
        // The container is still running its term delay: readiness reports the failures.
        // /healthz fails from 5 s after the start (the pod may be unready sooner, at deletion).
        wait_event(&env, name, "Unhealthy", "for readiness while terminating", Duration::from_secs(8), |m| {
            m.starts_with("Readiness probe failed: ")
        })
        .await?;
        // Until the pod is gone (term delay 10 s), liveness must never act.
        let api: kube::Api<Pod> = kube::Api::namespaced(env.client.clone(), "default");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            liveness_silent(&env, name).await?;
            match api.get_opt(name).await? {
                None => break,
                Some(p) => {
                    let n = pods::restarts(&p, "app");
                    ensure!(n == 0, "container restarted {n} times while terminating: {}", status_json(&p));
                    ensure!(!pod_ready(&p), "the pod became Ready again while terminating");
                }
            }
            ensure!(std::time::Instant::now() < deadline, "pod {name} still exists 20 s after deletion");
            tokio::time::sleep(POLL).await;
        }
        liveness_silent(&env, name).await?;
        env.stop().await
    })
}

async fn liveness_silent(env: &NodeEnv, name: &str) -> anyhow::Result<()> {
    expect_no_event(env, name, "Unhealthy", "from liveness while terminating", |m| m.starts_with("Liveness probe"))
        .await?;
    expect_no_event(env, name, "Killing", "from liveness while terminating", |m| m.contains("failed liveness probe"))
        .await
}

/// Upstream's event aggregation (client-go's EventAggregator): a readiness probe whose failure
/// output differs every time (the probe process's own `/proc/self/stat`, then a missing file)
/// gives Unhealthy events alike but for their message. The first nine are events of their own;
/// the tenth distinct message becomes one "(combined from similar events): Readiness probe
/// failed: …" event, and the later failures raise its count. Catches an agent that writes every
/// distinct message as a new event for ever (or combines too early, or never counts on).
pub fn similar_failures_combined(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        const PREFIX: &str = "(combined from similar events): Readiness probe failed: ";
        // client-go's defaultAggregateMaxEvents.
        const MAX_EVENTS: usize = 10;
        let env = node(&ctx).await?;
        let name = "readiness-similar";
        let check = exec(&["cat", "/proc/self/stat", "/tmp/absent"]);
        let c = container("sleeper", &["pause"], json!({"readinessProbe": probe(check, json!({}))}));
        create(&env, name, vec![c], json!({})).await?;
        wait_running(&env, name, "sleeper").await?;
        // Ten failures at one per second, then the combined event.
        wait_event(&env, name, "Unhealthy", "combining the similar ones", Duration::from_secs(25), |m| m.starts_with(PREFIX)).await?;
        let counted = harness::wait::wait_every("the combined event's count to reach 3", Duration::from_secs(10), POLL, || async {
            let evs = pods::events_for(&env.client, name).await.unwrap_or_default();
            let combined = evs.iter().find(|e| e.message.as_deref().is_some_and(|m| m.starts_with(PREFIX)));
            match combined.and_then(|e| e.count) {
                Some(n) if n >= 3 => Ok(evs),
                n => Err(format!("count {n:?}")),
            }
        })
        .await?;
        let single: Vec<&str> = counted
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
            .filter_map(|e| e.message.as_deref())
            .filter(|m| m.starts_with("Readiness probe failed: "))
            .collect();
        ensure!(
            single.len() == MAX_EVENTS - 1,
            "{} distinct failures before the combined event, expected {}: {single:?}",
            single.len(),
            MAX_EVENTS - 1
        );
        ensure!(
            single.iter().all(|m| m.contains("No such file or directory")),
            "each message carries the probe's output: {single:?}"
        );
        env.stop().await
    })
}
