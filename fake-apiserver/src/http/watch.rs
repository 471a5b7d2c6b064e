//! Watch streams: initial events, resume from history, selector filtering, bookmarks, timeouts, 410.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Body, is_true};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceId;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::State;
use crate::store::{EventType, Obj};

/// Parameters of a watch request.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    pub rv: Option<u64>,
    pub rv_unset_or_zero: bool,
    pub send_initial: Option<bool>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub label: LabelSelector,
    pub field: FieldSelector,
    pub as_table: bool,
    pub include_object: String,
    pub close_after: Option<u64>,
    /// Convert stored objects before sending (served views such as events.k8s.io).
    pub convert: Option<fn(&Value) -> Value>,
    /// The resource the client asked for, when it differs from the stored one.
    pub view: Option<ResourceId>,
}

impl WatchParams {
    pub fn from_query(res: ResourceId, q: &HashMap<String, String>) -> ApiResult<WatchParams> {
        let (label, field) = super::handlers::selectors(res, q)?;
        let rv_s = q.get("resourceVersion").map(String::as_str).unwrap_or("");
        let (rv, unset) = match rv_s {
            "" | "0" => (None, true),
            s => (Some(s.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))?), false),
        };
        let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
        if send_initial.is_some() && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
            return Err(ApiError::new(422, "Invalid", "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan"));
        }
        let timeout = match q.get("timeoutSeconds") {
            Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| ApiError::bad_request("timeoutSeconds must be an integer"))?)),
            None => None,
        };
        Ok(WatchParams {
            rv,
            rv_unset_or_zero: unset,
            send_initial,
            bookmarks: is_true(q, "allowWatchBookmarks"),
            timeout,
            label,
            field,
            as_table: false,
            include_object: "Metadata".into(),
            close_after: None,
            convert: None,
            view: None,
        })
    }
}

struct WatchState {
    state: Arc<State>,
    res: ResourceId,
    ns: Option<String>,
    p: WatchParams,
    last_rv: u64,
    pending: VecDeque<Bytes>,
    rx: tokio::sync::watch::Receiver<u64>,
    /// Ends the watch when [`crate::faults::Faults::close_watches`] is called.
    closer: tokio::sync::watch::Receiver<u64>,
    deadline: Instant,
    next_bookmark: Instant,
    sent: u64,
    done: bool,
}

