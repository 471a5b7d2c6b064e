//! The credentials of a PullImage, for catalog images that require them: read from the
//! request's AuthConfig as containerd's CRI plugin reads it (`ParseAuth` in
//! `pkg/cri/server/image_pull.go`), and refused with the error a pull from a registry that
//! answers `401 Unauthorized` ends in.

use crate::config::{ImageEntry, PullCredentials};
use base64::Engine;
use k8s_cri::v1 as cri;

/// The user name and secret a pull presents to `host`, as containerd derives them from the
/// AuthConfig: nothing when its server address names another host; else the user name and
/// password, or an identity token (no user name), or `auth` decoded (`user:password`).
pub fn presented(auth: Option<&cri::AuthConfig>, host: &str) -> Result<Option<(String, String)>, String> {
    let Some(auth) = auth else { return Ok(None) };
    if !auth.server_address.is_empty() {
        let address = auth.server_address.split_once("://").map_or(auth.server_address.as_str(), |(_, rest)| rest);
        let server_host = address.split(['/', '?', '#']).next().unwrap_or_default();
        if server_host != host {
            return Ok(None);
        }
    }
    if !auth.username.is_empty() {
        return Ok(Some((auth.username.clone(), auth.password.clone())));
    }
    if !auth.identity_token.is_empty() {
        return Ok(Some((String::new(), auth.identity_token.clone())));
    }
    if auth.auth.is_empty() {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(auth.auth.as_bytes()).map_err(|e| format!("illegal base64 data: {e}"))?;
    let text = String::from_utf8_lossy(&decoded).into_owned();
    let Some((user, password)) = text.split_once(':') else { return Err(format!("invalid decoded auth: {text:?}")) };
    Ok(Some((user.to_string(), password.trim_matches('\0').to_string())))
}

/// Whether a PullImage with `auth` gets `entry`: always for an image without credentials;
/// else only with exactly its user name and password (a registry's basic authentication, which
/// containerd answers only when both are non-empty). The error is what containerd 1.6 reports
/// for the `401` the registry then answers (with the registry's host where containerd names the
/// mirror it pulled from).
pub fn check(entry: &ImageEntry, auth: Option<&cri::AuthConfig>) -> Result<(), String> {
    let Some(PullCredentials { username, password }) = &entry.credentials else { return Ok(()) };
    let reference = &entry.reference;
    let (host, rest) = reference.split_once('/').unwrap_or(("docker.io", reference));
    let failed = |why: String| format!("failed to pull and unpack image {reference:?}: {why}");
    let presented = presented(auth, host).map_err(|e| failed(format!("failed to resolve reference {reference:?}: {e}")))?;
    if presented.as_ref().is_some_and(|(u, p)| !u.is_empty() && !p.is_empty() && u == username && p == password) {
        return Ok(());
    }
    let tag = match rest.rsplit_once(':') {
        Some((_, t)) if !t.contains('/') => t,
        _ => "latest",
    };
    Err(failed(format!("failed to resolve reference {reference:?}: pulling from host {host} failed with status code [manifests {tag}]: 401 Unauthorized")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ImageEntry {
        let c = crate::config::Catalog::default_for(std::path::Path::new("/bin/true"));
        c.images.into_iter().find(|e| e.reference == crate::config::PRIVATE_IMAGE).unwrap()
    }

    fn auth(f: impl FnOnce(&mut cri::AuthConfig)) -> cri::AuthConfig {
        let mut a = cri::AuthConfig::default();
        f(&mut a);
        a
    }

    #[test]
    fn only_its_user_and_password_pull_a_private_image() {
        let (user, password) = crate::config::PRIVATE_IMAGE_CREDENTIALS;
        let e = entry();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(check(&e, Some(&auth(|a| (a.username, a.password) = (user.into(), password.into())))), Ok(()));
        assert_eq!(check(&e, Some(&auth(|a| a.auth = b64(&format!("{user}:{password}"))))), Ok(()));
        let right_host = auth(|a| (a.username, a.password, a.server_address) = (user.into(), password.into(), "https://nodekit.local".into()));
        assert_eq!(check(&e, Some(&right_host)), Ok(()));
        let refused = [
            None,
            Some(cri::AuthConfig::default()),
            Some(auth(|a| (a.username, a.password) = (user.into(), "wrong".into()))),
            Some(auth(|a| (a.username, a.password) = (user.into(), String::new()))),
            Some(auth(|a| a.identity_token = password.into())),
            Some(auth(|a| (a.username, a.password, a.server_address) = (user.into(), password.into(), "other.io".into()))),
        ];
        for a in &refused {
            let err = check(&e, a.as_ref()).unwrap_err();
            assert_eq!(
                err,
                "failed to pull and unpack image \"nodekit.local/private/workload:1.0\": failed to resolve reference \"nodekit.local/private/workload:1.0\": pulling from host nodekit.local failed with status code [manifests 1.0]: 401 Unauthorized",
                "{a:?}"
            );
        }
        assert!(check(&e, Some(&auth(|a| a.auth = "!!".into()))).unwrap_err().contains("illegal base64 data"));
        assert!(check(&e, Some(&auth(|a| a.auth = b64("no-colon")))).unwrap_err().contains("invalid decoded auth: \"no-colon\""));
    }

    #[test]
    fn an_image_without_credentials_ignores_the_auth() {
        let mut e = entry();
        e.credentials = None;
        assert_eq!(check(&e, None), Ok(()));
        assert_eq!(check(&e, Some(&auth(|a| a.auth = "!!".into()))), Ok(()));
    }
}
