//! Basic authentication of protected repositories, as a registry with htpasswd authentication
//! answers: a request without the repository's credentials (none, another scheme, a wrong user
//! or password) is `401` with `WWW-Authenticate: Basic realm="…"` and the `UNAUTHORIZED` error.

use super::response::{self, Code, Response};
use crate::store::Credentials;
use base64::Engine;
use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use serde_json::json;

/// The realm of the challenge.
pub(crate) const REALM: &str = "nodekit registry";

/// Whether `headers` carry `Authorization: Basic <base64(user:password)>` with `expected`.
pub(crate) fn presented(headers: &HeaderMap, expected: &Credentials) -> bool {
    headers.get_all(AUTHORIZATION).iter().any(|v| {
        let Some((scheme, token)) = v.to_str().ok().and_then(|v| v.trim().split_once(' ')) else { return false };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else { return false };
        let Ok(text) = String::from_utf8(decoded) else { return false };
        text.split_once(':').is_some_and(|(user, password)| user == expected.username && password == expected.password)
    })
}

/// The `401` for the repository `name`.
pub(crate) fn challenge(name: &str) -> Response {
    let detail = json!([{ "Type": "repository", "Class": "", "Name": name, "Action": "pull" }]);
    let mut r = response::error(StatusCode::UNAUTHORIZED, Code::Unauthorized, detail);
    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{REALM}\"")) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials { username: "user".into(), password: "pa:ss".into() }
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_the_exact_basic_credentials_pass() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(presented(&with(&format!("Basic {}", b64("user:pa:ss"))), &creds()));
        assert!(presented(&with(&format!("basic {}", b64("user:pa:ss"))), &creds()), "the scheme is case-insensitive");
        for refused in [format!("Basic {}", b64("user:wrong")), format!("Basic {}", b64("other:pa:ss")), format!("Bearer {}", b64("user:pa:ss")), "Basic !!".into(), "Basic".into()] {
            assert!(!presented(&with(&refused), &creds()), "{refused}");
        }
        assert!(!presented(&HeaderMap::new(), &creds()));
    }

    #[test]
    fn the_challenge_is_basic_with_the_unauthorized_error() {
        let r = challenge("private/app");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Basic realm=\"nodekit registry\"");
    }
}
