//! YAML in, a checked [`RuntimeProfile`] out, or one [`LoadError`] that says
//! `file: field: what is wrong and what to do`. Everything that can be checked without
//! starting the runtime is checked here: field names (unknown ones refused with the allowed
//! ones), types, durations, the name, every placeholder of every template, and that the
//! runtime is told where to listen (`{socket}` in the command or a file). Whether the binaries
//! exist is the caller's check ([`check_binaries`]), since where they are looked up is its
//! knowledge.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::model::{Cleanup, FileTemplate, ImageRuntime, Images, OciRuntime, Readiness, RuntimeProfile};
use crate::template::{Placeholder, placeholders};

/// The `apiVersion` a profile carries.
pub const API_VERSION: &str = "nodekit.dev/v1alpha1";
/// The `kind` a profile carries.
pub const KIND: &str = "RuntimeProfile";

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// The field (`spec.command[0]`); empty for the document itself.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

type Result<T, E = LoadError> = std::result::Result<T, E>;

/// Loads the profile in `path`.
pub fn load_file(path: &Path) -> Result<RuntimeProfile> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.to_path_buf(),
        field: String::new(),
        message: format!("cannot read the runtime profile: {e}"),
    })?;
    load_str(&text, path)
}

/// Loads the profile in `text` as if it were the file `origin`.
pub fn load_str(text: &str, origin: &Path) -> Result<RuntimeProfile> {
    let r = Reader { file: origin };
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| r.err("", format!("not a YAML document: {e}")))?;
    let (name, spec) = r.header(&doc, "runtime profile", KIND)?;
    let profile = r.spec(spec, name, origin)?;
    check_placeholders(&r, &profile)?;
    Ok(profile)
}

/// The fields of `spec`.
const SPEC_FIELDS: &[&str] =
    &["runtimeName", "command", "image", "env", "files", "privateMounts", "unmount", "tmpfs", "sysctls", "readiness", "images", "handlers", "stop", "cleanup"];

/// Linux capabilities by the names Docker takes (`CAP_` prefix optional).
const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE",
    "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN",
    "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID",
    "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE",
    "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
];

