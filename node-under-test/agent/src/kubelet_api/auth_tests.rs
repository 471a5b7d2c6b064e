use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use super::*;
use crate::kubelet_api::review_fake::FakeReviews;
use crate::kubelet_api::webhook::Backoff;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn authenticator(fake: &Arc<FakeReviews>, webhook: bool, anonymous: bool) -> Authenticator {
    let tokens = webhook.then(|| TokenAuthenticator::new(fake.clone(), Duration::from_secs(120), Backoff::default()));
    Authenticator { tokens, anonymous }
}

fn encode(token: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in token.as_bytes().chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn certificate_users() {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
    params.distinguished_name.push(rcgen::DnType::CommonName, "system:node:node-a");
    let key = rcgen::KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let user = UserInfo::from_certificate(&der).unwrap();
    assert_eq!(user, UserInfo { name: "system:node:node-a".into(), groups: vec!["system:nodes".into()], ..UserInfo::default() });
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "g");
    let no_cn = params.self_signed(&key).unwrap().der().to_vec();
    assert_eq!(UserInfo::from_certificate(&no_cn), None, "no CN: not this authenticator's user");
    assert_eq!(UserInfo::from_certificate(b"junk"), None);
}

#[test]
fn bearer_header_forms() {
    assert_eq!(bearer_token(&headers(&[("authorization", "Bearer abc")])), Some("abc"));
    assert_eq!(bearer_token(&headers(&[("authorization", "bearer abc")])), Some("abc"));
    assert_eq!(bearer_token(&headers(&[("authorization", "  Bearer abc  ")])), Some("abc"));
    assert_eq!(bearer_token(&headers(&[("authorization", "Bearer abc def")])), Some("abc"));
    assert_eq!(bearer_token(&headers(&[("authorization", "Bearer  abc")])), None, "empty token before the extra space");
    assert_eq!(bearer_token(&headers(&[("authorization", "Bearer")])), None);
    assert_eq!(bearer_token(&headers(&[("authorization", "Basic abc")])), None);
    assert_eq!(bearer_token(&headers(&[])), None);
}

