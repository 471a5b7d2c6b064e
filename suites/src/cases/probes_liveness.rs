//! Liveness probe cases: exec (failing, passing, timing out), httpGet (restart count rising,
//! passing, local and non-local redirects), tcpSocket, grpc, and the probe-level
//! terminationGracePeriodSeconds.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::json;

use super::*;

/// A pod whose container "app" runs `pause` with an exec liveness probe on flag file
/// `healthy` (present at creation), held healthy for `healthy_for` before the flag is removed.
/// Returns after the first liveness restart.
async fn exec_flag_liveness(ctx: &CaseCtx, name: &str, healthy_for: Duration) -> anyhow::Result<NodeEnv> {
    let env = node(ctx).await?;
    let flags = Flags::new(name)?;
    flags.set("healthy")?;
    let app = container(
        "app",
        &["pause"],
        json!({
            "livenessProbe": probe(exec(&["check-file", &Flags::path("healthy")]), json!({})),
            "volumeMounts": Flags::mounts(),
        }),
    );
    create(&env, name, vec![app], json!({"volumes": flags.volumes()})).await?;
    wait_running(&env, name, "app").await?;
    hold(&env, name, "no restart while the liveness command succeeds", healthy_for, never_restarted("app")).await?;
    flags.clear("healthy")?;
    let p = wait_restarts(&env, name, "app", 1, Duration::from_secs(8)).await?;
    let last = status(&p, "app")
        .and_then(|s| s.last_state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .with_context(|| format!("restarted container without lastState.terminated: {}", status_json(&p)))?;
    ensure!(last.finished_at.is_some(), "lastState.terminated without finishedAt: {last:?}");
    Ok(env)
}

/// Upstream "should be restarted with a exec "cat /tmp/health" liveness probe": the command
/// succeeds at first, then fails (file removed) → the container is killed and restarted, with
/// the Unhealthy and Killing events upstream records.
pub fn exec_failing(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let name = "liveness-exec-failing";
        let env = exec_flag_liveness(&ctx, name, Duration::from_secs(2)).await?;
        expect_liveness_kill_events(&env, name, "app", Duration::from_secs(3)).await?;
        env.stop().await
    })
}

/// Upstream "should *not* be restarted with a exec "cat /tmp/health" liveness probe":
/// restartCount stays 0 over several periods while the command succeeds. The probe is shown
/// to be live by removing the file afterwards (→ restart).
pub fn exec_passing(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let name = "liveness-exec-passing";
        let env = exec_flag_liveness(&ctx, name, Duration::from_secs(5)).await?;
        env.stop().await
    })
}

/// Upstream "should be restarted with an exec liveness probe with timeout": the probe
/// command sleeps 10 s, timeoutSeconds 1 → a failure → restart well before the command would
/// have finished (successfully).
pub fn exec_timeout(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-exec-timeout";
        let app = container(
            "app",
            &["pause"],
            json!({"livenessProbe": probe(exec(&["sleep", "10s"]), json!({"timeoutSeconds": 1}))}),
        );
        create(&env, name, vec![app], json!({})).await?;
        wait_running(&env, name, "app").await?;
        let t0 = Instant::now();
        wait_restarts(&env, name, "app", 1, Duration::from_secs(7)).await?;
        ensure!(t0.elapsed() < Duration::from_secs(9), "restart came after {:?}", t0.elapsed());
        expect_liveness_kill_events(&env, name, "app", Duration::from_secs(3)).await?;
        env.stop().await
    })
}

/// Upstream "should have monotonically increasing restart count": /healthz fails 1 s after
/// every start; restartCount must rise through at least three increasing values, never
/// going down. Also checks the exact Unhealthy text upstream produces for the HTTP failure.
pub fn http_monotonic(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-http-monotonic";
        let app = container(
            "app",
            &["liveness", "--fail-after", "1s", "--port", "8080"],
            json!({"livenessProbe": probe(http_get("/healthz", 8080), json!({}))}),
        );
        create(&env, name, vec![app], json!({})).await?;
        wait_running(&env, name, "app").await?;
        let mut seen = vec![0];
        observe(
            &env,
            name,
            "restartCount rising monotonically to 3",
            (Duration::ZERO, Duration::from_secs(25)),
            |p| {
                let n = pods::restarts(p, "app");
                let last = *seen.last().unwrap_or(&0);
                if n < last {
                    return Err(format!("restartCount went down from {last} to {n} (seen {seen:?})"));
                }
                if n > last {
                    seen.push(n);
                }
                Ok(())
            },
            |p| pods::restarts(p, "app") >= 3,
        )
        .await?;
        let want = "Liveness probe failed: HTTP probe failed with statuscode: 500";
        wait_event(&env, name, "Unhealthy", &format!("{want:?}"), Duration::from_secs(3), |m| m == want).await?;
        expect_liveness_kill_events(&env, name, "app", Duration::from_secs(3)).await?;
        env.stop().await
    })
}

