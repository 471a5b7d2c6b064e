use std::sync::Arc;
use std::time::Duration;

use http::Method;

use super::*;
use crate::kubelet_api::attributes::request_attributes;
use crate::kubelet_api::review_fake::{Call, FakeReviews};

const TTL: Duration = Duration::from_secs(120);

fn tokens(fake: &Arc<FakeReviews>) -> TokenAuthenticator {
    TokenAuthenticator::new(fake.clone(), TTL, Backoff::default())
}

fn attrs(path: &str) -> ResourceAttributes {
    request_attributes(&Method::GET, path, "node-a").remove(0)
}

fn bob() -> UserInfo {
    UserInfo { name: "bob".into(), uid: "u-bob".into(), groups: vec!["devs".into()], extra: [("scopes".to_string(), vec!["a".to_string()])].into() }
}

#[tokio::test(start_paused = true)]
async fn a_good_token_is_reviewed_once_per_ttl() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("t1", "alice", &["g"]);
    let a = tokens(&fake);
    let user = a.authenticate("t1").await.unwrap().unwrap();
    assert_eq!((user.name.as_str(), user.groups.as_slice()), ("alice", ["g".to_string()].as_slice()));
    tokio::time::advance(TTL - Duration::from_secs(1)).await;
    assert_eq!(a.authenticate("t1").await.unwrap().unwrap(), user);
    assert_eq!(fake.calls(), [Call::Token("t1".into())], "the second answer came from the cache");
    tokio::time::advance(Duration::from_secs(1)).await;
    a.authenticate("t1").await.unwrap();
    assert_eq!(fake.token_calls(), 2, "reviewed again once cacheTTL passed");
}

