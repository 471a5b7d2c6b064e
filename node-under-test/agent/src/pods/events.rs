//! core/v1 Events about pods, as the kubelet writes them (source/reportingComponent kubelet):
//! built here, queued by the [`Recorder`], correlated and written by the [`EventSink`].

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The pod an event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// Which container of the pod, if any (for involvedObject.fieldPath).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerRef {
    None,
    Container(String),
    Init(String),
}

/// Builds the Event object.
pub fn build_event(pod: &PodRef, container: &ContainerRef, node: &str, warning: bool, reason: &str, message: &str, now: jiff::Timestamp) -> Event {
    let field_path = match container {
        ContainerRef::None => None,
        ContainerRef::Container(c) => Some(format!("spec.containers{{{c}}}")),
        ContainerRef::Init(c) => Some(format!("spec.initContainers{{{c}}}")),
    };
    let mut ev = Event::default();
    ev.metadata.name = Some(format!("{}.{:x}", pod.name, now.as_nanosecond()));
    ev.metadata.namespace = Some(pod.namespace.clone());
    ev.involved_object = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(pod.name.clone()),
        namespace: Some(pod.namespace.clone()),
        uid: Some(pod.uid.clone()),
        field_path,
        ..Default::default()
    };
    ev.reason = Some(reason.to_string());
    ev.message = Some(message.to_string());
    ev.type_ = Some(if warning { "Warning" } else { "Normal" }.to_string());
    ev.source = Some(EventSource { component: Some("kubelet".into()), host: Some(node.to_string()) });
    ev.reporting_component = Some("kubelet".into());
    ev.reporting_instance = Some(node.to_string());
    ev.first_timestamp = Some(Time(now));
    ev.last_timestamp = Some(Time(now));
    ev.count = Some(1);
    ev
}

/// How many events wait for the sink before new ones are dropped (upstream's queue size).
pub const QUEUE: usize = 1000;
/// How many distinct events the correlator remembers (upstream's LRU cache size).
const REMEMBERED: usize = 4096;
/// Distinct messages of alike events (all but the message the same) after which they are
/// combined into one (upstream's defaultAggregateMaxEvents).
pub const AGGREGATE_MAX_EVENTS: usize = 10;
/// How close alike events must follow each other to be counted together
/// (upstream's defaultAggregateIntervalInSeconds).
pub const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
/// The message prefix of a combined event (upstream's EventAggregatorByReasonMessageFunc).
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";
/// Attempts per event before it is given up.
const TRIES: u32 = 3;

/// Queues events for the [`EventSink`]; never waits on the API server (a full queue drops the
/// event with a warning, as upstream's broadcaster does).
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    node: String,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("node", &self.node).finish()
    }
}

impl Recorder {
    /// A recorder and the receiving end of its queue (for [`EventSink::new`], or read directly).
    pub fn channel(node: String) -> (Recorder, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Recorder { tx, node }, rx)
    }

    pub fn record(&self, pod: &PodRef, container: &ContainerRef, warning: bool, reason: &str, message: &str) {
        let ev = build_event(pod, container, &self.node, warning, reason, message, jiff::Timestamp::now());
        tracing::info!(pod = %pod.name, reason, message, "event");
        if let Err(e) = self.tx.try_send(ev) {
            tracing::warn!(reason, error = %e, "event dropped");
        }
    }
}

/// What the sink does with an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Create(Event),
    /// The same event was written before as `name`: raise its count and last timestamp.
    /// `key` is what the correlator knows it by.
    Patch { name: String, namespace: String, count: i32, last: Time, event: Event, key: String },
}

/// Upstream's event correlator: first its aggregator — alike events (the same but for their
/// message) that reach [`AGGREGATE_MAX_EVENTS`] distinct messages, each within
/// [`AGGREGATE_INTERVAL`] of the last, are replaced by one combined event
/// ("(combined from similar events): <message>") — then its logger: identical events (source,
/// involved object, type, reason, message; a combined one by what the alike events share)
/// become one Event whose count rises. Each remembers its last [`REMEMBERED`] keys.
#[derive(Debug, Default)]
pub struct Correlator {
    seen: HashMap<String, (String, i32, u64)>,
    similar: HashMap<String, Similar>,
    tick: u64,
}

