//! Zone disruption states and the per-zone NoExecute tainting rate, as upstream's node
//! lifecycle controller: a zone whose nodes are all not Ready is fully disrupted, and when every
//! zone is, no node is tainted NoExecute at all ("master disruption mode": the control plane,
//! not the nodes, is the likely culprit).

use std::time::Instant;

use serde_json::Value;

/// `--unhealthy-zone-threshold`.
pub const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;
/// `--large-cluster-size-threshold`: zones this size or smaller stop tainting when partially
/// disrupted.
pub const LARGE_CLUSTER_SIZE_THRESHOLD: usize = 50;
/// Nodes with this label are left out of the zone arithmetic.
pub const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Upstream's `GetZoneKey`: region and zone labels joined by `":\x00:"`; "" without either.
pub fn zone_key(node: &Value) -> String {
    let label = |k: &str| node.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(Value::as_str).unwrap_or("");
    let (region, zone) = (label("topology.kubernetes.io/region"), label("topology.kubernetes.io/zone"));
    if region.is_empty() && zone.is_empty() { String::new() } else { format!("{region}:\x00:{zone}") }
}

/// Whether the node counts for its zone's state.
pub fn counted(node: &Value) -> bool {
    node.pointer("/metadata/labels").and_then(|l| l.get(EXCLUDE_DISRUPTION)).is_none()
}

/// `ComputeZoneState` from the number of Ready and not Ready nodes of a zone.
pub fn zone_state(ready: usize, not_ready: usize) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= UNHEALTHY_ZONE_THRESHOLD {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The NoExecute tainting rate (nodes per second) of a zone of `size` nodes in `state`, while
/// not every zone is fully disrupted (`setLimiterInZone`).
pub fn zone_rate(state: ZoneState, size: usize, rate: f64, secondary: f64) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => rate,
        ZoneState::PartialDisruption if size > LARGE_CLUSTER_SIZE_THRESHOLD => secondary,
        ZoneState::PartialDisruption => 0.0,
    }
}

/// A token bucket of burst 1 (`flowcontrol.NewTokenBucketRateLimiter(qps, 1)`), full at start.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(now: Instant) -> Bucket {
        Bucket { tokens: 1.0, at: now }
    }

    /// Take a token at `now` if one has accrued at `qps` (never with qps 0).
    pub fn take(&mut self, qps: f64, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * qps).min(1.0);
        if qps > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn states_as_upstream_computes_them() {
        assert_eq!(zone_state(0, 1), ZoneState::FullDisruption);
        assert_eq!(zone_state(0, 0), ZoneState::Normal);
        assert_eq!(zone_state(1, 1), ZoneState::Normal);
        // More than two not Ready and at least 55 %.
        assert_eq!(zone_state(1, 2), ZoneState::Normal);
        assert_eq!(zone_state(2, 3), ZoneState::PartialDisruption);
        assert_eq!(zone_state(3, 3), ZoneState::Normal);
    }

    #[test]
    fn small_partially_disrupted_zones_stop_tainting() {
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 5, 0.1, 0.01), 0.0);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 51, 0.1, 0.01), 0.01);
        assert_eq!(zone_rate(ZoneState::Normal, 5, 0.1, 0.01), 0.1);
    }

    #[test]
    fn zone_keys_and_exclusion() {
        assert_eq!(zone_key(&json!({"metadata": {}})), "");
        let n = json!({"metadata": {"labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}});
        assert_eq!(zone_key(&n), "r:\x00:z");
        assert!(!counted(&json!({"metadata": {"labels": {EXCLUDE_DISRUPTION: ""}}})));
    }

    #[test]
    fn bucket_allows_one_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        assert!(b.take(0.1, t0));
        assert!(!b.take(0.1, t0 + Duration::from_secs(5)));
        assert!(b.take(0.1, t0 + Duration::from_secs(10)));
        let mut stopped = Bucket::new(t0);
        assert!(!stopped.take(0.0, t0));
    }
}
