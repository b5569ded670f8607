//! Parsing one HTTP/1.x request from the front of a byte buffer (RFC 9112), on `httparse`.

use super::query::{parse_query, percent_decode};
use super::HttpError;

/// Most header fields accepted in one request; more is answered with 431.
pub const MAX_HEADERS: usize = 64;

/// Size caps for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the request head (request line + header fields + blank line), in bytes.
    pub max_header_bytes: usize,
    /// Cap on a `Content-Length` body, in bytes.
    pub max_body_bytes: usize,
}

/// One parsed request. All strings are owned; the buffer can be reused at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method token as sent (`GET`, `POST`, ...), case-sensitive per RFC 9110 §9.1.
    pub method: String,
    /// Raw (still percent-encoded) path, without the query. An absolute-form target
    /// (`http://host/p`) is reduced to its path; `*` stays `*`.
    pub path: String,
    /// Raw query string without the `?` (empty when absent).
    pub query: String,
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor_version: u8,
    /// Header fields in order; names as sent, values lossily converted to UTF-8.
    pub headers: Vec<(String, String)>,
    /// The `Content-Length` body (empty when there is none).
    pub body: Vec<u8>,
}

impl Request {
    /// Value of the first header field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after the response (RFC 9112 §9.3): HTTP/1.1 unless
    /// a `Connection` field lists `close`; HTTP/1.0 only when one lists `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        if self.minor_version >= 1 {
            !self.has_connection_option("close")
        } else {
            self.has_connection_option("keep-alive")
        }
    }

    /// A form parameter, as Go's `Request.ParseForm` + `Form.Get` (what livego uses, livego.md
    /// §2.1): the first occurrence, percent-decoded with `+` as space. For POST, PUT and PATCH
    /// with an `application/x-www-form-urlencoded` body, body values take precedence over the
    /// query string, as in Go.
    pub fn param(&self, name: &str) -> Option<String> {
        self.form_body_pairs()
            .into_iter()
            .chain(parse_query(&self.query))
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The percent-decoded path. Errors on a bad escape, invalid UTF-8 or an encoded NUL.
    pub fn decoded_path(&self) -> Result<String, HttpError> {
        let path = percent_decode(&self.path)?;
        if path.contains('\0') {
            return Err(HttpError::BadRequest("NUL byte in path".into()));
        }
        Ok(path)
    }

    fn has_connection_option(&self, option: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(option))
    }

    /// Pairs of an urlencoded body, only where Go's ParseForm reads one.
    fn form_body_pairs(&self) -> Vec<(String, String)> {
        let reads_body = matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        let media_type = self
            .header("content-type")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if reads_body && media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            parse_query(&String::from_utf8_lossy(&self.body))
        } else {
            Vec::new()
        }
    }
}

/// Parses one request from the front of `buf`.
///
/// `Ok(None)` means incomplete: read more and call again with the grown buffer. A head that
/// is not complete within `max_header_bytes` is an error (414 when the request line itself is
/// that long, else 431), so the caller never buffers more than the limits allow. On success,
/// returns the request and the bytes it used (head + `Content-Length` body), so pipelined
/// requests are parsed one after the other from the same buffer.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, HttpError> {
    let window = buf.get(..limits.max_header_bytes).unwrap_or(buf);
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut raw = httparse::Request::new(&mut slots);
    let head_len = match raw.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > window.len() => {
            return Err(head_too_large(window))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(map_parse_error(e, window)),
    };
    let (path, query) = split_target(raw.path.unwrap_or(""))?;
    let headers: Vec<(String, String)> = raw
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_owned(), value)
        })
        .collect();
    let body_len = body_length(&headers, limits)?;
    let total = head_len
        .checked_add(body_len)
        .ok_or(HttpError::BodyTooLarge)?;
    let Some(body) = buf.get(head_len..total) else {
        return Ok(None);
    };
    let request = Request {
        method: raw.method.unwrap_or("").to_owned(),
        path,
        query,
        minor_version: raw.version.unwrap_or(1),
        headers,
        body: body.to_vec(),
    };
    Ok(Some((request, total)))
}

/// The error for a head that did not end within the limit.
fn head_too_large(window: &[u8]) -> HttpError {
    if window.contains(&b'\n') {
        HttpError::HeaderTooLarge
    } else {
        HttpError::UriTooLong
    }
}

fn map_parse_error(e: httparse::Error, window: &[u8]) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::Version if names_other_http_version(window) => {
            HttpError::VersionNotSupported
        }
        other => HttpError::BadRequest(format!("malformed request: {other}")),
    }
}

/// True when the request line ends in `HTTP/<digit>...` (a real but unsupported version, 505)
/// rather than garbage (400). httparse only accepts exactly HTTP/1.0 and HTTP/1.1.
fn names_other_http_version(window: &[u8]) -> bool {
    let line_end = window
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(window.len());
    let line = window.get(..line_end).unwrap_or(window);
    let last_token = line.rsplit(|&b| b == b' ').next().unwrap_or(line);
    match last_token.strip_prefix(b"HTTP/") {
        Some(rest) => rest.first().is_some_and(u8::is_ascii_digit),
        None => false,
    }
}

