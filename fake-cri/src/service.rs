//! The gRPC services: CRI v1 RuntimeService and ImageService over the runtime, with injected
//! latency and the call log. Unimplemented RPCs answer `Unimplemented`.
use crate::error::Error;
use crate::runtime::{Runtime, lock};
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// Runtime name reported by Version.
pub const RUNTIME_NAME: &str = "fake-cri";
/// Runtime version reported by Version.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Both CRI services over one runtime.
#[derive(Clone)]
pub struct Service {
    /// The runtime.
    pub rt: Arc<Runtime>,
    /// The streaming server behind Exec, Attach and PortForward (or why there is none).
    pub streams: Streams,
}

/// The streaming server, or why it is not running.
pub type Streams = std::result::Result<Arc<streaming::Server<crate::streams::Streams>>, String>;

type R<T> = Result<Response<T>, Status>;

impl Service {
    async fn call<T, F>(&self, method: &str, id: &str, f: F) -> R<T>
    where
        F: std::future::Future<Output = Result<T, Error>>,
    {
        let start = Instant::now();
        let latency = self.rt.faults().rpc_latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let r = f.await;
        let code = match &r {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        };
        self.rt.calllog.record(method, id, start.elapsed(), code);
        r.map(Response::new).map_err(Status::from)
    }

    fn unimplemented<T>(&self, method: &str) -> R<T> {
        self.rt.calllog.record(method, "", Duration::ZERO, tonic::Code::Unimplemented);
        Err(Status::unimplemented(format!("{method} is not implemented by fake-cri")))
    }
}

type EventStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl RuntimeService for Service {
    async fn version(&self, _r: Request<cri::VersionRequest>) -> R<cri::VersionResponse> {
        self.call("Version", "", async {
            Ok(cri::VersionResponse {
                version: "0.1.0".into(),
                runtime_name: RUNTIME_NAME.into(),
                runtime_version: RUNTIME_VERSION.into(),
                runtime_api_version: "v1".into(),
            })
        })
        .await
    }

    async fn run_pod_sandbox(&self, r: Request<cri::RunPodSandboxRequest>) -> R<cri::RunPodSandboxResponse> {
        let req = r.into_inner();
        let name = req.config.as_ref().and_then(|c| c.metadata.as_ref()).map(|m| m.name.clone()).unwrap_or_default();
        self.call("RunPodSandbox", &name, async {
            let id = self.rt.run_pod_sandbox(req.config, &req.runtime_handler).await?;
            Ok(cri::RunPodSandboxResponse { pod_sandbox_id: id })
        })
        .await
    }

    async fn stop_pod_sandbox(&self, r: Request<cri::StopPodSandboxRequest>) -> R<cri::StopPodSandboxResponse> {
        let id = r.into_inner().pod_sandbox_id;
        self.call("StopPodSandbox", &id, async {
            self.rt.stop_pod_sandbox(&id).await?;
            Ok(cri::StopPodSandboxResponse {})
        })
        .await
    }

    async fn remove_pod_sandbox(&self, r: Request<cri::RemovePodSandboxRequest>) -> R<cri::RemovePodSandboxResponse> {
        let id = r.into_inner().pod_sandbox_id;
        self.call("RemovePodSandbox", &id, async {
            self.rt.remove_pod_sandbox(&id).await?;
            Ok(cri::RemovePodSandboxResponse {})
        })
        .await
    }

    async fn pod_sandbox_status(&self, r: Request<cri::PodSandboxStatusRequest>) -> R<cri::PodSandboxStatusResponse> {
        let req = r.into_inner();
        self.call("PodSandboxStatus", &req.pod_sandbox_id, async { self.rt.pod_sandbox_status(&req.pod_sandbox_id, req.verbose) }).await
    }

    async fn list_pod_sandbox(&self, r: Request<cri::ListPodSandboxRequest>) -> R<cri::ListPodSandboxResponse> {
        let req = r.into_inner();
        let about = filtered_pod(req.filter.as_ref().map(|f| &f.label_selector));
        self.call("ListPodSandbox", &about, async { Ok(cri::ListPodSandboxResponse { items: self.rt.list_pod_sandbox(req.filter) }) }).await
    }

    async fn create_container(&self, r: Request<cri::CreateContainerRequest>) -> R<cri::CreateContainerResponse> {
        let req = r.into_inner();
        self.call("CreateContainer", &req.pod_sandbox_id.clone(), async {
            let id = self.rt.create_container(&req.pod_sandbox_id, req.config).await?;
            Ok(cri::CreateContainerResponse { container_id: id })
        })
        .await
    }

    async fn start_container(&self, r: Request<cri::StartContainerRequest>) -> R<cri::StartContainerResponse> {
        let id = r.into_inner().container_id;
        self.call("StartContainer", &id, async {
            self.rt.start_container(&id).await?;
            Ok(cri::StartContainerResponse {})
        })
        .await
    }

    async fn stop_container(&self, r: Request<cri::StopContainerRequest>) -> R<cri::StopContainerResponse> {
        let req = r.into_inner();
        self.call("StopContainer", &req.container_id, async {
            self.rt.stop_container(&req.container_id, req.timeout).await?;
            Ok(cri::StopContainerResponse {})
        })
        .await
    }

    async fn remove_container(&self, r: Request<cri::RemoveContainerRequest>) -> R<cri::RemoveContainerResponse> {
        let id = r.into_inner().container_id;
        self.call("RemoveContainer", &id, async {
            self.rt.remove_container(&id).await?;
            Ok(cri::RemoveContainerResponse {})
        })
        .await
    }

    async fn list_containers(&self, r: Request<cri::ListContainersRequest>) -> R<cri::ListContainersResponse> {
        let req = r.into_inner();
        let about = filtered_pod(req.filter.as_ref().map(|f| &f.label_selector));
        self.call("ListContainers", &about, async { Ok(cri::ListContainersResponse { containers: self.rt.list_containers(req.filter) }) }).await
    }

    async fn container_status(&self, r: Request<cri::ContainerStatusRequest>) -> R<cri::ContainerStatusResponse> {
        let req = r.into_inner();
        self.call("ContainerStatus", &req.container_id, async { self.rt.container_status(&req.container_id, req.verbose) }).await
    }

    async fn update_container_resources(&self, r: Request<cri::UpdateContainerResourcesRequest>) -> R<cri::UpdateContainerResourcesResponse> {
        let req = r.into_inner();
        self.call("UpdateContainerResources", &req.container_id, async {
            self.rt.update_container_resources(&req.container_id, req.linux)?;
            Ok(cri::UpdateContainerResourcesResponse {})
        })
        .await
    }

    async fn reopen_container_log(&self, r: Request<cri::ReopenContainerLogRequest>) -> R<cri::ReopenContainerLogResponse> {
        let id = r.into_inner().container_id;
        self.call("ReopenContainerLog", &id, async {
            self.rt.reopen_container_log(&id)?;
            Ok(cri::ReopenContainerLogResponse {})
        })
        .await
    }

    async fn exec_sync(&self, r: Request<cri::ExecSyncRequest>) -> R<cri::ExecSyncResponse> {
        let req = r.into_inner();
        self.call("ExecSync", &req.container_id, async {
            let (stdout, stderr, exit_code) = self.rt.exec_sync(&req.container_id, req.cmd, req.timeout).await?;
            Ok(cri::ExecSyncResponse { stdout, stderr, exit_code })
        })
        .await
    }

    async fn exec(&self, r: Request<cri::ExecRequest>) -> R<cri::ExecResponse> {
        let q = r.into_inner();
        self.call("Exec", &q.container_id, async {
            self.rt.exec_target(&q.container_id)?;
            let url = self.streaming()?.get_exec(&q.container_id, q.cmd, q.tty, q.stdin, q.stdout, q.stderr).map_err(stream_error)?;
            Ok(cri::ExecResponse { url })
        })
        .await
    }

    async fn attach(&self, r: Request<cri::AttachRequest>) -> R<cri::AttachResponse> {
        let q = r.into_inner();
        self.call("Attach", &q.container_id, async {
            self.rt.exec_target(&q.container_id)?;
            let url = self.streaming()?.get_attach(&q.container_id, q.tty, q.stdin, q.stdout, q.stderr).map_err(stream_error)?;
            Ok(cri::AttachResponse { url })
        })
        .await
    }

    async fn port_forward(&self, r: Request<cri::PortForwardRequest>) -> R<cri::PortForwardResponse> {
        let q = r.into_inner();
        self.call("PortForward", &q.pod_sandbox_id, async {
            crate::runtime::lock(&self.rt.state).sandbox_id(&q.pod_sandbox_id)?;
            let url = self.streaming()?.get_port_forward(&q.pod_sandbox_id).map_err(stream_error)?;
            Ok(cri::PortForwardResponse { url })
        })
        .await
    }

    async fn container_stats(&self, r: Request<cri::ContainerStatsRequest>) -> R<cri::ContainerStatsResponse> {
        let id = r.into_inner().container_id;
        self.call("ContainerStats", &id, async { Ok(cri::ContainerStatsResponse { stats: Some(self.rt.container_stats(&id)?) }) }).await
    }

    async fn list_container_stats(&self, r: Request<cri::ListContainerStatsRequest>) -> R<cri::ListContainerStatsResponse> {
        let req = r.into_inner();
        self.call("ListContainerStats", "", async { Ok(cri::ListContainerStatsResponse { stats: self.rt.list_container_stats(req.filter) }) })
            .await
    }

    async fn pod_sandbox_stats(&self, r: Request<cri::PodSandboxStatsRequest>) -> R<cri::PodSandboxStatsResponse> {
        let id = r.into_inner().pod_sandbox_id;
        self.call("PodSandboxStats", &id, async { Ok(cri::PodSandboxStatsResponse { stats: Some(self.rt.pod_sandbox_stats(&id)?) }) }).await
    }

    async fn list_pod_sandbox_stats(&self, r: Request<cri::ListPodSandboxStatsRequest>) -> R<cri::ListPodSandboxStatsResponse> {
        let req = r.into_inner();
        self.call("ListPodSandboxStats", "", async { Ok(cri::ListPodSandboxStatsResponse { stats: self.rt.list_pod_sandbox_stats(req.filter) }) })
            .await
    }

    async fn update_runtime_config(&self, r: Request<cri::UpdateRuntimeConfigRequest>) -> R<cri::UpdateRuntimeConfigResponse> {
        let req = r.into_inner();
        let cidr = req.runtime_config.and_then(|c| c.network_config).map(|n| n.pod_cidr).unwrap_or_default();
        self.call("UpdateRuntimeConfig", &cidr.clone(), async {
            self.rt.set_pod_cidr(&cidr).await?;
            Ok(cri::UpdateRuntimeConfigResponse {})
        })
        .await
    }

    async fn status(&self, r: Request<cri::StatusRequest>) -> R<cri::StatusResponse> {
        let verbose = r.into_inner().verbose;
        self.call("Status", "", async {
            let net = self.rt.network_ready();
            let ready = self.rt.runtime_ready();
            let conditions = vec![
                cri::RuntimeCondition {
                    r#type: "RuntimeReady".into(),
                    status: ready.is_ok(),
                    reason: if ready.is_ok() { String::new() } else { "RuntimeNotReady".into() },
                    message: ready.err().unwrap_or_default(),
                },
                cri::RuntimeCondition {
                    r#type: "NetworkReady".into(),
                    status: net,
                    reason: if net { String::new() } else { "NetworkPluginNotReady".into() },
                    message: if net { String::new() } else { "Network plugin returns error: cni plugin not initialized".into() },
                },
            ];
            let mut info = HashMap::new();
            if verbose {
                let st = lock(&self.rt.state);
                let v = serde_json::json!({
                    "podCIDR": st.pod_cidr, "bridge": self.rt.cfg.bridge, "stateDir": self.rt.cfg.state_dir,
                    "sandboxes": st.sandboxes.len(), "containers": st.containers.len(),
                    "cgroupParent": self.rt.cgroup_parent, "faults": self.rt.faults(),
                    "containerEventsDropped": self.rt.events_dropped.load(std::sync::atomic::Ordering::Relaxed),
                });
                info.insert("config".to_string(), v.to_string());
            }
            Ok(cri::StatusResponse {
                status: Some(cri::RuntimeStatus { conditions }),
                info,
                runtime_handlers: std::iter::once(String::new())
                    .chain(self.rt.cfg.runtime_handlers.iter().cloned())
                    .map(|name| cri::RuntimeHandler { name, features: Some(cri::RuntimeHandlerFeatures::default()) })
                    .collect(),
                features: Some(cri::RuntimeFeatures::default()),
            })
        })
        .await
    }

    async fn checkpoint_container(&self, _r: Request<cri::CheckpointContainerRequest>) -> R<cri::CheckpointContainerResponse> {
        self.unimplemented("CheckpointContainer")
    }

    type GetContainerEventsStream = EventStream;

    async fn get_container_events(&self, _r: Request<cri::GetEventsRequest>) -> R<Self::GetContainerEventsStream> {
        let rx = self.rt.events.subscribe();
        let cancel = self.rt.cancel.clone();
        self.rt.calllog.record("GetContainerEvents", "", Duration::ZERO, tonic::Code::Ok);
        let s = event_stream(rx, cancel, self.rt.events_dropped.clone());
        Ok(Response::new(Box::pin(s)))
    }

    async fn list_metric_descriptors(&self, _r: Request<cri::ListMetricDescriptorsRequest>) -> R<cri::ListMetricDescriptorsResponse> {
        self.unimplemented("ListMetricDescriptors")
    }

    async fn list_pod_sandbox_metrics(&self, _r: Request<cri::ListPodSandboxMetricsRequest>) -> R<cri::ListPodSandboxMetricsResponse> {
        self.unimplemented("ListPodSandboxMetrics")
    }

    async fn runtime_config(&self, _r: Request<cri::RuntimeConfigRequest>) -> R<cri::RuntimeConfigResponse> {
        self.call("RuntimeConfig", "", async {
            Ok(cri::RuntimeConfigResponse { linux: Some(cri::LinuxRuntimeConfiguration { cgroup_driver: cri::CgroupDriver::Cgroupfs as i32 }) })
        })
        .await
    }
}

