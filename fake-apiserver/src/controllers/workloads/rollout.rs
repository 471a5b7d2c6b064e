//! The pure arithmetic of Deployment rollouts (upstream `deployment/util/deployment_util.go`
//! and `deployment/rolling.go`): the pod-template hash, `maxSurge` / `maxUnavailable`
//! fenceposts, how far the new ReplicaSet may grow and how far the old ones may shrink.

use serde_json::Value;

/// Upstream's `rand.SafeEncodeString` alphabet (no vowels, no confusable digits).
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A bad `maxSurge` / `maxUnavailable` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    #[error("invalid value for IntOrString: invalid value {0:?}")]
    IntOrPercent(String),
}

/// The `pod-template-hash` of a template (`ComputeHash`): FNV-1a 32 over the template's
/// canonical JSON (keys sorted) and the collision count, written in the safe alphabet.
pub fn pod_template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(template.to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(c.to_string().as_bytes());
    }
    h.to_string().bytes().map(|b| SAFE[usize::from(b) % SAFE.len()] as char).collect()
}

/// `intstr.GetScaledValueFromIntOrPercent`: an integer, or "N%" of `total` rounded up or down.
pub fn scaled(v: Option<&Value>, total: i64, round_up: bool) -> Result<i64, RolloutError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| RolloutError::IntOrPercent(n.to_string())),
        Some(Value::String(s)) => {
            let bad = || RolloutError::IntOrPercent(s.clone());
            let pct: i64 = s.strip_suffix('%').ok_or_else(bad)?.parse().map_err(|_| bad())?;
            let x = pct.checked_mul(total).ok_or_else(bad)?;
            Ok(if round_up { (x + 99).div_euclid(100) } else { x.div_euclid(100) })
        }
        Some(other) => Err(RolloutError::IntOrPercent(other.to_string())),
    }
}

/// `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down) for `replicas`;
/// both zero becomes maxUnavailable 1.
pub fn fenceposts(rolling: Option<&Value>, replicas: i64) -> Result<(i64, i64), RolloutError> {
    let surge = scaled(rolling.and_then(|r| r.get("maxSurge")), replicas, true)?;
    let unavailable = scaled(rolling.and_then(|r| r.get("maxUnavailable")), replicas, false)?;
    Ok(if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) })
}

/// `MaxUnavailable`: the fencepost, capped at `replicas`, 0 when `replicas` is 0.
pub fn max_unavailable(rolling: Option<&Value>, replicas: i64) -> Result<i64, RolloutError> {
    if replicas == 0 {
        return Ok(0);
    }
    Ok(fenceposts(rolling, replicas)?.1.min(replicas))
}

/// `NewRSNewReplicas` for RollingUpdate: grow the new RS while all pods stay within
/// `replicas + maxSurge`, never beyond `replicas`.
pub fn new_rs_replicas(replicas: i64, max_surge: i64, new_rs: i64, all_rs_total: i64) -> i64 {
    if new_rs == replicas {
        return new_rs;
    }
    let max_total = replicas + max_surge;
    if all_rs_total >= max_total {
        return new_rs;
    }
    new_rs + (max_total - all_rs_total).min(replicas - new_rs)
}

/// One old ReplicaSet as the scale-down sees it (oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldRs {
    pub replicas: i64,
    pub available: i64,
}

