//! The real runtime client: CRI v1 over tonic on a unix socket.

use std::collections::HashMap;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::api::{self, image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient};
use super::{CriError, ExecResult, Result, Runtime, RuntimeCondition, RuntimeVersion};

/// CRI client over a unix socket; every call is bounded by a timeout.
#[derive(Clone)]
pub struct RemoteRuntime {
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
    timeout: Duration,
    store: super::store_lock::SandboxStoreLock,
}

impl std::fmt::Debug for RemoteRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRuntime").field("timeout", &self.timeout).finish()
    }
}

impl RemoteRuntime {
    /// A lazily connecting client for `endpoint` (`unix:///path` or a plain path).
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self> {
        let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint).to_string();
        if path.is_empty() || !path.starts_with('/') {
            return Err(CriError::Connect {
                endpoint: endpoint.to_string(),
                message: "only unix:///absolute/path endpoints are supported".into(),
            });
        }
        let channel = Endpoint::from_static("http://[::]:50051")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
            }));
        let max = 64 * 1024 * 1024;
        Ok(RemoteRuntime {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(max),
            image: ImageServiceClient::new(channel).max_decoding_message_size(max),
            timeout,
            store: Default::default(),
        })
    }

    /// The lock this client's sandbox-store readers hold, for the stats client to share.
    pub fn sandbox_store_lock(&self) -> super::store_lock::SandboxStoreLock {
        self.store.clone()
    }

    async fn call<T, F>(&self, op: &'static str, extra: Duration, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let after = self.timeout + extra;
        let guarded = async {
            let _reading = match super::store_lock::reads_sandbox_store(op) {
                true => Some(self.store.read().await),
                false => None,
            };
            fut.await
        };
        let err = match tokio::time::timeout(after, guarded).await {
            Ok(Ok(resp)) => return Ok(resp.into_inner()),
            Ok(Err(status)) => CriError::Rpc { op, code: status.code(), message: status.message().to_string() },
            Err(_) => CriError::Timeout { op, after },
        };
        // Upstream's remote runtime logs each failed call by its name ("RunPodSandbox from
        // runtime service failed"); a missing object is an answer callers expect, not logged.
        if !err.is_not_found() {
            tracing::error!(error = %err, "{op} from {} service failed", service_of(op));
        }
        Err(err)
    }
}

/// The CRI service an operation belongs to, as upstream's log lines name it.
fn service_of(op: &str) -> &'static str {
    match op {
        "PullImage" | "ImageStatus" | "ListImages" | "RemoveImage" | "ImageFsInfo" => "image",
        _ => "runtime",
    }
}