use futures::StreamExt;

/// The GetContainerEvents stream of one subscriber. A subscriber too slow for the buffer loses
/// events: the loss is counted in `dropped`, logged, and ends its stream with ResourceExhausted
/// (it must list and subscribe again) instead of going on with a silent gap.
fn event_stream(
    rx: tokio::sync::broadcast::Receiver<cri::ContainerEventResponse>,
    cancel: tokio_util::sync::CancellationToken,
    dropped: Arc<std::sync::atomic::AtomicU64>,
) -> EventStream {
    let s = tokio_stream::wrappers::BroadcastStream::new(rx)
        .take_until(async move { cancel.cancelled().await })
        .scan(false, move |ended, e| {
            let item = if *ended {
                None
            } else {
                match e {
                    Ok(ev) => Some(Ok(ev)),
                    Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                        *ended = true;
                        dropped.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(dropped = n, "a GetContainerEvents subscriber fell behind; its stream ends");
                        Some(Err(Status::resource_exhausted(format!(
                            "{n} container events were dropped because this subscriber fell behind; list the containers and subscribe again"
                        ))))
                    }
                }
            };
            futures::future::ready(item)
        });
    Box::pin(s)
}

/// The image an ImageStatus, PullImage or RemoveImage request asks about (non-empty).
#[doc(hidden)]
pub fn image_query(spec: &Option<cri::ImageSpec>) -> Result<String, Error> {
    let q = spec.as_ref().map(|s| s.image.clone()).unwrap_or_default();
    if q.is_empty() {
        return Err(Error::InvalidArgument("image spec with a non-empty image is required".into()));
    }
    Ok(q)
}

