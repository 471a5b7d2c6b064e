//! A controller's incremental view of one resource, as upstream controllers keep an informer's
//! indexer: what the controller needs of each object (`extract`), brought up to date from the
//! store's event history, so a pass costs what changed instead of a walk over every object.
//! The view is rebuilt from a full list only the first time and when the history no longer
//! reaches back far enough.

use std::collections::HashMap;

use serde_json::Value;

use crate::resources::ResourceId;
use crate::store::{EventType, Store};

/// An object's key: namespace (empty for cluster-scoped kinds) and name.
pub type Key = (String, String);

/// What a controller keeps of the objects of one resource that `extract` picks.
pub struct Follow<T> {
    res: ResourceId,
    extract: fn(&Value) -> Option<T>,
    /// The resourceVersion up to which changes are applied (`None`: never listed).
    seen: Option<u64>,
    items: HashMap<Key, T>,
}

impl<T> Follow<T> {
    /// A view of `res` keeping `extract(object)` for the objects where it is `Some`.
    pub fn new(res: ResourceId, extract: fn(&Value) -> Option<T>) -> Follow<T> {
        Follow { res, extract, seen: None, items: HashMap::new() }
    }

    /// The view with every change stored before this call applied.
    pub fn refresh(&mut self, store: &Store) -> &HashMap<Key, T> {
        match self.seen.map(|seen| store.events_since(self.res, seen)) {
            Some(Ok((events, _))) => {
                for ev in &events {
                    let key = (ev.obj.namespace().to_string(), ev.obj.name().to_string());
                    let kept = match ev.ty {
                        EventType::Added | EventType::Modified => (self.extract)(&ev.obj.value),
                        EventType::Deleted => None,
                    };
                    match kept {
                        Some(v) => self.items.insert(key, v),
                        None => self.items.remove(&key),
                    };
                    self.seen = Some(self.seen.unwrap_or(0).max(ev.rv));
                }
            }
            _ => self.rebuild(store),
        }
        &self.items
    }

    fn rebuild(&mut self, store: &Store) {
        let (objects, rv) = store.snapshot(self.res, None);
        self.items = objects
            .iter()
            .filter_map(|o| Some(((o.namespace().to_string(), o.name().to_string()), (self.extract)(&o.value)?)))
            .collect();
        self.seen = Some(rv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use crate::store::Change;
    use serde_json::json;

    fn put(store: &Store, name: &str, node: &str) {
        let v = json!({"kind": "Pod", "metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node}});
        store.mutate(resources::PODS, "ns", name, |_| Ok(Change::Put(v))).unwrap();
    }

    fn node_of(v: &Value) -> Option<String> {
        v.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_string)
    }

    fn keys<T>(m: &HashMap<Key, T>) -> Vec<String> {
        let mut k: Vec<String> = m.keys().map(|(ns, n)| format!("{ns}/{n}")).collect();
        k.sort();
        k
    }

    #[test]
    fn follows_adds_changes_and_deletes() {
        let store = Store::new(100);
        put(&store, "a", "n1");
        put(&store, "b", "");
        let mut f = Follow::new(resources::PODS, node_of);
        assert_eq!(keys(f.refresh(&store)), ["ns/a"]);
        put(&store, "b", "n2");
        put(&store, "a", "");
        assert_eq!(keys(f.refresh(&store)), ["ns/b"], "a change can drop an object from the view");
        assert_eq!(f.refresh(&store)[&("ns".to_string(), "b".to_string())], "n2");
        store.mutate(resources::PODS, "ns", "b", |_| Ok(Change::Delete)).unwrap();
        assert!(f.refresh(&store).is_empty());
    }

    #[test]
    fn rebuilds_when_history_is_compacted() {
        let store = Store::new(2);
        let mut f = Follow::new(resources::PODS, node_of);
        assert!(f.refresh(&store).is_empty());
        for i in 0..5 {
            put(&store, &format!("p{i}"), "n1");
        }
        assert_eq!(f.refresh(&store).len(), 5);
    }
}
