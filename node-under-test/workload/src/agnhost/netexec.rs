//! `agnhost netexec`: upstream's HTTP endpoints and UDP server, with upstream's texts.
//!
//! HTTP (`--http-port`, 8080): `/` (`NOW: <Go time>`, also every unknown path, as Go's mux
//! routes them), `/clientip`, `/header[?key=]`, `/dial?host=&port=&request=&protocol=&tries=`,
//! `/echo?msg=[&code=]`, `/exit?code=[&timeout=][&wait=]`, `/healthz` (200 once the UDP
//! server listens, else 412), `/readyz` (503 `shutting down` after SIGTERM), `/hostname`,
//! `/hostName`, `/redirect?location=[&code=]`, `/shutdown`, and `/shell` and `/upload`, which
//! answer with upstream's error shape: there is no shell (nor upload directory) in the image.
//! UDP (`--udp-port`, 8081; -1: none; `--udp-listen-addresses`): `hostname`, `echo MSG`,
//! `clientip`. `--http-override PATH` serves every request as a GET of PATH.
//! `--delay-shutdown N`: SIGTERM exits 0 after N seconds (see the supervisor in `mod.rs`).
//! Not supported (exit 2, said so): `--sctp-port` other than -1, `--tls-cert-file`.
use super::flags::{Flags, FlagSpec, Kind, flag};
use super::gofmt::{self, json_object, json_string, log};
use super::server::{self, Request, Response, handler};
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// netexec's flags (upstream's names and defaults).
pub const FLAGS: &[FlagSpec] = &[
    flag("http-port", Kind::Int, "8080", "HTTP Listen Port"),
    flag("tls-cert-file", Kind::Str, "", "File containing an x509 certificate for HTTPS (not supported)"),
    flag("tls-private-key-file", Kind::Str, "", "File containing an x509 private key matching --tls-cert-file"),
    flag("udp-port", Kind::Int, "8081", "UDP Listen Port"),
    flag("sctp-port", Kind::Int, "-1", "SCTP Listen Port (not supported)"),
    flag("http-override", Kind::Str, "", "Override the HTTP handler to always respond as if it were a GET with this path & params"),
    flag("udp-listen-addresses", Kind::Str, "", "A comma separated list of ip addresses the udp servers listen from"),
    flag("delay-shutdown", Kind::Int, "0", "Number of seconds to delay shutdown when receiving SIGTERM."),
];

/// Server state shared by the handlers.
struct State {
    /// The UDP server listens (`serverReady` upstream).
    ready: AtomicBool,
    /// `--http-override`.
    http_override: String,
}

/// A port flag as a port number (upstream fails at listen time, with exit code 1).
pub fn port(flags: &Flags, name: &str) -> Result<u16> {
    let v = flags.int(name);
    u16::try_from(v).map_err(|_| {
        Error::io(format!("listen: --{name}"), std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("address {v}: invalid port")))
    })
}

/// Runs netexec until the process exits.
pub async fn run(flags: &Flags) -> Result<i32> {
    if flags.int("sctp-port") != -1 {
        return Err(Error::Usage("netexec --sctp-port: SCTP is not supported by nodekit's agnhost stand-in".into()));
    }
    if !flags.str("tls-cert-file").is_empty() {
        return Err(Error::Usage("netexec --tls-cert-file: HTTPS is not supported by nodekit's agnhost stand-in".into()));
    }
    let http_port = port(flags, "http-port")?;
    let state = Arc::new(State { ready: AtomicBool::new(false), http_override: flags.str("http-override").to_string() });
    if flags.int("udp-port") != -1 {
        let udp_port = port(flags, "udp-port")?;
        for address in udp_addresses(flags.str("udp-listen-addresses"))? {
            let sock = server::bind_udp(&address, udp_port).await?;
            log(format!("Started UDP server on port {address} {udp_port}"));
            state.ready.store(true, Ordering::SeqCst);
            tokio::spawn(udp_loop(sock));
        }
    }
    let listener = server::bind_tcp(http_port).await?;
    log(format!("Started HTTP server on port {http_port}"));
    let st = state.clone();
    server::serve(listener, handler(move |req| route(st.clone(), req))).await
}

