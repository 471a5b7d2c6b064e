//! Responses: content with its digest, JSON documents, and the distribution spec's errors
//! (`{"errors":[{"code":…,"message":…,"detail":…}]}`, `Content-Type: application/json`).

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::StatusCode;
use http_body_util::Full;

/// The body of every response.
pub(crate) type Body = Full<Bytes>;
/// A response of the registry.
pub(crate) type Response = http::Response<Body>;

/// The digest header of manifests and blobs.
pub(crate) const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// The API version header of every response.
pub(crate) const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
/// Its value.
pub(crate) const API_VERSION_VALUE: HeaderValue = HeaderValue::from_static("registry/2.0");
/// The media type of JSON documents.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The error codes this registry answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// A blob the repository does not have.
    BlobUnknown,
    /// A digest that is malformed or of an unsupported algorithm.
    DigestInvalid,
    /// A manifest the repository does not have.
    ManifestUnknown,
    /// A repository name outside the grammar.
    NameInvalid,
    /// A repository the registry does not have.
    NameUnknown,
    /// An operation the registry does not offer.
    Unsupported,
    /// A pagination `n` that is not a number.
    PaginationNumberInvalid,
    /// A `Range` no byte of the blob satisfies.
    RangeInvalid,
    /// A request without the credentials its repository requires.
    Unauthorized,
}

impl Code {
    /// The `code` of the error body.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::Unsupported => "UNSUPPORTED",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
        }
    }

    /// The default `message` of the error body.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Code::BlobUnknown => "blob unknown to registry",
            Code::DigestInvalid => "provided digest did not match uploaded content",
            Code::ManifestUnknown => "manifest unknown",
            Code::NameInvalid => "invalid repository name",
            Code::NameUnknown => "repository name not known to registry",
            Code::Unsupported => "the operation is unsupported",
            Code::PaginationNumberInvalid => "invalid number of results requested",
            Code::RangeInvalid => "requested range not satisfiable",
            Code::Unauthorized => "authentication required",
        }
    }
}

/// `bytes` with status `status`, `Content-Type` and an exact `Content-Length`.
pub(crate) fn bytes(status: StatusCode, content_type: HeaderValue, bytes: Bytes) -> Response {
    let mut response = http::Response::new(Full::new(bytes.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    response
}

/// Manifest or blob content, with `Docker-Content-Digest: digest`.
pub(crate) fn content(status: StatusCode, content_type: &str, digest: &str, body: Bytes) -> Response {
    let content_type = HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = bytes(status, content_type, body);
    if let Ok(d) = HeaderValue::from_str(digest) {
        response.headers_mut().insert(DOCKER_CONTENT_DIGEST, d);
    }
    response
}

/// A JSON document.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    bytes(status, JSON, Bytes::from(value.to_string()))
}

/// An error with `code`'s default message.
pub(crate) fn error(status: StatusCode, code: Code, detail: serde_json::Value) -> Response {
    error_message(status, code, code.message(), detail)
}

/// An error with its own message.
pub(crate) fn error_message(status: StatusCode, code: Code, message: &str, detail: serde_json::Value) -> Response {
    let body = serde_json::json!({ "errors": [{ "code": code.as_str(), "message": message, "detail": detail }] });
    json(status, &body)
}
