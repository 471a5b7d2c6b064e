//! The `pods/eviction` subresource (kube-apiserver's `pkg/registry/core/pod/storage/eviction.go`):
//! a pod delete that honours PodDisruptionBudgets.
//!
//! - The body is a policy/v1 (or v1beta1) `Eviction` naming the pod; its `deleteOptions` are the
//!   delete's options (`dryRun` included).
//! - Pods already terminal (Succeeded/Failed), Pending, or being deleted are deleted without
//!   looking at budgets (with a resourceVersion precondition for the non-terminal ones, so a pod
//!   that just became Running is not evicted behind a budget's back; conflicts are retried).
//! - A pod matched by more than one budget cannot be evicted (500). With one budget, an unready
//!   pod goes without spending a disruption when the budget's policy is `AlwaysAllow`, or (the
//!   default `IfHealthyBudget`) when the budget is already healthy enough; otherwise the budget
//!   must have observed its generation and allow a disruption, which is spent by decrementing
//!   `status.disruptionsAllowed` and recording the pod in `status.disruptedPods` in one store
//!   mutation (so concurrent evictions never spend more than allowed).
//! - Before the delete the pod gets the `DisruptionTarget` condition (not on dry runs).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::{Api, DeleteOpts, now_rfc3339};
use crate::error::{ApiError, ApiResult, success_status};
use crate::pdb;
use crate::resources;
use crate::store::{Change, Obj};

/// `MaxDisruptedPodSize`: a budget with more unconfirmed evictions refuses new ones.
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// `EvictionsRetry.Steps`: attempts for a delete that keeps conflicting.
const CONFLICT_RETRIES: usize = 20;
/// The message of every 429 refusal.
pub const VIOLATES_BUDGET: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// The message of the 500 answer for a pod under several budgets.
pub const MULTIPLE_BUDGETS: &str = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// Evict pod `name` in `ns` as `POST pods/{name}/eviction` does; `Ok` is the 201 Success
/// Status.
pub fn evict(api: &Api, ns: &str, name: &str, eviction: &Value) -> ApiResult<Value> {
    evict_with(api, ns, name, eviction, false)
}

/// [`evict`] with the request's `?dryRun=All` (`propagateDryRun` merges it into the
/// Eviction's deleteOptions).
pub fn evict_with(api: &Api, ns: &str, name: &str, eviction: &Value, dry_run_query: bool) -> ApiResult<Value> {
    let mut opts = parse(ns, name, eviction)?;
    opts.dry_run |= dry_run_query;
    admit(api, ns, name)?;
    let Some(pod) = delete_ignoring_budgets(api, ns, name, &opts)? else {
        return Ok(success_status(201, None));
    };
    let bypass = check_budgets(api, ns, &pod, opts.dry_run)?;
    let mut del = opts.clone();
    if bypass.is_some() {
        // The pod must still be the unready one we judged.
        del.resource_version = Some(pod.rv.to_string());
    }
    match mark_and_delete(api, ns, name, &del) {
        Err(e) if e.code == 409 && opts.resource_version.is_none() && bypass.is_some() => {
            Err(still_processing(bypass.as_deref().unwrap_or_default()))
        }
        r => r.map(|()| success_status(201, None)),
    }
}

