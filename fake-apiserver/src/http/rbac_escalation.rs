//! RBAC privilege-escalation prevention on the write path, as kube-apiserver's policy-based
//! RBAC storages (pkg/registry/rbac/*/policybased/storage.go) do it, with
//! [`crate::Config::authorization`] on: creates and updates (PUT, patches, server-side apply)
//! of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings by users outside
//! `system:masters` go through [`crate::auth::escalation`].
//!
//! - Roles and ClusterRoles: a user authorized to `escalate` the request's role (name from the
//!   URL, empty on a POST, as upstream's RequestInfo) is not checked; otherwise the rules of
//!   the object about to be stored must be held.
//! - Bindings: checked on the object about to be stored: `bind` on its roleRef, or the
//!   referenced role's rules held.
//!
//! The check runs inside the registry's write ([`crate::admission`]), on the merged object of
//! a patch, while the store is locked: what it reads (the RBAC objects, the `escalate`
//! decision) is taken just before the registry call. `bind` is decided by the
//! [`crate::auth::authorize`] chain over those objects with an empty node graph (the Node
//! authorizer never grants `bind`). Refusals are upstream's `Status` errors: 403
//! `apierrors.NewForbidden` of the written resource, and the registry's errors of an
//! unresolvable roleRef (404 NotFound, 400 for a Role without namespace, 500 for an unknown
//! kind).

use std::rc::Rc;

use http::Request;
use hyper::body::Incoming;
use serde_json::Value;

use super::ResourceRoute;
use super::authz::RequestUser;
use crate::admission::{Check, Write};
use crate::auth::escalation::{
    EscalationError, RbacResource, RbacWrite, ResolveError, RuleResolver, check_binding, check_role, escalate_attributes,
    escalation_allowed,
};
use crate::auth::forbidden::new_forbidden;
use crate::auth::rbac::RBAC_GROUP;
use crate::auth::restriction::Operation;
use crate::auth::{NodeGraph, RbacSnapshot, Snapshot, User, authorize};
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceId};
use crate::server::State;
use crate::store::Store;

/// A write of an RBAC object that the escalation check applies to.
#[derive(Debug, Clone)]
pub struct EscalationRequest {
    user: User,
    resource: RbacResource,
    res: ResourceId,
    /// The request's namespace ("" for cluster-scoped resources).
    namespace: String,
    /// The name in the URL ("" for a POST to the collection).
    name: String,
}

/// The escalation check a request needs: `None` unless authorization is on and the request
/// creates, updates or patches an RBAC object as a user outside `system:masters`.
pub fn request(state: &State, req: &Request<Incoming>, r: &ResourceRoute, verb: &str) -> Option<EscalationRequest> {
    if !state.config.authorization || !matches!(verb, "create" | "update" | "patch") || r.sub.is_some() {
        return None;
    }
    let desc = r.res.desc();
    if desc.group != RBAC_GROUP {
        return None;
    }
    let resource = RbacResource::from_plural(desc.plural)?;
    let RequestUser(user) = req.extensions().get::<RequestUser>()?;
    if escalation_allowed(user) {
        return None;
    }
    Some(EscalationRequest {
        user: user.clone(),
        resource,
        res: r.res,
        namespace: r.ns.clone().unwrap_or_default(),
        name: r.name.clone().unwrap_or_default(),
    })
}

/// Every stored Role, ClusterRole, RoleBinding and ClusterRoleBinding.
fn rbac_objects(store: &Store) -> Vec<Value> {
    resources::RBAC.iter().flat_map(|r| store.snapshot(*r, None).0).map(|o| o.value.clone()).collect()
}

/// What the check reads, taken before the store is locked.
struct Policy {
    resolver: RuleResolver,
    /// The authorizer's view for `bind` (bindings only).
    snapshot: Option<Snapshot>,
}

impl EscalationRequest {
    /// The registry check of this request; `None` when the user may `escalate` the role.
    pub fn check(self, state: &State) -> Option<Check> {
        if self.resource.is_role() {
            let attrs = escalate_attributes(&self.user, self.resource, &self.namespace, &self.name);
            if state.authz.authorize(&attrs).is_allowed() {
                return None;
            }
        }
        let objects = rbac_objects(&state.store);
        let snapshot = (!self.resource.is_role())
            .then(|| Snapshot::new(RbacSnapshot::from_objects(objects.iter()), NodeGraph::new()));
        let policy = Policy { resolver: RuleResolver::from_objects(objects.iter()), snapshot };
        Some(Rc::new(move |w: &Write| self.admit(w, &policy)))
    }

