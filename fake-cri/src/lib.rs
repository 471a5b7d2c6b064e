//! CRI v1 runtime whose containers are real processes.
//!
//! `fake-cri` serves the CRI v1 RuntimeService and ImageService (bindings from `k8s-cri`) on a
//! unix socket. Containers are real processes of the image's entrypoint (the `workload` binary,
//! from a catalog of images) started in the pod's network namespace with the pod hostname (and
//! `/etc/hostname`), their own root filesystem (an overlay of the runtime's root whose writes
//! stay in the container, read-only on request), a private /tmp, the pod's resolv.conf and
//! request bind mounts, as `run_as_user`/`run_as_group`/supplemental groups, logging in the CRI
//! format, with real exit codes, memory limits (cgroup v1) and stats from /proc (CPU in ns from
//! schedstat). Pod sandboxes get a network namespace with a veth into the node bridge (`cbr0`)
//! and an IP from the pod CIDR given by UpdateRuntimeConfig. Run it only inside a network
//! namespace made for the node (never in the host's): it creates links, addresses and nft rules
//! in the namespace it runs in.
//!
//! CLI: `fake-cri --socket PATH --state-dir DIR [--catalog FILE] [--workload-bin PATH]
//! [--faults FILE] [--pod-cidr CIDR] [--bridge cbr0] [--cgroup-parent /PATH] [--keep-on-exit]`;
//! SIGTERM shuts down (kills containers, removes veths, netns mounts, hostPort rules, cgroups, a
//! bridge it made) unless `--keep-on-exit`. `fake-cri --socket PATH --state-dir X --bench N` measures a running
//! instance. `RUST_LOG=fake_cri=debug` logs phase timings to stderr.
//!
//! Library: [`FakeCri::start`]`(Config) -> Result<Handle>`; [`Handle::shutdown`],
//! [`Handle::abandon`] (a simulated crash), [`Handle::set_faults`]; [`client::connect`] for a
//! CRI client over the socket; [`bench::run`] for latencies.
//!
//! Catalog (`--catalog`): `{"images": [{"reference": "nodekit.local/workload:1.0", "binary":
//! "/path/to/workload", "entrypoint": ["/workload"], "cmd": ["pause"], "env": ["K=V"],
//! "working_dir": "/", "size": 0, "pull_delay_ms": 0, "pull_error": null, "preloaded": true}]}`;
//! an entry with `"same_image_as": "<another entry's reference>"` is another name of that
//! entry's image (same id; ListImages and ImageStatus give one image with every present name
//! as a repo tag; RemoveImage removes every name), its image fields equal to that entry's.
//! `argv[0]` `/workload`, `/pause`, `/agnhost`, `/agnhost-2`, `workload` or `pause` runs `binary`
//! (with that `argv[0]`, so the multi-call binary picks its subcommand, or becomes agnhost); any
//! other `argv[0]` runs that host program.
//! The default catalog holds `nodekit.local/workload:1.0` (Cmd `pause`),
//! `nodekit.local/pause:3.10` (`/workload pause`), stand-ins for upstream's
//! `registry.k8s.io/e2e-test-images/agnhost:{2.52…2.56}` (`/agnhost`, Cmd `pause`) and
//! `registry.k8s.io/pause:{3.10,3.10.1}` (`/pause`) and critest's one image under four names
//! (`nodekit.local/test-image-tags:{1,2,3}`, `mirror.nodekit.local/test-image-tags:1`), all
//! backed by `--workload-bin`. A `--catalog`
//! file replaces it; PullImage of a reference no entry has fails (gRPC Unknown, containerd's
//! `failed to pull and unpack image …: not found` text) naming the catalog's images.
//!
//! Faults ([`Faults`], from `--faults`, the handle, or `<state-dir>/faults.json`, re-read when it
//! changes): `{"rpc_latency_ms": 0, "runtime_not_ready": msg, "pull_delay_ms": {ref: ms}, "pull_error": {ref: msg},
//! "sandbox_error": {pod-name: msg}, "create_error": {name-or-ref: msg},
//! "crash_after_ms": {name-or-ref: ms}}`.
//!
//! Memory cgroups (containers with a limit) go to `<memory>/<sandbox linux.cgroup_parent>/<id>`
//! like containerd's, else `<memory>/<--cgroup-parent>/<id>`, else
//! `<memory>/fake-cri-<state dir>-<hash>/<id>`; directories fake-cri made are removed with them.
//!
//! Files in the state dir: `state.json` (pod CIDR, IPs, images), `records/{sandbox,container}-<id>.json`
//! (one file per object, written when that object changes),
//! `cri-calls.jsonl` (one line per RPC: ts, method, id, duration_us, code), `faults.json`,
//! `netns/<id>` (bind-mounted pod namespaces), `sandboxes/<id>/{resolv.conf,hostname}`.
//!
//! Restart: a new instance on the same state dir re-attaches to running containers (same pid and
//! start time) and keeps copying their output (each container holds the read ends of its own
//! log pipes at fds 3 and 4, reopened through /proc). The exit code of a re-attached container
//! cannot be observed (it is not our child): it is reported as 255, reason Error.

pub mod authority;
pub mod bench;
pub mod calllog;
pub mod pull_auth;
pub mod cgroup;
pub mod client;
pub mod config;
pub mod container;
pub mod error;
pub mod exec;
pub mod hpack;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod net;
pub mod procfs;
pub mod rootfs;
pub mod runtime;
pub mod server;
pub mod service;
pub mod spawn;
pub mod stats;
pub mod store;
pub mod streams;
mod stdio;
mod tty;

pub use config::{Catalog, Config, Faults, ImageEntry, PAUSE_IMAGE, WORKLOAD_IMAGE};
pub use error::{Error, Result};
pub use server::{FakeCri, Handle};
