//! Minimal blocking HTTP/1.1 client over `std::net::TcpStream` (no HTTP crate needed).

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::server::Server;

/// Connect, read and write timeout of every HTTP request.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A response whose head has been read; the body is read through [`body`](Self::body).
pub struct HttpResponse<R = BufReader<TcpStream>> {
    /// Status code.
    pub status: u16,
    /// Header names and values in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: HttpBody<R>,
}

impl<R: BufRead> HttpResponse<R> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Reads the body to its end.
    pub fn read_body(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        self.body.read_to_end(&mut body)?;
        Ok(body)
    }
}

/// The first header named `name` (case-insensitive) in `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sends `GET path_and_query` with `Connection: close` and reads the whole response.
/// Panics on connection errors and timeouts (10 s).
pub fn http_get(addr: SocketAddr, path_and_query: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let fail = |e: io::Error| -> ! { panic!("GET http://{addr}{path_and_query}: {e}") };
    let mut resp = http_open(addr, "GET", path_and_query, &[]).unwrap_or_else(|e| fail(e));
    let body = resp.read_body().unwrap_or_else(|e| fail(e));
    (resp.status, resp.headers, body)
}

/// GET on the server's API listener; the body parsed as JSON (panics, showing the body, if
/// it is not JSON).
pub fn api_json(server: &Server, path: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = http_get(server.api_addr(), path);
    let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "GET {path}: status {status}, body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, json)
}

/// Sends a request with `Connection: close` (plus `extra_headers`) and reads the response head;
/// the body stays on the socket for streaming reads (HTTP-FLV).
pub fn http_open(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    extra_headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut request =
        format!("{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    read_response(BufReader::new(stream), method == "HEAD")
}

/// Reads a response head from `reader`; `head_request` means no body follows.
pub fn read_response<R: BufRead>(mut reader: R, head_request: bool) -> io::Result<HttpResponse<R>> {
    let status_line = read_line(&mut reader, MAX_HEAD)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    let mut budget = MAX_HEAD.saturating_sub(status_line.len());
    loop {
        let line = read_line(&mut reader, budget)?;
        budget = budget.saturating_sub(line.len() + 2);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let framing = if head_request || status / 100 == 1 || status == 204 || status == 304 {
        Framing::Length(0)
    } else if header(&headers, "transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        Framing::Chunked {
            left: 0,
            started: false,
        }
    } else if let Some(len) = header(&headers, "content-length") {
        let len = len
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        Framing::Length(len)
    } else {
        Framing::Eof
    };
    Ok(HttpResponse {
        status,
        headers,
        body: HttpBody { reader, framing },
    })
}

/// How the body's end is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked transfer coding: bytes left in the current chunk, and whether one was read.
    Chunked { left: u64, started: bool },
    /// The body ends when the connection closes.
    Eof,
    /// The last chunk and trailers were read.
    Done,
}

/// A response body, de-chunked; reading returns 0 at its end.
pub struct HttpBody<R> {
    reader: R,
    framing: Framing,
}

impl<R: BufRead> Read for HttpBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.framing {
            Framing::Done | Framing::Length(0) => Ok(0),
            Framing::Eof => self.reader.read(buf),
            Framing::Length(left) => {
                let n = self.read_some(buf, left)?;
                self.framing = Framing::Length(left - n as u64);
                Ok(n)
            }
            Framing::Chunked { left: 0, started } => {
                if started {
                    expect_empty_line(&mut self.reader)?;
                }
                let left = read_chunk_size(&mut self.reader)?;
                if left == 0 {
                    // Trailers, up to the empty line.
                    while !read_line(&mut self.reader, MAX_HEAD)?.is_empty() {}
                    self.framing = Framing::Done;
                    return Ok(0);
                }
                self.framing = Framing::Chunked {
                    left,
                    started: true,
                };
                self.read(buf)
            }
            Framing::Chunked { left, .. } => {
                let n = self.read_some(buf, left)?;
                self.framing = Framing::Chunked {
                    left: left - n as u64,
                    started: true,
                };
                Ok(n)
            }
        }
    }
}

impl<R: BufRead> HttpBody<R> {
    /// Reads at most `left` bytes; the connection closing first is an error.
    fn read_some(&mut self, buf: &mut [u8], left: u64) -> io::Result<usize> {
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.reader.read(&mut buf[..max])?;
        if n == 0 && max > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the body",
            ));
        }
        Ok(n)
    }
}

