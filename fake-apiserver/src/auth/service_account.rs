//! ServiceAccount tokens as kube-apiserver issues and checks them (upstream's
//! `pkg/serviceaccount/claims.go` and `jwt.go`): compact JWS tokens signed by the server's key
//! ([`super::service_account_keys`]), with the registered claims `aud`, `exp`, `iat`, `iss`,
//! `jti`, `nbf`, `sub` and the private `kubernetes.io` claim naming the namespace, the
//! ServiceAccount and what the token is bound to (pod, secret or node; a pod's node too).
//!
//! [`TokenAuthority::authenticate`] is upstream's `jwtTokenAuthenticator` followed by its
//! validator: the issuer, the signature (against the signing key and the extra public keys),
//! the audiences, `nbf`/`exp`/`iat` with go-jose's one-minute leeway, and the ServiceAccount
//! and bound objects looked up again (same uid, not deleted for longer than the leeway). The
//! error texts are upstream's; they surface in TokenReview's `status.error`.
//!
//! Pure: objects come through [`TokenGetter`], the time is passed in.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::service_account_keys::{KeyError, SigningKey, VerifyingKey};
use super::user::{ALL_AUTHENTICATED, User, service_account_groups, service_account_username};

/// The default `--service-account-issuer` (and so `--api-audiences`), as kubeadm configures.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// go-jose's `jwt.DefaultLeeway` (seconds), applied to `nbf`, `exp`, `iat` and deletions.
pub const LEEWAY_SECONDS: i64 = 60;
/// The expiration the kubelet asks for projected tokens (`WarnOnlyBoundTokenExpirationSeconds`):
/// such pod-bound tokens for the API's audiences are extended (see [`extended_expiration`]).
pub const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// How long an extended token lives (`ExpirationExtensionSeconds`, one year).
pub const EXPIRATION_EXTENSION_SECONDS: i64 = 24 * 365 * 60 * 60;
/// `extra` key of the bound pod's name.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
/// `extra` key of the bound pod's uid.
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
/// `extra` key of the bound (or the pod's) node name.
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
/// `extra` key of the bound (or the pod's) node uid.
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
/// `extra` key of the credential id (`JTI=<jti>`).
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";
/// The audit annotation of a TokenRequest naming the issued credential.
pub const ISSUED_CREDENTIAL_ID_ANNOTATION: &str = "authentication.kubernetes.io/issued-credential-id";

/// Upstream's `CredentialIDForJTI`.
pub fn credential_id(jti: &str) -> String {
    if jti.is_empty() { String::new() } else { format!("JTI={jti}") }
}

/// The ServiceAccount token settings (upstream's `--service-account-*` and `--api-audiences`).
#[derive(Debug, Clone)]
pub struct ServiceAccountConfig {
    /// `--service-account-issuer`: the first names issued tokens, all are accepted.
    pub issuers: Vec<String>,
    /// `--api-audiences`; empty: the issuers (upstream's default).
    pub api_audiences: Vec<String>,
    /// `--service-account-signing-key-file` (PEM); `None`: a P-256 key made at start.
    pub signing_key_file: Option<std::path::PathBuf>,
    /// `--service-account-key-file` (PEM public keys, certificates or private keys) that also
    /// verify tokens; the signing key always does.
    pub key_files: Vec<std::path::PathBuf>,
    /// `--service-account-max-token-expiration` in seconds (between 1 hour and 2^32 seconds);
    /// `None`: no maximum.
    pub max_token_expiration_seconds: Option<i64>,
    /// `--service-account-extend-token-expiration` (default true).
    pub extend_token_expiration: bool,
}

impl Default for ServiceAccountConfig {
    fn default() -> ServiceAccountConfig {
        ServiceAccountConfig {
            issuers: vec![DEFAULT_ISSUER.to_string()],
            api_audiences: Vec::new(),
            signing_key_file: None,
            key_files: Vec::new(),
            max_token_expiration_seconds: None,
            extend_token_expiration: true,
        }
    }
}

/// Why the ServiceAccount token settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("service-account-issuer is a required flag")]
    NoIssuer,
    #[error("service-account-issuer should not be an empty string")]
    EmptyIssuer,
    #[error("service-account-issuer {0:?} is already specified")]
    DuplicateIssuer(String),
    #[error("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds")]
    MaxExpiration,
}

