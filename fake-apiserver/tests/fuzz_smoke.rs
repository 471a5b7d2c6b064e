//! A seconds-long smoke run of every `fuzz/` target body on stable: deterministic (xorshift)
//! random bytes, token soup and mutated realistic seeds. Each input must return (`Ok` or
//! `Err`) without panicking, and quickly. `fuzz/` runs the same bodies under libFuzzer.

mod common;

use common::pb;
use fuzz_smoke::smoke;

#[path = "../fuzz/bodies.rs"]
mod bodies;

fn strings(s: &[&str]) -> Vec<Vec<u8>> {
    s.iter().map(|s| s.as_bytes().to_vec()).collect()
}

const JSON_TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b":", b",", b"\"", b"\\", b"\\u0000", b"\\ud800", b"null", b"true", b"-0", b"1e999",
    b"18446744073709551616", b"\"op\"", b"\"add\"", b"\"remove\"", b"\"replace\"", b"\"move\"", b"\"copy\"", b"\"test\"",
    b"\"path\"", b"\"from\"", b"\"value\"", b"\"/metadata/labels/x\"", b"\"/spec/containers/-\"", b"\"/spec/containers/0\"",
    b"\"/spec/containers/99999999999999999999\"", b"\"~1\"", b"\"~2\"", b"\"$patch\"", b"\"delete\"", b"\"replace\"", b"\"merge\"",
    b"\"$retainKeys\"", b"\"$setElementOrder/containers\"", b"\"$deleteFromPrimitiveList/finalizers\"", b"\"containers\"",
    b"\"name\"", b"\"metadata\"", b"\"spec\"", b"\"env\"", b"\"ports\"", b"\"containerPort\"", b"---\n", b"- ", b": ", b"\n  ",
    b"&a ", b"*a", b"!!binary ", b"<<: *a", b"|\n", b"~", b"#",
];

#[test]
fn label_selector_smoke() {
    let seeds = strings(&[
        "app=web",
        "app==web,tier!=back",
        "!canary,env in (prod, staging),tier notin (db)",
        "example.com/role,app.kubernetes.io/name=web",
        "gen>3,gen<10",
        "",
    ]);
    let tokens: &[&[u8]] = &[
        b"=", b"==", b"!=", b"!", b",", b" in ", b" notin ", b"(", b")", b" ", b"<", b">", b"app", b"example.com/", b"-1",
        b"99999999999999999999", b"\xc3\xa9", b"\xff", b"a.b-c_d", b"/",
    ];
    smoke("label_selector", 0x5EED_A001, &seeds, tokens, bodies::label_selector);
}

#[test]
fn field_selector_smoke() {
    let seeds = strings(&[
        "metadata.name=web",
        "metadata.namespace==default,spec.nodeName!=node-b",
        "status.phase=Running",
        r"metadata.name=a\,b\=c\\d",
        "",
    ]);
    let tokens: &[&[u8]] = &[
        b"=", b"==", b"!=", b",", b"\\", b"\\,", b"\\=", b"\\\\", b"metadata.name", b"spec.nodeName", b"status.phase", b" ",
        b"\xc3\xa9", b"\xff",
    ];
    smoke("field_selector", 0x5EED_A002, &seeds, tokens, bodies::field_selector);
}

#[test]
fn decode_body_smoke() {
    let mut seeds = strings(&[
        bodies::POD,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n",
        "a: &a [1, 2]\nb: *a\nc: !!binary AAAA\n",
        "[1, 2.5, null, true, \"x\"]",
    ]);
    seeds.extend(protobuf_seeds());
    smoke("decode_body", 0x5EED_A003, &seeds, JSON_TOKENS, bodies::decode_body);
}

#[test]
fn apply_patch_smoke() {
    let seeds = strings(&[
        r#"[{"op":"add","path":"/metadata/labels/x","value":"y"},{"op":"remove","path":"/spec/containers/0/env"}]"#,
        r#"[{"op":"move","from":"/metadata/labels","path":"/metadata/annotations"},{"op":"test","path":"/kind","value":"Pod"}]"#,
        r#"[{"op":"copy","from":"/spec","path":"/spec/x"},{"op":"replace","path":"/spec/containers/-","value":{}}]"#,
        r#"{"metadata":{"labels":{"app":null,"new":"x"}},"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}"#,
        r#"{"spec":{"containers":[{"name":"c","$patch":"delete"}],"$setElementOrder/containers":[{"name":"c"}]}}"#,
        r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a/b"]},"spec":{"$retainKeys":["containers"],"$patch":"replace"}}"#,
    ]);
    smoke("apply_patch", 0x5EED_A004, &seeds, JSON_TOKENS, bodies::apply_patch);
}

/// `runtime.Unknown` envelopes holding a ConfigMap and a Pod.
fn protobuf_seeds() -> Vec<Vec<u8>> {
    let envelope = |api: &str, kind: &str, raw: &[u8]| {
        let type_meta = [pb::bytes(1, api.as_bytes()), pb::bytes(2, kind.as_bytes())].concat();
        [b"k8s\0".to_vec(), pb::bytes(1, &type_meta), pb::bytes(2, raw)].concat()
    };
    let label = [pb::bytes(1, b"app"), pb::bytes(2, b"web")].concat();
    let meta = [pb::bytes(1, b"cm"), pb::bytes(3, b"default"), pb::bytes(11, &label)].concat();
    let data = [pb::bytes(1, b"k"), pb::bytes(2, b"v")].concat();
    let cm = [pb::bytes(1, &meta), pb::bytes(2, &data)].concat();
    let container = [pb::bytes(1, b"c"), pb::bytes(2, b"nginx:1")].concat();
    let spec = [pb::bytes(2, &container), pb::varint(4, 30)].concat();
    let pod = [pb::bytes(1, &pb::bytes(1, b"web")), pb::bytes(2, &spec)].concat();
    vec![envelope("v1", "ConfigMap", &cm), envelope("v1", "Pod", &pod), envelope("v1", "Secret", &[]), b"k8s\0".to_vec()]
}

#[test]
fn protobuf_smoke() {
    let seeds = protobuf_seeds();
    let tokens: &[&[u8]] = &[
        b"k8s\0", b"\x0a", b"\x12", b"\x1a", b"\x08", b"\x10", b"\x80", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x0a\x7f",
        b"\x0a\x00", b"\x0b", b"\x0c", b"\x0d\x00\x00\x00\x00", b"\x09\x00\x00\x00\x00\x00\x00\x00\x00", b"v1", b"Pod",
        b"ConfigMap", b"Service", b"Namespace",
    ];
    smoke("protobuf", 0x5EED_A005, &seeds, tokens, bodies::protobuf);
}
