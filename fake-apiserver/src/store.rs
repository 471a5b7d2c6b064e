//! In-memory object storage: one global resourceVersion, per-resource objects and bounded event history.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceId};

/// A stored object with its cached JSON encoding.
#[derive(Debug)]
pub struct Obj {
    pub value: Value,
    pub json: Bytes,
    pub rv: u64,
}

impl Obj {
    pub fn new(value: Value, rv: u64) -> Arc<Obj> {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(Obj { value, json, rv })
    }
    pub fn name(&self) -> &str {
        self.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change in the history of a resource.
#[derive(Debug)]
pub struct WatchEvent {
    pub ty: EventType,
    pub rv: u64,
    pub obj: Arc<Obj>,
    pub prev: Option<Arc<Obj>>,
}

/// What a mutation closure decided.
#[derive(Debug)]
pub enum Change {
    Put(Value),
    Delete,
    Keep,
}

/// The result of a mutation.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub obj: Arc<Obj>,
    pub ty: Option<EventType>,
}

struct Table {
    objects: BTreeMap<String, Arc<Obj>>,
    history: VecDeque<Arc<WatchEvent>>,
    compacted: u64,
    notify: watch::Sender<u64>,
}

struct Inner {
    rv: u64,
    tables: Vec<Table>,
}

/// The store shared by handlers, watches and controllers.
pub struct Store {
    inner: Mutex<Inner>,
    history_limit: AtomicUsize,
}

/// Result of a paged list.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Arc<Obj>>,
    pub rv: u64,
    /// Key of the last returned item when more matching items remain.
    pub next_key: Option<String>,
    pub remaining: usize,
}

/// The history no longer reaches back to the requested version.
#[derive(Debug, Clone, Copy)]
pub struct Expired {
    pub requested: u64,
    pub oldest: u64,
}

pub fn key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_string() } else { format!("{namespace}/{name}") }
}

impl Store {
    pub fn new(history_limit: usize) -> Store {
        let tables = resources::all()
            .map(|_| Table {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 0,
                notify: watch::channel(0).0,
            })
            .collect();
        Store { inner: Mutex::new(Inner { rv: 1, tables }), history_limit: AtomicUsize::new(history_limit.max(1)) }
    }

    pub fn set_history_limit(&self, limit: usize) {
        self.history_limit.store(limit.max(1), Ordering::Relaxed);
    }

    pub fn current_rv(&self) -> u64 {
        self.inner.lock().rv
    }

    pub fn get(&self, res: ResourceId, namespace: &str, name: &str) -> Option<Arc<Obj>> {
        self.inner.lock().tables[res.0].objects.get(&key(namespace, name)).cloned()
    }

    pub fn count(&self, res: ResourceId) -> usize {
        self.inner.lock().tables[res.0].objects.len()
    }

    /// List objects in key order, optionally restricted to a namespace, starting after `after`.
    pub fn list(
        &self,
        res: ResourceId,
        namespace: Option<&str>,
        after: Option<&str>,
        limit: Option<usize>,
        filter: &dyn Fn(&Value) -> bool,
    ) -> ListPage {
        let inner = self.inner.lock();
        let table = &inner.tables[res.0];
        let mut items = Vec::new();
        let mut next_key = None;
        let mut remaining = 0;
        let lower = match (namespace, after) {
            (_, Some(a)) => std::ops::Bound::Excluded(a.to_string()),
            (Some(ns), None) if !ns.is_empty() => std::ops::Bound::Included(format!("{ns}/")),
            _ => std::ops::Bound::Unbounded,
        };
        let prefix = namespace.filter(|ns| !ns.is_empty()).map(|ns| format!("{ns}/"));
        for (k, obj) in table.objects.range((lower, std::ops::Bound::Unbounded)) {
            if let Some(p) = &prefix
                && !k.starts_with(p.as_str())
            {
                break;
            }
            if !filter(&obj.value) {
                continue;
            }
            if let Some(l) = limit
                && items.len() >= l
            {
                if next_key.is_none() {
                    next_key = items.last().map(|o: &Arc<Obj>| key(o.namespace(), o.name()));
                }
                remaining += 1;
                continue;
            }
            items.push(obj.clone());
        }
        ListPage { items, rv: inner.rv, next_key, remaining }
    }

