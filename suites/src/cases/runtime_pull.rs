//! Pulling for real: the runtime fetches images from the world's registry (no public one), by
//! tag and by digest.

use anyhow::{Context, ensure};
use k8s_cri::v1 as api;

use super::Env;
use crate::context::CaseCtx;
use crate::cri::image_spec;

/// The image the case pulls: the workload image, which the registry serves under
/// `nodekit.local/workload`.
const IMAGE: &str = harness::backend::WORKLOAD_IMAGE;

/// critest's image pulls (`PullImage` by tag and by digest, `ImageStatus` after each, a
/// missing tag refused): the workload image is removed, pulled back by tag, removed again and
/// pulled by its manifest digest. Each pull must fetch the manifest and every blob from the
/// world's registry (its counters prove the runtime really pulled, nothing came from a cache),
/// the image's id must be the config digest the registry holds, and a tag the registry does
/// not have must fail. Catches a runtime (or a profile) that cannot reach the world's
/// registry, resolves tags wrongly, or reports a pull it did not make.
pub(crate) async fn pull_by_tag_and_digest(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let served = e
        .runtime
        .registry()
        .and_then(|r| r.image(IMAGE))
        .with_context(|| format!("the world's registry does not serve {IMAGE}"))?;
    let by_digest = format!("nodekit.local/workload@{}", served.digest);
    let before = e.cri.image(IMAGE).await?.context("the workload image is present before the case")?;
    for (pull_ref, how) in [(IMAGE.to_string(), "by tag"), (by_digest.clone(), "by digest")] {
        remove(e).await?;
        let manifests_before = served_count(e, &served.digest);
        let r = e
            .cri
            .img
            .pull_image(api::PullImageRequest { image: Some(image_spec(&pull_ref)), auth: None, sandbox_config: None })
            .await
            .with_context(|| format!("PullImage {pull_ref} ({how}) from the world's registry"))?
            .into_inner();
        ensure!(r.image_ref.starts_with("sha256:"), "PullImage {how} answered image_ref {:?}", r.image_ref);
        ensure!(
            served_count(e, &served.digest) > manifests_before,
            "PullImage {pull_ref} ({how}) succeeded but the registry never served its manifest {}",
            served.digest
        );
        let img = e.cri.image(&pull_ref).await?.with_context(|| format!("ImageStatus {pull_ref} after pulling it {how}"))?;
        ensure!(img.id == before.id, "pulled {how}: image id {} where the imported image was {}", img.id, before.id);
        ensure!(img.id == r.image_ref, "PullImage answered {} but ImageStatus says {}", r.image_ref, img.id);
        ensure!(
            img.repo_digests.contains(&by_digest),
            "pulled {how}: repo_digests {:?} lack {by_digest}",
            img.repo_digests
        );
        // A container of the pulled reference runs that image.
        let pod = e.cri.pod(&format!("pulled-{}", how.replace(' ', "-")))?;
        let sid = e.cri.run_pod(&pod).await?;
        let mut ctr = crate::cri::container("c", &[]);
        ctr.config.image = Some(image_spec(&pull_ref));
        let id = e.cri.create(&sid, &pod, &ctr).await?;
        let st = e.cri.status(&id).await.context("ContainerStatus of a container of the pulled image")?;
        // containerd reports the image's repo digest there, others the image id.
        ensure!(
            st.image_ref == r.image_ref || img.repo_digests.contains(&st.image_ref),
            "a container of {pull_ref} has image_ref {}: neither PullImage's {} nor a repo digest of {:?}",
            st.image_ref,
            r.image_ref,
            img.repo_digests
        );
        e.cri.remove_pod(&sid).await.context("RemovePodSandbox")?;
    }
    // The tag back for whatever comes after (the digest pull leaves the image untagged).
    e.cri
        .img
        .pull_image(api::PullImageRequest { image: Some(image_spec(IMAGE)), auth: None, sandbox_config: None })
        .await
        .context("PullImage by tag again")?;
    let missing = "nodekit.local/workload:no-such-tag";
    let r = e.cri.img.pull_image(api::PullImageRequest { image: Some(image_spec(missing)), auth: None, sandbox_config: None }).await;
    match r {
        Err(s) => ensure!(s.message().contains("not found"), "PullImage of a missing tag: {}: {}", s.code(), s.message()),
        Ok(ok) => anyhow::bail!("PullImage of a tag the registry does not have succeeded: {:?}", ok.into_inner()),
    }
    Ok(())
}

async fn remove(e: &mut Env) -> anyhow::Result<()> {
    e.cri.img.remove_image(api::RemoveImageRequest { image: Some(image_spec(IMAGE)) }).await.context("RemoveImage")?;
    ensure!(e.cri.image(IMAGE).await?.is_none(), "ImageStatus after RemoveImage still finds the image");
    Ok(())
}

fn served_count(e: &Env, digest: &str) -> u64 {
    e.runtime.registry().map_or(0, |r| r.stats().digest(digest))
}
