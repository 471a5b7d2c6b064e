//! Eviction thresholds (hard and soft, with grace periods and minimum reclaim) parsed from the
//! configuration, and the state machine that decides, from one observation to the next, which
//! node pressure conditions hold (kept for the pressure transition period after the last
//! observation) and which threshold must be reclaimed now (pure; time is passed in).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::signals::{Observed, Pressure, Signal};
use crate::config::KubeletConfiguration;

/// A threshold value: an absolute quantity or a percentage of capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Quantity(i64),
    Percent(f64),
}

impl Value {
    pub fn parse(s: &str) -> Option<Value> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().ok()?;
            return (0.0..=100.0).contains(&v).then_some(Value::Percent(v));
        }
        let q = crate::quantity::parse_quantity(s)?;
        (q >= 0.0).then_some(Value::Quantity(q as i64))
    }

    /// The absolute amount for a signal of `capacity`.
    pub fn resolve(&self, capacity: i64) -> i64 {
        match *self {
            Value::Quantity(q) => q,
            Value::Percent(p) => (capacity as f64 * p / 100.0) as i64,
        }
    }
}

/// One eviction threshold: the signal is under pressure when `available < value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: Value,
    /// The text it was configured with (used in messages for absolute values).
    pub text: String,
    /// Zero for hard thresholds.
    pub grace: Duration,
    pub hard: bool,
    pub min_reclaim: Option<Value>,
}

fn parse_map(field: &str, map: &BTreeMap<String, String>) -> Result<Vec<(Signal, Value, String)>, String> {
    map.iter()
        .map(|(k, v)| {
            let signal = Signal::parse(k).ok_or_else(|| format!("{field}: unknown eviction signal {k:?}"))?;
            let value = Value::parse(v).ok_or_else(|| format!("{field}[{k}]: invalid threshold {v:?}"))?;
            Ok((signal, value, v.trim().to_string()))
        })
        .collect()
}

/// The thresholds of a configuration; a soft threshold without a grace period is an error.
pub fn from_config(cfg: &KubeletConfiguration) -> Result<Vec<Threshold>, String> {
    let reclaim: HashMap<Signal, Value> =
        parse_map("evictionMinimumReclaim", &cfg.eviction_minimum_reclaim)?.into_iter().map(|(s, v, _)| (s, v)).collect();
    let mut out = Vec::new();
    for (signal, value, text) in parse_map("evictionHard", &cfg.eviction_hard)? {
        out.push(Threshold { signal, value, text, grace: Duration::ZERO, hard: true, min_reclaim: reclaim.get(&signal).copied() });
    }
    let mut graces = HashMap::new();
    for (k, v) in &cfg.eviction_soft_grace_period {
        let signal = Signal::parse(k).ok_or_else(|| format!("evictionSoftGracePeriod: unknown eviction signal {k:?}"))?;
        let d = crate::config::parse_go_duration(v).map_err(|e| format!("evictionSoftGracePeriod[{k}]: {e}"))?;
        graces.insert(signal, d);
    }
    for (signal, value, text) in parse_map("evictionSoft", &cfg.eviction_soft)? {
        let grace = *graces
            .get(&signal)
            .ok_or_else(|| format!("evictionSoft[{}]: no grace period in evictionSoftGracePeriod", signal.as_str()))?;
        out.push(Threshold { signal, value, text, grace, hard: false, min_reclaim: reclaim.get(&signal).copied() });
    }
    if cfg.eviction_max_pod_grace_period < 0 {
        return Err("evictionMaxPodGracePeriod must be >= 0".into());
    }
    Ok(out)
}

/// What one step decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Pressure conditions that hold now (including those within the transition period).
    pub pressures: BTreeSet<Pressure>,
    /// Index (into the thresholds) of the threshold to reclaim now, if any.
    pub reclaim: Option<usize>,
}

/// Memory of earlier observations.
#[derive(Clone, Debug, Default)]
pub struct ThresholdState {
    first_met: HashMap<usize, Instant>,
    unresolved: BTreeSet<usize>,
    pressure_seen: HashMap<Pressure, Instant>,
}

