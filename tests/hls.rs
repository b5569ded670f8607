//! End-to-end HLS: livego's `http://host:7002/{app}/{room}.m3u8`, read by ffprobe/ffmpeg, with
//! the playlist checked against the segments' real content.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// One `#EXTINF` entry: duration (s) and URI.
type Entry = (f64, String);

/// Parsed playlist: media sequence, entries, whether a discontinuity tag is present, ENDLIST.
#[derive(Debug, Default)]
struct Playlist {
    media_sequence: u64,
    entries: Vec<Entry>,
    discontinuities: usize,
    ended: bool,
}

fn parse_playlist(text: &str) -> Playlist {
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let mut p = Playlist::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d: f64 = v.trim_end_matches(',').parse().unwrap();
            p.entries.push((d, lines.next().unwrap().to_string()));
        } else if line == "#EXT-X-DISCONTINUITY" {
            p.discontinuities += 1;
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        }
    }
    p
}

/// GET the playlist of `live/{room}` until it lists at least `n` segments (bounded).
fn playlist_with(server: &Server, room: &str, n: usize) -> Playlist {
    let deadline = Instant::now() + WAIT * 2;
    loop {
        let (status, headers, body) = http_get(server.hls_addr(), &format!("/live/{room}.m3u8"));
        if status == 200 {
            assert_eq!(
                header(&headers, "Content-Type"),
                Some("application/vnd.apple.mpegurl")
            );
            assert_eq!(header(&headers, "Cache-Control"), Some("no-cache"));
            let p = parse_playlist(&String::from_utf8_lossy(&body));
            if p.entries.len() >= n {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "playlist never had {n} segments");
        thread::sleep(Duration::from_millis(200));
    }
}

/// Fetch a segment listed in the playlist of `live/...` and store it in `dir`.
fn fetch_segment(server: &Server, uri: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let (status, headers, body) = http_get(server.hls_addr(), &format!("/live/{uri}"));
    assert_eq!(status, 200, "{uri}");
    assert_eq!(header(&headers, "Content-Type"), Some("video/mp2t"));
    assert!(
        body.len() % 188 == 0 && body.first() == Some(&0x47),
        "TS packets"
    );
    let path = dir.join(uri.replace('/', "_"));
    std::fs::write(&path, &body).unwrap();
    path
}

#[test]
fn ffmpeg_plays_the_playlist_and_durations_match_the_segments() {
    require_ffmpeg();
    let media = test_media();
    let server = Server::start("hls-play", &["--shards", "2", "--hls_window", "3"]);
    let key = key_of(&server, "movie");
    let mut pusher = push_looped(&server.rtmp_url(&format!("live/{key}")), &media);
    let first = playlist_with(&server, "movie", 2);
    let url = server.hls_url("live/movie.m3u8");
    let codecs = ffprobe_streams(&url);
    assert!(
        codecs.contains(&"h264".to_string()) && codecs.contains(&"aac".to_string()),
        "{codecs:?}"
    );

    // Every listed segment lasts what the playlist says (30 fps video: frames / 30).
    for (duration, uri) in &first.entries {
        let seg = fetch_segment(&server, uri, server.dir());
        let (frames, _) = count_video_frames(&seg);
        let content = frames as f64 / FPS as f64;
        assert!(
            (content - duration).abs() <= 0.1,
            "{uri}: EXTINF {duration}, content {content}"
        );
    }

    // 20 s of live HLS through ffmpeg, without errors.
    let out = server.dir().join("out.ts");
    let run = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin", "-y", "-i", &url])
        .args(["-c", "copy", "-t", "20"])
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg reported: {stderr}");
    let (frames, _) = count_video_frames(&out);
    assert!(frames >= 570, "20 s of video, got {frames}");

    let later = playlist_with(&server, "movie", 3);
    assert!(
        later.media_sequence > first.media_sequence,
        "the playlist advances"
    );
    let _ = pusher.kill();
    let _ = pusher.wait();
}

#[test]
fn audio_only_and_mp3_streams_play_over_hls_and_flv() {
    require_ffmpeg();
    let server = Server::start("hls-codecs", &["--shards", "2"]);
    let cases = [
        ("voice", Variant::AacOnly, vec!["aac"]),
        ("mp3", Variant::H264Mp3, vec!["h264", "mp3"]),
    ];
    let mut pushers = Vec::new();
    for (room, variant, _) in &cases {
        let key = key_of(&server, room);
        let url = server.rtmp_url(&format!("live/{key}"));
        pushers.push(push_looped(&url, &test_media_variant(*variant)));
    }
    for (room, _, want) in &cases {
        let p = playlist_with(&server, room, 2);
        assert!(
            p.entries.iter().all(|e| e.0 > 0.5),
            "{room}: {:?}",
            p.entries
        );
        for url in [
            server.hls_url(&format!("live/{room}.m3u8")),
            server.httpflv_url(&format!("live/{room}.flv")),
        ] {
            // HLS streams are listed once more under their program: dedup.
            let mut codecs = ffprobe_streams(&url);
            codecs.sort();
            codecs.dedup();
            assert_eq!(&codecs, want, "{url}");
            // Playable: ffmpeg decodes 3 s of it without an error.
            let run = Command::new("ffmpeg")
                .args(["-hide_banner", "-v", "error", "-nostdin", "-i", &url])
                .args(["-t", "3", "-f", "null", "-"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert!(
                run.status.success() && stderr.trim().is_empty(),
                "{url}: {stderr}"
            );
        }
    }
    for mut p in pushers {
        let _ = p.kill();
        let _ = p.wait();
    }
}

/// Publish `seconds` of synthetic H.264 (keyframe every 30 frames) faster than real time.
fn publish_seconds(p: &mut RtmpClient, first: u32, seconds: u32) {
    p.send_video(0, &avc_sequence_header()).unwrap();
    p.send_audio(0, &aac_sequence_header()).unwrap();
    for i in 0..seconds * 30 {
        p.send_video(i * 33, &avc_frame(i % 30 == 0, first + i))
            .unwrap();
    }
}

#[test]
fn a_republish_is_a_discontinuity_and_the_playlist_goes_on() {
    let server = Server::start("hls-again", &["--shards", "2"]);
    let key = key_of(&server, "again");
    let mut a = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    a.publish(&key).unwrap();
    publish_seconds(&mut a, 0, 8);
    let before = playlist_with(&server, "again", 2);
    assert_eq!(before.discontinuities, 0);
    a.delete_stream().unwrap();
    drop(a);
    let mut b = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    b.publish(&key).unwrap();
    publish_seconds(&mut b, 1000, 8);
    let after = playlist_with(&server, "again", before.entries.len() + 2);
    assert_eq!(after.discontinuities, 1, "{after:?}");
    assert!(!after.ended);
    for (_, uri) in &after.entries {
        fetch_segment(&server, uri, server.dir());
    }
}

#[test]
fn hls_http_surface() {
    let server = Server::start("hls-http", &["--hls_keep_after_end"]);
    let addr = server.hls_addr();
    assert_eq!(http_get(addr, "/live/nobody.m3u8").0, 404);
    assert_eq!(http_get(addr, "/live/nobody/0.ts").0, 404);
    assert_eq!(http_get(addr, "/live/../x.m3u8").0, 404);
    let (status, headers, body) = http_get(addr, "/crossdomain.xml");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "Content-Type"), Some("application/xml"));
    assert!(String::from_utf8_lossy(&body).contains("cross-domain-policy"));
    let pre = http_open(
        addr,
        "OPTIONS",
        "/live/x.m3u8",
        &[("Origin", "http://a.example")],
    )
    .unwrap();
    assert_eq!(pre.status, 204);

    let key = key_of(&server, "kept");
    let mut p = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    p.publish(&key).unwrap();
    publish_seconds(&mut p, 0, 7);
    let live = playlist_with(&server, "kept", 1);
    assert!(!live.ended);
    let (_, uri) = &live.entries[0];
    let (status, headers, _) = http_get(addr, &format!("/live/{uri}"));
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "Access-Control-Allow-Origin"), Some("*"));
    assert!(header(&headers, "Cache-Control").is_some_and(|c| c.contains("max-age")));
    p.delete_stream().unwrap();
    drop(p);
    // hls_keep_after_end: the finished playlist stays, with ENDLIST.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, body) = http_get(addr, "/live/kept.m3u8");
        if parse_playlist(&String::from_utf8_lossy(&body)).ended {
            break;
        }
        assert!(Instant::now() < deadline, "ENDLIST never came");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hls_over_https_with_the_configured_certificate() {
    require_ffmpeg();
    let dir = std::env::temp_dir().join(format!("shardcast-tls-{}", std::process::id()));
    let (cert, key) = common::certs::self_signed(&dir);
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());

    // A missing key stops start-up with a message naming the setting and the file.
    let bad = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args([
            "--rtmp_addr",
            "127.0.0.1:0",
            "--api_addr",
            "",
            "--httpflv_addr",
            "",
        ])
        .args([
            "--hls_addr",
            "127.0.0.1:0",
            "--use_hls_https",
            "--hls_cert",
            cert_s,
        ])
        .args(["--hls_key", "/nonexistent/key.pem"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("use_hls_https") && err.contains("/nonexistent/key.pem"),
        "{err}"
    );

    let args = ["--use_hls_https", "--hls_cert", cert_s, "--hls_key", key_s];
    let server = Server::start("hls-tls", &args);
    let stream_key = key_of(&server, "secure");
    let mut pusher = push(
        &server.rtmp_url(&format!("live/{stream_key}")),
        &test_media(),
        true,
    );
    assert!(server
        .wait_for_line(|l| l.contains("publish started"), WAIT)
        .is_some());
    let url = format!("https://{}/live/secure.m3u8", server.hls_addr());
    let mut codecs = ffprobe_streams(&url);
    codecs.sort();
    codecs.dedup();
    assert_eq!(codecs, ["aac", "h264"], "{url}");
    let _ = pusher.kill();
    let _ = pusher.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
