//! Request body decoding (JSON / YAML) and the patch types: JSON patch, merge patch, strategic merge.

pub mod strategic;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// The kind of patch requested by the Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> ApiResult<PatchType> {
        let base = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match base.as_str() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            _ => Err(ApiError::unsupported_media_type(ct)),
        }
    }
}

/// Decode a request body as JSON or YAML depending on the content type.
pub fn decode_body(ct: &str, body: &[u8]) -> ApiResult<Value> {
    let base = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let v: Value = match base.as_str() {
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Object 'Kind' is missing in '{}': {e}", preview(body))))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "application/apply-patch+yaml" => decode_yaml(body)?,
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body)?,
        _ => return Err(ApiError::unsupported_media_type(ct)),
    };
    Ok(v)
}

/// Decode YAML (or JSON, which is YAML) into a JSON value.
pub fn decode_yaml(body: &[u8]) -> ApiResult<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("body is not valid UTF-8"))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

fn patch_error(msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {msg}"))
}

/// Apply a non-apply patch to `current`, returning the patched object.
pub fn apply_patch(pt: PatchType, current: &Value, body: &[u8], kind: &str) -> ApiResult<Value> {
    match pt {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &p).map_err(patch_error)?;
            Ok(doc)
        }
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &p);
            Ok(doc)
        }
        PatchType::Strategic => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("strategic merge patch must be a JSON object"));
            }
            strategic::apply(current, &p, kind).map_err(patch_error)
        }
        PatchType::Apply => Err(ApiError::internal("apply patches are handled by the apply module")),
    }
}
