//! `POST /run/{namespace}/{pod}[/{uid}]/{container}?cmd=…`: runs a command in the container
//! (CRI ExecSync) and answers its output (stdout then stderr), as upstream's RunInContainer.

use std::time::Duration;

use http::{Response, StatusCode};

use super::containers;
use super::respond::{Body, full, text, with_type};
use super::router::ContainerPath;
use crate::cri::{Runtime, api};
use crate::pods::registry::PodRegistry;

/// The command from the `cmd` parameter (query, else a form body), split at spaces as upstream.
pub fn command(query: &str, form: &str) -> Vec<String> {
    let cmd = super::query::first(query, "cmd").or_else(|| super::query::first(form, "cmd")).unwrap_or_default();
    cmd.split(' ').map(str::to_string).collect()
}

/// Upstream's error for a command that exited non-zero.
pub fn exit_error(cmd: &[String], code: i32, stderr: &[u8]) -> String {
    format!("command '{}' exited with {code}: {}", cmd.join(" "), String::from_utf8_lossy(stderr))
}

/// Runs `cmd` in the running instance of the container.
pub async fn serve<R: Runtime>(runtime: &R, pods: &PodRegistry, path: &ContainerPath, cmd: Vec<String>, timeout: Duration) -> Response<Body> {
    let Some(pod) = pods.by_name(&path.namespace, &path.pod) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let instances = match containers::instances(runtime, &uid, &path.container).await {
        Ok(cs) => cs,
        Err(r) => return text(super::respond::status(r.status), r.message),
    };
    let Some(c) = instances.iter().find(|c| c.state == api::ContainerState::ContainerRunning as i32) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, format!("container not found ({:?})", path.container));
    };
    match runtime.exec_sync(&c.id, cmd.clone(), timeout).await {
        Ok(r) if r.exit_code == 0 => {
            let mut out = r.stdout;
            out.extend_from_slice(&r.stderr);
            with_type(StatusCode::OK, "application/json", full(out))
        }
        Ok(r) => text(StatusCode::INTERNAL_SERVER_ERROR, exit_error(&cmd, r.exit_code, &r.stderr)),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_from_query_or_form() {
        assert_eq!(command("cmd=echo+hello+world", ""), ["echo", "hello", "world"]);
        assert_eq!(command("", "cmd=ls%20-l"), ["ls", "-l"]);
        assert_eq!(command("cmd=a", "cmd=b"), ["a"]);
        assert_eq!(command("", ""), [""]);
    }

    #[test]
    fn exit_error_as_upstream_writes_it() {
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        assert_eq!(exit_error(&cmd, 3, b"oops"), "command 'sh -c exit 3' exited with 3: oops");
    }
}
