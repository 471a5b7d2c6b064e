//! The bodies of the fake-apiserver fuzz targets, shared by `fuzz_targets/*.rs` (libFuzzer)
//! and `tests/fuzz_smoke.rs` (stable, deterministic). Each takes arbitrary bytes and must
//! return, never panic.
#![allow(dead_code)]

use std::sync::OnceLock;

use fake_apiserver::patch::{self, PatchType};
use fake_apiserver::resources::PODS;
use fake_apiserver::selectors::{FieldSelector, LabelSelector};
use serde_json::Value;

/// The object selectors match against and patches apply to.
pub const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default","labels":{"app":"web","tier":"front"},"finalizers":["a/b"]},"spec":{"nodeName":"node-a","containers":[{"name":"c","image":"nginx:1","ports":[{"containerPort":80}],"env":[{"name":"A","value":"1"}]}]},"status":{"phase":"Running"}}"#;

/// Every content type `decode_body` distinguishes, plus parameters and an unknown one.
pub const CONTENT_TYPES: &[&str] = &[
    "",
    "application/json",
    "*/*",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "Application/JSON; charset=utf-8",
    "text/plain",
];

/// Every patch type.
pub const PATCH_TYPES: &[PatchType] = &[PatchType::Json, PatchType::Merge, PatchType::Strategic, PatchType::Apply];

fn pod() -> &'static Value {
    static POD_VALUE: OnceLock<Value> = OnceLock::new();
    POD_VALUE.get_or_init(|| serde_json::from_str(POD).expect("the fixed pod parses"))
}

/// `LabelSelector::parse`, then matching the parsed selector against the pod.
pub fn label_selector(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match LabelSelector::parse(&text) {
        Ok(sel) => {
            let _ = sel.matches(pod());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// `FieldSelector::parse` for pods, then matching against the pod.
pub fn field_selector(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match FieldSelector::parse(&text, PODS.desc()) {
        Ok(sel) => {
            let _ = sel.matches(pod());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// `patch::decode_body` under every content type.
pub fn decode_body(data: &[u8]) {
    for ct in CONTENT_TYPES {
        if let Err(e) = patch::decode_body(ct, data) {
            let _ = e.to_string();
        }
    }
}

/// `patch::apply_patch` of every patch type against the pod (and `from_content_type`).
pub fn apply_patch(data: &[u8]) {
    for pt in PATCH_TYPES {
        if let Ok(v) = patch::apply_patch(*pt, pod(), data, "Pod") {
            let _ = serde_json::to_vec(&v);
        }
    }
    let _ = PatchType::from_content_type(&String::from_utf8_lossy(data));
}

/// `protobuf::decode` of a request body.
pub fn protobuf(data: &[u8]) {
    if let Ok(v) = fake_apiserver::protobuf::decode(data) {
        let _ = serde_json::to_vec(&v);
    }
}
