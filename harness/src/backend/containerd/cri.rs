//! The few CRI calls the backend itself makes: readiness (Version, Status) and image presence.

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{ImageSpec, ImageStatusRequest, StatusRequest, VersionRequest};
use tonic::transport::Channel;

use crate::backend::{Error, Result};

/// A channel to the CRI socket at `socket`.
pub async fn channel(socket: &Path) -> Result<Channel> {
    fake_cri::client::channel(socket).await.map_err(|e| Error::Component(format!("CRI: {e}")))
}

/// One readiness probe: Version answers, Status reports RuntimeReady (and NetworkReady when
/// `network`), and every image in `images` is known to CRI.
async fn probe(socket: &Path, images: &[&str], network: bool) -> std::result::Result<(), String> {
    let ch = channel(socket).await.map_err(|e| e.to_string())?;
    let mut rt = RuntimeServiceClient::new(ch.clone());
    rt.version(VersionRequest { version: "v1".into() }).await.map_err(|e| format!("Version: {e}"))?;
    let status = rt.status(StatusRequest { verbose: false }).await.map_err(|e| format!("Status: {e}"))?.into_inner();
    let conds = status.status.map(|s| s.conditions).unwrap_or_default();
    let wanted: &[&str] = if network { &["RuntimeReady", "NetworkReady"] } else { &["RuntimeReady"] };
    for want in wanted {
        let c = conds.iter().find(|c| c.r#type == *want);
        if !c.is_some_and(|c| c.status) {
            return Err(format!("{want} is not true: {c:?}"));
        }
    }
    let mut img = ImageServiceClient::new(ch);
    for image in images {
        let req = ImageStatusRequest {
            image: Some(ImageSpec { image: image.to_string(), ..Default::default() }),
            verbose: false,
        };
        let st = img.image_status(req).await.map_err(|e| format!("ImageStatus {image}: {e}"))?.into_inner();
        if st.image.is_none() {
            return Err(format!("image {image} is not visible through CRI yet"));
        }
    }
    Ok(())
}

/// Waits until [`probe`] succeeds.
pub async fn wait_ready(socket: &Path, images: &[&str], timeout: Duration) -> Result<()> {
    wait_ready_as("containerd", socket, images, true, timeout).await
}

/// Waits until [`probe`] succeeds for the runtime called `who`.
pub async fn wait_ready_as(who: &str, socket: &Path, images: &[&str], network: bool, timeout: Duration) -> Result<()> {
    crate::wait::wait_for(&format!("{who}'s CRI to report ready"), timeout, || probe(socket, images, network)).await?;
    Ok(())
}
