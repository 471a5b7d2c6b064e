//! Token authentication of API requests (kube-apiserver's authentication filter with
//! `--token-auth-file`): a request whose connection presented no client certificate and that
//! carries `Authorization: Bearer <token>` acts as the token's user; a token nobody knows is
//! upstream's 401 `Unauthorized` (no fallback to anonymous, as upstream's fail-on-error union).
//! A verified client certificate comes first, as in upstream's authenticator order.

use http::{Request, Response};
use hyper::body::Incoming;

use super::{Body, value_response};
use crate::audit::UserInfo;
use crate::auth::forbidden::unauthorized_status;
use crate::auth::token_file::bearer_token;
use crate::auth::user::ANONYMOUS;
use crate::server::State;

/// Sets the request's user from its bearer token when the server has a token file; the 401
/// answer when the token is not known.
pub fn authenticate(state: &State, req: &mut Request<Incoming>) -> Result<(), Box<Response<Body>>> {
    let Some(tokens) = &state.config.token_auth else { return Ok(()) };
    let by_certificate = req.extensions().get::<UserInfo>().is_some_and(|u| u.username != ANONYMOUS);
    if by_certificate {
        return Ok(());
    }
    let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(token) = header.and_then(bearer_token) else { return Ok(()) };
    match tokens.authenticate(token) {
        Some(user) => {
            req.extensions_mut().insert(user.to_user_info());
            // Upstream drops the credential once it has been used.
            req.headers_mut().remove(http::header::AUTHORIZATION);
            Ok(())
        }
        None => Err(Box::new(value_response(401, &unauthorized_status()))),
    }
}
