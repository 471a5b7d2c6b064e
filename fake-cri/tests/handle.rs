//! The library handle in-process: start, faults through the handle, shutdown. Runs on a thread
//! that first moved into a fresh network namespace, and sets no pod CIDR (no pod networking).
use fake_cri::{Config, FakeCri, Faults};
use k8s_cri::v1 as cri;
use std::time::{Duration, Instant};

#[test]
fn library_handle_faults_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let cfg = Config::new(d.join("cri.sock"), d.join("state"), std::path::Path::new("/nonexistent/workload"));
            let h = FakeCri::start(cfg).await.unwrap();
            assert_eq!(h.socket(), d.join("cri.sock"));
            let mut c = fake_cri::client::connect(h.socket()).await.unwrap();
            let v = c.runtime.version(cri::VersionRequest::default()).await.unwrap().into_inner();
            assert_eq!(v.runtime_name, "fake-cri");
            h.set_faults(Faults {
                rpc_latency_ms: 150,
                pull_error: [(fake_cri::WORKLOAD_IMAGE.to_string(), "no route".to_string())].into(),
                ..Default::default()
            });
            assert_eq!(h.faults().rpc_latency_ms, 150);
            let t = Instant::now();
            let e = c
                .images
                .pull_image(cri::PullImageRequest {
                    image: Some(cri::ImageSpec { image: fake_cri::WORKLOAD_IMAGE.into(), ..Default::default() }),
                    auth: None,
                    sandbox_config: None,
                })
                .await
                .unwrap_err();
            assert!(t.elapsed() >= Duration::from_millis(150));
            assert!(e.message().contains("no route"));
            h.set_faults(Faults::default());
            let t = Instant::now();
            c.runtime.status(cri::StatusRequest { verbose: false }).await.unwrap();
            assert!(t.elapsed() < Duration::from_millis(150));
            h.shutdown().await.unwrap();
            assert!(!d.join("cri.sock").exists());
            assert!(c.runtime.version(cri::VersionRequest::default()).await.is_err());
            let log = std::fs::read_to_string(d.join("state/cri-calls.jsonl")).unwrap();
            assert!(log.contains("\"method\":\"PullImage\"") && log.contains("\"code\":\"Unknown\""));
        });
    })
    .join()
    .unwrap();
}
