//! Starting and stopping the server: the UDS listener, the services, the library handle.
use crate::authority::LenientAuthority;
use crate::config::{Config, Faults};
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::service::Service;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Entry point of the library.
#[derive(Debug)]
pub struct FakeCri;

/// A running fake-cri.
pub struct Handle {
    rt: Arc<Runtime>,
    server: tokio::task::JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    stop_serving: tokio_util::sync::CancellationToken,
    socket: PathBuf,
}

impl FakeCri {
    /// Starts serving CRI on `config.socket`: loads and re-attaches persisted state first.
    /// Must be called inside a tokio runtime, in the network namespace of the node.
    pub async fn start(config: Config) -> Result<Handle> {
        let socket = config.socket.clone();
        let rt = Runtime::new(config)?;
        rt.reattach();
        let pod_cidr = crate::runtime::lock(&rt.state).pod_cidr.clone();
        if let Some(c) = pod_cidr {
            rt.set_pod_cidr(&c).await?;
        }
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
        }
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket).map_err(Error::io(format!("bind {}", socket.display())))?;
        let stop_serving = tokio_util::sync::CancellationToken::new();
        let streams = start_streaming(&rt, &stop_serving).await;
        let svc = Service { rt: rt.clone(), streams };
        let stop = stop_serving.clone();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RuntimeServiceServer::new(svc.clone()).max_decoding_message_size(16 << 20).max_encoding_message_size(64 << 20))
                .add_service(ImageServiceServer::new(svc))
                .serve_with_incoming_shutdown(incoming(listener), async move { stop.cancelled().await }),
        );
        Ok(Handle { rt, server, stop_serving, socket })
    }
}

/// The accepted connections, each behind [`LenientAuthority`]: h2 would refuse (RST_STREAM
/// PROTOCOL_ERROR) every call of a gRPC C-core client, whose `:authority` for a unix socket is the
/// percent-encoded socket path; like containerd, fake-cri ignores what it cannot parse.
fn incoming(
    listener: tokio::net::UnixListener,
) -> impl futures::Stream<Item = std::io::Result<LenientAuthority<tokio::net::UnixStream>>> {
    use futures::TryStreamExt;
    tokio_stream::wrappers::UnixListenerStream::new(listener).map_ok(LenientAuthority::new)
}

/// Binds the streaming server on `stream_address` and serves it until `stop`. When it cannot
/// bind (a network namespace whose loopback is down has no 127.0.0.1), the runtime still
/// serves CRI and every streaming call answers why there is no streaming server.
async fn start_streaming(rt: &Arc<Runtime>, stop: &tokio_util::sync::CancellationToken) -> crate::service::Streams {
    let addr = rt.cfg.stream_address.clone();
    let listener = match tokio::net::TcpListener::bind(&addr).await.and_then(|l| l.local_addr().map(|a| (l, a))) {
        Ok(l) => l,
        Err(e) => {
            let why = format!("the streaming server could not listen on {addr}: {e}");
            tracing::warn!("{why}; Exec, Attach and PortForward will fail");
            return Err(why);
        }
    };
    let (listener, bound) = listener;
    let server = streaming::Server::new(Arc::new(crate::streams::Streams(rt.clone())), format!("http://{bound}"));
    rt.tasks.spawn(server.clone().serve(listener, stop.clone()));
    tracing::info!(%bound, "streaming server listening");
    Ok(server)
}

impl Handle {
    /// The CRI socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.rt.cfg.state_dir
    }

    /// Current faults.
    pub fn faults(&self) -> Faults {
        self.rt.faults()
    }

    /// Replaces the faults (a later change of `<state-dir>/faults.json` overrides them again).
    pub fn set_faults(&self, f: Faults) {
        self.rt.set_faults(f);
    }

    async fn stop_server(&mut self) {
        self.stop_serving.cancel();
        self.rt.cancel.cancel();
        // Graceful shutdown waits for clients to hang up; do not wait for idle ones for long.
        if tokio::time::timeout(std::time::Duration::from_millis(500), &mut self.server).await.is_err() {
            self.server.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Stops serving; with `kill_on_shutdown` (the default) kills every container and removes
    /// veths, network namespaces, hostPort rules, cgroups and a bridge it created.
    pub async fn shutdown(mut self) -> Result<()> {
        if self.rt.cfg.kill_on_shutdown {
            self.rt.cleanup_all().await;
        }
        self.stop_server().await;
        self.rt.tasks.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.rt.tasks.wait()).await;
        Ok(())
    }

    /// Simulates a runtime crash: stops serving and supervising but leaves containers, network
    /// namespaces and state in place, so that a new `FakeCri::start` on the same state dir
    /// re-attaches to them.
    pub async fn abandon(mut self) {
        self.stop_server().await;
        self.rt.tasks.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.rt.tasks.wait()).await;
    }
}