/// `reconcileOldReplicaSets`: the new `spec.replicas` of each old RS (same order, oldest
/// first). First unhealthy old replicas go (`cleanupUnhealthyReplicas`, bounded by
/// `all - minAvailable - new RS unavailable`), then available ones while the available total
/// stays above `replicas - maxUnavailable` (`scaleDownOldReplicaSetsForRollingUpdate`).
pub fn scale_down_old(replicas: i64, max_unavailable: i64, new_rs: OldRs, old: &[OldRs]) -> Vec<i64> {
    let mut out: Vec<i64> = old.iter().map(|o| o.replicas).collect();
    if out.iter().sum::<i64>() == 0 {
        return out;
    }
    let all: i64 = out.iter().sum::<i64>() + new_rs.replicas;
    let min_available = replicas - max_unavailable;
    let max_scaled_down = all - min_available - (new_rs.replicas - new_rs.available);
    if max_scaled_down <= 0 {
        return out;
    }
    let mut cleaned = 0;
    for (i, o) in old.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        if out[i] == 0 || out[i] == o.available {
            continue;
        }
        let n = (max_scaled_down - cleaned).min(out[i] - o.available);
        out[i] -= n;
        cleaned += n;
    }
    let available: i64 = old.iter().zip(&out).map(|(o, r)| o.available.min(*r)).sum::<i64>() + new_rs.available;
    if available <= min_available {
        return out;
    }
    let total = available - min_available;
    let mut scaled = 0;
    for r in out.iter_mut() {
        if scaled >= total {
            break;
        }
        let n = (*r).min(total - scaled);
        *r -= n;
        scaled += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_is_stable_and_sensitive() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}});
        let h = pod_template_hash(&t, None);
        assert_eq!(h, pod_template_hash(&t.clone(), None));
        assert!(h.bytes().all(|b| SAFE.contains(&b)) && !h.is_empty());
        let mut t2 = t.clone();
        t2["spec"]["containers"][0]["image"] = json!("b");
        assert_ne!(h, pod_template_hash(&t2, None));
        assert_ne!(h, pod_template_hash(&t, Some(1)));
    }

    #[test]
    fn percentages_round_as_upstream() {
        let ru = json!({"maxSurge": "25%", "maxUnavailable": "25%"});
        assert_eq!(fenceposts(Some(&ru), 3), Ok((1, 0)));
        assert_eq!(fenceposts(Some(&ru), 10), Ok((3, 2)));
        assert_eq!(fenceposts(Some(&json!({"maxSurge": 0, "maxUnavailable": 0})), 3), Ok((0, 1)));
        assert_eq!(fenceposts(Some(&json!({"maxSurge": 2, "maxUnavailable": "50%"})), 5), Ok((2, 2)));
        assert!(fenceposts(Some(&json!({"maxSurge": "x%"})), 3).is_err());
        assert!(fenceposts(Some(&json!({"maxSurge": "5"})), 3).is_err());
        assert_eq!(max_unavailable(Some(&json!({"maxUnavailable": 9})), 3), Ok(3));
        assert_eq!(max_unavailable(Some(&ru), 0), Ok(0));
    }

    #[test]
    fn new_rs_grows_within_surge() {
        assert_eq!(new_rs_replicas(3, 1, 0, 3), 1);
        assert_eq!(new_rs_replicas(3, 1, 1, 4), 1);
        assert_eq!(new_rs_replicas(3, 1, 1, 3), 2);
        assert_eq!(new_rs_replicas(3, 1, 3, 4), 3);
        assert_eq!(new_rs_replicas(3, 0, 0, 0), 3);
    }

    #[test]
    fn old_rs_shrinks_keeping_min_available() {
        let rs = |replicas, available| OldRs { replicas, available };
        // 3 replicas, surge 1, unavailable 0: new RS at 1 (not yet available), old at 3.
        assert_eq!(scale_down_old(3, 0, rs(1, 0), &[rs(3, 3)]), vec![3]);
        // The new pod became available: one old pod may go.
        assert_eq!(scale_down_old(3, 0, rs(1, 1), &[rs(3, 3)]), vec![2]);
        // Unhealthy old pods go first, even below min available.
        assert_eq!(scale_down_old(3, 1, rs(1, 0), &[rs(3, 1)]), vec![2]);
        assert_eq!(scale_down_old(3, 1, rs(1, 1), &[rs(3, 1)]), vec![1]);
        // Oldest first.
        assert_eq!(scale_down_old(4, 0, rs(2, 2), &[rs(1, 1), rs(2, 2)]), vec![0, 2]);
        assert_eq!(scale_down_old(3, 0, rs(3, 3), &[rs(0, 0)]), vec![0]);
    }
}
