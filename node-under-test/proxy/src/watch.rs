//! Watching the API: kube::runtime reflectors for Services, EndpointSlices and this Node feed
//! a cache of converted objects and a set of dirty services; every change wakes the sync loop.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event, watcher};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, Client, Resource};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::convert::{self, NodeInfo};
use crate::model::{ServiceIn, SliceIn};

/// (namespace, service name).
pub type SvcKey = (String, String);

const SERVICES: usize = 0;
const SLICES: usize = 1;
const NODE: usize = 2;

/// Converted objects and what changed since the last sync.
#[derive(Debug, Default)]
pub struct Cache {
    pub services: HashMap<SvcKey, ServiceIn>,
    pub slices: HashMap<(String, String), SliceIn>,
    pub slices_by_svc: HashMap<SvcKey, BTreeSet<String>>,
    /// Services whose ports must be recomputed.
    pub dirty: HashSet<SvcKey>,
    pub node: NodeInfo,
    synced: [bool; 3],
    relist: [Option<HashSet<(String, String)>>; 3],
}

impl Cache {
    /// Services and EndpointSlices were listed at least once (upstream waits for both).
    pub fn synced(&self) -> bool {
        self.synced[SERVICES] && self.synced[SLICES]
    }

    /// Marks every list as done (for driving the sync loop without watches).
    pub fn mark_all_synced(&mut self) {
        self.synced = [true; 3];
    }

    /// The Node watch has listed once (the Node may not exist yet).
    pub fn node_synced(&self) -> bool {
        self.synced[NODE]
    }

    pub fn upsert_service(&mut self, s: ServiceIn) {
        let key = (s.namespace.clone(), s.name.clone());
        self.dirty.insert(key.clone());
        self.services.insert(key, s);
    }

    pub fn remove_service(&mut self, key: &SvcKey) {
        if self.services.remove(key).is_some() {
            self.dirty.insert(key.clone());
        }
    }

    pub fn upsert_slice(&mut self, s: SliceIn) {
        let key = (s.namespace.clone(), s.name.clone());
        self.remove_slice(&key);
        let svc = (s.namespace.clone(), s.service.clone());
        self.slices_by_svc.entry(svc.clone()).or_default().insert(s.name.clone());
        self.dirty.insert(svc);
        self.slices.insert(key, s);
    }

    pub fn remove_slice(&mut self, key: &(String, String)) {
        if let Some(old) = self.slices.remove(key) {
            let svc = (old.namespace.clone(), old.service.clone());
            if let Some(set) = self.slices_by_svc.get_mut(&svc) {
                set.remove(&old.name);
                if set.is_empty() {
                    self.slices_by_svc.remove(&svc);
                }
            }
            self.dirty.insert(svc);
        }
    }

    /// The slices of one service.
    pub fn slices_of(&self, key: &SvcKey) -> Vec<&SliceIn> {
        self.slices_by_svc
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|n| self.slices.get(&(key.0.clone(), n.clone())))
            .collect()
    }

    fn begin_relist(&mut self, kind: usize) {
        self.relist[kind] = Some(HashSet::new());
    }

    fn seen(&mut self, kind: usize, key: (String, String)) {
        if let Some(s) = self.relist[kind].as_mut() {
            s.insert(key);
        }
    }

    /// Ends a (re)list: objects not seen in it were deleted while the watch was down.
    fn end_relist(&mut self, kind: usize) {
        let seen = self.relist[kind].take().unwrap_or_default();
        match kind {
            SERVICES => {
                let gone: Vec<SvcKey> = self.services.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                for k in gone {
                    self.remove_service(&k);
                }
            }
            SLICES => {
                let gone: Vec<(String, String)> = self.slices.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                for k in gone {
                    self.remove_slice(&k);
                }
            }
            _ => {
                if seen.is_empty() {
                    self.node = NodeInfo::default();
                }
            }
        }
        self.synced[kind] = true;
    }
}

