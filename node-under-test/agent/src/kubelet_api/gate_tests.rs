use std::sync::Arc;

use http::HeaderValue;
use http_body_util::BodyExt;

use super::*;
use crate::kubelet_api::review_fake::FakeReviews;

fn gate(fake: &Arc<FakeReviews>, edit: impl FnOnce(&mut KubeletConfiguration)) -> Gate {
    let mut cfg = KubeletConfiguration::default();
    edit(&mut cfg);
    Gate::from_config(&cfg, "node-a", fake.clone(), Backoff::default())
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h
}

async fn admit(g: &Gate, method: Method, path: &str, mut headers: HeaderMap) -> Result<UserInfo, Refusal> {
    g.admit(None, &method, path, &mut headers).await
}

async fn body(r: Response<Body>) -> (u16, String) {
    let status = r.status().as_u16();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn defaults_review_token_and_every_request() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("t", "alice", &[]);
    fake.allow("alice", "get", "proxy");
    let g = gate(&fake, |_| {});
    assert_eq!(admit(&g, Method::GET, "/containerLogs/ns/p/c", bearer("t")).await.unwrap().name, "alice");
    let checks: Vec<(String, String)> = fake.access_calls().into_iter().map(|s| (s.verb, s.subresource)).collect();
    assert_eq!(checks, [("get".to_string(), "proxy".to_string())]);
}

#[tokio::test]
async fn fine_grained_then_proxy() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("p", "proxier", &[]);
    fake.allow("proxier", "get", "proxy");
    fake.token("s", "stats-reader", &[]);
    fake.allow("stats-reader", "get", "stats");
    fake.token("o", "pods-reader", &[]);
    fake.allow("pods-reader", "get", "pods");
    let g = gate(&fake, |_| {});
    assert!(admit(&g, Method::GET, "/pods", bearer("p")).await.is_ok(), "proxy allows /pods after pods was not");
    assert!(admit(&g, Method::GET, "/pods", bearer("o")).await.is_ok());
    assert!(admit(&g, Method::GET, "/stats/summary", bearer("s")).await.is_ok());
    let refused = admit(&g, Method::GET, "/pods", bearer("s")).await.unwrap_err();
    assert_eq!(refused, Refusal::Forbidden("Forbidden (user=stats-reader, verb=get, resource=nodes, subresource(s)=[pods proxy])\n".into()));
    let refused = admit(&g, Method::GET, "/stats/summary", bearer("p")).await.unwrap_err();
    assert_eq!(refused, Refusal::Forbidden("Forbidden (user=proxier, verb=get, resource=nodes, subresource(s)=[stats])\n".into()));
    let refused = admit(&g, Method::POST, "/run/ns/p/c", bearer("p")).await.unwrap_err();
    assert_eq!(refused, Refusal::Forbidden("Forbidden (user=proxier, verb=create, resource=nodes, subresource(s)=[proxy])\n".into()));
}

#[tokio::test]
async fn a_denial_moves_on_to_the_next_subresource() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("t", "alice", &[]);
    fake.deny("alice", "get", "healthz");
    fake.allow("alice", "get", "proxy");
    let g = gate(&fake, |_| {});
    assert!(admit(&g, Method::GET, "/healthz", bearer("t")).await.is_ok());
    assert_eq!(fake.access_calls().len(), 2);
}

#[tokio::test]
async fn refusals_as_upstream_answers_them() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("t", "alice", &[]);
    let g = gate(&fake, |_| {});
    let unauthorized = admit(&g, Method::GET, "/pods", HeaderMap::new()).await.unwrap_err();
    assert_eq!(body(unauthorized.response()).await, (401, "Unauthorized".into()));
    let unknown = admit(&g, Method::GET, "/pods", bearer("unknown")).await.unwrap_err();
    assert_eq!(unknown, Refusal::Unauthorized);
    let forbidden = admit(&g, Method::GET, "/configz", bearer("t")).await.unwrap_err();
    assert_eq!(body(forbidden.response()).await, (403, "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[configz proxy])\n".into()));
    fake.fail_access(&[false]);
    let error = admit(&g, Method::GET, "/metrics", bearer("t")).await.unwrap_err();
    assert_eq!(body(error.response()).await, (500, "Authorization error (user=alice, verb=get, resource=nodes, subresource=metrics)".into()));
    fake.fail_tokens(&[false]);
    assert_eq!(admit(&g, Method::GET, "/pods", bearer("other")).await.unwrap_err(), Refusal::Unauthorized, "a failed TokenReview is a 401");
}

#[tokio::test]
async fn anonymous_when_enabled_is_authorized_too() {
    let fake = Arc::new(FakeReviews::default());
    fake.allow(crate::kubelet_api::auth::ANONYMOUS, "get", "healthz");
    let g = gate(&fake, |c| c.authentication.anonymous.enabled = true);
    let user = admit(&g, Method::GET, "/healthz", HeaderMap::new()).await.unwrap();
    assert_eq!(user, UserInfo::anonymous());
    let refused = admit(&g, Method::GET, "/pods", HeaderMap::new()).await.unwrap_err();
    assert_eq!(refused, Refusal::Forbidden("Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy])\n".into()));
}

#[tokio::test]
async fn always_allow_and_certificates() {
    let fake = Arc::new(FakeReviews::default());
    let g = gate(&fake, |c| c.authorization.mode = "AlwaysAllow".into());
    let cert = UserInfo { name: "kube-apiserver-kubelet-client".into(), groups: vec!["system:masters".into()], ..UserInfo::default() };
    let user = g.admit(Some(&cert), &Method::POST, "/exec/ns/p/c", &mut HeaderMap::new()).await.unwrap();
    assert_eq!(user.groups, ["system:masters", "system:authenticated"]);
    assert!(fake.calls().is_empty(), "neither review was needed");
    assert_eq!(admit(&g, Method::GET, "/pods", HeaderMap::new()).await.unwrap_err(), Refusal::Unauthorized);
}

#[tokio::test]
async fn certificate_users_are_reviewed_with_their_groups() {
    let fake = Arc::new(FakeReviews::default());
    let g = gate(&fake, |_| {});
    let cert = UserInfo { name: "cert-user".into(), groups: vec!["team".into()], ..UserInfo::default() };
    let refused = g.admit(Some(&cert), &Method::GET, "/stats/summary", &mut HeaderMap::new()).await.unwrap_err();
    assert_eq!(refused, Refusal::Forbidden("Forbidden (user=cert-user, verb=get, resource=nodes, subresource(s)=[stats])\n".into()));
    let spec = &fake.access_calls()[0];
    assert_eq!((spec.user.as_str(), spec.groups.as_slice()), ("cert-user", ["team".to_string(), "system:authenticated".to_string()].as_slice()));
}