/// Reads a chunk-size line: hex digits, optional `;extensions`.
fn read_chunk_size(reader: &mut impl BufRead) -> io::Result<u64> {
    let line = read_line(reader, 1024)?;
    let hex = line.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| invalid(format!("bad chunk size line {line:?}")))
}

fn expect_empty_line(reader: &mut impl BufRead) -> io::Result<()> {
    let line = read_line(reader, 2)?;
    if line.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!("chunk not followed by CRLF: {line:?}")))
    }
}

/// Reads one line (CRLF or LF) of at most `max` bytes, without its terminator.
fn read_line(reader: &mut impl BufRead, max: usize) -> io::Result<String> {
    let mut raw = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(2);
    reader.take(limit).read_until(b'\n', &mut raw)?;
    if raw.last() != Some(&b'\n') {
        let what = if raw.len() as u64 >= limit {
            "line too long"
        } else {
            "connection closed inside the head"
        };
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
    }
    raw.pop();
    if raw.last() == Some(&b'\r') {
        raw.pop();
    }
    String::from_utf8(raw).map_err(|_| invalid("line is not UTF-8".to_owned()))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Mint (or fetch) the channel key of `room` through the control API (48 characters).
pub fn key_of(server: &Server, room: &str) -> String {
    let (status, body) = api_json(server, &format!("/control/get?room={room}"));
    assert_eq!(status, 200, "{body}");
    let key = body["data"].as_str().expect("key string").to_string();
    assert_eq!(key.len(), 48);
    key
}

/// The sum of the samples of metric `name` in `/metrics` whose labels contain every one of
/// `labels` (e.g. `limit="max_streams"`), over shards and other labels.
pub fn metric_sum(server: &Server, name: &str, labels: &[&str]) -> u64 {
    let (status, _, body) = http_get(server.api_addr(), "/metrics");
    assert_eq!(status, 200, "/metrics");
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(['{', ' ']))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// Reads (and keeps) whatever arrives until the server closes the connection (EOF or reset):
/// `Some(bytes)` if that happens within `timeout`, else `None`.
pub fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Closed with unread input: a reset is a close too.
            Err(_) => return Some(got),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn parse(raw: &[u8]) -> (u16, Vec<(String, String)>, io::Result<Vec<u8>>) {
        let mut resp = read_response(Cursor::new(raw.to_vec()), false).unwrap();
        let body = resp.read_body();
        (resp.status, resp.headers, body)
    }

    #[test]
    fn content_length_body() {
        let (status, headers, body) = parse(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\
            Content-Length: 5\r\n\r\nnope\nextra",
        );
        assert_eq!(status, 404);
        assert_eq!(header(&headers, "content-type"), Some("text/plain"));
        assert_eq!(body.unwrap(), b"nope\n");
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let (status, _, body) = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            3\r\nFLV\r\nA;x=1\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
        );
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), b"FLV0123456789");
    }

    #[test]
    fn body_until_eof_and_bare_lf() {
        let (status, headers, body) = parse(b"HTTP/1.0 200 OK\nA: b\n\nall of it");
        assert_eq!((status, headers.len()), (200, 1));
        assert_eq!(body.unwrap(), b"all of it");
    }

    #[test]
    fn truncated_and_malformed_responses() {
        let (_, _, body) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        assert_eq!(body.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let (_, _, body) = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert_eq!(body.unwrap_err().kind(), io::ErrorKind::InvalidData);
        let (_, _, body) =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n");
        assert_eq!(body.unwrap_err().kind(), io::ErrorKind::InvalidData);
        for raw in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200",
        ] {
            assert!(read_response(Cursor::new(raw.to_vec()), false).is_err());
        }
        let long = [
            &b"HTTP/1.1 200 OK\r\nA: "[..],
            &[b'x'; MAX_HEAD],
            b"\r\n\r\n",
        ]
        .concat();
        assert!(read_response(Cursor::new(long), false).is_err());
    }

    #[test]
    fn head_and_no_content_have_no_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n".to_vec();
        let mut resp = read_response(Cursor::new(raw), true).unwrap();
        assert!(resp.read_body().unwrap().is_empty());
        let (status, _, body) = parse(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((status, body.unwrap().len()), (204, 0));
    }
}