/// `--udp-listen-addresses`: sorted, deduplicated; "" means every address.
fn udp_addresses(list: &str) -> Result<Vec<String>> {
    if list.is_empty() {
        return Ok(vec![String::new()]);
    }
    let mut out = Vec::new();
    for a in list.split(',') {
        if a.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Usage(format!("parseAddress: invalid address {a}")));
        }
        out.push(a.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The UDP protocol: `hostname`, `echo MSG`, `clientip` (case-insensitive, trimmed).
pub fn udp_answer(received: &[u8], client: &str) -> Option<String> {
    let text = String::from_utf8_lossy(received).trim().to_lowercase();
    if text == "hostname" {
        log("Sending udp hostName response");
        Some(crate::cmd::hostname())
    } else if let Some(msg) = text.strip_prefix("echo ") {
        log(format!("Echoing {msg} to UDP client {client}"));
        Some(msg.to_string())
    } else if text == "clientip" {
        log(format!("Sending clientip back to UDP client {client}"));
        Some(client.to_string())
    } else {
        if !text.is_empty() {
            log(format!("Unknown UDP command received from {client}: {text}"));
        }
        None
    }
}

async fn udp_loop(sock: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                log(format!("Error occurred: failed accepting UDP connections:{e}"));
                crate::supervise::exit(1);
            }
        };
        let client = server::go_addr(peer);
        if let Some(answer) = udp_answer(&buf[..n], &client)
            && let Err(e) = sock.send_to(answer.as_bytes(), peer).await
        {
            log(format!("Error occurred: failed to write to UDP client {client}:{e}"));
            crate::supervise::exit(1);
        }
    }
}

async fn route(state: Arc<State>, mut req: Request) -> Response {
    if !state.http_override.is_empty() {
        let (path, query) = server::split_target(&state.http_override);
        req = Request { method: "GET".into(), path, query, headers: vec![], remote: String::new() };
    }
    match req.path.as_str() {
        "/clientip" => {
            log("GET /clientip");
            Response::text(200, req.remote.clone())
        }
        "/header" => header(&req),
        "/dial" => super::dial::handle(&req).await,
        "/echo" => echo(&req),
        "/exit" => exit(&req).await,
        "/healthz" => {
            log("GET /healthz");
            Response::text(if state.ready.load(Ordering::SeqCst) { 200 } else { 412 }, "")
        }
        "/readyz" => readyz(&state),
        "/hostname" | "/hostName" => {
            log(format!("GET {}", req.path));
            Response::text(200, hostname_logged())
        }
        "/redirect" => redirect(&req),
        "/shell" => shell(&req),
        "/shutdown" => {
            log("GET /shutdown");
            crate::supervise::exit(0)
        }
        "/upload" => {
            log("GET /upload");
            let msg = "Unable to upload file. (nodekit's agnhost stand-in does not implement /upload)";
            Response::text(200, json_object([("error", json_string(msg))]))
        }
        _ => {
            log("GET /");
            Response::text(200, format!("NOW: {}", gofmt::now_string()))
        }
    }
}

/// Go's `getHostName`, which logs what it returns.
fn hostname_logged() -> String {
    let h = crate::cmd::hostname();
    log(format!("hostname: {h}"));
    h
}

fn readyz(state: &State) -> Response {
    log("GET /readyz");
    if super::terminating() {
        Response::text(503, "shutting down")
    } else if state.ready.load(Ordering::SeqCst) {
        Response::text(200, "ok")
    } else {
        Response::text(412, "")
    }
}

/// `Content-Type` → `Content-Type` (Go's canonical header key).
pub fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn header(req: &Request) -> Response {
    // Go moves Host out of r.Header.
    let headers: Vec<&(String, String)> = req.headers.iter().filter(|(k, _)| k != "host").collect();
    let key = req.form_value("key");
    if !key.is_empty() {
        log(format!("GET /header?key={key}"));
        let v = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
        return Response::text(200, v.unwrap_or_default());
    }
    log("GET /header");
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in headers {
        let k = canonical_header(k);
        match grouped.iter_mut().find(|(g, _)| *g == k) {
            Some((_, vs)) => vs.push(v.clone()),
            None => grouped.push((k, vec![v.clone()])),
        }
    }
    let entries: Vec<(&str, String)> = grouped.iter().map(|(k, vs)| (k.as_str(), gofmt::json_array(vs))).collect();
    Response::text(200, json_object(entries))
}

fn echo(req: &Request) -> Response {
    let (msg, code) = (req.form_value("msg"), req.form_value("code"));
    log(format!("GET /echo?msg={msg}&code={code}"));
    if code.is_empty() {
        return Response::text(200, msg);
    }
    match code.parse::<u16>() {
        Ok(c) => Response::text(c, msg),
        Err(_) if code.parse::<i64>().is_ok() => Response::text(500, ""),
        Err(_) => Response::text(200, format!("argument 'code' must be an integer or empty, got {code:?}\n")),
    }
}