pub(crate) struct Reader<'a> {
    pub(crate) file: &'a Path,
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl Reader<'_> {
    /// The document's `apiVersion`, `kind` (a `what` is kind `kind`) and `metadata` checked:
    /// its name and its `spec` mapping.
    pub(crate) fn header<'v>(&self, doc: &'v Value, what: &str, kind: &str) -> Result<(String, &'v Map<String, Value>)> {
        let top = self.map(doc, "")?;
        self.keys(top, "", &["apiVersion", "kind", "metadata", "spec"])?;
        let api = self.string(top, "", "apiVersion")?;
        if api != API_VERSION {
            return Err(self.err("apiVersion", format!("{api:?} is not a {what}'s; use {API_VERSION}")));
        }
        let found = self.string(top, "", "kind")?;
        if found != kind {
            return Err(self.err("kind", format!("{found:?}: a {what} is kind {kind}")));
        }
        let meta = self.map(self.required(top, "", "metadata")?, "metadata")?;
        self.keys(meta, "metadata", &["name", "annotations", "labels"])?;
        let name = self.string(meta, "metadata", "name")?;
        if let Some(why) = dns_label_problem(&name) {
            return Err(self.err("metadata.name", format!("{name:?} {why}")));
        }
        Ok((name, self.map(self.required(top, "", "spec")?, "spec")?))
    }

    pub(crate) fn err(&self, field: impl Into<String>, message: impl Into<String>) -> LoadError {
        LoadError { file: self.file.to_path_buf(), field: field.into(), message: message.into() }
    }

    pub(crate) fn map<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Map<String, Value>> {
        v.as_object().ok_or_else(|| self.err(path, format!("must be a mapping, not {}", type_name(v))))
    }

    pub(crate) fn keys(&self, m: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<()> {
        match m.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.err(join(path, k), format!("unknown field; the fields here are {}", allowed.join(", ")))),
            None => Ok(()),
        }
    }

    pub(crate) fn required<'v>(&self, m: &'v Map<String, Value>, path: &str, key: &str) -> Result<&'v Value> {
        m.get(key).filter(|v| !v.is_null()).ok_or_else(|| self.err(join(path, key), "is required"))
    }

    pub(crate) fn string(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<String> {
        let v = self.required(m, path, key)?;
        self.as_string(v, &join(path, key))
    }

    pub(crate) fn as_string(&self, v: &Value, field: &str) -> Result<String> {
        match v {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(self.err(field, "must not be empty")),
            other => Err(self.err(field, format!("must be a string, not {}", type_name(other)))),
        }
    }

    pub(crate) fn strings(&self, v: &Value, field: &str) -> Result<Vec<String>> {
        let items = v.as_array().ok_or_else(|| self.err(field, format!("must be a list of strings, not {}", type_name(v))))?;
        items.iter().enumerate().map(|(i, s)| self.as_string(s, &format!("{field}[{i}]"))).collect()
    }

    pub(crate) fn command(&self, v: &Value, field: &str) -> Result<Vec<String>> {
        let c = self.strings(v, field)?;
        if c.is_empty() {
            return Err(self.err(field, "must name at least the binary to run"));
        }
        Ok(c)
    }

    pub(crate) fn string_map(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<BTreeMap<String, String>> {
        let Some(v) = m.get(key).filter(|v| !v.is_null()) else { return Ok(BTreeMap::new()) };
        let field = join(path, key);
        let inner = self.map(v, &field)?;
        inner
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                other => Err(self.err(format!("{field}.{k}"), format!("must be a string, not {}", type_name(other)))),
            })
            .collect()
    }

    pub(crate) fn bool_or(&self, m: &Map<String, Value>, path: &str, key: &str, default: bool) -> Result<bool> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.err(join(path, key), format!("must be true or false, not {}", type_name(other)))),
        }
    }

    pub(crate) fn duration_or(&self, m: &Map<String, Value>, path: &str, key: &str, default: Duration) -> Result<Duration> {
        let Some(v) = m.get(key).filter(|v| !v.is_null()) else { return Ok(default) };
        let field = join(path, key);
        let text = self.as_string(v, &field)?;
        match crate::duration::parse(&text) {
            Some(d) if d > Duration::ZERO => Ok(d),
            _ => Err(self.err(field, format!("{text:?} is not a positive duration; write e.g. 30s, 500ms or 1m30s"))),
        }
    }

    pub(crate) fn spec(&self, spec: &Map<String, Value>, name: String, origin: &Path) -> Result<RuntimeProfile> {
        self.keys(spec, "spec", SPEC_FIELDS)?;
        let runtime_name = self.string(spec, "spec", "runtimeName")?;
        let command = self.command(self.required(spec, "spec", "command")?, "spec.command")?;
        let image = match spec.get("image").filter(|v| !v.is_null()) {
            Some(v) => Some(self.image_runtime(v)?),
            None => None,
        };
        let env = self.string_map(spec, "spec", "env")?;
        let files = self.files(spec)?;
        let private_mounts = self.bool_or(spec, "spec", "privateMounts", true)?;
        let unmount = match spec.get("unmount").filter(|v| !v.is_null()) {
            Some(v) => self.strings(v, "spec.unmount")?,
            None => Vec::new(),
        };
        let tmpfs = match spec.get("tmpfs").filter(|v| !v.is_null()) {
            Some(v) => self.strings(v, "spec.tmpfs")?,
            None => Vec::new(),
        };
        for (field, paths) in [("spec.unmount", &unmount), ("spec.tmpfs", &tmpfs)] {
            for (i, path) in paths.iter().enumerate() {
                if !path.starts_with('/') {
                    return Err(self.err(format!("{field}[{i}]"), format!("{path:?} must be an absolute path")));
                }
            }
            if !paths.is_empty() && !private_mounts {
                return Err(self.err(field, "needs privateMounts: true (it would change the world's own mounts)"));
            }
            if !paths.is_empty() && image.is_some() {
                return Err(self.err(field, "applies to a runtime started from a host binary; an image runtime's container sees only the world's scratch directory and spec.image.mounts"));
            }
        }
        let sysctls = self.string_map(spec, "spec", "sysctls")?;
        let readiness = self.readiness(spec)?;
        let images_field = self.required(spec, "spec", "images")?;
        let images = self.images(images_field)?;
        let pulls = self.bool_or(self.map(images_field, "spec.images")?, "spec.images", "pulls", true)?;
        let handlers = match spec.get("handlers").filter(|v| !v.is_null()) {
            Some(v) => self.strings(v, "spec.handlers")?,
            None => Vec::new(),
        };
        for (i, h) in handlers.iter().enumerate() {
            if let Some(why) = dns_label_problem(h) {
                return Err(self.err(format!("spec.handlers[{i}]"), format!("{h:?} {why} (a RuntimeClass handler)")));
            }
        }
        let stop_grace = match spec.get("stop").filter(|v| !v.is_null()) {
            Some(v) => {
                let stop = self.map(v, "spec.stop")?;
                self.keys(stop, "spec.stop", &["grace"])?;
                self.duration_or(stop, "spec.stop", "grace", Duration::from_secs(5))?
            }
            None => Duration::from_secs(5),
        };
        let cleanup = self.cleanup(spec)?;
        Ok(RuntimeProfile {
            name,
            source: origin.to_path_buf(),
            runtime_name,
            command,
            image,
            env,
            files,
            private_mounts,
            unmount,
            tmpfs,
            sysctls,
            readiness,
            images,
            pulls,
            handlers,
            stop_grace,
            cleanup,
        })
    }

    pub(crate) fn image_runtime(&self, v: &Value) -> Result<ImageRuntime> {
        const F: &str = "spec.image";
        let m = self.map(v, F)?;
        self.keys(m, F, &["reference", "archive", "capabilities", "mounts", "securityOpts"])?;
        let reference = self.string(m, F, "reference")?;
        if reference.contains(char::is_whitespace) || reference.contains('{') || reference.starts_with('/') {
            return Err(self.err("spec.image.reference", format!("{reference:?} is not an image reference; write repository:tag, e.g. nodekit.local/fake-cri-runtime:1")));
        }
        let archive = self.string(m, F, "archive").map_err(|e| LoadError {
            message: format!("{}: the world's Docker Engine starts empty and pulls nothing, so name the docker-archive (`docker save` output) holding {reference}, or {{fake_cri_image}}", e.message),
            ..e
        })?;
        let list = |key: &str| -> Result<Vec<String>> {
            match m.get(key).filter(|v| !v.is_null()) {
                Some(v) => self.strings(v, &join(F, key)),
                None => Ok(Vec::new()),
            }
        };
        let capabilities = list("capabilities")?;
        for (i, c) in capabilities.iter().enumerate() {
            let bare = c.strip_prefix("CAP_").unwrap_or(c);
            if !CAPABILITIES.contains(&bare) {
                return Err(self.err(format!("{F}.capabilities[{i}]"), format!("{c:?} is not a capability; use one of {}", CAPABILITIES.join(", "))));
            }
        }
        let mounts = list("mounts")?;
        for (i, path) in mounts.iter().enumerate() {
            if !path.starts_with('/') && !path.starts_with('{') {
                return Err(self.err(format!("{F}.mounts[{i}]"), format!("{path:?} must be an absolute path")));
            }
        }
        Ok(ImageRuntime { reference, archive, capabilities, mounts, security_opts: list("securityOpts")? })
    }

    pub(crate) fn files(&self, spec: &Map<String, Value>) -> Result<Vec<FileTemplate>> {
        let Some(v) = spec.get("files").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
        let items = v.as_array().ok_or_else(|| self.err("spec.files", "must be a list of {path, content}"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let field = format!("spec.files[{i}]");
                let m = self.map(f, &field)?;
                self.keys(m, &field, &["path", "content"])?;
                let path = self.string(m, &field, "path")?;
                let content = match m.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => return Err(self.err(format!("{field}.content"), format!("must be a string, not {}", type_name(other)))),
                    None => return Err(self.err(format!("{field}.content"), "is required")),
                };
                Ok(FileTemplate { path, content })
            })
            .collect()
    }

    pub(crate) fn readiness(&self, spec: &Map<String, Value>) -> Result<Readiness> {
        let default = Readiness { timeout: Duration::from_secs(30), network_ready: true };
        let Some(v) = spec.get("readiness").filter(|v| !v.is_null()) else { return Ok(default) };
        let m = self.map(v, "spec.readiness")?;
        self.keys(m, "spec.readiness", &["timeout", "networkReady"])?;
        Ok(Readiness {
            timeout: self.duration_or(m, "spec.readiness", "timeout", default.timeout)?,
            network_ready: self.bool_or(m, "spec.readiness", "networkReady", true)?,
        })
    }

    pub(crate) fn images(&self, v: &Value) -> Result<Images> {
        let m = self.map(v, "spec.images")?;
        self.keys(m, "spec.images", &["import", "preloaded", "pulls"])?;
        match (m.get("import").filter(|v| !v.is_null()), self.bool_or(m, "spec.images", "preloaded", false)?) {
            (Some(import), false) => {
                let im = self.map(import, "spec.images.import")?;
                self.keys(im, "spec.images.import", &["command"])?;
                let command = self.command(self.required(im, "spec.images.import", "command")?, "spec.images.import.command")?;
                Ok(Images::Import { command })
            }
            (None, true) => Ok(Images::Preloaded),
            (Some(_), true) => Err(self.err("spec.images", "set either import or preloaded, not both")),
            (None, false) => Err(self.err(
                "spec.images",
                "say how the world's images reach the runtime: import.command (run once per {archive}) or preloaded: true",
            )),
        }
    }

    pub(crate) fn cleanup(&self, spec: &Map<String, Value>) -> Result<Cleanup> {
        let Some(v) = spec.get("cleanup").filter(|v| !v.is_null()) else { return Ok(Cleanup::default()) };
        let m = self.map(v, "spec.cleanup")?;
        self.keys(m, "spec.cleanup", &["ociRuntimes", "commands"])?;
        let mut cleanup = Cleanup::default();
        if let Some(v) = m.get("ociRuntimes").filter(|v| !v.is_null()) {
            let items = v.as_array().ok_or_else(|| self.err("spec.cleanup.ociRuntimes", "must be a list of {binary, root}"))?;
            for (i, item) in items.iter().enumerate() {
                let field = format!("spec.cleanup.ociRuntimes[{i}]");
                let o = self.map(item, &field)?;
                self.keys(o, &field, &["binary", "root"])?;
                cleanup.oci_runtimes.push(OciRuntime { binary: self.string(o, &field, "binary")?, root: self.string(o, &field, "root")? });
            }
        }
        if let Some(v) = m.get("commands").filter(|v| !v.is_null()) {
            let items = v.as_array().ok_or_else(|| self.err("spec.cleanup.commands", "must be a list of commands"))?;
            for (i, c) in items.iter().enumerate() {
                cleanup.commands.push(self.command(c, &format!("spec.cleanup.commands[{i}]"))?);
            }
        }
        Ok(cleanup)
    }
}

