//! The reviews made on the API server with the agent's client: `authentication.k8s.io/v1`
//! TokenReview and `authorization.k8s.io/v1` SubjectAccessReview, each within the agent's
//! API request timeout.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};

use super::auth::UserInfo;
use super::webhook::{AccessReviewSpec, AccessReviewStatus, ReviewClient, ReviewError, TokenReviewStatus};
use crate::error::Error;

/// Reviews through the API server.
pub struct KubeReviews {
    client: kube::Client,
    timeout: Duration,
}

impl KubeReviews {
    pub fn new(client: kube::Client, timeout: Duration) -> KubeReviews {
        KubeReviews { client, timeout }
    }
}

/// Upstream's `DefaultShouldRetry`: connection failures, 429, 500, 503 and 504 are transient.
fn failed(op: &'static str, e: Error) -> ReviewError {
    let transient = match &e {
        Error::Kube { source, .. } => match source.as_ref() {
            kube::Error::Api(s) => matches!(s.code, 429 | 500 | 503 | 504),
            kube::Error::HyperError(_) | kube::Error::Service(_) => true,
            _ => false,
        },
        _ => false,
    };
    ReviewError::Failed { op, message: e.to_string(), transient }
}

/// `Some` of a non-empty string (Go's `omitempty`).
fn set(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The SubjectAccessReview of `spec`.
pub fn access_review_object(spec: &AccessReviewSpec) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: set(&spec.user),
            uid: set(&spec.uid),
            groups: (!spec.groups.is_empty()).then(|| spec.groups.clone()),
            extra: (!spec.extra.is_empty()).then(|| spec.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                namespace: set(&spec.namespace),
                verb: set(&spec.verb),
                group: set(&spec.group),
                version: set(&spec.version),
                resource: set(&spec.resource),
                subresource: set(&spec.subresource),
                name: set(&spec.name),
                ..ResourceAttributes::default()
            }),
            non_resource_attributes: None,
        },
        ..SubjectAccessReview::default()
    }
}

/// What a TokenReview answered, in the agent's terms.
pub fn token_review_status(review: TokenReview) -> TokenReviewStatus {
    let status = review.status.unwrap_or_default();
    let user = status.user.unwrap_or_default();
    TokenReviewStatus {
        authenticated: status.authenticated.unwrap_or(false),
        user: UserInfo {
            name: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
        },
        error: status.error.unwrap_or_default(),
    }
}

impl ReviewClient for KubeReviews {
    fn token_review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<TokenReviewStatus, ReviewError>> {
        Box::pin(async move {
            let api: Api<TokenReview> = Api::all(self.client.clone());
            let review = TokenReview { spec: TokenReviewSpec { token: Some(token.to_string()), audiences: None }, ..TokenReview::default() };
            let created = crate::error::api("create tokenreview", self.timeout, api.create(&PostParams::default(), &review))
                .await
                .map_err(|e| failed("create tokenreview", e))?;
            Ok(token_review_status(created))
        })
    }

    fn access_review<'a>(&'a self, spec: &'a AccessReviewSpec) -> BoxFuture<'a, Result<AccessReviewStatus, ReviewError>> {
        Box::pin(async move {
            let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let review = access_review_object(spec);
            let created = crate::error::api("create subjectaccessreview", self.timeout, api.create(&PostParams::default(), &review))
                .await
                .map_err(|e| failed("create subjectaccessreview", e))?;
            let status = created.status.unwrap_or_default();
            Ok(AccessReviewStatus { allowed: status.allowed, denied: status.denied.unwrap_or(false), reason: status.reason.unwrap_or_default() })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1 as authn;

    #[test]
    fn access_review_leaves_empty_fields_out() {
        let user = UserInfo { name: "bob".into(), groups: vec!["g".into()], ..UserInfo::default() };
        let attrs = &super::super::attributes::request_attributes(&http::Method::GET, "/pods", "node-a")[0];
        let v = serde_json::to_value(access_review_object(&AccessReviewSpec::new(&user, attrs))).unwrap();
        assert_eq!(v["spec"]["user"], "bob");
        assert_eq!(v["spec"]["groups"], serde_json::json!(["g"]));
        assert!(v["spec"].get("uid").is_none() && v["spec"].get("extra").is_none(), "{v}");
        let ra = &v["spec"]["resourceAttributes"];
        assert_eq!(ra, &serde_json::json!({"verb": "get", "version": "v1", "resource": "nodes", "subresource": "pods", "name": "node-a"}));
    }

    #[test]
    fn token_review_status_maps_the_user() {
        let review = TokenReview {
            status: Some(authn::TokenReviewStatus {
                authenticated: Some(true),
                user: Some(authn::UserInfo {
                    username: Some("system:serviceaccount:ns:sa".into()),
                    uid: Some("u1".into()),
                    groups: Some(vec!["system:serviceaccounts".into()]),
                    extra: Some([("k".to_string(), vec!["v".to_string()])].into()),
                }),
                ..Default::default()
            }),
            ..TokenReview::default()
        };
        let s = token_review_status(review);
        assert!(s.authenticated && s.error.is_empty());
        assert_eq!((s.user.name.as_str(), s.user.uid.as_str()), ("system:serviceaccount:ns:sa", "u1"));
        assert_eq!(s.user.extra["k"], ["v"]);
        let refused = token_review_status(TokenReview {
            status: Some(authn::TokenReviewStatus { error: Some("invalid bearer token".into()), ..Default::default() }),
            ..TokenReview::default()
        });
        assert_eq!((refused.authenticated, refused.error.as_str()), (false, "invalid bearer token"));
    }
}
