//! The scheduler's event recorder, after client-go's events.k8s.io/v1 recorder: an event
//! named `<pod>.<hex nanoseconds>` with `reportingController` "default-scheduler"; the same
//! event again within 6 minutes becomes a series (`series.count`, `series.lastObservedTime`)
//! on the first event instead of a new object. Unlike client-go the note is part of the series
//! key, so a changed message starts a new event, and every repeat is written at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{now_micro, set_in};
use crate::resources::EVENTS;
use crate::server::State;
use crate::store::Change;

/// `reportingController` (and `source.component`) of the events.
pub const COMPONENT: &str = "default-scheduler";
/// Upstream's `validation.NoteLengthLimit`.
pub const NOTE_LENGTH_LIMIT: usize = 1024;
/// How long after its last occurrence an event can still grow into a series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// `truncateMessage`: cut at the note limit with a " ..." suffix (on a character boundary).
pub fn truncate_note(msg: &str) -> String {
    if msg.len() <= NOTE_LENGTH_LIMIT {
        return msg.to_string();
    }
    let mut end = NOTE_LENGTH_LIMIT - " ...".len();
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &msg[..end])
}

/// What an event is about and says.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec<'a> {
    /// "Normal" or "Warning".
    pub ty: &'a str,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: &'a str,
}

/// An events.k8s.io/v1 Event about `pod` (pure; the name and time are given).
pub fn event_v1(pod: &Value, e: &EventSpec<'_>, instance: &str, name: &str, now: &str) -> Value {
    let meta = |k: &str| pod.pointer(&format!("/metadata/{k}")).cloned().unwrap_or(Value::Null);
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": meta("namespace")},
        "eventTime": now,
        "reportingController": COMPONENT, "reportingInstance": instance,
        "action": e.action, "reason": e.reason, "type": e.ty, "note": truncate_note(e.note),
        "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": meta("namespace"), "name": meta("name"),
            "uid": meta("uid"), "resourceVersion": meta("resourceVersion")},
        "deprecatedSource": {"component": COMPONENT},
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    uid: String,
    reason: String,
    action: String,
    note: String,
}

#[derive(Debug, Clone)]
struct Series {
    namespace: String,
    name: String,
    count: i64,
    last: Instant,
}

/// Records the scheduler's events.
#[derive(Debug)]
pub struct Recorder {
    instance: String,
    series: HashMap<Key, Series>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into())
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder { instance: format!("{COMPONENT}-{}", hostname()), series: HashMap::new() }
    }
}

impl Recorder {
    /// Write the event (or grow its series).
    pub fn record(&mut self, state: &State, pod: &Value, e: &EventSpec<'_>) {
        let now = Instant::now();
        self.series.retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
        let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
        let key = Key { uid, reason: e.reason.into(), action: e.action.into(), note: truncate_note(e.note) };
        if let Some(s) = self.series.get_mut(&key) {
            s.count += 1;
            s.last = now;
            if bump_series(state, s) {
                return;
            }
        }
        let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{pod_name}.{nanos:x}");
        let body = crate::events::to_core(&event_v1(pod, e, &self.instance, &name, &now_micro()));
        match state.api.create(EVENTS, &ns, body) {
            Ok(_) => {
                self.series.insert(key, Series { namespace: ns, name, count: 1, last: now });
            }
            Err(err) => tracing::debug!(%err, reason = e.reason, "scheduler event not written"),
        }
    }
}

/// Write `series` onto the stored event; false when the event is gone.
fn bump_series(state: &State, s: &Series) -> bool {
    let series = json!({"count": s.count, "lastObservedTime": now_micro()});
    let r = state.store.mutate(EVENTS, &s.namespace, &s.name, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let mut v = cur.value.clone();
        set_in(&mut v, &["series"], series);
        Ok(Change::Put(v))
    });
    matches!(r, Ok(o) if o.ty.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_truncated_at_the_limit() {
        assert_eq!(truncate_note("short"), "short");
        let long = "é".repeat(600);
        let t = truncate_note(&long);
        assert!(t.len() <= NOTE_LENGTH_LIMIT && t.ends_with(" ..."), "{}", t.len());
        let exact = "x".repeat(NOTE_LENGTH_LIMIT);
        assert_eq!(truncate_note(&exact), exact);
    }

    #[test]
    fn event_shape() {
        let pod = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7"}});
        let e = EventSpec { ty: "Normal", reason: "Scheduled", action: "Binding", note: "Successfully assigned default/web to n1" };
        let v = event_v1(&pod, &e, "default-scheduler-h", "web.1f", "2026-01-01T00:00:00.000000Z");
        assert_eq!(v["regarding"]["uid"], "u1");
        assert_eq!(v["reportingController"], COMPONENT);
        let core = crate::events::to_core(&v);
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "Successfully assigned default/web to n1");
        assert_eq!(core["source"]["component"], COMPONENT);
        assert_eq!(core["reportingComponent"], COMPONENT);
        assert_eq!(core["metadata"]["namespace"], "default");
    }
}
