//! Image pull credentials from a pod's pull secrets, found the way upstream's kubelet (v1.34)
//! finds them:
//!
//! - `pkg/credentialprovider/secrets/secrets.go` (`MakeDockerKeyring`): which secrets are read;
//! - `pkg/credentialprovider/config.go` (`DockerConfigJSON`, `DockerConfig`,
//!   `DockerConfigEntry.UnmarshalJSON`, `decodeDockerConfigFieldAuth`): how they are decoded,
//!   with Go's `encoding/json` field matching, `null` and type-error wording (`go_json`) and
//!   `encoding/base64` semantics and error texts;
//! - `pkg/credentialprovider/keyring.go` (`BasicDockerKeyring.Add`, `Lookup`,
//!   `isDefaultRegistryMatch`, `ParseSchemelessURL`, `SplitURL`, `URLsMatchStr`, `URLsMatch`):
//!   how the keyring is indexed and matched, with Go's `net/url`, `net.SplitHostPort` and
//!   `path/filepath.Match` semantics;
//! - `pkg/util/parsers/parsers.go` (`ParseImageName`, i.e. `github.com/distribution/reference`
//!   normalisation): the repository the lookup is made for;
//! - `pkg/kubelet/kuberuntime/kuberuntime_image.go` (`PullImage`): every credential is tried in
//!   order and the failures are joined by `k8s.io/apimachinery/pkg/util/errors.NewAggregate`.
//!
//! The node's own docker config files decode here too ([`node_config_json`], [`node_dockercfg`]);
//! [`super::node_credentials`] finds and caches them. Credential provider plugins are not
//! modelled. Everything here is pure: no IO, no async, no panics on any input.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

/// `v1.SecretTypeDockerConfigJson`.
const TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// `v1.DockerConfigJsonKey`.
const KEY_DOCKER_CONFIG_JSON: &str = ".dockerconfigjson";
/// `v1.SecretTypeDockercfg`.
const TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
/// `v1.DockerConfigKey`.
const KEY_DOCKERCFG: &str = ".dockercfg";
/// The key whose credentials serve Docker Hub images no other key matches (upstream's
/// `defaultRegistryHost`; `https://index.docker.io/v1/` is indexed under it).
const DEFAULT_REGISTRY_HOST: &[u8] = b"index.docker.io";
/// Go's `utf8.RuneError`.
const REPLACEMENT: char = '\u{FFFD}';

/// One credential, as the kubelet passes it to the runtime (CRI `AuthConfig`).
///
/// Upstream's `BasicDockerKeyring.Add` (`pkg/credentialprovider/keyring.go`) fills only the
/// username and password (and an email the CRI has no field for): a credential from a pull
/// secret sends no `auth`, server address or tokens, whatever the secret holds.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl Credential {
    /// The CRI `AuthConfig`, as `PullImage` in `pkg/kubelet/kuberuntime/kuberuntime_image.go`
    /// builds it: the username and password, every other field empty.
    pub fn to_cri(&self) -> k8s_cri::v1::AuthConfig {
        k8s_cri::v1::AuthConfig { username: self.username.clone(), password: self.password.clone(), ..Default::default() }
    }
}

/// The keyring built from a pod's pull secrets: upstream's `BasicDockerKeyring`
/// (`pkg/credentialprovider/keyring.go`).
///
/// Keys are the entries' hosts plus paths (scheme, query, fragment and user info dropped, a
/// `/v1/` or `/v2/` path prefix treated as the bare host), kept unique and in reverse byte order
/// so that a more specific key is tried first; each key holds its credentials in the order they
/// were added (secret order, then document order within a secret — upstream iterates a Go map
/// there, so its order within one secret is unspecified).
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    index: Vec<Vec<u8>>,
    creds: BTreeMap<Vec<u8>, Vec<Credential>>,
}