/// A `{name, uid}` reference in the private claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

impl Ref {
    /// The reference of a stored object (its metadata name and uid).
    pub fn of(obj: &Value) -> Ref {
        let s = |k: &str| obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or("").to_string();
        Ref { name: s("name"), uid: s("uid") }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [("name", &self.name), ("uid", &self.uid)] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    fn from_json(v: Option<&Value>) -> Option<Ref> {
        let v = v.filter(|v| v.is_object())?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Some(Ref { name: s("name"), uid: s("uid") })
    }
}

/// The claims of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub expiry: Option<i64>,
    pub issued_at: Option<i64>,
    pub not_before: Option<i64>,
    pub id: String,
    pub namespace: String,
    pub service_account: Ref,
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    pub node: Option<Ref>,
    pub warn_after: Option<i64>,
}

/// What a token is issued for: the ServiceAccount and the object it is bound to.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    pub namespace: String,
    pub service_account: Ref,
    /// A bound pod, with its node when scheduled (`node` then only records it).
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    pub node: Option<Ref>,
}

impl Claims {
    /// Upstream's `Claims()`: the claims of a token for `binding`, valid from `now` for
    /// `expiration_seconds`, with `warnafter` when non-zero.
    pub fn new(binding: &Binding, audiences: &[String], now: i64, expiration_seconds: i64, warn_after: i64, jti: &str) -> Claims {
        let b = binding;
        Claims {
            issuer: String::new(),
            subject: service_account_username(&b.namespace, &b.service_account.name),
            audiences: audiences.to_vec(),
            expiry: Some(now.saturating_add(expiration_seconds)),
            issued_at: Some(now),
            not_before: Some(now),
            id: jti.to_string(),
            namespace: b.namespace.clone(),
            service_account: b.service_account.clone(),
            pod: b.pod.clone(),
            secret: b.secret.clone(),
            node: b.node.clone(),
            warn_after: (warn_after != 0).then(|| now.saturating_add(warn_after)),
        }
    }

    /// The payload as go-jose writes it: keys sorted, empty values left out.
    pub fn to_json(&self) -> Value {
        let mut k8s = Map::new();
        if !self.namespace.is_empty() {
            k8s.insert("namespace".into(), json!(self.namespace));
        }
        for (key, r) in [("node", &self.node), ("pod", &self.pod), ("secret", &self.secret)] {
            if let Some(r) = r {
                k8s.insert(key.into(), r.to_json());
            }
        }
        k8s.insert("serviceaccount".into(), self.service_account.to_json());
        if let Some(w) = self.warn_after {
            k8s.insert("warnafter".into(), json!(w));
        }
        let mut m = Map::new();
        if !self.audiences.is_empty() {
            m.insert("aud".into(), json!(self.audiences));
        }
        let numbers = [("exp", self.expiry), ("iat", self.issued_at)];
        for (k, v) in numbers {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if !self.issuer.is_empty() {
            m.insert("iss".into(), json!(self.issuer));
        }
        if !self.id.is_empty() {
            m.insert("jti".into(), json!(self.id));
        }
        m.insert("kubernetes.io".into(), Value::Object(k8s));
        if let Some(nbf) = self.not_before {
            m.insert("nbf".into(), json!(nbf));
        }
        m.insert("sub".into(), json!(self.subject));
        Value::Object(m)
    }

    /// The claims of a payload; `aud` may be a string or a list (RFC 7519).
    pub fn from_json(v: &Value) -> Option<Claims> {
        let m = v.as_object()?;
        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let n = |k: &str| m.get(k).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
        let audiences = match m.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return None,
        };
        let k8s = m.get("kubernetes.io").cloned().unwrap_or(Value::Null);
        Some(Claims {
            issuer: s("iss"),
            subject: s("sub"),
            audiences,
            expiry: n("exp"),
            issued_at: n("iat"),
            not_before: n("nbf"),
            id: s("jti"),
            namespace: k8s.get("namespace").and_then(Value::as_str).unwrap_or("").to_string(),
            service_account: Ref::from_json(k8s.get("serviceaccount")).unwrap_or_default(),
            pod: Ref::from_json(k8s.get("pod")),
            secret: Ref::from_json(k8s.get("secret")),
            node: Ref::from_json(k8s.get("node")),
            warn_after: k8s.get("warnafter").and_then(Value::as_i64),
        })
    }
}

