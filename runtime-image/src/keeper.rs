//! The keeper's steps (see the crate documentation).

use std::time::{Duration, Instant};

use futures::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{CgroupnsMode, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::{ContainerSpec, DOCKER_HOST_ENV, Error, Ready, Result, left};

fn engine(context: impl Into<String>) -> impl FnOnce(testcontainers::bollard::errors::Error) -> Error {
    let context = context.into();
    move |source| Error::Engine { context, source }
}

/// Runs `spec` until SIGTERM/SIGINT (then `Ok`) or until the container exits by itself (then
/// [`Error::Exited`]). `ready` is called once with the running container.
pub async fn run(spec: &ContainerSpec, ready: impl FnOnce(&Ready)) -> Result<()> {
    spec.check()?;
    let started = Instant::now();
    let budget = Duration::from_secs(spec.start_timeout_secs.into());
    // The same process-wide client testcontainers starts containers with.
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| Error::Spec(format!("connecting to the Docker Engine: {e}")))?;
    wait_for_engine(&docker, started, budget).await?;
    if let Some(archive) = &spec.archive {
        load(&docker, archive).await?;
    }
    docker.inspect_image(&spec.reference).await.map_err(engine(format!(
        "image {} is not in the engine{}; nothing is pulled from outside the world",
        spec.reference,
        spec.archive.as_ref().map(|a| format!(" after loading {}", a.display())).unwrap_or_default()
    )))?;
    let mut term = signal(SignalKind::terminate()).map_err(|source| Error::Io { context: "installing SIGTERM handler".into(), source })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| Error::Io { context: "installing SIGINT handler".into(), source })?;
    let container = start(spec, left(started, budget).max(Duration::from_secs(1))).await?;
    let id = container.id().to_string();
    let inspect = docker.inspect_container(&id, None).await.map_err(engine(format!("inspecting container {id}")))?;
    let pid = inspect.state.and_then(|s| s.pid).unwrap_or_default();
    ready(&Ready { id: id.clone(), pid: u32::try_from(pid).unwrap_or_default() });
    let mut waiter = docker.wait_container(&id, None);
    let exited = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        w = waiter.next() => Some(exit_code(w)),
    };
    match exited {
        None => {
            let grace = i32::try_from(spec.stop_grace_secs).unwrap_or(i32::MAX);
            container.stop_with_timeout(Some(grace)).await?;
            container.rm().await?;
            Ok(())
        }
        Some(code) => {
            report_exit(&docker, &container).await;
            container.rm().await?;
            Err(Error::Exited(code))
        }
    }
}

/// What the engine knows of a container that exited by itself, and its output (the log
/// consumer may have missed the last of it), to stderr.
async fn report_exit(docker: &Docker, container: &ContainerAsync<GenericImage>) {
    use std::io::Write;
    if let Ok(i) = docker.inspect_container(container.id(), None).await
        && let Some(state) = i.state
    {
        eprintln!(
            "runtime-image: container {} exited: code {:?}, OOM-killed {:?}, error {:?}",
            container.id(),
            state.exit_code,
            state.oom_killed,
            state.error.filter(|e| !e.is_empty())
        );
    }
    for out in [container.stdout_to_vec().await, container.stderr_to_vec().await].into_iter().flatten() {
        let _ = std::io::stderr().write_all(&out);
    }
}

/// The exit code a wait answer carries (a non-zero status is an error answer in bollard).
fn exit_code(w: Option<Result<testcontainers::bollard::models::ContainerWaitResponse, testcontainers::bollard::errors::Error>>) -> i64 {
    use testcontainers::bollard::errors::Error as B;
    match w {
        Some(Ok(r)) => r.status_code,
        Some(Err(B::DockerContainerWaitError { code, .. })) => code,
        _ => -1,
    }
}

/// Waits until `/_ping` answers.
async fn wait_for_engine(docker: &Docker, started: Instant, budget: Duration) -> Result<()> {
    let mut last = String::new();
    while started.elapsed() < budget {
        match docker.ping().await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::NotAnswering { host: std::env::var(DOCKER_HOST_ENV).unwrap_or_default(), waited: budget, last })
}

/// `docker load` of one archive, streamed from the file.
async fn load(docker: &Docker, archive: &std::path::Path) -> Result<()> {
    let file = tokio::fs::File::open(archive)
        .await
        .map_err(|source| Error::Io { context: format!("opening {}", archive.display()), source })?;
    let body = chunks(file);
    let options = testcontainers::bollard::query_parameters::ImportImageOptionsBuilder::default().quiet(true).build();
    let mut progress = docker.import_image_stream(options, body, None);
    while let Some(item) = progress.next().await {
        let info = item.map_err(engine(format!("loading {}", archive.display())))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::Spec(format!("loading {}: {detail}", archive.display())));
        }
    }
    Ok(())
}

/// A file as a stream of chunks.
fn chunks(file: tokio::fs::File) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

/// Starts the container with testcontainers.
async fn start(spec: &ContainerSpec, timeout: Duration) -> Result<ContainerAsync<GenericImage>> {
    let (repository, tag) = spec.repository_and_tag();
    let (program, args) = spec.command.split_first().ok_or_else(|| Error::Spec("command: empty".into()))?;
    let mut request = GenericImage::new(repository, tag)
        .with_entrypoint(program)
        .with_cmd(args.to_vec())
        .with_container_name(&spec.name)
        .with_network("host")
        .with_cgroupns_mode(CgroupnsMode::Host)
        .with_cap_drop("ALL")
        .with_startup_timeout(timeout)
        .with_log_consumer(|frame: &LogFrame| {
            use std::io::Write;
            let bytes = match frame {
                LogFrame::StdOut(b) | LogFrame::StdErr(b) => b,
            };
            let _ = std::io::stderr().write_all(bytes);
        });
    for (k, v) in &spec.env {
        request = request.with_env_var(k, v);
    }
    for cap in &spec.capabilities {
        request = request.with_cap_add(cap);
    }
    for opt in &spec.security_opts {
        request = request.with_security_opt(opt);
    }
    for m in &spec.mounts {
        let p = m.to_string_lossy().into_owned();
        request = request.with_mount(Mount::bind_mount(p.clone(), p));
    }
    let cgroup_parent = spec.cgroup_parent.clone();
    let request = request.with_host_config_modifier(move |hc| {
        hc.pid_mode = Some("host".into());
        hc.cgroup_parent = Some(cgroup_parent.clone());
    });
    Ok(request.start().await?)
}
