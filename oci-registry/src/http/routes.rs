//! The routes of the distribution spec's pull API (and `_catalog`), answered from a [`Store`].
//! HEAD is answered as GET without a body.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET, HEAD /v2/`, `/v2` | 200 `{}` |
//! | `GET, HEAD /v2/<name>/manifests/<tag or digest>` | 200 manifest; 404 `MANIFEST_UNKNOWN` |
//! | `GET, HEAD /v2/<name>/blobs/<digest>` | 200 blob, 206 with `Range`; 404 `BLOB_UNKNOWN`; 416 `RANGE_INVALID` |
//! | `GET, HEAD /v2/<name>/tags/list[?n=&last=]` | 200 `{"name","tags"}` |
//! | `GET, HEAD /v2/_catalog[?n=&last=]` | 200 `{"repositories"}` |
//! | `POST, PUT, PATCH, DELETE` anything | 405 `UNSUPPORTED` |
//! | tags, manifests or blobs of a protected repository without its credentials | 401 `UNAUTHORIZED` |
//!
//! `_catalog` lists a protected repository only to a request with its credentials.
//! | anything else | 404 `UNSUPPORTED` |
//!
//! `<name>` is resolved as [`Store`] describes (with the `ns` query parameter if given).
//! Below `/v2/<name>/`: a name outside the grammar is 400 `NAME_INVALID`, an unknown one 404
//! `NAME_UNKNOWN`; a malformed digest is 400 `DIGEST_INVALID`. Listings are sorted; with `n`
//! they hold at most `n` entries after `last`, and a `Link: <…?n=&last=>; rel="next"` header
//! when more follow. A bad `n` is 400 `PAGINATION_NUMBER_INVALID`.

use super::negotiate;
use super::range::{RangeRequest, parse_range};
use super::response::{self, Code, Response};
use crate::digest::{Algorithm, parse_digest};
use crate::reference::{is_valid_repository, is_valid_tag};
use crate::store::{Repository, Store};
use http::header::{ACCEPT_RANGES, ALLOW, CONTENT_RANGE, HeaderValue, LINK, RANGE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;

/// A request as the routes see it.
#[derive(Debug)]
pub(crate) struct RequestInfo<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path (no query).
    pub path: &'a str,
    /// The query, if any.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
}

/// Where a path leads.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Unknown,
}

fn parse_route(path: &str) -> Route<'_> {
    if path == "/v2" || path == "/v2/" {
        return Route::Base;
    }
    let Some(rest) = path.strip_prefix("/v2/") else { return Route::Unknown };
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags(name);
    }
    let Some((prefix, last)) = rest.rsplit_once('/') else { return Route::Unknown };
    match prefix.rsplit_once('/') {
        Some((name, "manifests")) if !last.is_empty() => Route::Manifest(name, last),
        Some((name, "blobs")) if !last.is_empty() => Route::Blob(name, last),
        _ => Route::Unknown,
    }
}

/// The response to `req`. HEAD is answered as GET; the caller drops the body.
pub(crate) fn handle(store: &Store, req: &RequestInfo<'_>) -> Response {
    match *req.method {
        Method::GET | Method::HEAD => {}
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            let detail = json!({ "method": req.method.as_str() });
            let mut r = response::error_message(StatusCode::METHOD_NOT_ALLOWED, Code::Unsupported, "the registry is read-only", detail);
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        _ => return not_found(req),
    }
    let ns = form_urlencoded::parse(req.query.unwrap_or_default().as_bytes()).find(|(k, _)| k == "ns").map(|(_, v)| v.into_owned());
    let in_repository = |name: &str, f: &dyn Fn(&Repository) -> Response| match store.required_credentials(name, ns.as_deref()) {
        Some(c) if !super::auth::presented(req.headers, c) => super::auth::challenge(name),
        _ => with_repository(store, name, ns.as_deref(), f),
    };
    match parse_route(req.path) {
        Route::Base => response::json(StatusCode::OK, &json!({})),
        Route::Catalog => catalog(store, req),
        Route::Tags(name) => in_repository(name, &|r| tags(r, name, req)),
        Route::Manifest(name, reference) => in_repository(name, &|r| manifest(store, r, reference, req)),
        Route::Blob(name, digest) => match parse_digest(digest) {
            Err(e) => response::error(StatusCode::BAD_REQUEST, Code::DigestInvalid, json!({ "digest": digest, "reason": e.to_string() })),
            Ok(_) => in_repository(name, &|r| blob(store, r, digest, req)),
        },
        Route::Unknown => not_found(req),
    }
}