/// The objects token validation looks up again (upstream's `ServiceAccountTokenGetter`).
pub trait TokenGetter {
    /// The ServiceAccount, or the error text of the failed lookup.
    fn service_account(&self, namespace: &str, name: &str) -> Result<Value, String>;
    fn pod(&self, namespace: &str, name: &str) -> Option<Value>;
    fn secret(&self, namespace: &str, name: &str) -> Option<Value>;
    fn node(&self, name: &str) -> Option<Value>;
}

/// Why a token of this issuer is not accepted (upstream's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid signature, no keys found")]
    NoKeys,
    #[error("go-jose/go-jose: error in cryptographic primitive")]
    Signature,
    /// A payload that is not the claims object (upstream's opaque error).
    #[error("service account token claims could not be validated due to unexpected validation error")]
    Payload,
    #[error("token issuer {0:?} is invalid")]
    Issuer(String),
    #[error("token audiences {} is invalid for the target audiences {}", go_quoted_list(.token), go_quoted_list(.target))]
    Audience { token: Vec<String>, target: Vec<String> },
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotValidYet,
    #[error("service account token is issued in the future")]
    IssuedInTheFuture,
    /// The ServiceAccount lookup failed (e.g. `serviceaccounts "x" not found`).
    #[error("{0}")]
    ServiceAccountLookup(String),
    #[error("service account UID ({actual}) does not match claim ({claim})")]
    ServiceAccountUid { actual: String, claim: String },
    #[error("service account {0} has been deleted")]
    ServiceAccountDeleted(String),
    #[error("service account token has been invalidated")]
    Invalidated,
    #[error("secret UID ({actual}) does not match service account secret ref claim ({claim})")]
    SecretUid { actual: String, claim: String },
    #[error("pod UID ({actual}) does not match service account pod ref claim ({claim})")]
    PodUid { actual: String, claim: String },
    #[error("node UID ({actual}) does not match service account node ref claim ({claim})")]
    NodeUid { actual: String, claim: String },
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| super::go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// An accepted token: its user and the audiences it was accepted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub user: User,
    pub audiences: Vec<String>,
}

/// The server's token issuer and authenticator.
#[derive(Debug)]
pub struct TokenAuthority {
    signing: SigningKey,
    keys: Vec<VerifyingKey>,
    issuers: Vec<String>,
    api_audiences: Vec<String>,
    max_expiration: Option<i64>,
    extend_expiration: bool,
}

