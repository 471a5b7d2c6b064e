//! The bodies of the fake-cri fuzz targets, shared by `fuzz_targets/*.rs` (libFuzzer) and
//! `tests/fuzz_smoke.rs` (stable, deterministic). Each takes arbitrary bytes (what a CRI client
//! sends, or a file a test or an operator wrote) and must return, never panic. The assertions
//! in them are fake-cri's own promises (what a request put in the state loads again after a
//! restart; the reference PullImage's error asks to add resolves the query): a failure is a
//! fake-cri bug.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use fake_cri::calllog::CallLog;
use fake_cri::container::{merge_env, resolve_program};
use fake_cri::net::Cidr;
use fake_cri::service::image_query;
use fake_cri::spawn::{User, cpath};
use fake_cri::store::{ContainerRecord, SandboxRecord, State};
use fake_cri::{Catalog, Error, Faults, ImageEntry, cgroup, images};
use k8s_cri::v1 as cri;
use prost::Message;

/// The workload binary behind the default catalog (it need not exist: only image sizes stat it).
pub const WORKLOAD_BIN: &str = "/nonexistent/nodekit/workload";

/// Sandboxes of the fixed state; the ids share a prefix, so a prefix lookup can be ambiguous.
pub const SANDBOX_IDS: [&str; 2] = [
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a01",
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a02",
];

/// Containers of the fixed state (the first two in the first sandbox, sharing a prefix).
pub const CONTAINER_IDS: [&str; 3] = [
    "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c001",
    "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c002",
    "bebebebebebebebebebebebebebebebebebebebebebebebebebebebebebebeef",
];

/// What a request handler did with a decoded request: the id the call log records, and the
/// outcome (an error is what the client gets as its status).
type Outcome = (String, Result<(), Error>);

/// Decodes a request body (as tonic's prost codec does) and runs fake-cri's checks and
/// conversions of it.
type Handler = fn(&[u8]) -> Result<Outcome, prost::DecodeError>;

