//! The authorizer's view of the store, kept current cheaply: the RBAC snapshot is rebuilt only
//! when a Role, ClusterRole, RoleBinding or ClusterRoleBinding changed, and the Node
//! authorizer's graph follows pod changes incrementally from the store's event history (a full
//! rebuild only when that history no longer reaches back far enough). Requests that find it
//! current share a read lock, so authorization adds no per-request copying. The graph is
//! brought up to date only for node users, the only ones the Node authorizer judges: a busy
//! stream of pod writes by anyone else never takes the write lock.

use std::sync::Arc;

use parking_lot::{RwLock, RwLockWriteGuard};
use tokio::sync::watch;

use crate::auth::user::node_identity;
use crate::auth::{Attributes, Decision, NodeGraph, RbacSnapshot, Snapshot};
use crate::resources::{self, ResourceId};
use crate::store::{EventType, Store};

/// The resources a snapshot reads: the RBAC kinds, then pods.
const WATCHED: [ResourceId; 5] =
    [resources::ROLES, resources::ROLEBINDINGS, resources::CLUSTERROLES, resources::CLUSTERROLEBINDINGS, resources::PODS];

/// The newest change (resourceVersion) of each [`WATCHED`] resource.
type Versions = [u64; 5];

#[derive(Default)]
struct Cached {
    snapshot: Snapshot,
    /// The versions the RBAC part was built from (`None`: never built).
    rbac_seen: Option<[u64; 4]>,
    /// The resourceVersion up to which pod changes are in the graph (`None`: never built).
    pods_seen: Option<u64>,
}

impl Cached {
    /// Whether the snapshot holds every change in `latest`; pods only when `needs_pods`.
    fn is_current(&self, latest: &Versions, needs_pods: bool) -> bool {
        self.rbac_seen.is_some_and(|seen| seen[..] == latest[..4])
            && (!needs_pods || self.pods_seen.is_some_and(|seen| seen >= latest[4]))
    }

    fn refresh(&mut self, store: &Store, latest: &Versions, needs_pods: bool) {
        let rbac_latest = [latest[0], latest[1], latest[2], latest[3]];
        if self.rbac_seen != Some(rbac_latest) {
            let objects: Vec<_> = resources::RBAC.iter().flat_map(|r| store.snapshot(*r, None).0).collect();
            self.snapshot.rbac = RbacSnapshot::from_objects(objects.iter().map(|o| &o.value));
            self.rbac_seen = Some(rbac_latest);
        }
        if needs_pods && self.pods_seen.is_none_or(|seen| seen < latest[4]) {
            self.follow_pods(store);
        }
    }

    /// Applies the pod events since the last refresh, or rebuilds the graph.
    fn follow_pods(&mut self, store: &Store) {
        let events = self.pods_seen.map(|seen| store.events_since(resources::PODS, seen));
        let Some(Ok((events, _))) = events else {
            let (pods, rv) = store.snapshot(resources::PODS, None);
            let mut graph = NodeGraph::new();
            for pod in &pods {
                graph.add_pod(&pod.value);
            }
            self.snapshot.nodes = graph;
            self.pods_seen = Some(rv);
            return;
        };
        for ev in &events {
            match ev.ty {
                EventType::Added | EventType::Modified => self.snapshot.nodes.add_pod(&ev.obj.value),
                EventType::Deleted => self.snapshot.nodes.remove_pod(ev.obj.namespace(), ev.obj.name()),
            }
            self.pods_seen = Some(self.pods_seen.unwrap_or(0).max(ev.rv));
        }
    }
}

/// A cached [`Snapshot`] of one store.
pub struct SnapshotCache {
    store: Arc<Store>,
    changes: [watch::Receiver<u64>; 5],
    cached: RwLock<Cached>,
}

impl SnapshotCache {
    /// A cache over `store`; nothing is built until the first [`SnapshotCache::with`].
    pub fn new(store: Arc<Store>) -> SnapshotCache {
        let changes = WATCHED.map(|r| store.subscribe(r));
        SnapshotCache { store, changes, cached: RwLock::new(Cached::default()) }
    }

    fn latest(&self) -> Versions {
        let mut v = [0; 5];
        for (slot, rx) in v.iter_mut().zip(&self.changes) {
            *slot = *rx.borrow();
        }
        v
    }

