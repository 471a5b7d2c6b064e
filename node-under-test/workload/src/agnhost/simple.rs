//! The smaller agnhost subcommands: pause, serve-hostname, liveness, test-webserver, porter,
//! entrypoint-tester, etc-hosts, dns-suffix, dns-server-list (upstream's flags and texts).
use super::flags::{FlagSpec, Flags, Kind, flag};
use super::gofmt::{self, log};
use super::server::{self, Request, Response, handler};
use crate::{Error, Result};
use std::time::Instant;

/// serve-hostname's flags.
pub const SERVE_HOSTNAME_FLAGS: &[FlagSpec] = &[
    flag("tcp", Kind::Bool, "false", "Serve raw over TCP."),
    flag("udp", Kind::Bool, "false", "Serve raw over UDP."),
    flag("http", Kind::Bool, "true", "Serve HTTP."),
    flag("close", Kind::Bool, "false", "Close connection per each HTTP request."),
    flag("port", Kind::Int, "9376", "Port number."),
];
/// test-webserver's flags.
pub const TEST_WEBSERVER_FLAGS: &[FlagSpec] = &[flag("port", Kind::Int, "80", "Port number.")];
/// porter's flags.
pub const PORTER_FLAGS: &[FlagSpec] =
    &[flag("json-response", Kind::Bool, "false", "Responds with a json response that includes the value and the request Method")];

/// `pause`: prints `Paused` and waits (SIGTERM exits 2, SIGINT 1: see the supervisor).
pub async fn pause() -> Result<i32> {
    println!("Paused");
    crate::cmd::hold().await
}

/// `serve-hostname`: the hostname over HTTP (every path), raw TCP or UDP.
pub async fn serve_hostname(flags: &Flags) -> Result<i32> {
    let (tcp, udp, http, close) = (flags.bool("tcp"), flags.bool("udp"), flags.bool("http"), flags.bool("close"));
    if http && (tcp || udp) {
        return Err(fatal("Can't server TCP/UDP mode and HTTP mode at the same time"));
    }
    let port = super::netexec::port(flags, "port")?;
    let hostname = crate::cmd::hostname();
    if tcp {
        let l = server::bind_tcp(port).await?;
        let h = hostname.clone();
        tokio::spawn(async move {
            while let Ok((mut s, peer)) = l.accept().await {
                log(format!("TCP request from {}", server::go_addr(peer)));
                let _ = tokio::io::AsyncWriteExt::write_all(&mut s, h.as_bytes()).await;
            }
        });
    }
    if udp {
        let sock = server::bind_udp("", port).await?;
        let h = hostname.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            while let Ok((_, peer)) = sock.recv_from(&mut buf).await {
                log(format!("UDP request from {}", server::go_addr(peer)));
                let _ = sock.send_to(h.as_bytes(), peer).await;
            }
        });
    }
    if http {
        let l = server::bind_tcp(port).await?;
        let serve = handler(move |req: Request| {
            let h = hostname.clone();
            async move {
                log(format!("HTTP request from {}", req.remote));
                let r = Response::text(200, h);
                if close { r.with_header("connection", "close") } else { r }
            }
        });
        tokio::spawn(server::serve(l, serve));
    }
    log(format!("Serving on port {port}."));
    crate::cmd::hold().await
}

/// Go's `log.Fatal`: the message and exit code 1.
fn fatal(msg: &str) -> Error {
    Error::io("fatal", std::io::Error::other(msg.to_string()))
}

/// `liveness`: :8080 `/healthz` 200 `ok` for 10 s, then 500 `error: <seconds>`; `/started`;
/// `/redirect?loc=`.
pub async fn liveness() -> Result<i32> {
    let started = Instant::now();
    let l = server::bind_tcp(8080).await?;
    server::serve(l, handler(move |req: Request| async move { liveness_route(&req, started.elapsed()) })).await
}

/// The liveness routes, `up` after the start.
pub fn liveness_route(req: &Request, up: std::time::Duration) -> Response {
    match req.path.as_str() {
        "/started" => Response::text(200, gofmt::duration_string(up)),
        "/healthz" if up.as_secs_f64() > 10.0 => Response::text(500, format!("error: {}", up.as_secs_f64())),
        "/healthz" => Response::text(200, "ok"),
        "/redirect" => {
            let raw = req.form_value("loc");
            match query_unescape(raw) {
                Some(loc) => super::netexec::go_redirect(req, &loc, 302),
                None => Response::error(400, format!("invalid redirect: {raw:?}")),
            }
        }
        _ => Response::not_found(),
    }
}

/// Go's `url.QueryUnescape` (`+` is a space; a bad `%` escape is an error).
fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `test-webserver`: a file server of `/` on `--port` (80).
pub async fn test_webserver(flags: &Flags) -> Result<i32> {
    let port = super::netexec::port(flags, "port")?;
    let l = server::bind_tcp(port).await?;
    server::serve(l, handler(|req: Request| async move { super::files::serve(&req) })).await
}