/// Check the Eviction object against the URL and return its delete options.
fn parse(ns: &str, name: &str, eviction: &Value) -> ApiResult<DeleteOpts> {
    let Some(m) = eviction.as_object() else {
        return Err(ApiError::bad_request("Eviction must be an object"));
    };
    let av = m.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !["", "policy/v1", "policy/v1beta1"].contains(&av) {
        return Err(ApiError::bad_request(format!("the API version in the data ({av}) does not match the expected API version (policy/v1)")));
    }
    let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "Eviction" {
        let v = if av.is_empty() { "policy/v1" } else { av };
        return Err(ApiError::bad_request(format!(
            "{kind} in version {v:?} cannot be handled as a Eviction: no kind {kind:?} is registered for version {v:?}"
        )));
    }
    if eviction.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("") != name {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    if eviction.pointer("/metadata/namespace").and_then(Value::as_str).is_some_and(|n| !n.is_empty() && n != ns) {
        return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
    }
    DeleteOpts::from_body(m.get("deleteOptions"))
}

/// NamespaceLifecycle admission of the create: no evictions in a missing or terminating
/// namespace.
fn admit(api: &Api, ns: &str, name: &str) -> ApiResult<()> {
    let n = api.store.get(resources::NAMESPACES, "", ns).ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
    if n.value.pointer("/metadata/deletionTimestamp").is_some() {
        let msg = format!("pods {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated");
        return Err(ApiError::forbidden(msg).with_details(name, "", "pods"));
    }
    Ok(())
}

/// `canIgnorePDB`: terminal, Pending, or already being deleted.
pub fn can_ignore_budgets(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    matches!(phase, "Succeeded" | "Failed" | "Pending") || pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// `shouldEnforceResourceVersion`: neither terminal nor being deleted.
fn should_enforce_resource_version(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    !matches!(phase, "Succeeded" | "Failed") && pod.pointer("/metadata/deletionTimestamp").is_none()
}

/// The first step of `Create`: delete a pod whose budgets can be ignored (retrying
/// conflicts unless the client gave its own resourceVersion). `Ok(None)` = deleted;
/// `Ok(Some(pod))` = the pod is guarded by budgets.
fn delete_ignoring_budgets(api: &Api, ns: &str, name: &str, opts: &DeleteOpts) -> ApiResult<Option<Arc<Obj>>> {
    let mut attempt = 0;
    loop {
        let pod = api.store.get(resources::PODS, ns, name).ok_or_else(|| ApiError::not_found("", "pods", name))?;
        if !can_ignore_budgets(&pod.value) {
            return Ok(Some(pod));
        }
        let mut del = opts.clone();
        if should_enforce_resource_version(&pod.value) && opts.resource_version.is_none() {
            del.resource_version = Some(pod.rv.to_string());
        }
        match mark_and_delete(api, ns, name, &del) {
            Ok(()) => return Ok(None),
            Err(e) if e.code == 409 && opts.resource_version.is_none() && attempt + 1 < CONFLICT_RETRIES => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The budgets of `pod`'s namespace whose selectors match it.
fn budgets_of(api: &Api, ns: &str, pod: &Value) -> Vec<Arc<Obj>> {
    let (all, _) = api.store.snapshot(resources::PODDISRUPTIONBUDGETS, Some(ns));
    all.into_iter().filter(|b| pdb::eviction_selector(&b.value).is_some_and(|s| s.matches(pod))).collect()
}

/// Whether an unready pod may go without spending a disruption: `AlwaysAllow`, or the
/// budget already has at least the healthy pods it wants (and wants some).
pub fn unhealthy_may_go(pod: &Value, budget: &Value) -> bool {
    if crate::controllers::workloads::is_pod_ready(pod) {
        return false;
    }
    if budget.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str) == Some("AlwaysAllow") {
        return true;
    }
    let n = |p: &str| budget.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let (current, desired) = (n("/status/currentHealthy"), n("/status/desiredHealthy"));
    current >= desired && desired > 0
}

/// Apply the budget check: `Ok(Some(budget))` = an unready pod that goes without spending a
/// disruption (its delete must carry the pod's resourceVersion); `Ok(None)` = no budget, or one
/// disruption spent.
fn check_budgets(api: &Api, ns: &str, pod: &Obj, dry_run: bool) -> ApiResult<Option<String>> {
    let budgets = budgets_of(api, ns, &pod.value);
    if budgets.len() > 1 {
        return Err(multiple_budgets());
    }
    let Some(budget) = budgets.first() else { return Ok(None) };
    if unhealthy_may_go(&pod.value, &budget.value) {
        return Ok(Some(budget.name().to_string()));
    }
    let (bname, pname) = (budget.name(), pod.name());
    api.store.mutate(resources::PODDISRUPTIONBUDGETS, ns, bname, |cur| {
        let cur = cur.ok_or_else(|| ApiError::not_found("policy", "poddisruptionbudgets", bname))?;
        Ok(match check_and_decrement(&cur.value, pname, &now_rfc3339(), dry_run)? {
            Some(v) => Change::Put(v),
            None => Change::Keep,
        })
    })?;
    Ok(None)
}

/// `checkAndDecrement` (pure): the budget after spending one disruption on `pod` at `now`, or
/// the refusal. `Ok(None)` on a dry run (nothing to store).
pub fn check_and_decrement(budget: &Value, pod: &str, now: &str, dry_run: bool) -> ApiResult<Option<Value>> {
    let name = budget.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let n = |p: &str| budget.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    if n("/status/observedGeneration") < n("/metadata/generation") {
        return Err(still_processing(name));
    }
    let allowed = n("/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(forbidden(name, "pdb disruptions allowed is negative"));
    }
    let disrupted = budget.pointer("/status/disruptedPods").and_then(Value::as_object).map_or(0, serde_json::Map::len);
    if disrupted > MAX_DISRUPTED_POD_SIZE {
        return Err(forbidden(name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"));
    }
    if allowed == 0 {
        let msg = format!("The disruption budget {name} needs {} healthy pods and has {} currently", n("/status/desiredHealthy"), n("/status/currentHealthy"));
        return Err(too_many_requests(msg, 0));
    }
    if dry_run {
        return Ok(None);
    }
    let mut new = budget.clone();
    new["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed == 1 {
        pdb::update_disruption_allowed_condition(&mut new["status"], now);
    }
    let map = new["status"].as_object_mut().map(|s| s.entry("disruptedPods").or_insert_with(|| json!({})));
    if let Some(m) = map {
        if !m.is_object() {
            *m = json!({});
        }
        m[pod] = json!(now);
    }
    Ok(Some(new))
}

/// `addConditionAndDeletePod`: unless dry-running, set the `DisruptionTarget` condition
/// (checking the delete's preconditions, and moving a resourceVersion precondition past our own
/// write), then delete with `opts` (a graceful delete for a bound pod).
fn mark_and_delete(api: &Api, ns: &str, name: &str, opts: &DeleteOpts) -> ApiResult<()> {
    let mut opts = opts.clone();
    if !opts.dry_run {
        let now = now_rfc3339();
        let out = api.store.mutate(resources::PODS, ns, name, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found("", "pods", name))?;
            check_preconditions(&cur.value, &opts)?;
            let mut pod = cur.value.clone();
            Ok(if set_disruption_target(&mut pod, &now) { Change::Put(pod) } else { Change::Keep })
        })?;
        if opts.resource_version.is_some() {
            opts.resource_version = Some(out.obj.rv.to_string());
        }
    }
    api.delete(resources::PODS, ns, name, &opts).map(|_| ())
}

/// The uid / resourceVersion preconditions of the eviction's delete, checked before the
/// condition is written (as `getLatestPod` does).
fn check_preconditions(pod: &Value, opts: &DeleteOpts) -> ApiResult<()> {
    let meta = |k: &str| pod.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or("");
    let name = meta("name");
    if let Some(uid) = opts.uid.as_deref().filter(|u| !u.is_empty() && *u != meta("uid")) {
        let detail = format!("the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated", meta("uid"));
        return Err(ApiError::conflict("", "Pod", name, &detail));
    }
    if let Some(rv) = opts.resource_version.as_deref().filter(|r| !r.is_empty() && *r != meta("resourceVersion")) {
        let detail = format!("the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified", meta("resourceVersion"));
        return Err(ApiError::conflict("", "Pod", name, &detail));
    }
    Ok(())
}

/// `podutil.UpdatePodCondition` with `DisruptionTarget=True` (reason `EvictionByEvictionAPI`);
/// returns whether the pod changed.
pub fn set_disruption_target(pod: &mut Value, now: &str) -> bool {
    let mut cond = json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null, "lastTransitionTime": now,
        "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"});
    let mut conds = pod.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    match conds.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionTarget")) {
        Some(old) => {
            if old.get("status") == cond.get("status")
                && let Some(t) = old.get("lastTransitionTime")
            {
                cond["lastTransitionTime"] = t.clone();
            }
            if *old == cond {
                return false;
            }
            *old = cond;
        }
        None => conds.push(cond),
    }
    crate::api::set_in(pod, &["status", "conditions"], Value::Array(conds));
    true
}

/// A 429 TooManyRequests with one `DisruptionBudget` cause (`errors.NewTooManyRequests`;
/// `retryAfterSeconds` left out when 0).
fn too_many_requests(cause: String, retry_after: i64) -> ApiError {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
    }
    ApiError { code: 429, reason: "TooManyRequests", message: VIOLATES_BUDGET.into(), details: Some(details) }
}

