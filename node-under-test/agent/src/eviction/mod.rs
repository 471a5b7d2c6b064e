//! The eviction manager: observes memory, disk and PID signals from node capacity and CRI stats,
//! holds the node pressure conditions (and their taints), rejects pods at admission under
//! pressure, and evicts one pod per pass when a threshold is met.
//!
//! Pure logic: [`signals`], [`thresholds`] (the condition/grace state machine), [`rank`],
//! [`message`], [`admission`]. Effects: [`stats`] (reading usage) and [`manager`] (the loop).

pub mod admission;
pub mod manager;
pub mod message;
pub mod rank;
pub mod signals;
pub mod stats;
pub mod thresholds;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use signals::Pressure;

/// The node's current pressure conditions, shared by the eviction manager (writer), the node
/// status loop and pod admission (readers). The default has no pressure.
#[derive(Clone, Debug, Default)]
pub struct PressureHandle(Arc<Mutex<BTreeSet<Pressure>>>, Arc<Mutex<std::collections::HashMap<String, String>>>);

impl PressureHandle {
    pub fn get(&self) -> BTreeSet<Pressure> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, p: BTreeSet<Pressure>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = p;
    }

    /// Marks pod `uid` evicted with `message` before its containers are stopped, so its worker
    /// treats it as terminal (phase Failed, reason Evicted) and never restarts a container the
    /// eviction stopped — whatever the order in which it sees the kill and the API status.
    pub fn mark_evicted(&self, uid: &str, message: &str) {
        self.1.lock().unwrap_or_else(|p| p.into_inner()).insert(uid.to_string(), message.to_string());
    }

    /// The eviction message of pod `uid`, if it was evicted.
    pub fn evicted(&self, uid: &str) -> Option<String> {
        self.1.lock().unwrap_or_else(|p| p.into_inner()).get(uid).cloned()
    }
}

/// Rewrites the MemoryPressure / DiskPressure / PIDPressure entries of `conds` from the current
/// pressure (upstream reasons and messages); lastTransitionTime is kept from `prev` while the
/// status is unchanged.
pub fn with_pressure(mut conds: Vec<NodeCondition>, pressure: &PressureHandle, prev: &[NodeCondition], now: &Time) -> Vec<NodeCondition> {
    let on = pressure.get();
    for p in Pressure::ALL {
        let Some(c) = conds.iter_mut().find(|c| c.type_ == p.condition()) else { continue };
        let (status, reason, message) = p.condition_text(on.contains(&p));
        let transition = prev
            .iter()
            .find(|x| x.type_ == c.type_ && x.status == status)
            .and_then(|x| x.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_transition_time = Some(transition);
    }
    conds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_rewrites_conditions_and_transition_times() {
        let t0 = Time(jiff::Timestamp::from_second(1_000).unwrap());
        let t1 = Time(jiff::Timestamp::from_second(2_000).unwrap());
        let base = |status: &str| NodeCondition {
            type_: "MemoryPressure".into(),
            status: status.into(),
            last_transition_time: Some(t0.clone()),
            ..Default::default()
        };
        let h = PressureHandle::default();
        h.set(BTreeSet::from([Pressure::Memory]));
        let out = with_pressure(vec![base("False")], &h, &[base("False")], &t1);
        assert_eq!(out[0].status, "True");
        assert_eq!(out[0].reason.as_deref(), Some("KubeletHasInsufficientMemory"));
        assert_eq!(out[0].message.as_deref(), Some("kubelet has insufficient memory available"));
        assert_eq!(out[0].last_transition_time, Some(t1.clone()));
        let again = with_pressure(vec![base("False")], &h, &out, &Time(jiff::Timestamp::from_second(3_000).unwrap()));
        assert_eq!(again[0].last_transition_time, Some(t1));
    }
}
