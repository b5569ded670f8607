//! HTTP/1.1 client pieces: URLs, GET requests, response heads (via httparse).

use std::net::{SocketAddr, ToSocketAddrs};

/// An `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` as written (for the Host header).
    pub authority: String,
    /// Resolved address.
    pub addr: SocketAddr,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Splits `scheme://authority/rest` into (authority, "/rest").
pub fn split_url<'a>(url: &'a str, scheme: &str) -> Option<(&'a str, &'a str)> {
    let rest = url
        .get(..scheme.len())?
        .eq_ignore_ascii_case(scheme)
        .then(|| &url[scheme.len()..])?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "/")),
    }
}

/// Resolves `host:port` (port defaulting to `default_port`).
pub fn resolve(authority: &str, default_port: u16) -> Result<SocketAddr, String> {
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {authority}: no address"))
}

impl HttpUrl {
    /// Parses an `http://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (authority, path) =
            split_url(url, "http://").ok_or_else(|| format!("not an http:// URL: {url}"))?;
        Ok(Self {
            authority: authority.to_owned(),
            addr: resolve(authority, 80)?,
            path: path.to_owned(),
        })
    }

    /// The same server, another path; `uri` may be absolute (`http://...`, same server
    /// assumed), absolute-path (`/...`) or relative to this URL's directory.
    pub fn join(&self, uri: &str) -> String {
        if let Some((_, path)) = split_url(uri, "http://") {
            return path.to_owned();
        }
        if uri.starts_with('/') {
            return uri.to_owned();
        }
        let path = self.path.split('?').next().unwrap_or("/");
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{uri}")
    }
}

/// A GET request for `path` (keep-alive or not).
pub fn get_request(authority: &str, path: &str, keep_alive: bool) -> Vec<u8> {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: shardcast-bench\r\n\
         Accept: */*\r\nConnection: {conn}\r\n\r\n"
    )
    .into_bytes()
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head (the body starts there).
    pub len: usize,
    pub body: BodyKind,
    /// The server keeps the connection open after the body.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`: `Ok(None)` while incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad HTTP response head: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let mut body = BodyKind::Close;
    let mut keep_alive = resp.version == Some(1);
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().ends_with("chunked") {
                body = BodyKind::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") && body != BodyKind::Chunked {
            let n = value.parse().map_err(|_| "bad Content-Length".to_owned())?;
            body = BodyKind::Length(n);
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    if body == BodyKind::Close {
        keep_alive = false;
    }
    Ok(Some(Head {
        status,
        len,
        body,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\nFLV";
        let h = parse_head(r).unwrap().unwrap();
        assert_eq!(
            (h.status, h.len, h.body, h.keep_alive),
            (200, 46, BodyKind::Close, false)
        );
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(r).unwrap().unwrap().body, BodyKind::Chunked);
        let r = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n";
        let h = parse_head(r).unwrap().unwrap();
        assert_eq!(
            (h.status, h.body, h.keep_alive),
            (404, BodyKind::Length(5), true)
        );
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        assert!(!parse_head(r).unwrap().unwrap().keep_alive);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nX: y").unwrap(), None);
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:37002/live/b0.m3u8?x=1").unwrap();
        assert_eq!(u.addr, "127.0.0.1:37002".parse().unwrap());
        assert_eq!(u.path, "/live/b0.m3u8?x=1");
        assert_eq!(u.join("b0/12.ts"), "/live/b0/12.ts");
        assert_eq!(u.join("/x/1.ts"), "/x/1.ts");
        assert_eq!(u.join("http://127.0.0.1:37002/y/2.ts"), "/y/2.ts");
        let u = HttpUrl::parse("http://127.0.0.1").unwrap();
        assert_eq!((u.addr.port(), u.path.as_str()), (80, "/"));
        assert!(HttpUrl::parse("rtmp://x/y").is_err());
        assert_eq!(
            split_url("tcp://127.0.0.1:9", "tcp://"),
            Some(("127.0.0.1:9", "/"))
        );
    }
}