    /// Atomically read-modify-write one object.
    pub fn mutate<F>(&self, res: ResourceId, namespace: &str, name: &str, f: F) -> ApiResult<Outcome>
    where
        F: FnOnce(Option<&Arc<Obj>>) -> ApiResult<Change>,
    {
        self.mutate_with(res, namespace, name, false, f)
    }

    /// Like [`Store::mutate`]; with `dry_run` the change is computed and returned but not stored.
    pub fn mutate_with<F>(&self, res: ResourceId, namespace: &str, name: &str, dry_run: bool, f: F) -> ApiResult<Outcome>
    where
        F: FnOnce(Option<&Arc<Obj>>) -> ApiResult<Change>,
    {
        let k = key(namespace, name);
        let limit = self.history_limit.load(Ordering::Relaxed);
        let mut inner = self.inner.lock();
        let current = inner.tables[res.0].objects.get(&k).cloned();
        let change = f(current.as_ref())?;
        if dry_run {
            let rv = current.as_ref().map_or(0, |c| c.rv);
            return Ok(match change {
                Change::Keep => Outcome { obj: current.ok_or_else(|| ApiError::internal("nothing to keep"))?, ty: None },
                Change::Put(v) => {
                    let ty = if current.is_some() { EventType::Modified } else { EventType::Added };
                    Outcome { obj: Obj::new(v, rv), ty: Some(ty) }
                }
                Change::Delete => Outcome { obj: current.ok_or_else(|| ApiError::internal("nothing to delete"))?, ty: Some(EventType::Deleted) },
            });
        }
        let (ty, obj) = match change {
            Change::Keep => {
                let obj = current.ok_or_else(|| ApiError::internal("nothing to keep"))?;
                return Ok(Outcome { obj, ty: None });
            }
            Change::Put(mut value) => {
                let rv = inner.rv + 1;
                inner.rv = rv;
                if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("resourceVersion".into(), Value::String(rv.to_string()));
                }
                let obj = Obj::new(value, rv);
                let ty = if current.is_some() { EventType::Modified } else { EventType::Added };
                inner.tables[res.0].objects.insert(k, obj.clone());
                (ty, obj)
            }
            Change::Delete => {
                let Some(cur) = current.clone() else {
                    return Err(ApiError::internal("nothing to delete"));
                };
                let rv = inner.rv + 1;
                inner.rv = rv;
                let mut value = cur.value.clone();
                if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("resourceVersion".into(), Value::String(rv.to_string()));
                }
                inner.tables[res.0].objects.remove(&k);
                (EventType::Deleted, Obj::new(value, rv))
            }
        };
        let rv = obj.rv;
        let table = &mut inner.tables[res.0];
        table.history.push_back(Arc::new(WatchEvent { ty, rv, obj: obj.clone(), prev: current }));
        while table.history.len() > limit {
            if let Some(ev) = table.history.pop_front() {
                table.compacted = ev.rv;
            }
        }
        table.notify.send_replace(rv);
        Ok(Outcome { obj, ty: Some(ty) })
    }

    /// Subscribe to change notifications of one resource (the value is the latest event RV).
    pub fn subscribe(&self, res: ResourceId) -> watch::Receiver<u64> {
        self.inner.lock().tables[res.0].notify.subscribe()
    }

    /// Events with rv > `since`, plus the global rv at the time of reading.
    pub fn events_since(&self, res: ResourceId, since: u64) -> Result<(Vec<Arc<WatchEvent>>, u64), Expired> {
        let inner = self.inner.lock();
        let table = &inner.tables[res.0];
        if since < table.compacted {
            return Err(Expired { requested: since, oldest: table.compacted + 1 });
        }
        let start = table.history.partition_point(|e| e.rv <= since);
        Ok((table.history.range(start..).cloned().collect(), inner.rv))
    }

    /// Snapshot of all objects (optionally in a namespace) and the rv it is consistent with.
    pub fn snapshot(&self, res: ResourceId, namespace: Option<&str>) -> (Vec<Arc<Obj>>, u64) {
        let page = self.list(res, namespace, None, None, &|_| true);
        (page.items, page.rv)
    }
}
