//! Property tests: request decoding, patching, selectors, routing and the registry never panic.

use fake_apiserver::api::{Api, DeleteOpts};
use fake_apiserver::patch::{self, PatchType, strategic};
use fake_apiserver::resources;
use fake_apiserver::selectors::{FieldSelector, LabelSelector};
use fake_apiserver::store::Store;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z$/]{0,8}".prop_map(Value::String),
        prop_oneof![Just("replace"), Just("delete"), Just("merge"), Just("x")].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("name".to_string()), Just("containers".to_string()), Just("env".to_string()), Just("$patch".to_string()),
            Just("$retainKeys".to_string()), Just("$setElementOrder/containers".to_string()),
            Just("$deleteFromPrimitiveList/finalizers".to_string()), Just("metadata".to_string()), Just("spec".to_string()),
            Just("finalizers".to_string()), Just("ports".to_string()), Just("containerPort".to_string()), Just("image".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decoding_never_panics(body in prop::collection::vec(any::<u8>(), 0..512), ct in prop_oneof![
        Just("application/json"), Just("application/yaml"), Just("application/vnd.kubernetes.protobuf"), Just("text/plain"), Just("")]) {
        let _ = patch::decode_body(ct, &body);
        let mut pb = b"k8s\0".to_vec();
        pb.extend_from_slice(&body);
        let _ = fake_apiserver::protobuf::decode(&pb);
    }

    #[test]
    fn patching_never_panics(orig in arb_json(), p in arb_json(), kind in prop_oneof![Just("Pod"), Just("Service"), Just("Node")]) {
        let _ = strategic::apply(&orig, &p, kind);
        let body = serde_json::to_vec(&p).unwrap();
        for pt in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
            let _ = patch::apply_patch(pt, &orig, &body, kind);
        }
        let _ = fake_apiserver::apply::server_side_apply(Some(&orig), &p, "m", kind, "2026-01-01T00:00:00Z", false);
    }

    #[test]
    fn selectors_and_routes_never_panic(s in "[a-z=!,() .\\\\/-]{0,40}") {
        if let Ok(sel) = LabelSelector::parse(&s) {
            let _ = sel.matches(&json!({"metadata": {"labels": {"a": "b"}}}));
        }
        let _ = FieldSelector::parse(&s, resources::PODS.desc());
        let _ = fake_apiserver::http::route(&s);
    }

    #[test]
    fn registry_never_panics(obj in arb_json(), p in arb_json(), res in 0usize..resources::TABLE.len()) {
        let store = Arc::new(Store::new(16));
        let api = Api::new(store, "10.96.0.0/16").unwrap();
        let _ = api.create(resources::NAMESPACES, "", json!({"metadata": {"name": "default"}}));
        let res = resources::ResourceId(res);
        let ns = if res.desc().namespaced { "default" } else { "" };
        let _ = api.create(res, ns, obj.clone());
        let mut named = obj.clone();
        if let Some(m) = named.as_object_mut() {
            m.insert("metadata".into(), json!({"name": "x"}));
        }
        let _ = api.create(res, ns, named);
        let body = serde_json::to_vec(&p).unwrap();
        for pt in [PatchType::Json, PatchType::Merge, PatchType::Strategic, PatchType::Apply] {
            let _ = api.patch(res, ns, "x", pt, &body, None, Some("m"));
            let _ = api.patch(res, ns, "x", pt, &body, Some("status"), Some("m"));
        }
        let _ = api.update(res, ns, "x", p.clone(), None);
        let _ = api.bind(ns, "x", p.clone());
        let _ = api.evict(ns, "x", &p);
        let _ = api.delete(res, ns, "x", &DeleteOpts { grace_period_seconds: Some(0), ..Default::default() });
    }
}
