//! Small HTTP helpers: Go's `http.Error` / `http.NotFound` answers and header tests.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::Full;

pub(crate) type Response = http::Response<Full<Bytes>>;

/// A response with `body` as is (no content type), as x/net/websocket writes its refusals.
pub(crate) fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut resp = http::Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp
}

/// Go's `http.Error`: the message and a newline, as UTF-8 text, with `nosniff`.
pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    let mut resp = plain(status, format!("{msg}\n"));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// Go's `http.NotFound`, upstream's answer to an unknown or expired token.
pub(crate) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Go's `Header.Get`: the first value, or "".
pub(crate) fn first<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Every value of `name` that is text.
pub(crate) fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok())
}

/// `httpstream.IsUpgradeRequest`: some `Connection` value mentions upgrade.
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    values(headers, "connection").any(|v| v.to_ascii_lowercase().contains("upgrade"))
}

/// `wsstream.IsWebSocketRequest`.
pub(crate) fn is_websocket_request(headers: &HeaderMap) -> bool {
    first(headers, "upgrade").eq_ignore_ascii_case("websocket") && is_upgrade_request(headers)
}

/// How many headers Go's `len(req.Header)` counts: distinct names, `Host` taken out.
pub(crate) fn go_header_count(headers: &HeaderMap) -> usize {
    headers.keys().filter(|k| *k != header::HOST).count()
}

/// Roughly Go's `%#v` of an `http.Header`, for upstream's "missing upgrade headers" message.
pub(crate) fn go_header_dump(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers.keys().filter(|k| *k != header::HOST).map(|k| k.as_str()).collect();
    names.sort_by_key(|n| canonical(n));
    let fields: Vec<String> = names
        .iter()
        .map(|name| {
            let vals: Vec<String> = values(headers, name).map(|v| format!("{v:?}")).collect();
            format!("{:?}:[]string{{{}}}", canonical(name), vals.join(", "))
        })
        .collect();
    format!("http.Header{{{}}}", fields.join(", "))
}

/// Go's canonical MIME header key: `x-stream-protocol-version` → `X-Stream-Protocol-Version`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_dump_looks_like_go() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("x"));
        h.insert("x-stream-protocol-version", HeaderValue::from_static("v4.channel.k8s.io"));
        h.append("accept", HeaderValue::from_static("*/*"));
        assert_eq!(
            go_header_dump(&h),
            r#"http.Header{"Accept":[]string{"*/*"}, "X-Stream-Protocol-Version":[]string{"v4.channel.k8s.io"}}"#
        );
        assert_eq!(go_header_count(&h), 2);
    }

    #[test]
    fn websocket_detection() {
        let mut h = HeaderMap::new();
        h.insert("upgrade", HeaderValue::from_static("WebSocket"));
        assert!(!is_websocket_request(&h));
        h.insert("connection", HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(is_websocket_request(&h));
    }
}