impl TokenAuthority {
    /// Loads the keys of `cfg` (a fresh P-256 signing key without a file).
    pub fn new(cfg: &ServiceAccountConfig) -> Result<TokenAuthority, ConfigError> {
        check_issuers(&cfg.issuers)?;
        if cfg.max_token_expiration_seconds.is_some_and(|m| !(3600..=1 << 32).contains(&m)) {
            return Err(ConfigError::MaxExpiration);
        }
        let signing = match &cfg.signing_key_file {
            Some(path) => SigningKey::load(path)?,
            None => SigningKey::generate()?,
        };
        let mut keys = vec![signing.public().clone()];
        for path in &cfg.key_files {
            for key in super::service_account_keys::load_public_keys(path)? {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let api_audiences = if cfg.api_audiences.is_empty() { cfg.issuers.clone() } else { cfg.api_audiences.clone() };
        Ok(TokenAuthority {
            signing,
            keys,
            issuers: cfg.issuers.clone(),
            api_audiences,
            max_expiration: cfg.max_token_expiration_seconds,
            extend_expiration: cfg.extend_token_expiration,
        })
    }

    /// The issuer of new tokens.
    pub fn issuer(&self) -> &str {
        self.issuers.first().map_or("", String::as_str)
    }

    /// The API's audiences (`--api-audiences`).
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// `--service-account-max-token-expiration` in seconds.
    pub fn max_expiration(&self) -> Option<i64> {
        self.max_expiration
    }

    /// `--service-account-extend-token-expiration`.
    pub fn extends_expiration(&self) -> bool {
        self.extend_expiration
    }

    /// The public keys that verify tokens (the signing key's first).
    pub fn verifying_keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Signs `claims` (their issuer set to ours) as a compact JWS.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut claims = claims.clone();
        claims.issuer = self.issuer().to_string();
        let public = self.signing.public();
        let header = json!({"alg": public.algorithm().name(), "kid": public.kid()});
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
        let signing_input = format!("{}.{}", b64(&header), b64(&claims.to_json()));
        let sig = self.signing.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Upstream's `hasCorrectIssuer`: whether `token` is a compact JWT whose (unverified)
    /// `iss` is one of ours. Other tokens are left to other authenticators.
    pub fn has_correct_issuer(&self, token: &str) -> bool {
        unverified_payload(token).is_some_and(|p| p.get("iss").and_then(Value::as_str).is_some_and(|i| self.issuers.iter().any(|x| x == i)))
    }

    /// Authenticates `token` for `requested` audiences (the API's when `None`) at `now`:
    /// `Ok(None)` when it is not one of ours, an error when it is but is not valid.
    pub fn authenticate(&self, token: &str, requested: Option<&[String]>, getter: &dyn TokenGetter, now: i64) -> Result<Option<Authenticated>, TokenError> {
        if !self.has_correct_issuer(token) {
            return Ok(None);
        }
        let Some(claims) = self.verify(token)? else { return Ok(None) };
        if !self.issuers.contains(&claims.issuer) {
            return Err(TokenError::Issuer(claims.issuer));
        }
        let token_auds = if claims.audiences.is_empty() { self.api_audiences.clone() } else { claims.audiences.clone() };
        let target = requested.filter(|r| !r.is_empty()).map_or_else(|| self.api_audiences.clone(), <[String]>::to_vec);
        let audiences: Vec<String> = token_auds.iter().filter(|a| target.contains(a)).cloned().collect();
        if audiences.is_empty() && !self.api_audiences.is_empty() {
            return Err(TokenError::Audience { token: token_auds, target });
        }
        let user = validate(&claims, getter, now)?;
        Ok(Some(Authenticated { user, audiences }))
    }

    /// The signature check: `Ok(None)` when the token does not parse as a JWS.
    fn verify(&self, token: &str) -> Result<Option<Claims>, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return Ok(None) };
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Option<Value> = engine.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let (Some(header), Ok(sig)) = (header, engine.decode(s)) else { return Ok(None) };
        let Some(alg) = header.get("alg").and_then(Value::as_str) else { return Ok(None) };
        let kid = header.get("kid").and_then(Value::as_str).unwrap_or("");
        let keys: Vec<&VerifyingKey> = self.keys.iter().filter(|k| kid.is_empty() || k.kid() == kid).collect();
        if keys.is_empty() {
            return Err(TokenError::NoKeys);
        }
        let signing_input = &token[..h.len() + 1 + p.len()];
        if !keys.iter().any(|k| k.verify(alg, signing_input.as_bytes(), &sig)) {
            return Err(TokenError::Signature);
        }
        let payload: Value = engine.decode(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Payload)?;
        Claims::from_json(&payload).map(Some).ok_or(TokenError::Payload)
    }
}

fn check_issuers(issuers: &[String]) -> Result<(), ConfigError> {
    if issuers.is_empty() {
        return Err(ConfigError::NoIssuer);
    }
    for (i, issuer) in issuers.iter().enumerate() {
        if issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if issuers[..i].contains(issuer) {
            return Err(ConfigError::DuplicateIssuer(issuer.clone()));
        }
    }
    Ok(())
}

