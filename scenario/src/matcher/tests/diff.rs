//! The diff.

use super::*;
use crate::matcher::yaml_diff::yaml_string;

#[test]
fn diff_of_a_failing_condition() {
    let got = diff(&node("False"), &yaml(READY));
    let want = "  apiVersion: v1
  kind: Node
  metadata:
    name: node-1
  status:
    (conditions[?type == 'Ready']):
-   - status: \"True\"
+   - status: \"False\"
";
    assert_eq!(got, want, "\n{got}");
    // matching: every line is equal
    let got = diff(&node("True"), &yaml(READY));
    assert!(got.lines().all(|l| l.starts_with("  ")), "{got}");
}

#[test]
fn diff_shows_missing_fields_and_evaluated_keys() {
    let mut actual = node("True");
    actual["status"]["conditions"] = json!([{"type": "MemoryPressure", "status": "False"}]);
    let expected = yaml(
        r#"
metadata:
  name: node-1
  annotations:
    foo: bar
status:
  "(conditions[?type == 'Ready'])":
  - status: "True"
    reason: KubeletReady
"#,
    );
    let got = diff(&actual, &expected);
    let want = "  metadata:
-   annotations:
-     foo: bar
    name: node-1
  status:
-   (conditions[?type == 'Ready']):
-   - reason: KubeletReady
-     status: \"True\"
+   (conditions[?type == 'Ready']): []
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn diff_prunes_the_actual_side_to_the_compared_keys() {
    let expected = json!({"spec": {"containers": [{"name": "app"}]}});
    let got = diff(&pod(), &expected);
    let want = "  spec:
-   containers:
-   - name: app
+   containers:
+   - name: app
+   - name: sidecar
";
    assert_eq!(got, want, "\n{got}");
    // a map expected where a scalar is: the whole actual value
    let got = diff(&json!({"a": 1}), &json!({"a": {"(@)": 1, "b": 2}}));
    let want = "- a:
-   (@): 1
-   b: 2
+ a: 1
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn diff_of_foreach_and_value_expressions() {
    let expected = json!({"status": {"~.(containerStatuses)": {"ready": true}}});
    let got = diff(&pod(), &expected);
    let want = "  status:
    ~.(containerStatuses):
    - ready: true
-   - ready: true
+   - ready: false
";
    assert_eq!(got, want, "\n{got}");
    let got = diff(
        &json!({"spec": {"replicas": 3}}),
        &json!({"spec": {"replicas": "(`2`)"}}),
    );
    let want = "  spec:
-   replicas: (`2`)  # = 2
+   replicas: 3
";
    assert_eq!(got, want, "\n{got}");
    let got = diff(&json!({"spec": {}}), &json!({"spec": {"(length(x))": 1}}));
    assert!(
        got.contains("- ") && got.contains("+   (length(x)):  # expression (length(x)) failed"),
        "\n{got}"
    );
}

#[test]
fn diff_of_nested_arrays_and_scalars() {
    let got = diff(&json!([[1, 2], [3]]), &json!([[1, 2], [4]]));
    let want = "  - - 1
    - 2
- - - 4
+ - - 3
";
    assert_eq!(got, want, "\n{got}");
    let got = diff(
        &json!({"s": "True", "n": "1", "e": ""}),
        &json!({"s": "True", "n": 1, "e": ""}),
    );
    // `n` alone is a YAML 1.1 boolean, so the key is quoted
    let want = "  e: \"\"
- \"n\": 1
+ \"n\": \"1\"
  s: \"True\"
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn yaml_strings() {
    for (text, shown) in [
        ("Running", "Running"),
        ("True", "\"True\""),
        ("no", "\"no\""),
        ("1.28", "\"1.28\""),
        ("-1", "\"-1\""),
        ("-x", "-x"),
        ("", "\"\""),
        (" a", "\" a\""),
        ("a: b", "\"a: b\""),
        ("a #b", "\"a #b\""),
        ("#a", "\"#a\""),
        ("a\nb", "\"a\\nb\""),
        (
            "(conditions[?type == 'Ready'])",
            "(conditions[?type == 'Ready'])",
        ),
        ("~.(containers)", "~.(containers)"),
        ("~", "\"~\""),
        ("nginx:1.25", "nginx:1.25"),
        ("kubernetes.io/os", "kubernetes.io/os"),
    ] {
        assert_eq!(yaml_string(text), shown, "{text:?}");
    }
}
