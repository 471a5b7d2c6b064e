//! Node selection by labels and fields: `spec.nodeSelector` plus required node affinity
//! (component-helpers `GetRequiredNodeAffinity` / `LazyErrorNodeSelector`), the NodeAffinity
//! PreFilter's node-name shortcut and the preferred-terms score.
//!
//! Terms are ORed; the requirements in a term are ANDed; a term with neither `matchExpressions`
//! nor `matchFields` matches nothing; a term with an invalid requirement matches nothing (parse
//! errors are ignored for backwards compatibility, as upstream's Filter does).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// The only field `matchFields` may name.
pub const NAME_FIELD: &str = "metadata.name";

/// Why a requirement cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("{op:?} is not a valid label selector operator")]
    Operator { op: String },
    #[error("for {op:?} operator, values set can't be empty")]
    NoValues { op: String },
    #[error("values set must be empty for exists and does not exist")]
    UnexpectedValues,
    #[error("for 'Gt', 'Lt' operators, exactly one value is required")]
    NotOneValue,
    #[error("for 'Gt', 'Lt' operators, the value must be an integer: {value:?}")]
    NotInteger { value: String },
    #[error("{op:?} is not a valid node field selector operator")]
    FieldOperator { op: String },
    #[error("node field selector requirements must have one value")]
    FieldValues,
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn values(req: &Value) -> Vec<&str> {
    req.get("values").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// One `matchExpressions` requirement against node labels (`labels.Requirement.Matches`).
pub fn match_expression(req: &Value, labels: &Map<String, Value>) -> Result<bool, RequirementError> {
    let key = str_of(req, "key");
    let op = str_of(req, "operator");
    let vals = values(req);
    let label = labels.get(key).and_then(Value::as_str);
    match op {
        "In" | "NotIn" if vals.is_empty() => Err(RequirementError::NoValues { op: op.into() }),
        "In" => Ok(label.is_some_and(|l| vals.contains(&l))),
        "NotIn" => Ok(label.is_none_or(|l| !vals.contains(&l))),
        "Exists" | "DoesNotExist" if !vals.is_empty() => Err(RequirementError::UnexpectedValues),
        "Exists" => Ok(label.is_some()),
        "DoesNotExist" => Ok(label.is_none()),
        "Gt" | "Lt" => {
            let [v] = vals.as_slice() else { return Err(RequirementError::NotOneValue) };
            let want: i64 = v.parse().map_err(|_| RequirementError::NotInteger { value: (*v).into() })?;
            let Some(have) = label.and_then(|l| l.parse::<i64>().ok()) else { return Ok(false) };
            Ok(if op == "Gt" { have > want } else { have < want })
        }
        _ => Err(RequirementError::Operator { op: op.into() }),
    }
}

/// One `matchFields` requirement against the node's fields (only `metadata.name` exists; an
/// unknown field reads as empty, as a field selector does).
pub fn match_field(req: &Value, node_name: &str) -> Result<bool, RequirementError> {
    let op = str_of(req, "operator");
    let vals = values(req);
    let have = if str_of(req, "key") == NAME_FIELD { node_name } else { "" };
    match (op, vals.as_slice()) {
        ("In" | "NotIn", [v]) => Ok((have == *v) == (op == "In")),
        ("In" | "NotIn", _) => Err(RequirementError::FieldValues),
        _ => Err(RequirementError::FieldOperator { op: op.into() }),
    }
}

fn reqs<'a>(term: &'a Value, k: &str) -> &'a [Value] {
    term.get(k).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// One node selector term against a node; an empty term matches nothing.
pub fn match_term(term: &Value, labels: &Map<String, Value>, node_name: &str) -> Result<bool, RequirementError> {
    let (exprs, fields) = (reqs(term, "matchExpressions"), reqs(term, "matchFields"));
    if exprs.is_empty() && fields.is_empty() {
        return Ok(false);
    }
    let mut all = true;
    for e in exprs {
        all &= match_expression(e, labels)?;
    }
    for f in fields {
        all &= match_field(f, node_name)?;
    }
    Ok(all)
}

fn node_labels(node: &Value) -> Map<String, Value> {
    node.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default()
}

