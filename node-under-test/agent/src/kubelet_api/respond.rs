//! Response bodies and the common responses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// The body of every response: whole, or streamed (followed logs).
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A whole body.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A response with `status`, content type `ctype` and `body`.
pub fn with_type(status: StatusCode, ctype: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// A plain-text response (errors are plain text, as upstream writes them).
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = with_type(status, "text/plain; charset=utf-8", full(body));
    r.headers_mut().insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
    r
}

/// A JSON response (200).
pub fn json(body: Vec<u8>) -> Response<Body> {
    with_type(StatusCode::OK, "application/json", full(body))
}

/// A status from a number (500 for an impossible one).
pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// 405 with the Allow header.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// 404 for a path that is not served.
pub fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}
