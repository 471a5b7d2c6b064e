//! Image references (`[host[:port]/]path[:tag][@digest]`) and the distribution spec's grammar of
//! repository names and tags.
//!
//! Parsing normalises as the Docker tools do: a first path component is a registry host when it
//! holds a `.` or `:`, is `localhost`, or has an uppercase letter; without one the host is
//! `docker.io` (also for `index.docker.io`), where a single-component path gets `library/`
//! prepended. A reference with neither tag nor digest gets the tag `latest`.

use crate::digest::{DigestError, parse_sha256};
use std::fmt;

/// The registry host of references that name none.
pub const DEFAULT_HOST: &str = "docker.io";
/// The tag of references that name neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name the spec allows (including slashes).
pub const MAX_REPOSITORY_LEN: usize = 255;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Empty, or holding whitespace or control characters.
    #[error("reference is empty or holds whitespace")]
    Empty,
    /// The registry host part is not a host name (with optional port).
    #[error("invalid registry host {0:?}")]
    InvalidHost(String),
    /// The path does not match the repository name grammar.
    #[error("invalid repository name {0:?} (lowercase components [a-z0-9] joined by '.', '_', '__' or '-', at most 255 bytes)")]
    InvalidRepository(String),
    /// The tag does not match `[A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}`.
    #[error("invalid tag {0:?}")]
    InvalidTag(String),
    /// The `@digest` part is not a sha256 digest.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageReference {
    /// The registry host, with port if any (`registry.k8s.io`, `docker.io`, `localhost:5000`).
    pub host: String,
    /// The repository: the path without the host (`e2e-test-images/agnhost`, `library/busybox`).
    pub repository: String,
    /// The tag, if any (always some when `digest` is none).
    pub tag: Option<String>,
    /// The `sha256:…` digest, if the reference pins one.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses and normalises `s` (see the module documentation).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                parse_sha256(d)?;
                (rest, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag.filter(|t| !is_valid_tag(t)) {
            return Err(ReferenceError::InvalidTag(t.into()));
        }
        let (host, path) = split_host(name);
        if !is_valid_host(host) {
            return Err(ReferenceError::InvalidHost(host.into()));
        }
        let host = if host == "index.docker.io" { DEFAULT_HOST } else { host };
        let repository = if host == DEFAULT_HOST && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
        if !is_valid_repository(&repository) {
            return Err(ReferenceError::InvalidRepository(path.into()));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(ImageReference { host: host.to_string(), repository, tag, digest })
    }
}

impl fmt::Display for ImageReference {
    /// The full normalised form: `host/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Splits `name` into (host, path); the host is [`DEFAULT_HOST`] when the first component is none.
fn split_host(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, path)
        }
        _ => (DEFAULT_HOST, name),
    }
}

fn is_valid_host(host: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, tail)) = rest.split_once(']') else { return false };
        let v6_ok = !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        return v6_ok && (tail.is_empty() || tail.strip_prefix(':').is_some_and(port_ok));
    }
    let (name, port) = match host.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let label_ok = |l: &str| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    !name.is_empty() && name.split('.').all(label_ok) && port.is_none_or(port_ok)
}

/// Whether `name` is a repository name the distribution spec allows:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
pub fn is_valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_REPOSITORY_LEN && name.split('/').all(is_valid_component)
}

fn is_valid_component(c: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(&bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        match &c[sep_start..i] {
            "." | "_" | "__" => {}
            s if s.bytes().all(|b| b == b'-') => {}
            _ => return false,
        }
    }
}

/// Whether `tag` matches `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok && tag.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageReference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (r.host, r.repository, r.tag, r.digest)
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn references_are_split_and_normalised() {
        let d = crate::digest::sha256_digest(b"x");
        let cases = [
            ("registry.k8s.io/e2e-test-images/agnhost:2.52", ("registry.k8s.io", "e2e-test-images/agnhost", some("2.52"), None)),
            ("nodekit.local/workload:1.0", ("nodekit.local", "workload", some("1.0"), None)),
            ("busybox:latest", ("docker.io", "library/busybox", some("latest"), None)),
            ("busybox", ("docker.io", "library/busybox", some("latest"), None)),
            ("docker.io/busybox:1", ("docker.io", "library/busybox", some("1"), None)),
            ("index.docker.io/library/busybox:1", ("docker.io", "library/busybox", some("1"), None)),
            ("quay.io/busybox:1", ("quay.io", "busybox", some("1"), None)),
            ("user/app:v2", ("docker.io", "user/app", some("v2"), None)),
            ("localhost/app", ("localhost", "app", some("latest"), None)),
            ("localhost:5000/a/b/c:t_1", ("localhost:5000", "a/b/c", some("t_1"), None)),
            ("[::1]:5000/app:x", ("[::1]:5000", "app", some("x"), None)),
            ("registry.k8s.io/pause:3.10", ("registry.k8s.io", "pause", some("3.10"), None)),
            ("a__b/c--d.e:T", ("docker.io", "a__b/c--d.e", some("T"), None)),
        ];
        for (input, (host, repo, tag, digest)) in cases {
            assert_eq!(parts(input), (host.to_string(), repo.to_string(), tag, digest), "{input}");
        }
        assert_eq!(parts(&format!("busybox@{d}")), ("docker.io".into(), "library/busybox".into(), None, Some(d.clone())));
        assert_eq!(parts(&format!("x.io/a:1@{d}")), ("x.io".into(), "a".into(), some("1"), Some(d.clone())));
    }

    #[test]
    fn display_is_the_full_normalised_form() {
        let d = crate::digest::sha256_digest(b"x");
        assert_eq!(ImageReference::parse("busybox").unwrap().to_string(), "docker.io/library/busybox:latest");
        let full = format!("registry.k8s.io/e2e-test-images/agnhost:2.52@{d}");
        assert_eq!(ImageReference::parse(&full).unwrap().to_string(), full);
        assert_eq!(ImageReference::parse(&format!("a.b/c@{d}")).unwrap().to_string(), format!("a.b/c@{d}"));
    }

    #[test]
    fn bad_references_are_refused() {
        use ReferenceError as E;
        type Check = fn(&E) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, E::Empty)),
            ("a b", |e| matches!(e, E::Empty)),
            ("Busybox", |e| matches!(e, E::InvalidRepository(_))),
            ("x.io/Foo:1", |e| matches!(e, E::InvalidRepository(_))),
            ("x.io/a//b", |e| matches!(e, E::InvalidRepository(_))),
            ("x.io/a-:1", |e| matches!(e, E::InvalidRepository(_))),
            ("x.io/a._b", |e| matches!(e, E::InvalidRepository(_))),
            ("x.io/a___b", |e| matches!(e, E::InvalidRepository(_))),
            ("x.io/a:", |e| matches!(e, E::InvalidTag(_))),
            ("x.io/a:.x", |e| matches!(e, E::InvalidTag(_))),
            ("x.io/a:b/c", |e| matches!(e, E::InvalidRepository(_))),
            ("-x.io/a", |e| matches!(e, E::InvalidHost(_))),
            ("x.io:port/a", |e| matches!(e, E::InvalidHost(_))),
            ("a@sha256:zz", |e| matches!(e, E::InvalidDigest(_))),
        ];
        for (input, want) in cases {
            let err = ImageReference::parse(input).expect_err(input);
            assert!(want(&err), "{input}: {err:?}");
        }
        assert!(!is_valid_tag(&"a".repeat(129)));
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_repository(&"a".repeat(256)));
        assert!(is_valid_repository(&"a".repeat(255)));
    }
}
