//! End-to-end `/statics/` on the API listener: files served from `statics_dir` with their
//! content type, and every way out of the directory refused.

mod common;

use common::*;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::Path;

/// A response: status, headers, body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// What `Cargo.toml` next to the statics directory holds: must never be served.
const SECRET: &str = "[package]\nname = \"must-not-leak\"\n";

fn request(addr: SocketAddr, method: &str, target: &str) -> Reply {
    let mut resp =
        http_open(addr, method, target, &[]).unwrap_or_else(|e| panic!("{method} {target}: {e}"));
    let body = resp.read_body().expect("the body");
    (resp.status, resp.headers, body)
}

/// The server's working directory gets `statics/` (the default `statics_dir`) with a few
/// files, plus things outside it that no URL may reach.
fn populate(dir: &Path) {
    let statics = dir.join("statics");
    fs::create_dir_all(statics.join("player")).unwrap();
    fs::create_dir_all(statics.join("empty")).unwrap();
    fs::write(statics.join("index.html"), "<h1>shardcast</h1>").unwrap();
    fs::write(statics.join("app.js"), "console.log(1);").unwrap();
    fs::write(statics.join("style.CSS"), "body{}").unwrap();
    fs::write(statics.join("live.m3u8"), "#EXTM3U\n").unwrap();
    fs::write(statics.join("blob"), [0u8, 1, 2, 255]).unwrap();
    fs::write(statics.join("player/index.html"), "<p>player</p>").unwrap();
    fs::write(statics.join(".env"), "TOKEN=x").unwrap();
    fs::write(dir.join("Cargo.toml"), SECRET).unwrap();
    fs::create_dir_all(dir.join("outside")).unwrap();
    fs::write(dir.join("outside/Cargo.toml"), SECRET).unwrap();
    symlink("../Cargo.toml", statics.join("escape.toml")).unwrap();
    symlink("../outside", statics.join("escape_dir")).unwrap();
    symlink("app.js", statics.join("alias.js")).unwrap();
    // Larger than the 16 MiB cap (sparse: costs no disk).
    let big = fs::File::create(statics.join("big.bin")).unwrap();
    big.set_len((16 << 20) + 1).unwrap();
}

#[test]
fn files_are_served_with_their_content_type() {
    let server = Server::start("statics-files", &["--shards", "2"]);
    populate(server.dir());
    let api = server.api_addr();
    let cases = [
        (
            "/statics/",
            "text/html; charset=utf-8",
            &b"<h1>shardcast</h1>"[..],
        ),
        (
            "/statics/index.html",
            "text/html; charset=utf-8",
            b"<h1>shardcast</h1>",
        ),
        (
            "/statics/app.js",
            "text/javascript; charset=utf-8",
            b"console.log(1);",
        ),
        (
            "/statics/alias.js",
            "text/javascript; charset=utf-8",
            b"console.log(1);",
        ),
        ("/statics/style.CSS", "text/css; charset=utf-8", b"body{}"),
        (
            "/statics/live.m3u8",
            "application/vnd.apple.mpegurl",
            b"#EXTM3U\n",
        ),
        ("/statics/blob", "application/octet-stream", &[0, 1, 2, 255]),
        (
            "/statics/player/",
            "text/html; charset=utf-8",
            b"<p>player</p>",
        ),
        (
            "/%73tatics/%61pp.js",
            "text/javascript; charset=utf-8",
            b"console.log(1);",
        ),
    ];
    for (target, content_type, body) in cases {
        let (status, headers, got) = request(api, "GET", target);
        assert_eq!(status, 200, "{target}: {}", String::from_utf8_lossy(&got));
        assert_eq!(
            header(&headers, "content-type"),
            Some(content_type),
            "{target}"
        );
        assert_eq!(got, body, "{target}");
        let (status, headers, got) = request(api, "HEAD", target);
        assert_eq!(status, 200, "HEAD {target}");
        assert!(got.is_empty(), "HEAD {target} has no body");
        let length = body.len().to_string();
        assert_eq!(header(&headers, "content-length"), Some(length.as_str()));
    }
    for (target, location) in [
        ("/statics", "/statics/"),
        ("/statics/player", "/statics/player/"),
        ("/statics/player?jwt=t", "/statics/player/?jwt=t"),
    ] {
        let (status, headers, _) = request(api, "GET", target);
        assert_eq!(status, 301, "{target}");
        assert_eq!(header(&headers, "location"), Some(location), "{target}");
    }
    assert_eq!(request(api, "POST", "/statics/app.js").0, 405);
    // The control API is still there.
    assert_eq!(request(api, "GET", "/control/get?room=movie").0, 200);
}

#[test]
fn traversal_and_escapes_are_refused() {
    let server = Server::start("statics-escape", &["--shards", "2"]);
    populate(server.dir());
    let api = server.api_addr();
    let refused = [
        ("/statics/../Cargo.toml", 400),
        ("/statics/%2e%2e/Cargo.toml", 400),
        ("/statics/%2E%2E/Cargo.toml", 400),
        ("/statics/..%2fCargo.toml", 400),
        ("/statics/%2e%2e%2fCargo.toml", 400),
        ("/statics/player/../../Cargo.toml", 400),
        ("/statics/./app.js", 400),
        ("/statics//etc/passwd", 400),
        ("/statics/%2fetc%2fpasswd", 400),
        ("/statics/..%5cCargo.toml", 400),
        ("/statics/%5c..%5cCargo.toml", 400),
        ("/statics/app.js%00.png", 400),
        ("/statics/escape.toml", 403),
        ("/statics/escape_dir/Cargo.toml", 403),
        ("/statics/.env", 404),
        ("/statics/missing.txt", 404),
        ("/statics/empty/", 404),
        ("/statics/app.js/", 404),
        ("/statics/big.bin", 403),
    ];
    for (target, want) in refused {
        let (status, _, body) = request(api, "GET", target);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, want, "{target}: {text}");
        assert!(!text.contains("must-not-leak"), "{target} leaked: {text}");
        assert!(
            text.starts_with(&format!("{{\"status\":{want},")),
            "{target}: {text}"
        );
    }
    // A plain backslash in the request line: refused (by the parser or the path check).
    let (status, _, body) = request(api, "GET", "/statics/..\\Cargo.toml");
    assert!((400..500).contains(&status), "backslash: {status}");
    assert!(!String::from_utf8_lossy(&body).contains("must-not-leak"));
}

#[test]
fn without_the_directory_statics_answer_404() {
    let server = Server::start("statics-none", &["--statics_dir", "no-such-dir"]);
    let api = server.api_addr();
    for target in ["/statics/", "/statics/index.html", "/statics/a/b.js"] {
        assert_eq!(request(api, "GET", target).0, 404, "{target}");
    }
    assert!(
        server
            .wait_for_line(
                |l| l.contains("statics_dir is not a directory"),
                std::time::Duration::from_secs(5)
            )
            .is_some(),
        "start-up says so"
    );
    let off = Server::start("statics-off", &["--statics_dir="]);
    populate(off.dir());
    assert_eq!(request(off.api_addr(), "GET", "/statics/app.js").0, 404);
}
