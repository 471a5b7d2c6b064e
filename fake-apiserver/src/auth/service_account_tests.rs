use std::collections::HashMap;

use base64::Engine;
use serde_json::{Value, json};

use super::*;
use crate::auth::service_account_keys::{Algorithm, public_keys_from_pem};

const NOW: i64 = 1_750_000_000;
const RSA_KEY: &str = include_str!("testdata/sa-rsa.key");
const RSA_PUB: &str = include_str!("testdata/sa-rsa.pub");
const EC_KEY: &str = include_str!("testdata/sa-ec.key");
const EC_PUB: &str = include_str!("testdata/sa-ec.pub");
const OPENSSL_RS256_TOKEN: &str = include_str!("testdata/sa-rsa-openssl.jwt");

/// Objects by `namespace/name` (nodes by name).
#[derive(Default)]
struct Objects {
    service_accounts: HashMap<String, Value>,
    pods: HashMap<String, Value>,
    secrets: HashMap<String, Value>,
    nodes: HashMap<String, Value>,
}

fn obj(name: &str, uid: &str) -> Value {
    json!({"metadata": {"name": name, "uid": uid}})
}

impl TokenGetter for Objects {
    fn service_account(&self, namespace: &str, name: &str) -> Result<Value, String> {
        self.service_accounts.get(&format!("{namespace}/{name}")).cloned().ok_or_else(|| format!("serviceaccounts {name:?} not found"))
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.pods.get(&format!("{namespace}/{name}")).cloned()
    }
    fn secret(&self, namespace: &str, name: &str) -> Option<Value> {
        self.secrets.get(&format!("{namespace}/{name}")).cloned()
    }
    fn node(&self, name: &str) -> Option<Value> {
        self.nodes.get(name).cloned()
    }
}

fn world() -> Objects {
    let mut o = Objects::default();
    o.service_accounts.insert("ns/sa".into(), obj("sa", "sa-uid"));
    o.pods.insert("ns/p".into(), obj("p", "pod-uid"));
    o.secrets.insert("ns/s".into(), obj("s", "secret-uid"));
    o.nodes.insert("n1".into(), obj("n1", "node-uid"));
    o
}

fn authority() -> TokenAuthority {
    TokenAuthority::new(&ServiceAccountConfig::default()).unwrap()
}

fn binding() -> Binding {
    Binding { namespace: "ns".into(), service_account: Ref { name: "sa".into(), uid: "sa-uid".into() }, ..Binding::default() }
}

fn api() -> Vec<String> {
    vec![DEFAULT_ISSUER.to_string()]
}

fn token(a: &TokenAuthority, b: &Binding, auds: &[String], exp: i64) -> String {
    a.sign(&Claims::new(b, auds, NOW, exp, 0, "jti-1")).unwrap()
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn auth(a: &TokenAuthority, t: &str, o: &Objects) -> Result<Option<Authenticated>, TokenError> {
    a.authenticate(t, None, o, NOW)
}

#[test]
fn issued_tokens_have_upstreams_header_and_claims() {
    let a = authority();
    let mut b = binding();
    b.pod = Some(Ref { name: "p".into(), uid: "pod-uid".into() });
    b.node = Some(Ref { name: "n1".into(), uid: "node-uid".into() });
    let t = a.sign(&Claims::new(&b, &api(), NOW, 3600, 3607, "jti-1")).unwrap();
    let header = decode_part(&t, 0);
    assert_eq!(header, json!({"alg": "ES256", "kid": a.verifying_keys()[0].kid()}));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.split('.').nth(1).unwrap()).unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"aud\":[\"{DEFAULT_ISSUER}\"],\"exp\":{},\"iat\":{NOW},\"iss\":\"{DEFAULT_ISSUER}\",\"jti\":\"jti-1\",\"kubernetes.io\":{{\"namespace\":\"ns\",\
             \"node\":{{\"name\":\"n1\",\"uid\":\"node-uid\"}},\"pod\":{{\"name\":\"p\",\"uid\":\"pod-uid\"}},\"serviceaccount\":{{\"name\":\"sa\",\"uid\":\"sa-uid\"}},\
             \"warnafter\":{}}},\"nbf\":{NOW},\"sub\":\"system:serviceaccount:ns:sa\"}}",
            NOW + 3600,
            NOW + 3607
        ),
        "go-jose's sorted keys, aud as a list"
    );
    assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.split('.').nth(2).unwrap()).unwrap().len(), 64, "ES256: r || s");
}