/// The payload of a compact JWT, unverified (never trust it before the signature check).
fn unverified_payload(token: &str) -> Option<Value> {
    if token.trim_start().starts_with('{') {
        return None;
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Seconds since the epoch of an RFC 3339 timestamp.
fn unix(ts: &str) -> Option<i64> {
    ts.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Whether `obj` was deleted before `cutoff` (its `deletionTimestamp` is earlier).
fn deleted_before(obj: &Value, cutoff: i64) -> bool {
    obj.pointer("/metadata/deletionTimestamp").and_then(Value::as_str).and_then(unix).is_some_and(|t| t < cutoff)
}

fn uid_of(obj: &Value) -> String {
    obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string()
}

/// go-jose's time checks with the default leeway.
fn check_times(c: &Claims, now: i64) -> Result<(), TokenError> {
    if c.not_before.is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
        return Err(TokenError::NotValidYet);
    }
    if c.expiry.is_some_and(|exp| now - LEEWAY_SECONDS > exp) {
        return Err(TokenError::Expired);
    }
    if c.issued_at.is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
        return Err(TokenError::IssuedInTheFuture);
    }
    Ok(())
}

/// Upstream's validator: times, then the ServiceAccount, secret, pod and node looked up again;
/// the user of a valid token.
pub fn validate(c: &Claims, getter: &dyn TokenGetter, now: i64) -> Result<User, TokenError> {
    check_times(c, now)?;
    let cutoff = now - LEEWAY_SECONDS;
    let (ns, sa_ref) = (c.namespace.as_str(), &c.service_account);
    let sa = getter.service_account(ns, &sa_ref.name).map_err(TokenError::ServiceAccountLookup)?;
    if uid_of(&sa) != sa_ref.uid {
        return Err(TokenError::ServiceAccountUid { actual: uid_of(&sa), claim: sa_ref.uid.clone() });
    }
    if deleted_before(&sa, cutoff) {
        return Err(TokenError::ServiceAccountDeleted(format!("{ns}/{}", sa_ref.name)));
    }
    if let Some(r) = &c.secret {
        let secret = getter.secret(ns, &r.name).ok_or(TokenError::Invalidated)?;
        check_bound(&secret, r, cutoff, |actual, claim| TokenError::SecretUid { actual, claim })?;
    }
    if let Some(r) = &c.pod {
        let pod = getter.pod(ns, &r.name).ok_or(TokenError::Invalidated)?;
        check_bound(&pod, r, cutoff, |actual, claim| TokenError::PodUid { actual, claim })?;
    }
    if let (Some(r), None) = (&c.node, &c.pod) {
        let node = getter.node(&r.name).ok_or(TokenError::Invalidated)?;
        check_bound(&node, r, cutoff, |actual, claim| TokenError::NodeUid { actual, claim })?;
    }
    Ok(user_of(c))
}

fn check_bound(obj: &Value, r: &Ref, cutoff: i64, mismatch: impl Fn(String, String) -> TokenError) -> Result<(), TokenError> {
    if uid_of(obj) != r.uid {
        return Err(mismatch(uid_of(obj), r.uid.clone()));
    }
    if deleted_before(obj, cutoff) {
        return Err(TokenError::Invalidated);
    }
    Ok(())
}

/// Upstream's `ServiceAccountInfo.UserInfo()` with the authenticated group added.
pub fn user_of(c: &Claims) -> User {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(pod) = c.pod.as_ref().filter(|p| !p.name.is_empty() && !p.uid.is_empty()) {
        extra.insert(POD_NAME_KEY.into(), vec![pod.name.clone()]);
        extra.insert(POD_UID_KEY.into(), vec![pod.uid.clone()]);
    }
    if !c.id.is_empty() {
        extra.insert(CREDENTIAL_ID_KEY.into(), vec![credential_id(&c.id)]);
    }
    if let Some(node) = c.node.as_ref().filter(|n| !n.name.is_empty()) {
        extra.insert(NODE_NAME_KEY.into(), vec![node.name.clone()]);
        if !node.uid.is_empty() {
            extra.insert(NODE_UID_KEY.into(), vec![node.uid.clone()]);
        }
    }
    let mut groups = service_account_groups(&c.namespace);
    groups.push(ALL_AUTHENTICATED.into());
    User { name: service_account_username(&c.namespace, &c.service_account.name), uid: c.service_account.uid.clone(), groups, extra }
}

/// Upstream's expiration extension of projected tokens: a pod-bound request for exactly
/// [`WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS`] whose audiences are all API audiences lives a
/// year, warning after the requested time. Returns (expiration, warnafter) in seconds.
pub fn extended_expiration(authority: &TokenAuthority, pod_bound: bool, requested: i64, audiences: &[String]) -> (i64, i64) {
    let kube_audiences = audiences.iter().all(|a| authority.api_audiences().contains(a));
    if authority.extends_expiration() && pod_bound && requested == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS && kube_audiences {
        (EXPIRATION_EXTENSION_SECONDS, requested)
    } else {
        (requested, 0)
    }
}

#[cfg(test)]
#[path = "service_account_tests.rs"]
mod tests;
