//! An image pull with the pod's pull secrets, as upstream's kubelet pulls
//! (`kuberuntime_image.go` PullImage, `kubelet_pods.go` getPullSecretsForPod): the secrets the
//! pod names are read (a missing or unreadable one is skipped, with one
//! `FailedToRetrieveImagePullSecret` warning naming them all), their credentials for the
//! image's repository, then the node's own (its docker config files), are tried in order until
//! a pull succeeds, and an image no credential matches is pulled anonymously.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};

use super::Effects;
use crate::cri::Runtime;
use crate::pods::pull_secrets;

/// Reason of the warning about pull secrets that could not be read (upstream's).
pub const FAILED_TO_RETRIEVE_PULL_SECRET: &str = "FailedToRetrieveImagePullSecret";

impl<R: Runtime> Effects<R> {
    /// The pod's image pull secrets that could be read, in the pod's order.
    pub(super) async fn pull_secrets(&self, pod: &Pod) -> Vec<Secret> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let names = pod.spec.as_ref().and_then(|s| s.image_pull_secrets.as_ref()).into_iter().flatten().filter(|r| !r.name.is_empty());
        let mut secrets = Vec::new();
        let mut failed = Vec::new();
        for r in names {
            match self.objects.secret(ns, &r.name).await {
                Ok(Some((keys, secret_type))) => secrets.push(Secret {
                    type_: Some(secret_type),
                    data: Some(keys.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect()),
                    ..Default::default()
                }),
                Ok(None) | Err(_) => {
                    tracing::info!(pod = ?pod.metadata.name, secret = %r.name, "Unable to retrieve pull secret, the image pull may not succeed.");
                    failed.push(r.name.clone());
                }
            }
        }
        if !failed.is_empty() {
            let msg = format!("Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.", failed.join(", "));
            self.event(pod, None, true, FAILED_TO_RETRIEVE_PULL_SECRET, &msg);
        }
        secrets
    }

    /// Pulls `image` with the credentials of `secrets` for its repository, each in turn until
    /// one pull succeeds; anonymously when none matches. The error of several failed pulls
    /// lists each (upstream's aggregate).
    pub(super) async fn pull_with(&self, image: &str, secrets: &[Secret], sandbox_cfg: &k8s_cri::v1::PodSandboxConfig) -> Result<String, String> {
        let keyring = pull_secrets::keyring(secrets)?;
        let repo = pull_secrets::repo_to_pull(image);
        let mut credentials = if crate::faults::active(crate::faults::Fault::IgnorePullSecrets) {
            Vec::new()
        } else {
            keyring.lookup(&repo)
        };
        // The node's own credentials come after the pod's (upstream's UnionDockerKeyring).
        if !crate::faults::active(crate::faults::Fault::IgnoreNodeCredentials) {
            credentials.extend(self.node_credentials.keyring().lookup(&repo));
        }
        if credentials.is_empty() {
            return self.runtime.pull_image(image, None, sandbox_cfg.clone()).await.map_err(|e| e.to_string());
        }
        let mut errors = Vec::new();
        for c in credentials {
            match self.runtime.pull_image(image, Some(c.to_cri()), sandbox_cfg.clone()).await {
                Ok(image_ref) => return Ok(image_ref),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(pull_secrets::aggregate(&errors))
    }
}