#[test]
fn key_ids_are_the_sha256_of_the_pkix_key() {
    // Expected values computed with openssl (see testdata/README).
    let ec = SigningKey::from_pem("sa-ec.key", EC_KEY.as_bytes()).unwrap();
    assert_eq!(ec.public().kid(), "gLqRc8VMBf5aZc8f9yFl_MYjB4DMMJOZwzqr5XJkGbo");
    assert_eq!(ec.public().algorithm(), Algorithm::Es256);
    let rsa = SigningKey::from_pem("sa-rsa.key", RSA_KEY.as_bytes()).unwrap();
    assert_eq!(rsa.public().kid(), "mdFBiPVIouedWCmMjxmdu8SbUDidbtxFn12zRWwX1hM");
    assert_eq!(rsa.public().algorithm(), Algorithm::Rs256);
    assert_eq!(public_keys_from_pem("sa-ec.pub", EC_PUB.as_bytes()).unwrap(), vec![ec.public().clone()]);
    assert_eq!(public_keys_from_pem("sa-rsa.pub", RSA_PUB.as_bytes()).unwrap(), vec![rsa.public().clone()]);
    assert_eq!(public_keys_from_pem("sa-rsa.key", RSA_KEY.as_bytes()).unwrap(), vec![rsa.public().clone()], "a private key verifies too");
    let e = public_keys_from_pem("x.pem", b"nothing").unwrap_err();
    assert_eq!(e.to_string(), "x.pem: data does not contain any valid RSA or ECDSA public keys");
    let e = SigningKey::from_pem("x.pem", EC_PUB.as_bytes()).unwrap_err();
    assert_eq!(e.to_string(), "x.pem: data does not contain a valid RSA or ECDSA private key");
}

#[test]
fn rsa_signing_keys_issue_rs256_and_foreign_signatures_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = (dir.path().join("sa.key"), dir.path().join("sa.pub"));
    std::fs::write(&key, RSA_KEY).unwrap();
    std::fs::write(&public, EC_PUB).unwrap();
    let cfg = ServiceAccountConfig { signing_key_file: Some(key), key_files: vec![public], ..ServiceAccountConfig::default() };
    let a = TokenAuthority::new(&cfg).unwrap();
    assert_eq!(a.verifying_keys().len(), 2);
    let t = token(&a, &binding(), &api(), 3600);
    assert_eq!(decode_part(&t, 0)["alg"], "RS256");
    let o = world();
    assert_eq!(auth(&a, &t, &o).unwrap().unwrap().user.name, "system:serviceaccount:ns:sa");
    // A token openssl signed with the same key (not our signer) verifies.
    let mut o = world();
    o.service_accounts.insert("ns/sa".into(), obj("sa", "u1"));
    let accepted = auth(&a, OPENSSL_RS256_TOKEN.trim(), &o).unwrap().unwrap();
    assert_eq!(accepted.user.uid, "u1");
    assert_eq!(accepted.user.extra.get(CREDENTIAL_ID_KEY), Some(&vec!["JTI=j1".to_string()]));
}

#[test]
fn accepted_tokens_are_the_service_accounts_user() {
    let a = authority();
    let o = world();
    let mut b = binding();
    b.pod = Some(Ref { name: "p".into(), uid: "pod-uid".into() });
    b.node = Some(Ref { name: "gone-node".into(), uid: String::new() });
    let accepted = auth(&a, &token(&a, &b, &api(), 3600), &o).unwrap().unwrap();
    assert_eq!(accepted.audiences, api());
    let u = accepted.user;
    assert_eq!((u.name.as_str(), u.uid.as_str()), ("system:serviceaccount:ns:sa", "sa-uid"));
    assert_eq!(u.groups, ["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"]);
    let extra: Vec<(&str, &str)> = u.extra.iter().map(|(k, v)| (k.as_str(), v[0].as_str())).collect();
    assert_eq!(
        extra,
        [
            ("authentication.kubernetes.io/credential-id", "JTI=jti-1"),
            ("authentication.kubernetes.io/node-name", "gone-node"),
            ("authentication.kubernetes.io/pod-name", "p"),
            ("authentication.kubernetes.io/pod-uid", "pod-uid"),
        ],
        "a pod's node is only recorded (no uid: the node was not found), never looked up"
    );
}

