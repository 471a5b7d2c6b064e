//! Token authentication of API requests (kube-apiserver's authentication filter): a request
//! whose connection presented no client certificate and that carries `Authorization: Bearer
//! <token>` acts as the token's user. The token authenticators are upstream's, in its order:
//! the static token file (`--token-auth-file`, when configured), then ServiceAccount tokens
//! (always on, as upstream's). A token none of them accepts is upstream's 401 `Unauthorized`
//! (no fallback to anonymous, as upstream's fail-on-error union). A verified client
//! certificate comes first, as in upstream's authenticator order.

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Value;

use super::{Body, value_response};
use crate::audit::UserInfo;
use crate::auth::forbidden::unauthorized_status;
use crate::auth::service_account::{Authenticated, TokenGetter};
use crate::auth::token_file::bearer_token;
use crate::auth::user::ANONYMOUS;
use crate::resources;
use crate::server::State;
use crate::store::Store;

/// The reason of a token nobody accepts (upstream's `bearertoken` default error).
pub const INVALID_BEARER_TOKEN: &str = "invalid bearer token";

/// The objects ServiceAccount token validation looks up again, read from the store.
pub struct StoreTokenGetter<'a>(pub &'a Store);

impl TokenGetter for StoreTokenGetter<'_> {
    fn service_account(&self, namespace: &str, name: &str) -> Result<Value, String> {
        let found = self.0.get(resources::SERVICEACCOUNTS, namespace, name).map(|o| o.value.clone());
        found.ok_or_else(|| crate::error::ApiError::not_found("", "serviceaccounts", name).message)
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.0.get(resources::PODS, namespace, name).map(|o| o.value.clone())
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Value> {
        self.0.get(resources::SECRETS, namespace, name).map(|o| o.value.clone())
    }

    fn node(&self, name: &str) -> Option<Value> {
        self.0.get(resources::NODES, "", name).map(|o| o.value.clone())
    }
}

/// Seconds since the epoch, now.
pub fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// kube-apiserver's token authenticators for `audiences` (the API's when `None` or empty):
/// the static token file (valid for the API's audiences only, as upstream's audience-agnostic
/// wrapper makes it), then ServiceAccount tokens. `Err`: upstream's reason text.
pub fn authenticate_token(state: &State, token: &str, audiences: Option<&[String]>) -> Result<Authenticated, String> {
    let api = state.tokens.api_audiences();
    let requested = audiences.filter(|a| !a.is_empty());
    if let Some(user) = state.config.token_auth.as_ref().and_then(|t| t.authenticate(token)) {
        let auds: Vec<String> = requested.map_or_else(|| api.to_vec(), |r| r.iter().filter(|a| api.contains(a)).cloned().collect());
        if !auds.is_empty() {
            return Ok(Authenticated { user, audiences: auds });
        }
    }
    match state.tokens.authenticate(token, requested, &StoreTokenGetter(&state.store), now_unix()) {
        Ok(Some(accepted)) => Ok(accepted),
        Ok(None) => Err(INVALID_BEARER_TOKEN.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sets the request's user from its bearer token; the 401 answer when no authenticator
/// accepts the token.
pub fn authenticate(state: &State, req: &mut Request<Incoming>) -> Result<(), Box<Response<Body>>> {
    let by_certificate = req.extensions().get::<UserInfo>().is_some_and(|u| u.username != ANONYMOUS);
    if by_certificate {
        return Ok(());
    }
    let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(token) = header.and_then(bearer_token) else {
        // No credential at all: anonymous, unless anonymous requests are turned off.
        let anonymous = req.extensions().get::<UserInfo>().is_some_and(|u| u.username == ANONYMOUS);
        if anonymous && !state.config.anonymous_auth {
            return Err(Box::new(value_response(401, &unauthorized_status())));
        }
        return Ok(());
    };
    match authenticate_token(state, token, None) {
        Ok(accepted) => {
            req.extensions_mut().insert(accepted.user.to_user_info());
            // Upstream drops the credential once it has been used.
            req.headers_mut().remove(http::header::AUTHORIZATION);
            Ok(())
        }
        Err(reason) => {
            tracing::debug!("bearer token refused: {reason}");
            Err(Box::new(value_response(401, &unauthorized_status())))
        }
    }
}
