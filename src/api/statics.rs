//! `/statics/...` on the API listener (livego's `http.FileServer(http.Dir("statics"))`), the
//! sans-IO half: which file a URL names, and its content type. `serve::statics` opens it.
//!
//! Differences from livego, on purpose: no directory listings (a directory serves its
//! `index.html` or nothing); hidden names (a segment starting with `.`) are not served; a path
//! with `..`, `.`, an empty segment, a backslash or a control character is refused with 400
//! rather than cleaned, whether it was written plainly or percent-encoded.

use std::path::PathBuf;

use crate::http::Response;

/// The URL prefix served from `statics_dir`.
pub const PREFIX: &str = "/statics";

/// Largest file served, in bytes (16 MiB). Files are read whole into memory, so this bounds
/// what one request can pin; a web player's pages and scripts are far smaller.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The file served for a directory.
pub const INDEX: &str = "index.html";

/// A file or directory below `statics_dir`, named by safe relative segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticPath {
    /// Path segments below the directory; none is empty, `.`, `..` or hidden, and none holds
    /// `/`, `\` or a control character.
    pub segments: Vec<String>,
    /// The URL ended with `/`: the directory's `index.html` is wanted.
    pub dir: bool,
    /// The request's raw path and query, for a redirect that adds the missing `/`.
    pub raw_target: String,
}

impl StaticPath {
    /// The path to open, relative to `statics_dir` (`index.html` for a directory URL).
    pub fn relative(&self) -> PathBuf {
        let mut path: PathBuf = self.segments.iter().collect();
        if self.dir {
            path.push(INDEX);
        }
        path
    }

    /// The name whose extension gives the content type.
    pub fn file_name(&self) -> &str {
        match self.segments.last() {
            Some(last) if !self.dir => last,
            _ => INDEX,
        }
    }

    /// Where a directory URL without its trailing `/` is sent (relative links in its
    /// `index.html` then resolve inside the directory). The query (`?jwt=`) is kept.
    pub fn redirect_to_dir(&self) -> Response {
        let location = match self.raw_target.split_once('?') {
            Some((path, query)) => format!("{path}/?{query}"),
            None => format!("{}/", self.raw_target),
        };
        Response::new(301)
            .header("Location", &location)
            .header("Content-Type", "text/plain; charset=utf-8")
            .with_body("moved permanently\n")
    }
}

/// The static file `decoded_path` names, or `None` when the path is not under [`PREFIX`].
/// `Err` is the answer for a path under it that is refused (405, 400, 404) or redirected
/// (`/statics` -> `/statics/`). `raw_path` and `query` are the request's, still encoded.
pub fn resolve(
    method: &str,
    decoded_path: &str,
    raw_path: &str,
    query: &str,
) -> Option<Result<StaticPath, Response>> {
    let rest = decoded_path.strip_prefix(PREFIX)?;
    let raw_target = match query {
        "" => raw_path.to_owned(),
        q => format!("{raw_path}?{q}"),
    };
    if rest.is_empty() {
        let root = StaticPath {
            segments: Vec::new(),
            dir: false,
            raw_target,
        };
        return Some(Err(root.redirect_to_dir()));
    }
    // `/staticsfoo` is some other (unknown) path.
    let rest = rest.strip_prefix('/')?;
    Some(static_path(method, rest, raw_target))
}

fn static_path(method: &str, rest: &str, raw_target: String) -> Result<StaticPath, Response> {
    if !matches!(method, "GET" | "HEAD") {
        return Err(reply(405, "method not allowed").header("Allow", "GET, HEAD, OPTIONS"));
    }
    let (rest, dir) = match rest.strip_suffix('/') {
        Some(rest) => (rest, true),
        None => (rest, rest.is_empty()),
    };
    let mut segments = Vec::new();
    if !rest.is_empty() {
        for segment in rest.split('/') {
            check_segment(segment)?;
            segments.push(segment.to_owned());
        }
    }
    Ok(StaticPath {
        segments,
        dir,
        raw_target,
    })
}

/// One decoded path segment: refused if it could leave the directory or name something
/// other than a plain child entry.
fn check_segment(segment: &str) -> Result<(), Response> {
    let invalid = |why: &str| Err(reply(400, &format!("invalid path: {why}")));
    if segment.is_empty() {
        return invalid("empty segment");
    }
    if segment == "." || segment == ".." {
        return invalid("dot segment");
    }
    if segment.contains('\\') {
        return invalid("backslash");
    }
    if segment.chars().any(char::is_control) {
        return invalid("control character");
    }
    if segment.starts_with('.') {
        return Err(not_found());
    }
    Ok(())
}

/// The content type of a file, by its extension (case-insensitive);
/// `application/octet-stream` when unknown.
pub fn content_type(file_name: &str) -> &'static str {
    let ext = match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return "application/octet-stream",
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "flv" => "video/x-flv",
        "mp4" | "m4v" | "m4s" => "video/mp4",
        "webm" => "video/webm",
        "m4a" => "audio/mp4",
        "mp3" => "audio/mpeg",
        "aac" => "audio/aac",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// A static file's contents as a 200 response.