/// `-1s` for negative nanoseconds, else Go's duration text.
fn signed_duration(ns: i64) -> String {
    let s = gofmt::duration_string(std::time::Duration::from_nanos(ns.unsigned_abs()));
    if ns < 0 { format!("-{s}") } else { s }
}

async fn exit(req: &Request) -> Response {
    let (wait, timeout, code) = (req.form_value("wait"), req.form_value("timeout"), req.form_value("code"));
    log(format!("GET /exit?code={code}&timeout={timeout}&wait={wait}"));
    let parse = |s: &str| if s.is_empty() { Ok(0) } else { gofmt::parse_duration(s) };
    let Ok(timeout_ns) = parse(timeout) else {
        return Response::text(200, format!("argument 'timeout' must be a valid golang duration or empty, got {timeout:?}\n"));
    };
    let Ok(wait_ns) = parse(wait) else {
        return Response::text(200, format!("argument 'wait' must be a valid golang duration or empty, got {wait:?}\n"));
    };
    let exit_code = if code.is_empty() { Ok(0) } else { code.parse::<i64>() };
    let Ok(exit_code) = exit_code else {
        return Response::text(200, format!("argument 'code' must be an integer [0-127] or empty, got {code:?}\n"));
    };
    log(format!(
        "Will begin shutdown in {}, allowing {} for connections to close, then will exit with {exit_code}",
        signed_duration(wait_ns),
        signed_duration(timeout_ns)
    ));
    tokio::time::sleep(gofmt::nanos_to_duration(wait_ns)).await;
    if timeout_ns == 0 {
        crate::supervise::exit(exit_code as i32);
    }
    // A graceful shutdown: this reply is the last one.
    Response { exit_after: Some(exit_code as i32), ..Response::text(200, "") }
}

fn redirect(req: &Request) -> Response {
    let (location, code) = (req.form_value("location"), req.form_value("code"));
    log(format!("{} /redirect?msg={location}&code={code}", req.method));
    let status = if code.is_empty() {
        302
    } else {
        match code.parse::<u16>() {
            Ok(c) => c,
            Err(_) if code.parse::<i64>().is_ok() => return Response::text(500, ""),
            Err(_) => return Response::text(200, format!("argument 'code' must be an integer or empty, got {code:?}\n")),
        }
    };
    go_redirect(req, location, status)
}

/// Go's `http.Redirect`: relative targets made absolute and cleaned, an HTML body for GET.
pub fn go_redirect(req: &Request, location: &str, status: u16) -> Response {
    let target = absolute_target(&req.path, location);
    let mut r = Response { status, headers: vec![("location".into(), target.clone())], body: vec![], exit_after: None };
    if req.method == "GET" || req.method == "HEAD" {
        r.headers.push(("content-type".into(), "text/html; charset=utf-8".into()));
    }
    if req.method == "GET" {
        let text = hyper::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        r.body = format!("<a href=\"{}\">{text}</a>.\n\n", html_escape(&target)).into_bytes();
    }
    r
}

fn has_scheme_or_host(url: &str) -> bool {
    if url.starts_with("//") {
        return true;
    }
    let end = url.find(['/', '?', '#']).unwrap_or(url.len());
    match url[..end].split_once(':') {
        Some((scheme, _)) => {
            let mut c = scheme.chars();
            c.next().is_some_and(|f| f.is_ascii_alphabetic()) && c.all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch))
        }
        None => false,
    }
}

/// The Location Go's `http.Redirect` sends for `location` asked at `path`.
pub fn absolute_target(path: &str, location: &str) -> String {
    if has_scheme_or_host(location) {
        return location.to_string();
    }
    let mut url = location.to_string();
    if !url.starts_with('/') {
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        url = format!("{}{url}", if dir.is_empty() { "/" } else { dir });
    }
    let (p, query) = match url.find('?') {
        Some(i) => (url[..i].to_string(), url[i..].to_string()),
        None => (url.clone(), String::new()),
    };
    let mut cleaned = clean_path(&p);
    if p.ends_with('/') && !cleaned.ends_with('/') {
        cleaned.push('/');
    }
    cleaned + &query
}

/// Go's `path.Clean` for absolute paths.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;").replace('\'', "&#39;")
}