fn not_found(req: &RequestInfo<'_>) -> Response {
    response::error(StatusCode::NOT_FOUND, Code::Unsupported, json!({ "method": req.method.as_str(), "path": req.path }))
}

fn name_invalid(name: &str) -> Response {
    response::error(StatusCode::BAD_REQUEST, Code::NameInvalid, json!({ "name": name }))
}

/// `f` on the repository `name` (of the registry host `ns`, if given), or the error for a name
/// outside the grammar or unknown.
fn with_repository(store: &Store, name: &str, ns: Option<&str>, f: &dyn Fn(&Repository) -> Response) -> Response {
    if !is_valid_repository(name) {
        return name_invalid(name);
    }
    match store.repository(name, ns) {
        Some(r) => f(r),
        None => response::error(StatusCode::NOT_FOUND, Code::NameUnknown, json!({ "name": name })),
    }
}

fn manifest(store: &Store, repository: &Repository, reference: &str, req: &RequestInfo<'_>) -> Response {
    let unknown = || response::error(StatusCode::NOT_FOUND, Code::ManifestUnknown, json!({ "reference": reference }));
    let digest = if reference.contains(':') {
        match parse_digest(reference) {
            Err(e) => {
                return response::error(StatusCode::BAD_REQUEST, Code::DigestInvalid, json!({ "digest": reference, "reason": e.to_string() }));
            }
            Ok(Algorithm::Sha512) => return unknown(),
            Ok(Algorithm::Sha256) if repository.reaches(reference) => reference,
            Ok(Algorithm::Sha256) => return unknown(),
        }
    } else if !is_valid_tag(reference) {
        return unknown();
    } else {
        match repository.tag(reference) {
            Some(d) => d,
            None => return unknown(),
        }
    };
    let Some(stored) = store.manifest(digest) else { return unknown() };
    let accepted = negotiate::accepted(req.headers);
    let (digest, stored) = negotiate::choose(store, repository, digest.to_string(), stored, &accepted);
    if req.method == Method::GET {
        store.stats().record(req.path, &digest);
    }
    response::content(StatusCode::OK, &stored.media_type, &digest, stored.bytes)
}

fn blob(store: &Store, repository: &Repository, digest: &str, req: &RequestInfo<'_>) -> Response {
    let Some(bytes) = store.blob(digest).filter(|_| repository.reaches(digest)) else {
        return response::error(StatusCode::NOT_FOUND, Code::BlobUnknown, json!({ "digest": digest }));
    };
    let len = bytes.len() as u64;
    let range = req.headers.get(RANGE).and_then(|v| v.to_str().ok());
    let (status, body, content_range) = match parse_range(range, len) {
        RangeRequest::Full => (StatusCode::OK, bytes, None),
        RangeRequest::Partial { start, end } => {
            // Both bounds are below `len`, itself a `usize`.
            let slice = bytes.slice(usize::try_from(start).unwrap_or(0)..=usize::try_from(end).unwrap_or(0));
            (StatusCode::PARTIAL_CONTENT, slice, Some(format!("bytes {start}-{end}/{len}")))
        }
        RangeRequest::Unsatisfiable => {
            let detail = json!({ "digest": digest, "range": range, "size": len });
            let mut r = response::error(StatusCode::RANGE_NOT_SATISFIABLE, Code::RangeInvalid, detail);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return r;
        }
    };
    if req.method == Method::GET {
        store.stats().record(req.path, digest);
    }
    let mut r = response::content(status, "application/octet-stream", digest, body);
    r.headers_mut().insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(CONTENT_RANGE, v);
    }
    r
}