impl Runtime for RemoteRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        let mut c = self.runtime.clone();
        let r = self
            .call("Version", Duration::ZERO, c.version(api::VersionRequest { version: "v1".into() }))
            .await?;
        Ok(RuntimeVersion {
            runtime_name: r.runtime_name,
            runtime_version: r.runtime_version,
            runtime_api_version: r.runtime_api_version,
        })
    }

    async fn status(&self) -> Result<Vec<RuntimeCondition>> {
        let mut c = self.runtime.clone();
        let r = self.call("Status", Duration::ZERO, c.status(api::StatusRequest { verbose: false })).await?;
        Ok(r.status
            .map(|s| {
                s.conditions
                    .into_iter()
                    .map(|c| RuntimeCondition { kind: c.r#type, status: c.status, reason: c.reason, message: c.message })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn update_pod_cidr(&self, cidr: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        let req = api::UpdateRuntimeConfigRequest {
            runtime_config: Some(api::RuntimeConfig {
                network_config: Some(api::NetworkConfig { pod_cidr: cidr.to_string() }),
            }),
        };
        self.call("UpdateRuntimeConfig", Duration::ZERO, c.update_runtime_config(req)).await?;
        Ok(())
    }

    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig, runtime_handler: &str) -> Result<String> {
        let mut c = self.runtime.clone();
        let req = api::RunPodSandboxRequest { config: Some(config), runtime_handler: runtime_handler.to_string() };
        Ok(self.call("RunPodSandbox", Duration::ZERO, c.run_pod_sandbox(req)).await?.pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        let req = api::StopPodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.call("StopPodSandbox", Duration::ZERO, c.stop_pod_sandbox(req)).await?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        let req = api::RemovePodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.call("RemovePodSandbox", Duration::ZERO, c.remove_pod_sandbox(req)).await?;
        Ok(())
    }

    async fn list_pod_sandboxes(&self, labels: HashMap<String, String>) -> Result<Vec<api::PodSandbox>> {
        let mut c = self.runtime.clone();
        let req = api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter { label_selector: labels, ..Default::default() }),
        };
        Ok(self.call("ListPodSandbox", Duration::ZERO, c.list_pod_sandbox(req)).await?.items)
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus> {
        let mut c = self.runtime.clone();
        let req = api::PodSandboxStatusRequest { pod_sandbox_id: id.to_string(), verbose: false };
        let r = self.call("PodSandboxStatus", Duration::ZERO, c.pod_sandbox_status(req)).await?;
        r.status.ok_or(CriError::Rpc {
            op: "PodSandboxStatus",
            code: tonic::Code::Internal,
            message: "response without status".into(),
        })
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        let mut c = self.runtime.clone();
        let req = api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        Ok(self.call("CreateContainer", Duration::ZERO, c.create_container(req)).await?.container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        let req = api::StartContainerRequest { container_id: id.to_string() };
        self.call("StartContainer", Duration::ZERO, c.start_container(req)).await?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let mut c = self.runtime.clone();
        let req = api::StopContainerRequest { container_id: id.to_string(), timeout: timeout.as_secs() as i64 };
        self.call("StopContainer", timeout, c.stop_container(req)).await?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        let req = api::RemoveContainerRequest { container_id: id.to_string() };
        self.call("RemoveContainer", Duration::ZERO, c.remove_container(req)).await?;
        Ok(())
    }

    async fn list_containers(&self, labels: HashMap<String, String>) -> Result<Vec<api::Container>> {
        let mut c = self.runtime.clone();
        let req = api::ListContainersRequest {
            filter: Some(api::ContainerFilter { label_selector: labels, ..Default::default() }),
        };
        Ok(self.call("ListContainers", Duration::ZERO, c.list_containers(req)).await?.containers)
    }

    async fn container_status(&self, id: &str) -> Result<api::ContainerStatus> {
        let mut c = self.runtime.clone();
        let req = api::ContainerStatusRequest { container_id: id.to_string(), verbose: false };
        let r = self.call("ContainerStatus", Duration::ZERO, c.container_status(req)).await?;
        r.status.ok_or(CriError::Rpc {
            op: "ContainerStatus",
            code: tonic::Code::Internal,
            message: "response without status".into(),
        })
    }

    async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout: Duration) -> Result<ExecResult> {
        let mut c = self.runtime.clone();
        let req = api::ExecSyncRequest {
            container_id: id.to_string(),
            cmd,
            timeout: timeout.as_secs().max(1) as i64,
        };
        let r = self.call("ExecSync", timeout, c.exec_sync(req)).await?;
        Ok(ExecResult { exit_code: r.exit_code, stdout: r.stdout, stderr: r.stderr })
    }

    async fn exec(&self, req: api::ExecRequest) -> Result<String> {
        let mut c = self.runtime.clone();
        Ok(self.call("Exec", Duration::ZERO, c.exec(req)).await?.url)
    }

    async fn attach(&self, req: api::AttachRequest) -> Result<String> {
        let mut c = self.runtime.clone();
        Ok(self.call("Attach", Duration::ZERO, c.attach(req)).await?.url)
    }

    async fn port_forward(&self, req: api::PortForwardRequest) -> Result<String> {
        let mut c = self.runtime.clone();
        Ok(self.call("PortForward", Duration::ZERO, c.port_forward(req)).await?.url)
    }

    async fn reopen_container_log(&self, id: &str) -> Result<()> {
        let mut c = self.runtime.clone();
        let req = api::ReopenContainerLogRequest { container_id: id.to_string() };
        self.call("ReopenContainerLog", Duration::ZERO, c.reopen_container_log(req)).await?;
        Ok(())
    }

    async fn image_status(&self, image: &str) -> Result<Option<api::Image>> {
        let mut c = self.image.clone();
        let req = api::ImageStatusRequest {
            image: Some(api::ImageSpec { image: image.to_string(), ..Default::default() }),
            verbose: false,
        };
        Ok(self.call("ImageStatus", Duration::ZERO, c.image_status(req)).await?.image)
    }

    async fn pull_image(&self, image: &str, auth: Option<api::AuthConfig>, sandbox_config: api::PodSandboxConfig) -> Result<String> {
        let mut c = self.image.clone();
        let req = api::PullImageRequest {
            image: Some(api::ImageSpec { image: image.to_string(), ..Default::default() }),
            auth,
            sandbox_config: Some(sandbox_config),
        };
        Ok(self.call("PullImage", Duration::ZERO, c.pull_image(req)).await?.image_ref)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failures_are_logged_with_their_service() {
        assert_eq!(super::service_of("PullImage"), "image");
        assert_eq!(super::service_of("ImageStatus"), "image");
        assert_eq!(super::service_of("RunPodSandbox"), "runtime");
        assert_eq!(super::service_of("ContainerStatus"), "runtime");
    }
}
