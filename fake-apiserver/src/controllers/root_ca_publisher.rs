//! The root CA publisher (upstream's `root-ca-certificate-publisher-controller`,
//! `pkg/controller/certificates/rootcacertpublisher/publisher.go`): every active namespace has
//! a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the CA bundle that verifies the API server,
//! with upstream's description annotation; edits to it are put back, a deleted one is made
//! again.
//!
//! The bundle is kube-controller-manager's `--root-ca-file` ([`Config::root_ca_file`]), or,
//! without it, the client CA bundle of the server's TLS configuration: in every world the one
//! world CA signs both the serving certificate and the clients'. A server without TLS has no
//! CA to publish, so nothing is published (upstream's controller-manager would publish the CA
//! of its own kubeconfig, which a plain-HTTP server does not have).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::resources::{CONFIGMAPS, NAMESPACES};
use crate::server::State;

/// The ConfigMap's name (`RootCACertConfigMapName`).
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// The annotation describing it (`DescriptionAnnotation`).
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's description.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// How often every namespace is checked even without a change.
const RESYNC: Duration = Duration::from_secs(30);

/// The bundle to publish: `root_ca_file`, else the TLS client CA bundle; `None` without TLS
/// (or with TLS but no CA file: nothing names the CA that signed the serving certificate).
pub fn root_ca(config: &Config) -> Result<Option<String>> {
    let path = config.root_ca_file.clone().or_else(|| config.tls.as_ref().and_then(|t| t.client_ca_file.clone()));
    let Some(path) = path else {
        if config.tls.is_some() && config.root_ca_publisher {
            tracing::info!("no root CA file and no client CA bundle: {ROOT_CA_CONFIG_MAP} is not published");
        }
        return Ok(None);
    };
    std::fs::read_to_string(&path).map(Some).map_err(|source| Error::RootCa { path: path.display().to_string(), source })
}

/// The ConfigMap as it must be, from the current one (its other fields kept) or from nothing.
fn wanted(current: Option<&Value>, ca: &str) -> Option<Value> {
    let data = json!({"ca.crt": ca});
    let Some(cm) = current else {
        return Some(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": ROOT_CA_CONFIG_MAP, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
            "data": data,
        }));
    };
    let described = cm.pointer("/metadata/annotations").and_then(|a| a.get(DESCRIPTION_ANNOTATION)).and_then(Value::as_str).is_some_and(|d| !d.is_empty());
    if cm.get("data") == Some(&data) && described {
        return None;
    }
    let mut cm = cm.clone();
    cm["data"] = data;
    let mut annotations: BTreeMap<String, Value> = cm
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    annotations.insert(DESCRIPTION_ANNOTATION.into(), json!(DESCRIPTION));
    crate::api::set_in(&mut cm, &["metadata", "annotations"], json!(annotations));
    Some(cm)
}

/// One pass over every active namespace; returns how many ConfigMaps were written.
pub fn sync(state: &State, ca: &str) -> usize {
    let (namespaces, _) = state.store.snapshot(NAMESPACES, None);
    let mut written = 0;
    for ns in namespaces.iter().filter(|n| super::service_accounts::active(&n.value)) {
        let current = state.store.get(CONFIGMAPS, ns.name(), ROOT_CA_CONFIG_MAP);
        let Some(cm) = wanted(current.as_ref().map(|c| &c.value), ca) else { continue };
        let result = match current {
            None => state.api.create(CONFIGMAPS, ns.name(), cm),
            Some(_) => state.api.update(CONFIGMAPS, ns.name(), ROOT_CA_CONFIG_MAP, cm, None),
        };
        match result {
            Ok(_) => written += 1,
            // Gone, terminating or raced with another write: the next pass looks again.
            Err(e) if matches!(e.code, 403 | 404 | 409) => {}
            Err(e) => tracing::warn!(namespace = ns.name(), "publishing {ROOT_CA_CONFIG_MAP}: {e}"),
        }
    }
    written
}

/// Runs until the server is cancelled: a pass on every namespace or ConfigMap change.
pub async fn run(state: Arc<State>, ca: String) {
    let mut rxs = [state.store.subscribe(NAMESPACES), state.store.subscribe(CONFIGMAPS)];
    loop {
        let written = sync(&state, &ca);
        if written > 0 {
            tracing::debug!(written, "{ROOT_CA_CONFIG_MAP} published");
        }
        if !super::next_pass(&state, &mut rxs, RESYNC).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_the_root_ca_file_else_the_client_ca_and_nothing_without_tls() {
        let dir = tempfile::tempdir().unwrap();
        let (client_ca, root) = (dir.path().join("client-ca.crt"), dir.path().join("root.crt"));
        std::fs::write(&client_ca, "CLIENT CA").unwrap();
        std::fs::write(&root, "ROOT CA").unwrap();
        assert_eq!(root_ca(&Config::default()).unwrap(), None, "plain HTTP publishes nothing");
        let tls = |ca: Option<std::path::PathBuf>| crate::config::TlsConfig { cert_file: "c".into(), key_file: "k".into(), client_ca_file: ca };
        let with_tls = Config { tls: Some(tls(Some(client_ca.clone()))), ..Config::default() };
        assert_eq!(root_ca(&with_tls).unwrap().as_deref(), Some("CLIENT CA"));
        assert_eq!(root_ca(&Config { root_ca_file: Some(root), ..with_tls }).unwrap().as_deref(), Some("ROOT CA"));
        assert_eq!(root_ca(&Config { tls: Some(tls(None)), ..Config::default() }).unwrap(), None);
        let missing = Config { root_ca_file: Some(dir.path().join("nope")), ..Config::default() };
        assert!(root_ca(&missing).unwrap_err().to_string().starts_with("reading the root CA bundle "));
    }

    #[test]
    fn wanted_configmap_keeps_other_fields_and_fixes_data_and_description() {
        let made = wanted(None, "CA").unwrap();
        assert_eq!(made["data"], json!({"ca.crt": "CA"}));
        assert_eq!(made["metadata"]["annotations"][DESCRIPTION_ANNOTATION], DESCRIPTION);
        let good = json!({"metadata": {"name": ROOT_CA_CONFIG_MAP, "annotations": {DESCRIPTION_ANNOTATION: "x"}}, "data": {"ca.crt": "CA"}});
        assert_eq!(wanted(Some(&good), "CA"), None, "any non-empty description will do, as upstream");
        let edited = json!({"metadata": {"name": ROOT_CA_CONFIG_MAP, "labels": {"a": "b"}, "annotations": {"o": "p"}}, "data": {"ca.crt": "X", "extra": "y"}});
        let fixed = wanted(Some(&edited), "CA").unwrap();
        assert_eq!(fixed["data"], json!({"ca.crt": "CA"}));
        assert_eq!(fixed["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(fixed["metadata"]["annotations"], json!({"o": "p", DESCRIPTION_ANNOTATION: DESCRIPTION}));
    }
}