#[test]
fn websocket_requests_and_base64url() {
    assert!(is_websocket(&headers(&[("connection", "keep-alive, Upgrade"), ("upgrade", "WebSocket")])));
    assert!(!is_websocket(&headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")])));
    assert!(!is_websocket(&headers(&[("upgrade", "websocket")])));
    for t in ["", "a", "ab", "abc", "abcd", "tok-en_with/+?=", "ünïcödé"] {
        assert_eq!(decode_base64url(&encode(t)).as_deref(), Some(t.as_bytes()), "{t:?} as {}", encode(t));
    }
    assert_eq!(decode_base64url("dG9r"), Some(b"tok".to_vec()));
    assert_eq!(decode_base64url("dG9rZW4"), Some(b"token".to_vec()));
    assert_eq!(decode_base64url("dG9rZW4="), None, "no padding in RawURLEncoding");
    assert_eq!(decode_base64url("a"), None);
    assert_eq!(decode_base64url("ab+/"), None, "standard alphabet refused");
}

#[test]
fn protocol_tokens_as_upstream() {
    let ws = |protocols: &[&str]| {
        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        for p in protocols {
            h.append(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(p).unwrap());
        }
        h
    };
    let bearer = |t: &str| format!("{BEARER_PROTOCOL_PREFIX}{}", encode(t));
    let got = protocol_token(&ws(&[&format!("v5.channel.k8s.io, {}", bearer("tok"))])).unwrap();
    assert_eq!(got, Some(("tok".to_string(), vec!["v5.channel.k8s.io".to_string()])));
    let got = protocol_token(&ws(&["v4.channel.k8s.io", &bearer("tok")])).unwrap();
    assert_eq!(got, Some(("tok".to_string(), vec!["v4.channel.k8s.io".to_string()])), "several headers");
    assert!(matches!(protocol_token(&ws(&[&bearer("tok")])), Err(AuthnError::MissingSubprotocol)));
    assert!(matches!(protocol_token(&ws(&["x", &bearer("a"), &bearer("b")])), Err(AuthnError::MultipleProtocolTokens)));
    assert!(matches!(protocol_token(&ws(&[&format!("x,{BEARER_PROTOCOL_PREFIX}!!")])), Err(AuthnError::ProtocolTokenEncoding)));
    assert!(matches!(protocol_token(&ws(&[&format!("x,{BEARER_PROTOCOL_PREFIX}_w")])), Err(AuthnError::ProtocolTokenNotUtf8)));
    assert_eq!(protocol_token(&ws(&["x", BEARER_PROTOCOL_PREFIX])).unwrap(), None, "an empty token is no token");
    assert_eq!(protocol_token(&ws(&["v5.channel.k8s.io"])).unwrap(), None);
}

#[tokio::test]
async fn certificate_first_then_token_then_anonymous() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("good", "alice", &["devs"]);
    let cert = UserInfo { name: "system:node:n".into(), groups: vec!["system:nodes".into()], ..UserInfo::default() };
    let a = authenticator(&fake, true, true);

    let mut h = headers(&[("authorization", "Bearer good")]);
    let user = a.authenticate(Some(&cert), &mut h).await.unwrap();
    assert_eq!(user.groups, ["system:nodes", AUTHENTICATED]);
    assert_eq!(fake.token_calls(), 0, "a certificate user needs no review");

    let user = a.authenticate(None, &mut h).await.unwrap();
    assert_eq!((user.name.as_str(), user.uid.as_str()), ("alice", "uid-alice"));
    assert_eq!(user.groups, ["devs", AUTHENTICATED]);
    assert!(h.get(AUTHORIZATION).is_none(), "the used credential is dropped");

    assert_eq!(a.authenticate(None, &mut HeaderMap::new()).await.unwrap(), UserInfo::anonymous());
}

#[tokio::test]
async fn a_refused_token_is_never_anonymous() {
    let fake = Arc::new(FakeReviews::default());
    fake.refuse("expired", "token has expired");
    let a = authenticator(&fake, true, true);
    let unknown = a.authenticate(None, &mut headers(&[("authorization", "Bearer nope")])).await.unwrap_err();
    assert!(matches!(unknown, AuthnError::InvalidBearerToken), "{unknown}");
    let refused = a.authenticate(None, &mut headers(&[("authorization", "Bearer expired")])).await.unwrap_err();
    assert_eq!(refused.to_string(), "token has expired");
    let no_anonymous = authenticator(&fake, true, false);
    let e = no_anonymous.authenticate(None, &mut HeaderMap::new()).await.unwrap_err();
    assert!(matches!(e, AuthnError::NoCredentials));
}

#[tokio::test]
async fn tokens_are_ignored_without_the_webhook() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("good", "alice", &[]);
    let a = authenticator(&fake, false, false);
    let e = a.authenticate(None, &mut headers(&[("authorization", "Bearer good")])).await.unwrap_err();
    assert!(matches!(e, AuthnError::NoCredentials));
    let a = authenticator(&fake, false, true);
    assert_eq!(a.authenticate(None, &mut headers(&[("authorization", "Bearer good")])).await.unwrap().name, ANONYMOUS);
    assert_eq!(fake.token_calls(), 0);
}

#[tokio::test]
async fn websocket_protocol_token() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("ws", "wendy", &[]);
    let a = authenticator(&fake, true, false);
    let protocols = format!("v5.channel.k8s.io,{BEARER_PROTOCOL_PREFIX}{}", encode("ws"));
    let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-protocol", &protocols)]);
    assert_eq!(a.authenticate(None, &mut h).await.unwrap().name, "wendy");
    assert_eq!(h.get(SEC_WEBSOCKET_PROTOCOL).unwrap(), "v5.channel.k8s.io", "the token's subprotocol is removed");
    let mut not_ws = headers(&[("sec-websocket-protocol", &protocols)]);
    assert!(matches!(a.authenticate(None, &mut not_ws).await, Err(AuthnError::NoCredentials)), "only WebSocket requests");
    let bad = format!("x,{BEARER_PROTOCOL_PREFIX}!!");
    let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-protocol", &bad)]);
    assert!(matches!(a.authenticate(None, &mut h).await, Err(AuthnError::ProtocolTokenEncoding)));
}

#[test]
fn groups_added_as_upstream() {
    let anon = UserInfo::anonymous().with_authenticated_group();
    assert_eq!(anon.groups, [UNAUTHENTICATED]);
    let marked = UserInfo { name: "x".into(), groups: vec![AUTHENTICATED.into()], ..UserInfo::default() }.with_authenticated_group();
    assert_eq!(marked.groups, [AUTHENTICATED]);
    let plain = UserInfo { name: "x".into(), ..UserInfo::default() }.with_authenticated_group();
    assert_eq!(plain.groups, [AUTHENTICATED]);
}
