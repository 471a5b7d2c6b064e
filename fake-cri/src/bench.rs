//! Latency measurement of the main CRI calls against a running fake-cri.
use crate::client::connect;
use crate::error::{Error, Result};
use k8s_cri::v1 as cri;
use std::path::Path;
use std::time::{Duration, Instant};

/// Median and p99 of one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Median.
    pub median: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
}

/// Results of [`run`].
#[derive(Debug, Clone)]
pub struct Report {
    /// Runs measured.
    pub runs: usize,
    /// RunPodSandbox.
    pub run_pod_sandbox: Stat,
    /// CreateContainer.
    pub create_container: Stat,
    /// StartContainer.
    pub start_container: Stat,
    /// ExecSync of `check-file /`.
    pub exec_sync: Stat,
    /// StopPodSandbox + RemovePodSandbox (with the container).
    pub stop_remove: Stat,
    /// RunPodSandbox + CreateContainer + StartContainer.
    pub sandbox_and_container_start: Stat,
}

fn stat(mut v: Vec<Duration>) -> Stat {
    v.sort();
    if v.is_empty() {
        return Stat { median: Duration::ZERO, p99: Duration::ZERO };
    }
    let median = v[v.len() / 2];
    let rank = ((v.len() as f64) * 0.99).ceil() as usize;
    Stat { median, p99: v[rank.clamp(1, v.len()) - 1] }
}

fn status(e: tonic::Status) -> Error {
    Error::Unknown(format!("{:?}: {}", e.code(), e.message()))
}

/// Runs `runs` pod lifecycles (the pod CIDR must already be set) and measures each call. The
/// sandboxes get `cgroup_parent` when given (a runtime otherwise picks its own default cgroup).
pub async fn run(socket: &Path, runs: usize, image: &str, cgroup_parent: Option<&str>) -> Result<Report> {
    let mut c = connect(socket).await?;
    let (mut a, mut b, mut cc, mut d, mut e, mut tot) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let cfg = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata { name: format!("bench-{i}"), uid: format!("bench-uid-{i}"), namespace: "bench".into(), attempt: 0 }),
            hostname: format!("bench-{i}"),
            linux: cgroup_parent.map(|p| cri::LinuxPodSandboxConfig { cgroup_parent: p.to_string(), ..Default::default() }),
            ..Default::default()
        };
        let t0 = Instant::now();
        let sid = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(cfg.clone()), runtime_handler: String::new() })
            .await
            .map_err(status)?
            .into_inner()
            .pod_sandbox_id;
        let t1 = Instant::now();
        let cid = c
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sid.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata { name: "c".into(), attempt: 0 }),
                    image: Some(cri::ImageSpec { image: image.into(), ..Default::default() }),
                    args: vec!["pause".into()],
                    ..Default::default()
                }),
                sandbox_config: Some(cfg),
            })
            .await
            .map_err(status)?
            .into_inner()
            .container_id;
        let t2 = Instant::now();
        c.runtime.start_container(cri::StartContainerRequest { container_id: cid.clone() }).await.map_err(status)?;
        let t3 = Instant::now();
        let r = c
            .runtime
            .exec_sync(cri::ExecSyncRequest { container_id: cid.clone(), cmd: vec!["/workload".into(), "check-file".into(), "/".into()], timeout: 10 })
            .await
            .map_err(status)?
            .into_inner();
        if r.exit_code != 0 {
            return Err(Error::Unknown(format!("bench exec exited {}", r.exit_code)));
        }
        let t4 = Instant::now();
        c.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: sid.clone() }).await.map_err(status)?;
        c.runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: sid }).await.map_err(status)?;
        let t5 = Instant::now();
        a.push(t1 - t0);
        b.push(t2 - t1);
        cc.push(t3 - t2);
        d.push(t4 - t3);
        e.push(t5 - t4);
        tot.push(t3 - t0);
    }
    Ok(Report {
        runs,
        run_pod_sandbox: stat(a),
        create_container: stat(b),
        start_container: stat(cc),
        exec_sync: stat(d),
        stop_remove: stat(e),
        sandbox_and_container_start: stat(tot),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = stat(v);
        assert_eq!(s.median, Duration::from_millis(51));
        assert_eq!(s.p99, Duration::from_millis(99));
        let s = stat(vec![Duration::from_millis(3)]);
        assert_eq!((s.median, s.p99), (Duration::from_millis(3), Duration::from_millis(3)));
    }
}
