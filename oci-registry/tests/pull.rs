//! Pulling from a served registry over loopback, as a runtime does: manifests by tag and digest,
//! every blob verified, HEAD, Range, listings, and the spec's errors.

mod common;

use common::*;
use http::{Method, StatusCode};
use oci_registry::digest::sha256_digest;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

#[tokio::test]
async fn version_check_answers_on_both_paths() {
    let f = fixture();
    let s = start(store(&f), None).await;
    for path in ["/v2/", "/v2"] {
        let r = get(s.addr, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json(), serde_json::json!({}));
    }
}

/// Fetches the manifest `digest` of `repo` (`ns` the query, as containerd sends to mirrors) and
/// every blob it reaches, verifying each against its digest; returns the number of blobs fetched.
async fn pull_by_digest(addr: SocketAddr, repo: &str, ns: &str, digest: &str) -> usize {
    let r = request(addr, Method::GET, &format!("/v2/{repo}/manifests/{digest}{ns}"), &[("accept", RUNTIME_ACCEPT)]).await;
    assert_eq!(r.status, StatusCode::OK, "{repo}@{digest}: {r:?}");
    assert_eq!(sha256_digest(&r.body), digest);
    assert_eq!(r.header("docker-content-digest"), Some(digest));
    assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
    let doc = r.json();
    assert_eq!(doc["mediaType"].as_str(), r.header("content-type"));
    if let Some(children) = doc["manifests"].as_array() {
        let mut n = 0;
        for child in children {
            n += Box::pin(pull_by_digest(addr, repo, ns, child["digest"].as_str().unwrap())).await;
        }
        return n;
    }
    let mut descriptors: Vec<&Value> = vec![&doc["config"]];
    descriptors.extend(doc["layers"].as_array().unwrap());
    for d in &descriptors {
        let digest = d["digest"].as_str().unwrap();
        let b = get(addr, &format!("/v2/{repo}/blobs/{digest}{ns}")).await;
        assert_eq!(b.status, StatusCode::OK, "{repo} blob {digest}");
        assert_eq!(sha256_digest(&b.body), digest);
        assert_eq!(b.body.len() as u64, d["size"].as_u64().unwrap());
        assert_eq!(b.header("docker-content-digest"), Some(digest));
        assert_eq!(b.header("content-type"), Some("application/octet-stream"));
        assert_eq!(b.header("content-length"), Some(b.body.len().to_string().as_str()));
    }
    descriptors.len()
}

#[tokio::test]
async fn every_image_pulls_by_tag_and_by_digest_with_verified_blobs() {
    let f = fixture();
    let s = start(store(&f), None).await;
    let images = s.store.images();
    assert_eq!(images.len(), 7);
    assert_eq!(s.store.registry_hosts(), ["docker.io", "nodekit.local", "other.io", "registry.k8s.io"]);
    for image in &images {
        let tag = image.tag.as_deref().unwrap();
        let ns = format!("?ns={}", image.host);
        let path = format!("/v2/{}/manifests/{tag}", image.repository);
        let r = request(s.addr, Method::GET, &format!("{path}{ns}"), &[("accept", RUNTIME_ACCEPT)]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some(image.media_type.as_str()));
        assert_eq!(r.header("docker-content-digest"), Some(image.digest.as_str()));
        assert_eq!(sha256_digest(&r.body), image.digest, "{path}");
        assert!(pull_by_digest(s.addr, &image.repository, &ns, &image.digest).await >= 2);
        assert!(s.store.stats().path(&path) >= 1);
        assert!(s.store.stats().digest(&image.digest) >= 2);
    }
    let busybox = images.iter().find(|i| i.repository == "library/busybox").unwrap();
    assert_eq!((busybox.reference.as_str(), busybox.media_type.as_str()), ("docker.io/library/busybox:latest", DOCKER_MANIFEST));
    let big = sha256_digest(&f.big_layer);
    // Shared by three workload tags and agnhost, fetched once per image.
    assert_eq!(s.store.stats().digest(&big), 4);
    assert_eq!(s.store.stats().path(&format!("/v2/workload/blobs/{big}")), 3);
}