/// Runs `subject` (must never restart) next to `control` (its probe fails, must restart): the
/// observation lasts at least 5 s and until the control container has restarted, which shows
/// liveness probes were running in this pod during the window.
async fn with_control(env: &NodeEnv, name: &str, subject: &str, control: &str) -> anyhow::Result<()> {
    wait_running(env, name, subject).await?;
    observe(
        env,
        name,
        &format!("{subject} never restarted while {control} gets restarted"),
        (Duration::from_secs(5), Duration::from_secs(12)),
        |p| {
            let n = pods::restarts(p, subject);
            if n != 0 { Err(format!("container {subject} restarted ({n})")) } else { Ok(()) }
        },
        |p| pods::restarts(p, control) >= 1,
    )
    .await?;
    Ok(())
}

/// Upstream "should *not* be restarted with a /healthz http liveness probe" (GET / on a
/// serving web server): no restart; a sibling probing a closed port is restarted meanwhile.
pub fn http_passing(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-http-passing";
        let web = container(
            "web",
            &["netexec", "--http-port", "8080"],
            json!({"livenessProbe": probe(http_get("/", 8080), json!({}))}),
        );
        let control = container("control", &["pause"], json!({"livenessProbe": probe(http_get("/", 8081), json!({}))}));
        create(&env, name, vec![web, control], json!({})).await?;
        with_control(&env, name, "web", "control").await?;
        env.stop().await
    })
}

/// Upstream "should be restarted with a local redirect http liveness probe": a redirect to a
/// path on the same host is followed. `to-healthz` (→ /healthz, 200) is never restarted;
/// `to-missing` (→ /absent, 404) is, which a prober taking the 302 itself as success would not do.
pub fn http_local_redirect(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-http-local-redirect";
        let good = container(
            "to-healthz",
            &["netexec", "--http-port", "8080"],
            json!({"livenessProbe": probe(http_get("/redirect?loc=%2Fhealthz", 8080), json!({}))}),
        );
        let bad = container(
            "to-missing",
            &["netexec", "--http-port", "8081"],
            json!({"livenessProbe": probe(http_get("/redirect?loc=%2Fabsent", 8081), json!({}))}),
        );
        create(&env, name, vec![good, bad], json!({})).await?;
        with_control(&env, name, "to-healthz", "to-missing").await?;
        expect_liveness_kill_events(&env, name, "to-missing", Duration::from_secs(3)).await?;
        // The failure is the redirect target's 404.
        let want = "Liveness probe failed: HTTP probe failed with statuscode: 404";
        wait_event(&env, name, "Unhealthy", &format!("{want:?}"), Duration::from_secs(3), |m| m == want).await?;
        env.stop().await
    })
}

/// Upstream "should *not* be restarted with a non-local redirect http liveness probe": a
/// redirect to another host is not followed, counts as success, and yields a ProbeWarning
/// event ("Probe terminated redirects, …").
pub fn http_non_local_redirect(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-http-nonlocal-redirect";
        let web = container(
            "web",
            &["netexec", "--http-port", "8080"],
            json!({"livenessProbe": probe(http_get("/redirect?loc=http%3A%2F%2F0.0.0.0%2F", 8080), json!({}))}),
        );
        create(&env, name, vec![web], json!({})).await?;
        wait_running(&env, name, "web").await?;
        hold(&env, name, "no restart after a non-local redirect", Duration::from_secs(5), never_restarted("web")).await?;
        let (_, msg, type_) = wait_event(&env, name, "ProbeWarning", "about the redirect", Duration::from_secs(2), |m| {
            m.contains("Probe terminated redirects")
        })
        .await?;
        ensure!(type_ == "Warning", "ProbeWarning event of type {type_:?}");
        ensure!(msg.starts_with("Liveness probe warning: "), "ProbeWarning message {msg:?}");
        expect_no_event(&env, name, "Unhealthy", "for the redirect", |m| m.starts_with("Liveness probe failed")).await?;
        env.stop().await
    })
}

/// Upstream "should *not* be restarted with a tcp:8080 liveness probe": the HTTP server answers
/// 500 but the port is open, so a TCP probe passes; a sibling probing a closed port restarts.
pub fn tcp_open(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-tcp-open";
        let app = container(
            "app",
            &["liveness", "--fail-after", "0s", "--port", "8080"],
            json!({"livenessProbe": probe(tcp(8080), json!({}))}),
        );
        let control = container("control", &["pause"], json!({"livenessProbe": probe(tcp(8081), json!({}))}));
        create(&env, name, vec![app, control], json!({})).await?;
        with_control(&env, name, "app", "control").await?;
        env.stop().await
    })
}

