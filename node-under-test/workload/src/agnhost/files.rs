//! test-webserver's file server: Go's `http.FileServer(http.Dir("/"))` in the main: a file's
//! bytes, a directory's `index.html` or listing, redirects to and from trailing slashes, 404s,
//! and upstream's CORS and `Cache-Control: private` headers.
use super::server::{Request, Response};
use std::path::{Path, PathBuf};

/// Headers upstream's handler sets on every answer.
const HEADERS: &[(&str, &str)] = &[
    ("cache-control", "private"),
    ("access-control-allow-origin", "*"),
    ("access-control-allow-credentials", "true"),
    ("access-control-allow-methods", "GET, POST, OPTIONS"),
    ("access-control-allow-headers", "DNT,X-Mx-ReqToken,Keep-Alive,User-Agent,X-Requested-With,Cache-Control,Content-Type"),
];

/// Serves a request from the root filesystem.
pub fn serve(req: &Request) -> Response {
    serve_from(Path::new("/"), req)
}

/// Serves a request from `root`.
pub fn serve_from(root: &Path, req: &Request) -> Response {
    let mut r = answer(root, &req.path);
    for (k, v) in HEADERS {
        r.headers.push(((*k).to_string(), (*v).to_string()));
    }
    r
}

fn redirect(to: String) -> Response {
    Response::text(301, "").with_header("location", to)
}

fn answer(root: &Path, url_path: &str) -> Response {
    if url_path.ends_with("/index.html") {
        return redirect("./".into());
    }
    let rel: PathBuf = url_path.split('/').filter(|s| !s.is_empty() && *s != "." && *s != "..").collect();
    let full = root.join(&rel);
    let meta = match std::fs::metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Response::error(403, "403 Forbidden"),
        Err(_) => return Response::not_found(),
    };
    let name = url_path.rsplit('/').next().unwrap_or_default();
    if meta.is_dir() {
        if !url_path.ends_with('/') {
            return redirect(format!("{name}/"));
        }
        let index = full.join("index.html");
        if index.is_file() {
            return file(&index);
        }
        return listing(&full);
    }
    if url_path.ends_with('/') && url_path != "/" {
        return redirect(format!("../{}", url_path.trim_end_matches('/').rsplit('/').next().unwrap_or_default()));
    }
    file(&full)
}

fn file(path: &Path) -> Response {
    match std::fs::read(path) {
        Ok(bytes) => {
            let ctype = content_type(path, &bytes);
            Response { status: 200, headers: vec![("content-type".into(), ctype)], body: bytes, exit_after: None }
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Response::error(403, "403 Forbidden"),
        Err(_) => Response::error(500, "500 Internal Server Error"),
    }
}

/// By extension for the common ones, else text if it is UTF-8 without NULs.
fn content_type(path: &Path, bytes: &[u8]) -> String {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let known = match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        _ => "",
    };
    if !known.is_empty() {
        known.into()
    } else if std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0) {
        "text/plain; charset=utf-8".into()
    } else {
        "application/octet-stream".into()
    }
}

fn listing(dir: &Path) -> Response {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() { format!("{n}/") } else { n }
            })
            .collect(),
        Err(_) => return Response::error(500, "Error reading directory"),
    };
    names.sort();
    let mut body = String::from("<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n");
    for n in names {
        let esc = n.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;");
        body.push_str(&format!("<a href=\"{}\">{esc}</a>\n", path_escape(&n)));
    }
    body.push_str("</pre>\n");
    Response { status: 200, headers: vec![("content-type".into(), "text/html; charset=utf-8".into())], body: body.into_bytes(), exit_after: None }
}

/// A name as a URL path (Go's `url.URL{Path: name}.String()` for plain names).
fn path_escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'!' | b'$' | b'&' | b'\'' | b'('
            | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        Request { method: "GET".into(), path: path.into(), query: vec![], headers: vec![], remote: String::new() }
    }

    #[test]
    fn files_directories_and_redirects() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let r = serve_from(dir.path(), &get("/a.txt"));
        assert_eq!((r.status, r.body.as_slice()), (200, b"hello".as_slice()));
        assert!(r.headers.contains(&("cache-control".into(), "private".into())));
        let r = serve_from(dir.path(), &get("/"));
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("<a href=\"a.txt\">a.txt</a>") && text.contains("<a href=\"sub/\">sub/</a>"), "{text}");
        let r = serve_from(dir.path(), &get("/sub"));
        assert_eq!(r.status, 301);
        assert!(r.headers.contains(&("location".into(), "sub/".into())));
        assert_eq!(serve_from(dir.path(), &get("/missing")).status, 404);
        assert_eq!(serve_from(dir.path(), &get("/../a.txt")).status, 200, "no escape above the root");
    }
}
