//! netexec's `/dial`: asks another server `tries` times over HTTP or UDP and reports
//! `{"errors":[…],"responses":[…]}` as upstream does (`responses` only when the last try
//! answered). SCTP is not supported here: each try reports an error saying so.
use super::gofmt::{json_array, json_object, log};
use super::server::{Request, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::net::SocketAddr;
use std::time::Duration;

/// Upstream's per-request timeout (HTTP client and UDP read).
const TIMEOUT: Duration = Duration::from_secs(5);

/// The transport of a dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http,
    Udp,
    Sctp,
}

/// Handles `GET /dial?host=&port=&request=&protocol=&tries=`.
pub async fn handle(req: &Request) -> Response {
    let v = |k| req.form_value(k);
    let (host, port, request, protocol, tries) = (v("host"), v("port"), v("request"), v("protocol"), v("tries"));
    log(format!("GET /dial?host={host}&protocol={protocol}&port={port}&request={request}&tries={tries}"));
    let tries: i64 = if tries.is_empty() {
        1
    } else {
        match tries.parse() {
            Ok(t) => t,
            Err(_) => {
                return Response::error(400, format!("tries parameter is invalid. strconv.Atoi: parsing {tries:?}: invalid syntax"));
            }
        }
    };
    if request.is_empty() {
        return Response::error(400, "request parameter not specified. <nil>");
    }
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "" | "http" => Protocol::Http,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => return Response::error(400, format!("unsupported protocol. {other}")),
    };
    let addr = match resolve(host, port).await {
        Ok(a) => a,
        Err(e) => return Response::error(400, format!("host and/or port param are invalid. {e}")),
    };
    let (mut responses, mut errors, mut last) = (Vec::new(), Vec::new(), String::new());
    for _ in 0..tries.max(0) {
        match dial_once(protocol, request, addr).await {
            Ok(r) => {
                last = r.clone();
                responses.push(r);
            }
            Err(e) => {
                last.clear();
                errors.push(e);
            }
        }
    }
    let mut out = Vec::new();
    if !last.is_empty() {
        out.push(("responses", json_array(&responses)));
    }
    if !errors.is_empty() {
        out.push(("errors", json_array(&errors)));
    }
    Response::text(200, json_object(out))
}

/// Go's `JoinHostPort` + resolve: a literal address or the first address of a name.
async fn resolve(host: &str, port: &str) -> Result<SocketAddr, String> {
    let port: u16 = port.parse().map_err(|_| format!("lookup port {port:?}: invalid port"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("lookup {host}: {e}"))?;
    addrs.next().ok_or_else(|| format!("lookup {host}: no such host"))
}

async fn dial_once(protocol: Protocol, request: &str, addr: SocketAddr) -> Result<String, String> {
    match protocol {
        Protocol::Http => dial_http(request, addr).await,
        Protocol::Udp => dial_udp(request, addr).await,
        Protocol::Sctp => Err("sctp dial failed. err:SCTP is not supported by nodekit's agnhost stand-in".into()),
    }
}

/// An `io::Error` in Go's words (`connect: connection refused`).
fn go_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset by peer".into(),
        TimedOut => "i/o timeout".into(),
        HostUnreachable => "no route to host".into(),
        NetworkUnreachable => "network is unreachable".into(),
        _ => e.to_string(),
    }
}

/// `GET http://addr/request`, the body whatever the status (as upstream reads it).
async fn dial_http(request: &str, addr: SocketAddr) -> Result<String, String> {
    let url = format!("http://{addr}/{request}");
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("dial tcp {addr}: connect: {}", go_io(&e)))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::get(format!("/{request}"))
            .header("host", addr.to_string())
            .header("user-agent", "Go-http-client/1.1")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>(String::from_utf8_lossy(&body).into_owned())
    };
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(format!("Get {url:?}: {e}")),
        Err(_) => Err(format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
    }
}

/// Sends `request` in one datagram and reads one answer (5 s).
async fn dial_udp(request: &str, addr: SocketAddr) -> Result<String, String> {
    let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = tokio::net::UdpSocket::bind(local).await.map_err(|e| format!("udp dial failed. err:{}", go_io(&e)))?;
    sock.connect(addr).await.map_err(|e| format!("udp dial failed. err:dial udp {addr}: {}", go_io(&e)))?;
    sock.send(request.as_bytes()).await.map_err(|e| format!("udp connection write failed. err:{}", go_io(&e)))?;
    let mut buf = vec![0u8; 2048];
    let me = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    match tokio::time::timeout(TIMEOUT, sock.recv(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Ok(_)) => Err("reading from udp connection failed. err:'<nil>'".into()),
        Ok(Err(e)) => Err(format!("reading from udp connection failed. err:'read udp {me}->{addr}: {}'", go_io(&e))),
        Err(_) => Err(format!("reading from udp connection failed. err:'read udp {me}->{addr}: i/o timeout'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/dial".into(),
            query: crate::http::parse_query(query),
            headers: vec![],
            remote: String::new(),
        }
    }

    #[tokio::test]
    async fn parameter_errors() {
        let r = handle(&get("host=127.0.0.1&port=1&tries=x&request=hostname")).await;
        assert_eq!(r.status, 400);
        let r = handle(&get("host=127.0.0.1&port=1")).await;
        assert_eq!((r.status, String::from_utf8_lossy(&r.body).as_ref()), (400, "request parameter not specified. <nil>\n"));
        let r = handle(&get("host=127.0.0.1&port=1&request=x&protocol=quic")).await;
        assert_eq!(r.status, 400);
        let r = handle(&get("host=127.0.0.1&port=http&request=x")).await;
        assert_eq!(r.status, 400);
    }

    #[tokio::test]
    async fn udp_and_http_dials() {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            let (n, peer) = udp.recv_from(&mut b).await.unwrap();
            udp.send_to(&b[..n], peer).await.unwrap();
        });
        let r = handle(&get(&format!("host=127.0.0.1&port={port}&request=ping&protocol=udp"))).await;
        assert_eq!(String::from_utf8_lossy(&r.body), "{\"responses\":[\"ping\"]}");
        // Nothing listens on a port just freed: an error, no responses.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let r = handle(&get(&format!("host=127.0.0.1&port={free}&request=hostname&tries=2"))).await;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.starts_with("{\"errors\":[\"Get \\\"http://127.0.0.1:"), "{text}");
        assert!(text.contains("connection refused") && !text.contains("responses"), "{text}");
    }
}