#[test]
fn signatures_keys_and_issuers_are_checked() {
    let a = authority();
    let o = world();
    let t = token(&a, &binding(), &api(), 3600);
    let (head, rest) = t.split_at(t.len() - 4);
    let flipped = if rest.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}{flipped}{}", &rest[1..]);
    assert_eq!(auth(&a, &tampered, &o), Err(TokenError::Signature));
    let other = authority();
    assert_eq!(auth(&a, &token(&other, &binding(), &api(), 3600), &o), Err(TokenError::NoKeys), "another key's kid");
    let parts: Vec<&str> = t.split('.').collect();
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    assert_eq!(auth(&a, &format!("{none}.{}.", parts[1]), &o), Err(TokenError::Signature), "alg none is never accepted");
    assert_eq!(auth(&a, "not-a-jwt", &o), Ok(None));
    let foreign = TokenAuthority::new(&ServiceAccountConfig { issuers: vec!["https://elsewhere".into()], ..ServiceAccountConfig::default() }).unwrap();
    assert_eq!(auth(&a, &token(&foreign, &binding(), &api(), 3600), &o), Ok(None), "another issuer's token is not ours");
    assert_eq!(TokenError::NoKeys.to_string(), "invalid signature, no keys found");
}

#[test]
fn audiences_must_meet() {
    let a = authority();
    let o = world();
    let vault = vec!["vault".to_string()];
    let t = token(&a, &binding(), &vault, 3600);
    let e = auth(&a, &t, &o).unwrap_err();
    assert_eq!(e.to_string(), "token audiences [\"vault\"] is invalid for the target audiences [\"https://kubernetes.default.svc.cluster.local\"]");
    let accepted = a.authenticate(&t, Some(&vault), &o, NOW).unwrap().unwrap();
    assert_eq!(accepted.audiences, vault);
    let both = vec!["vault".to_string(), DEFAULT_ISSUER.to_string()];
    let t = token(&a, &binding(), &both, 3600);
    assert_eq!(auth(&a, &t, &o).unwrap().unwrap().audiences, api(), "the intersection");
}

#[test]
fn times_have_a_minute_of_leeway() {
    let a = authority();
    let o = world();
    let t = token(&a, &binding(), &api(), 600);
    assert!(a.authenticate(&t, None, &o, NOW + 600 + 60).unwrap().is_some());
    assert_eq!(a.authenticate(&t, None, &o, NOW + 600 + 61), Err(TokenError::Expired));
    assert!(a.authenticate(&t, None, &o, NOW - 60).unwrap().is_some());
    assert_eq!(a.authenticate(&t, None, &o, NOW - 61), Err(TokenError::NotValidYet));
    assert_eq!(TokenError::Expired.to_string(), "service account token has expired");
    let mut c = Claims::new(&binding(), &api(), NOW, 600, 0, "j");
    c.not_before = None;
    c.issued_at = Some(NOW + 61);
    assert_eq!(validate(&c, &o, NOW), Err(TokenError::IssuedInTheFuture));
}

#[test]
fn the_service_account_and_bound_objects_are_looked_up_again() {
    let a = authority();
    let with_pod = Binding { pod: Some(Ref { name: "p".into(), uid: "pod-uid".into() }), ..binding() };
    let t = token(&a, &with_pod, &api(), 3600);
    let mut o = world();
    o.service_accounts.insert("ns/sa".into(), obj("sa", "new-uid"));
    assert_eq!(auth(&a, &t, &o).unwrap_err().to_string(), "service account UID (new-uid) does not match claim (sa-uid)");
    o.service_accounts.clear();
    assert_eq!(auth(&a, &t, &o).unwrap_err().to_string(), "serviceaccounts \"sa\" not found");
    let mut o = world();
    o.pods.insert("ns/p".into(), obj("p", "other"));
    assert_eq!(auth(&a, &t, &o).unwrap_err().to_string(), "pod UID (other) does not match service account pod ref claim (pod-uid)");
    o.pods.clear();
    assert_eq!(auth(&a, &t, &o), Err(TokenError::Invalidated));
    assert_eq!(TokenError::Invalidated.to_string(), "service account token has been invalidated");
    // Terminating for longer than the leeway: invalid; just started terminating: still valid.
    let mut o = world();
    let deleting = |secs_ago: i64| {
        let at = jiff::Timestamp::from_second(NOW - secs_ago).unwrap().to_string();
        json!({"metadata": {"name": "p", "uid": "pod-uid", "deletionTimestamp": at}})
    };
    o.pods.insert("ns/p".into(), deleting(61));
    assert_eq!(auth(&a, &t, &o), Err(TokenError::Invalidated));
    o.pods.insert("ns/p".into(), deleting(30));
    assert!(auth(&a, &t, &o).unwrap().is_some());
}

