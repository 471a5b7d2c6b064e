//! The node Lease in kube-node-lease: object shape, renew timing with jitter, and the renew loop.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::api::{Api, PostParams};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, api};
use crate::metrics::Metrics;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The lease for `node` (uid of the Node for the owner reference), renewed at `now`.
pub fn build_lease(node: &str, node_uid: &str, duration_seconds: u32, now: jiff::Timestamp) -> Lease {
    let mut lease = Lease::default();
    lease.metadata.name = Some(node.to_string());
    lease.metadata.namespace = Some(LEASE_NAMESPACE.to_string());
    lease.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.to_string(),
        uid: node_uid.to_string(),
        ..Default::default()
    }]);
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(node.to_string()),
        lease_duration_seconds: Some(duration_seconds as i32),
        renew_time: Some(MicroTime(now)),
        ..Default::default()
    });
    lease
}

/// Upstream's `wait.Jitter`: `interval + u * jitter * interval`, u uniform in [0, 1).
pub fn jittered(interval: Duration, jitter: f64, u: f64) -> Duration {
    interval + interval.mul_f64((jitter * u).max(0.0))
}

/// Retry delay after `failures` consecutive failures: 200ms doubling, capped at `cap`.
pub fn retry_delay(failures: u32, cap: Duration) -> Duration {
    let d = Duration::from_millis(200).saturating_mul(1u32 << failures.min(16));
    d.min(cap)
}

/// Parameters of the lease loop.
#[derive(Clone, Debug)]
pub struct LeaseParams {
    pub node: String,
    pub node_uid: String,
    pub duration_seconds: u32,
    pub renew_interval: Duration,
    pub jitter: f64,
    pub request_timeout: Duration,
}

async fn renew_once(leases: &Api<Lease>, p: &LeaseParams, cached: &mut Option<Lease>) -> Result<()> {
    let now = jiff::Timestamp::now();
    let current = match cached.take() {
        Some(l) => Some(l),
        None => match api("get lease", p.request_timeout, leases.get_opt(&p.node)).await? {
            Some(l) => Some(l),
            None => {
                let lease = build_lease(&p.node, &p.node_uid, p.duration_seconds, now);
                let created = api("create lease", p.request_timeout, leases.create(&PostParams::default(), &lease)).await?;
                *cached = Some(created);
                return Ok(());
            }
        },
    };
    let mut lease = current.ok_or_else(|| Error::Other("lease vanished".into()))?;
    let fresh = build_lease(&p.node, &p.node_uid, p.duration_seconds, now);
    lease.spec = fresh.spec;
    let has_owner = lease
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "Node" && r.uid == p.node_uid));
    if !has_owner {
        lease.metadata.owner_references = fresh.metadata.owner_references;
    }
    let updated = api("renew lease", p.request_timeout, leases.replace(&p.node, &PostParams::default(), &lease)).await?;
    *cached = Some(updated);
    Ok(())
}

/// Renews the lease every interval (with jitter) until cancelled; failures retry with back-off.
pub async fn run_lease_loop(client: kube::Client, p: LeaseParams, metrics: Metrics, cancel: CancellationToken) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut cached: Option<Lease> = None;
    let mut failures: u32 = 0;
    loop {
        let broken = cached.is_some() && crate::faults::active(crate::faults::Fault::NoLeaseRenewal);
        let renewed = if broken { Ok(()) } else { renew_once(&leases, &p, &mut cached).await };
        let wait = match renewed {
            Ok(()) => {
                failures = 0;
                metrics.lease_renewals.inc();
                let u: f64 = rand::rng().random();
                jittered(p.renew_interval, p.jitter, u)
            }
            Err(e) => {
                metrics.lease_renew_errors.inc();
                cached = None;
                failures += 1;
                tracing::warn!(error = %e, failures, "lease renewal failed");
                retry_delay(failures - 1, p.renew_interval.min(Duration::from_secs(7)))
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_shape() {
        let l = build_lease("node-a", "uid-1", 40, jiff::Timestamp::from_second(1_700_000_000).unwrap());
        assert_eq!(l.metadata.namespace.as_deref(), Some("kube-node-lease"));
        let owners = l.metadata.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!((owners[0].api_version.as_str(), owners[0].kind.as_str()), ("v1", "Node"));
        assert_eq!((owners[0].name.as_str(), owners[0].uid.as_str()), ("node-a", "uid-1"));
        let spec = l.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("node-a"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert!(spec.renew_time.is_some());
    }

    #[test]
    fn jitter_bounds() {
        let base = Duration::from_secs(10);
        assert_eq!(jittered(base, 0.04, 0.0), base);
        assert_eq!(jittered(base, 0.04, 0.5), Duration::from_millis(10_200));
        assert!(jittered(base, 0.04, 0.999_999) < Duration::from_millis(10_400));
    }

    #[test]
    fn retry_backs_off_to_cap() {
        let cap = Duration::from_secs(7);
        assert_eq!(retry_delay(0, cap), Duration::from_millis(200));
        assert_eq!(retry_delay(1, cap), Duration::from_millis(400));
        assert_eq!(retry_delay(10, cap), cap);
        assert_eq!(retry_delay(40, cap), cap);
    }
}