    /// kube-apiserver's `Node,RBAC` decision ([`crate::auth::authorize`]) on `attrs`, over a
    /// snapshot holding every change stored before this call that can bear on it.
    pub fn authorize(&self, attrs: &Attributes) -> Decision {
        let needs_pods = node_identity(&attrs.user).is_some();
        self.with(needs_pods, |snapshot| crate::auth::authorize(attrs, snapshot))
    }

    /// Runs `f` over a snapshot that includes every RBAC change stored before this call, and
    /// every pod change too when `needs_pods`.
    pub fn with<R>(&self, needs_pods: bool, f: impl FnOnce(&Snapshot) -> R) -> R {
        let latest = self.latest();
        {
            let cached = self.cached.read();
            if cached.is_current(&latest, needs_pods) {
                return f(&cached.snapshot);
            }
        }
        let mut cached = self.cached.write();
        if !cached.is_current(&latest, needs_pods) {
            cached.refresh(&self.store, &latest, needs_pods);
        }
        let cached = RwLockWriteGuard::downgrade(cached);
        f(&cached.snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Attributes, User, authorize};
    use crate::store::Change;
    use serde_json::{Value, json};

    fn put(store: &Store, res: ResourceId, ns: &str, v: Value) {
        let name = v["metadata"]["name"].as_str().unwrap().to_string();
        store.mutate(res, ns, &name, |_| Ok(Change::Put(v))).unwrap();
    }

    fn node_get_pod(snap: &Snapshot, pod: &str) -> bool {
        let user = User::new("system:node:n1", &["system:nodes"]);
        authorize(&Attributes::resource(user, "get", "", "pods", "ns", pod), snap).is_allowed()
    }

    #[test]
    fn follows_rbac_and_pod_changes() {
        let store = Arc::new(Store::new(100));
        let cache = SnapshotCache::new(store.clone());
        let alice = || Attributes::resource(User::new("alice", &[]), "get", "", "pods", "ns", "p");
        assert!(!cache.authorize(&alice()).is_allowed());
        put(&store, resources::CLUSTERROLES, "", json!({"kind": "ClusterRole", "metadata": {"name": "r"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}));
        put(&store, resources::ROLEBINDINGS, "ns", json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "ns"},
            "roleRef": {"kind": "ClusterRole", "name": "r"}, "subjects": [{"kind": "User", "name": "alice"}]}));
        assert!(cache.authorize(&alice()).is_allowed());

        assert!(!cache.with(true, |s| node_get_pod(s, "p")));
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}});
        put(&store, resources::PODS, "ns", pod);
        assert!(cache.with(true, |s| node_get_pod(s, "p")), "added incrementally");
        store.mutate(resources::PODS, "ns", "p", |_| Ok(Change::Delete)).unwrap();
        assert!(!cache.with(true, |s| node_get_pod(s, "p")), "removed incrementally");
    }

    #[test]
    fn only_node_users_bring_the_graph_up_to_date() {
        let store = Arc::new(Store::new(100));
        let cache = SnapshotCache::new(store.clone());
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}});
        put(&store, resources::PODS, "ns", pod);
        let alice = Attributes::resource(User::new("alice", &[]), "create", "", "pods", "ns", "");
        assert!(!cache.authorize(&alice).is_allowed());
        assert_eq!(cache.cached.read().pods_seen, None, "a non-node request left the graph alone");
        let node = Attributes::resource(User::new("system:node:n1", &["system:nodes"]), "get", "", "pods", "ns", "p");
        assert!(cache.authorize(&node).is_allowed(), "a node request sees the pod stored before it");
        assert!(cache.cached.read().pods_seen.is_some());
    }

    #[test]
    fn rebuilds_when_history_is_compacted() {
        let store = Arc::new(Store::new(2));
        let cache = SnapshotCache::new(store.clone());
        assert!(!cache.with(true, |s| node_get_pod(s, "p0")));
        for i in 0..5 {
            let pod = json!({"kind": "Pod", "metadata": {"name": format!("p{i}"), "namespace": "ns"}, "spec": {"nodeName": "n1"}});
            put(&store, resources::PODS, "ns", pod);
        }
        assert!(cache.with(true, |s| (0..5).all(|i| node_get_pod(s, &format!("p{i}")))));
    }
}