fn shell(req: &Request) -> Response {
    let cmd = match req.form_value("shellCommand") {
        "" => req.form_value("cmd"),
        c => c,
    };
    log(format!("GET /shell?cmd={cmd}"));
    let msg = "fork/exec /bin/sh: no such file or directory (nodekit's agnhost stand-in has no shell: /shell runs nothing)";
    log(format!("Output: map[error:{msg}]"));
    Response::text(200, json_object([("error", json_string(msg))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, query: &str) -> Request {
        server::test_request(path, query, vec![("host".into(), "x".into()), ("user-agent".into(), "t/1".into()), ("x-a".into(), "1".into())], "10.0.0.9:4242")
    }

    fn st() -> Arc<State> {
        Arc::new(State { ready: AtomicBool::new(true), http_override: String::new() })
    }

    fn body(r: &Response) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    #[tokio::test]
    async fn routes_answer_like_upstream() {
        let r = route(st(), get("/echo", "msg=hi&code=404")).await;
        assert_eq!((r.status, body(&r).as_str()), (404, "hi"));
        let r = route(st(), get("/echo", "msg=hi&code=x")).await;
        assert_eq!((r.status, body(&r).as_str()), (200, "argument 'code' must be an integer or empty, got \"x\"\n"));
        let r = route(st(), get("/clientip", "")).await;
        assert_eq!(body(&r), "10.0.0.9:4242");
        let r = route(st(), get("/anything/else", "")).await;
        assert!(body(&r).starts_with("NOW: ") && body(&r).contains(" +0000 UTC m=+"), "{}", body(&r));
        let r = route(st(), get("/healthz", "")).await;
        assert_eq!((r.status, body(&r).as_str()), (200, ""));
        let unready = Arc::new(State { ready: AtomicBool::new(false), http_override: String::new() });
        assert_eq!(route(unready.clone(), get("/healthz", "")).await.status, 412);
        assert_eq!(route(unready, get("/readyz", "")).await.status, 412);
        let r = route(st(), get("/readyz", "")).await;
        assert_eq!((r.status, body(&r).as_str()), (200, "ok"));
    }

    #[tokio::test]
    async fn headers_shell_and_override() {
        let r = route(st(), get("/header", "key=X-A")).await;
        assert_eq!(body(&r), "1");
        let r = route(st(), get("/header", "")).await;
        assert_eq!(body(&r), "{\"User-Agent\":[\"t/1\"],\"X-A\":[\"1\"]}");
        let r = route(st(), get("/shell", "cmd=ls")).await;
        assert_eq!(r.status, 200);
        assert!(body(&r).starts_with("{\"error\":\"fork/exec /bin/sh: no such file or directory"), "{}", body(&r));
        let o = Arc::new(State { ready: AtomicBool::new(true), http_override: "/echo?msg=over".into() });
        assert_eq!(body(&route(o, get("/hostname", "")).await), "over");
    }

    #[tokio::test]
    async fn exit_argument_errors() {
        let r = route(st(), get("/exit", "code=x")).await;
        assert_eq!(body(&r), "argument 'code' must be an integer [0-127] or empty, got \"x\"\n");
        let r = route(st(), get("/exit", "timeout=5")).await;
        assert_eq!(body(&r), "argument 'timeout' must be a valid golang duration or empty, got \"5\"\n");
        let r = route(st(), get("/exit", "code=3&timeout=1s")).await;
        assert_eq!((r.status, r.exit_after), (200, Some(3)));
    }

    #[test]
    fn redirects_like_go() {
        let r = go_redirect(&get("/redirect", ""), "/echo?msg=foobar", 307);
        assert_eq!(r.status, 307);
        assert!(r.headers.contains(&("location".into(), "/echo?msg=foobar".into())));
        assert_eq!(body(&r), "<a href=\"/echo?msg=foobar\">Temporary Redirect</a>.\n\n");
        assert_eq!(absolute_target("/redirect", "healthz"), "/healthz");
        assert_eq!(absolute_target("/a/b", "../c/"), "/c/");
        assert_eq!(absolute_target("/redirect", "http://0.0.0.0/"), "http://0.0.0.0/");
        assert_eq!(absolute_target("/redirect", ""), "/");
    }

    #[test]
    fn udp_protocol() {
        assert_eq!(udp_answer(b"ECHO Hello\n", "1.2.3.4:5"), Some("hello".into()));
        assert_eq!(udp_answer(b"clientip", "1.2.3.4:5"), Some("1.2.3.4:5".into()));
        assert_eq!(udp_answer(b"nope", "1.2.3.4:5"), None);
        assert_eq!(udp_addresses("").unwrap(), vec![String::new()]);
        assert_eq!(udp_addresses("10.0.0.2,10.0.0.1,10.0.0.2").unwrap(), vec!["10.0.0.1".to_string(), "10.0.0.2".into()]);
        assert!(udp_addresses("nope").is_err());
        assert_eq!(canonical_header("x-forwarded-for"), "X-Forwarded-For");
    }
}
