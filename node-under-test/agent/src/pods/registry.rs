//! The pods this agent runs, as the API (or the static pod source) has them, by uid: kept by
//! the pod manager, read by the kubelet API (`/pods`, pods by name).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Pod;

/// A shared view of the pods the pod manager runs; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PodRegistry(Arc<RwLock<BTreeMap<String, Pod>>>);

impl PodRegistry {
    /// Records the newest version of pod `uid`.
    pub fn set(&self, uid: &str, pod: Pod) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(uid.to_string(), pod);
    }

    /// Forgets pod `uid` (gone from the API, or its worker finished).
    pub fn remove(&self, uid: &str) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(uid);
    }

    /// Every pod, ordered by namespace and name.
    pub fn list(&self) -> Vec<Pod> {
        let mut pods: Vec<Pod> = self.0.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        pods.sort_by(|a, b| (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name)));
        pods
    }

    /// The pod named `name` in `namespace`.
    pub fn by_name(&self, namespace: &str, name: &str) -> Option<Pod> {
        let pods = self.0.read().unwrap_or_else(|p| p.into_inner());
        pods.values()
            .find(|p| p.metadata.namespace.as_deref() == Some(namespace) && p.metadata.name.as_deref() == Some(name))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p
    }

    #[test]
    fn set_list_find_remove() {
        let r = PodRegistry::default();
        r.set("u2", pod("b", "x"));
        r.set("u1", pod("a", "y"));
        r.set("u1", pod("a", "z"));
        let names: Vec<_> = r.list().into_iter().filter_map(|p| p.metadata.name).collect();
        assert_eq!(names, ["z", "x"]);
        assert!(r.by_name("a", "z").is_some());
        assert!(r.by_name("b", "z").is_none());
        r.remove("u1");
        assert!(r.by_name("a", "z").is_none());
        assert_eq!(r.list().len(), 1);
    }
}
