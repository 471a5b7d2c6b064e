//! Startup probe cases: a failing startup probe restarts; startup gates liveness and
//! readiness; both start right after startup succeeds.

use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::json;

use super::*;

fn started(p: &Pod, c: &str) -> bool {
    status(p, c).and_then(|s| s.started).unwrap_or(false)
}

/// Upstream "should be restarted startup probe fails": startup fails 3 times (period 1 s) →
/// killed and restarted even though liveness would succeed; `started` stays false meanwhile.
pub fn failing(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "startup-failing";
        let app = container(
            "app",
            &["pause"],
            json!({
                "livenessProbe": probe(exec_ok(), json!({})),
                "startupProbe": probe(exec_fail(), json!({"failureThreshold": 3})),
            }),
        );
        create(&env, name, vec![app], json!({})).await?;
        wait_running(&env, name, "app").await?;
        observe(
            &env,
            name,
            "not started until the startup probe kills the container",
            (Duration::ZERO, Duration::from_secs(10)),
            |p| if started(p, "app") { Err("container app reported started".into()) } else { Ok(()) },
            |p| pods::restarts(p, "app") >= 1,
        )
        .await?;
        wait_event(&env, name, "Unhealthy", "for the startup failure", Duration::from_secs(3), |m| {
            m.starts_with("Startup probe failed: ")
        })
        .await?;
        let want = "Container app failed startup probe, will be restarted";
        wait_event(&env, name, "Killing", want, Duration::from_secs(3), |m| m == want).await?;
        expect_no_event(&env, name, "Unhealthy", "from liveness", |m| m.starts_with("Liveness probe")).await?;
        env.stop().await
    })
}

/// Upstream "should *not* be restarted by liveness probe because startup probe delays it":
/// liveness would fail, but startup (threshold 60) has not succeeded: no restart, no liveness
/// event, over several periods while startup keeps failing.
pub fn delays_liveness(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "startup-delays-liveness";
        let app = container(
            "app",
            &["pause"],
            json!({
                "livenessProbe": probe(exec_fail(), json!({})),
                "startupProbe": probe(exec_fail(), json!({"failureThreshold": 60})),
            }),
        );
        create(&env, name, vec![app], json!({})).await?;
        wait_running(&env, name, "app").await?;
        hold(&env, name, "no restart before startup succeeds", Duration::from_secs(6), |p| {
            if started(p, "app") {
                return Err("container app reported started".into());
            }
            never_restarted("app")(p)
        })
        .await?;
        wait_event(&env, name, "Unhealthy", "for the startup failures", Duration::from_secs(1), |m| {
            m.starts_with("Startup probe failed: ")
        })
        .await?;
        expect_no_event(&env, name, "Unhealthy", "from liveness", |m| m.starts_with("Liveness probe")).await?;
        env.stop().await
    })
}

/// The startup probe checks flag `started`; the pod has `extra` probes too.
async fn flag_startup_pod(env: &NodeEnv, name: &str, extra: Value) -> anyhow::Result<Flags> {
    let flags = Flags::new(name)?;
    let mut fields = json!({
        "startupProbe": probe(exec(&["check-file", &Flags::path("started")]), json!({"failureThreshold": 60})),
        "volumeMounts": Flags::mounts(),
    });
    pods::merge(&mut fields, extra);
    let app = container("app", &["pause"], fields);
    create(env, name, vec![app], json!({"volumes": flags.volumes()})).await?;
    wait_running(env, name, "app").await?;
    Ok(flags)
}

/// Upstream "should be restarted by liveness probe after startup probe enables it": liveness
/// always fails; nothing happens until startup succeeds (flag created), then liveness kills
/// and restarts the container.
pub fn liveness_after_startup(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-after-startup";
        let flags = flag_startup_pod(&env, name, json!({"livenessProbe": probe(exec_fail(), json!({}))})).await?;
        hold(&env, name, "no restart before startup succeeds", Duration::from_secs(3), |p| {
            if started(p, "app") {
                return Err("container app reported started".into());
            }
            never_restarted("app")(p)
        })
        .await?;
        expect_no_event(&env, name, "Unhealthy", "from liveness", |m| m.starts_with("Liveness probe")).await?;
        flags.set("started")?;
        wait_restarts(&env, name, "app", 1, Duration::from_secs(6)).await?;
        expect_liveness_kill_events(&env, name, "app", Duration::from_secs(3)).await?;
        env.stop().await
    })
}

/// Upstream "should be ready immediately after startupProbe succeeds": readiness has a long
/// period (10 s); once startup succeeds the container is `started` and the pod Ready within
/// 3 s, i.e. readiness ran right away instead of waiting for its next period.
pub fn ready_after_startup(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "ready-after-startup";
        let readiness = probe(exec_ok(), json!({"periodSeconds": 10}));
        let flags = flag_startup_pod(&env, name, json!({"readinessProbe": readiness})).await?;
        hold(&env, name, "neither started nor Ready before startup succeeds", Duration::from_secs(3), |p| {
            if started(p, "app") {
                return Err("container app reported started".into());
            }
            if pod_ready(p) {
                return Err("the pod is Ready".into());
            }
            never_restarted("app")(p)
        })
        .await?;
        flags.set("started")?;
        let t0 = Instant::now();
        kube_wait::pod(&env.client, "default", name, "container started", Duration::from_secs(4), |p| {
            started(p, "app").then_some(())
        })
        .await?;
        let started_in = t0.elapsed();
        let p = kube_wait::pod(&env.client, "default", name, "Ready=True", Duration::from_secs(12), |p| {
            pod_ready(p).then(|| p.clone())
        })
        .await?;
        let ready_in = t0.elapsed();
        ensure!(
            ready_in <= started_in + Duration::from_secs(3),
            "Ready {ready_in:?} after startup could succeed (started after {started_in:?}): readiness waited for its \
             10 s period instead of running right after startup succeeded"
        );
        ensure!(pods::restarts(&p, "app") == 0, "restartCount {}", pods::restarts(&p, "app"));
        env.stop().await
    })
}
