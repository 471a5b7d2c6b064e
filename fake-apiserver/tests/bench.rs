//! The built-in benchmark runs and reports sane numbers for both runs (a small run; the full one
//! is `nodekit bench apiserver`), and its secure run really goes through TLS client
//! certificates and RBAC.

use fake_apiserver::bench::{BenchOpts, request, run};
use fake_apiserver::bench_tls::{BENCH_ROLE, BENCH_USER, run_secure};
use fake_apiserver::http::authz::{DECISION_ANNOTATION, REASON_ANNOTATION};

fn small() -> BenchOpts {
    BenchOpts { pods: 200, concurrency: 4, watchers: 2, watch_events: 200 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bench_run_reports_both_columns() {
    let r = run(small()).await.unwrap();
    assert_eq!(r.pods, 200);
    for run in [&r.plain, &r.secure] {
        assert!(run.creates_per_sec > 0.0 && run.watch_events_per_sec > 0.0);
        assert!(run.create_p50 <= run.create_p99);
        assert!(run.list_bytes > 200 * 100, "list carried all pods");
    }
    assert!(r.plain.list_bytes.abs_diff(r.secure.list_bytes) < 2_000, "both runs store the same pods");
    assert!(r.rbac.rbac_consulted(), "{:?}", r.rbac);
    let text = r.to_string();
    for want in ["plain HTTP, no authz", "TLS + x509 + RBAC", "creates/s", "watch fan-out", "creates/s >= 10000", "pods < 100 ms"] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
    assert!(text.contains(" met") || text.contains("NOT MET"), "{text}");
}

/// Checked from the server's audit log and with a request of our own: every create of the
/// secure run was made by the bench user (not in `system:masters`) and allowed by the RBAC
/// binding, and the same user is refused what its role does not grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_run_goes_through_rbac() {
    let s = run_secure(&small()).await.unwrap();
    let audit = s.handle.audit();
    let creates: Vec<_> = audit.iter().filter(|e| e.verb == "create" && e.path == "/api/v1/namespaces/bench/pods").collect();
    assert_eq!(creates.len(), 200, "every create audited");
    for e in &creates {
        let user = e.user.as_ref().expect("an authenticated user");
        assert_eq!(user.username, BENCH_USER);
        assert!(!user.groups.iter().any(|g| g == "system:masters"), "{user:?}");
        assert_eq!(e.code, 201);
        assert_eq!(e.annotations.get(DECISION_ANNOTATION).map(String::as_str), Some("allow"), "{e:?}");
        let reason = e.annotations.get(REASON_ANNOTATION).cloned().unwrap_or_default();
        assert!(reason.starts_with("RBAC: allowed by") && reason.contains(BENCH_ROLE), "{reason}");
    }
    assert_eq!(s.rbac.creates_allowed_by_rbac, 200);
    assert_eq!(s.rbac.out_of_role_status, 403);

    // Outside the role: deleting a pod, creating a namespace.
    let base = s.handle.url();
    assert!(base.starts_with("https://"), "{base}");
    let (code, body) = request(&s.client, "DELETE", &format!("{base}/api/v1/namespaces/bench/pods/bench-0"), None).await.unwrap();
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    let (code, _) = request(&s.client, "POST", &format!("{base}/api/v1/namespaces"), Some(br#"{"metadata":{"name":"x"}}"#.to_vec())).await.unwrap();
    assert_eq!(code, 403);
    let denied = s.handle.audit().into_iter().rev().find(|e| e.verb == "delete").expect("the delete is audited");
    assert_eq!(denied.annotations.get(DECISION_ANNOTATION).map(String::as_str), Some("forbid"));
    s.handle.shutdown().await;
}

/// Full-size run: `cargo test --release -p fake-apiserver --test bench -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn full_bench() {
    let r = run(BenchOpts::default()).await.unwrap();
    println!("{r}");
}
