//! Benchmarks that need a world run as hidden catalog entries (`bench/…`): the CLI runs them
//! in a sealed child like any case and prints what they print. They are never listed as cases.

use std::time::Duration;

use k8s_cri::v1 as cri;

use crate::catalog::{BodyFuture, Case, Runtimes, Topology};
use crate::context::CaseCtx;

/// The hidden bench entries.
pub fn all() -> Vec<Case> {
    let entry = |id, body| Case { id, labels: &[], needs: &[], topology: Topology::SingleNode, runtimes: Runtimes::None, body };
    let heal = Case { id: "bench/heal", labels: &[], needs: &[], topology: Topology::TwoNodes, runtimes: Runtimes::FakeOnly, body: crate::cases::packet_paths::heal_bench };
    vec![entry("bench/runtime", runtime as fn(CaseCtx) -> BodyFuture), entry("bench/pods", crate::bench_pods::pods), heal]
}

const RUNS: usize = 30;

/// Picks one call's figures out of a runtime's report.
type StatOf = fn(&fake_cri::bench::Report) -> fake_cri::bench::Stat;

fn fmt_ms(d: Duration) -> String {
    format!("{:>8.2}", d.as_secs_f64() * 1e3)
}

/// fake-cri and containerd side by side: median and p99 of the main CRI calls.
fn runtime(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let mut reports = Vec::new();
        for kind in [harness::backend::RuntimeKind::FakeCri, harness::backend::RuntimeKind::Containerd] {
            let name = match kind {
                harness::backend::RuntimeKind::FakeCri => "fake-cri",
                _ => "containerd",
            };
            let rt = match harness::backend::Runtime::start(&ctx.world, "node-a", kind).await {
                Ok(rt) => rt,
                Err(e) => {
                    println!("{name}: not measured: {e}");
                    continue;
                }
            };
            let cidr = ctx.world.host("node-a")?.pod_cidr().map(|c| c.to_string()).unwrap_or_default();
            let mut client = fake_cri::client::connect(rt.socket()).await?;
            client
                .runtime
                .update_runtime_config(cri::UpdateRuntimeConfigRequest {
                    runtime_config: Some(cri::RuntimeConfig {
                        network_config: Some(cri::NetworkConfig { pod_cidr: cidr }),
                    }),
                })
                .await?;
            // Under the world's cgroup root, so that nothing is left in the host's hierarchy.
            let parent = harness::backend::cgroup_parent("node-a", "bench")?;
            let report = fake_cri::bench::run(rt.socket(), RUNS, harness::backend::WORKLOAD_IMAGE, Some(&parent)).await?;
            reports.push((name, report));
            rt.stop().await?;
        }
        println!("CRI call latency, {RUNS} runs each (ms)");
        print!("{:<28}", "call");
        for (name, _) in &reports {
            print!("  {name:>10} p50  {name:>10} p99");
        }
        println!();
        let rows: [(&str, StatOf); 6] = [
            ("RunPodSandbox", |r| r.run_pod_sandbox),
            ("CreateContainer", |r| r.create_container),
            ("StartContainer", |r| r.start_container),
            ("ExecSync", |r| r.exec_sync),
            ("stop+remove", |r| r.stop_remove),
            ("sandbox+container start", |r| r.sandbox_and_container_start),
        ];
        for (label, get) in rows {
            print!("{label:<28}");
            for (_, r) in &reports {
                let s = get(r);
                print!("  {}     {}    ", fmt_ms(s.median), fmt_ms(s.p99));
            }
            println!();
        }
        if let Some((_, fake)) = reports.iter().find(|(n, _)| *n == "fake-cri") {
            let start = fake.sandbox_and_container_start.median;
            println!(
                "goal: fake-cri sandbox+container start < 10 ms: {} ({:.2} ms)",
                if start < Duration::from_millis(10) { "met" } else { "NOT met" },
                start.as_secs_f64() * 1e3
            );
        }
        Ok(())
    })
}