/// Builds the keyring from a pod's pull secrets as `MakeDockerKeyring`
/// (`pkg/credentialprovider/secrets/secrets.go`) does: a secret of type
/// `kubernetes.io/dockerconfigjson` contributes the `auths` of its non-empty `.dockerconfigjson`,
/// one of type `kubernetes.io/dockercfg` the map in its non-empty `.dockercfg`; other types,
/// missing keys and empty values are ignored. The first secret that does not decode ends it:
/// serde_json's text for invalid JSON, else upstream's (Go's type error for a value of the wrong
/// type, the `auth` field's base64 error or `unable to parse auth field, must be formatted as
/// base64(username:password)`).
pub fn keyring(secrets: &[Secret]) -> Result<Keyring, String> {
    let mut ring = Keyring::default();
    for secret in secrets {
        let kind = secret.type_.as_deref().unwrap_or_default();
        let value = |key: &str| secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.as_slice()).filter(|b| !b.is_empty());
        let config = if kind == TYPE_DOCKER_CONFIG_JSON
            && let Some(bytes) = value(KEY_DOCKER_CONFIG_JSON)
        {
            decode_docker_config_json(bytes)?
        } else if kind == TYPE_DOCKERCFG
            && let Some(bytes) = value(KEY_DOCKERCFG)
        {
            decode_dockercfg(bytes)?
        } else {
            continue;
        };
        ring.add(config);
    }
    Ok(ring)
}

/// The keyring of a node's `config.json` (`readDockerConfigJSONFileFromBytes`): its `auths`.
pub fn node_config_json(bytes: &[u8]) -> Result<Keyring, String> {
    let mut ring = Keyring::default();
    ring.add(decode_docker_config_json(bytes)?);
    Ok(ring)
}

/// The keyring of a node's legacy `.dockercfg` (`ReadDockerConfigFileFromBytes`): the map itself.
pub fn node_dockercfg(bytes: &[u8]) -> Result<Keyring, String> {
    let mut ring = Keyring::default();
    ring.add(decode_dockercfg(bytes)?);
    Ok(ring)
}

impl Keyring {
    /// The credentials for a repository (as [`repo_to_pull`] gives it), most specific key first,
    /// as `BasicDockerKeyring.Lookup` (`pkg/credentialprovider/keyring.go`): every key that
    /// `URLsMatchStr` matches contributes its credentials; when none does and the repository is
    /// a Docker Hub one (`isDefaultRegistryMatch`), the credentials under `index.docker.io`.
    pub fn lookup(&self, repo: &str) -> Vec<Credential> {
        let image = repo.as_bytes();
        let mut found = Vec::new();
        for key in &self.index {
            if urls_match_str(key, image)
                && let Some(creds) = self.creds.get(key)
            {
                found.extend(creds.iter().cloned());
            }
        }
        if found.is_empty() && is_default_registry_match(image) {
            return self.creds.get(DEFAULT_REGISTRY_HOST).cloned().unwrap_or_default();
        }
        found
    }

    /// Whether the secrets gave no credential at all.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Indexes one decoded config as `BasicDockerKeyring.Add`: an entry whose name does not parse
    /// as a URL (after `https://` is put before a name without `http://` or `https://`) is skipped.
    fn add(&mut self, config: Vec<(String, Entry)>) {
        for (location, entry) in config {
            let value = if location.starts_with("https://") || location.starts_with("http://") {
                location.into_bytes()
            } else {
                format!("https://{location}").into_bytes()
            };
            let Some(url) = parse_url(&value) else { continue };
            let mut path = url.path.as_slice();
            if path.starts_with(b"/v2/") || path.starts_with(b"/v1/") {
                path = &path[3..];
            }
            let mut key = url.host;
            if !path.is_empty() && path != b"/" {
                key.extend_from_slice(path);
            }
            let credential = Credential { username: entry.username, password: entry.password };
            self.creds.entry(key.clone()).or_default().push(credential);
            self.index.push(key);
        }
        self.index.sort_unstable();
        self.index.dedup();
        self.index.reverse();
    }
}

