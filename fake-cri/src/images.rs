//! The image side: references, ids and digests derived from the catalog, presence tracking,
//! and the PullImage error for images no catalog holds.
use crate::config::{Catalog, ImageEntry};
use k8s_cri::v1 as cri;
use sha2::{Digest, Sha256};

/// Normalises a reference the way containerd does for short names:
/// `busybox` → `docker.io/library/busybox:latest`, adds `:latest` when there is no tag.
pub fn normalize(reference: &str) -> String {
    let r = reference.trim();
    if r.starts_with("sha256:") {
        return r.to_string();
    }
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_domain = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

/// The image id (`sha256:…`), stable for an entry.
pub fn image_id(e: &ImageEntry) -> String {
    let mut h = Sha256::new();
    h.update(b"config:");
    h.update(e.reference.as_bytes());
    h.update(serde_json::to_vec(&(&e.entrypoint, &e.cmd, &e.env, &e.working_dir)).unwrap_or_default());
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The manifest digest reported in repo digests.
pub fn manifest_digest(e: &ImageEntry) -> String {
    let mut h = Sha256::new();
    h.update(b"manifest:");
    h.update(image_id(e).as_bytes());
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// `name@sha256:…` (the reference without its tag).
pub fn repo_digest(e: &ImageEntry) -> String {
    let name = match e.reference.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => e.reference.as_str(),
    };
    format!("{name}@{}", manifest_digest(e))
}

/// Reported size.
pub fn size(e: &ImageEntry) -> u64 {
    if e.size > 0 {
        e.size
    } else {
        std::fs::metadata(&e.binary).map(|m| m.len()).unwrap_or(0)
    }
}

/// Shortest id prefix taken for an image id (docker's short id).
pub const MIN_ID_PREFIX: usize = 12;

/// The hex an id query names when it is one: `sha256:<hex>` (one `sha256:` only) or bare
/// `<hex>`, of 12 to 64 lowercase hex digits; `None` for anything else (a name reference).
pub fn id_prefix(query: &str) -> Option<&str> {
    let hex = query.strip_prefix("sha256:").unwrap_or(query);
    let ok = (MIN_ID_PREFIX..=64).contains(&hex.len()) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// Whether `query` names `e`: its reference (normalised), its repo digest, its id
/// (`sha256:<64 hex>` or the bare 64 hex) or an id prefix of at least 12 hex digits, bare or
/// after one `sha256:` (containerd / docker semantics).
pub fn matches(e: &ImageEntry, query: &str) -> bool {
    let q = query.trim();
    if q.is_empty() {
        return false;
    }
    let id = image_id(e);
    let id_hex = id.strip_prefix("sha256:").unwrap_or(&id);
    normalize(q) == normalize(&e.reference)
        || q == id
        || id_prefix(q).is_some_and(|hex| id_hex.starts_with(hex))
        || q == repo_digest(e)
}

/// The CRI view of an image.
pub fn to_cri(e: &ImageEntry) -> cri::Image {
    cri::Image {
        id: image_id(e),
        repo_tags: vec![e.reference.clone()],
        repo_digests: vec![repo_digest(e)],
        size: size(e),
        uid: Some(cri::Int64Value { value: 0 }),
        username: String::new(),
        spec: Some(cri::ImageSpec { image: image_id(e), ..Default::default() }),
        pinned: e.reference.contains("pause"),
    }
}

/// PullImage's error text for `query` when no catalog entry has it: containerd's wording
/// (kubelet shows it with ErrImagePull), then the images fake-cri has and how to add one.
pub fn not_in_catalog(query: &str, catalog: &Catalog) -> String {
    let r = normalize(query);
    let have = catalog.references().join(", ");
    format!(
        "failed to pull and unpack image {r:?}: failed to resolve reference {r:?}: {r}: not found \
         (fake-cri pulls nothing: it has only the images of its catalog: {have}; to add one, start \
         fake-cri with --catalog FILE, a JSON {{\"images\": [...]}} that replaces the default catalog, \
         so list the images above too, each like {{\"reference\": {r:?}, \"binary\": \"/path/to/workload\", \
         \"entrypoint\": [\"/workload\"], \"cmd\": [\"pause\"]}})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("user/app:1"), "docker.io/user/app:1");
        assert_eq!(normalize("nodekit.local/workload:1.0"), "nodekit.local/workload:1.0");
        assert_eq!(normalize("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(normalize("a.io/x@sha256:ab"), "a.io/x@sha256:ab");
    }

    #[test]
    fn ids_and_matching() {
        let c = crate::config::Catalog::default_for(std::path::Path::new("/bin/true"));
        let (w, p) = (&c.images[0], &c.images[1]);
        assert_ne!(image_id(w), image_id(p));
        assert!(matches(w, "nodekit.local/workload:1.0"));
        assert!(matches(w, &image_id(w)));
        assert!(matches(w, &repo_digest(w)));
        assert!(!matches(w, "nodekit.local/pause:3.10"));
        assert!(repo_digest(w).starts_with("nodekit.local/workload@sha256:"));
    }

    #[test]
    fn id_prefixes_need_twelve_hex_digits_and_one_sha256() {
        let c = crate::config::Catalog::default_for(std::path::Path::new("/bin/true"));
        let w = &c.images[0];
        let id = image_id(w);
        let hex = id.strip_prefix("sha256:").unwrap();
        assert_eq!(hex.len(), 64);
        // Full ids, with or without `sha256:`, and prefixes of 12+ hex digits.
        for q in [id.clone(), hex.to_string(), hex[..12].to_string(), format!("sha256:{}", &hex[..12]), format!(" {} ", &hex[..20])] {
            assert!(matches(w, &q), "{q:?} should match");
        }
        // Nothing but `sha256:`s, short prefixes, doubled `sha256:`, non-hex or too long.
        for q in [
            "sha256:".to_string(),
            "sha256:sha256:".to_string(),
            "sha256:sha256:sha256:".to_string(),
            format!("sha256:{}", &hex[..5]),
            format!("sha256:{}", &hex[..11]),
            hex[..11].to_string(),
            format!("sha256:sha256:{}", &hex[..12]),
            format!("sha256:sha256:{hex}"),
            format!("{hex}0"),
            format!("sha256:{}", &hex[1..13]),
        ] {
            assert!(!matches(w, &q), "{q:?} should not match");
            assert!(!c.images.iter().any(|e| matches(e, &q)), "{q:?} matches some image");
        }
        let upper = hex[..12].to_uppercase();
        assert!(upper == hex[..12] || !matches(w, &upper), "ids are lowercase hex");
        assert_eq!(id_prefix("sha256:0123456789ab"), Some("0123456789ab"));
        assert_eq!(id_prefix("0123456789AB"), None);
        assert_eq!(id_prefix("0123456789ab"), Some("0123456789ab"));
        assert_eq!(id_prefix("sha256:0f1e2"), None);
        assert_eq!(id_prefix("sha256:sha256:0123456789ab"), None);
    }

    #[test]
    fn agnhost_resolves_with_upstreams_entrypoint_and_cmd() {
        let c = crate::config::Catalog::default_for(std::path::Path::new("/bin/true"));
        for reference in ["registry.k8s.io/e2e-test-images/agnhost:2.53", crate::config::AGNHOST_IMAGE] {
            let e = c.images.iter().find(|e| matches(e, reference)).expect(reference);
            assert_eq!(e.reference, reference);
            assert_eq!(e.entrypoint, vec!["/agnhost".to_string()]);
            assert_eq!(e.cmd, vec!["pause".to_string()]);
            assert!(repo_digest(e).starts_with("registry.k8s.io/e2e-test-images/agnhost@sha256:"));
        }
        assert!(!c.images.iter().any(|e| matches(e, "registry.k8s.io/e2e-test-images/agnhost:9.99")));
        // Every reference is its own image (pod status imageID tells them apart), the existing
        // ones unchanged by the additions.
        let ids: std::collections::BTreeSet<String> = c.images.iter().map(image_id).collect();
        assert_eq!(ids.len(), c.images.len());
        let digests: std::collections::BTreeSet<String> = c.images.iter().map(repo_digest).collect();
        assert_eq!(digests.len(), c.images.len());
        let pause = c.images.iter().find(|e| e.reference == "registry.k8s.io/pause:3.10").unwrap();
        assert_eq!((pause.entrypoint.clone(), pause.cmd.clone()), (vec!["/pause".to_string()], vec![]));
    }

    #[test]
    fn unknown_images_are_named_with_the_catalog() {
        let c = crate::config::Catalog::default_for(std::path::Path::new("/bin/true"));
        let msg = not_in_catalog("busybox", &c);
        assert!(msg.starts_with(
            "failed to pull and unpack image \"docker.io/library/busybox:latest\": failed to resolve reference \"docker.io/library/busybox:latest\": docker.io/library/busybox:latest: not found"
        ), "{msg}");
        for r in c.references() {
            assert!(msg.contains(r), "{r} missing from {msg}");
        }
        assert!(msg.contains("--catalog FILE"), "{msg}");
    }
}
