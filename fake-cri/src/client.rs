//! A CRI client over a unix socket (tonic + hyper-util + tower::service_fn).
use crate::error::{Error, Result};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::Path;
use tonic::transport::{Channel, Endpoint, Uri};

/// Runtime and image clients sharing one connection.
#[derive(Clone)]
pub struct Client {
    /// RuntimeService.
    pub runtime: RuntimeServiceClient<Channel>,
    /// ImageService.
    pub images: ImageServiceClient<Channel>,
}

/// A gRPC channel to the CRI socket at `socket` (unix domain socket; the URI is a placeholder).
pub async fn channel(socket: &Path) -> Result<Channel> {
    let path = socket.to_path_buf();
    Endpoint::try_from("http://[::]:50051")
        .map_err(|e| Error::Unknown(format!("endpoint: {e}")))?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .map_err(|e| Error::Unknown(format!("connect {}: {e}", socket.display())))
}

/// Connects to a CRI socket.
pub async fn connect(socket: &Path) -> Result<Client> {
    let channel = channel(socket).await?;
    Ok(Client {
        runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
        images: ImageServiceClient::new(channel),
    })
}