/// The cache plus the wake-up signal for the sync loop.
#[derive(Debug, Default)]
pub struct Shared {
    cache: Mutex<Cache>,
    pub notify: Notify,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn key_of<K: Resource>(o: &K) -> (String, String) {
    (o.meta().namespace.clone().unwrap_or_default(), o.meta().name.clone().unwrap_or_default())
}

fn handle<K: Resource>(shared: &Shared, kind: usize, ev: Event<K>, apply: fn(&mut Cache, &K), delete: fn(&mut Cache, &K)) {
    let mut c = shared.lock();
    match ev {
        Event::Init => c.begin_relist(kind),
        Event::InitApply(o) => {
            c.seen(kind, key_of(&o));
            apply(&mut c, &o);
        }
        Event::InitDone => c.end_relist(kind),
        Event::Apply(o) => apply(&mut c, &o),
        Event::Delete(o) => delete(&mut c, &o),
    }
    drop(c);
    shared.notify.notify_one();
}

fn apply_service(c: &mut Cache, s: &Service) {
    match convert::service(s) {
        Some(s) => c.upsert_service(s),
        None => c.remove_service(&key_of(s)),
    }
}
fn delete_service(c: &mut Cache, s: &Service) {
    c.remove_service(&key_of(s));
}
fn apply_slice(c: &mut Cache, s: &EndpointSlice) {
    match convert::slice(s) {
        Some(s) => c.upsert_slice(s),
        None => c.remove_slice(&key_of(s)),
    }
}
fn delete_slice(c: &mut Cache, s: &EndpointSlice) {
    c.remove_slice(&key_of(s));
}
fn apply_node(c: &mut Cache, n: &Node) {
    c.node = convert::node(n);
}
fn delete_node(c: &mut Cache, _: &Node) {
    c.node = NodeInfo::default();
}

/// How one watch updates the cache.
struct Handlers<K> {
    kind: usize,
    apply: fn(&mut Cache, &K),
    delete: fn(&mut Cache, &K),
}

fn spawn_one<K>(
    api: Api<K>,
    cfg: watcher::Config,
    h: Handlers<K>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    tasks.spawn(async move {
        let (_store, writer) = reflector::store::<K>();
        let stream = reflector(writer, watcher(api, cfg)).default_backoff();
        let mut stream = pin!(stream);
        loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => break,
                i = stream.next() => i,
            };
            match item {
                Some(Ok(ev)) => handle(&shared, h.kind, ev, h.apply, h.delete),
                Some(Err(e)) => tracing::warn!(error = %e, "watch error (retrying)"),
                None => break,
            }
        }
    });
}

/// Starts the three watches.
pub fn spawn(client: Client, node: &str, shared: Arc<Shared>, cancel: CancellationToken, tasks: &mut JoinSet<()>) {
    spawn_one(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        Handlers { kind: SERVICES, apply: apply_service, delete: delete_service },
        shared.clone(),
        cancel.clone(),
        tasks,
    );
    spawn_one(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default(),
        Handlers { kind: SLICES, apply: apply_slice, delete: delete_slice },
        shared.clone(),
        cancel.clone(),
        tasks,
    );
    spawn_one(
        Api::<Node>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={node}")),
        Handlers { kind: NODE, apply: apply_node, delete: delete_node },
        shared,
        cancel,
        tasks,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn svc(name: &str) -> ServiceIn {
        ServiceIn {
            namespace: "ns".into(),
            name: name.into(),
            cluster_ip: Some("10.96.0.1".parse().unwrap()),
            ports: vec![crate::model::ServicePortIn { name: String::new(), protocol: Protocol::Tcp, port: 80, node_port: None }],
            external_ips: vec![],
            load_balancer_ips: vec![],
            node_port_type: false,
            internal_traffic_local: false,
            external_traffic_local: false,
            affinity_timeout: None,
        }
    }

    fn slice(name: &str, svc: &str) -> SliceIn {
        SliceIn { namespace: "ns".into(), name: name.into(), service: svc.into(), ports: vec![], endpoints: vec![] }
    }

    #[test]
    fn relist_drops_objects_deleted_while_the_watch_was_down() {
        let mut c = Cache::default();
        c.upsert_service(svc("a"));
        c.upsert_service(svc("b"));
        c.upsert_slice(slice("a-1", "a"));
        c.upsert_slice(slice("b-1", "b"));
        c.dirty.clear();
        // A re-list that only sees `a`.
        c.begin_relist(SERVICES);
        c.seen(SERVICES, ("ns".into(), "a".into()));
        c.end_relist(SERVICES);
        c.begin_relist(SLICES);
        c.seen(SLICES, ("ns".into(), "a-1".into()));
        c.end_relist(SLICES);
        assert!(c.synced());
        assert_eq!(c.services.len(), 1);
        assert!(c.slices_of(&("ns".into(), "b".into())).is_empty());
        assert_eq!(c.slices_of(&("ns".into(), "a".into())).len(), 1);
        assert!(c.dirty.contains(&("ns".to_string(), "b".to_string())));
        assert!(!c.dirty.contains(&("ns".to_string(), "a".to_string())));
    }

    #[test]
    fn moving_a_slice_to_another_service_dirties_both() {
        let mut c = Cache::default();
        c.upsert_slice(slice("s", "a"));
        c.dirty.clear();
        c.upsert_slice(slice("s", "b"));
        assert!(c.dirty.contains(&("ns".to_string(), "a".to_string())));
        assert!(c.dirty.contains(&("ns".to_string(), "b".to_string())));
        assert!(c.slices_of(&("ns".into(), "a".into())).is_empty());
    }
}
