//! End-to-end RTMPS (`enable_rtmps`, livego's keys): ffmpeg publishes over `rtmps://` to a
//! self-signed certificate, and the stream plays over RTMPS and HTTP-FLV.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A self-signed certificate and key for `localhost` (openssl comes with scripts/setup).
fn self_signed() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("shardcast-rtmps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed by scripts/setup");
    assert!(made.success());
    (cert, key)
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