#[test]
fn secrets_and_nodes_bind_too() {
    let a = authority();
    let to_secret = token(&a, &Binding { secret: Some(Ref { name: "s".into(), uid: "secret-uid".into() }), ..binding() }, &api(), 3600);
    let to_node = token(&a, &Binding { node: Some(Ref { name: "n1".into(), uid: "node-uid".into() }), ..binding() }, &api(), 3600);
    let o = world();
    assert!(auth(&a, &to_secret, &o).unwrap().is_some());
    let u = auth(&a, &to_node, &o).unwrap().unwrap().user;
    assert_eq!(u.extra.get(NODE_UID_KEY), Some(&vec!["node-uid".to_string()]));
    let mut o = world();
    o.secrets.insert("ns/s".into(), obj("s", "x"));
    o.nodes.insert("n1".into(), obj("n1", "y"));
    assert_eq!(auth(&a, &to_secret, &o).unwrap_err().to_string(), "secret UID (x) does not match service account secret ref claim (secret-uid)");
    assert_eq!(auth(&a, &to_node, &o).unwrap_err().to_string(), "node UID (y) does not match service account node ref claim (node-uid)");
    o.secrets.clear();
    o.nodes.clear();
    assert_eq!(auth(&a, &to_secret, &o), Err(TokenError::Invalidated));
    assert_eq!(auth(&a, &to_node, &o), Err(TokenError::Invalidated));
}

#[test]
fn projected_token_expiration_is_extended_as_upstreams() {
    let a = authority();
    let kube = api();
    assert_eq!(extended_expiration(&a, true, 3607, &kube), (EXPIRATION_EXTENSION_SECONDS, 3607));
    assert_eq!(extended_expiration(&a, false, 3607, &kube), (3607, 0), "pod-bound only");
    assert_eq!(extended_expiration(&a, true, 3600, &kube), (3600, 0), "exactly 3607 s only");
    assert_eq!(extended_expiration(&a, true, 3607, &["vault".to_string()]), (3607, 0), "API audiences only");
    let off = TokenAuthority::new(&ServiceAccountConfig { extend_token_expiration: false, ..ServiceAccountConfig::default() }).unwrap();
    assert_eq!(extended_expiration(&off, true, 3607, &kube), (3607, 0));
}

#[test]
fn configuration_is_checked_as_upstreams() {
    let cfg = |issuers: &[&str], max: Option<i64>| ServiceAccountConfig {
        issuers: issuers.iter().map(|s| s.to_string()).collect(),
        max_token_expiration_seconds: max,
        ..ServiceAccountConfig::default()
    };
    let err = |c: ServiceAccountConfig| TokenAuthority::new(&c).unwrap_err().to_string();
    assert_eq!(err(cfg(&[], None)), "service-account-issuer is a required flag");
    assert_eq!(err(cfg(&["a", ""], None)), "service-account-issuer should not be an empty string");
    assert_eq!(err(cfg(&["a", "a"], None)), "service-account-issuer \"a\" is already specified");
    assert_eq!(err(cfg(&["a"], Some(3599))), "the service-account-max-token-expiration must be between 1 hour and 2^32 seconds");
    assert!(TokenAuthority::new(&cfg(&["a"], Some(3600))).is_ok());
    let two = TokenAuthority::new(&cfg(&["new", "old"], None)).unwrap();
    assert_eq!((two.issuer(), two.api_audiences()), ("new", &["new".to_string(), "old".to_string()][..]));
    let by_old = TokenAuthority { issuers: vec!["old".into()], ..TokenAuthority::new(&cfg(&["old"], None)).unwrap() };
    assert!(!two.has_correct_issuer(&token(&authority(), &binding(), &api(), 60)));
    assert!(two.has_correct_issuer(&token(&by_old, &binding(), &api(), 60)), "every issuer is accepted");
}
