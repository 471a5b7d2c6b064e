//! The image side: references, ids and digests derived from the catalog, presence tracking,
//! and the PullImage error for images no catalog holds.
use std::collections::BTreeSet;

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

/// The image id (`sha256:…`), stable for an entry; the entries of one image (`same_image_as`)
/// share it.
pub fn image_id(e: &ImageEntry) -> String {
    let mut h = Sha256::new();
    h.update(b"config:");
    h.update(e.same_image_as.as_deref().unwrap_or(&e.reference).as_bytes());
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

/// The present images, each with the present names that share its id, in catalog order.
pub fn present_images<'a>(catalog: &'a Catalog, present: &BTreeSet<String>) -> Vec<Vec<&'a ImageEntry>> {
    let mut out: Vec<(String, Vec<&ImageEntry>)> = Vec::new();
    for e in catalog.images.iter().filter(|e| present.contains(&e.reference)) {
        let id = image_id(e);
        match out.iter_mut().find(|(i, _)| *i == id) {
            Some((_, names)) => names.push(e),
            None => out.push((id, vec![e])),
        }
    }
    out.into_iter().map(|(_, names)| names).collect()
}

/// The present image `query` names, with all its present names.
pub fn present_image<'a>(catalog: &'a Catalog, present: &BTreeSet<String>, query: &str) -> Option<Vec<&'a ImageEntry>> {
    present_images(catalog, present).into_iter().find(|names| names.iter().any(|e| matches(e, query)))
}

/// The CRI view of one image under its present `names` (not empty): every name a repo tag,
/// one repo digest per repository.
pub fn to_cri(names: &[&ImageEntry]) -> cri::Image {
    let first = names[0];
    let mut repo_digests: Vec<String> = Vec::new();
    for e in names {
        let d = repo_digest(e);
        if !repo_digests.contains(&d) {
            repo_digests.push(d);
        }
    }
    cri::Image {
        id: image_id(first),
        repo_tags: names.iter().map(|e| e.reference.clone()).collect(),
        repo_digests,
        size: size(first),
        uid: Some(cri::Int64Value { value: 0 }),
        username: String::new(),
        spec: Some(cri::ImageSpec { image: image_id(first), ..Default::default() }),
        pinned: names.iter().any(|e| e.reference.contains("pause")),
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

    /// Catches one image under several names reported as several images: the tagged entries
    /// share an id, are listed as one image with each present name as a repo tag and one repo
    /// digest per repository, and an image with no present name is not listed.
    #[test]
    fn names_of_one_image_are_one_image() {
        let c = crate::config::Catalog::default_for(std::path::Path::new("/bin/true"));
        let tagged = |r: &str| c.images.iter().find(|e| e.reference == r).unwrap();
        let ids: Vec<String> = crate::config::TAGGED_IMAGES.iter().map(|r| image_id(tagged(r))).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
        assert_ne!(ids[0], image_id(&c.images[0]), "the tagged image is not the workload image");
        let present: BTreeSet<String> = c.images.iter().map(|e| e.reference.clone()).collect();
        let all = present_images(&c, &present);
        assert_eq!(all.len(), c.images.len() - 3, "four names, one image");
        let img = to_cri(&present_image(&c, &present, crate::config::TAGGED_IMAGES[1]).unwrap());
        assert_eq!(img.id, ids[0]);
        assert_eq!(img.repo_tags, crate::config::TAGGED_IMAGES);
        assert_eq!(img.repo_digests.len(), 2, "{:?}", img.repo_digests);
        assert!(img.repo_digests[1].starts_with("mirror.nodekit.local/test-image-tags@sha256:"), "{:?}", img.repo_digests);
        let some: BTreeSet<String> = [crate::config::TAGGED_IMAGES[2].to_string()].into();
        let img = to_cri(&present_image(&c, &some, &ids[0]).unwrap());
        assert_eq!(img.repo_tags, [crate::config::TAGGED_IMAGES[2]]);
        assert!(present_image(&c, &some, crate::config::TAGGED_IMAGES[0]).is_none(), "a name not present is not found");
    }

    /// Catches a catalog whose `same_image_as` names nothing, chains, or differs in content.
    #[test]
    fn same_image_as_must_name_an_equal_first_name() {
        let mut c = crate::config::Catalog::default_for(std::path::Path::new("/bin/true"));
        assert_eq!(c.validate(), Ok(()));
        let i = c.images.iter().position(|e| e.reference == crate::config::TAGGED_IMAGES[1]).unwrap();
        let j = c.images.iter().position(|e| e.reference == crate::config::TAGGED_IMAGES[2]).unwrap();
        let mut bad = c.clone();
        bad.images[i].same_image_as = Some("nodekit.local/none:1".into());
        assert!(bad.validate().unwrap_err().contains("is not a reference of the catalog"));
        let mut bad = c.clone();
        bad.images[j].same_image_as = Some(crate::config::TAGGED_IMAGES[1].into());
        assert!(bad.validate().unwrap_err().contains("without same_image_as"));
        c.images[i].cmd = vec!["other".into()];
        let err = c.validate().unwrap_err();
        assert!(err.contains(crate::config::TAGGED_IMAGES[1]) && err.contains("must equal"), "{err}");
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
        // ones unchanged by the additions — but the names of the one tagged image.
        let own: Vec<&ImageEntry> = c.images.iter().filter(|e| e.same_image_as.is_none()).collect();
        assert_eq!(own.len(), c.images.len() - 3);
        let ids: std::collections::BTreeSet<String> = c.images.iter().map(image_id).collect();
        assert_eq!(ids.len(), own.len());
        let digests: std::collections::BTreeSet<String> = own.iter().map(|e| repo_digest(e)).collect();
        assert_eq!(digests.len(), own.len());
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
