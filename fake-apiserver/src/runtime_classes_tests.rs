use serde_json::json;

use super::*;

fn causes_of(obj: Value) -> Vec<Cause> {
    let mut c = Vec::new();
    check(&obj, &mut c);
    c
}

fn fields(c: &[Cause]) -> Vec<&str> {
    c.iter().map(|c| c.field.as_str()).collect()
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn the_handler_is_a_dns_label() {
    assert!(causes_of(json!({"handler": "crun"})).is_empty());
    let missing = causes_of(json!({}));
    assert_eq!(missing, vec![Cause::invalid("handler", "", LABEL_MSG)]);
    assert_eq!(missing[0].message, format!("Invalid value: \"\": {LABEL_MSG}"));
    assert_eq!(causes_of(json!({"handler": "Not_OK"})), vec![Cause::invalid("handler", "Not_OK", LABEL_MSG)]);
    assert_eq!(causes_of(json!({"handler": "a.b"})), vec![Cause::invalid("handler", "a.b", "must not contain dots")]);
    let long = "a".repeat(64);
    assert_eq!(causes_of(json!({"handler": long})), vec![Cause::invalid("handler", &long, "must be no more than 63 characters")]);
}

#[test]
fn the_handler_is_immutable() {
    let mut c = Vec::new();
    check_update(&json!({"handler": "runc"}), &json!({"handler": "crun"}), &mut c);
    assert_eq!(c, vec![Cause::invalid("handler", "crun", "field is immutable")]);
    let mut c = Vec::new();
    check_update(&json!({"handler": "runc"}), &json!({"handler": "runc", "scheduling": {"nodeSelector": {"a": "b"}}}), &mut c);
    assert!(c.is_empty(), "{c:?}");
}

#[test]
fn overhead_is_checked_as_container_limits() {
    let ok = json!({"handler": "h", "overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi", "example.com/gpu": "1"}}});
    assert!(causes_of(ok).is_empty());
    let mut c = causes_of(json!({"handler": "h", "overhead": {"podFixed": {"memory": "-1", "pods": "1", "example.com/dev": "1.5", "cpu": "x"}}}));
    c.sort_by(|a, b| a.field.cmp(&b.field));
    assert_eq!(
        c,
        vec![
            Cause::invalid("overhead.limits[cpu]", "x", QUANTITY_FORMAT),
            Cause::invalid("overhead.limits[example.com/dev]", "1.5", "must be an integer"),
            Cause::invalid("overhead.limits[memory]", "-1", "must be greater than or equal to 0"),
            Cause::invalid("overhead.limits[pods]", "pods", "must be a standard resource for containers"),
        ]
    );
    let c = causes_of(json!({"handler": "h", "overhead": {"podFixed": {"foo": "1"}}}));
    assert_eq!(fields(&c), ["overhead.limits[foo]", "overhead.limits[foo]"]);
    assert!(c[0].message.ends_with("must be a standard resource type or fully qualified"), "{c:?}");
    let c = causes_of(json!({"handler": "h", "overhead": {"podFixed": {"hugepages-2Mi": "2Mi"}}}));
    assert_eq!(c, vec![Cause::forbidden("overhead", "HugePages require cpu or memory")]);
    assert!(causes_of(json!({"handler": "h", "overhead": null, "scheduling": null})).is_empty());
}

#[test]
fn the_node_selector_is_checked_as_labels() {
    let c = causes_of(json!({"handler": "h", "scheduling": {"nodeSelector": {"ok/key": "v", "bad key": "v", "k": "-bad"}}}));
    assert_eq!(fields(&c), ["scheduling.nodeSelector", "scheduling.nodeSelector"]);
    assert_eq!(
        c[0].message,
        "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    assert_eq!(
        c[1].message,
        "Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
    assert_eq!(qualified_name_errors("/x"), ["prefix part must be non-empty"]);
    assert_eq!(qualified_name_errors("a/b/c").len(), 1);
    assert_eq!(qualified_name_errors("Example.com/x")[0].split(" (").next(), Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"));
    assert_eq!(qualified_name_errors(""), ["name part must be non-empty".to_string(), qualified_name_errors("-")[0].clone()]);
}

#[test]
fn tolerations_are_checked_as_a_pods_and_unique() {
    let tolerations = json!([
        {"key": "a", "operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Equal", "value": "v"},
        {"key": "b", "operator": "Exists", "value": "v"},
        {"key": "c", "operator": "Lt", "effect": "Sometimes"},
        {"key": "d", "value": "x", "tolerationSeconds": 5},
        {"key": "a", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": null},
    ]);
    let c = causes_of(json!({"handler": "h", "scheduling": {"tolerations": tolerations}}));
    let got: Vec<(&str, &str)> = c.iter().map(|c| (c.field.as_str(), c.message.as_str())).collect();
    assert_eq!(
        got,
        [
            ("scheduling.tolerations[1].operator", "Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""),
            ("scheduling.tolerations[2].operator", "Invalid value: core.Toleration{Key:\"b\", Operator:\"Exists\", Value:\"v\", Effect:\"\", TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is 'Exists'"),
            ("scheduling.tolerations[3].operator", "Unsupported value: \"Lt\": supported values: \"Equal\", \"Exists\""),
            ("scheduling.tolerations[3].effect", "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""),
            ("scheduling.tolerations[4].effect", "Invalid value: \"\": effect must be 'NoExecute' when `tolerationSeconds` is set"),
            ("scheduling.tolerations[5]", "Duplicate value: core.Toleration{Key:\"a\", Operator:\"Exists\", Value:\"\", Effect:\"NoSchedule\", TolerationSeconds:(*int64)(nil)}"),
        ]
    );
}

#[test]
fn the_table_has_name_handler_and_age() {
    let cols = table_columns(json!({"name": "Name"}), json!({"name": "Age"}));
    let names: Vec<&str> = cols.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Name", "Handler", "Age"]);
    let cells = table_cells(&json!({"metadata": {"name": "crun"}, "handler": "crun"}), "5s".into());
    assert_eq!(cells, vec![json!("crun"), json!("crun"), json!("5s")]);
}