#[tokio::test(start_paused = true)]
async fn an_unauthenticated_answer_without_reason_is_cached() {
    let fake = Arc::new(FakeReviews::default());
    let a = tokens(&fake);
    assert_eq!(a.authenticate("unknown").await.unwrap(), None);
    assert_eq!(a.authenticate("unknown").await.unwrap(), None);
    assert_eq!(fake.token_calls(), 1);
    tokio::time::advance(TTL).await;
    assert_eq!(a.authenticate("unknown").await.unwrap(), None);
    assert_eq!(fake.token_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_with_reason_and_a_failed_review_are_not_cached() {
    let fake = Arc::new(FakeReviews::default());
    fake.refuse("bad", "token has expired");
    let a = tokens(&fake);
    for _ in 0..2 {
        let e = a.authenticate("bad").await.unwrap_err();
        assert!(matches!(&e, TokenError::Refused(r) if r == "token has expired"), "{e}");
    }
    assert_eq!(fake.token_calls(), 2);
    fake.token("t", "alice", &[]);
    fake.fail_tokens(&[false]);
    assert!(matches!(a.authenticate("t").await, Err(TokenError::Review(_))));
    assert_eq!(a.authenticate("t").await.unwrap().unwrap().name, "alice", "the failure was not kept");
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff() {
    let fake = Arc::new(FakeReviews::default());
    fake.token("t", "alice", &[]);
    fake.fail_tokens(&[true, true]);
    let a = tokens(&fake);
    let start = tokio::time::Instant::now();
    assert_eq!(a.authenticate("t").await.unwrap().unwrap().name, "alice");
    assert_eq!(fake.token_calls(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(500 + 750), "500 ms, then 1.5 times that");
    fake.fail_tokens(&[true; 5]);
    assert!(a.authenticate("other").await.is_err(), "five attempts, then the failure");
    assert_eq!(fake.token_calls(), 8);
    fake.fail_tokens(&[false]);
    assert!(a.authenticate("third").await.is_err());
    assert_eq!(fake.token_calls(), 9, "a lasting failure is not retried");
}

fn authorizer(fake: &Arc<FakeReviews>) -> WebhookAuthorizer {
    WebhookAuthorizer::new(fake.clone(), Duration::from_secs(300), Duration::from_secs(30), Backoff::default())
}

#[tokio::test(start_paused = true)]
async fn the_review_names_user_and_attributes() {
    let fake = Arc::new(FakeReviews::default());
    fake.allow("bob", "get", "stats");
    let z = authorizer(&fake);
    assert_eq!(z.authorize(&bob(), &attrs("/stats/summary")).await.unwrap(), Decision::Allow);
    let want = AccessReviewSpec {
        user: "bob".into(),
        uid: "u-bob".into(),
        groups: vec!["devs".into()],
        extra: bob().extra,
        verb: "get".into(),
        version: "v1".into(),
        resource: "nodes".into(),
        subresource: "stats".into(),
        name: "node-a".into(),
        ..AccessReviewSpec::default()
    };
    assert_eq!(fake.access_calls(), [want]);
}

#[tokio::test(start_paused = true)]
async fn decisions_are_cached_for_their_ttls() {
    let fake = Arc::new(FakeReviews::default());
    fake.allow("bob", "get", "stats");
    let z = authorizer(&fake);
    let (stats, pods) = (attrs("/stats/summary"), attrs("/pods"));
    assert_eq!(z.authorize(&bob(), &stats).await.unwrap(), Decision::Allow);
    assert_eq!(z.authorize(&bob(), &pods).await.unwrap(), Decision::NoOpinion);
    tokio::time::advance(Duration::from_secs(29)).await;
    z.authorize(&bob(), &stats).await.unwrap();
    z.authorize(&bob(), &pods).await.unwrap();
    assert_eq!(fake.access_calls().len(), 2, "both answers cached");
    tokio::time::advance(Duration::from_secs(1)).await;
    z.authorize(&bob(), &stats).await.unwrap();
    z.authorize(&bob(), &pods).await.unwrap();
    assert_eq!(fake.access_calls().len(), 3, "the unauthorized answer expired after 30 s");
    tokio::time::advance(Duration::from_secs(270)).await;
    z.authorize(&bob(), &stats).await.unwrap();
    assert_eq!(fake.access_calls().len(), 4, "the authorized answer expired after 5 m");
    let other = UserInfo { groups: vec![], ..bob() };
    z.authorize(&other, &stats).await.unwrap();
    assert_eq!(fake.access_calls().len(), 5, "another spec is another entry");
}

#[tokio::test(start_paused = true)]
async fn deny_allow_and_errors() {
    let fake = Arc::new(FakeReviews::default());
    fake.deny("bob", "get", "metrics");
    fake.allow("bob", "get", "log");
    fake.deny("bob", "get", "log");
    let z = authorizer(&fake);
    assert_eq!(z.authorize(&bob(), &attrs("/metrics")).await.unwrap(), Decision::Deny);
    let both = z.authorize(&bob(), &attrs("/logs/x")).await.unwrap_err();
    assert_eq!(both.to_string(), "webhook subject access review returned both allow and deny response");
    fake.fail_access(&[false]);
    assert!(matches!(z.authorize(&bob(), &attrs("/configz")).await, Err(AuthorizeError::Review(_))));
    z.authorize(&bob(), &attrs("/configz")).await.unwrap();
    assert_eq!(fake.access_calls().len(), 4, "the failure was not cached");
    assert!(matches!(Authorizer::AlwaysAllow.authorize(&bob(), &attrs("/pods")).await, Ok(Decision::Allow)));
    assert_eq!(fake.access_calls().len(), 4, "AlwaysAllow asks nobody");
}

#[tokio::test(start_paused = true)]
async fn oversized_attributes_are_not_cached() {
    let fake = Arc::new(FakeReviews::default());
    let z = authorizer(&fake);
    let long = attrs(&format!("/containerLogs/{}", "x".repeat(MAX_CACHED_ATTRIBUTES)));
    z.authorize(&bob(), &long).await.unwrap();
    z.authorize(&bob(), &long).await.unwrap();
    assert_eq!(fake.access_calls().len(), 2);
}
