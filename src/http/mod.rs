//! Sans-IO HTTP/1.1: request parsing on `httparse`, response serialization, CORS preflight.
//!
//! The caller owns the socket: it appends what it reads to a buffer, calls [`parse_request`]
//! until it yields a request, answers with [`Response::write_to`] (or
//! [`Response::write_stream_head`] for HTTP-FLV), and drops the consumed bytes.

mod query;
mod request;
mod response;

pub use query::{parse_query, percent_decode};
pub use request::{parse_request, Limits, Request, MAX_HEADERS};
pub use response::Response;

use std::fmt;

/// Why a request was refused; each maps to a status code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The head did not end within `max_header_bytes` (431).
    HeaderTooLarge,
    /// More than [`MAX_HEADERS`] header fields (431).
    TooManyHeaders,
    /// The request line alone exceeded `max_header_bytes` (414).
    UriTooLong,
    /// `Content-Length` over `max_body_bytes` (413).
    BodyTooLarge,
    /// Malformed request (400), with what was wrong.
    BadRequest(String),
    /// A feature we do not accept, e.g. chunked request bodies (501).
    NotImplemented(String),
    /// An HTTP version other than 1.0 and 1.1 (505).
    VersionNotSupported,
    /// The request head did not arrive within the header timeout (408).
    Timeout,
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeaderTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::UriTooLong => 414,
            HttpError::BodyTooLarge => 413,
            HttpError::BadRequest(_) => 400,
            HttpError::NotImplemented(_) => 501,
            HttpError::VersionNotSupported => 505,
            HttpError::Timeout => 408,
        }
    }

    /// A human-readable explanation for the client.
    pub fn reason(&self) -> String {
        match self {
            HttpError::HeaderTooLarge => "request header fields too large".into(),
            HttpError::TooManyHeaders => {
                format!("too many request header fields (at most {MAX_HEADERS})")
            }
            HttpError::UriTooLong => "request-target too long".into(),
            HttpError::BodyTooLarge => "request body too large".into(),
            HttpError::BadRequest(why) => format!("bad request: {why}"),
            HttpError::NotImplemented(what) => format!("not implemented: {what}"),
            HttpError::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported".into(),
            HttpError::Timeout => "request head not received in time".into(),
        }
    }

    /// The error as a JSON response in livego's envelope, `{"status":N,"data":"<reason>"}`.
    pub fn to_response(&self) -> Response {
        Response::envelope(self.status(), &serde_json::Value::String(self.reason()))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for HttpError {}

/// Answer to a CORS preflight (`OPTIONS`): 204 allowing any origin, our methods, the requested
/// headers (or `Content-Type, Authorization`), cached for a day.
pub fn preflight(req: &Request) -> Response {
    let allow_headers = req
        .header("Access-Control-Request-Headers")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or("Content-Type, Authorization");
    Response::new(204)
        .header("Access-Control-Allow-Origin", "*")
        .header("Access-Control-Allow-Methods", "GET, POST, HEAD, OPTIONS")
        .header("Access-Control-Allow-Headers", allow_headers)
        .header("Access-Control-Max-Age", "86400")
}

/// The standard reason phrase of `status` (RFC 9110 §15), or `""` for codes we never use.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> Request {
        let limits = Limits {
            max_header_bytes: 4096,
            max_body_bytes: 0,
        };
        parse_request(head.as_bytes(), &limits).unwrap().unwrap().0
    }

    #[test]
    fn preflight_echoes_requested_headers() {
        let req = request(
            "OPTIONS /control/get HTTP/1.1\r\nOrigin: https://a\r\n\
             Access-Control-Request-Headers: x-token, content-type\r\n\r\n",
        );
        let resp = preflight(&req);
        assert_eq!(resp.status, 204);
        assert_eq!(resp.get_header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            resp.get_header("Access-Control-Allow-Methods"),
            Some("GET, POST, HEAD, OPTIONS")
        );
        assert_eq!(
            resp.get_header("Access-Control-Allow-Headers"),
            Some("x-token, content-type")
        );
        assert_eq!(resp.get_header("Access-Control-Max-Age"), Some("86400"));
        let resp = preflight(&request("OPTIONS * HTTP/1.1\r\n\r\n"));
        assert_eq!(
            resp.get_header("Access-Control-Allow-Headers"),
            Some("Content-Type, Authorization")
        );
    }

    #[test]
    fn error_statuses_and_json_body() {
        let cases = [
            (HttpError::HeaderTooLarge, 431),
            (HttpError::TooManyHeaders, 431),
            (HttpError::UriTooLong, 414),
            (HttpError::BodyTooLarge, 413),
            (HttpError::BadRequest("x".into()), 400),
            (HttpError::NotImplemented("y".into()), 501),
            (HttpError::VersionNotSupported, 505),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status);
            assert!(!reason_phrase(status).is_empty());
        }
        let resp = HttpError::BodyTooLarge.to_response();
        assert_eq!(resp.status, 413);
        assert_eq!(
            &resp.body[..],
            b"{\"status\":413,\"data\":\"request body too large\"}"
        );
        assert_eq!(
            HttpError::BadRequest("bad path".into()).to_string(),
            "bad request: bad path (400)"
        );
    }
}