/// The repository the kubelet looks credentials up for: `ParseImageName`'s first result
/// (`pkg/util/parsers/parsers.go`), i.e. `reference.ParseNormalizedNamed(image).Name()` of
/// `github.com/distribution/reference`: the domain is the first component when it contains `.`
/// or `:`, is `localhost` or has an upper-case letter, else `docker.io` (`index.docker.io` is
/// also made `docker.io`); a Docker Hub name without `/` gets `library/`; tag and digest are
/// dropped. `busybox` → `docker.io/library/busybox`, `user/app:1` → `docker.io/user/app`,
/// `a.io:5000/x@sha256:…` → `a.io:5000/x`.
///
/// The name is not validated: kubelet rejects a malformed reference (`InvalidImageName`) before
/// any lookup, so the result for one is only a best effort.
pub fn repo_to_pull(image: &str) -> String {
    let (domain, remainder) = split_docker_domain(image);
    let full = format!("{domain}/{remainder}");
    let name = full.split('@').next().unwrap_or_default();
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].find(':') {
        Some(colon) => name[..last + colon].to_string(),
        None => name.to_string(),
    }
}

/// `splitDockerDomain` of `github.com/distribution/reference` (`normalize.go`).
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return ("docker.io", format!("library/{name}"));
    };
    let (domain, remote) = if first == "localhost" || first.contains(['.', ':']) || first.to_lowercase() != first {
        (if first == "index.docker.io" { "docker.io" } else { first }, rest.to_string())
    } else {
        ("docker.io", name.to_string())
    };
    if domain == "docker.io" && !remote.contains('/') {
        return (domain, format!("library/{remote}"));
    }
    (domain, remote)
}

