//! The built-in benchmark runs and reports sane numbers (a small run; the full one is `nodekit bench apiserver`).

use fake_apiserver::bench::{BenchOpts, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bench_run_reports() {
    let r = run(BenchOpts { pods: 300, concurrency: 4, watchers: 2, watch_events: 300 }).await.unwrap();
    assert_eq!(r.pods, 300);
    assert!(r.creates_per_sec > 0.0 && r.watch_events_per_sec > 0.0);
    assert!(r.create_p50 <= r.create_p99);
    assert!(r.list_bytes > 300 * 100, "list carried all pods");
    let text = r.to_string();
    assert!(text.contains("creates/s") && text.contains("watch fan-out"), "{text}");
}

/// Full-size run: `cargo test --release -p fake-apiserver --test bench -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn full_bench() {
    let r = run(BenchOpts::default()).await.unwrap();
    println!("{r}");
}
