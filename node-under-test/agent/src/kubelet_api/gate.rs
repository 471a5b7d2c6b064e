//! The auth filter in front of every kubelet API path, as upstream's `InstallAuthFilter`
//! (pkg/kubelet/server/server.go): authenticate (401 `Unauthorized`), then authorize each of the
//! request's attributes in turn until one is allowed (403 naming every subresource tried; 500
//! `Authorization error (…)` when the authorizer fails).

use std::sync::Arc;

use http::{HeaderMap, Method, Response, StatusCode};

use super::attributes::{self, ResourceAttributes};
use super::auth::{ANONYMOUS, Authenticator, UserInfo};
use super::respond::{Body, text};
use super::webhook::{Authorizer, Backoff, Decision, ReviewClient, TokenAuthenticator, WebhookAuthorizer};
use crate::config::KubeletConfiguration;

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 401: not authenticated.
    Unauthorized,
    /// 403 with upstream's text.
    Forbidden(String),
    /// 500: the authorizer failed.
    AuthorizationError(String),
}

impl Refusal {
    pub fn response(&self) -> Response<Body> {
        match self {
            Refusal::Unauthorized => text(StatusCode::UNAUTHORIZED, attributes::UNAUTHORIZED),
            Refusal::Forbidden(m) => text(StatusCode::FORBIDDEN, m.clone()),
            Refusal::AuthorizationError(m) => text(StatusCode::INTERNAL_SERVER_ERROR, m.clone()),
        }
    }
}

/// Authentication and authorization of the kubelet API.
pub struct Gate {
    authn: Authenticator,
    authz: Authorizer,
    node_name: String,
}

impl Gate {
    pub fn new(authn: Authenticator, authz: Authorizer, node_name: impl Into<String>) -> Gate {
        Gate { authn, authz, node_name: node_name.into() }
    }

    /// The gate `authentication` and `authorization` of `cfg` describe, reviewing through
    /// `reviews` with `backoff` between failed attempts.
    pub fn from_config(cfg: &KubeletConfiguration, node_name: &str, reviews: Arc<dyn ReviewClient>, backoff: Backoff) -> Gate {
        let webhook = &cfg.authentication.webhook;
        let tokens = webhook.enabled.then(|| TokenAuthenticator::new(reviews.clone(), webhook.cache_ttl.0, backoff));
        let anonymous = cfg.authentication.anonymous.enabled || crate::faults::active(crate::faults::Fault::KubeletAnonymous);
        let authz = match cfg.authorization.mode.as_str() {
            "AlwaysAllow" => Authorizer::AlwaysAllow,
            // The configuration's validation admits only AlwaysAllow and Webhook.
            _ => {
                let w = &cfg.authorization.webhook;
                Authorizer::Webhook(WebhookAuthorizer::new(reviews, w.cache_authorized_ttl.0, w.cache_unauthorized_ttl.0, backoff))
            }
        };
        Gate::new(Authenticator { tokens, anonymous }, authz, node_name)
    }

    /// Admits a request for `method` `path` from a connection whose verified client
    /// certificate names `certificate_user`; the caller, or why not.
    pub async fn admit(&self, certificate_user: Option<&UserInfo>, method: &Method, path: &str, headers: &mut HeaderMap) -> Result<UserInfo, Refusal> {
        let user = match self.authn.authenticate(certificate_user, headers).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, %path, "kubelet API request not authenticated");
                return Err(Refusal::Unauthorized);
            }
        };
        if user.name == ANONYMOUS && crate::faults::active(crate::faults::Fault::KubeletAnonymous) {
            return Ok(user);
        }
        let attrs = attributes::request_attributes(method, path, &self.node_name);
        self.authorize(&user, &attrs).await?;
        Ok(user)
    }

    async fn authorize(&self, user: &UserInfo, attrs: &[ResourceAttributes]) -> Result<(), Refusal> {
        for a in attrs {
            match self.authz.authorize(user, a).await {
                Ok(Decision::Allow) => return Ok(()),
                Ok(Decision::Deny | Decision::NoOpinion) => {}
                Err(e) => {
                    tracing::error!(error = %e, user = %user.name, verb = a.verb, subresource = a.subresource, "kubelet API authorization error");
                    return Err(Refusal::AuthorizationError(attributes::authorization_error(&user.name, a)));
                }
            }
        }
        let subresources: Vec<&str> = attrs.iter().map(|a| a.subresource).collect();
        let verb = attrs.first().map_or("", |a| a.verb);
        tracing::debug!(user = %user.name, verb, ?subresources, "kubelet API request forbidden");
        Err(Refusal::Forbidden(attributes::forbidden(&user.name, verb, &subresources)))
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
