//! Audit log of every request: kept in memory and optionally appended to a JSON-lines file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// One audited request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub time: String,
    pub verb: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub user_agent: String,
    pub code: u16,
    pub latency_ms: f64,
    /// The authenticated user: a client certificate's (or anonymous) over HTTPS, a bearer
    /// token's on either; absent on plain HTTP without a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
    /// The user the request impersonated (`Impersonate-*` headers honoured with
    /// [`crate::Config::authorization`] on), as upstream's `impersonatedUser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<UserInfo>,
    /// Upstream's audit annotations; with [`crate::Config::authorization`] on,
    /// `authorization.k8s.io/decision` (`allow` or `forbid`) and `authorization.k8s.io/reason`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Who made a request, as upstream's `authentication.k8s.io/v1` UserInfo.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Upstream's `extra` (e.g. the pod a ServiceAccount token is bound to).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// In-memory audit log with an optional file sink.
pub struct AuditLog {
    entries: Mutex<Vec<AuditEntry>>,
    file: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
    limit: usize,
}

impl AuditLog {
    pub fn new(path: Option<&PathBuf>, limit: usize) -> std::io::Result<AuditLog> {
        let file = match path {
            Some(p) => Some(std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?)),
            None => None,
        };
        Ok(AuditLog { entries: Mutex::new(Vec::new()), file: Mutex::new(file), limit })
    }

    pub fn record(&self, e: AuditEntry) {
        if let Some(f) = self.file.lock().as_mut()
            && let Ok(line) = serde_json::to_string(&e)
        {
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
        let mut v = self.entries.lock();
        if v.len() >= self.limit {
            let drop = v.len() / 2;
            v.drain(..drop);
        }
        v.push(e);
    }

    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries.lock().clone()
    }

    pub fn clear(&self) {
        self.entries.lock().clear();
    }
}