impl WatchState {
    fn matches(&self, v: &Value) -> bool {
        if let Some(ns) = &self.ns
            && v.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns.as_str())
        {
            return false;
        }
        self.p.label.matches(v) && self.p.field.matches(v)
    }

    fn line(&self, ty: &str, obj: &Obj) -> Bytes {
        if let Some(conv) = self.p.convert {
            return encode_value(ty, &conv(&obj.value));
        }
        if self.p.as_table {
            let t = crate::table::table(self.res, &[Arc::new(Obj { value: obj.value.clone(), json: obj.json.clone(), rv: obj.rv })], obj.rv, None, &self.p.include_object);
            return encode_value(ty, &t);
        }
        let mut b = BytesMut::with_capacity(obj.json.len() + 32);
        b.put_slice(b"{\"type\":\"");
        b.put_slice(ty.as_bytes());
        b.put_slice(b"\",\"object\":");
        b.put_slice(&obj.json);
        b.put_slice(b"}\n");
        b.freeze()
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let desc = self.p.view.unwrap_or(self.res).desc();
        let mut meta = json!({"resourceVersion": self.last_rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        encode_value("BOOKMARK", &json!({"kind": desc.kind, "apiVersion": desc.api_version(), "metadata": meta}))
    }

    fn drain(&mut self) {
        match self.state.store.events_since(self.res, self.last_rv) {
            Ok((events, global)) => {
                for e in events {
                    let now = self.matches(&e.obj.value);
                    let before = e.prev.as_ref().is_some_and(|p| self.matches(&p.value));
                    let ty = match (e.ty, before, now) {
                        (EventType::Deleted, _, true) => Some("DELETED"),
                        (EventType::Added, _, true) => Some("ADDED"),
                        (EventType::Modified, true, true) => Some("MODIFIED"),
                        (EventType::Modified, false, true) => Some("ADDED"),
                        (EventType::Modified, true, false) => Some("DELETED"),
                        _ => None,
                    };
                    if let Some(ty) = ty {
                        let l = self.line(ty, &e.obj);
                        self.pending.push_back(l);
                    }
                }
                self.last_rv = self.last_rv.max(global);
            }
            Err(exp) => {
                let err = ApiError::gone(format!("too old resource version: {} ({})", exp.requested, exp.oldest));
                self.pending.push_back(encode_value("ERROR", &err.to_status()));
                self.done = true;
            }
        }
    }
}

fn encode_value(ty: &str, v: &Value) -> Bytes {
    let mut s = serde_json::to_vec(&json!({"type": ty, "object": v})).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

async fn next_chunk(mut st: WatchState) -> Option<(Result<Frame<Bytes>, Infallible>, WatchState)> {
    loop {
        if !st.pending.is_empty() {
            if st.state.faults.partitioned() {
                let mut prx = st.state.faults.partition_rx();
                tokio::select! {
                    _ = prx.wait_for(|p| !*p) => {}
                    _ = st.state.cancel.cancelled() => return None,
                }
            }
            let mut out = BytesMut::new();
            while let Some(b) = st.pending.pop_front() {
                let is_event = !b.starts_with(b"{\"type\":\"BOOKMARK\"");
                out.put_slice(&b);
                if is_event {
                    st.sent += 1;
                    if st.p.close_after.is_some_and(|n| st.sent >= n) {
                        st.pending.clear();
                        st.done = true;
                        break;
                    }
                }
            }
            return Some((Ok(Frame::data(out.freeze())), st));
        }
        if st.done {
            return None;
        }
        st.drain();
        if !st.pending.is_empty() || st.done {
            continue;
        }
        let bookmark_at = if st.p.bookmarks { st.next_bookmark } else { st.deadline };
        tokio::select! {
            r = st.rx.changed() => {
                if r.is_err() {
                    st.done = true;
                }
            }
            _ = st.closer.changed() => st.done = true,
            _ = tokio::time::sleep_until(bookmark_at.min(st.deadline)) => {
                if Instant::now() >= st.deadline {
                    if st.p.bookmarks {
                        let b = st.bookmark(false);
                        st.pending.push_back(b);
                    }
                    st.done = true;
                } else {
                    let b = st.bookmark(false);
                    st.pending.push_back(b);
                    st.next_bookmark = Instant::now() + st.state.config.bookmark_interval;
                }
            }
            _ = st.state.cancel.cancelled() => return None,
        }
    }
}

/// Build the streaming response of a watch.
pub fn response(state: Arc<State>, res: ResourceId, ns: Option<String>, p: WatchParams) -> Response<Body> {
    let rx = state.store.subscribe(res);
    let timeout = p.timeout.unwrap_or(Duration::from_secs(1800));
    let now = Instant::now();
    let mut st = WatchState {
        deadline: now + timeout,
        next_bookmark: now + state.config.bookmark_interval,
        state: state.clone(),
        res,
        ns,
        last_rv: 0,
        pending: VecDeque::new(),
        rx,
        closer: state.faults.watch_epoch_rx(),
        sent: 0,
        done: false,
        p,
    };
    let initial = match st.p.send_initial {
        Some(v) => v,
        None => st.p.rv_unset_or_zero,
    };
    if initial {
        let page = state.store.list(res, st.ns.as_deref(), None, None, &|v| st.p.label.matches(v) && st.p.field.matches(v));
        for o in &page.items {
            let l = st.line("ADDED", o);
            st.pending.push_back(l);
        }
        st.last_rv = page.rv;
        if st.p.send_initial == Some(true) {
            let b = st.bookmark(true);
            st.pending.push_back(b);
        }
    } else {
        st.last_rv = st.p.rv.unwrap_or_else(|| state.store.current_rv());
    }
    let stream = futures::stream::unfold(st, next_chunk);
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    r
}
