//! HTTP hooks, sans-IO: what a hook call sends and how its answer is read.
//!
//! A hook is an HTTP/1.1 `POST` of a JSON body ([`HookEvent::body`]) to an operator's URL
//! ([`HookUrl`], `http://` or `https://`). For `on_connect`, `on_publish`, `on_play` and
//! `on_update` the answer decides ([`Reply::verdict`]): any 2xx allows, anything else denies;
//! a 2xx JSON object may carry `{"room": "..."}` to map a publish name to a room. The other
//! actions are notifications whose answer is only counted. The socket side is
//! `serve::hooks`.
//!
//! Also here: the signed HLS session ids ([`SessionSigner`]) that let an HLS viewer be
//! authorized once, the playlist rewrite that carries them ([`playlist_with_session`]), and
//! HLS viewers as virtual connections ([`hls_viewers`]).

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::http::parse_query;

pub mod hls_viewers;

/// Largest hook answer read (head and body together); a longer one counts as a failed call.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Header fields read from a hook answer.
const MAX_HEADERS: usize = 64;

/// The query parameter that carries an HLS viewer's session id.
pub const SESSION_PARAM: &str = "hls_session";

/// What a hook reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Connect,
    Publish,
    Unpublish,
    Play,
    Stop,
    RecordDone,
    /// A running RTMP publish or play, or HTTP-FLV play, asked again every
    /// `hooks.update_secs` (nginx-rtmp's `on_update`); a refusal ends it.
    Update,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Connect,
        Action::Publish,
        Action::Unpublish,
        Action::Play,
        Action::Stop,
        Action::RecordDone,
        Action::Update,
    ];

    /// The config key and the `action` field of the body: `on_publish`, ...
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "on_connect",
            Action::Publish => "on_publish",
            Action::Unpublish => "on_unpublish",
            Action::Play => "on_play",
            Action::Stop => "on_stop",
            Action::RecordDone => "on_record_done",
            Action::Update => "on_update",
        }
    }

    /// Position in [`Action::ALL`] (for counter arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the answer decides (connect, publish, play, update) or is only a
    /// notification.
    pub fn decides(self) -> bool {
        matches!(
            self,
            Action::Connect | Action::Publish | Action::Play | Action::Update
        )
    }
}

/// A parsed hook URL: `http[s]://host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookUrl {
    /// `https://`: the call goes over TLS, the certificate checked against `host`.
    pub tls: bool,
    /// The host as written (an IP literal, without brackets, or a name).
    pub host: String,
    pub port: u16,
    /// Path and query sent in the request line (`/` when the URL has none).
    pub target: String,
    /// The whole URL, for logs.
    pub url: String,
}

impl HookUrl {
    /// Parse an `http://` or `https://` hook URL.
    pub fn parse(url: &str) -> Result<HookUrl, String> {
        let bad = |why: &str| Err(format!("`{url}` is not a usable hook URL: {why}"));
        let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return bad("expected http[s]://host[:port]/path"),
        };
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
        {
            return bad("it contains spaces, control characters or a fragment");
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return bad("user information is not supported");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((ip, after)) = v6.split_once(']') else {
                return bad("unclosed [");
            };
            match after.strip_prefix(':') {
                Some(p) => (ip, Some(p)),
                None if after.is_empty() => (ip, None),
                None => return bad("junk after ]"),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return bad("no host");
        }
        let port = match port {
            None => Self::default_port(tls),
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return bad("invalid port"),
            },
        };
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        Ok(HookUrl {
            tls,
            host: host.to_owned(),
            port,
            target,
            url: url.to_owned(),
        })
    }

    fn default_port(tls: bool) -> u16 {
        if tls {
            443
        } else {
            80
        }
    }

    /// The `Host` header value (RFC 9110 7.2: the port only when it is not the scheme's).
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == Self::default_port(self.tls) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The facts a hook is told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookEvent {
    pub app: String,
    /// The stream: the publish or play name as the client sent it (for `on_publish`, this may
    /// be a channel key), the room for the other actions; empty for `on_connect`.
    pub stream: String,
    /// The client's raw query string, without `?` (`token=abc`).
    pub query: String,
    /// The client's address (`ip:port`).
    pub client: String,
    /// `rtmp`, `flv` or `hls`.
    pub protocol: &'static str,
    /// The connection id (per shard; with `shard`, ties `on_play` to its `on_stop`).
    pub conn_id: u64,
    /// The recording's path (`on_record_done` only).
    pub file: Option<String>,
    /// `tcUrl` of an RTMP connection, if any.
    pub tc_url: Option<String>,
}