/// Every template's placeholders are known in its place, and the runtime is told where its
/// socket is.
fn check_placeholders(r: &Reader<'_>, p: &RuntimeProfile) -> Result<()> {
    let general = Placeholder::general();
    let mut uses_socket = false;
    let mut check = |field: String, text: &str, allowed: &[Placeholder]| -> Result<()> {
        let used = placeholders(text, allowed).map_err(|e| r.err(field, e.to_string()))?;
        uses_socket |= used.contains(&Placeholder::Socket);
        Ok(())
    };
    for (i, a) in p.command.iter().enumerate() {
        check(format!("spec.command[{i}]"), a, &general)?;
    }
    for (k, v) in &p.env {
        check(format!("spec.env.{k}"), v, &general)?;
    }
    for (i, f) in p.files.iter().enumerate() {
        check(format!("spec.files[{i}].path"), &f.path, &general)?;
        check(format!("spec.files[{i}].content"), &f.content, &general)?;
    }
    for (i, o) in p.cleanup.oci_runtimes.iter().enumerate() {
        check(format!("spec.cleanup.ociRuntimes[{i}].root"), &o.root, &general)?;
    }
    for (i, c) in p.cleanup.commands.iter().enumerate() {
        for (j, a) in c.iter().enumerate() {
            check(format!("spec.cleanup.commands[{i}][{j}]"), a, &general)?;
        }
    }
    if let Some(image) = &p.image {
        let mut archive_allowed = general.clone();
        archive_allowed.push(Placeholder::FakeCriImage);
        check("spec.image.archive".into(), &image.archive, &archive_allowed)?;
        for (i, m) in image.mounts.iter().enumerate() {
            check(format!("spec.image.mounts[{i}]"), m, &general)?;
        }
    }
    let socket_used = uses_socket;
    if let Images::Import { command } = &p.images {
        let mut archive = false;
        for (i, a) in command.iter().enumerate() {
            let used = placeholders(a, &Placeholder::ALL).map_err(|e| r.err(format!("spec.images.import.command[{i}]"), e.to_string()))?;
            archive |= used.contains(&Placeholder::Archive);
        }
        if !archive {
            return Err(r.err("spec.images.import.command", "must use {archive}: it runs once per image archive"));
        }
    }
    if !socket_used {
        return Err(r.err(
            "spec.command",
            "the runtime is never told where to listen: use {socket} in spec.command or in one of spec.files",
        ));
    }
    Ok(())
}

