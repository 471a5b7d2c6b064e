//! Service environment variables in containers.

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::{START, env};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::NODE;
use crate::kube_wait::{self, phase};
use crate::pods::{self, container};

/// Upstream's "Pods should contain environment variables for services [NodeConformance]
/// [Conformance]" (`test/e2e/common/node/pods.go`), with a second pod that turns
/// `enableServiceLinks` off: a container sees `FOOSERVICE_SERVICE_HOST`, `_SERVICE_PORT` and
/// Docker's link variables of a Service of its namespace, and the `kubernetes` Service's
/// (`KUBERNETES_SERVICE_HOST` / `_PORT`, what in-cluster clients read) with links off too, but
/// not the Service's then. Catches an agent that gives containers no service variables, or
/// ignores `enableServiceLinks`.
pub(super) fn service_variables(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let services: Api<Service> = Api::namespaced(env.client.clone(), "default");
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "fooservice"},
            "spec": {"selector": {"name": "server"}, "ports": [{"port": 8765, "targetPort": 8080}]},
        }))?;
        let svc = services.create(&PostParams::default(), &svc).await?;
        let ip = svc.spec.and_then(|s| s.cluster_ip).filter(|ip| !ip.is_empty() && ip != "None").context("the Service got no cluster IP")?;
        let api = services.get("kubernetes").await?;
        let api_ip = api.spec.as_ref().and_then(|s| s.cluster_ip.clone()).context("the kubernetes Service has no cluster IP")?;
        let api_port = api.spec.as_ref().and_then(|s| s.ports.as_ref()).and_then(|p| p.first()).map(|p| p.port).context("the kubernetes Service has no port")?;
        for (name, links) in [("client-envvars", true), ("no-links", false)] {
            let p = pods::pod(name, NODE, vec![container("env3cont", &["env"])], json!({"restartPolicy": "Never", "enableServiceLinks": links}))?;
            pods::create(&env.client, &p).await?;
            kube_wait::pod(&env.client, "default", name, "phase Succeeded", START, |p| (phase(p) == "Succeeded").then_some(())).await?;
        }
        let log = |name: &str| pods::log_text(env.agent.root_dir(), "default", name, "env3cont");
        let with = log("client-envvars");
        let url = format!("tcp://{ip}:8765");
        for want in [
            format!("FOOSERVICE_SERVICE_HOST={ip}"),
            "FOOSERVICE_SERVICE_PORT=8765".to_string(),
            format!("FOOSERVICE_PORT={url}"),
            format!("FOOSERVICE_PORT_8765_TCP={url}"),
            "FOOSERVICE_PORT_8765_TCP_PROTO=tcp".to_string(),
            "FOOSERVICE_PORT_8765_TCP_PORT=8765".to_string(),
            format!("FOOSERVICE_PORT_8765_TCP_ADDR={ip}"),
            format!("KUBERNETES_SERVICE_HOST={api_ip}"),
            format!("KUBERNETES_SERVICE_PORT={api_port}"),
        ] {
            ensure!(with.lines().any(|l| l.ends_with(&format!(" {want}"))), "the container's environment lacks {want}:\n{with}");
        }
        let without = log("no-links");
        ensure!(without.lines().any(|l| l.ends_with(&format!(" KUBERNETES_SERVICE_HOST={api_ip}"))), "with enableServiceLinks off the container lacks the kubernetes Service's variables:\n{without}");
        ensure!(!without.contains("FOOSERVICE_"), "with enableServiceLinks off the container got the Service's variables:\n{without}");
        env.stop().await
    })
}