#[tonic::async_trait]
impl ImageService for Service {
    async fn list_images(&self, r: Request<cri::ListImagesRequest>) -> R<cri::ListImagesResponse> {
        let req = r.into_inner();
        self.call("ListImages", "", async {
            let q = req.filter.and_then(|f| f.image).map(|i| i.image).unwrap_or_default();
            let st = lock(&self.rt.state);
            let images = crate::images::present_images(&self.rt.cfg.catalog, &st.images_present)
                .into_iter()
                .filter(|names| q.is_empty() || names.iter().any(|e| crate::images::matches(e, &q)))
                .map(|names| crate::images::to_cri(&names))
                .collect();
            Ok(cri::ListImagesResponse { images })
        })
        .await
    }

    async fn image_status(&self, r: Request<cri::ImageStatusRequest>) -> R<cri::ImageStatusResponse> {
        let req = r.into_inner();
        let q = req.image.as_ref().map(|s| s.image.clone()).unwrap_or_default();
        self.call("ImageStatus", &q.clone(), async {
            let q = image_query(&req.image)?;
            let image = self.rt.present_cri_image(&q);
            let mut info = HashMap::new();
            if req.verbose
                && let Some(i) = &image {
                    info.insert("info".to_string(), serde_json::json!({ "id": i.id, "repoTags": i.repo_tags }).to_string());
                }
            Ok(cri::ImageStatusResponse { image, info })
        })
        .await
    }

