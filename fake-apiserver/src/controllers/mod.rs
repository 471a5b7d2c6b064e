//! Control-plane controllers run by the server.

pub mod disruption;
pub mod endpointslices;
pub mod event_ttl;
pub mod follow;
pub mod node_lifecycle;
pub mod pod_gc;
pub mod recorder;
pub mod root_ca_publisher;
pub mod scheduler;
pub mod service_accounts;
pub mod taint_eviction;
pub mod workloads;

use serde_json::Value;

use crate::server::State;
use crate::store::Change;

/// Set a pod status condition (replacing one of the same type; `lastTransitionTime` kept when
/// the status does not change), as `apipod.UpdatePodCondition` + a status patch do.
pub fn set_pod_condition(state: &State, ns: &str, name: &str, cond: Value) {
    let ty = cond.get("type").cloned();
    let _ = state.store.mutate(crate::resources::PODS, ns, name, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let mut p = cur.value.clone();
        let mut conds = p.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut new = cond.clone();
        match conds.iter_mut().find(|c| c.get("type") == ty.as_ref()) {
            Some(old) => {
                if old.get("status") == new.get("status")
                    && let Some(t) = old.get("lastTransitionTime")
                {
                    new["lastTransitionTime"] = t.clone();
                }
                *old = new;
            }
            None => conds.push(new),
        }
        crate::api::set_in(&mut p, &["status", "conditions"], Value::Array(conds));
        Ok(if p == cur.value { Change::Keep } else { Change::Put(p) })
    });
}

/// Wait for the next pass of a controller: until one of `rxs` reports a change or `timeout`
/// passes, then 10 ms more so a burst of changes makes one pass, with every receiver marked
/// seen. `false` when the server is cancelled.
pub async fn next_pass(state: &State, rxs: &mut [tokio::sync::watch::Receiver<u64>], timeout: std::time::Duration) -> bool {
    let changed = futures::future::select_all(rxs.iter_mut().map(|rx| Box::pin(rx.changed())));
    tokio::select! {
        _ = changed => {}
        _ = tokio::time::sleep(timeout) => {}
        _ = state.cancel.cancelled() => return false,
    }
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
        _ = state.cancel.cancelled() => return false,
    }
    for rx in rxs.iter_mut() {
        rx.mark_unchanged();
    }
    true
}
