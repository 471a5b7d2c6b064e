//! The matcher's tests: fixtures and the matching semantics here; refused expressions,
//! syntax and limits in `expressions`; the diff in `diff`.

use super::*;
use serde_json::json;

mod diff;
mod expressions;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// (path, message) of every mismatch.
fn found(actual: &Value, expected: &Value) -> Vec<(String, String)> {
    mismatches(actual, expected)
        .unwrap()
        .into_iter()
        .map(|m| (m.path, m.message))
        .collect()
}

fn one(path: &str, message: &str) -> Vec<(String, String)> {
    vec![(path.to_owned(), message.to_owned())]
}

fn node(ready: &str) -> Value {
    yaml(&format!(
        r#"
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels:
    kubernetes.io/os: linux
status:
  capacity:
    cpu: "4"
    pods: "110"
  conditions:
  - type: MemoryPressure
    status: "False"
    reason: KubeletHasSufficientMemory
  - type: Ready
    status: "{ready}"
    reason: KubeletReady
"#
    ))
}

fn pod() -> Value {
    yaml(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  nodeName: node-1
  containers:
  - name: app
    image: nginx
  - name: sidecar
    image: busybox
status:
  phase: Running
  containerStatuses:
  - name: app
    ready: true
    restartCount: 0
    state:
      running:
        startedAt: "2024-01-01T00:00:00Z"
  - name: sidecar
    ready: false
    restartCount: 3
    state:
      waiting:
        reason: CrashLoopBackOff
"#,
    )
}

const READY: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: node-1
status:
  "(conditions[?type == 'Ready'])":
  - status: "True"
"#;

#[test]
fn node_ready_condition_by_filter() {
    let expected = yaml(READY);
    assert!(matches(&node("True"), &expected).unwrap());
    assert_eq!(
        found(&node("False"), &expected),
        one(
            "status.(conditions[?type == 'Ready'])[0].status",
            r#"expected "True", found "False""#
        )
    );
}

#[test]
fn filter_that_finds_nothing_is_a_length_mismatch() {
    let mut actual = node("True");
    actual["status"]["conditions"] = json!([{"type": "MemoryPressure", "status": "False"}]);
    assert_eq!(
        found(&actual, &yaml(READY)),
        one(
            "status.(conditions[?type == 'Ready'])",
            "expected an array of 1 item, found 0 items"
        )
    );
}

#[test]
fn condition_predicate_key() {
    let expected = json!({"status": {
        "(length(conditions[?type == 'Ready' && status == 'True']) == `1`)": true
    }});
    assert!(matches(&node("True"), &expected).unwrap());
    assert!(!matches(&node("Unknown"), &expected).unwrap());
}

#[test]
fn pod_container_statuses() {
    let expected = yaml(
        r#"
status:
  phase: Running
  "(containerStatuses[?name == 'app'])":
  - ready: true
    restartCount: 0
"#,
    );
    assert!(matches(&pod(), &expected).unwrap());
    let expected = yaml(
        r#"
status:
  "(containerStatuses[?name == 'sidecar'])":
  - ready: true
    state:
      running: {}
"#,
    );
    assert_eq!(
        found(&pod(), &expected),
        vec![
            (
                "status.(containerStatuses[?name == 'sidecar'])[0].ready".to_owned(),
                "expected true, found false".to_owned()
            ),
            (
                "status.(containerStatuses[?name == 'sidecar'])[0].state.running".to_owned(),
                "field missing".to_owned()
            ),
        ]
    );
}

#[test]
fn whole_array_compared_element_by_element() {
    let expected = json!({"status": {"containerStatuses": [{"name": "app"}, {"name": "sidecar"}]}});
    assert!(matches(&pod(), &expected).unwrap());
    // same length, wrong order
    let expected = json!({"status": {"containerStatuses": [{"name": "sidecar"}, {"name": "app"}]}});
    assert_eq!(
        found(&pod(), &expected),
        vec![
            (
                "status.containerStatuses[0].name".to_owned(),
                r#"expected "sidecar", found "app""#.to_owned()
            ),
            (
                "status.containerStatuses[1].name".to_owned(),
                r#"expected "app", found "sidecar""#.to_owned()
            ),
        ]
    );
}