    async fn pull_image(&self, r: Request<cri::PullImageRequest>) -> R<cri::PullImageResponse> {
        let req = r.into_inner();
        let q = req.image.as_ref().map(|s| s.image.clone()).unwrap_or_default();
        self.call("PullImage", &q.clone(), async {
            let q = image_query(&req.image)?;
            let entry = self
                .rt
                .cfg
                .catalog
                .images
                .iter()
                .find(|e| crate::images::matches(e, &q))
                .cloned()
                .ok_or_else(|| Error::Unknown(crate::images::not_in_catalog(&q, &self.rt.cfg.catalog)))?;
            let faults = self.rt.faults();
            let delay = faults.pull_delay(&entry);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Some(msg) = faults.pull_error.get(&entry.reference).or(entry.pull_error.as_ref()) {
                return Err(Error::Unknown(format!("failed to pull and unpack image {:?}: {msg}", entry.reference)));
            }
            crate::pull_auth::check(&entry, req.auth.as_ref()).map_err(Error::Unknown)?;
            let mut st = lock(&self.rt.state);
            st.images_present.insert(entry.reference.clone());
            st.images_removed.remove(&entry.reference);
            self.rt.save_meta(&st);
            Ok(cri::PullImageResponse { image_ref: crate::images::image_id(&entry) })
        })
        .await
    }

    async fn remove_image(&self, r: Request<cri::RemoveImageRequest>) -> R<cri::RemoveImageResponse> {
        let req = r.into_inner();
        let q = req.image.as_ref().map(|s| s.image.clone()).unwrap_or_default();
        self.call("RemoveImage", &q.clone(), async {
            let q = image_query(&req.image)?;
            // Like containerd: the image goes under every name it has.
            let mut st = lock(&self.rt.state);
            if let Some(names) = crate::images::present_image(&self.rt.cfg.catalog, &st.images_present, &q) {
                let names: Vec<String> = names.iter().map(|e| e.reference.clone()).collect();
                for r in names {
                    st.images_present.remove(&r);
                    st.images_removed.insert(r);
                }
                self.rt.save_meta(&st);
            }
            Ok(cri::RemoveImageResponse {})
        })
        .await
    }

    async fn image_fs_info(&self, _r: Request<cri::ImageFsInfoRequest>) -> R<cri::ImageFsInfoResponse> {
        self.call("ImageFsInfo", "", async { Ok(self.rt.image_fs_info()) }).await
    }
}

impl Service {
    /// The streaming server, or Unavailable saying why it is not running.
    fn streaming(&self) -> Result<&Arc<streaming::Server<crate::streams::Streams>>, Error> {
        self.streams.as_ref().map_err(|why| Error::Unavailable(why.clone()))
    }
}

/// A refused streaming request, with the gRPC code the streaming server gives it.
fn stream_error(e: streaming::RequestError) -> Error {
    match e.code() {
        streaming::RequestErrorCode::InvalidArgument => Error::InvalidArgument(e.to_string()),
        streaming::RequestErrorCode::ResourceExhausted => Error::ResourceExhausted(e.to_string()),
        streaming::RequestErrorCode::Internal => Error::Unknown(e.to_string()),
    }
}

/// What a List call is about in the call log: the pod uid its label selector names
/// (`io.kubernetes.pod.uid`), empty for a list of everything.
fn filtered_pod(selector: Option<&std::collections::HashMap<String, String>>) -> String {
    selector.and_then(|s| s.get("io.kubernetes.pod.uid")).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscriber that fell behind the buffer gets ResourceExhausted naming the loss (counted),
    /// and nothing after it.
    #[tokio::test]
    async fn lagging_subscriber_is_told_not_left_with_a_gap() {
        let (tx, rx) = tokio::sync::broadcast::channel(2);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut s = event_stream(rx, tokio_util::sync::CancellationToken::new(), dropped.clone());
        for i in 0..5 {
            tx.send(cri::ContainerEventResponse { container_id: format!("c{i}"), ..Default::default() }).unwrap();
        }
        let first = s.next().await.expect("an item");
        let err = first.expect_err("the first item reports the loss");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.message().starts_with("3 container events were dropped"), "{err:?}");
        assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert!(s.next().await.is_none(), "the stream ends after the loss");
    }
}
