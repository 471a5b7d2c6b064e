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
        remove_by(e, IMAGE, &[IMAGE.to_string()]).await?;
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
        // critest: ListImages right after the pull has it too.
        let listed = list(e).await?;
        ensure!(listed.iter().any(|i| i.id == r.image_ref), "ListImages right after PullImage {pull_ref} ({how}) lacks {}: {listed:?}", r.image_ref);
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
        // critest's "same image identifier across all APIs": a runtime that sets a container's
        // image_id sets PullImage's image_ref there.
        ensure!(st.image_id.is_empty() || st.image_id == r.image_ref, "a container of {pull_ref} has image_id {}, PullImage answered {}", st.image_id, r.image_ref);
        e.cri.remove_pod(&sid).await.context("RemovePodSandbox")?;
    }
    // The tag back for whatever comes after (the digest pull leaves the image untagged).
    pull_all(e, &[IMAGE.to_string()]).await.context("PullImage by tag again")?;
    let missing = "nodekit.local/workload:no-such-tag";
    let r = e.cri.img.pull_image(api::PullImageRequest { image: Some(image_spec(missing)), auth: None, sandbox_config: None }).await;
    match r {
        Err(s) => ensure!(s.message().contains("not found"), "PullImage of a missing tag: {}: {}", s.code(), s.message()),
        Ok(ok) => anyhow::bail!("PullImage of a tag the registry does not have succeeded: {:?}", ok.into_inner()),
    }
    Ok(())
}

fn served_count(e: &Env, digest: &str) -> u64 {
    e.runtime.registry().map_or(0, |r| r.stats().digest(digest))
}

/// critest's images under several names: one image as three tags of
/// `nodekit.local/test-image-tags` and as a tag of a second registry host (the world's registry
/// serves it so to a pulling runtime; fake-cri's catalog holds it so). Removing it by one tag
/// removes every name; the three tags pulled back are one image, listed once, whose
/// `repo_tags` are exactly those three; pulled from the second registry it has the same id, and
/// removing it there removes the names of the first; three RemoveImage calls at once, one per
/// tag, all succeed and leave none. Catches a runtime that keeps a removed image under its other
/// names, lists an image once per tag, loses or invents tags, gives one image two ids by
/// registry, or fails a removal that raced another.
pub(crate) async fn several_tags(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let names: Vec<String> = harness::oci::TAGGED_IMAGE_REFS.iter().map(|r| r.to_string()).collect();
    let (tags, other) = (&names[..3], &names[3]);
    if let Some(registry) = e.runtime.registry() {
        let digests: Vec<String> = names
            .iter()
            .map(|t| registry.image(t).map(|i| i.digest).with_context(|| format!("the world's registry does not serve {t}")))
            .collect::<anyhow::Result<_>>()?;
        ensure!(digests.windows(2).all(|w| w[0] == w[1]), "the world's registry serves {names:?} as different images: {digests:?}");
    }
    let before = e.cri.image(&tags[0]).await?.with_context(|| format!("{} is present before the case", tags[0]))?;

    remove_by(e, &tags[0], &names).await?;
    let listed = list(e).await?;
    ensure!(!listed.iter().any(|i| i.id == before.id), "after RemoveImage {}, ListImages still lists {}: {listed:?}", tags[0], before.id);

    let id = pull_all(e, tags).await?;
    let listed = list(e).await?;
    let same: Vec<&api::Image> = listed.iter().filter(|i| i.id == id).collect();
    let [img] = same.as_slice() else { anyhow::bail!("ListImages lists the image {id} {} times: {same:?}", same.len()) };
    let (mut got, mut want) = (img.repo_tags.clone(), tags.to_vec());
    got.sort();
    want.sort();
    ensure!(got == want, "the image pulled under three tags has repo_tags {got:?}, expected exactly {want:?}");

    let from_other = pull_all(e, std::slice::from_ref(other)).await?;
    ensure!(from_other == id, "the same image pulled from a second registry has id {from_other}, from the first {id}");
    remove_by(e, other, &names).await?;

    pull_all(e, tags).await?;
    let removals = tags.iter().map(|t| {
        let mut img = e.cri.img.clone();
        let t = t.clone();
        async move { img.remove_image(api::RemoveImageRequest { image: Some(image_spec(&t)) }).await.map_err(|s| format!("RemoveImage {t}: {}: {}", s.code(), s.message())) }
    });
    let failed: Vec<String> = futures::future::join_all(removals).await.into_iter().filter_map(Result::err).collect();
    ensure!(failed.is_empty(), "simultaneous RemoveImage calls failed: {failed:?}");
    for t in tags {
        ensure!(e.cri.image(t).await?.is_none(), "after the simultaneous removals ImageStatus {t} still finds the image");
    }
    Ok(())
}

/// critest's "listImage should get exactly 3 image in the result list": three images of one
/// name each (the workload image, agnhost, upstream's pause) are removed and pulled back; each
/// is then listed exactly once, under exactly its one tag, with the id its pull answered, and
/// the three ids differ. Catches a runtime that lists an image twice, merges different images,
/// or reports tags an image was not pulled under.
pub(crate) async fn three_images_listed(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let refs = [IMAGE, fake_cri::config::AGNHOST_IMAGE, fake_cri::config::REGISTRY_PAUSE_IMAGES[1]].map(str::to_string);
    for r in &refs {
        remove_by(e, r, std::slice::from_ref(r)).await?;
    }
    let mut ids = Vec::new();
    for r in &refs {
        ids.push(pull_all(e, std::slice::from_ref(r)).await?);
    }
    ensure!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "three different images pulled as {ids:?}");
    let listed = list(e).await?;
    for (r, id) in refs.iter().zip(&ids) {
        let same: Vec<&api::Image> = listed.iter().filter(|i| i.id == *id).collect();
        let [img] = same.as_slice() else { anyhow::bail!("ListImages lists {r} ({id}) {} times: {listed:?}", same.len()) };
        ensure!(img.repo_tags == [r.clone()], "{r} pulled by its one tag is listed with repo_tags {:?}", img.repo_tags);
    }
    Ok(())
}

/// RemoveImage by `name`, then ImageStatus of every one of `names` finds nothing.
async fn remove_by(e: &mut Env, name: &str, names: &[String]) -> anyhow::Result<()> {
    e.cri.img.remove_image(api::RemoveImageRequest { image: Some(image_spec(name)) }).await.with_context(|| format!("RemoveImage {name}"))?;
    for n in names {
        ensure!(e.cri.image(n).await?.is_none(), "after RemoveImage {name}, ImageStatus {n} still finds the image");
    }
    Ok(())
}

/// Pulls each of `refs`; all must answer one image id, which is returned.
async fn pull_all(e: &mut Env, refs: &[String]) -> anyhow::Result<String> {
    let mut ids = Vec::new();
    for r in refs {
        let pulled = e.cri.img.pull_image(api::PullImageRequest { image: Some(image_spec(r)), auth: None, sandbox_config: None }).await.with_context(|| format!("PullImage {r}"))?;
        ids.push(pulled.into_inner().image_ref);
    }
    ensure!(ids.windows(2).all(|w| w[0] == w[1]), "names of one image pulled as different images: {refs:?} → {ids:?}");
    ids.pop().context("nothing pulled")
}

async fn list(e: &mut Env) -> anyhow::Result<Vec<api::Image>> {
    Ok(e.cri.img.list_images(api::ListImagesRequest { filter: None }).await.context("ListImages")?.into_inner().images)
}