/// The `n` and `last` of a listing request.
#[derive(Debug, Default)]
struct Page {
    n: Option<usize>,
    last: Option<String>,
}

/// The `n` and `last` of `query`; the value of `n` if it is not a number.
fn page(query: Option<&str>) -> Result<Page, String> {
    let mut page = Page::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "n" => match value.parse::<usize>() {
                Ok(n) => page.n = Some(n),
                Err(_) => return Err(value.into_owned()),
            },
            "last" => page.last = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(page)
}

/// The page of the sorted `items` that `query` asks for, and the `Link` to the next page; the
/// value of `n` if it is not a number.
fn paginate<'a>(items: impl Iterator<Item = &'a str>, path: &str, query: Option<&str>) -> Result<(Vec<String>, Option<HeaderValue>), String> {
    let page = page(query)?;
    let mut after = items.filter(|i| page.last.as_deref().is_none_or(|l| *i > l)).peekable();
    let Some(n) = page.n else { return Ok((after.map(String::from).collect(), None)) };
    let listed: Vec<String> = after.by_ref().take(n).map(String::from).collect();
    let link = match (after.peek(), listed.last()) {
        (Some(_), Some(last)) => {
            let next = form_urlencoded::Serializer::new(String::new()).append_pair("n", &n.to_string()).append_pair("last", last).finish();
            HeaderValue::from_str(&format!("<{path}?{next}>; rel=\"next\"")).ok()
        }
        _ => None,
    };
    Ok((listed, link))
}

fn bad_number(n: &str) -> Response {
    response::error(StatusCode::BAD_REQUEST, Code::PaginationNumberInvalid, json!({ "n": n }))
}

fn listing(body: serde_json::Value, link: Option<HeaderValue>) -> Response {
    let mut r = response::json(StatusCode::OK, &body);
    if let Some(l) = link {
        r.headers_mut().insert(LINK, l);
    }
    r
}

fn tags(repository: &Repository, name: &str, req: &RequestInfo<'_>) -> Response {
    match paginate(repository.tags(), req.path, req.query) {
        Ok((tags, link)) => listing(json!({ "name": name, "tags": tags }), link),
        Err(n) => bad_number(&n),
    }
}

fn catalog(store: &Store, req: &RequestInfo<'_>) -> Response {
    // A protected repository is listed only to a request with its credentials.
    let mut names = store.repositories();
    names.retain(|n| store.required_credentials(n, None).is_none_or(|c| super::auth::presented(req.headers, c)));
    match paginate(names.iter().map(String::as_str), req.path, req.query) {
        Ok((repositories, link)) => listing(json!({ "repositories": repositories }), link),
        Err(n) => bad_number(&n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_routed() {
        let d = "sha256:abc";
        assert_eq!(parse_route("/v2/"), Route::Base);
        assert_eq!(parse_route("/v2"), Route::Base);
        assert_eq!(parse_route("/v2/_catalog"), Route::Catalog);
        assert_eq!(parse_route("/v2/a/b/tags/list"), Route::Tags("a/b"));
        assert_eq!(parse_route("/v2/a/manifests/1.0"), Route::Manifest("a", "1.0"));
        assert_eq!(parse_route("/v2/a/manifests/b/manifests/x"), Route::Manifest("a/manifests/b", "x"));
        assert_eq!(parse_route(&format!("/v2/e2e/agnhost/blobs/{d}")), Route::Blob("e2e/agnhost", d));
        for unknown in ["/", "/v2/a", "/v2/a/manifests/", "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/x", "/v1/a/manifests/x", "/v2x"] {
            assert_eq!(parse_route(unknown), Route::Unknown, "{unknown}");
        }
    }
}