    /// The check of one registry write: creates and updates of this request's resource.
    fn admit(&self, w: &Write, policy: &Policy) -> ApiResult<()> {
        let (true, Operation::Create | Operation::Update, Some(object)) = (w.res == self.res, w.operation, w.object) else {
            return Ok(());
        };
        let write = RbacWrite { user: &self.user, resource: self.resource, namespace: &self.namespace, object, old_object: w.old_object };
        let result = match &policy.snapshot {
            None => check_role(&write, &policy.resolver),
            Some(snapshot) => check_binding(&write, &policy.resolver, |attrs| authorize(attrs, snapshot).is_allowed()),
        };
        result.map_err(|e| to_api_error(&e, self.resource, w.name))
    }
}

/// Runs both checks (`a` first); either may be absent.
pub fn both(a: Option<Check>, b: Option<Check>) -> Option<Check> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Rc::new(move |w: &Write| a(w).and_then(|()| b(w)))),
        (a, b) => a.or(b),
    }
}

/// Upstream's `Status` for a refusal of a write of `resource` named `name`.
pub fn to_api_error(e: &EscalationError, resource: RbacResource, name: &str) -> ApiError {
    match e {
        EscalationError::RoleRef(ResolveError::ClusterRoleNotFound(role)) => ApiError::not_found(RBAC_GROUP, "clusterroles", role),
        EscalationError::RoleRef(ResolveError::RoleNotFound(role)) => ApiError::not_found(RBAC_GROUP, "roles", role),
        EscalationError::RoleRef(e @ ResolveError::NamespaceRequired) => ApiError::bad_request(e.to_string()),
        // A plain error: upstream answers 500 with an empty (unknown) reason.
        EscalationError::RoleRef(e @ ResolveError::UnsupportedKind(_)) => ApiError::new(500, "", e.to_string()),
        EscalationError::NotHeld(_) | EscalationError::AggregationRule => {
            let status = new_forbidden(RBAC_GROUP, resource.plural(), name, &e.to_string());
            let message = status.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
            ApiError { code: 403, reason: "Forbidden", message, details: status.get("details").cloned() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::escalation::NotHeld;

    #[test]
    fn refusals_are_upstream_statuses() {
        let not_held = EscalationError::NotHeld(NotHeld {
            user: "alice".into(),
            groups: vec!["system:authenticated".into()],
            missing: vec![r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#.into()],
            resolution_errors: vec![],
        });
        let e = to_api_error(&not_held, RbacResource::Roles, "r");
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"
        );
        assert_eq!(e.details, Some(serde_json::json!({"name": "r", "group": "rbac.authorization.k8s.io", "kind": "roles"})));

        let e = to_api_error(&EscalationError::AggregationRule, RbacResource::ClusterRoles, "agg");
        assert_eq!(e.message, "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule");

        let missing = EscalationError::RoleRef(ResolveError::ClusterRoleNotFound("x".into()));
        let e = to_api_error(&missing, RbacResource::RoleBindings, "b");
        assert_eq!((e.code, e.message.as_str()), (404, "clusterroles.rbac.authorization.k8s.io \"x\" not found"));
        let kind = EscalationError::RoleRef(ResolveError::UnsupportedKind("Foo".into()));
        let status = to_api_error(&kind, RbacResource::RoleBindings, "b").to_status();
        assert_eq!((status["code"].as_u64(), status.get("reason")), (Some(500), None));
        assert_eq!(status["message"], "unsupported role reference kind: \"Foo\"");
    }

    #[test]
    fn both_checks_run_in_order() {
        let deny = |m: &'static str| -> Option<Check> { Some(Rc::new(move |_: &Write| Err(ApiError::forbidden(m)))) };
        let write = Write { res: resources::ROLES, operation: Operation::Create, namespace: "ns", name: "r", object: None, old_object: None };
        assert_eq!(both(deny("a"), deny("b")).map(|c| c(&write).unwrap_err().message), Some("a".into()));
        assert_eq!(both(None, deny("b")).map(|c| c(&write).unwrap_err().message), Some("b".into()));
        assert!(both(None, None).is_none());
    }
}