/// Checks that every binary the profile names can be found: `find` resolves a name (absolute
/// paths are taken as they are and must be files).
pub fn check_binaries(p: &RuntimeProfile, find: impl Fn(&str) -> Option<PathBuf>) -> Result<BTreeMap<String, PathBuf>> {
    let mut found = BTreeMap::new();
    for (field, bin) in p.binaries() {
        let path = if bin.starts_with('/') {
            Some(PathBuf::from(bin)).filter(|p| p.is_file())
        } else if bin.contains('/') {
            None
        } else {
            find(bin)
        };
        match path {
            Some(path) => {
                found.insert(bin.to_string(), path);
            }
            None => {
                return Err(LoadError {
                    file: p.source.clone(),
                    field,
                    message: if bin.starts_with('/') {
                        format!("binary {bin} does not exist; install it or correct the path")
                    } else if bin.contains('/') {
                        format!("binary {bin:?} is a relative path; give an absolute path or a name looked up on PATH")
                    } else {
                        format!("binary {bin:?} not found on PATH (nor next to nodekit); install it or give an absolute path")
                    },
                });
            }
        }
    }
    Ok(found)
}

/// Checks that the host paths an image runtime names exist, where they hold no placeholder
/// (those exist only once the world does): `spec.image.archive` (a relative path is taken from
/// the profile's directory) must be a file, every `spec.image.mounts` entry must exist.
pub fn check_paths(p: &RuntimeProfile) -> Result<()> {
    let Some(image) = &p.image else { return Ok(()) };
    let plain = |t: &str| crate::template::placeholders(t, &crate::template::Placeholder::ALL).is_ok_and(|v| v.is_empty());
    if plain(&image.archive) {
        let path = Path::new(&image.archive);
        let path = if path.is_relative() { p.source.parent().unwrap_or(Path::new(".")).join(path) } else { path.to_path_buf() };
        if !path.is_file() {
            return Err(LoadError {
                file: p.source.clone(),
                field: "spec.image.archive".into(),
                message: format!(
                    "{} does not exist; write it with `docker save {} -o FILE` or correct the path (a relative path is taken from the profile's directory)",
                    path.display(),
                    image.reference
                ),
            });
        }
    }
    for (i, m) in image.mounts.iter().enumerate() {
        if plain(m) && !Path::new(m).exists() {
            return Err(LoadError {
                file: p.source.clone(),
                field: format!("spec.image.mounts[{i}]"),
                message: format!("{m} does not exist on this host; create it or leave it out"),
            });
        }
    }
    Ok(())
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Why `s` is not a DNS-1123 label, if it is not.
pub(crate) fn dns_label_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > 63 {
        return Some("must be 1 to 63 characters long");
    }
    let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !s.starts_with('-') && !s.ends_with('-');
    if ok_chars && ok_ends {
        None
    } else {
        Some("must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")
    }
}