/// The distinct messages of alike events lately seen.
#[derive(Debug)]
struct Similar {
    messages: BTreeSet<String>,
    last: jiff::Timestamp,
    used: u64,
}

/// Drops the least recently used entry of `map` once it holds [`REMEMBERED`].
fn make_room<V>(map: &mut HashMap<String, V>, used: impl Fn(&V) -> u64) {
    if map.len() >= REMEMBERED
        && let Some(oldest) = map.iter().min_by_key(|(_, v)| used(v)).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

/// What identical events share (upstream's getEventKey): the alike fields, the container's
/// fieldPath and the message.
fn key(ev: &Event) -> String {
    join(&alike_fields(ev), &[ev.involved_object.field_path.as_deref(), ev.message.as_deref()])
}

/// What alike events share (upstream's EventAggregatorByReasonFunc): no fieldPath, no message,
/// but the reporting component and instance.
fn aggregate_key(ev: &Event) -> String {
    join(&alike_fields(ev), &[ev.reporting_component.as_deref(), ev.reporting_instance.as_deref()])
}

/// Source, involved object (without fieldPath), type and reason.
fn alike_fields(ev: &Event) -> [Option<&str>; 9] {
    let o = &ev.involved_object;
    let src = ev.source.as_ref();
    [
        src.and_then(|s| s.component.as_deref()),
        src.and_then(|s| s.host.as_deref()),
        o.kind.as_deref(),
        o.namespace.as_deref(),
        o.name.as_deref(),
        o.uid.as_deref(),
        o.api_version.as_deref(),
        ev.type_.as_deref(),
        ev.reason.as_deref(),
    ]
}

fn join(shared: &[Option<&str>], more: &[Option<&str>]) -> String {
    shared.iter().chain(more).map(|p| p.unwrap_or_default()).collect::<Vec<_>>().join("\u{0}")
}

impl Correlator {
    pub fn correlate(&mut self, ev: Event) -> Write {
        self.correlate_at(ev, jiff::Timestamp::now())
    }

    fn correlate_at(&mut self, ev: Event, now: jiff::Timestamp) -> Write {
        self.tick += 1;
        let (ev, k) = self.aggregate(ev, now);
        if let Some((name, count, used)) = self.seen.get_mut(&k) {
            *count += 1;
            *used = self.tick;
            let last = ev.last_timestamp.clone().unwrap_or(Time(now));
            let namespace = ev.metadata.namespace.clone().unwrap_or_default();
            return Write::Patch { name: name.clone(), namespace, count: *count, last, event: ev, key: k };
        }
        make_room(&mut self.seen, |(_, _, used)| *used);
        self.seen.insert(k, (ev.metadata.name.clone().unwrap_or_default(), 1, self.tick));
        Write::Create(ev)
    }

    /// Upstream's EventAggregate: the event and its logger key, or, once alike events carried
    /// [`AGGREGATE_MAX_EVENTS`] distinct messages, a combined event keyed by what they share.
    fn aggregate(&mut self, ev: Event, now: jiff::Timestamp) -> (Event, String) {
        let agg = aggregate_key(&ev);
        make_room(&mut self.similar, |s| s.used);
        let fresh = || Similar { messages: BTreeSet::new(), last: now, used: 0 };
        let record = self.similar.entry(agg.clone()).or_insert_with(fresh);
        let interval = Duration::try_from(now.duration_since(record.last)).unwrap_or_default();
        if interval > AGGREGATE_INTERVAL {
            record.messages.clear();
        }
        record.messages.insert(ev.message.clone().unwrap_or_default());
        (record.last, record.used) = (now, self.tick);
        if record.messages.len() < AGGREGATE_MAX_EVENTS {
            let k = key(&ev);
            return (ev, k);
        }
        // Upstream drops one message (any) so that the next new one combines again.
        record.messages.pop_first();
        let object = ev.involved_object.name.clone().unwrap_or_default();
        let mut combined = Event::default();
        combined.metadata.name = Some(format!("{object}.{:x}", now.as_nanosecond()));
        combined.metadata.namespace = ev.metadata.namespace.clone();
        combined.count = Some(1);
        combined.first_timestamp = Some(Time(now));
        combined.last_timestamp = Some(Time(now));
        combined.message = Some(format!("{COMBINED_PREFIX}{}", ev.message.as_deref().unwrap_or_default()));
        combined.involved_object = ev.involved_object;
        (combined.type_, combined.reason, combined.source) = (ev.type_, ev.reason, ev.source);
        (combined, agg)
    }

    /// The event known by `key` was gone, and `ev` (carrying its count) is created in its
    /// place, as upstream's recordToSink does after a patch answered NotFound.
    fn recreate(&mut self, key: String, ev: Event) -> Write {
        self.tick += 1;
        make_room(&mut self.seen, |(_, _, used)| *used);
        self.seen.insert(key, (ev.metadata.name.clone().unwrap_or_default(), ev.count.unwrap_or(1), self.tick));
        Write::Create(ev)
    }
}

/// Writes queued events to the API server in order, correlating repeats; failures are retried
/// a few times, then logged. Owned by the agent's task set.
pub struct EventSink {
    client: kube::Client,
    rx: mpsc::Receiver<Event>,
    timeout: Duration,
    correlator: Correlator,
}

impl EventSink {
    pub fn new(client: kube::Client, rx: mpsc::Receiver<Event>, timeout: Duration) -> EventSink {
        EventSink { client, rx, timeout, correlator: Correlator::default() }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = self.rx.recv() => match ev { Some(ev) => ev, None => return },
            };
            let write = self.correlator.correlate(ev);
            for attempt in 1..=TRIES {
                match self.write(&write).await {
                    Ok(()) => break,
                    Err(e) if e.api_code() == Some(404) && matches!(write, Write::Patch { .. }) => {
                        if let Write::Patch { event, count, last, key, .. } = &write {
                            let mut fresh = event.clone();
                            fresh.count = Some(*count);
                            fresh.last_timestamp = Some(last.clone());
                            let again = self.correlator.recreate(key.clone(), fresh);
                            if let Err(e) = self.write(&again).await {
                                tracing::warn!(error = %e, "event not recorded");
                            }
                        }
                        break;
                    }
                    Err(e) if attempt == TRIES => tracing::warn!(error = %e, "event not recorded"),
                    Err(_) => {
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(200 << attempt)) => {}
                        }
                    }
                }
            }
        }
    }

    async fn write(&self, w: &Write) -> crate::error::Result<()> {
        match w {
            Write::Create(ev) => {
                let api: Api<Event> = Api::namespaced(self.client.clone(), ev.metadata.namespace.as_deref().unwrap_or("default"));
                crate::error::api("create event", self.timeout, api.create(&PostParams::default(), ev)).await.map(drop)
            }
            Write::Patch { name, namespace, count, last, .. } => {
                let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
                let patch = serde_json::json!({"count": count, "lastTimestamp": last});
                let pp = PatchParams::default();
                crate::error::api("patch event", self.timeout, api.patch(name, &pp, &Patch::Strategic(patch))).await.map(drop)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shape() {
        let pod = PodRef { name: "p".into(), namespace: "ns".into(), uid: "u".into() };
        let ev = build_event(&pod, &ContainerRef::Container("c".into()), "node-a", true, "Unhealthy", "m", jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(ev.involved_object.field_path.as_deref(), Some("spec.containers{c}"));
        assert_eq!(ev.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(ev.involved_object.uid.as_deref(), Some("u"));
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        let src = ev.source.unwrap();
        assert_eq!((src.component.as_deref(), src.host.as_deref()), (Some("kubelet"), Some("node-a")));
        assert_eq!(ev.reporting_component.as_deref(), Some("kubelet"));
        assert_eq!(ev.metadata.namespace.as_deref(), Some("ns"));
    }

    fn ev(reason: &str, message: &str) -> Event {
        let pod = PodRef { name: "p".into(), namespace: "ns".into(), uid: "u".into() };
        build_event(&pod, &ContainerRef::Container("c".into()), "node-a", true, reason, message, jiff::Timestamp::now())
    }

    #[test]
    fn repeats_raise_the_count_of_the_first_event() {
        let mut c = Correlator::default();
        let first = ev("BackOff", "Back-off restarting failed container");
        let name = first.metadata.name.clone().unwrap();
        assert!(matches!(c.correlate(first), Write::Create(_)));
        match c.correlate(ev("BackOff", "Back-off restarting failed container")) {
            Write::Patch { name: n, count, namespace, .. } => assert_eq!((n, count, namespace.as_str()), (name.clone(), 2, "ns")),
            w => panic!("{w:?}"),
        }
        assert!(matches!(c.correlate(ev("BackOff", "Back-off restarting failed container")), Write::Patch { count: 3, .. }));
        // Another message or reason is another event.
        assert!(matches!(c.correlate(ev("BackOff", "other")), Write::Create(_)));
        assert!(matches!(c.correlate(ev("Unhealthy", "Back-off restarting failed container")), Write::Create(_)));
        // Forgotten (the event is gone upstream): created anew.
        c.seen.remove(&key(&ev("BackOff", "other")));
        assert!(matches!(c.correlate(ev("BackOff", "other")), Write::Create(_)));
    }

    fn on(container: &str, reason: &str, message: &str) -> Event {
        let pod = PodRef { name: "p".into(), namespace: "ns".into(), uid: "u".into() };
        build_event(&pod, &ContainerRef::Container(container.into()), "node-a", true, reason, message, jiff::Timestamp::now())
    }

    fn message(w: &Write) -> &str {
        match w {
            Write::Create(e) | Write::Patch { event: e, .. } => e.message.as_deref().unwrap_or_default(),
        }
    }

    #[test]
    fn alike_events_with_ten_messages_are_combined() {
        let (mut c, t) = (Correlator::default(), jiff::Timestamp::now());
        // Alike whatever the container (upstream's aggregate key has no fieldPath).
        for i in 0..AGGREGATE_MAX_EVENTS - 1 {
            let w = c.correlate_at(on(if i % 2 == 0 { "a" } else { "b" }, "Unhealthy", &format!("probe failed: {i}")), t);
            assert!(matches!(&w, Write::Create(_)) && message(&w) == format!("probe failed: {i}"), "{w:?}");
        }
        let tenth = c.correlate_at(on("a", "Unhealthy", "probe failed: 9"), t);
        let Write::Create(combined) = &tenth else { panic!("{tenth:?}") };
        assert_eq!(combined.message.as_deref(), Some("(combined from similar events): probe failed: 9"));
        assert_eq!((combined.count, combined.reason.as_deref(), combined.type_.as_deref()), (Some(1), Some("Unhealthy"), Some("Warning")));
        assert_eq!(combined.involved_object.name.as_deref(), Some("p"));
        let name = combined.metadata.name.clone().unwrap();
        assert!(name.starts_with("p."), "{name}");
        // Every later new message raises the combined event's count.
        match c.correlate_at(on("b", "Unhealthy", "probe failed: 10"), t) {
            Write::Patch { name: n, count: 2, event, .. } => {
                assert_eq!(n, name);
                assert_eq!(event.message.as_deref(), Some("(combined from similar events): probe failed: 10"));
            }
            w => panic!("{w:?}"),
        }
        // Another reason is not alike.
        assert!(matches!(c.correlate_at(on("a", "Killing", "probe failed: 11"), t), Write::Create(e) if e.message.as_deref() == Some("probe failed: 11")));
    }

    #[test]
    fn alike_events_further_apart_than_the_interval_start_over() {
        let (mut c, t) = (Correlator::default(), jiff::Timestamp::now());
        for i in 0..AGGREGATE_MAX_EVENTS - 1 {
            c.correlate_at(on("a", "Unhealthy", &i.to_string()), t);
        }
        let later = t + jiff::SignedDuration::try_from(AGGREGATE_INTERVAL).unwrap() + jiff::SignedDuration::from_secs(1);
        let w = c.correlate_at(on("a", "Unhealthy", "late"), later);
        assert_eq!(message(&w), "late", "{w:?}");
    }

    #[test]
    fn remembers_a_bounded_number_of_events() {
        // Distinct reasons: alike events (one reason) would be combined after ten.
        let mut c = Correlator::default();
        for i in 0..REMEMBERED + 10 {
            assert!(matches!(c.correlate(ev(&format!("R{i}"), "m")), Write::Create(_)));
        }
        assert_eq!((c.seen.len(), c.similar.len()), (REMEMBERED, REMEMBERED));
        // The oldest were dropped; the newest are still correlated.
        assert!(matches!(c.correlate(ev("R0", "m")), Write::Create(_)));
        assert!(matches!(c.correlate(ev(&format!("R{}", REMEMBERED + 9), "m")), Write::Patch { count: 2, .. }));
    }

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let (r, mut rx) = Recorder::channel("node-a".into());
        let pod = PodRef { name: "p".into(), namespace: "ns".into(), uid: "u".into() };
        for i in 0..QUEUE + 5 {
            r.record(&pod, &ContainerRef::None, false, "R", &i.to_string());
        }
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, QUEUE);
    }

    /// A client that answers every request like the API server would and records
    /// (method, path, body); with `patch_404` every PATCH answers 404.
    fn recording_client(patch_404: bool) -> (kube::Client, std::sync::Arc<std::sync::Mutex<Seen>>) {
        use http_body_util::BodyExt;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let sink = sink.clone();
            async move {
                let (method, path) = (req.method().to_string(), req.uri().path().to_string());
                let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                sink.lock().unwrap().push((method.clone(), path.clone(), v.clone()));
                let (code, out) = if method == "PATCH" && patch_404 {
                    (404, serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}))
                } else {
                    (if method == "POST" { 201 } else { 200 }, serde_json::json!({"metadata": {"name": "x"}, "involvedObject": {}}))
                };
                let resp = http::Response::builder().status(code).body(http_body_util::Full::new(bytes::Bytes::from(out.to_string())));
                Ok::<_, std::convert::Infallible>(resp.expect("response"))
            }
        });
        (kube::Client::new(svc, "default"), seen)
    }

    type Seen = Vec<(String, String, serde_json::Value)>;

    /// Runs a sink until `expect` requests were seen, recording `events` through its recorder.
    async fn through_sink(patch_404: bool, expect: usize, events: &[(ContainerRef, &str, &str)]) -> Seen {
        let (client, seen) = recording_client(patch_404);
        let (r, rx) = Recorder::channel("node-a".into());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(EventSink::new(client, rx, Duration::from_secs(5)).run(cancel.clone()));
        let pod = PodRef { name: "p".into(), namespace: "ns".into(), uid: "u".into() };
        for (c, reason, message) in events {
            r.record(&pod, c, true, reason, message);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().len() < expect {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", seen.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        seen.lock().unwrap().clone()
    }

    fn methods(seen: &Seen) -> Vec<&str> {
        seen.iter().map(|(m, _, _)| m.as_str()).collect()
    }

    #[tokio::test]
    async fn the_sink_creates_then_patches_the_count() {
        let backoff = (ContainerRef::Container("c".into()), "BackOff", "Back-off restarting failed container");
        let seen = through_sink(false, 4, &[backoff.clone(), backoff.clone(), backoff, (ContainerRef::None, "Killing", "Stopping")]).await;
        assert_eq!(methods(&seen), ["POST", "PATCH", "PATCH", "POST"]);
        assert_eq!(seen[0].1, "/api/v1/namespaces/ns/events");
        let name = seen[0].2["metadata"]["name"].as_str().unwrap().to_string();
        assert_eq!(seen[1].1, format!("/api/v1/namespaces/ns/events/{name}"));
        assert_eq!((seen[1].2["count"].as_i64(), seen[2].2["count"].as_i64()), (Some(2), Some(3)));
        assert!(seen[2].2["lastTimestamp"].is_string());
        assert_eq!(seen[3].2["reason"], "Killing");
    }

    #[tokio::test]
    async fn a_repeat_of_a_deleted_event_is_created_anew_with_its_count() {
        let backoff = (ContainerRef::None, "BackOff", "m");
        let seen = through_sink(true, 3, &[backoff.clone(), backoff]).await;
        assert_eq!(methods(&seen), ["POST", "PATCH", "POST"]);
        assert_eq!(seen[2].2["count"].as_i64(), Some(2));
    }
}
