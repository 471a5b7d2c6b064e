//! The kubelet API server's part of the `KubeletConfiguration`: `authentication` and
//! `authorization` blocks with upstream (v1beta1) field names and defaults.

use serde::{Deserialize, Serialize};

use super::GoDuration;

fn secs(s: u64) -> GoDuration {
    GoDuration(std::time::Duration::from_secs(s))
}

/// `authentication`: how callers of the kubelet API are identified.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletAuthentication {
    pub x509: KubeletX509Authentication,
    pub webhook: KubeletWebhookAuthentication,
    pub anonymous: KubeletAnonymousAuthentication,
}

/// `authentication.x509`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletX509Authentication {
    /// PEM bundle of the CAs that sign client certificates; unset: no client certificates.
    #[serde(rename = "clientCAFile", skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<String>,
}

/// `authentication.webhook` (bearer tokens through TokenReview; default enabled, cache 2m).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletWebhookAuthentication {
    pub enabled: bool,
    #[serde(rename = "cacheTTL")]
    pub cache_ttl: GoDuration,
}

impl Default for KubeletWebhookAuthentication {
    fn default() -> Self {
        KubeletWebhookAuthentication { enabled: true, cache_ttl: secs(120) }
    }
}

/// `authentication.anonymous` (default disabled: unauthenticated callers get 401).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletAnonymousAuthentication {
    pub enabled: bool,
}

/// `authorization`: `mode` is `AlwaysAllow` or `Webhook` (default).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletAuthorization {
    pub mode: String,
    pub webhook: KubeletWebhookAuthorization,
}

impl Default for KubeletAuthorization {
    fn default() -> Self {
        KubeletAuthorization { mode: "Webhook".to_string(), webhook: KubeletWebhookAuthorization::default() }
    }
}

/// `authorization.webhook` (SubjectAccessReview cache: 5m authorized, 30s unauthorized).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletWebhookAuthorization {
    #[serde(rename = "cacheAuthorizedTTL")]
    pub cache_authorized_ttl: GoDuration,
    #[serde(rename = "cacheUnauthorizedTTL")]
    pub cache_unauthorized_ttl: GoDuration,
}

impl Default for KubeletWebhookAuthorization {
    fn default() -> Self {
        KubeletWebhookAuthorization { cache_authorized_ttl: secs(300), cache_unauthorized_ttl: secs(30) }
    }
}

/// The authorization modes upstream accepts.
pub const AUTHORIZATION_MODES: &[&str] = &["AlwaysAllow", "Webhook"];