impl HookEvent {
    /// The JSON body of the hook call.
    pub fn body(&self, action: Action, shard: usize, server_id: &str) -> Vec<u8> {
        let mut body = Map::new();
        let s = |v: &str| Value::String(v.to_owned());
        body.insert("action".into(), s(action.name()));
        body.insert("app".into(), s(&self.app));
        body.insert("stream".into(), s(&self.stream));
        body.insert("query".into(), Value::Object(query_object(&self.query)));
        body.insert("query_string".into(), s(&self.query));
        body.insert("client".into(), s(&self.client));
        body.insert("protocol".into(), s(self.protocol));
        body.insert("conn_id".into(), Value::from(self.conn_id));
        body.insert("shard".into(), Value::from(shard));
        body.insert("server_id".into(), s(server_id));
        if let Some(tc_url) = &self.tc_url {
            body.insert("tc_url".into(), s(tc_url));
        }
        if let Some(file) = &self.file {
            body.insert("file".into(), s(file));
        }
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }
}

/// A query string as a JSON object of decoded names and values (the last of a repeated name
/// wins; a name without `=` has an empty value).
pub fn query_object(query: &str) -> Map<String, Value> {
    parse_query(query)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// The bytes of a hook request: `POST`, JSON body, `Connection: close`.
pub fn build_request(url: &HookUrl, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardcast/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.target,
        url.authority(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A hook server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `room` of a 2xx JSON object body, when it is a string.
    pub room: Option<String>,
}

/// What a decision hook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx; maybe with a room for the publish name.
    Allow { room: Option<String> },
    /// Any other status.
    Deny { status: u16 },
}

impl Reply {
    pub fn verdict(&self) -> Verdict {
        if (200..300).contains(&self.status) {
            Verdict::Allow {
                room: self.room.clone(),
            }
        } else {
            Verdict::Deny {
                status: self.status,
            }
        }
    }
}

/// Read a hook answer from what has arrived so far. `eof`: the server closed, nothing more
/// will come. `Ok(None)`: incomplete, read more. Errors name what was wrong; an answer longer
/// than [`MAX_RESPONSE_BYTES`] is an error. Never panics, whatever the bytes.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Reply>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return incomplete(buf, eof, "the answer ended inside its head");
        }
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let rest = &buf[head_len..];
    let no_body = (100..200).contains(&status) || status == 204 || status == 304;
    let body: Vec<u8> = if no_body {
        Vec::new()
    } else if header("transfer-encoding").is_some_and(|te| te.ends_with("chunked")) {
        match dechunk(rest)? {
            Some(body) => body,
            None => return incomplete(buf, eof, "the chunked body ended early"),
        }
    } else if let Some(len) = header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length `{len}`"))?;
        if len > MAX_RESPONSE_BYTES {
            return Err(format!("answer body of {len} bytes is too large"));
        }
        if rest.len() < len {
            return incomplete(buf, eof, "the body ended early");
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return incomplete(buf, eof, "");
    };
    let room = if (200..300).contains(&status) {
        room_of(&body)
    } else {
        None
    };
    Ok(Some(Reply { status, room }))
}

fn incomplete(buf: &[u8], eof: bool, why: &str) -> Result<Option<Reply>, String> {
    if eof {
        Err(why.to_owned())
    } else if buf.len() >= MAX_RESPONSE_BYTES {
        Err(format!("answer longer than {MAX_RESPONSE_BYTES} bytes"))
    } else {
        Ok(None)
    }
}

/// Decode a chunked body; `Ok(None)` while incomplete.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        if size > MAX_RESPONSE_BYTES {
            return Err("chunk too large".to_owned());
        }
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers are not read: the body is complete.
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// `room` of a JSON object body.
fn room_of(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("room")?.as_str().map(str::to_owned)
}

/// The query without `hls_session` parameters (what the hook sees of an HLS request).
pub fn without_session(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(SESSION_PARAM))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `hls_session` value of a query, if any.
pub fn session_of(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(SESSION_PARAM)?.strip_prefix('='))
}

/// A playlist whose segment URIs carry `?hls_session=<id>` (the lines that are not tags or
/// blank). Segment URIs here never have a query of their own.
pub fn playlist_with_session(playlist: &str, session: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64 * 8);
    for line in playlist.split_inclusive('\n') {
        let text = line.trim_end_matches(['\r', '\n']);
        if text.is_empty() || text.starts_with('#') {
            out.push_str(line);
            continue;
        }
        out.push_str(text);
        out.push('?');
        out.push_str(SESSION_PARAM);
        out.push('=');
        out.push_str(session);
        out.push_str(&line[text.len()..]);
    }
    out
}

