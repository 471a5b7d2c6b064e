//! NodeRestriction for PVC status, ServiceAccount tokens, node leases, CSINodes,
//! ResourceSlices and kubelet CertificateSigningRequests.

use base64::Engine;
use serde_json::Value;
use x509_parser::prelude::FromDer;

use super::{
    AdmissionError, Admit, Ctx, NAMESPACE_NODE_LEASE, ObjectLookup, Operation, Options, go_quote, normalized, pod_refs,
    text,
};

/// Signers whose CSRs a node may only create for itself.
const KUBELET_SIGNERS: [&str; 2] = ["kubernetes.io/kubelet-serving", "kubernetes.io/kube-apiserver-client-kubelet"];

/// The PVC without the fields a node may change: resourceVersion, managedFields,
/// status.capacity, status.conditions (and allocatedResources/allocatedResourceStatuses with
/// expansion recovery).
fn pvc_comparable(pvc: &Value, opts: Options) -> Value {
    let mut v = pvc.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
        status.remove("capacity");
        status.remove("conditions");
        if opts.expansion_recovery {
            status.remove("allocatedResources");
            status.remove("allocatedResourceStatuses");
        }
    }
    normalized(Some(&v))
}

/// The top-level paths where two JSON values differ (stands in for upstream's `cmp.Diff`).
fn diff_paths(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (l, r) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                diff_paths(l, r, &format!("{path}.{k}"), out);
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// Upstream's `admitPVCStatus`.
pub(super) fn admit_pvc_status(ctx: &Ctx, opts: Options) -> Admit {
    if ctx.req.operation != Operation::Update {
        return ctx.forbid(format!("unexpected operation {}", go_quote(ctx.req.operation.as_str())));
    }
    let old = pvc_comparable(ctx.old_object()?, opts);
    let new = pvc_comparable(ctx.object()?, opts);
    if old != new {
        let mut paths = Vec::new();
        diff_paths(&old, &new, "", &mut paths);
        return ctx.forbid(format!(
            "node {} is not allowed to update fields other than status.quantity and status.conditions: {}",
            go_quote(ctx.node),
            paths.join(", ")
        ));
    }
    Ok(())
}

/// Upstream's `admitServiceAccount`: a node's TokenRequest must be bound to a pod on it.
pub(super) fn admit_service_account(ctx: &Ctx, lookup: &dyn ObjectLookup) -> Admit {
    if ctx.req.operation != Operation::Create || ctx.req.subresource != "token" {
        return Ok(());
    }
    let tr = ctx.object()?;
    let Some(bound) = tr.pointer("/spec/boundObjectRef").filter(|v| v.is_object()) else {
        return ctx.forbid("node requested token not bound to a pod");
    };
    let pod_name = text(bound, "/name");
    if text(bound, "/apiVersion") != "v1" || text(bound, "/kind") != "Pod" || pod_name.is_empty() {
        return ctx.forbid("node requested token not bound to a pod");
    }
    let uid = text(bound, "/uid");
    if uid.is_empty() {
        return ctx.forbid("node requested token with a pod binding without a uid");
    }
    let Some(pod) = lookup.pod(ctx.req.namespace, pod_name) else {
        return Err(AdmissionError::NotFound { resource: "pod", name: pod_name.into() });
    };
    if uid != text(&pod, "/metadata/uid") {
        return ctx.forbid(format!(
            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
        ));
    }
    if pod_refs::pod_node_name(&pod) != ctx.node {
        return ctx.forbid("node requested token bound to a pod scheduled on a different node");
    }
    Ok(())
}

/// Upstream's `admitLease`: only the node's own lease in `kube-node-lease`.
pub(super) fn admit_lease(ctx: &Ctx) -> Admit {
    if ctx.req.namespace != NAMESPACE_NODE_LEASE {
        return ctx
            .forbid(format!("can only access leases in the {} system namespace", go_quote(NAMESPACE_NODE_LEASE)));
    }
    let name = if ctx.req.operation == Operation::Create { pod_refs::name_of(ctx.object()?) } else { ctx.req.name };
    if name != ctx.node {
        return ctx.forbid("can only access node lease with the same name as the requesting node");
    }
    Ok(())
}

/// Upstream's `admitCSINode`: only the node's own CSINode.
pub(super) fn admit_csi_node(ctx: &Ctx) -> Admit {
    let name = if ctx.req.operation == Operation::Create {
        match ctx.req.object {
            Some(obj) => pod_refs::name_of(obj),
            None => return ctx.forbid("unable to access the object name"),
        }
    } else {
        ctx.req.name
    };
    if name != ctx.node {
        return ctx.forbid("can only access CSINode with the same name as the requesting node");
    }
    Ok(())
}

/// Upstream's `admitResourceSlice`: create and delete only slices of this node.
pub(super) fn admit_resource_slice(ctx: &Ctx) -> Admit {
    match ctx.req.operation {
        Operation::Create if text(ctx.object()?, "/spec/nodeName") != ctx.node => {
            ctx.forbid("can only create ResourceSlice with the same NodeName as the requesting node")
        }
        Operation::Delete if text(ctx.old_object()?, "/spec/nodeName") != ctx.node => {
            ctx.forbid("can only delete ResourceSlice with the same NodeName as the requesting node")
        }
        _ => Ok(()),
    }
}

/// The subject CN of a PEM CSR, or upstream's parse error text.
pub fn csr_common_name(pem_bytes: &[u8]) -> Result<String, String> {
    const PEM_ERROR: &str = "PEM block type must be CERTIFICATE REQUEST";
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_bytes).map_err(|_| PEM_ERROR.to_string())?;
    if pem.label != "CERTIFICATE REQUEST" {
        return Err(PEM_ERROR.into());
    }
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
        .map_err(|e| format!("x509: {e}"))?;
    let subject = &csr.certification_request_info.subject;
    Ok(subject.iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or("").to_string())
}

/// Upstream's `admitCSR`: kubelet-signer CSRs must name this node (`CN=system:node:<node>`).
pub(super) fn admit_csr(ctx: &Ctx) -> Admit {
    if ctx.req.operation != Operation::Create {
        return Ok(());
    }
    let csr = ctx.object()?;
    if !KUBELET_SIGNERS.contains(&text(csr, "/spec/signerName")) {
        return Ok(());
    }
    let pem = base64::engine::general_purpose::STANDARD.decode(text(csr, "/spec/request")).unwrap_or_default();
    match csr_common_name(&pem) {
        Err(e) => ctx.forbid(format!("unable to parse csr: {e}")),
        Ok(cn) if cn != format!("system:node:{}", ctx.node) => {
            ctx.forbid(format!("can only create a node CSR with CN=system:node:{}", ctx.node))
        }
        Ok(_) => Ok(()),
    }
}
