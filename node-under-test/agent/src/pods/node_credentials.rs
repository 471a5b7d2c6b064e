//! The node's own image pull credentials, as upstream's default docker config provider
//! (`pkg/credentialprovider/default_provider.go`, `config.go` `ReadDockerConfigFile`) finds
//! them: the first `config.json` that reads and decodes in the agent's root directory
//! (`SetPreferredDockercfgPath(rootDirectory)`), the working directory, `$HOME/.docker` and
//! `/.docker`; when there is none, the first `.dockercfg` in the root directory, the working
//! directory, `$HOME` and `/`. What was found (or that nothing was) is kept for five minutes
//! (`CachingDockerConfigProvider`, `Lifetime: 5 * time.Minute`). Its credentials come after the
//! pod's pull secrets' (`UnionDockerKeyring{secrets, default}`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pull_secrets::{self, Keyring};

/// Decodes one docker config file into a keyring.
type Decode = fn(&[u8]) -> Result<Keyring, String>;

/// How long what the files gave is used before they are read again (upstream's).
pub const LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The node's docker config files and what they gave last.
#[derive(Debug)]
pub struct NodeCredentials {
    root_dir: PathBuf,
    /// The working directory (empty: paths relative to it).
    cwd: PathBuf,
    /// `$HOME` (empty when unset, which makes upstream's home paths relative).
    home: PathBuf,
    /// The file system's root.
    top: PathBuf,
    /// What the files gave, and until when it is used.
    cache: Mutex<Option<(Instant, Keyring)>>,
}

impl NodeCredentials {
    /// The files upstream reads, with this process's `$HOME` and working directory.
    pub fn new(root_dir: &Path) -> NodeCredentials {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        NodeCredentials::with_dirs(root_dir, Path::new(""), &home, Path::new("/"))
    }

    /// The same search in other directories (tests).
    pub fn with_dirs(root_dir: &Path, cwd: &Path, home: &Path, top: &Path) -> NodeCredentials {
        let [root_dir, cwd, home, top] = [root_dir, cwd, home, top].map(Path::to_path_buf);
        NodeCredentials { root_dir, cwd, home, top, cache: Mutex::new(None) }
    }

    /// The node's keyring: read anew once [`LIFETIME`] has passed since the last read.
    pub fn keyring(&self) -> Keyring {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((until, ring)) = cache.as_ref()
            && Instant::now() < *until
        {
            return ring.clone();
        }
        let ring = self.read();
        *cache = Some((Instant::now() + LIFETIME, ring.clone()));
        ring
    }

    /// The files in upstream's search order (`DefaultDockerConfigJSONPaths`, then
    /// `DefaultDockercfgPaths`), each with its decoder; the empty directory is the working one.
    fn candidates(&self) -> Vec<(PathBuf, Decode)> {
        let json_dirs = [self.root_dir.clone(), self.cwd.clone(), self.home.join(".docker"), self.top.join(".docker")];
        let cfg_dirs = [self.root_dir.clone(), self.cwd.clone(), self.home.clone(), self.top.clone()];
        let json = json_dirs.into_iter().map(|d| (d.join("config.json"), pull_secrets::node_config_json as Decode));
        let cfg = cfg_dirs.into_iter().map(|d| (d.join(".dockercfg"), pull_secrets::node_dockercfg as Decode));
        json.chain(cfg).collect()
    }

    /// The first candidate that reads and decodes; an empty keyring when none does.
    fn read(&self) -> Keyring {
        for (path, decode) in self.candidates() {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            match decode(&bytes) {
                Ok(ring) => {
                    tracing::info!(path = %path.display(), "using the node's docker config for image pulls");
                    return ring;
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "couldn't get the docker config from the file"),
            }
        }
        Keyring::default()
    }
}

#[cfg(test)]
mod tests;
