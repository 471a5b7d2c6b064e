//! Latency of the main CRI calls (30 runs): prints medians and p99s of RunPodSandbox,
//! CreateContainer, StartContainer, ExecSync and stop+remove.
mod common;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn bench_main_calls() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    let r = fake_cri::bench::run(&w.socket(), 30, IMAGE, None).await.unwrap();
    eprintln!("{r:#?}");
    assert_eq!(r.runs, 30);
    for s in [r.run_pod_sandbox, r.create_container, r.start_container, r.exec_sync, r.stop_remove] {
        assert!(s.median > Duration::ZERO && s.p99 >= s.median);
    }
    // Every pod was cleaned up: no sandbox, veth or IP left behind.
    let left = w.client.runtime.list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest { filter: None }).await.unwrap().into_inner().items;
    assert!(left.is_empty());
    let links = String::from_utf8_lossy(&w.node_cmd(&["ip", "-o", "link"]).stdout).to_string();
    assert!(!links.contains("veth"), "{links}");
}