#[tokio::test]
async fn head_answers_headers_without_body() {
    let f = fixture();
    let s = start(store(&f), None).await;
    let get_reply = get(s.addr, "/v2/workload/manifests/1.0").await;
    let head = request(s.addr, Method::HEAD, "/v2/workload/manifests/1.0", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some(get_reply.body.len().to_string().as_str()));
    assert_eq!(head.header("docker-content-digest"), get_reply.header("docker-content-digest"));
    assert_eq!(head.header("content-type"), Some(OCI_MANIFEST));
    let digest = sha256_digest(&f.big_layer);
    let head = request(s.addr, Method::HEAD, &format!("/v2/workload/blobs/{digest}"), &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some(f.big_layer.len().to_string().as_str()));
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    let missing = request(s.addr, Method::HEAD, "/v2/workload/manifests/9.9", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.is_empty());
    // HEAD does not count as served.
    assert_eq!(s.store.stats().digest(&digest), 0);
    assert_eq!(s.store.stats().path("/v2/workload/manifests/1.0"), 1);
}

#[tokio::test]
async fn range_requests_get_partial_content() {
    let f = fixture();
    let s = start(store(&f), None).await;
    let digest = sha256_digest(&f.big_layer);
    let path = format!("/v2/e2e-test-images/agnhost/blobs/{digest}");
    let len = f.big_layer.len();
    let cases = [("bytes=100-1123", 100, 1123), ("bytes=60000-", 60000, len - 1), ("bytes=-10", len - 10, len - 1), ("bytes=0-999999", 0, len - 1)];
    for (range, start, end) in cases {
        let r = request(s.addr, Method::GET, &path, &[("range", range)]).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(&r.body[..], &f.big_layer[start..=end], "{range}");
        assert_eq!(r.header("content-range"), Some(format!("bytes {start}-{end}/{len}").as_str()));
        assert_eq!(r.header("content-length"), Some((end - start + 1).to_string().as_str()));
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    }
    let r = request(s.addr, Method::GET, &path, &[("range", &format!("bytes={len}-"))]).await;
    r.assert_error(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID");
    assert_eq!(r.header("content-range"), Some(format!("bytes */{len}").as_str()));
    let r = request(s.addr, Method::GET, &path, &[("range", "bytes=0-1,5-6")]).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, len));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
}

#[tokio::test]
async fn tags_and_catalog_are_sorted_and_paginated() {
    let f = fixture();
    let s = start(store(&f), None).await;
    let r = get(s.addr, "/v2/workload/tags/list").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::json!({ "name": "workload", "tags": ["1.0", "1.1", "2.0"] }));
    assert!(r.header("link").is_none());
    let r = get(s.addr, "/v2/workload/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["1.0", "1.1"]));
    let link = r.header("link").unwrap();
    assert_eq!(link, "</v2/workload/tags/list?n=2&last=1.1>; rel=\"next\"");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let r = get(s.addr, next).await;
    assert_eq!(r.json()["tags"], serde_json::json!(["2.0"]));
    assert!(r.header("link").is_none());
    assert_eq!(get(s.addr, "/v2/workload/tags/list?last=1.0").await.json()["tags"], serde_json::json!(["1.1", "2.0"]));
    assert_eq!(get(s.addr, "/v2/workload/tags/list?n=0").await.json()["tags"], serde_json::json!([]));
    assert_eq!(get(s.addr, "/v2/workload/tags/list?n=5&last=2.0").await.json()["tags"], serde_json::json!([]));
    get(s.addr, "/v2/workload/tags/list?n=x").await.assert_error(StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID");
    get(s.addr, "/v2/nothing/tags/list").await.assert_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");

    let all = [
        "docker.io/library/busybox",
        "e2e-test-images/agnhost",
        "library/busybox",
        "multi",
        "nodekit.local/multi",
        "nodekit.local/workload",
        "other.io/workload",
        "registry.k8s.io/e2e-test-images/agnhost",
        "workload",
    ];
    assert_eq!(get(s.addr, "/v2/_catalog").await.json(), serde_json::json!({ "repositories": all }));
    let r = get(s.addr, "/v2/_catalog?n=3").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(all[..3]));
    assert_eq!(r.header("link"), Some("</v2/_catalog?n=3&last=library%2Fbusybox>; rel=\"next\""));
    let r = get(s.addr, "/v2/_catalog?n=1&last=e2e-test-images%2Fagnhost").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(["library/busybox"]));
    assert_eq!(r.header("link"), Some("</v2/_catalog?n=1&last=library%2Fbusybox>; rel=\"next\""));
}