/// Signs and checks HLS session ids: `{expiry}.{mac}` where `mac` is the first 16 bytes (hex)
/// of HMAC-SHA256(key, `app/room` NUL `expiry`). Stateless, so any shard checks an id minted
/// by another without shared state. The key is random per process.
#[derive(Clone)]
pub struct SessionSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSigner")
    }
}

impl SessionSigner {
    pub fn new(key: [u8; 32]) -> Self {
        SessionSigner { key }
    }

    /// A signer whose key is derived from an operator's secret (`hooks.hls_session_key`):
    /// every node given the same secret checks the others' ids.
    pub fn from_secret(secret: &str) -> Self {
        use sha2::Digest;
        let mut hash = Sha256::new();
        // Domain separation: the same secret used elsewhere does not give this key.
        hash.update(b"shardcast hls_session\0");
        hash.update(secret.as_bytes());
        SessionSigner {
            key: hash.finalize().into(),
        }
    }

    fn mac(&self, stream: &str, expiry: u64) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(stream.as_bytes());
        mac.update(&[0]);
        mac.update(expiry.to_string().as_bytes());
        let tag = mac.finalize().into_bytes();
        tag[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A session id for `stream` (`app/room`) valid until `expiry` (Unix seconds).
    pub fn mint(&self, stream: &str, expiry: u64) -> String {
        format!("{expiry}.{}", self.mac(stream, expiry))
    }

    /// Whether `id` was minted here for `stream` and is not expired at `now` (Unix seconds).
    pub fn check(&self, id: &str, stream: &str, now: u64) -> bool {
        let Some((expiry_text, mac)) = id.split_once('.') else {
            return false;
        };
        let Ok(expiry) = expiry_text.parse::<u64>() else {
            return false;
        };
        if expiry < now || mac.len() != 32 {
            return false;
        }
        let want = self.mac(stream, expiry);
        // Constant-time comparison.
        want.bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HookUrl::parse("http://127.0.0.1:8085/hooks?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 8085, "/hooks?x=1")
        );
        let u = HookUrl::parse("http://auth.local").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/"));
        assert_eq!(u.authority(), "auth.local");
        let u = HookUrl::parse("http://[::1]:9/a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(u.authority(), "[::1]:9");
        let u = HookUrl::parse("http://h?q").unwrap();
        assert_eq!(u.target, "/?q");
        assert!(!u.tls);
        let u = HookUrl::parse("https://auth.example/hooks").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.target.as_str()), (443, "/hooks"));
        assert_eq!(u.authority(), "auth.example");
        let u = HookUrl::parse("https://auth.example:8443").unwrap();
        assert_eq!(u.authority(), "auth.example:8443");
        assert_eq!(HookUrl::parse("https://h:80/").unwrap().authority(), "h:80");
        for bad in [
            "ftp://h",
            "HTTPS://h",
            "https://",
            "h:80/x",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u@h/",
            "http://h/a b",
            "http://h/#frag",
            "http://[::1/",
        ] {
            assert!(HookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_and_body() {
        let url = HookUrl::parse("http://10.0.0.1:81/on").unwrap();
        let ev = HookEvent {
            app: "live".into(),
            stream: "movie".into(),
            query: "token=a%20b&x&token=c".into(),
            client: "1.2.3.4:5".into(),
            protocol: "rtmp",
            conn_id: 7,
            file: Some("tmp/live/movie_1.flv".into()),
            tc_url: None,
        };
        let body = ev.body(Action::RecordDone, 1, "node-a");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["action"], "on_record_done");
        assert_eq!(v["app"], "live");
        assert_eq!(v["stream"], "movie");
        assert_eq!(v["query"], serde_json::json!({"token": "c", "x": ""}));
        assert_eq!(v["query_string"], "token=a%20b&x&token=c");
        assert_eq!(v["client"], "1.2.3.4:5");
        assert_eq!(v["protocol"], "rtmp");
        assert_eq!(
            (v["shard"].as_u64(), v["conn_id"].as_u64()),
            (Some(1), Some(7))
        );
        assert_eq!(v["server_id"], "node-a");
        assert_eq!(v["file"], "tmp/live/movie_1.flv");
        assert!(v.get("tc_url").is_none());
        let req = build_request(&url, &body);
        let text = String::from_utf8(req).unwrap();
        assert!(
            text.starts_with("POST /on HTTP/1.1\r\nHost: 10.0.0.1:81\r\n"),
            "{text}"
        );
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(text.contains("Connection: close\r\n\r\n{"));
        // The request parses as HTTP with our own parser.
        let limits = crate::http::Limits {
            max_header_bytes: 4096,
            max_body_bytes: 4096,
        };
        let (parsed, _) = crate::http::parse_request(text.as_bytes(), &limits)
            .unwrap()
            .unwrap();
        assert_eq!(parsed.body, body);
    }

    #[test]
    fn answers() {
        let ok = |s: &str| parse_response(s.as_bytes(), false).unwrap().unwrap();
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").verdict(),
            Verdict::Allow { room: None }
        );
        assert_eq!(
            ok("HTTP/1.1 204 No Content\r\n\r\n").verdict(),
            Verdict::Allow { room: None }
        );
        let body = r#"{"room":"movie"}"#;
        let with_room = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(ok(&with_room).room.as_deref(), Some("movie"));
        assert_eq!(
            ok("HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno!").verdict(),
            Verdict::Deny { status: 403 }
        );
        // A room in a denial means nothing.
        assert_eq!(
            ok("HTTP/1.1 403 F\r\nContent-Length: 12\r\n\r\n{\"room\":\"x\"}").room,
            None
        );
        // SRS-style "0" body, and non-JSON: allowed without room.
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0").room,
            None
        );
        // Chunked.
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                       5\r\n{\"roo\r\nb;x=y\r\nm\":\"tv\"}   \r\n0\r\n\r\n";
        assert_eq!(ok(chunked).room.as_deref(), Some("tv"));
        // Close-delimited: complete only at EOF.
        let close = b"HTTP/1.0 200 OK\r\n\r\n{\"room\":\"r\"}";
        assert_eq!(parse_response(close, false), Ok(None));
        assert_eq!(
            parse_response(close, true)
                .unwrap()
                .unwrap()
                .room
                .as_deref(),
            Some("r")
        );
        // Incomplete.
        assert_eq!(parse_response(b"HTTP/1.1 200", false), Ok(None));
        assert!(parse_response(b"HTTP/1.1 200", true).is_err());
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", false),
            Ok(None)
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true).is_err());
        // Garbage and oversize.
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
            false
        )
        .is_err());
        let mut huge = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        huge.resize(MAX_RESPONSE_BYTES + 1, b'a');
        assert!(parse_response(&huge, false).is_err());
        let mut long_head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long_head.resize(MAX_RESPONSE_BYTES, b'a');
        assert!(parse_response(&long_head, false).is_err());
        assert!(parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false
        )
        .is_err());
    }

    #[test]
    fn answers_never_panic_on_random_bytes() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let mut prefixed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            prefixed.extend_from_slice(&bytes);
            for eof in [false, true] {
                let _ = parse_response(&bytes, eof);
                let _ = parse_response(&prefixed, eof);
            }
        }
    }

    #[test]
    fn sessions() {
        let signer = SessionSigner::new([7; 32]);
        let id = signer.mint("live/movie", 1000);
        assert!(signer.check(&id, "live/movie", 999));
        assert!(signer.check(&id, "live/movie", 1000));
        assert!(!signer.check(&id, "live/movie", 1001), "expired");
        assert!(!signer.check(&id, "live/other", 999), "another stream");
        assert!(!SessionSigner::new([8; 32]).check(&id, "live/movie", 999));
        // Two nodes with one secret check each other's ids; another secret does not.
        let node_a = SessionSigner::from_secret("0123456789abcdef-shared");
        let node_b = SessionSigner::from_secret("0123456789abcdef-shared");
        let from_a = node_a.mint("live/movie", 1000);
        assert!(node_b.check(&from_a, "live/movie", 999));
        assert!(!SessionSigner::from_secret("0123456789abcdef-other").check(
            &from_a,
            "live/movie",
            999
        ));
        let forged = id.replacen("1000.", "2000.", 1);
        assert!(!signer.check(&forged, "live/movie", 999));
        for junk in [
            "",
            ".",
            "x.y",
            "1000.",
            "1000.zz",
            "99999999999999999999999.a",
        ] {
            assert!(!signer.check(junk, "live/movie", 0), "{junk}");
        }
    }

    #[test]
    fn session_in_queries_and_playlists() {
        assert_eq!(session_of("a=1&hls_session=x.y"), Some("x.y"));
        assert_eq!(session_of("hls_sessionx=1"), None);
        assert_eq!(without_session("token=a&hls_session=x&b"), "token=a&b");
        assert_eq!(without_session("hls_session=x"), "");
        let p = "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.000,\nmovie/0.ts\n\n#EXTINF:3.000,\r\nmovie/1.ts\r\n";
        assert_eq!(
            playlist_with_session(p, "9.ab"),
            "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.000,\nmovie/0.ts?hls_session=9.ab\n\n\
             #EXTINF:3.000,\r\nmovie/1.ts?hls_session=9.ab\r\n"
        );
    }
}
