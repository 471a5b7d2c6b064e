use serde_json::json;

use super::*;

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": spec})
}

fn crun() -> Value {
    json!({"metadata": {"name": "crun"}, "handler": "crun",
           "overhead": {"podFixed": {"memory": "64Mi", "cpu": "250m"}},
           "scheduling": {"nodeSelector": {"runtime": "crun"},
                          "tolerations": [{"key": "runtime", "operator": "Equal", "value": "crun", "effect": "NoSchedule"}]}})
}

fn refusal(spec: Value, class: Option<&str>, found: Option<&Value>) -> String {
    let mut p = pod(spec);
    let e = admit_pod(&mut p, class, found).unwrap_err();
    assert_eq!((e.code, e.reason), (403, "Forbidden"), "{e:?}");
    assert_eq!(e.details, Some(json!({"name": "p", "kind": "pods"})));
    e.message
}

#[test]
fn a_missing_class_is_refused() {
    assert_eq!(refusal(json!({"runtimeClassName": "ghost"}), Some("ghost"), None), r#"pods "p" is forbidden: pod rejected: RuntimeClass "ghost" not found"#);
}

#[test]
fn pods_without_a_class_are_left_alone() {
    let mut p = pod(json!({"containers": [], "runtimeClassName": ""}));
    let before = p.clone();
    let class = class_name(&p);
    admit_pod(&mut p, class.as_deref(), None).unwrap();
    assert_eq!(p, before);
    assert_eq!(class_name(&p), None);
    assert_eq!(class_name(&pod(json!({"runtimeClassName": "crun"}))).as_deref(), Some("crun"));
}

#[test]
fn the_class_is_applied_to_the_pod() {
    let mut p = pod(json!({"runtimeClassName": "crun", "nodeSelector": {"zone": "a"},
                           "tolerations": [{"key": "t", "operator": "Exists"}]}));
    admit_pod(&mut p, Some("crun"), Some(&crun())).unwrap();
    assert_eq!(p["spec"]["overhead"], json!({"memory": "64Mi", "cpu": "250m"}));
    assert_eq!(p["spec"]["nodeSelector"], json!({"zone": "a", "runtime": "crun"}));
    assert_eq!(
        p["spec"]["tolerations"],
        json!([{"key": "t", "operator": "Exists"}, {"key": "runtime", "operator": "Equal", "value": "crun", "effect": "NoSchedule"}])
    );
    // Without a selector of its own the pod takes the class's.
    let mut q = pod(json!({}));
    admit_pod(&mut q, Some("crun"), Some(&crun())).unwrap();
    assert_eq!(q["spec"]["nodeSelector"], json!({"runtime": "crun"}));
}

#[test]
fn a_pod_overhead_must_be_the_classes() {
    let same = json!({"overhead": {"memory": "67108864", "cpu": "0.25"}});
    let mut p = pod(same);
    admit_pod(&mut p, Some("crun"), Some(&crun())).unwrap();
    assert_eq!(p["spec"]["overhead"], json!({"memory": "64Mi", "cpu": "250m"}), "the class's form is kept");
    let mismatch = "pods \"p\" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead";
    assert_eq!(refusal(json!({"overhead": {"memory": "1Mi"}}), Some("crun"), Some(&crun())), mismatch);
    let without = "pods \"p\" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead";
    assert_eq!(refusal(json!({"overhead": {"memory": "1Mi"}}), None, None), without);
    let plain = json!({"handler": "runc"});
    assert_eq!(refusal(json!({"overhead": {"memory": "1Mi"}}), Some("runc"), Some(&plain)), without);
    // An empty overhead is no overhead.
    let mut e = pod(json!({"overhead": {}}));
    admit_pod(&mut e, Some("crun"), Some(&crun())).unwrap();
    assert_eq!(e["spec"]["overhead"], json!({"memory": "64Mi", "cpu": "250m"}));
    admit_pod(&mut pod(json!({"overhead": {}})), None, None).unwrap();
}

#[test]
fn a_conflicting_node_selector_is_refused() {
    let got = refusal(json!({"nodeSelector": {"runtime": "runc"}}), Some("crun"), Some(&crun()));
    assert_eq!(got, "pods \"p\" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[runtime] = crun; pod.spec.nodeSelector[runtime] = runc");
}

fn merged(first: Value, second: Value) -> Value {
    let list = |v: Value| v.as_array().cloned().unwrap_or_default();
    json!(merge_tolerations(&list(first), &list(second)))
}

#[test]
fn tolerations_merge_as_upstreams() {
    let exists_all = json!({"operator": "Exists"});
    let a = json!({"key": "a", "operator": "Equal", "value": "x", "effect": "NoSchedule"});
    let a_any = json!({"key": "a", "operator": "Exists"});
    let b = json!({"key": "b", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60});
    let b_longer = json!({"key": "b", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300});
    // Equal ones are kept once; a wider one replaces the narrower, wherever it is.
    assert_eq!(merged(json!([a, a]), json!([a])), json!([a]));
    assert_eq!(merged(json!([a]), json!([a_any])), json!([a_any]));
    assert_eq!(merged(json!([a_any]), json!([a])), json!([a_any]));
    assert_eq!(merged(json!([a, b]), json!([exists_all])), json!([exists_all]));
    // A NoExecute toleration with a shorter time covers none with a longer one.
    assert_eq!(merged(json!([b_longer]), json!([b])), json!([b_longer]));
    assert_eq!(merged(json!([b]), json!([b_longer])), json!([b_longer]));
    // An empty operator is Equal for the wider side only (upstream's `t.Operator == Equal`).
    let a_empty_op = json!({"key": "a", "value": "x", "effect": "NoSchedule"});
    assert_eq!(merged(json!([a_empty_op]), json!([a])), json!([a_empty_op]));
    assert_eq!(merged(json!([]), json!([])), json!([]));
}

#[test]
fn an_empty_merge_leaves_no_tolerations() {
    let class = json!({"handler": "h", "scheduling": {}});
    let mut p = pod(json!({"tolerations": []}));
    admit_pod(&mut p, Some("h"), Some(&class)).unwrap();
    assert!(p["spec"].get("tolerations").is_none(), "{p}");
    assert!(p["spec"].get("nodeSelector").is_none(), "{p}");
}

#[test]
fn quantities_compare_by_value() {
    assert!(same_quantity(&json!("1Gi"), &json!("1073741824")));
    assert!(same_quantity(&json!("0.5"), &json!("500m")));
    assert!(same_quantity(&json!(2), &json!("2")));
    assert!(!same_quantity(&json!("1Gi"), &json!("1G")));
    assert!(!same_quantity(&json!("16Gi"), &json!("32Gi")));
    assert!(!same_quantity(&json!("bad"), &json!("1")));
}