/// Every request of fake-cri's RuntimeService and ImageService, in the order of the CRI v1 proto,
/// named as the call log names them. `requests` takes the first byte of its input modulo their
/// number to pick one. Requests whose handling needs processes, namespaces or netlink (starting
/// containers, sandbox networking, exec) get as far as their checks that need none.
pub const REQUESTS: &[(&str, Handler)] = &[
    ("Version", |b| {
        cri::VersionRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("RunPodSandbox", |b| {
        let r = cri::RunPodSandboxRequest::decode(b)?;
        let name = r.config.as_ref().and_then(|c| c.metadata.as_ref()).map(|m| m.name.clone()).unwrap_or_default();
        Ok((name, run_pod_sandbox(r.config.unwrap_or_default())))
    }),
    ("StopPodSandbox", |b| {
        let r = cri::StopPodSandboxRequest::decode(b)?;
        Ok(sandbox(r.pod_sandbox_id))
    }),
    ("RemovePodSandbox", |b| {
        let r = cri::RemovePodSandboxRequest::decode(b)?;
        Ok(sandbox(r.pod_sandbox_id))
    }),
    ("PodSandboxStatus", |b| {
        let r = cri::PodSandboxStatusRequest::decode(b)?;
        Ok(sandbox(r.pod_sandbox_id))
    }),
    ("ListPodSandbox", |b| {
        cri::ListPodSandboxRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("CreateContainer", |b| {
        let r = cri::CreateContainerRequest::decode(b)?;
        let checked = create_container(&r.pod_sandbox_id, r.config.unwrap_or_default());
        Ok((r.pod_sandbox_id, checked))
    }),
    ("StartContainer", |b| {
        let r = cri::StartContainerRequest::decode(b)?;
        Ok(container(r.container_id))
    }),
    ("StopContainer", |b| {
        let r = cri::StopContainerRequest::decode(b)?;
        Ok(container(r.container_id))
    }),
    ("RemoveContainer", |b| {
        let r = cri::RemoveContainerRequest::decode(b)?;
        Ok(container(r.container_id))
    }),
    ("ListContainers", |b| {
        cri::ListContainersRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("ContainerStatus", |b| {
        let r = cri::ContainerStatusRequest::decode(b)?;
        Ok(container(r.container_id))
    }),
    ("UpdateContainerResources", |b| {
        let r = cri::UpdateContainerResourcesRequest::decode(b)?;
        let (id, found) = container(r.container_id);
        let kept = ContainerRecord { resources: r.linux, ..container_record(CONTAINER_IDS[0], SANDBOX_IDS[0], Default::default()) };
        reload_container(kept);
        Ok((id, found))
    }),
    ("ReopenContainerLog", |b| {
        let r = cri::ReopenContainerLogRequest::decode(b)?;
        Ok(container(r.container_id))
    }),
    ("ExecSync", |b| {
        let r = cri::ExecSyncRequest::decode(b)?;
        exec_program(&r.cmd);
        Ok(container(r.container_id))
    }),
    ("Exec", |b| {
        let r = cri::ExecRequest::decode(b)?;
        exec_program(&r.cmd);
        Ok(container(r.container_id))
    }),
    ("Attach", |b| {
        let r = cri::AttachRequest::decode(b)?;
        Ok(container(r.container_id))
    }),
    ("PortForward", |b| {
        let r = cri::PortForwardRequest::decode(b)?;
        Ok(sandbox(r.pod_sandbox_id))
    }),
    ("ContainerStats", |b| {
        let r = cri::ContainerStatsRequest::decode(b)?;
        Ok(container(r.container_id))
    }),
    ("ListContainerStats", |b| {
        cri::ListContainerStatsRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("PodSandboxStats", |b| {
        let r = cri::PodSandboxStatsRequest::decode(b)?;
        Ok(sandbox(r.pod_sandbox_id))
    }),
    ("ListPodSandboxStats", |b| {
        cri::ListPodSandboxStatsRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("UpdateRuntimeConfig", |b| {
        let r = cri::UpdateRuntimeConfigRequest::decode(b)?;
        let cidr = r.runtime_config.and_then(|c| c.network_config).map(|n| n.pod_cidr).unwrap_or_default();
        let checked = pod_cidr(&cidr);
        Ok((cidr, checked))
    }),
    ("Status", |b| {
        cri::StatusRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    // Decoded, then answered Unimplemented.
    ("CheckpointContainer", |b| {
        cri::CheckpointContainerRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("GetContainerEvents", |b| {
        cri::GetEventsRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    // Decoded, then answered Unimplemented.
    ("ListMetricDescriptors", |b| {
        cri::ListMetricDescriptorsRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    // Decoded, then answered Unimplemented.
    ("ListPodSandboxMetrics", |b| {
        cri::ListPodSandboxMetricsRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("RuntimeConfig", |b| {
        cri::RuntimeConfigRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
    ("ListImages", |b| {
        let r = cri::ListImagesRequest::decode(b)?;
        let q = r.filter.and_then(|f| f.image).map(|i| i.image).unwrap_or_default();
        let present: std::collections::BTreeSet<String> = catalog().images.iter().map(|e| e.reference.clone()).collect();
        for names in images::present_images(catalog(), &present).into_iter().filter(|n| q.is_empty() || n.iter().any(|e| images::matches(e, &q))) {
            let _ = images::to_cri(&names);
        }
        Ok((String::new(), Ok(())))
    }),
    ("ImageStatus", |b| {
        let r = cri::ImageStatusRequest::decode(b)?;
        Ok((spec_image(&r.image), image(&r.image, false)))
    }),
    ("PullImage", |b| {
        let r = cri::PullImageRequest::decode(b)?;
        Ok((spec_image(&r.image), image(&r.image, true)))
    }),
    ("RemoveImage", |b| {
        let r = cri::RemoveImageRequest::decode(b)?;
        Ok((spec_image(&r.image), image(&r.image, false)))
    }),
    ("ImageFsInfo", |b| {
        cri::ImageFsInfoRequest::decode(b)?;
        Ok((String::new(), Ok(())))
    }),
];

/// The default catalog, backed by [`WORKLOAD_BIN`].
fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::default_for(Path::new(WORKLOAD_BIN)))
}

/// The call log every RPC writes a line to (here into /dev/null).
fn calllog() -> Option<&'static CallLog> {
    static LOG: OnceLock<Option<CallLog>> = OnceLock::new();
    LOG.get_or_init(|| CallLog::open(Path::new("/dev/null")).ok()).as_ref()
}

fn sandbox_record(id: &str, config: cri::PodSandboxConfig) -> SandboxRecord {
    SandboxRecord {
        id: id.into(),
        config,
        ready: true,
        created_at: 1,
        ip: "10.244.1.2".into(),
        netns_path: None,
        veth: None,
        resolv_conf: None,
        hostname_file: None,
        host_network: false,
        runtime_handler: String::new(),
    }
}

fn container_record(id: &str, sandbox_id: &str, config: cri::ContainerConfig) -> ContainerRecord {
    ContainerRecord {
        argv: vec!["/workload".into(), "pause".into()],
        exec_path: WORKLOAD_BIN.into(),
        working_dir: "/".into(),
        ..ContainerRecord::new(id.into(), sandbox_id.into(), config, 1)
    }
}

/// The state the id lookups of by-id requests search: [`SANDBOX_IDS`], [`CONTAINER_IDS`].
fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut st = State::default();
        for id in SANDBOX_IDS {
            st.sandboxes.insert(id.into(), sandbox_record(id, Default::default()));
        }
        for (i, id) in CONTAINER_IDS.into_iter().enumerate() {
            st.containers.insert(id.into(), container_record(id, SANDBOX_IDS[i / 2], Default::default()));
        }
        st.allocated_ips.insert("10.244.1.2".into());
        st
    })
}

/// `State::save`'s encoding (`state.json` and the record files), then `State::load`'s decoding.
fn reload(state: &State) -> State {
    let bytes = serde_json::to_vec(state).expect("fake-cri's state encodes");
    let mut back: State = serde_json::from_slice(&bytes).expect("the state.json fake-cri wrote loads again");
    for (name, bytes) in state.record_files().expect("fake-cri's records encode") {
        back.insert_record(&name, &bytes).expect("a record fake-cri wrote loads again");
    }
    back
}

/// A sandbox record a request made must come back unchanged after a restart (or the restarted
/// fake-cri cannot start, or reports another config).
fn reload_sandbox(rec: SandboxRecord) {
    let mut st = State::default();
    let id = rec.id.clone();
    st.sandboxes.insert(id.clone(), rec);
    let back = reload(&st);
    let kept = |s: &State| s.sandboxes.get(&id).map(|s| s.config.clone());
    assert!(kept(&back) == kept(&st), "the sandbox config changed across a restart");
}

/// As [`reload_sandbox`], for a container record (its config and resources).
fn reload_container(rec: ContainerRecord) {
    let mut st = State::default();
    let id = rec.id.clone();
    st.containers.insert(id.clone(), rec);
    let back = reload(&st);
    let kept = |s: &State| s.containers.get(&id).map(|c| (c.config.clone(), c.resources.clone()));
    assert!(kept(&back) == kept(&st), "the container config changed across a restart");
}

/// A request about a sandbox: the id lookup (id or unique prefix).
fn sandbox(id: String) -> Outcome {
    let found = state().sandbox_id(&id).map(drop);
    (id, found)
}

/// A request about a container: the id lookup (id or unique prefix).
fn container(id: String) -> Outcome {
    let found = state().container_id(&id).map(drop);
    (id, found)
}

/// RunPodSandbox: where its containers' memory cgroups go (its `cgroup_parent`), the record
/// kept in the state, and that record's JSON in PodSandboxStatus' verbose info.
fn run_pod_sandbox(config: cri::PodSandboxConfig) -> Result<(), Error> {
    let parent = config.linux.as_ref().map(|l| l.cgroup_parent.as_str()).unwrap_or("");
    let cgroup = if parent.trim_matches('/').is_empty() { Ok(()) } else { cgroup::in_hierarchy(parent).map(drop) };
    let ports = config.port_mappings.clone();
    let checked = fake_cri::net::validate_port_mappings(&ports);
    // hostPort rules are made from parsed mappings only: never more rules than mappings.
    assert!(fake_cri::net::pod_hostports("10.88.0.2", &ports).len() <= ports.len());
    let rec = sandbox_record(SANDBOX_IDS[0], config);
    let _ = serde_json::json!({ "netns": rec.netns_path, "hostNetwork": rec.host_network, "config": rec.config }).to_string();
    reload_sandbox(rec);
    checked.and(cgroup)
}

/// CreateContainer: the sandbox lookup, the image (the catalog entry it names), the environment
/// (image env, then the request's), the program of argv[0], the mounts and the working
/// directory as C paths, the user of the security context, the record kept in the state.
fn create_container(sandbox_id: &str, config: cri::ContainerConfig) -> Result<(), Error> {
    let found = state().sandbox_id(sandbox_id).map(drop);
    let image = config.image.as_ref().map(|i| i.image.as_str()).unwrap_or("");
    if let Some(e) = catalog().images.iter().find(|e| images::matches(e, image)) {
        let _ = merge_env(&e.env, &config.envs);
        for argv0 in [config.command.first(), config.args.first(), e.entrypoint.first()].into_iter().flatten() {
            let _ = resolve_program(argv0, &e.binary);
        }
        let _ = (images::repo_digest(e), images::image_id(e));
    }
    let mounts = config
        .mounts
        .iter()
        .filter(|m| !m.host_path.is_empty() && !m.container_path.is_empty())
        .try_for_each(|m| cpath(Path::new(&m.host_path)).and(cpath(Path::new(&m.container_path))).map(drop));
    let workdir = cpath(Path::new(&config.working_dir)).map(drop);
    // The log path stays under the sandbox's log directory.
    let log_dir = "/var/log/pods/ns_pod_uid";
    let log = fake_cri::container::container_log_path(log_dir, &config.log_path);
    if let Ok(p) = &log {
        assert!(p.is_empty() || p.starts_with(&format!("{log_dir}/")), "log path {p:?} left {log_dir}");
    }
    let _ = User::from_security_context(config.linux.as_ref().and_then(|l| l.security_context.as_ref()));
    let resources = config.linux.as_ref().and_then(|l| l.resources.clone());
    let rec = ContainerRecord {
        memory_limit: resources.as_ref().map(|r| r.memory_limit_in_bytes).unwrap_or(0),
        resources,
        ..container_record(CONTAINER_IDS[0], SANDBOX_IDS[0], config)
    };
    reload_container(rec);
    found.and(mounts).and(workdir).and(log.map(drop))
}

/// ExecSync, Exec: the program the command's argv[0] runs.
fn exec_program(cmd: &[String]) {
    if let Some(argv0) = cmd.first() {
        let _ = resolve_program(argv0, Path::new(WORKLOAD_BIN));
    }
}

/// UpdateRuntimeConfig: the pod CIDR, its gateway and the first free pod IP.
fn pod_cidr(cidr: &str) -> Result<(), Error> {
    if cidr.is_empty() {
        return Ok(());
    }
    let c = Cidr::parse(cidr)?;
    let _ = (c.gateway(), c.allocate(&state().allocated_ips));
    Ok(())
}

fn spec_image(spec: &Option<cri::ImageSpec>) -> String {
    spec.as_ref().map(|s| s.image.clone()).unwrap_or_default()
}

/// ImageStatus, PullImage, RemoveImage: the query (`image_query`), the catalog image it names
/// and its CRI view, or PullImage's error naming the catalog.
fn image(spec: &Option<cri::ImageSpec>, pull: bool) -> Result<(), Error> {
    let q = image_query(spec)?;
    match catalog().images.iter().find(|e| images::matches(e, &q)) {
        Some(e) => {
            let _ = images::to_cri(&[e]);
            if pull {
                let _ = (Faults::default().pull_delay(e), images::image_id(e));
            }
            Ok(())
        }
        None if pull => Err(Error::Unknown(images::not_in_catalog(&q, catalog()))),
        None => Ok(()),
    }
}

/// The status (and HTTP response) a client gets for `e`.
fn reply(e: Error) {
    let _ = e.to_string();
    let _ = tonic::Status::from(e).into_http::<()>();
}

/// A CRI request: the first byte picks one of [`REQUESTS`], the rest is its protobuf body.
/// A body that does not decode gets tonic's status; a decoded one goes through fake-cri's
/// checks and conversions of it (see [`REQUESTS`]), its error becomes a status, and the call
/// is written to the call log.
pub fn requests(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let (method, handler) = REQUESTS[usize::from(pick) % REQUESTS.len()];
    match handler(body) {
        Ok((id, outcome)) => {
            let code = match outcome {
                Ok(()) => tonic::Code::Ok,
                Err(e) => {
                    let code = e.code();
                    reply(e);
                    code
                }
            };
            if let Some(log) = calllog() {
                log.record(method, &id, Duration::ZERO, code);
            }
        }
        Err(e) => {
            let _ = tonic::Status::internal(e.to_string()).into_http::<()>();
        }
    }
}

/// The input of [`requests`] that decodes as `req` for `method`.
pub fn request_seed(method: &str, req: &impl Message) -> Vec<u8> {
    let pick = REQUESTS.iter().position(|(m, _)| *m == method).expect("a method of REQUESTS");
    [vec![pick as u8], req.encode_to_vec()].concat()
}

/// An image reference as `ImageSpec.image` carries it (ImageStatus, PullImage, RemoveImage,
/// ListImages' filter, CreateContainer's image): `images::normalize`, `images::matches` against
/// every image of the default catalog, PullImage's error text. A catalog entry with the
/// reference that text asks to add must resolve the query.
pub fn image_ref(data: &[u8]) {
    let q = String::from_utf8_lossy(data).into_owned();
    let spec = Some(cri::ImageSpec { image: q.clone(), ..Default::default() });
    if let Err(e) = image(&spec, true) {
        reply(e);
    }
    // An id prefix is 12 to 64 hex digits after at most one `sha256:`.
    if let Some(hex) = images::id_prefix(&q) {
        assert!((12..=64).contains(&hex.len()) && !hex.contains(':'), "{q:?} taken as id prefix {hex:?}");
    }
    let normalized = images::normalize(&q);
    if !q.trim().is_empty() {
        let added = ImageEntry { reference: normalized.clone(), ..catalog().images[0].clone() };
        assert!(images::matches(&added, &q), "{q:?} does not resolve to the catalog entry {normalized:?} PullImage asks for");
    }
}

/// fake-cri's configuration files from the same bytes: faults.json (`Faults`, as
/// `Runtime::faults` and `--faults` read it) and a `--catalog` file (`Catalog`, as
/// `Catalog::load` reads it), each with the default of the other, then what fake-cri derives
/// from them. Bytes with a NUL are also read as a faults file (before it) and a catalog
/// (after it) together, as PullImage uses both.
pub fn config(data: &[u8]) {
    match serde_json::from_slice::<Faults>(data) {
        Ok(f) => use_config(&f, catalog()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match serde_json::from_slice::<Catalog>(data) {
        Ok(c) => use_config(&Faults::default(), &c),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Some(nul) = data.iter().position(|b| *b == 0)
        && let (Ok(f), Ok(c)) = (serde_json::from_slice::<Faults>(&data[..nul]), serde_json::from_slice::<Catalog>(&data[nul + 1..]))
    {
        use_config(&f, &c);
    }
}

/// What PullImage, CreateContainer, ListImages and Status take from faults and catalog.
fn use_config(f: &Faults, c: &Catalog) {
    let _ = c.validate();
    for e in &c.images {
        let _ = f.pull_delay(e);
        let _ = f.pull_error.get(&e.reference).or(e.pull_error.as_ref());
        let _ = f.crash_after_ms.get(&e.reference).map(|ms| Duration::from_millis(*ms));
        let _ = (images::to_cri(&[e]), images::repo_digest(e), images::matches(e, &e.reference));
        let _ = merge_env(&e.env, &[]);
        if let Some(argv0) = e.entrypoint.first().or(e.cmd.first()) {
            let _ = resolve_program(argv0, &e.binary);
        }
    }
    let _ = images::not_in_catalog("busybox", c);
    // Status' verbose info.
    let _ = serde_json::json!({ "faults": f }).to_string();
}