fn node_name(node: &Value) -> &str {
    node.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// The pod's required node selector terms, if it has required node affinity.
pub fn required_terms(pod: &Value) -> Option<&[Value]> {
    pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
        .filter(|v| v.is_object())
        .map(|ns| reqs(ns, "nodeSelectorTerms"))
}

/// `RequiredNodeAffinity.Match`: `spec.nodeSelector` (every pair equal) and, when present,
/// the required node affinity (any term).
pub fn matches_required(pod: &Value, node: &Value) -> bool {
    let labels = node_labels(node);
    if let Some(sel) = pod.pointer("/spec/nodeSelector").and_then(Value::as_object) {
        let ok = sel.iter().all(|(k, v)| labels.get(k).and_then(Value::as_str) == v.as_str());
        if !ok {
            return false;
        }
    }
    match required_terms(pod) {
        None => true,
        Some(terms) => terms.iter().any(|t| match_term(t, &labels, node_name(node)).unwrap_or(false)),
    }
}

/// The NodeAffinity PreFilter's restriction to named nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreFilter {
    /// Every node may be considered.
    AllNodes,
    /// Only these nodes may (every term pins `metadata.name` with `In`).
    Names(BTreeSet<String>),
    /// The terms pin disjoint names: upstream's "pod affinity terms conflict".
    Conflict,
}

/// Upstream's message for [`PreFilter::Conflict`].
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