/// The error of several failed pulls, as `utilerrors.NewAggregate(errs).Error()`
/// (`staging/src/k8s.io/apimachinery/pkg/util/errors/errors.go`) prints it: one error is its
/// own text; several are deduplicated by text (first occurrence kept) and, when more than one
/// text remains, joined by `, ` inside `[` `]`. No error gives the empty string (upstream's
/// aggregate is then nil).
pub fn aggregate(errors: &[String]) -> String {
    if let [one] = errors {
        return one.clone();
    }
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Matching (`pkg/credentialprovider/keyring.go`).

/// `isDefaultRegistryMatch`: whether an image pulls from Docker Hub by the look of its name.
fn is_default_registry_match(image: &[u8]) -> bool {
    let Some(slash) = image.iter().position(|&b| b == b'/') else {
        return !image.is_empty();
    };
    let first = &image[..slash];
    if first.is_empty() {
        return false;
    }
    if first == b"docker.io" || first == b"index.docker.io" {
        return true;
    }
    !first.iter().any(|&b| b == b'.' || b == b':')
}

/// `URLsMatchStr` + `URLsMatch`: both sides parsed with `https://` put before them; ports must
/// be equal, the hosts must have as many `.`-separated labels, the key's path must be a byte
/// prefix of the target's, and every key label must `filepath.Match` its target label. A parse
/// error or a malformed pattern is a non-match (upstream's `Lookup` ignores the error).
fn urls_match_str(glob: &[u8], target: &[u8]) -> bool {
    let (Some(glob), Some(target)) = (parse_schemeless_url(glob), parse_schemeless_url(target)) else {
        return false;
    };
    let (glob_labels, glob_port) = split_url(&glob.host);
    let (target_labels, target_port) = split_url(&target.host);
    if glob_port != target_port || glob_labels.len() != target_labels.len() || !target.path.starts_with(&glob.path) {
        return false;
    }
    glob_labels.iter().zip(&target_labels).all(|(g, t)| filepath_match(g, t) == Ok(true))
}

/// `ParseSchemelessURL`.
fn parse_schemeless_url(s: &[u8]) -> Option<ParsedUrl> {
    let mut raw = b"https://".to_vec();
    raw.extend_from_slice(s);
    parse_url(&raw)
}

/// `SplitURL`: the host's `.`-separated labels and its port (none when `net.SplitHostPort`
/// fails).
fn split_url(host: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let (name, port) = split_host_port(host).unwrap_or((host, b""));
    (name.split(|&b| b == b'.').collect(), port)
}

/// `net.SplitHostPort`, `None` for its errors.
fn split_host_port(hostport: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = hostport.iter().rposition(|&b| b == b':')?;
    let (host, after_open, after_close) = if hostport.first() == Some(&b'[') {
        let end = hostport.iter().position(|&b| b == b']')?;
        if end + 1 != colon {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(&b':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[after_open..].contains(&b'[') || hostport[after_close..].contains(&b']') {
        return None;
    }
    Some((host, &hostport[colon + 1..]))
}

/// `path/filepath.Match` on Linux (separator `/`, `\` escapes): `Err` is `ErrBadPattern`.
fn filepath_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, ()> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let (left, ok) = match_chunk(chunk, name)?;
        if ok && (left.is_empty() || !pattern.is_empty()) {
            name = left;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (left, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok && (left.is_empty() || !pattern.is_empty()) {
                    name = left;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// `filepath.scanChunk`: leading stars, then the chunk up to the next star outside a class.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// `filepath.matchChunk`: the rest of `s` and whether the chunk matched its start; the whole
/// chunk is checked for well-formedness even after a mismatch.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<(&'a [u8], bool), ()> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (ch, n) = decode_rune(s);
                    r = u32::from(ch);
                    s = &s[n..];
                }
                let (matched, rest) = match_class(&chunk[1..], r)?;
                chunk = rest;
                if !matched {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s.first() == Some(&b'/') {
                        failed = true;
                    }
                    s = &s[decode_rune(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                }
                let Some(&literal) = chunk.first() else { return Err(()) };
                if !failed {
                    if s.first() != Some(&literal) {
                        failed = true;
                    }
                    s = s.get(1..).unwrap_or_default();
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { (&[][..], false) } else { (s, true) })
}

/// A character class after its `[`: whether `r` is in it (negation applied) and the chunk after
/// its `]`.
fn match_class(mut chunk: &[u8], r: u32) -> Result<(bool, &[u8]), ()> {
    let negated = chunk.first() == Some(&b'^');
    if negated {
        chunk = &chunk[1..];
    }
    let mut matched = false;
    let mut ranges = 0;
    loop {
        if ranges > 0
            && let [b']', rest @ ..] = chunk
        {
            return Ok((matched != negated, rest));
        }
        let (lo, rest) = get_esc(chunk)?;
        chunk = rest;
        let mut hi = lo;
        if let [b'-', rest @ ..] = chunk {
            (hi, chunk) = get_esc(rest)?;
        }
        if lo <= r && r <= hi {
            matched = true;
        }
        ranges += 1;
    }
}

/// `filepath.getEsc`: one possibly escaped rune of a class, which must not end the pattern.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), ()> {
    let chunk = match chunk {
        [] | [b'\\'] | [b'-' | b']', ..] => return Err(()),
        [b'\\', rest @ ..] => rest,
        _ => chunk,
    };
    let (r, n) = decode_rune(chunk);
    let rest = &chunk[n..];
    if (r == REPLACEMENT && n == 1) || rest.is_empty() {
        return Err(());
    }
    Ok((u32::from(r), rest))
}

/// `utf8.DecodeRune`: the first character of `b` and its length; an invalid byte is
/// [`REPLACEMENT`] of length 1, an empty slice [`REPLACEMENT`] of length 0.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let Some(&first) = b.first() else { return (REPLACEMENT, 0) };
    let len = match first {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (REPLACEMENT, 1),
    };
    match b.get(..len).and_then(|s| std::str::from_utf8(s).ok()).and_then(|s| s.chars().next()) {
        Some(c) => (c, len),
        None => (REPLACEMENT, 1),
    }
}

// ---------------------------------------------------------------------------------------------
// URLs and decoding.

/// The parts of a key or image URL the keyring uses.
struct ParsedUrl {
    host: Vec<u8>,
    path: Vec<u8>,
}

/// The host and path of `scheme://[userinfo@]host[:port][/path][?query][#fragment]`, as Go's
/// `url.Parse` gives `URL.Host` and `URL.Path` for the names a docker config holds (the path
/// %-decoded). `None` for a name without `//` after its scheme, with a control character, with
/// a malformed `%` escape, a host byte Go refuses or a port that is not digits.
fn parse_url(raw: &[u8]) -> Option<ParsedUrl> {
    if raw.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let end = raw.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(raw.len());
    let url = &raw[..end];
    let scheme_end = url.iter().position(|&b| b == b':')?;
    let after = url[scheme_end + 1..].strip_prefix(b"//")?;
    let (authority, path) = after.split_at(after.iter().position(|&b| b == b'/').unwrap_or(after.len()));
    let host = &authority[authority.iter().rposition(|&b| b == b'@').map_or(0, |i| i + 1)..];
    let port_ok = match (host.first(), host.iter().rposition(|&b| b == b':')) {
        (Some(b'['), _) => true,
        (_, Some(colon)) => host[colon + 1..].iter().all(u8::is_ascii_digit),
        (_, None) => true,
    };
    // Go refuses an ASCII byte a host may not hold (`shouldEscape(c, encodeHost)`), `^` too.
    let host_byte = |c: &u8| *c >= 0x80 || c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(c);
    if !port_ok || !host.iter().all(host_byte) {
        return None;
    }
    Some(ParsedUrl { host: host.to_vec(), path: percent_decode(path)? })
}

/// `%XX` decoded; `None` for a malformed escape.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        let hex = |j: usize| s.get(j).and_then(|&b| (b as char).to_digit(16));
        out.push(u8::try_from(hex(i + 1)? << 4 | hex(i + 2)?).ok()?);
        i += 3;
    }
    Some(out)
}

/// A `DockerConfigEntry` decoded: its username and password, `auth` applied.
#[derive(Default)]
struct Entry {
    username: String,
    password: String,
}

/// A `.dockerconfigjson` value: its `auths` (upstream's `DockerConfigJSON`).
fn decode_docker_config_json(data: &[u8]) -> Result<Vec<(String, Entry)>, String> {
    entries(go_json::docker_config_json(data)?)
}

/// A `.dockercfg` value: the map itself.
fn decode_dockercfg(data: &[u8]) -> Result<Vec<(String, Entry)>, String> {
    entries(go_json::dockercfg(data)?)
}

/// Each entry with `auth` applied: a non-empty `auth` replaces username and password
/// (`DockerConfigEntry.UnmarshalJSON`).
fn entries(config: BTreeMap<String, go_json::RawEntry>) -> Result<Vec<(String, Entry)>, String> {
    config
        .into_iter()
        .map(|(location, raw)| {
            let entry = if raw.auth.is_empty() { Entry { username: raw.username, password: raw.password } } else { decode_auth(&raw.auth)? };
            Ok((location, entry))
        })
        .collect()
}

/// `decodeDockerConfigFieldAuth`: base64 (padded when the trimmed value ends in `=`, else
/// unpadded) of `username:password`, with upstream's error texts.
fn decode_auth(field: &str) -> Result<Entry, String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let engine = if field.trim().ends_with('=') { STANDARD } else { STANDARD_NO_PAD };
    let decoded = engine.decode(field).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            // Go points at the lone last symbol.
            base64::DecodeError::InvalidLength(len) => len.saturating_sub(1),
            base64::DecodeError::InvalidPadding => field.len(),
        };
        format!("illegal base64 data at input byte {at}")
    })?;
    let text = String::from_utf8_lossy(&decoded);
    match text.split_once(':') {
        Some((username, password)) => Ok(Entry { username: username.to_string(), password: password.to_string() }),
        None => Err("unable to parse auth field, must be formatted as base64(username:password)".into()),
    }
}

mod go_json;

#[cfg(test)]
mod tests;