/// A TCP liveness probe on a port nobody listens on fails → restart.
pub fn tcp_closed(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-tcp-closed";
        let app = container("app", &["pause"], json!({"livenessProbe": probe(tcp(8080), json!({}))}));
        create(&env, name, vec![app], json!({})).await?;
        wait_running(&env, name, "app").await?;
        wait_restarts(&env, name, "app", 1, Duration::from_secs(8)).await?;
        expect_liveness_kill_events(&env, name, "app", Duration::from_secs(3)).await?;
        env.stop().await
    })
}

/// Upstream "should *not* be restarted with a GRPC liveness probe": grpc.health.v1 answers
/// SERVING → no restart; a sibling probing a wrong port restarts meanwhile.
pub fn grpc_serving(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-grpc-serving";
        let app = container("app", &["grpc-health", "--port", "5000"], json!({"livenessProbe": probe(grpc(5000), json!({}))}));
        let control = container("control", &["pause"], json!({"livenessProbe": probe(grpc(2333), json!({}))}));
        create(&env, name, vec![app, control], json!({})).await?;
        with_control(&env, name, "app", "control").await?;
        env.stop().await
    })
}

/// Upstream "should be restarted with a GRPC liveness probe": the probe targets a wrong port.
pub fn grpc_wrong_port(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-grpc-wrong-port";
        let app = container(
            "app",
            &["grpc-health", "--port", "5000"],
            json!({"livenessProbe": probe(grpc(2333), json!({}))}),
        );
        create(&env, name, vec![app], json!({})).await?;
        wait_running(&env, name, "app").await?;
        wait_restarts(&env, name, "app", 1, Duration::from_secs(8)).await?;
        expect_liveness_kill_events(&env, name, "app", Duration::from_secs(3)).await?;
        env.stop().await
    })
}

/// Upstream "should override timeoutGracePeriodSeconds when LivenessProbe field is set": pod
/// grace 600 s, the container ignores SIGTERM, the failing liveness probe sets
/// terminationGracePeriodSeconds 1 → killed (SIGKILL, exit 137) after upstream's 2 s minimum
/// grace and restarted within seconds. Catches an agent that uses the pod's 600 s, that kills
/// at once, or that skips the 2 s minimum.
pub fn probe_grace(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = node(&ctx).await?;
        let name = "liveness-probe-grace";
        let app = container(
            "app",
            &["--ignore-sigterm", "pause"],
            json!({"livenessProbe": probe(exec_fail(), json!({"terminationGracePeriodSeconds": 1}))}),
        );
        create(&env, name, vec![app], json!({"terminationGracePeriodSeconds": 600})).await?;
        wait_running(&env, name, "app").await?;
        // Timestamps in the API have second granularity: time the kill here instead, from the
        // Killing event to the restart, polling both.
        let api: kube::Api<Pod> = kube::Api::namespaced(env.client.clone(), "default");
        let want = "Container app failed liveness probe, will be restarted";
        let t0 = Instant::now();
        let mut killing_seen: Option<Instant> = None;
        let p = loop {
            ensure!(t0.elapsed() < Duration::from_secs(12), "no liveness restart within 12 s (pod grace 600 s)");
            if killing_seen.is_none() && events(&env, name).await?.iter().any(|(r, m, _)| r == "Killing" && m == want) {
                killing_seen = Some(Instant::now());
            }
            let p = api.get(name).await?;
            if pods::restarts(&p, "app") >= 1 {
                break p;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let restarted = Instant::now();
        let killing = killing_seen.with_context(|| format!("no Killing event {want:?} before the restart"))?;
        let took = restarted - killing;
        // SIGTERM is ignored: the container ends only by SIGKILL once the grace period has run
        // out — the probe's 1 s raised to upstream's 2 s minimum (killContainer's
        // minimumGracePeriodInSeconds), not at once, not after 600 s. The Killing event is
        // written before the stop starts, so the restart is seen at least ~2 s after it.
        ensure!(
            took >= Duration::from_millis(1800),
            "the container was restarted {took:?} after the Killing event: it was not given upstream's 2 s minimum grace period"
        );
        ensure!(took <= Duration::from_secs(6), "the restart took {took:?} after the Killing event");
        let last = status(&p, "app")
            .and_then(|s| s.last_state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .with_context(|| format!("restarted container without lastState.terminated: {}", status_json(&p)))?;
        ensure!(
            last.exit_code == 137,
            "the SIGTERM-ignoring container ended with exit code {} (reason {:?}), expected 137 from SIGKILL",
            last.exit_code,
            last.reason
        );
        env.stop().await
    })
}
