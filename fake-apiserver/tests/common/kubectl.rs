//! The real kubectl against an in-process server: the server's kubeconfig in a private HOME.

use std::path::{Path, PathBuf};

use fake_apiserver::Handle;

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// kubectl with `kubeconfig` (HOME beside it): (success, stdout, stderr); `None` (with a
/// message) when the machine has no kubectl.
pub async fn with_kubeconfig(kubeconfig: &Path, args: &[&str]) -> Option<(bool, String, String)> {
    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping the kubectl part: {KUBECTL} is absent");
        return None;
    }
    let home = kubeconfig.parent().unwrap_or(Path::new("/tmp"));
    let out = tokio::process::Command::new(KUBECTL)
        .args(args)
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig)
        .kill_on_drop(true)
        .output()
        .await
        .expect("kubectl runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some((out.status.success(), text(&out.stdout), text(&out.stderr)))
}

pub struct Kubectl {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    /// `None` (with a message) when the machine has no kubectl.
    pub fn new(h: &Handle) -> Option<Kubectl> {
        if !Path::new(KUBECTL).exists() {
            eprintln!("skipping: {KUBECTL} is absent");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        h.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        Some(Kubectl { _dir: dir, home, kubeconfig })
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(KUBECTL);
        c.args(args).env("HOME", &self.home).env("KUBECONFIG", &self.kubeconfig).kill_on_drop(true);
        c
    }

    /// (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().await.expect("kubectl runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Run and return stdout; panics with stderr when it fails.
    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {stderr}\nstdout: {stdout}");
        stdout
    }

    /// Run and return stderr; panics when it succeeds.
    pub async fn fails(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(!ok, "kubectl {args:?} should fail: {stdout}");
        stderr
    }

    /// `kubectl apply -f <file>` of `yaml` written as `name` in HOME, with `extra` flags.
    pub async fn apply_file(&self, name: &str, yaml: &str, extra: &[&str]) -> String {
        let path = self.home.join(name);
        std::fs::write(&path, yaml).expect("write manifest");
        let p = path.to_string_lossy().into_owned();
        let mut args = vec!["apply", "-f", p.as_str()];
        args.extend_from_slice(extra);
        self.ok(&args).await
    }
}
