//! NodeRestriction on the writes of node users (`system:node:<name>` in `system:nodes`), with
//! [`crate::Config::authorization`] on: plain writes are admitted inside the registry on the
//! object about to be stored ([`crate::admission`]); subresource creates (`pods/eviction`,
//! `pods/binding`) on their request body before the registry runs, `serviceaccounts/token` on
//! the TokenRequest where upstream's TokenREST calls admission.

use std::rc::Rc;

use serde_json::Value;

use crate::admission::{Check, Write};
use crate::auth::restriction::{self, AdmissionError, AdmissionRequest, ObjectLookup, Operation};
use crate::auth::user::node_identity;
use crate::auth::{Attributes, User};
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceId};
use crate::store::Store;

/// The NodeRestriction context of one request by a node.
#[derive(Debug, Clone)]
pub struct NodeWrites {
    user: User,
    api_group: String,
    resource: String,
    subresource: String,
}

/// A NodeRestriction refusal as the `Status` error to answer with.
pub fn to_api_error(e: &AdmissionError) -> ApiError {
    let reason = if e.code() == 403 { "Forbidden" } else { "NotFound" };
    ApiError { code: e.code(), reason, message: e.to_string(), details: e.status().get("details").cloned() }
}

/// Objects visible to a check that runs while the store is locked: the stored object of the
/// write itself and the node's own Node, read before the registry call.
struct WriteLookup<'a> {
    write: &'a Write<'a>,
    node: Option<&'a Value>,
}

impl ObjectLookup for WriteLookup<'_> {
    fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        let w = self.write;
        let same = w.res == resources::PODS && w.namespace == namespace && w.name == name;
        if same { w.old_object.cloned() } else { None }
    }

    fn node(&self, name: &str) -> Option<Value> {
        self.node.filter(|n| n.pointer("/metadata/name").and_then(Value::as_str) == Some(name)).cloned()
    }
}

/// The store, for checks that run outside the registry.
struct StoreLookup<'a>(&'a Store);

impl ObjectLookup for StoreLookup<'_> {
    fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.0.get(resources::PODS, namespace, name).map(|o| o.value.clone())
    }

    fn node(&self, name: &str) -> Option<Value> {
        self.0.get(resources::NODES, "", name).map(|o| o.value.clone())
    }
}

impl NodeWrites {
    /// The context of a request by `user` described by `attrs`.
    pub fn new(user: User, attrs: &Attributes) -> NodeWrites {
        NodeWrites {
            user,
            api_group: attrs.api_group.clone(),
            resource: attrs.resource.clone(),
            subresource: attrs.subresource.clone(),
        }
    }

    fn request<'a>(&'a self, w: &Write<'a>) -> AdmissionRequest<'a> {
        AdmissionRequest {
            user: &self.user,
            operation: w.operation,
            api_group: &self.api_group,
            resource: &self.resource,
            subresource: &self.subresource,
            namespace: w.namespace,
            name: if w.operation == Operation::Create { "" } else { w.name },
            object: w.object,
            old_object: w.old_object,
        }
    }

    /// Whether the request's subresource is admitted on its body ([`NodeWrites::admit_body`]):
    /// `pods/eviction`, `pods/binding` and `serviceaccounts/token`.
    pub fn admits_body(&self) -> bool {
        self.api_group.is_empty()
            && matches!((self.resource.as_str(), self.subresource.as_str()), ("pods", "eviction" | "binding") | ("serviceaccounts", "token"))
    }

    /// The check of the registry writes of a request on `res` (writes to other resources,
    /// the registry's own side effects, are not the node's). `None` when the body is
    /// admitted instead.
    pub fn check(&self, store: &Store, res: ResourceId) -> Option<Check> {
        if self.admits_body() || crate::debug_faults::active(crate::debug_faults::Fault::NoNodeRestriction) {
            return None;
        }
        let node_name = node_identity(&self.user).unwrap_or("");
        let node = store.get(resources::NODES, "", node_name).map(|o| o.value.clone());
        let this = self.clone();
        Some(Rc::new(move |w: &Write| {
            if w.res != res {
                return Ok(());
            }
            let lookup = WriteLookup { write: w, node: node.as_ref() };
            restriction::admit(&this.request(w), &lookup).map_err(|e| to_api_error(&e))
        }))
    }

    /// NodeRestriction of a subresource create (`pods/eviction`, `pods/binding`,
    /// `serviceaccounts/token`) on its body.
    pub fn admit_body(&self, store: &Store, namespace: &str, name: &str, body: &Value) -> ApiResult<()> {
        let req = AdmissionRequest {
            user: &self.user,
            operation: Operation::Create,
            api_group: &self.api_group,
            resource: &self.resource,
            subresource: &self.subresource,
            namespace,
            name,
            object: Some(body),
            old_object: None,
        };
        restriction::admit(&req, &StoreLookup(store)).map_err(|e| to_api_error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, scoped};
    use crate::store::Change;
    use serde_json::json;

    fn node_a(resource: &str, sub: &str) -> NodeWrites {
        let user = User::new("system:node:node-a", &["system:nodes", "system:authenticated"]);
        let mut attrs = Attributes::resource(user.clone(), "patch", "", resource, "", "");
        attrs.subresource = sub.into();
        NodeWrites::new(user, &attrs)
    }

    fn update<'a>(name: &'a str, new: &'a Value, old: &'a Value) -> Write<'a> {
        Write { res: resources::NODES, operation: Operation::Update, namespace: "", name, object: Some(new), old_object: Some(old) }
    }

    #[test]
    fn node_may_write_only_its_own_node() {
        let store = Store::new(10);
        let check = node_a("nodes", "status").check(&store, resources::NODES);
        let own = json!({"metadata": {"name": "node-a"}});
        let other = json!({"metadata": {"name": "node-b"}});
        scoped(check, || {
            assert!(admit(&update("node-a", &own, &own)).is_ok());
            let e = admit(&update("node-b", &other, &other)).unwrap_err();
            assert_eq!((e.code, e.reason), (403, "Forbidden"));
            assert_eq!(e.message, "nodes \"node-b\" is forbidden: node \"node-a\" is not allowed to modify node \"node-b\"");
            let pods = Write { res: resources::PODS, ..update("x", &other, &other) };
            assert!(admit(&pods).is_ok(), "writes to other resources are not the node's");
        });
    }

    #[test]
    fn eviction_is_admitted_on_its_body() {
        let store = Store::new(10);
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "node-b"}});
        store.mutate(resources::PODS, "ns", "p", |_| Ok(Change::Put(pod))).unwrap();
        let nw = node_a("pods", "eviction");
        assert!(nw.check(&store, resources::PODS).is_none());
        let e = nw.admit_body(&store, "ns", "p", &json!({"metadata": {"name": "p"}})).unwrap_err();
        assert_eq!(e.message, "pods \"p\" is forbidden: node node-a can only evict pods with spec.nodeName set to itself");
        let e = nw.admit_body(&store, "ns", "gone", &json!({"metadata": {"name": "gone"}})).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (404, "pod \"gone\" not found"));
    }
}