impl ThresholdState {
    /// Folds in one observation made at `now`.
    pub fn step(
        &mut self,
        thresholds: &[Threshold],
        obs: &BTreeMap<Signal, Observed>,
        now: Instant,
        transition: Duration,
    ) -> Decision {
        let mut met = BTreeSet::new();
        for (i, t) in thresholds.iter().enumerate() {
            let Some(o) = obs.get(&t.signal) else { continue };
            let limit = t.value.resolve(o.capacity);
            let extra = if self.unresolved.contains(&i) { t.min_reclaim.map(|m| m.resolve(o.capacity)).unwrap_or(0) } else { 0 };
            if o.available < limit + extra {
                met.insert(i);
            }
        }
        self.first_met.retain(|i, _| met.contains(i));
        for i in &met {
            self.first_met.entry(*i).or_insert(now);
            self.pressure_seen.insert(thresholds[*i].signal.pressure(), now);
        }
        self.unresolved = met.clone();
        let met_pressures: BTreeSet<Pressure> = met.iter().map(|i| thresholds[*i].signal.pressure()).collect();
        let pressures = self
            .pressure_seen
            .iter()
            .filter(|(p, at)| met_pressures.contains(*p) || now.saturating_duration_since(**at) < transition)
            .map(|(p, _)| *p)
            .collect();
        let reclaim = met
            .iter()
            .copied()
            .filter(|i| self.first_met.get(i).is_some_and(|at| now.saturating_duration_since(*at) >= thresholds[*i].grace))
            .min_by_key(|i| (thresholds[*i].signal, !thresholds[*i].hard));
        Decision { pressures, reclaim }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Result<KubeletConfiguration, crate::config::ConfigError> {
        crate::config::parse_config(
            &format!("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{yaml}"),
            std::path::Path::new("t.yaml"),
        )
    }

    fn mem(available: i64) -> BTreeMap<Signal, Observed> {
        BTreeMap::from([(Signal::MemoryAvailable, Observed { available, capacity: 1000 })])
    }

    #[test]
    fn parses_hard_soft_and_reclaim() {
        let c = cfg("evictionHard:\n  memory.available: 100Mi\n  nodefs.available: 10%\nevictionSoft:\n  memory.available: 200Mi\nevictionSoftGracePeriod:\n  memory.available: 30s\nevictionMinimumReclaim:\n  memory.available: 50Mi\n").unwrap();
        let t = from_config(&c).unwrap();
        assert_eq!(t.len(), 3);
        let soft = t.iter().find(|t| !t.hard).unwrap();
        assert_eq!((soft.signal, soft.grace, soft.value), (Signal::MemoryAvailable, Duration::from_secs(30), Value::Quantity(200 << 20)));
        assert!(t.iter().all(|t| t.signal != Signal::MemoryAvailable || t.min_reclaim == Some(Value::Quantity(50 << 20))));
        assert_eq!(Value::parse("10%").unwrap().resolve(500), 50);
    }

    #[test]
    fn soft_threshold_without_grace_period_is_a_config_error() {
        let e = cfg("evictionSoft:\n  memory.available: 200Mi\n").unwrap_err();
        assert!(e.to_string().contains("grace period"), "{e}");
        assert!(cfg("evictionHard:\n  bogus.signal: 1\n").is_err());
    }

    fn hard(v: i64) -> Threshold {
        Threshold { signal: Signal::MemoryAvailable, value: Value::Quantity(v), text: v.to_string(), grace: Duration::ZERO, hard: true, min_reclaim: None }
    }

    #[test]
    fn hard_threshold_reclaims_at_once_and_condition_outlives_it_by_the_transition_period() {
        let t = [hard(100)];
        let mut s = ThresholdState::default();
        let t0 = Instant::now();
        let tp = Duration::from_secs(5);
        assert_eq!(s.step(&t, &mem(500), t0, tp), Decision { pressures: BTreeSet::new(), reclaim: None });
        let d = s.step(&t, &mem(50), t0 + Duration::from_secs(1), tp);
        assert_eq!(d, Decision { pressures: BTreeSet::from([Pressure::Memory]), reclaim: Some(0) });
        // Resolved, but the condition stays for the transition period after the last observation.
        let d = s.step(&t, &mem(500), t0 + Duration::from_secs(5), tp);
        assert_eq!(d, Decision { pressures: BTreeSet::from([Pressure::Memory]), reclaim: None });
        let d = s.step(&t, &mem(500), t0 + Duration::from_secs(6), tp);
        assert_eq!(d.pressures, BTreeSet::new());
    }

    #[test]
    fn soft_threshold_waits_for_its_grace_period() {
        let t = [Threshold { grace: Duration::from_secs(3), hard: false, ..hard(100) }];
        let mut s = ThresholdState::default();
        let t0 = Instant::now();
        let tp = Duration::from_secs(1);
        let d = s.step(&t, &mem(50), t0, tp);
        assert_eq!(d, Decision { pressures: BTreeSet::from([Pressure::Memory]), reclaim: None }, "condition at once, eviction later");
        assert_eq!(s.step(&t, &mem(50), t0 + Duration::from_secs(2), tp).reclaim, None);
        assert_eq!(s.step(&t, &mem(50), t0 + Duration::from_secs(3), tp).reclaim, Some(0));
        // Dropping below the threshold resets the grace period.
        s.step(&t, &mem(500), t0 + Duration::from_secs(4), tp);
        assert_eq!(s.step(&t, &mem(50), t0 + Duration::from_secs(5), tp).reclaim, None);
    }

    #[test]
    fn minimum_reclaim_keeps_the_threshold_met_until_cleared_by_margin() {
        let t = [Threshold { min_reclaim: Some(Value::Quantity(100)), ..hard(100) }];
        let mut s = ThresholdState::default();
        let t0 = Instant::now();
        let tp = Duration::ZERO;
        assert_eq!(s.step(&t, &mem(150), t0, tp).reclaim, None);
        assert_eq!(s.step(&t, &mem(50), t0, tp).reclaim, Some(0));
        assert_eq!(s.step(&t, &mem(150), t0, tp).reclaim, Some(0), "150 < 100 + 100 while unresolved");
        assert_eq!(s.step(&t, &mem(250), t0, tp).reclaim, None);
        assert_eq!(s.step(&t, &mem(150), t0, tp).reclaim, None);
    }

    #[test]
    fn memory_is_reclaimed_before_disk_and_pids() {
        let pid = Threshold { signal: Signal::PidAvailable, ..hard(10) };
        let disk = Threshold { signal: Signal::NodeFsAvailable, ..hard(10) };
        let t = [pid, disk, hard(100)];
        let obs = BTreeMap::from([
            (Signal::MemoryAvailable, Observed { available: 1, capacity: 1000 }),
            (Signal::NodeFsAvailable, Observed { available: 1, capacity: 1000 }),
            (Signal::PidAvailable, Observed { available: 1, capacity: 1000 }),
        ]);
        let d = ThresholdState::default().step(&t, &obs, Instant::now(), Duration::ZERO);
        assert_eq!(d.reclaim, Some(2));
        assert_eq!(d.pressures, BTreeSet::from([Pressure::Memory, Pressure::Disk, Pressure::Pid]));
    }
}
