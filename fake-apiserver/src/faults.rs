//! Fault injection rules (latency, error status, closing watches) and the partition switch.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A fault rule applied to matching requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultRule {
    /// Assigned by the server when the rule is added.
    pub id: u64,
    /// Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection) or None for any.
    pub verb: Option<String>,
    /// Request path prefix, e.g. "/api/v1/namespaces/default/pods".
    pub path_prefix: Option<String>,
    /// Resource plural, e.g. "pods" (optionally with subresource: "pods/status").
    pub resource: Option<String>,
    /// Added latency before answering.
    pub latency_ms: Option<u64>,
    /// Answer with this status code and a Status body.
    pub error_code: Option<u16>,
    pub error_message: Option<String>,
    /// Close matching watches after this many events.
    pub close_watch_after: Option<u64>,
    /// Apply this many times, then the rule is removed (None = forever).
    pub times: Option<u64>,
}

/// What the router knows about a request when matching rules.
#[derive(Debug, Clone)]
pub struct RequestInfo<'a> {
    pub verb: &'a str,
    pub path: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
}

impl FaultRule {
    fn matches(&self, r: &RequestInfo<'_>) -> bool {
        if let Some(v) = &self.verb
            && !v.eq_ignore_ascii_case(r.verb)
        {
            return false;
        }
        if let Some(p) = &self.path_prefix
            && !r.path.starts_with(p.as_str())
        {
            return false;
        }
        if let Some(res) = &self.resource {
            let full = if r.subresource.is_empty() { r.resource.to_string() } else { format!("{}/{}", r.resource, r.subresource) };
            if res != r.resource && *res != full {
                return false;
            }
        }
        true
    }
}

/// The combined effect of all matching rules.
#[derive(Debug, Clone, Default)]
pub struct FaultEffect {
    pub latency_ms: u64,
    pub error: Option<(u16, String)>,
    pub close_watch_after: Option<u64>,
}

/// Fault rules and partition state.
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    next_id: AtomicU64,
    partition: watch::Sender<bool>,
    /// Bumped to end every open watch.
    watch_epoch: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { rules: Mutex::new(Vec::new()), next_id: AtomicU64::new(1), partition: watch::channel(false).0, watch_epoch: watch::channel(0).0 }
    }
}

impl Faults {
    pub fn add(&self, mut rule: FaultRule) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        rule.id = id;
        self.rules.lock().push(rule);
        id
    }
    pub fn remove(&self, id: u64) -> bool {
        let mut r = self.rules.lock();
        let before = r.len();
        r.retain(|x| x.id != id);
        r.len() != before
    }
    pub fn clear(&self) {
        self.rules.lock().clear();
    }
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().clone()
    }

    /// Match a request against the rules, consuming `times` counters.
    pub fn evaluate(&self, r: &RequestInfo<'_>) -> FaultEffect {
        let mut rules = self.rules.lock();
        if rules.is_empty() {
            return FaultEffect::default();
        }
        let mut eff = FaultEffect::default();
        for rule in rules.iter_mut().filter(|x| x.matches(r)) {
            eff.latency_ms += rule.latency_ms.unwrap_or(0);
            if let Some(code) = rule.error_code
                && eff.error.is_none()
            {
                eff.error = Some((code, rule.error_message.clone().unwrap_or_else(|| format!("injected fault ({code})"))));
            }
            if let Some(n) = rule.close_watch_after {
                eff.close_watch_after = Some(eff.close_watch_after.map_or(n, |m: u64| m.min(n)));
            }
            if let Some(t) = rule.times.as_mut() {
                *t = t.saturating_sub(1);
            }
        }
        rules.retain(|x| x.times != Some(0));
        eff
    }

    pub fn set_partition(&self, on: bool) {
        self.partition.send_replace(on);
    }
    pub fn partitioned(&self) -> bool {
        *self.partition.borrow()
    }
    pub fn partition_rx(&self) -> watch::Receiver<bool> {
        self.partition.subscribe()
    }
    /// End every watch open now (their clients see the stream end, as when an API server
    /// restarts); watches started later are not affected.
    pub fn close_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }
    /// Changes when [`Faults::close_watches`] is called.
    pub fn watch_epoch_rx(&self) -> watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }
}
