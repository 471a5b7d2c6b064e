//! Request routing: upstream's kubelet API paths and the methods each allows.

use http::Method;

/// A container named by the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerPath {
    pub namespace: String,
    pub pod: String,
    /// The pod uid, when the path has one (`/run/{ns}/{pod}/{uid}/{container}`).
    pub uid: Option<String>,
    pub container: String,
}

/// The streaming endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streaming {
    Exec,
    Attach,
    PortForward,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Pods,
    ContainerLogs(ContainerPath),
    Run(ContainerPath),
    /// A streaming endpoint; `container` is empty for port-forward.
    Streaming(Streaming, ContainerPath),
    StatsSummary,
    Metrics,
    MetricsResource,
    MetricsProbes,
    Configz,
    NotFound,
    /// The path exists, the method does not; `allow` goes into the Allow header.
    MethodNotAllowed { allow: &'static str },
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default())
        .collect()
}

fn container(rest: &[String], with_uid: bool) -> Option<ContainerPath> {
    match (rest, with_uid) {
        ([ns, pod, c], _) => Some(ContainerPath { namespace: ns.clone(), pod: pod.clone(), uid: None, container: c.clone() }),
        ([ns, pod, uid, c], true) => {
            Some(ContainerPath { namespace: ns.clone(), pod: pod.clone(), uid: Some(uid.clone()), container: c.clone() })
        }
        _ => None,
    }
}

fn only(method: &Method, allowed: &[Method], allow: &'static str, route: Route) -> Route {
    if allowed.contains(method) { route } else { Route::MethodNotAllowed { allow } }
}

/// Routes `method` `path` (percent-decoded segments).
pub fn route(method: &Method, path: &str) -> Route {
    let seg = segments(path);
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let get = [Method::GET];
    match s.as_slice() {
        ["healthz"] | ["healthz", "ping" | "log" | "syncloop"] => Route::Healthz,
        ["pods"] => only(method, &get, "GET", Route::Pods),
        ["containerLogs", rest @ ..] => match container(&seg[1..], false) {
            Some(c) if rest.len() == 3 => only(method, &get, "GET", Route::ContainerLogs(c)),
            _ => Route::NotFound,
        },
        ["run", ..] => match container(&seg[1..], true) {
            Some(c) => only(method, &[Method::POST], "POST", Route::Run(c)),
            None => Route::NotFound,
        },
        ["exec" | "attach", ..] => match container(&seg[1..], true) {
            Some(c) => {
                let kind = if s[0] == "exec" { Streaming::Exec } else { Streaming::Attach };
                only(method, &[Method::GET, Method::POST], "GET, POST", Route::Streaming(kind, c))
            }
            None => Route::NotFound,
        },
        ["portForward", ns, pod, uid @ ..] if uid.len() <= 1 => {
            let c = ContainerPath { namespace: ns.to_string(), pod: pod.to_string(), uid: uid.first().map(|u| u.to_string()), container: String::new() };
            only(method, &[Method::GET, Method::POST], "GET, POST", Route::Streaming(Streaming::PortForward, c))
        }
        ["stats", "summary"] => only(method, &[Method::GET, Method::POST], "GET, POST", Route::StatsSummary),
        ["metrics"] => Route::Metrics,
        ["metrics", "resource"] => Route::MetricsResource,
        ["metrics", "probes"] => Route::MetricsProbes,
        ["configz"] => only(method, &get, "GET", Route::Configz),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(p: &str) -> Route {
        route(&Method::GET, p)
    }

    #[test]
    fn upstream_paths() {
        assert_eq!(get("/healthz"), Route::Healthz);
        assert_eq!(get("/healthz/syncloop"), Route::Healthz);
        assert_eq!(get("/pods"), Route::Pods);
        assert_eq!(get("/pods/"), Route::Pods);
        assert_eq!(get("/stats/summary"), Route::StatsSummary);
        assert_eq!(route(&Method::POST, "/stats/summary"), Route::StatsSummary);
        assert_eq!(get("/metrics"), Route::Metrics);
        assert_eq!(get("/metrics/resource"), Route::MetricsResource);
        assert_eq!(get("/metrics/probes"), Route::MetricsProbes);
        assert_eq!(get("/configz"), Route::Configz);
        assert_eq!(get("/nope"), Route::NotFound);
        assert_eq!(get("/metrics/cadvisor"), Route::NotFound);
    }

    #[test]
    fn container_paths() {
        let c = ContainerPath { namespace: "ns".into(), pod: "p".into(), uid: None, container: "c".into() };
        assert_eq!(get("/containerLogs/ns/p/c"), Route::ContainerLogs(c.clone()));
        assert_eq!(get("/containerLogs/ns/p"), Route::NotFound);
        assert_eq!(get("/containerLogs/ns/p/u/c"), Route::NotFound);
        assert_eq!(route(&Method::POST, "/run/ns/p/c"), Route::Run(c.clone()));
        let with_uid = ContainerPath { uid: Some("u".into()), ..c };
        assert_eq!(route(&Method::POST, "/run/ns/p/u/c"), Route::Run(with_uid));
        assert_eq!(get("/containerLogs/ns/p%20x/c").clone(), Route::ContainerLogs(ContainerPath {
            namespace: "ns".into(),
            pod: "p x".into(),
            uid: None,
            container: "c".into(),
        }));
    }

    #[test]
    fn methods() {
        assert_eq!(route(&Method::POST, "/pods"), Route::MethodNotAllowed { allow: "GET" });
        assert_eq!(route(&Method::DELETE, "/containerLogs/ns/p/c"), Route::MethodNotAllowed { allow: "GET" });
        assert_eq!(get("/run/ns/p/c"), Route::MethodNotAllowed { allow: "POST" });
    }

    #[test]
    fn streaming_is_recognised() {
        let c = ContainerPath { namespace: "ns".into(), pod: "p".into(), uid: None, container: "c".into() };
        assert_eq!(get("/exec/ns/p/c"), Route::Streaming(Streaming::Exec, c.clone()));
        let with_uid = ContainerPath { uid: Some("u".into()), ..c.clone() };
        assert_eq!(route(&Method::POST, "/attach/ns/p/u/c"), Route::Streaming(Streaming::Attach, with_uid));
        let pf = ContainerPath { container: String::new(), ..c };
        assert_eq!(get("/portForward/ns/p"), Route::Streaming(Streaming::PortForward, pf));
        assert_eq!(get("/exec/ns"), Route::NotFound);
        assert_eq!(get("/portForward/ns/p/u/x"), Route::NotFound);
        assert_eq!(route(&Method::DELETE, "/exec/ns/p/c"), Route::MethodNotAllowed { allow: "GET, POST" });
    }
}
