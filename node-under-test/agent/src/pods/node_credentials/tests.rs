use super::*;

fn auth(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

fn config_json(host: &str, user: &str, password: &str) -> String {
    format!(r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#, auth(user, password))
}

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cwd: PathBuf,
    home: PathBuf,
    top: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let [root, cwd, home, top] = ["root", "cwd", "home", "top"].map(|d| tmp.path().join(d));
    for d in [&root, &cwd, &home, &top] {
        std::fs::create_dir_all(d.join(".docker")).unwrap();
    }
    Dirs { _tmp: tmp, root, cwd, home, top }
}

impl Dirs {
    fn creds(&self) -> NodeCredentials {
        NodeCredentials::with_dirs(&self.root, &self.cwd, &self.home, &self.top)
    }
}

fn users(ring: &Keyring, repo: &str) -> Vec<String> {
    ring.lookup(repo).into_iter().map(|c| format!("{}:{}", c.username, c.password)).collect()
}

/// `config.json` in the root directory comes first; a file that does not decode is passed
/// over for the next one; `$HOME/.docker` is searched before `/.docker`.
#[test]
fn the_first_config_json_that_decodes_is_used() {
    let d = dirs();
    std::fs::write(d.top.join(".docker/config.json"), config_json("reg.example", "top", "p")).unwrap();
    std::fs::write(d.home.join(".docker/config.json"), config_json("reg.example", "home", "p")).unwrap();
    std::fs::write(d.cwd.join("config.json"), "{not json").unwrap();
    assert_eq!(users(&d.creds().keyring(), "reg.example/app"), ["home:p"]);
    std::fs::write(d.root.join("config.json"), config_json("reg.example", "root", "p")).unwrap();
    assert_eq!(users(&d.creds().keyring(), "reg.example/app"), ["root:p"]);
}

/// Without any `config.json`, the legacy `.dockercfg` (the map itself) is read, in the root
/// directory first; a `config.json` anywhere wins over every `.dockercfg`.
#[test]
fn dockercfg_only_without_config_json() {
    let d = dirs();
    let cfg = |u: &str| format!(r#"{{"reg.example": {{"username": "{u}", "password": "p"}}}}"#);
    std::fs::write(d.top.join(".dockercfg"), cfg("top")).unwrap();
    std::fs::write(d.root.join(".dockercfg"), cfg("root")).unwrap();
    assert_eq!(users(&d.creds().keyring(), "reg.example/app"), ["root:p"]);
    std::fs::write(d.top.join(".docker/config.json"), config_json("reg.example", "json", "p")).unwrap();
    assert_eq!(users(&d.creds().keyring(), "reg.example/app"), ["json:p"]);
}

/// No file: no credential. What was read is kept for the cache's lifetime (a file written
/// meanwhile is not seen), as upstream's caching provider.
#[test]
fn what_was_read_is_kept() {
    let d = dirs();
    let creds = d.creds();
    assert!(creds.keyring().is_empty());
    std::fs::write(d.root.join("config.json"), config_json("reg.example", "late", "p")).unwrap();
    assert!(creds.keyring().is_empty(), "read again before the cache expired");
    *creds.cache.lock().unwrap() = Some((Instant::now(), Keyring::default()));
    assert_eq!(users(&creds.keyring(), "reg.example/app"), ["late:p"]);
}