#[test]
fn arrays_length_and_type_mismatch() {
    let expected = json!({"spec": {"containers": [{"name": "app"}]}});
    assert_eq!(
        found(&pod(), &expected),
        one(
            "spec.containers",
            "expected an array of 1 item, found 2 items"
        )
    );
    assert_eq!(
        found(&json!({"a": null}), &json!({"a": [1]})),
        one("a", "expected an array, found null")
    );
    assert_eq!(
        found(&json!({"a": {"b": 1}}), &json!({"a": [1]})),
        one("a", r#"expected an array, found a map {"b":1}"#)
    );
    assert_eq!(found(&json!({"a": []}), &json!({"a": []})), vec![]);
    assert_eq!(
        found(&json!({"a": [1, 2]}), &json!({"a": []})),
        one("a", "expected an array of 0 items, found 2 items")
    );
    assert_eq!(
        found(&json!([[1, 2], [3]]), &json!([[1, 2], [4]])),
        one("[1][0]", "expected 4, found 3")
    );
}

#[test]
fn foreach_over_array_and_map() {
    let expected = json!({"status": {"~.(containerStatuses)": {"ready": true}}});
    assert_eq!(
        found(&pod(), &expected),
        one(
            "status.~.(containerStatuses)[1].ready",
            "expected true, found false"
        )
    );
    // plain field foreach
    let expected = json!({"spec": {"~.containers": {"(length(name) > `2`)": true}}});
    assert!(matches(&pod(), &expected).unwrap());
    // over a map: every value
    let actual = json!({"metadata": {"labels": {"a": "x", "b": "yyyyyy"}}});
    let expected = json!({"metadata": {"~.labels": {"(length(@) < `5`)": true}}});
    assert_eq!(
        found(&actual, &expected),
        one(
            "metadata.~.labels[b].(length(@) < `5`)",
            "expected true, found false"
        )
    );
    // empty passes, null or scalar does not
    assert!(matches(&json!({"a": []}), &json!({"~.a": {"x": 1}})).unwrap());
    assert_eq!(
        found(&json!({}), &json!({"~.(a)": {"x": 1}})),
        one(
            "~.(a)",
            "expected an array or a map to iterate over, found null"
        )
    );
    assert_eq!(
        found(&json!({}), &json!({"~.a": {"x": 1}})),
        one("~.a", "field missing")
    );
    assert_eq!(
        found(&json!({"a": 3}), &json!({"~.a": 3})),
        one(
            "~.a",
            "expected an array or a map to iterate over, found number 3"
        )
    );
}

#[test]
fn missing_fields() {
    let expected = json!({"spec": {"nodeName": "node-1", "hostNetwork": true}});
    assert_eq!(
        found(&pod(), &expected),
        one("spec.hostNetwork", "field missing")
    );
    // a missing parent is reported once, not per child
    let expected = json!({"status": {"podIP": "10.0.0.1"}, "spec": {"priority": {"x": 1}}});
    assert_eq!(
        found(&json!({"spec": {}}), &expected),
        vec![
            ("spec.priority".to_owned(), "field missing".to_owned()),
            ("status".to_owned(), "field missing".to_owned()),
        ]
    );
    // children of a null are missing
    assert_eq!(
        found(
            &json!({"status": null}),
            &json!({"status": {"phase": "Running", "podIP": "x"}})
        ),
        vec![
            ("status.phase".to_owned(), "field missing".to_owned()),
            ("status.podIP".to_owned(), "field missing".to_owned()),
        ]
    );
    // a plain key in a scalar
    assert_eq!(
        found(
            &json!({"status": "up"}),
            &json!({"status": {"phase": "Running", "x": 1}})
        ),
        one("status", r#"expected a map, found string "up""#)
    );
}

#[test]
fn extra_actual_keys_are_ignored() {
    assert!(matches(&pod(), &json!({"kind": "Pod"})).unwrap());
    assert!(matches(&pod(), &json!({})).unwrap());
    assert!(matches(&pod(), &json!({"metadata": {}})).unwrap());
}

#[test]
fn numbers_compare_numerically_without_coercion() {
    assert!(matches(&json!({"n": 1}), &json!({"n": 1.0})).unwrap());
    assert!(matches(&json!({"n": 1.0}), &json!({"n": 1})).unwrap());
    assert!(matches(&json!({"n": -3}), &json!({"n": -3.0})).unwrap());
    assert!(matches(&json!({"n": u64::MAX}), &json!({"n": u64::MAX})).unwrap());
    assert!(!matches(&json!({"n": u64::MAX}), &json!({"n": u64::MAX - 1})).unwrap());
    assert!(!matches(&json!({"n": -1}), &json!({"n": u64::MAX})).unwrap());
    assert!(matches(&json!({"n": 0.5}), &json!({"n": 0.5})).unwrap());
    assert_eq!(
        found(&json!({"n": 2}), &json!({"n": "2"})),
        one("n", r#"expected "2", found 2"#)
    );
    assert_eq!(
        found(&json!({"n": "2"}), &json!({"n": 2})),
        one("n", r#"expected 2, found "2""#)
    );
    assert_eq!(
        found(&json!({"b": "true"}), &json!({"b": true})),
        one("b", r#"expected true, found "true""#)
    );
    assert_eq!(
        found(&json!({"b": {"x": 1}}), &json!({"b": 1})),
        one("b", r#"expected 1, found {"x":1}"#)
    );
    // the node's capacity is a quantity string
    assert!(!matches(&node("True"), &json!({"status": {"capacity": {"cpu": 4}}})).unwrap());
    assert!(
        matches(
            &node("True"),
            &json!({"status": {"capacity": {"cpu": "4"}}})
        )
        .unwrap()
    );
    // length() gives an integer, comparable with a float
    assert!(matches(&pod(), &json!({"spec": {"(length(containers))": 2.0}})).unwrap());
}

#[test]
fn null_expected() {
    assert!(matches(&json!({"a": null}), &json!({"a": null})).unwrap());
    assert_eq!(
        found(&json!({}), &json!({"a": null})),
        one("a", "field missing")
    );
    assert_eq!(
        found(&json!({"a": 1}), &json!({"a": null})),
        one("a", "expected null, found 1")
    );
    // absence is asserted with an expression
    assert!(matches(&json!({}), &json!({"(a)": null})).unwrap());
    assert!(matches(&json!({"a": null}), &json!({"(a)": null})).unwrap());
    assert!(!matches(&json!({"a": 0}), &json!({"(a)": null})).unwrap());
    let deleting = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}});
    assert_eq!(
        found(
            &deleting,
            &json!({"metadata": {"(deletionTimestamp)": null}})
        ),
        one(
            "metadata.(deletionTimestamp)",
            r#"expected null, found "2024-01-01T00:00:00Z""#
        )
    );
}

#[test]
fn empty_map_asks_for_non_null() {
    assert_eq!(
        found(&json!({"a": null}), &json!({"a": {}})),
        one("a", "expected a value, found null")
    );
    assert!(matches(&json!({"a": {"b": 42}}), &json!({"a": {}})).unwrap());
    assert!(matches(&json!({"a": "x"}), &json!({"a": {}})).unwrap());
    assert_eq!(
        found(&json!({}), &json!({"a": {}})),
        one("a", "field missing")
    );
    assert_eq!(
        found(&json!(null), &json!({})),
        one("", "expected a value, found null")
    );
}

#[test]
fn key_expressions() {
    let deployment = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
    let expected = json!({"spec": {"(replicas > `1` && replicas < `4`)": true}});
    assert!(matches(&deployment, &expected).unwrap());
    let expected = json!({"spec": {"(replicas > `3`)": true}});
    assert_eq!(
        found(&deployment, &expected),
        one("spec.(replicas > `3`)", "expected true, found false")
    );
    // evaluated on the current node, whatever its type
    let expected = json!({"spec": {"containers": {"(length(@) > `0`)": true}}});
    assert!(matches(&pod(), &expected).unwrap());
    // the result is compared with the full rules: nested expression keys, partial maps
    let expected =
        json!({"(status.containerStatuses[?ready])": [{"name": "app", "(state.running)": {}}]});
    assert!(matches(&pod(), &expected).unwrap());
    // the explicit and the default engine
    assert!(matches(&pod(), &json!({"(jp;metadata.name)": "web"})).unwrap());
    assert!(matches(&pod(), &json!({"(default;metadata.name)": "web"})).unwrap());
    // a projection of the root
    assert!(matches(&pod(), &json!({"(@)": {"kind": "Pod"}})).unwrap());
}

#[test]
fn value_expressions() {
    let deployment = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
    assert!(matches(&deployment, &json!({"spec": {"replicas": "(`3`)"}})).unwrap());
    assert!(matches(&deployment, &json!({"spec": {"replicas": "(@)"}})).unwrap());
    assert_eq!(
        found(&deployment, &json!({"spec": {"replicas": "(`2`)"}})),
        one("spec.replicas", "expected 2 (the value of (`2`)), found 3")
    );
    // the result is the expected value: a predicate result does not equal the string
    assert_eq!(
        found(
            &pod(),
            &json!({"metadata": {"name": "(starts_with(@, 'w'))"}})
        ),
        one(
            "metadata.name",
            r#"expected true (the value of (starts_with(@, 'w'))), found "web""#
        )
    );
    // a map result matches partially, an array result by length and element
    assert!(matches(&pod(), &json!({"metadata": "({name: name})"})).unwrap());
    assert!(matches(&json!({"a": [1, 2]}), &json!({"a": "([`1`, `2.0`])"})).unwrap());
    assert!(!matches(&json!({"a": [1, 2, 3]}), &json!({"a": "([`1`, `2`])"})).unwrap());
    assert!(!matches(&json!({"a": 1}), &json!({"a": "({x: @})"})).unwrap());
    // on a missing key the value expression is not reached
    assert_eq!(
        found(&json!({}), &json!({"a": "(@)"})),
        one("a", "field missing")
    );
}

#[test]
fn evaluation_failures_are_mismatches() {
    let got = found(&pod(), &json!({"spec": {"(length(missing))": 0}}));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "spec.(length(missing))");
    assert!(
        got[0]
            .1
            .starts_with("expression (length(missing)) failed: Runtime error"),
        "{}",
        got[0].1
    );
    let got = found(
        &pod(),
        &json!({"spec": {"nodeName": "(to_number(@) > `1`)"}}),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "spec.nodeName");
}

#[test]
fn escaping() {
    let actual = json!({"foo": {"(bar)": 4, "~.x": "(y)"}});
    assert!(matches(&actual, &json!({"foo": {"\\(bar)\\": 4}})).unwrap());
    assert!(matches(&actual, &json!({"foo": {"\\~.x\\": "\\(y)\\"}})).unwrap());
    assert!(!matches(&actual, &json!({"foo": {"\\(bar)\\": 5}})).unwrap());
    assert!(matches(&json!({"a": "x -> y"}), &json!({"a": "\\x -> y\\"})).unwrap());
    // `\\` alone is not an escape
    assert!(matches(&json!({"\\": "\\"}), &json!({"\\": "\\"})).unwrap());
    assert!(matches(&json!({"\\\\": 1}), &json!({"\\\\": 1})).unwrap());
}