pub fn file_response(path: &StaticPath, body: Vec<u8>) -> Response {
    Response::new(200)
        .header("Content-Type", content_type(path.file_name()))
        .header("X-Content-Type-Options", "nosniff")
        .with_body(body)
}

/// 404 `{"status":404,"data":"not found"}`, as for any unknown API path.
pub fn not_found() -> Response {
    reply(404, "not found")
}

/// An answer in livego's envelope.
pub fn reply(status: u16, data: &str) -> Response {
    Response::envelope(status, &serde_json::Value::String(data.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<Result<StaticPath, Response>> {
        resolve("GET", path, path, "")
    }

    fn ok(path: &str) -> StaticPath {
        get(path).unwrap().unwrap()
    }

    fn refused(path: &str) -> u16 {
        get(path).unwrap().unwrap_err().status
    }

    #[test]
    fn files_and_directories() {
        let file = ok("/statics/js/app.min.js");
        assert_eq!(file.segments, ["js", "app.min.js"]);
        assert!(!file.dir);
        assert_eq!(file.relative(), PathBuf::from("js/app.min.js"));
        assert_eq!(
            content_type(file.file_name()),
            "text/javascript; charset=utf-8"
        );
        let root = ok("/statics/");
        assert!(root.dir && root.segments.is_empty());
        assert_eq!(root.relative(), PathBuf::from("index.html"));
        assert_eq!(root.file_name(), "index.html");
        let sub = ok("/statics/player/");
        assert_eq!(sub.relative(), PathBuf::from("player/index.html"));
        assert_eq!(content_type(sub.file_name()), "text/html; charset=utf-8");
        assert_eq!(ok("/statics/a b/é.txt").segments, ["a b", "é.txt"]);
        assert_eq!(ok("/statics/x..y").segments, ["x..y"]);
    }

    #[test]
    fn other_paths_are_not_statics() {
        assert!(get("/control/get").is_none());
        assert!(get("/staticsfoo").is_none());
        assert!(get("/static/x").is_none());
        assert!(get("/x/statics/y").is_none());
    }

    #[test]
    fn traversal_and_odd_segments_are_refused() {
        for path in [
            "/statics/../Cargo.toml",
            "/statics/..",
            "/statics/a/../../x",
            "/statics/./x",
            "/statics//etc/passwd",
            "/statics/a//b",
            "/statics/..\\x",
            "/statics/a\\b",
            "/statics/a\0b",
            "/statics/a\nb",
            "/statics/a/../",
        ] {
            assert_eq!(refused(path), 400, "{path:?}");
        }
        assert_eq!(refused("/statics/.env"), 404);
        assert_eq!(refused("/statics/.git/config"), 404);
        assert_eq!(refused("/statics/a/.hidden/"), 404);
    }

    #[test]
    fn redirects_and_methods() {
        let resp = resolve("GET", "/statics", "/statics", "jwt=t")
            .unwrap()
            .unwrap_err();
        assert_eq!(resp.status, 301);
        assert_eq!(resp.get_header("Location"), Some("/statics/?jwt=t"));
        let dir = resolve("GET", "/statics/sub", "/%73tatics/sub", "")
            .unwrap()
            .unwrap();
        let resp = dir.redirect_to_dir();
        assert_eq!(resp.get_header("Location"), Some("/%73tatics/sub/"));
        assert!(resolve("HEAD", "/statics/a", "/statics/a", "")
            .unwrap()
            .is_ok());
        for method in ["POST", "PUT", "DELETE"] {
            let resp = resolve(method, "/statics/a", "/statics/a", "")
                .unwrap()
                .unwrap_err();
            assert_eq!(resp.status, 405, "{method}");
            assert_eq!(resp.get_header("Allow"), Some("GET, HEAD, OPTIONS"));
        }
    }

    #[test]
    fn content_types_by_extension() {
        let cases = [
            ("index.HTML", "text/html; charset=utf-8"),
            ("s.css", "text/css; charset=utf-8"),
            ("d.json", "application/json"),
            ("live.m3u8", "application/vnd.apple.mpegurl"),
            ("0.ts", "video/mp2t"),
            ("a.flv", "video/x-flv"),
            ("a.mp4", "video/mp4"),
            ("a.png", "image/png"),
            ("a.JPG", "image/jpeg"),
            ("a.svg", "image/svg+xml"),
            ("favicon.ico", "image/x-icon"),
            ("r.txt", "text/plain; charset=utf-8"),
            ("m.wasm", "application/wasm"),
            ("noext", "application/octet-stream"),
            (".bashrc", "application/octet-stream"),
            ("a.exe", "application/octet-stream"),
        ];
        for (name, want) in cases {
            assert_eq!(content_type(name), want, "{name}");
        }
    }

    #[test]
    fn file_response_headers() {
        let resp = file_response(&ok("/statics/a.css"), b"body{}".to_vec());
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.get_header("Content-Type"),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(resp.get_header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(&resp.body[..], b"body{}");
    }
}