/// `createTooManyRequestsError`: the budget has not caught up with its spec yet.
fn still_processing(budget: &str) -> ApiError {
    too_many_requests(format!("The disruption budget {budget} is still being processed by the server."), 10)
}

/// `errors.NewForbidden(policy.Resource("poddisruptionbudget"), name, err)`.
fn forbidden(budget: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!("poddisruptionbudget.policy {budget:?} is forbidden: {why}")).with_details(budget, "policy", "poddisruptionbudget")
}

/// The bare 500 Status (no reason) upstream answers for a pod under several budgets.
fn multiple_budgets() -> ApiError {
    ApiError { code: 500, reason: "", message: MULTIPLE_BUDGETS.into(), details: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(allowed: i64, generation: i64, observed: i64) -> Value {
        json!({"metadata": {"name": "web", "generation": generation},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
                "observedGeneration": observed, "conditions": [{"type": "DisruptionAllowed", "status": "True",
                "reason": "SufficientPods", "message": "", "lastTransitionTime": "t0", "observedGeneration": observed}]}})
    }

    #[test]
    fn decrement_spends_one_disruption_and_records_the_pod() {
        let b = check_and_decrement(&budget(2, 1, 1), "p1", "t1", false).unwrap().unwrap();
        assert_eq!(b["status"]["disruptionsAllowed"], 1);
        assert_eq!(b["status"]["disruptedPods"], json!({"p1": "t1"}));
        assert_eq!(b["status"]["conditions"][0]["status"], "True");
        let b = check_and_decrement(&b, "p2", "t2", false).unwrap().unwrap();
        assert_eq!(b["status"]["disruptionsAllowed"], 0);
        assert_eq!(b["status"]["disruptedPods"], json!({"p1": "t1", "p2": "t2"}));
        assert_eq!(b["status"]["conditions"][0]["reason"], "InsufficientPods");
        assert_eq!(check_and_decrement(&budget(1, 1, 1), "p", "t", true).unwrap(), None);
    }

    #[test]
    fn refusals_carry_upstream_texts() {
        let e = check_and_decrement(&budget(0, 1, 1), "p", "t", false).unwrap_err();
        assert_eq!((e.code, e.reason, e.message.as_str()), (429, "TooManyRequests", VIOLATES_BUDGET));
        assert_eq!(e.details, Some(json!({"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 3 currently"}]})));
        let e = check_and_decrement(&budget(5, 2, 1), "p", "t", false).unwrap_err();
        assert_eq!(e.details.unwrap()["causes"][0]["message"], "The disruption budget web is still being processed by the server.");
        let e = check_and_decrement(&budget(-1, 1, 1), "p", "t", false).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (403, "poddisruptionbudget.policy \"web\" is forbidden: pdb disruptions allowed is negative"));
    }

    #[test]
    fn which_pods_skip_the_budget() {
        for phase in ["Succeeded", "Failed", "Pending"] {
            assert!(can_ignore_budgets(&json!({"status": {"phase": phase}})));
        }
        assert!(!can_ignore_budgets(&json!({"status": {"phase": "Running"}})));
        assert!(can_ignore_budgets(&json!({"metadata": {"deletionTimestamp": "t"}, "status": {"phase": "Running"}})));
    }

    #[test]
    fn unready_pods_go_when_the_budget_is_healthy_or_always_allowed() {
        let unready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}});
        let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let b = |cur: i64, des: i64, policy: Option<&str>| json!({"spec": {"unhealthyPodEvictionPolicy": policy}, "status": {"currentHealthy": cur, "desiredHealthy": des}});
        assert!(unhealthy_may_go(&unready, &b(2, 2, None)));
        assert!(!unhealthy_may_go(&unready, &b(1, 2, None)));
        assert!(!unhealthy_may_go(&unready, &b(0, 0, Some("IfHealthyBudget"))));
        assert!(unhealthy_may_go(&unready, &b(0, 2, Some("AlwaysAllow"))));
        assert!(!unhealthy_may_go(&ready, &b(5, 2, Some("AlwaysAllow"))));
    }

    #[test]
    fn disruption_target_condition_is_added_once() {
        let mut pod = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(set_disruption_target(&mut pod, "t1"));
        assert_eq!(pod["status"]["conditions"][1], json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": "t1", "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}));
        assert!(!set_disruption_target(&mut pod, "t2"));
    }

    #[test]
    fn the_eviction_must_name_the_pod() {
        let e = parse("default", "p", &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "q"}})).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "name in URL does not match name in Eviction object"));
        let o = parse("default", "p", &json!({"apiVersion": "policy/v1beta1", "metadata": {"name": "p"}, "deleteOptions": {"gracePeriodSeconds": 0, "dryRun": ["All"]}})).unwrap();
        assert_eq!((o.grace_period_seconds, o.dry_run), (Some(0), true));
        assert_eq!(parse("default", "p", &json!({"apiVersion": "v1", "metadata": {"name": "p"}})).unwrap_err().code, 400);
    }
}
