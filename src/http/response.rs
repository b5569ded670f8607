//! Building and serializing responses.

use bytes::Bytes;

use super::reason_phrase;

/// A complete response: status, extra header fields and a body.
///
/// The serializers add `Server`, `Access-Control-Allow-Origin: *` (unless set),
/// `Content-Length` and `Connection` themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=999.
    pub status: u16,
    /// Extra header fields, written in order.
    pub headers: Vec<(String, String)>,
    /// The body (omitted for HEAD, 1xx, 204 and 304).
    pub body: Bytes,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `value` as compact JSON, `Content-Type: application/json`. serde_json escapes only
    /// what JSON requires (unlike Go, which also escapes `<`, `>`, `&`).
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response::new(status)
            .header("Content-Type", "application/json")
            .with_body(value.to_string())
    }

    /// livego's API envelope `{"status":N,"data":...}` with the fields in that order
    /// (livego.md §2.1), whatever map ordering serde_json was built with.
    pub fn envelope(status: u16, data: &serde_json::Value) -> Self {
        Response::new(status)
            .header("Content-Type", "application/json")
            .with_body(format!("{{\"status\":{status},\"data\":{data}}}"))
    }

    /// Plain text, `Content-Type: text/plain; charset=utf-8`.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// Appends a header field. CR, LF and NUL are dropped when written, so a value derived
    /// from a request cannot split the response.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Value of the first header field named `name` (case-insensitive).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Serializes status line, headers and (unless `head_only`) the body. `Content-Length` is
    /// the body's length even for HEAD (RFC 9110 §9.3.2), and absent for 1xx, 204 and 304,
    /// which have no body (RFC 9110 §8.6). No `Date`: this code has no clock.
    pub fn write_to(&self, out: &mut Vec<u8>, head_only: bool, keep_alive: bool) {
        let has_body = !matches!(self.status, 100..=199 | 204 | 304);
        self.write_common_head(out);
        if has_body {
            write_field(out, "Content-Length", &self.body.len().to_string());
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        write_field(out, "Connection", connection);
        out.extend_from_slice(b"\r\n");
        if has_body && !head_only {
            out.extend_from_slice(&self.body);
        }
    }

    /// Serializes only the head of a streaming response (HTTP-FLV), whose body then follows
    /// as raw bytes until the server closes the connection. Neither `Content-Length` nor
    /// `Transfer-Encoding: chunked` is sent: a close-delimited body (RFC 9112 §6.3 rule 8)
    /// works for HTTP/1.0 and 1.1 clients alike (flv.js, mpegts.js, ffmpeg, VLC) and lets the
    /// shared FLV tag buffers go out without per-write chunk framing. Hence `Connection: close`.
    pub fn write_stream_head(&self, out: &mut Vec<u8>) {
        self.write_common_head(out);
        write_field(out, "Connection", "close");
        out.extend_from_slice(b"\r\n");
    }

    fn write_common_head(&self, out: &mut Vec<u8>) {
        let status_line = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        out.extend_from_slice(status_line.as_bytes());
        write_field(out, "Server", "shardcast");
        for (name, value) in &self.headers {
            write_field(out, name, value);
        }
        if self.get_header("Access-Control-Allow-Origin").is_none() {
            write_field(out, "Access-Control-Allow-Origin", "*");
        }
    }
}

/// Writes `name: value\r\n`, dropping bytes that would end the field early.
fn write_field(out: &mut Vec<u8>, name: &str, value: &str) {
    let safe = |b: &u8| !matches!(b, b'\r' | b'\n' | b'\0');
    out.extend(name.bytes().filter(|b| safe(b) && *b != b':'));
    out.extend_from_slice(b": ");
    out.extend(value.bytes().filter(safe));
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_json_exact_bytes() {
        let mut out = Vec::new();
        Response::envelope(200, &json!("k<&>\"")).write_to(&mut out, false, true);
        let expected = "HTTP/1.1 200 OK\r\n\
            Server: shardcast\r\n\
            Content-Type: application/json\r\n\
            Access-Control-Allow-Origin: *\r\n\
            Content-Length: 30\r\n\
            Connection: keep-alive\r\n\
            \r\n\
            {\"status\":200,\"data\":\"k<&>\\\"\"}";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn head_only_keeps_length_and_drops_body() {
        let mut out = Vec::new();
        Response::text(404, "nope").write_to(&mut out, true, false);
        let expected = "HTTP/1.1 404 Not Found\r\n\
            Server: shardcast\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Access-Control-Allow-Origin: *\r\n\
            Content-Length: 4\r\n\
            Connection: close\r\n\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn no_content_has_no_length_or_body() {
        let mut out = Vec::new();
        Response::new(204)
            .header("Access-Control-Allow-Origin", "https://a")
            .with_body("ignored")
            .write_to(&mut out, false, true);
        let expected = "HTTP/1.1 204 No Content\r\n\
            Server: shardcast\r\n\
            Access-Control-Allow-Origin: https://a\r\n\
            Connection: keep-alive\r\n\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn json_and_header_injection() {
        let mut out = Vec::new();
        Response::json(200, &json!([1, "a"]))
            .header("X-Evil", "a\r\nSet-Cookie: x\0")
            .write_to(&mut out, false, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("X-Evil: aSet-Cookie: x\r\n"));
        assert!(text.ends_with("\r\n\r\n[1,\"a\"]"));
    }

    #[test]
    fn stream_head() {
        let mut out = Vec::new();
        Response::new(200)
            .header("Content-Type", "video/x-flv")
            .write_stream_head(&mut out);
        let expected = "HTTP/1.1 200 OK\r\n\
            Server: shardcast\r\n\
            Content-Type: video/x-flv\r\n\
            Access-Control-Allow-Origin: *\r\n\
            Connection: close\r\n\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