/// Splits a request-target (RFC 9112 §3.2) into raw path and raw query. Origin-form and `*`
/// are taken as is; absolute-form drops scheme and authority. A fragment is dropped.
fn split_target(target: &str) -> Result<(String, String), HttpError> {
    let target = target.split('#').next().unwrap_or("");
    let origin = if target.starts_with('/') || target == "*" {
        target.to_owned()
    } else if let Some(after_scheme) = strip_http_scheme(target) {
        let path_start = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        let rest = after_scheme.get(path_start..).unwrap_or("");
        if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        }
    } else {
        return Err(HttpError::BadRequest("invalid request target".into()));
    };
    Ok(match origin.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (origin, String::new()),
    })
}

fn strip_http_scheme(target: &str) -> Option<&str> {
    ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| target.get(scheme.len()..))
            .flatten()
    })
}

/// The body length announced by the head (RFC 9112 §6.3). Request bodies in
/// `Transfer-Encoding` (chunked) are refused with 501; `Content-Length` must appear at most
/// once, be all digits and fit the body limit.
fn body_length(headers: &[(String, String)], limits: &Limits) -> Result<usize, HttpError> {
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err(HttpError::NotImplemented(
            "Transfer-Encoding request bodies are not supported".into(),
        ));
    }
    let mut lengths = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim());
    let Some(value) = lengths.next() else {
        return Ok(0);
    };
    if lengths.next().is_some() {
        return Err(HttpError::BadRequest("duplicate Content-Length".into()));
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::BadRequest("invalid Content-Length".into()));
    }
    // All digits: a parse failure can only be an overflow, i.e. far too large.
    match value.parse::<usize>() {
        Ok(n) if n <= limits.max_body_bytes => Ok(n),
        _ => Err(HttpError::BodyTooLarge),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 8192,
        max_body_bytes: 1024,
    };

    fn parse_one(buf: &[u8]) -> (Request, usize) {
        parse_request(buf, &LIMITS).unwrap().unwrap()
    }

    fn parse_err(buf: &[u8]) -> HttpError {
        parse_request(buf, &LIMITS).unwrap_err()
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /control/get?room=movie HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n";
        let (req, used) = parse_one(buf);
        assert_eq!(used, buf.len());
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/control/get");
        assert_eq!(req.query, "room=movie");
        assert_eq!(req.minor_version, 1);
        assert_eq!(req.header("host"), Some("x"));
        assert_eq!(req.header("X-a"), Some("1"));
        assert_eq!(req.header("missing"), None);
        assert_eq!(req.param("room").as_deref(), Some("movie"));
        assert!(req.body.is_empty());
    }

    #[test]
    fn head_request() {
        let (req, used) = parse_one(b"HEAD /live/a.flv HTTP/1.0\r\n\r\n");
        assert_eq!(used, 29);
        assert_eq!(req.method, "HEAD");
        assert_eq!(req.path, "/live/a.flv");
        assert_eq!(req.query, "");
        assert_eq!(req.minor_version, 0);
    }

    #[test]
    fn pipelined_requests_parse_one_after_the_other() {
        let first = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz".as_slice();
        let second = b"GET /b?q=1 HTTP/1.1\r\n\r\n".as_slice();
        let buf = [first, second].concat();
        let (req, used) = parse_one(&buf);
        assert_eq!(
            (req.path.as_str(), req.body.as_slice()),
            ("/a", &b"xyz"[..])
        );
        assert_eq!(used, first.len());
        let (req, used2) = parse_one(&buf[used..]);
        assert_eq!((req.path.as_str(), req.query.as_str()), ("/b", "q=1"));
        assert_eq!(used2, second.len());
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        let buf = b"POST /control/reset HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\n\r\nroom=abc";
        for end in 0..buf.len() {
            assert_eq!(
                parse_request(&buf[..end], &LIMITS),
                Ok(None),
                "prefix {end}"
            );
        }
        let (req, used) = parse_one(buf);
        assert_eq!(used, buf.len());
        assert_eq!(req.param("room").as_deref(), Some("abc"));
    }

    #[test]
    fn form_body_takes_precedence_like_go_parse_form() {
        let buf = b"POST /x?room=q&only=query HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: 11\r\n\r\nroom=b+%41b";
        let (req, _) = parse_one(buf);
        assert_eq!(req.param("room").as_deref(), Some("b Ab"));
        assert_eq!(req.param("only").as_deref(), Some("query"));
        // GET bodies and other content types are not form data.
        let buf = b"GET /x?room=q HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\nroom=b";
        assert_eq!(parse_one(buf).0.param("room").as_deref(), Some("q"));
        let buf =
            b"POST /x HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nroom=b";
        assert_eq!(parse_one(buf).0.param("room"), None);
    }

    #[test]
    fn header_too_large_and_uri_too_long() {
        let limits = Limits {
            max_header_bytes: 64,
            max_body_bytes: 0,
        };
        let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert_eq!(
            parse_request(long_header.as_bytes(), &limits),
            Err(HttpError::HeaderTooLarge)
        );
        // Still incomplete but already over the cap: no need to wait for more.
        assert_eq!(
            parse_request(&long_header.as_bytes()[..65], &limits),
            Err(HttpError::HeaderTooLarge)
        );
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(
            parse_request(long_uri.as_bytes(), &limits),
            Err(HttpError::UriTooLong)
        );
        // Exactly at the cap is fine.
        let exact = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(64 - 18));
        assert_eq!(exact.len(), 64);
        assert!(parse_request(exact.as_bytes(), &limits).unwrap().is_some());
    }

    #[test]
    fn too_many_headers() {
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..100 {
            head.push_str(&format!("X-{i}: v\r\n"));
        }
        head.push_str("\r\n");
        let err = parse_err(head.as_bytes());
        assert_eq!(err, HttpError::TooManyHeaders);
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn body_limits_and_bad_lengths() {
        let big = b"POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n";
        assert_eq!(parse_err(big), HttpError::BodyTooLarge);
        let huge = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(parse_err(huge), HttpError::BodyTooLarge);
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"[..],
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx",
            b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx",
        ] {
            assert_eq!(parse_err(bad).status(), 400);
        }
        let at_cap = [
            &b"POST / HTTP/1.1\r\nContent-Length: 1024\r\n\r\n"[..],
            &[b'a'; 1024],
        ]
        .concat();
        assert_eq!(parse_one(&at_cap).0.body.len(), 1024);
    }

    #[test]
    fn transfer_encoding_is_not_implemented() {
        let buf = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let err = parse_err(buf);
        assert!(matches!(err, HttpError::NotImplemented(_)));
        assert_eq!(err.status(), 501);
    }

    #[test]
    fn bad_versions() {
        assert_eq!(
            parse_err(b"GET / HTTP/2.0\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(parse_err(b"GET / HTTP/1.2\r\n\r\n").status(), 505);
        assert_eq!(parse_err(b"GET / HTTQ/1.1\r\n\r\n").status(), 400);
        // HTTP/0.9 simple request: no version at all.
        assert_eq!(parse_err(b"GET /\r\n\r\n").status(), 400);
        assert_eq!(parse_err(b"GET / FOO\r\n\r\n").status(), 400);
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |head: &str| parse_one(head.as_bytes()).0.keep_alive();
        assert!(ka("GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn targets_and_decoded_paths() {
        let (req, _) = parse_one(b"GET /live/%2e%2e/x%20y.flv?a=b+c HTTP/1.1\r\n\r\n");
        assert_eq!(req.path, "/live/%2e%2e/x%20y.flv");
        assert_eq!(req.decoded_path().unwrap(), "/live/../x y.flv");
        assert_eq!(req.param("a").as_deref(), Some("b c"));
        let (req, _) = parse_one(b"GET /a%00b HTTP/1.1\r\n\r\n");
        assert_eq!(req.decoded_path().unwrap_err().status(), 400);
        let (req, _) = parse_one(b"GET /a%zz HTTP/1.1\r\n\r\n");
        assert_eq!(req.decoded_path().unwrap_err().status(), 400);
        let (req, _) = parse_one(b"GET HTTP://example.com:80/p/q?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!((req.path.as_str(), req.query.as_str()), ("/p/q", "x=1"));
        let (req, _) = parse_one(b"GET http://example.com?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!((req.path.as_str(), req.query.as_str()), ("/", "x=1"));
        let (req, _) = parse_one(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!(req.path, "*");
        assert_eq!(parse_err(b"GET foo HTTP/1.1\r\n\r\n").status(), 400);
    }

    /// Deterministic xorshift64 for the garbage test.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn garbage_never_panics() {
        let limits = Limits {
            max_header_bytes: 256,
            max_body_bytes: 64,
        };
        let alphabet = b"GETPOS /?%:\r\n HTTP/1.01 Content-Length:Transfer-Encoding9\x00\xff";
        let template = b"POST /control/get?room=a%20b HTTP/1.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\nroom=x";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for i in 0..10_000 {
            let len = (xorshift(&mut state) % 400) as usize;
            let buf: Vec<u8> = match i % 3 {
                0 => (0..len).map(|_| xorshift(&mut state) as u8).collect(),
                1 => (0..len)
                    .map(|_| alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize])
                    .collect(),
                _ => {
                    // A valid request with a few random bytes overwritten.
                    let mut buf = template.to_vec();
                    for _ in 0..(1 + xorshift(&mut state) % 4) {
                        let at = (xorshift(&mut state) % buf.len() as u64) as usize;
                        buf[at] = alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize];
                    }
                    buf
                }
            };
            if let Ok(Some((req, used))) = parse_request(&buf, &limits) {
                assert!(used <= buf.len());
                let _ = (req.decoded_path(), req.param("room"), req.keep_alive());
            }
        }
    }
}
