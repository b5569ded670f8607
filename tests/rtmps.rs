//! End-to-end RTMPS (`enable_rtmps`, livego's keys): ffmpeg publishes over `rtmps://` to a
//! self-signed certificate, and the stream plays over RTMPS and HTTP-FLV.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// A self-signed certificate for `localhost`, in a directory of this test process.
/// A fresh certificate per test: tests run in parallel, and one regenerating a shared file
/// while another's server had loaded the previous key made the client see a bad signature.
fn self_signed() -> (PathBuf, PathBuf) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("shardcast-rtmps-{}-{n}", std::process::id()));
    common::certs::self_signed(&dir)
}

#[test]
fn ffmpeg_publishes_and_plays_over_rtmps() {
    require_ffmpeg();
    let (cert, key) = self_signed();
    let server = Server::start(
        "rtmps",
        &[
            "--shards",
            "2",
            "--enable_rtmps",
            "--rtmps_cert",
            cert.to_str().unwrap(),
            "--rtmps_key",
            key.to_str().unwrap(),
            "--hls_addr",
            "",
        ],
    );
    assert!(server
        .lines()
        .iter()
        .any(|l| l.contains("listening proto=rtmp") && l.contains("tls=true")));
    let rtmps = |path: &str| format!("rtmps://{}/{path}", server.rtmp_addr());
    let key = key_of(&server, "movie");
    let mut push = push_looped(&rtmps(&format!("live/{key}")), &test_media());
    assert!(
        server
            .wait_for_line(|l| l.contains("publish started"), Duration::from_secs(20))
            .is_some(),
        "ffmpeg published over RTMPS"
    );
    let mut codecs = ffprobe_streams(&rtmps("live/movie"));
    codecs.sort();
    assert_eq!(codecs, ["aac", "h264"], "played back over RTMPS");
    let mut codecs = ffprobe_streams(&server.httpflv_url("live/movie.flv"));
    codecs.sort();
    assert_eq!(codecs, ["aac", "h264"], "and over HTTP-FLV");

    // Plain RTMP on the RTMPS port is not TLS: that connection fails, the server stays up.
    let mut plain = TcpStream::connect(server.rtmp_addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    let _ = plain.write_all(&c0c1);
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(
        reply.len() < 1537,
        "no RTMP handshake reply in the clear ({} bytes)",
        reply.len()
    );
    let mut codecs = ffprobe_streams(&rtmps("live/movie"));
    codecs.sort();
    assert_eq!(codecs, ["aac", "h264"], "still serving");
    let _ = push.kill();
    let _ = push.wait();
}

/// An RTMPS server (`--rtmp_noauth`) with the `localhost` certificate.
fn rtmps_server(name: &str, cert: &Path, key: &Path) -> Server {
    Server::start(
        name,
        &[
            "--enable_rtmps",
            "--rtmps_cert",
            cert.to_str().unwrap(),
            "--rtmps_key",
            key.to_str().unwrap(),
            "--rtmp_noauth",
            "--hls_addr",
            "",
        ],
    )
}

/// `/control/push` of `live/{name}` to `url`.
fn push_to(server: &Server, name: &str, url: &str) -> (u16, serde_json::Value) {
    api_json(
        server,
        &format!("/control/push?oper=start&app=live&name={name}&url={url}"),
    )
}

/// A plain server publishing the test media as `live/{name}` (ffmpeg, looped, real time).
fn source(server_name: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> (Server, Child) {
    let mut all = vec!["--rtmp_noauth", "--hls_addr", ""];
    all.extend_from_slice(args);
    let server = Server::start_with_env(server_name, &all, env);
    let push = push_looped(&server.rtmp_url(&format!("live/{name}")), &test_media());
    assert!(server
        .wait_for_line(|l| l.contains("publish started"), Duration::from_secs(20))
        .is_some());
    (server, push)
}

fn sorted_codecs(url: &str) -> Vec<String> {
    let mut codecs = ffprobe_streams(url);
    codecs.sort();
    codecs
}

#[test]
fn relays_push_over_rtmps_and_check_the_host_name() {
    require_ffmpeg();
    let (cert, key) = self_signed();
    let remote = rtmps_server("rtmps-remote", &cert, &key);
    let port = remote.rtmp_addr().port();

    // The source trusts the certificate through SSL_CERT_FILE (the system store otherwise).
    let trust = [("SSL_CERT_FILE", cert.to_str().unwrap())];
    let (src, mut feed) = source("rtmps-source", "s", &[], &trust);

    // The name matches the certificate: the push runs, and the remote serves the stream.
    let (status, body) = push_to(&src, "s", &format!("rtmps://localhost:{port}/live/s"));
    assert_eq!(status, 200, "{body}");
    let at_remote = |name: &str| format!("rtmps://127.0.0.1:{port}/live/{name}");
    assert_eq!(
        sorted_codecs(&at_remote("s")),
        ["aac", "h264"],
        "pushed over RTMPS"
    );

    // The certificate names localhost, not 127.0.0.1: a push there is refused with 502.
    let (status, body) = push_to(&src, "t", &format!("rtmps://127.0.0.1:{port}/live/t"));
    assert_eq!(status, 502, "{body}");
    let why = body["data"].as_str().unwrap_or_default();
    assert!(
        why.contains("certificate"),
        "the reason names the certificate: {why}"
    );

    // enable_tls_verify = false: any certificate is taken.
    let (lax, mut feed2) = source("rtmps-lax", "u", &["--enable_tls_verify=false"], &[]);
    let (status, body) = push_to(&lax, "u", &at_remote("u"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sorted_codecs(&at_remote("u")),
        ["aac", "h264"],
        "pushed unverified"
    );
    for feed in [&mut feed, &mut feed2] {
        let _ = feed.kill();
        let _ = feed.wait();
    }
}
