//! Authentication of kubelet API callers (x509 client certificates, anonymous when enabled) and
//! the start-up notes about configured checks that are not enforced yet.

use crate::config::KubeletConfiguration;

/// An authenticated caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Presented a client certificate the client CA verified.
    X509,
    /// No credentials, allowed by `authentication.anonymous.enabled`.
    Anonymous,
}

/// Who is calling, or `None` (upstream answers 401 `Unauthorized`). TLS has already verified
/// a presented certificate against the client CA.
pub fn authenticate(verified_client_cert: bool, anonymous_enabled: bool) -> Option<Caller> {
    let anonymous_enabled = anonymous_enabled || crate::faults::active(crate::faults::Fault::KubeletAnonymous);
    if verified_client_cert {
        Some(Caller::X509)
    } else if anonymous_enabled {
        Some(Caller::Anonymous)
    } else {
        None
    }
}

/// Configured checks this server does not enforce yet, one sentence each, naming the field.
pub fn not_enforced(cfg: &KubeletConfiguration) -> Vec<String> {
    let mut notes = Vec::new();
    if cfg.authorization.mode == "Webhook" {
        notes.push(
            "authorization.mode is Webhook, but SubjectAccessReview is not enforced yet: every authenticated caller is allowed"
                .to_string(),
        );
    }
    if cfg.authentication.webhook.enabled {
        notes.push(
            "authentication.webhook.enabled is true, but bearer tokens are not checked yet (TokenReview): callers need a client certificate"
                .to_string(),
        );
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_then_anonymous() {
        assert_eq!(authenticate(true, false), Some(Caller::X509));
        assert_eq!(authenticate(true, true), Some(Caller::X509));
        assert_eq!(authenticate(false, true), Some(Caller::Anonymous));
        assert_eq!(authenticate(false, false), None);
    }

    #[test]
    fn notes_name_the_fields() {
        let mut cfg = KubeletConfiguration::default();
        let notes = not_enforced(&cfg);
        assert!(notes.iter().any(|n| n.starts_with("authorization.mode is Webhook")), "{notes:?}");
        assert!(notes.iter().any(|n| n.starts_with("authentication.webhook.enabled")), "{notes:?}");
        cfg.authorization.mode = "AlwaysAllow".into();
        cfg.authentication.webhook.enabled = false;
        assert!(not_enforced(&cfg).is_empty());
    }
}
