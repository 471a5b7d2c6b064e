//! Loading profiles: what a good one gives, and the message each kind of bad one gets.

use std::path::Path;
use std::time::Duration;

use runtime_profile::{Images, Placeholder, Values, load_str};

const GOOD: &str = r#"
apiVersion: nodekit.dev/v1alpha1
kind: RuntimeProfile
metadata: {name: my-runtime}
spec:
  runtimeName: myrt
  command: [myrt, --listen, "{socket}", --root, "{root_dir}"]
  env: {LOG: debug}
  handlers: [runc, kata]
  readiness: {timeout: 45s, networkReady: false}
  images:
    import:
      command: [myrt-load, "{archive}"]
  stop: {grace: 2s}
  cleanup:
    ociRuntimes: [{binary: runc, root: "{state_dir}/runc"}]
    commands: [[rm, -rf, "{state_dir}/x"]]
  files:
    - path: "{config_dir}/net.json"
      content: '{"subnet": "{pod_cidr}"}'
"#;

fn load(text: &str) -> Result<runtime_profile::RuntimeProfile, String> {
    load_str(text, Path::new("my.yaml")).map_err(|e| e.to_string())
}

#[test]
fn a_good_profile_loads_with_its_defaults() {
    let p = load(GOOD).unwrap();
    assert_eq!(p.name, "my-runtime");
    assert_eq!(p.runtime_name, "myrt");
    assert_eq!(p.readiness.timeout, Duration::from_secs(45));
    assert!(!p.readiness.network_ready);
    assert!(p.private_mounts, "privateMounts defaults to true");
    assert_eq!(p.stop_grace, Duration::from_secs(2));
    assert_eq!(p.default_handler(), Some("runc"));
    assert_eq!(p.images, Images::Import { command: vec!["myrt-load".into(), "{archive}".into()] });
    assert!(p.pulls, "a runtime pulls unless its profile says otherwise");
    assert!(!load(&GOOD.replace("  images:\n", "  images:\n    pulls: false\n")).unwrap().pulls);
    let mut v = Values::new();
    v.set(Placeholder::PodCidr, "10.244.1.0/24");
    assert_eq!(v.render(&p.files[0].content).unwrap(), r#"{"subnet": "10.244.1.0/24"}"#);
}

#[test]
fn bad_profiles_name_file_field_and_fix() {
    let cases: &[(&str, &str, &str)] = &[
        ("spec:\n  runtimeName: myrt\n", "spec:\n  runtimeName: myrt\n  comand: [x]\n", "my.yaml: spec.comand: unknown field; the fields here are runtimeName, command"),
        ("\"{root_dir}\"]", "\"{rootdir}\"]", "my.yaml: spec.command[4]: unknown placeholder {rootdir}: use one of {socket}"),
        ("[myrt, --listen, \"{socket}\",", "[myrt, --listen, /tmp/x.sock,", "my.yaml: spec.command: the runtime is never told where to listen: use {socket}"),
        ("[myrt-load, \"{archive}\"]", "[myrt-load, /x]", "my.yaml: spec.images.import.command: must use {archive}"),
        ("--root, \"{root_dir}\"]", "--root, \"{archive}\"]", "my.yaml: spec.command[4]: unknown placeholder {archive}"),
        ("timeout: 45s", "timeout: 45", "my.yaml: spec.readiness.timeout: must be a string, not a number"),
        ("timeout: 45s", "timeout: soon", "my.yaml: spec.readiness.timeout: \"soon\" is not a positive duration"),
        ("name: my-runtime", "name: My_Runtime", "my.yaml: metadata.name: \"My_Runtime\" must consist of lower case"),
        ("kind: RuntimeProfile", "kind: Scenario", "my.yaml: kind: \"Scenario\": a runtime profile is kind RuntimeProfile"),
        ("handlers: [runc, kata]", "handlers: [runc, Kata]", "my.yaml: spec.handlers[1]: \"Kata\" must consist"),
        ("  images:\n    import:\n      command: [myrt-load, \"{archive}\"]\n", "  images: {}\n", "my.yaml: spec.images: say how the world's images reach the runtime"),
        ("runtimeName: myrt", "runtimeName: \"\"", "my.yaml: spec.runtimeName: must not be empty"),
        ("  env: {LOG: debug}\n", "  env: {LOG: debug}\n  privateMounts: false\n  unmount: [/sys/fs/cgroup/unified]\n", "my.yaml: spec.unmount: needs privateMounts: true"),
        ("  env: {LOG: debug}\n", "  env: {LOG: debug}\n  unmount: [sys/fs/cgroup/unified]\n", "my.yaml: spec.unmount[0]: \"sys/fs/cgroup/unified\" must be an absolute path"),
        ("  env: {LOG: debug}\n", "  env: {LOG: debug}\n  privateMounts: false\n  tmpfs: [/var/lib]\n", "my.yaml: spec.tmpfs: needs privateMounts: true"),
    ];
    for (from, to, want) in cases {
        assert!(GOOD.contains(from), "{from:?} not in the good profile");
        let text = GOOD.replacen(from, to, 1);
        let err = load(&text).expect_err(want);
        assert!(err.starts_with(want), "{err}\n  wanted: {want}");
    }
}

#[test]
fn missing_binaries_are_named_with_their_field() {
    let p = load(GOOD).unwrap();
    let found = runtime_profile::load::check_binaries(&p, |b| (b != "myrt-load").then(|| format!("/bin/{b}").into()));
    let err = found.unwrap_err().to_string();
    assert_eq!(err, "my.yaml: spec.images.import.command[0]: binary \"myrt-load\" not found on PATH (nor next to nodekit); install it or give an absolute path");
    let ok = runtime_profile::load::check_binaries(&p, |b| Some(format!("/bin/{b}").into())).unwrap();
    assert_eq!(ok.get("myrt").map(|p| p.display().to_string()), Some("/bin/myrt".into()));
}

const IMAGE: &str = r#"
apiVersion: nodekit.dev/v1alpha1
kind: RuntimeProfile
metadata: {name: vendor-rt}
spec:
  runtimeName: vendor
  image:
    reference: registry.example/vendor/cri:2.1
    archive: vendor-cri.tar
    capabilities: [SYS_ADMIN, CAP_NET_ADMIN]
    mounts: [/sys/fs/cgroup, "{state_dir}/extra"]
    securityOpts: [seccomp=unconfined]
  command: [/usr/bin/vendor-cri, --listen, "{socket}"]
  images: {preloaded: true}
"#;

/// An image runtime: its fields load, its command is not looked up on the host, and the host
/// needs the Docker Engine instead.
#[test]
fn an_image_profile_loads_and_needs_the_engine_not_its_program() {
    let p = load(IMAGE).unwrap();
    let image = p.image.clone().unwrap();
    assert_eq!(image.reference, "registry.example/vendor/cri:2.1");
    assert_eq!(image.archive, "vendor-cri.tar");
    assert_eq!(image.capabilities, vec!["SYS_ADMIN", "CAP_NET_ADMIN"]);
    assert_eq!(image.mounts, vec!["/sys/fs/cgroup", "{state_dir}/extra"]);
    assert_eq!(image.security_opts, vec!["seccomp=unconfined"]);
    let bins: Vec<(String, &str)> = p.binaries();
    assert_eq!(bins, vec![("spec.image".to_string(), "dockerd")]);
    let err = runtime_profile::load::check_binaries(&p, |_| None).unwrap_err().to_string();
    assert!(err.contains("spec.image: binary \"dockerd\" not found"), "{err}");
}

#[test]
fn bad_image_profiles_name_the_field_and_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        ("    capabilities: [SYS_ADMIN, CAP_NET_ADMIN]\n", "    capabilities: [SYS_ADMIN, ALL]\n", "my.yaml: spec.image.capabilities[1]: \"ALL\" is not a capability; use one of AUDIT_CONTROL"),
        ("    archive: vendor-cri.tar\n", "", "my.yaml: spec.image.archive: is required: the world's Docker Engine starts empty and pulls nothing"),
        ("    archive: vendor-cri.tar\n", "    archive: \"{archive}\"\n", "my.yaml: spec.image.archive: unknown placeholder {archive}"),
        ("--listen, \"{socket}\"]", "--listen, \"{socket}\", \"{fake_cri_image}\"]", "my.yaml: spec.command[3]: unknown placeholder {fake_cri_image}"),
        ("reference: registry.example/vendor/cri:2.1", "reference: \"/tmp/x.tar\"", "my.yaml: spec.image.reference: \"/tmp/x.tar\" is not an image reference"),
        ("    securityOpts:", "    privileged: true\n    securityOpts:", "my.yaml: spec.image.privileged: unknown field; the fields here are reference, archive"),
        ("  images: {preloaded: true}\n", "  images: {preloaded: true}\n  tmpfs: [/var/lib]\n", "my.yaml: spec.tmpfs: applies to a runtime started from a host binary"),
        ("mounts: [/sys/fs/cgroup,", "mounts: [sys/fs/cgroup,", "my.yaml: spec.image.mounts[0]: \"sys/fs/cgroup\" must be an absolute path"),
    ];
    for (from, to, want) in cases {
        assert!(IMAGE.contains(from), "{from:?}");
        let err = load(&IMAGE.replacen(from, to, 1)).unwrap_err();
        assert!(err.starts_with(want), "{to:?}: {err}");
    }
}