/// `porter`: for each `SERVE_PORT_N=value`, HTTP on N answering `value`.
pub async fn porter(flags: &Flags) -> Result<i32> {
    let json = flags.bool("json-response");
    for (key, value) in std::env::vars() {
        if let Some(port) = key.strip_prefix("SERVE_PORT_") {
            let port = port.to_string();
            tokio::spawn(async move {
                let l = match port.parse::<u16>() {
                    Ok(p) => tokio::net::TcpListener::bind(("0.0.0.0", p)).await.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("listen tcp: address {port}: invalid port")),
                };
                let l = match l {
                    Ok(l) => l,
                    Err(e) => return log(format!("server on port {port:?} failed: {e}")),
                };
                let h = handler(move |req: Request| {
                    let value = value.clone();
                    async move { porter_reply(&req, &value, json) }
                });
                if let Err(e) = server::serve(l, h).await {
                    log(format!("server on port {port:?} failed: {e}"));
                }
            });
        } else if key.starts_with("SERVE_TLS_PORT_") || key.starts_with("SERVE_SCTP_PORT_") {
            log(format!("{key}: TLS and SCTP ports are not supported by nodekit's agnhost stand-in; not served"));
        }
    }
    crate::cmd::hold().await
}

/// porter's answer: the value, or `{"Method":…,"Body":…}` with `--json-response`.
pub fn porter_reply(req: &Request, value: &str, json: bool) -> Response {
    if !json {
        return Response::text(200, value);
    }
    let body = format!("{{\"Method\":{},\"Body\":{}}}", gofmt::json_string(&req.method), gofmt::json_string(value));
    Response { headers: vec![("content-type".into(), "application/json".into())], ..Response::text(200, body) }
}

/// `entrypoint-tester`: prints the whole argv as Go's `fmt.Printf("%v\n", os.Args)`.
pub fn entrypoint_tester(argv: &[String]) -> Result<i32> {
    println!("[{}]", argv.join(" "));
    Ok(0)
}

/// `etc-hosts`: prints /etc/hosts (plus a newline, as `fmt.Println`).
pub fn etc_hosts() -> Result<i32> {
    match std::fs::read_to_string("/etc/hosts") {
        Ok(s) => {
            println!("{s}");
            Ok(0)
        }
        Err(e) => Ok(go_panic(&format!("open /etc/hosts: {}", e.kind()))),
    }
}

/// `dns-suffix` / `dns-server-list`: the words after the first `search` / `nameserver` line
/// of /etc/resolv.conf, comma-separated.
pub fn resolv_conf_list(keyword: &str) -> Result<i32> {
    let text = match std::fs::read_to_string("/etc/resolv.conf") {
        Ok(t) => t,
        Err(e) => return Ok(go_panic(&format!("open /etc/resolv.conf: {}", e.kind()))),
    };
    match resolv_words(&text, keyword) {
        Some(words) => {
            println!("{words}");
            Ok(0)
        }
        None => Ok(go_panic("Could not find DNS search list!")),
    }
}

/// The comma-joined words of the first line starting with `keyword`.
pub fn resolv_words(text: &str, keyword: &str) -> Option<String> {
    let line = text.split('\n').find(|l| l.starts_with(keyword))?;
    Some(line.split(' ').skip(1).collect::<Vec<_>>().join(","))
}

/// A Go panic: the message on stderr and exit code 2.
fn go_panic(msg: &str) -> i32 {
    eprintln!("panic: {msg}\n\ngoroutine 1 [running]:");
    2
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn get(path: &str, query: &str) -> Request {
        server::test_request(path, query, vec![], "1.2.3.4:5")
    }

    #[test]
    fn liveness_is_healthy_for_ten_seconds() {
        let r = liveness_route(&get("/healthz", ""), Duration::from_secs(10));
        assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
        let r = liveness_route(&get("/healthz", ""), Duration::from_millis(10_500));
        assert_eq!((r.status, String::from_utf8_lossy(&r.body).as_ref()), (500, "error: 10.5"));
        let r = liveness_route(&get("/started", ""), Duration::from_millis(1500));
        assert_eq!(r.body, b"1.5s");
        let r = liveness_route(&get("/redirect", "loc=%252Fhealthz"), Duration::ZERO);
        assert_eq!(r.status, 302);
        assert!(r.headers.contains(&("location".into(), "/healthz".into())));
        assert_eq!(liveness_route(&get("/redirect", "loc=%25zz"), Duration::ZERO).status, 400);
        assert_eq!(liveness_route(&get("/", ""), Duration::ZERO).status, 404);
    }

    #[test]
    fn porter_and_resolv() {
        assert_eq!(porter_reply(&get("/", ""), "foo", false).body, b"foo");
        let r = porter_reply(&get("/", ""), "foo", true);
        assert_eq!(String::from_utf8_lossy(&r.body), "{\"Method\":\"GET\",\"Body\":\"foo\"}");
        let conf = "nameserver 10.0.0.10\nsearch ns.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n";
        assert_eq!(resolv_words(conf, "search").as_deref(), Some("ns.svc.cluster.local,svc.cluster.local,cluster.local"));
        assert_eq!(resolv_words(conf, "nameserver").as_deref(), Some("10.0.0.10"));
        assert_eq!(resolv_words("", "search"), None);
    }
}
