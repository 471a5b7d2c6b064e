//! The container runtime as the agent sees it: a narrow [`Runtime`] trait over the CRI v1 calls
//! the agent makes, with the real tonic client in [`remote`].

pub mod remote;
pub mod store_lock;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

pub use k8s_cri::v1 as api;

/// CRI labels and annotations the agent sets and adopts by (same keys as upstream).
pub mod keys {
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
    pub const TERMINATION_GRACE: &str = "io.kubernetes.pod.terminationGracePeriod";
    pub const INIT_CONTAINER: &str = "io.nodekit.container.init";
}

/// A failed runtime call. A call's error prints as grpc-go's status error does in upstream's
/// kubelet messages (`rpc error: code = Unknown desc = …`); `op` and the timeout are for logs.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("connecting to the runtime at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("rpc error: code = {} desc = {message}", go_code(*code))]
    Rpc { op: &'static str, code: tonic::Code, message: String },
    #[error("rpc error: code = DeadlineExceeded desc = context deadline exceeded")]
    Timeout { op: &'static str, after: Duration },
}

/// grpc-go's name of `code` (`codes.Code.String()`).
fn go_code(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "Canceled",
        C::Unknown => "Unknown",
        C::InvalidArgument => "InvalidArgument",
        C::DeadlineExceeded => "DeadlineExceeded",
        C::NotFound => "NotFound",
        C::AlreadyExists => "AlreadyExists",
        C::PermissionDenied => "PermissionDenied",
        C::ResourceExhausted => "ResourceExhausted",
        C::FailedPrecondition => "FailedPrecondition",
        C::Aborted => "Aborted",
        C::OutOfRange => "OutOfRange",
        C::Unimplemented => "Unimplemented",
        C::Internal => "Internal",
        C::Unavailable => "Unavailable",
        C::DataLoss => "DataLoss",
        C::Unauthenticated => "Unauthenticated",
    }
}

impl CriError {
    /// True when the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Rpc { code: tonic::Code::NotFound, .. })
    }

    /// The status message alone (grpc-go's `status.Message()`), as upstream's kubelet shows a
    /// failed CreateContainer or StartContainer; other errors print whole.
    pub fn message(&self) -> String {
        match self {
            CriError::Rpc { message, .. } => message.clone(),
            CriError::Timeout { .. } => "context deadline exceeded".into(),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = CriError> = std::result::Result<T, E>;

/// Version information of the runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub runtime_name: String,
    pub runtime_version: String,
    pub runtime_api_version: String,
}

/// One runtime condition (RuntimeReady / NetworkReady).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeCondition {
    pub kind: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// Result of an ExecSync call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The CRI calls the agent needs. Implemented by [`remote::RemoteRuntime`] (tonic over a unix
/// socket) and by test doubles.
pub trait Runtime: Send + Sync + 'static {
    fn version(&self) -> impl Future<Output = Result<RuntimeVersion>> + Send;
    fn status(&self) -> impl Future<Output = Result<Vec<RuntimeCondition>>> + Send;
    fn update_pod_cidr(&self, cidr: &str) -> impl Future<Output = Result<()>> + Send;
    /// RunPodSandbox with the runtime handler of the pod's RuntimeClass ("" for the default).
    fn run_pod_sandbox(&self, config: api::PodSandboxConfig, runtime_handler: &str) -> impl Future<Output = Result<String>> + Send;
    fn stop_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn remove_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn list_pod_sandboxes(
        &self,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<Vec<api::PodSandbox>>> + Send;
    fn pod_sandbox_status(&self, id: &str) -> impl Future<Output = Result<api::PodSandboxStatus>> + Send;
    fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn stop_container(&self, id: &str, timeout: Duration) -> impl Future<Output = Result<()>> + Send;
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn list_containers(
        &self,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<Vec<api::Container>>> + Send;
    fn container_status(&self, id: &str) -> impl Future<Output = Result<api::ContainerStatus>> + Send;
    fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecResult>> + Send;
    /// CRI Exec: a URL on the runtime's streaming server where the command runs once a
    /// client upgrades on it.
    fn exec(&self, req: api::ExecRequest) -> impl Future<Output = Result<String>> + Send;
    /// CRI Attach: a URL to attach to the container's main process.
    fn attach(&self, req: api::AttachRequest) -> impl Future<Output = Result<String>> + Send;
    /// CRI PortForward: a URL that forwards ports into the sandbox's network namespace.
    fn port_forward(&self, req: api::PortForwardRequest) -> impl Future<Output = Result<String>> + Send;
    /// CRI ReopenContainerLog: the runtime starts a new log file at the container's log path
    /// (after the old one was renamed).
    fn reopen_container_log(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// The image if present on the node.
    fn image_status(&self, image: &str) -> impl Future<Output = Result<Option<api::Image>>> + Send;
    /// CRI PullImage, with the credentials `auth` (none: an anonymous pull).
    fn pull_image(
        &self,
        image: &str,
        auth: Option<api::AuthConfig>,
        sandbox_config: api::PodSandboxConfig,
    ) -> impl Future<Output = Result<String>> + Send;
}