/// The PreFilter: when each required term names nodes via `matchFields metadata.name In`,
/// only the union of those names (intersected within a term) can fit.
pub fn prefilter(pod: &Value) -> PreFilter {
    let Some(terms) = required_terms(pod).filter(|t| !t.is_empty()) else { return PreFilter::AllNodes };
    let mut union = BTreeSet::new();
    for t in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for r in reqs(t, "matchFields") {
            if str_of(r, "key") == NAME_FIELD && str_of(r, "operator") == "In" {
                let s: BTreeSet<String> = values(r).into_iter().map(str::to_string).collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        match term_names {
            None => return PreFilter::AllNodes,
            Some(n) => union.extend(n),
        }
    }
    if union.is_empty() { PreFilter::Conflict } else { PreFilter::Names(union) }
}

/// The NodeAffinity score before normalization: the summed weights of the preferred terms the
/// node matches.
pub fn preferred_score(pod: &Value, node: &Value) -> i64 {
    let Some(prefs) = pod.pointer("/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution").and_then(Value::as_array) else {
        return 0;
    };
    let labels = node_labels(node);
    prefs
        .iter()
        .filter_map(|p| {
            let weight = p.get("weight").and_then(Value::as_i64).unwrap_or(0);
            let term = p.get("preference")?;
            (weight != 0 && match_term(term, &labels, node_name(node)).unwrap_or(false)).then_some(weight)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn expr(key: &str, op: &str, vals: &[&str]) -> Value {
        json!({"key": key, "operator": op, "values": vals})
    }

    #[test]
    fn expression_operators() {
        let l = labels(json!({"zone": "a", "cores": "8"}));
        assert_eq!(match_expression(&expr("zone", "In", &["a", "b"]), &l), Ok(true));
        assert_eq!(match_expression(&expr("zone", "In", &["c"]), &l), Ok(false));
        assert_eq!(match_expression(&expr("missing", "In", &["a"]), &l), Ok(false));
        assert_eq!(match_expression(&expr("zone", "NotIn", &["c"]), &l), Ok(true));
        assert_eq!(match_expression(&expr("zone", "NotIn", &["a"]), &l), Ok(false));
        assert_eq!(match_expression(&expr("missing", "NotIn", &["a"]), &l), Ok(true), "NotIn matches absent labels");
        assert_eq!(match_expression(&json!({"key": "zone", "operator": "Exists"}), &l), Ok(true));
        assert_eq!(match_expression(&json!({"key": "gpu", "operator": "DoesNotExist"}), &l), Ok(true));
        assert_eq!(match_expression(&json!({"key": "zone", "operator": "DoesNotExist"}), &l), Ok(false));
        assert_eq!(match_expression(&expr("cores", "Gt", &["4"]), &l), Ok(true));
        assert_eq!(match_expression(&expr("cores", "Lt", &["4"]), &l), Ok(false));
        assert_eq!(match_expression(&expr("cores", "Lt", &["10"]), &l), Ok(true));
        assert_eq!(match_expression(&expr("zone", "Gt", &["1"]), &l), Ok(false), "a non-numeric label never compares");
        assert_eq!(match_expression(&expr("missing", "Lt", &["1"]), &l), Ok(false));
    }

    #[test]
    fn invalid_expressions() {
        let l = labels(json!({"zone": "a"}));
        assert!(matches!(match_expression(&expr("zone", "In", &[]), &l), Err(RequirementError::NoValues { .. })));
        assert_eq!(match_expression(&expr("zone", "Exists", &["a"]), &l), Err(RequirementError::UnexpectedValues));
        assert_eq!(match_expression(&expr("zone", "Gt", &["1", "2"]), &l), Err(RequirementError::NotOneValue));
        assert!(matches!(match_expression(&expr("zone", "Gt", &["x"]), &l), Err(RequirementError::NotInteger { .. })));
        assert!(matches!(match_expression(&expr("zone", "Like", &["a"]), &l), Err(RequirementError::Operator { .. })));
    }

    #[test]
    fn fields_and_terms() {
        let l = labels(json!({"zone": "a"}));
        assert_eq!(match_field(&expr(NAME_FIELD, "In", &["n1"]), "n1"), Ok(true));
        assert_eq!(match_field(&expr(NAME_FIELD, "NotIn", &["n1"]), "n1"), Ok(false));
        assert_eq!(match_field(&expr(NAME_FIELD, "In", &["n1", "n2"]), "n1"), Err(RequirementError::FieldValues));
        assert!(matches!(match_field(&json!({"key": NAME_FIELD, "operator": "Exists"}), "n1"), Err(RequirementError::FieldOperator { .. })));
        assert_eq!(match_field(&expr("spec.other", "NotIn", &["x"]), "n1"), Ok(true));
        let term = json!({"matchExpressions": [expr("zone", "In", &["a"])], "matchFields": [expr(NAME_FIELD, "In", &["n1"])]});
        assert_eq!(match_term(&term, &l, "n1"), Ok(true));
        assert_eq!(match_term(&term, &l, "n2"), Ok(false));
        assert_eq!(match_term(&json!({}), &l, "n1"), Ok(false), "an empty term matches nothing");
    }

    fn pod_with(affinity: Value, selector: Value) -> Value {
        json!({"spec": {"nodeSelector": selector, "affinity": {"nodeAffinity": affinity}}})
    }

    #[test]
    fn required_affinity_and_selector() {
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a", "disk": "ssd"}}});
        let req = |terms: Value| json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}});
        assert!(matches_required(&json!({"spec": {}}), &node));
        assert!(matches_required(&pod_with(json!({}), json!({"disk": "ssd"})), &node));
        assert!(!matches_required(&pod_with(json!({}), json!({"disk": "hdd"})), &node));
        let ored = req(json!([{"matchExpressions": [expr("zone", "In", &["b"])]}, {"matchExpressions": [expr("zone", "In", &["a"])]}]));
        assert!(matches_required(&pod_with(ored.clone(), json!({})), &node), "terms are ORed");
        assert!(!matches_required(&pod_with(ored, json!({"disk": "hdd"})), &node), "and ANDed with the selector");
        let bad_then_good = req(json!([{"matchExpressions": [expr("zone", "Gt", &["x"])]}, {"matchFields": [expr(NAME_FIELD, "In", &["n1"])]}]));
        assert!(matches_required(&pod_with(bad_then_good, json!({})), &node), "an invalid term only fails itself");
        assert!(!matches_required(&pod_with(req(json!([])), json!({})), &node), "no terms match nothing");
    }

    #[test]
    fn prefilter_names() {
        let req = |terms: Value| pod_with(json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}), json!({}));
        assert_eq!(prefilter(&json!({"spec": {}})), PreFilter::AllNodes);
        let p = req(json!([{"matchFields": [expr(NAME_FIELD, "In", &["a"])]}, {"matchFields": [expr(NAME_FIELD, "In", &["b"])]}]));
        assert_eq!(prefilter(&p), PreFilter::Names(["a".to_string(), "b".to_string()].into()));
        let p = req(json!([{"matchFields": [expr(NAME_FIELD, "In", &["a"])]}, {"matchExpressions": [expr("x", "Exists", &[])]}]));
        assert_eq!(prefilter(&p), PreFilter::AllNodes, "a term without names allows all nodes");
        let p = req(json!([{"matchFields": [expr(NAME_FIELD, "In", &["a"]), expr(NAME_FIELD, "In", &["b"])]}]));
        assert_eq!(prefilter(&p), PreFilter::Conflict);
    }

    #[test]
    fn preferred_weights() {
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}});
        let pod = pod_with(json!({"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "preference": {"matchExpressions": [expr("zone", "In", &["a"])]}},
            {"weight": 3, "preference": {"matchExpressions": [expr("zone", "Exists", &[])]}},
            {"weight": 7, "preference": {"matchExpressions": [expr("zone", "In", &["b"])]}},
            {"weight": 9, "preference": {}}]}), json!({}));
        assert_eq!(preferred_score(&pod, &node), 8);
    }
}
