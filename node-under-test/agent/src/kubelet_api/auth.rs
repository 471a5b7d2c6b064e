//! Authentication of kubelet API callers, in upstream's order (k8s.io/apiserver
//! `authenticatorfactory.DelegatingAuthenticatorConfig`, as cmd/kubelet/app/auth.go sets it
//! up): a verified x509 client certificate (user = CN, groups = O), then a bearer token
//! reviewed by TokenReview when `authentication.webhook.enabled` (`Authorization: Bearer`, or
//! for a WebSocket the `base64url.bearer.authorization.k8s.io.` subprotocol), then
//! `system:anonymous` (group `system:unauthenticated`) when `authentication.anonymous.enabled`.
//! Every authenticated user also gets the group `system:authenticated`. A token that does not
//! authenticate is a 401, never anonymous (upstream's `NewFailOnError`).

use std::collections::BTreeMap;

use http::HeaderMap;
use http::header::{AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};

use super::webhook::{TokenAuthenticator, TokenError};

/// The anonymous user.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of the anonymous user.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The WebSocket subprotocol that carries a bearer token (base64url, no padding).
pub const BEARER_PROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// Who is calling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo { name: ANONYMOUS.into(), groups: vec![UNAUTHENTICATED.into()], ..UserInfo::default() }
    }

    /// The user of a verified client certificate (DER); `None` without a common name, so the
    /// next authenticator is asked (upstream's `CommonNameUserConversion`).
    pub fn from_certificate(der: &[u8]) -> Option<UserInfo> {
        let subject = super::x509::subject(der)?;
        (!subject.common_name.is_empty()).then(|| UserInfo { name: subject.common_name, groups: subject.organizations, ..UserInfo::default() })
    }

    /// Upstream's `AuthenticatedGroupAdder`.
    fn with_authenticated_group(mut self) -> UserInfo {
        let marked = self.groups.iter().any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED);
        if self.name != ANONYMOUS && !marked {
            self.groups.push(AUTHENTICATED.into());
        }
        self
    }
}

/// Why a request is not authenticated (each is a 401 `Unauthorized`).
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("no credentials, and anonymous requests are disabled")]
    NoCredentials,
    #[error("invalid bearer token")]
    InvalidBearerToken,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("multiple base64.bearer.authorization tokens specified")]
    MultipleProtocolTokens,
    #[error("invalid base64.bearer.authorization token encoding")]
    ProtocolTokenEncoding,
    #[error("invalid base64.bearer.authorization token")]
    ProtocolTokenNotUtf8,
    #[error("missing additional subprotocol")]
    MissingSubprotocol,
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.split(' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Upstream's `wsstream.IsWebSocketRequest`: `Connection: upgrade` and `Upgrade: websocket`.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let upgrade = value(CONNECTION).split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    upgrade && value(UPGRADE).trim().eq_ignore_ascii_case("websocket")
}

/// Base64url without padding (Go's `RawURLEncoding`).
fn decode_base64url(s: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|c| sextet(*c).map(u32::from)).collect::<Option<_>>()?;
        let bits = v.iter().fold(0u32, |acc, x| (acc << 6) | x) << (6 * (4 - v.len()));
        let bytes = bits.to_be_bytes();
        // Leftover bits are dropped, as Go's (non-strict) decoder does.
        out.extend_from_slice(&bytes[1..v.len()]);
    }
    Some(out)
}

/// The token of a WebSocket's bearer subprotocol and the other subprotocols (upstream's
/// `websocket.ProtocolAuthenticator`); `None` when there is no such subprotocol.
fn protocol_token(headers: &HeaderMap) -> Result<Option<(String, Vec<String>)>, AuthnError> {
    let mut token = None;
    let mut others = Vec::new();
    let values = headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok());
    for protocol in values.flat_map(|v| v.split(',')).map(str::trim) {
        let Some(encoded) = protocol.strip_prefix(BEARER_PROTOCOL_PREFIX) else {
            others.push(protocol.to_string());
            continue;
        };
        if token.is_some() {
            return Err(AuthnError::MultipleProtocolTokens);
        }
        let decoded = decode_base64url(encoded).ok_or(AuthnError::ProtocolTokenEncoding)?;
        token = Some(String::from_utf8(decoded).map_err(|_| AuthnError::ProtocolTokenNotUtf8)?);
    }
    match token.filter(|t| !t.is_empty()) {
        Some(_) if others.is_empty() => Err(AuthnError::MissingSubprotocol),
        Some(t) => Ok(Some((t, others))),
        None => Ok(None),
    }
}

/// The authenticators `authentication` configures (the certificate one runs at the TLS
/// handshake: its user is handed in).
pub struct Authenticator {
    /// Bearer tokens, when `authentication.webhook.enabled`.
    pub tokens: Option<TokenAuthenticator>,
    /// `authentication.anonymous.enabled`.
    pub anonymous: bool,
}

impl Authenticator {
    async fn token_user(tokens: &TokenAuthenticator, token: &str) -> Result<UserInfo, AuthnError> {
        tokens.authenticate(token).await?.ok_or(AuthnError::InvalidBearerToken)
    }

    /// The caller of a request whose connection presented `certificate_user` (verified). The
    /// credential that authenticated is removed from `headers`, as upstream does.
    pub async fn authenticate(&self, certificate_user: Option<&UserInfo>, headers: &mut HeaderMap) -> Result<UserInfo, AuthnError> {
        if let Some(user) = certificate_user {
            return Ok(user.clone().with_authenticated_group());
        }
        let mut failure = None;
        if let Some(tokens) = &self.tokens {
            if let Some(token) = bearer_token(headers).map(str::to_string) {
                match Self::token_user(tokens, &token).await {
                    Ok(user) => {
                        headers.remove(AUTHORIZATION);
                        return Ok(user.with_authenticated_group());
                    }
                    Err(e) => failure = Some(e),
                }
            }
            let from_protocol = if is_websocket(headers) { protocol_token(headers) } else { Ok(None) };
            match from_protocol {
                Ok(None) => {}
                Ok(Some((token, others))) => match Self::token_user(tokens, &token).await {
                    Ok(user) => {
                        if let Ok(v) = http::HeaderValue::from_str(&others.join(",")) {
                            headers.insert(SEC_WEBSOCKET_PROTOCOL, v);
                        }
                        return Ok(user.with_authenticated_group());
                    }
                    Err(e) => failure = failure.or(Some(e)),
                },
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None if self.anonymous => Ok(UserInfo::anonymous()),
            None => Err(AuthnError::NoCredentials),
        }
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
