//! What goes on the error channel when an exec or attach ends: a `metav1.Status` (v4/v5 send it
//! as JSON, older protocols send the message of a failure as text and nothing on success).

use serde::Serialize;

use crate::constants::{EXIT_CODE_CAUSE_TYPE, NON_ZERO_EXIT_CODE_REASON};

/// `metav1.Status` as `json.Marshal` writes it (empty `metadata` included, the rest omitted
/// when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Status {
    metadata: Empty,
    #[serde(skip_serializing_if = "str::is_empty")]
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Empty {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Details {
    causes: Vec<Cause>,
}

/// `metav1.StatusCause`: its type goes on the wire as `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Cause {
    #[serde(rename = "reason", skip_serializing_if = "str::is_empty")]
    kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
}

impl Status {
    pub(crate) fn success() -> Self {
        Self { metadata: Empty {}, status: "Success", message: String::new(), reason: "", details: None, code: None }
    }

    /// Upstream `exec.go` for an exit error: `exit_error` is how the runtime words it.
    pub(crate) fn non_zero_exit(code: i32, exit_error: &str) -> Self {
        Self {
            metadata: Empty {},
            status: "Failure",
            message: format!("command terminated with non-zero exit code: {exit_error}"),
            reason: NON_ZERO_EXIT_CODE_REASON,
            details: Some(Details { causes: vec![Cause { kind: EXIT_CODE_CAUSE_TYPE, message: code.to_string() }] }),
            code: None,
        }
    }

    /// `apierrors.NewInternalError(err)`.
    pub(crate) fn internal(err: &str) -> Self {
        Self {
            metadata: Empty {},
            status: "Failure",
            message: format!("Internal error occurred: {err}"),
            reason: "InternalError",
            details: Some(Details { causes: vec![Cause { kind: "", message: err.to_string() }] }),
            code: Some(500),
        }
    }

    pub(crate) fn is_success(&self) -> bool {
        self.status == "Success"
    }

    /// The v4/v5 error channel content.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The pre-v4 error channel content: nothing on success, else the message.
    pub(crate) fn to_text(&self) -> Option<&str> {
        (!self.is_success()).then_some(self.message.as_str())
    }
}

/// How a session writes its status on the error channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusFormat {
    /// `v1WriteStatusFunc`.
    Text,
    /// `v4WriteStatusFunc`.
    Json,
    /// SPDY v1 resets its error stream right away.
    Nothing,
}

impl StatusFormat {
    pub(crate) fn encode(self, status: &Status) -> Option<Vec<u8>> {
        match self {
            Self::Json => Some(status.to_json()),
            Self::Text => status.to_text().map(|t| t.as_bytes().to_vec()),
            Self::Nothing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_as_upstream_marshals_it() {
        assert_eq!(String::from_utf8(Status::success().to_json()).unwrap(), r#"{"metadata":{},"status":"Success"}"#);
        assert_eq!(
            String::from_utf8(Status::non_zero_exit(3, "error executing command [sh -c exit 3], exit code 3").to_json()).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        assert_eq!(
            String::from_utf8(Status::internal("boom").to_json()).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError","details":{"causes":[{"message":"boom"}]},"code":500}"#
        );
    }

    #[test]
    fn text_only_for_failures() {
        assert_eq!(StatusFormat::Text.encode(&Status::success()), None);
        assert_eq!(StatusFormat::Text.encode(&Status::internal("x")).unwrap(), b"Internal error occurred: x");
        assert_eq!(StatusFormat::Nothing.encode(&Status::internal("x")), None);
    }
}