#[tokio::test]
async fn errors_have_the_spec_codes() {
    let f = fixture();
    let s = start(store(&f), None).await;
    let absent = sha256_digest(b"not in the registry");
    let agnhost_only = sha256_digest(&f.agnhost_layer);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("/v2/workload/manifests/9.9".into(), StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        (format!("/v2/workload/manifests/{absent}"), StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        (format!("/v2/workload/manifests/{}", sha256_digest(&f.big_layer)), StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        ("/v2/workload/manifests/sha256:abc".into(), StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        ("/v2/nothing/manifests/1.0".into(), StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        ("/v2/Upper/manifests/1.0".into(), StatusCode::BAD_REQUEST, "NAME_INVALID"),
        (format!("/v2/workload/blobs/{absent}"), StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        (format!("/v2/workload/blobs/{agnhost_only}"), StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        ("/v2/workload/blobs/sha256:xyz".into(), StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        ("/v2/workload/blobs/md5:abc".into(), StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        (format!("/v2/nothing/blobs/{absent}"), StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        ("/v2/workload/blobs/uploads/".into(), StatusCode::NOT_FOUND, "UNSUPPORTED"),
        ("/v1/_ping".into(), StatusCode::NOT_FOUND, "UNSUPPORTED"),
        ("/".into(), StatusCode::NOT_FOUND, "UNSUPPORTED"),
    ];
    for (path, status, code) in &cases {
        let r = get(s.addr, path).await;
        assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"), "{path}");
        r.assert_error(*status, code);
    }
    assert_eq!(get(s.addr, &format!("/v2/e2e-test-images/agnhost/blobs/{agnhost_only}")).await.status, StatusCode::OK);
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for path in ["/v2/workload/blobs/uploads/", "/v2/workload/manifests/1.0", "/v2/workload/blobs/x"] {
            let r = request(s.addr, method.clone(), path, &[]).await;
            r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
            assert_eq!(r.json()["errors"][0]["message"], "the registry is read-only");
            assert_eq!(r.header("allow"), Some("GET, HEAD"));
        }
    }
    request(s.addr, Method::OPTIONS, "/v2/", &[]).await.assert_error(StatusCode::NOT_FOUND, "UNSUPPORTED");
    // Nothing was changed by the refused requests.
    assert_eq!(get(s.addr, "/v2/workload/manifests/1.0").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_index_is_served_whole_or_as_the_native_child() {
    let f = fixture();
    let s = start(store(&f), None).await;
    let r = request(s.addr, Method::GET, "/v2/multi/manifests/1", &[("accept", RUNTIME_ACCEPT)]).await;
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    assert_eq!(r.json()["manifests"].as_array().map(Vec::len), Some(2));
    // Without Accept, as stored.
    assert_eq!(get(s.addr, "/v2/multi/manifests/1").await.header("content-type"), Some(OCI_INDEX));
    // A client that reads image manifests only gets this host's.
    let r = request(s.addr, Method::GET, "/v2/multi/manifests/1", &[("accept", OCI_MANIFEST)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(&r.body[..], &f.native_child[..]);
    assert_eq!(r.header("docker-content-digest"), Some(sha256_digest(&f.native_child).as_str()));
    // A client accepting only another type still gets the stored manifest.
    let r = request(s.addr, Method::GET, "/v2/workload/manifests/1.0", &[("accept", DOCKER_MANIFEST)]).await;
    assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
}

#[tokio::test]
async fn hosts_sharing_a_path_are_told_apart_by_ns_or_by_name() {
    let f = fixture();
    let s = start(store(&f), None).await;
    let digest_of = |reference: &str| s.store.images().into_iter().find(|i| i.reference == reference).unwrap().digest;
    let (own, other) = (digest_of("nodekit.local/workload:1.0"), digest_of("other.io/workload:1.0"));
    assert_ne!(own, other);
    let served = |r: Reply| {
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        r.header("docker-content-digest").unwrap().to_string()
    };
    assert_eq!(served(get(s.addr, "/v2/workload/manifests/1.0?ns=other.io").await), other);
    assert_eq!(served(get(s.addr, "/v2/workload/manifests/1.0?ns=nodekit.local").await), own);
    assert_eq!(served(get(s.addr, "/v2/other.io/workload/manifests/1.0").await), other);
    assert_eq!(served(get(s.addr, "/v2/nodekit.local/workload/manifests/1.0").await), own);
    // containerd with a mirror whose path names the host sends both.
    assert_eq!(served(get(s.addr, "/v2/other.io/workload/manifests/1.0?ns=other.io").await), other);
    assert_eq!(served(get(s.addr, "/v2/nodekit.local/workload/manifests/1.0?ns=nodekit.local").await), own);
    // Without a host: the image loaded first.
    assert_eq!(served(get(s.addr, "/v2/workload/manifests/1.0").await), own);
    assert_eq!(served(get(s.addr, "/v2/library/busybox/manifests/latest?ns=index.docker.io").await), digest_of("docker.io/library/busybox:latest"));
    get(s.addr, "/v2/workload/manifests/1.0?ns=nowhere.io").await.assert_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
    get(s.addr, "/v2/nowhere.io/workload/manifests/1.0").await.assert_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
    let layer = sha256_digest(&f.other_layer);
    assert_eq!(get(s.addr, &format!("/v2/workload/blobs/{layer}?ns=other.io")).await.status, StatusCode::OK);
    assert_eq!(get(s.addr, &format!("/v2/other.io/workload/blobs/{layer}")).await.status, StatusCode::OK);
    get(s.addr, &format!("/v2/workload/blobs/{layer}?ns=nodekit.local")).await.assert_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
    let tags = get(s.addr, "/v2/nodekit.local/workload/tags/list").await.json();
    assert_eq!(tags, serde_json::json!({ "name": "nodekit.local/workload", "tags": ["1.0", "1.1", "2.0"] }));
    assert_eq!(get(s.addr, "/v2/workload/tags/list?ns=other.io").await.json()["tags"], serde_json::json!(["1.0"]));
}

#[tokio::test]
async fn cancelling_stops_the_server_and_its_connections() {
    let f = fixture();
    let s = start(store(&f), None).await;
    // An idle keep-alive connection must not keep the server alive.
    let idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(idle)).await.unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/v2/").header("host", "localhost").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), StatusCode::OK);
    s.cancel.cancel();
    let served = tokio::time::timeout(Duration::from_secs(3), s.task).await.expect("serve returns once cancelled");
    assert!(served.unwrap().is_ok());
    let closed = tokio::time::timeout(Duration::from_secs(3), conn).await.expect("connection closed");
    assert!(closed.unwrap().is_ok());
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err());
}

#[tokio::test]
async fn a_protected_repository_answers_only_its_credentials() {
    use base64::Engine;
    let f = fixture();
    let mut store = store(&f);
    store.require_credentials("library/busybox", oci_registry::Credentials { username: "puller".into(), password: "s3cret".into() });
    let s = start(store, None).await;
    let basic = |user_password: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password));
    let busybox = s.store.images().into_iter().find(|i| i.reference == "docker.io/library/busybox:latest").unwrap();
    let good = basic("puller:s3cret");
    let manifest = request(s.addr, Method::GET, &format!("/v2/library/busybox/manifests/{}", busybox.digest), &[("authorization", good.as_str()), ("accept", RUNTIME_ACCEPT)]).await;
    assert_eq!(manifest.status, StatusCode::OK, "{manifest:?}");
    let layer = manifest.json()["layers"][0]["digest"].as_str().unwrap().to_string();
    let paths = [
        "/v2/library/busybox/manifests/latest?ns=docker.io".to_string(),
        "/v2/docker.io/library/busybox/manifests/latest".to_string(),
        format!("/v2/library/busybox/manifests/{}", busybox.digest),
        "/v2/library/busybox/tags/list".to_string(),
        format!("/v2/library/busybox/blobs/{layer}?ns=docker.io"),
    ];
    for path in &paths {
        for method in [Method::GET, Method::HEAD] {
            for auth in [None, Some(basic("puller:wrong")), Some(basic("other:s3cret")), Some("Bearer s3cret".to_string())] {
                let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let r = request(s.addr, method.clone(), path, &headers).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}: {r:?}");
                assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"nodekit registry\""), "{path}");
                if method == Method::GET {
                    r.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
                }
            }
        }
        let r = request(s.addr, Method::GET, path, &[("authorization", good.as_str()), ("accept", RUNTIME_ACCEPT)]).await;
        assert!(r.status.is_success(), "{path} with the credentials: {r:?}");
    }
    // The catalog names it only to its credentials.
    let listed = |r: Reply| r.json()["repositories"].as_array().unwrap().iter().any(|n| n.as_str().is_some_and(|n| n.ends_with("library/busybox")));
    assert!(!listed(get(s.addr, "/v2/_catalog").await));
    assert!(listed(request(s.addr, Method::GET, "/v2/_catalog", &[("authorization", good.as_str())]).await));
    // The other repositories stay open, and the version check too.
    assert_eq!(get(s.addr, "/v2/nodekit.local/workload/manifests/1.0").await.status, StatusCode::OK);
    assert_eq!(get(s.addr, "/v2/").await.status, StatusCode::OK);
}
