//! Watches the world while a scenario runs: every Node, Pod and node Lease change as a
//! snapshot (a deleted pod's last one marked `__deleted`), every core/v1 Event as a row. The
//! report's lanes and events table are built from this.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use scenario::lanes::Snapshot;
use scenario::record::EventRow;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What was seen.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub nodes: Vec<Snapshot>,
    pub pods: Vec<Snapshot>,
    pub leases: Vec<Snapshot>,
    pub events: Vec<EventRow>,
}

/// The running watches; [`Recorder::stop`] ends them and returns what they saw.
pub struct Recorder {
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
enum Sink {
    Nodes,
    Pods,
    Leases,
}

impl Recorder {
    pub fn start(client: Client, t0: Instant) -> Recorder {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(snapshots::<Node>(Api::all(client.clone()), Sink::Nodes, seen.clone(), t0, stop.clone())),
            tokio::spawn(snapshots::<Pod>(Api::all(client.clone()), Sink::Pods, seen.clone(), t0, stop.clone())),
            tokio::spawn(snapshots::<Lease>(Api::namespaced(client.clone(), "kube-node-lease"), Sink::Leases, seen.clone(), t0, stop.clone())),
            tokio::spawn(events(Api::all(client), seen.clone(), t0, stop.clone())),
        ];
        Recorder { seen, stop, tasks }
    }

    pub async fn stop(self) -> Seen {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn push(seen: &Mutex<Seen>, sink: Sink, snap: Snapshot) {
    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
    match sink {
        Sink::Nodes => s.nodes.push(snap),
        Sink::Pods => s.pods.push(snap),
        Sink::Leases => s.leases.push(snap),
    }
}

async fn snapshots<K>(api: Api<K>, sink: Sink, seen: Arc<Mutex<Seen>>, t0: Instant, stop: CancellationToken)
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = stream.try_next() => ev,
        };
        let at_ms = t0.elapsed().as_millis() as u64;
        match ev {
            Ok(Some(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => {
                if let Ok(object) = serde_json::to_value(&o) {
                    push(&seen, sink, Snapshot { at_ms, object });
                }
            }
            Ok(Some(watcher::Event::Delete(o))) => {
                if let Ok(mut object) = serde_json::to_value(&o) {
                    object["__deleted"] = serde_json::Value::Bool(true);
                    push(&seen, sink, Snapshot { at_ms, object });
                }
            }
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => return,
        }
    }
}

async fn events(api: Api<Event>, seen: Arc<Mutex<Seen>>, t0: Instant, stop: CancellationToken) {
    let stream = watcher(api, watcher::Config::default()).default_backoff().applied_objects();
    let mut stream = std::pin::pin!(stream);
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = stream.next() => ev,
        };
        match ev {
            Some(Ok(e)) => {
                let row = event_row(&e, t0.elapsed().as_millis() as u64);
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                // A repeated event (count climbs) replaces its earlier row.
                if let Some(old) = s.events.iter_mut().find(|r| r.object == row.object && r.reason == row.reason && r.message == row.message) {
                    old.count = row.count;
                } else {
                    s.events.push(row);
                }
            }
            Some(Err(_)) => {}
            None => return,
        }
    }
}

/// One table row for an Event.
pub fn event_row(e: &Event, at_ms: u64) -> EventRow {
    let o = &e.involved_object;
    let object = match &o.namespace {
        Some(ns) if !ns.is_empty() => format!("{}/{ns}/{}", o.kind.as_deref().unwrap_or(""), o.name.as_deref().unwrap_or("")),
        _ => format!("{}/{}", o.kind.as_deref().unwrap_or(""), o.name.as_deref().unwrap_or("")),
    };
    let source = e
        .reporting_component
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
        .unwrap_or_default();
    EventRow {
        at_ms,
        kind: e.type_.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        object,
        message: e.message.clone().unwrap_or_default(),
        count: e.count.unwrap_or(1).max(1) as u32,
        source,
    }
}
