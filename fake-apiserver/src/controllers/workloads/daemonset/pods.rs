//! DaemonSet pods as upstream builds and reads them (`daemon/util/daemonset_util.go`,
//! `NodeShouldRunDaemonPod` / `predicates` / `NewPod` in `daemon_controller.go`): the daemon
//! tolerations, the node a pod is meant for, which nodes should run one, and the pod created
//! for a node.

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::api::set_in;
use crate::controllers::scheduler::affinity::{self, NAME_FIELD};
use crate::controllers::scheduler::taints::{self, Taint};
use crate::controllers::workloads::{deployment, int_at, owner_ref, replicaset, rollout};

/// `apps.DefaultDaemonSetUniqueLabelKey` (= `ControllerRevisionHashLabelKey`).
pub const HASH_LABEL: &str = "controller-revision-hash";
/// `extensions.DaemonSetTemplateGenerationKey`.
pub const GENERATION_LABEL: &str = "pod-template-generation";

/// The tolerations `AddOrUpdateDaemonPodTolerations` gives every daemon pod: (key, effect).
/// `not-ready` / `unreachable` NoExecute carry no `tolerationSeconds` (tolerated forever).
pub const DAEMON_TOLERATIONS: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];
/// Added as well for `hostNetwork` pods.
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Whether a node should run the daemon pod (`NodeShouldRunDaemonPod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Eligibility {
    /// A daemon pod should be created here if there is none.
    pub should_run: bool,
    /// A daemon pod already here may stay (it tolerates every NoExecute taint).
    pub should_continue: bool,
}

/// The `controller-revision-hash` of the DaemonSet's template (and `status.collisionCount`).
/// Upstream hashes the Go struct; this hashes the normalized JSON, so a protobuf and a JSON
/// client's identical templates get the same value.
pub fn template_hash(ds: &Value) -> String {
    let t = deployment::normalize(ds.pointer("/spec/template").unwrap_or(&Value::Null));
    rollout::pod_template_hash(&t, ds.pointer("/status/collisionCount").and_then(Value::as_i64))
}

/// The template generation the `pod-template-generation` label carries. Upstream's registry
/// keeps a separate counter bumped on template changes only (the
/// `deprecated.daemonset.template.generation` annotation); here `metadata.generation` stands
/// in for it. Pods are told apart by [`HASH_LABEL`] first, so the difference only shows in
/// the label's value.
pub fn template_generation(ds: &Value) -> i64 {
    int_at(ds, "/metadata/generation").max(1)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `Toleration.MatchToleration`: same key, operator, value and effect (absent = empty).
fn same_toleration(a: &Value, b: &Value) -> bool {
    ["key", "operator", "value", "effect"].iter().all(|k| s(a, k) == s(b, k))
}

/// `AddOrUpdateTolerationInPodSpec`: replace a matching toleration, else append.
fn add_or_update_toleration(list: &mut Vec<Value>, t: Value) {
    match list.iter_mut().find(|x| same_toleration(x, &t)) {
        Some(existing) => *existing = t,
        None => list.push(t),
    }
}

/// `AddOrUpdateDaemonPodTolerations` on a pod spec.
pub fn add_daemon_tolerations(spec: &mut Value) {
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let mut list: Vec<Value> = spec.get("tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
    let extra = host_network.then_some((NETWORK_UNAVAILABLE, "NoSchedule"));
    for (key, effect) in DAEMON_TOLERATIONS.into_iter().chain(extra) {
        add_or_update_toleration(&mut list, json!({"key": key, "operator": "Exists", "effect": effect}));
    }
    set_in(spec, &["tolerations"], Value::Array(list));
}

/// `NewPod` without the node: the template's metadata and spec with the daemon tolerations,
/// as the eligibility checks see it.
pub fn predicate_pod(ds: &Value) -> Value {
    let t = ds.pointer("/spec/template").cloned().unwrap_or_default();
    let mut spec = t.get("spec").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    add_daemon_tolerations(&mut spec);
    json!({"metadata": t.get("metadata").cloned().unwrap_or_default(), "spec": spec})
}

fn untolerated(taint_list: &[Value], tolerations: &[Value], effects: &[&str]) -> bool {
    taint_list.iter().map(Taint::from_json).any(|t| effects.contains(&t.effect) && !taints::tolerated(tolerations, &t))
}

/// `NodeShouldRunDaemonPod` for the [`predicate_pod`]: the template's `nodeName` (if any) and
/// required node affinity / `nodeSelector` must match; an untolerated NoSchedule or NoExecute
/// taint stops new pods, and only an untolerated NoExecute one evicts running pods. A cordoned
/// node is not checked (the `unschedulable` toleration covers it at scheduling).
pub fn node_should_run(pod: &Value, node: &Value) -> Eligibility {
    let name = node.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let wanted = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if (!wanted.is_empty() && wanted != name) || !affinity::matches_required(pod, node) {
        return Eligibility::default();
    }
    let (node_taints, tolerations) = (taints::node_taints(node), taints::pod_tolerations(pod));
    if !untolerated(node_taints, tolerations, &["NoSchedule", "NoExecute"]) {
        return Eligibility { should_run: true, should_continue: true };
    }
    Eligibility { should_run: false, should_continue: !untolerated(node_taints, tolerations, &["NoExecute"]) }
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes the single
/// term `metadata.name In [node]`; preferred terms and other affinities are kept.
pub fn pin_to_node(spec: &mut Value, node: &str) {
    let term = json!({"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": [node]}]});
    set_in(spec, &["affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"], json!([term]));
}

/// The pod the controller creates for `node` (`CreatePodTemplate` + `GetPodFromTemplate`):
/// `generateName: <ds>-`, template labels plus [`HASH_LABEL`] and [`GENERATION_LABEL`], the
/// controller ownerReference, the daemon tolerations and the node pinned by affinity (the
/// scheduler binds it).
pub fn pod_for_node(ds: &Value, node: &str, hash: &str, generation: i64) -> Value {
    let mut pod = replicaset::pod_from_template(ds);
    pod["metadata"]["ownerReferences"] = json!([owner_ref(ds, "DaemonSet")]);
    set_in(&mut pod, &["metadata", "labels", GENERATION_LABEL], json!(generation.to_string()));
    set_in(&mut pod, &["metadata", "labels", HASH_LABEL], json!(hash));
    if !pod.get("spec").is_some_and(Value::is_object) {
        pod["spec"] = json!({});
    }
    if let Some(spec) = pod.get_mut("spec") {
        add_daemon_tolerations(spec);
        pin_to_node(spec, node);
    }
    pod
}

/// `GetTargetNodeName`: `spec.nodeName`, else the single value of a required
/// `matchFields metadata.name In` term.
pub fn target_node(pod: &Value) -> Option<String> {
    let bound = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if !bound.is_empty() {
        return Some(bound.to_string());
    }
    for term in affinity::required_terms(pod)? {
        for req in term.get("matchFields").and_then(Value::as_array).into_iter().flatten() {
            if s(req, "key") == NAME_FIELD && s(req, "operator") == "In" {
                let vals = req.get("values").and_then(Value::as_array)?;
                let [v] = vals.as_slice() else { return None };
                return v.as_str().map(str::to_string);
            }
        }
    }
    None
}

fn label<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str)
}

/// The pod's [`HASH_LABEL`].
pub fn pod_hash(pod: &Value) -> Option<&str> {
    label(pod, HASH_LABEL)
}

/// `IsPodUpdated`: the hash label or the template-generation label is current.
pub fn is_updated(pod: &Value, hash: &str, generation: i64) -> bool {
    (!hash.is_empty() && pod_hash(pod) == Some(hash)) || label(pod, GENERATION_LABEL) == Some(generation.to_string().as_str())
}

/// Whether the pod has a `deletionTimestamp`.
pub fn deleting(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// The pod's phase ("" when unset).
pub fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("")
}

/// `podByCreationTimestampAndPhase`: bound pods first, then oldest, then by name.
pub fn oldest_first(a: &Value, b: &Value) -> Ordering {
    let unbound = |p: &Value| p.pointer("/spec/nodeName").and_then(Value::as_str).is_none_or(str::is_empty);
    let name = |p: &Value| p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    unbound(a).cmp(&unbound(b)).then(replicaset::created(a).cmp(&replicaset::created(b))).then_with(|| name(a).cmp(&name(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(spec: Value) -> Value {
        json!({"metadata": {"name": "agent", "uid": "u1", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}}})
    }

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    fn keys(pod: &Value) -> Vec<(String, String, Option<i64>)> {
        pod.pointer("/spec/tolerations").and_then(Value::as_array).into_iter().flatten()
            .map(|t| (s(t, "key").to_string(), s(t, "effect").to_string(), t.get("tolerationSeconds").and_then(Value::as_i64)))
            .collect()
    }

    #[test]
    fn daemon_tolerations_are_added_or_replaced() {
        let user = json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60});
        let other = json!({"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"});
        let mut spec = json!({"tolerations": [user, other]});
        add_daemon_tolerations(&mut spec);
        let got = keys(&json!({"spec": spec}));
        assert_eq!(got.len(), 7);
        assert_eq!(got[0], ("node.kubernetes.io/not-ready".into(), "NoExecute".into(), None), "replaced in place, forever");
        assert_eq!(got[1].0, "dedicated");
        assert!(!got.iter().any(|k| k.0 == NETWORK_UNAVAILABLE));
        let mut host = json!({"hostNetwork": true});
        add_daemon_tolerations(&mut host);
        assert!(keys(&json!({"spec": host})).contains(&(NETWORK_UNAVAILABLE.into(), "NoSchedule".into(), None)));
    }

    #[test]
    fn eligibility_follows_selector_affinity_and_taints() {
        let p = predicate_pod(&ds(json!({"nodeSelector": {"role": "worker"}})));
        let worker = |taints: Value| node("n1", json!({"role": "worker"}), taints);
        let yes = Eligibility { should_run: true, should_continue: true };
        assert_eq!(node_should_run(&p, &worker(json!([]))), yes);
        assert_eq!(node_should_run(&p, &node("n2", json!({"role": "edge"}), json!([]))), Eligibility::default());
        let no_schedule = worker(json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]));
        assert_eq!(node_should_run(&p, &no_schedule), Eligibility { should_run: false, should_continue: true });
        let no_execute = worker(json!([{"key": "dedicated", "value": "x", "effect": "NoExecute"}]));
        assert_eq!(node_should_run(&p, &no_execute), Eligibility::default());
        // The daemon tolerations cover node-condition taints and cordoning.
        let conditions = worker(json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}, {"key": "soft", "effect": "PreferNoSchedule"}]));
        assert_eq!(node_should_run(&p, &conditions), yes);
        let mut cordoned = worker(json!([]));
        cordoned["spec"]["unschedulable"] = json!(true);
        assert_eq!(node_should_run(&p, &cordoned), yes);
        let pinned = predicate_pod(&ds(json!({"nodeName": "n9"})));
        assert_eq!(node_should_run(&pinned, &worker(json!([]))), Eligibility::default());
        let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "role", "operator": "In", "values": ["edge"]}]}]}}});
        assert_eq!(node_should_run(&predicate_pod(&ds(json!({"affinity": affinity}))), &worker(json!([]))), Eligibility::default());
    }

    #[test]
    fn pod_for_node_is_labelled_owned_tolerant_and_pinned() {
        let mut d = ds(json!({"containers": [{"name": "c", "image": "i"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}]}}}));
        d["spec"]["template"]["metadata"]["annotations"] = json!({"note": "x"});
        let p = pod_for_node(&d, "n1", "h1", 3);
        assert_eq!(p["metadata"]["generateName"], "agent-");
        assert_eq!(p["metadata"]["labels"], json!({"app": "agent", HASH_LABEL: "h1", GENERATION_LABEL: "3"}));
        assert_eq!(p["metadata"]["annotations"]["note"], "x");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        let na = &p["spec"]["affinity"]["nodeAffinity"];
        assert_eq!(na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]));
        assert_eq!(na["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"], 1);
        assert_eq!(keys(&p).len(), 6);
        assert_eq!(target_node(&p).as_deref(), Some("n1"));
        assert!(affinity::matches_required(&p, &node("n1", json!({}), json!([]))));
        assert!(!affinity::matches_required(&p, &node("n2", json!({}), json!([]))));
    }

    #[test]
    fn target_node_and_updated() {
        assert_eq!(target_node(&json!({"spec": {"nodeName": "b"}})).as_deref(), Some("b"));
        assert_eq!(target_node(&json!({"spec": {}})), None);
        let two = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": ["a", "b"]}]}]}}}}});
        assert_eq!(target_node(&two), None, "not unique");
        let pod = json!({"metadata": {"labels": {HASH_LABEL: "h1", GENERATION_LABEL: "2"}}});
        assert!(is_updated(&pod, "h1", 5));
        assert!(is_updated(&pod, "h2", 2));
        assert!(!is_updated(&pod, "h2", 3));
    }

    #[test]
    fn hash_ignores_zero_values_and_follows_the_template() {
        let a = ds(json!({"containers": [{"name": "c", "image": "i"}]}));
        let mut zeroes = a.clone();
        zeroes["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
        assert_eq!(template_hash(&a), template_hash(&zeroes));
        let mut b = a.clone();
        b["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        assert_ne!(template_hash(&a), template_hash(&b));
        assert_eq!(template_generation(&a), 3);
    }

    #[test]
    fn oldest_bound_pod_sorts_first() {
        let p = |name: &str, node: &str, t: &str| json!({"metadata": {"name": name, "creationTimestamp": t}, "spec": {"nodeName": node}});
        let (t0, t1) = ("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z");
        let mut v = [p("d", "", t0), p("c", "n", t1), p("b", "n", t0), p("a", "n", t0)];
        v.sort_by(oldest_first);
        let names: Vec<&str> = v.iter().map(|x| x["metadata"]["name"].as_str().unwrap_or("")).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }
}
