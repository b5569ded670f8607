//! End-to-end HTTP-FLV: livego's `http://host:7001/{app}/{room}.flv`, read by ffprobe/ffmpeg
//! and by a strict FLV reader, over `--shards 2`.

mod common;

use common::*;
use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// One tag of an FLV body: type, timestamp, body.
type Tag = (u8, u32, Vec<u8>);

/// Read an HTTP-FLV body strictly (file header, then tags whose PreviousTagSize must match)
/// until `video_tags` video tags arrived or `timeout` passed. Returns the header flags and tags.
fn read_flv(body: &mut impl Read, video_tags: usize, timeout: Duration) -> (u8, Vec<Tag>) {
    let deadline = Instant::now() + timeout;
    let mut header = [0u8; 13];
    body.read_exact(&mut header).expect("FLV header");
    assert_eq!(&header[..4], b"FLV\x01");
    assert_eq!(&header[5..13], &[0, 0, 0, 9, 0, 0, 0, 0]);
    let mut tags = Vec::new();
    while tags.iter().filter(|t: &&Tag| t.0 == 9).count() < video_tags {
        assert!(
            Instant::now() < deadline,
            "only {} tags in time",
            tags.len()
        );
        let mut h = [0u8; 11];
        body.read_exact(&mut h).expect("tag header");
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let mut data = vec![0u8; len];
        body.read_exact(&mut data).expect("tag body");
        let mut prev = [0u8; 4];
        body.read_exact(&mut prev).expect("PreviousTagSize");
        assert_eq!(
            u32::from_be_bytes(prev) as usize,
            len + 11,
            "tag sizes consistent"
        );
        tags.push((h[0], ts, data));
    }
    (header[4], tags)
}

/// The checks every viewer must pass: metadata/headers first, first video tag the AVC
/// sequence header, then a keyframe, timestamps non-decreasing per track.
fn assert_valid_start(tags: &[Tag]) {
    let videos: Vec<&Tag> = tags.iter().filter(|t| t.0 == 9).collect();
    assert_eq!(
        videos[0].2,
        avc_sequence_header(),
        "first video tag: AVC header"
    );
    assert!(is_keyframe(&videos[1].2), "then a keyframe");
    for kind in [8u8, 9] {
        let ts: Vec<u32> = tags.iter().filter(|t| t.0 == kind).map(|t| t.1).collect();
        assert!(ts.windows(2).all(|w| w[1] >= w[0]), "type {kind}: {ts:?}");
    }
}

#[test]
fn ffprobe_and_ffmpeg_read_the_flv_url() {
    require_ffmpeg();
    let media = test_media();
    let server = Server::start("flv-probe", &["--shards", "2"]);
    let key = key_of(&server, "movie");
    let mut pusher = push(&server.rtmp_url(&format!("live/{key}")), &media, true);
    assert!(server
        .wait_for_line(|l| l.contains("publish started"), WAIT)
        .is_some());
    let url = server.httpflv_url("live/movie.flv");
    let codecs = ffprobe_streams(&url);
    assert!(
        codecs.contains(&"h264".to_string()) && codecs.contains(&"aac".to_string()),
        "{codecs:?}"
    );
    let out = server.dir().join("flv.flv");
    assert!(record(&url, 4, &out).wait().unwrap().success());
    let (frames, pts) = count_video_frames(&out);
    assert!(frames >= 110, "4 s of video, got {frames}");
    assert!(pts.windows(2).all(|w| w[1] > w[0]));
    let _ = pusher.kill();
    let _ = pusher.wait();
}

#[test]
fn twenty_viewers_on_both_shards_get_valid_flv() {
    let server = Server::start("flv-many", &["--shards", "2"]);
    let key = key_of(&server, "many");
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 10, 0);
    // Keep the stream going in real time while viewers join and read.
    let feeder = thread::spawn(move || {
        for i in 10..300u32 {
            thread::sleep(Duration::from_millis(33));
            publisher
                .send_video(i * 33, &avc_frame(i % 30 == 0, i))
                .unwrap();
            publisher.send_audio(i * 33 + 10, &aac_frame(i)).unwrap();
        }
        publisher
    });
    let addr = server.httpflv_addr();
    // The FLV header announces the tracks the home shard has seen so far: wait until the
    // first audio frame got there, so every viewer's header announces both.
    let from = server.line_count();
    let deadline = Instant::now() + WAIT;
    let mut probes = 0;
    loop {
        probes += 1;
        let mut resp = http_open(addr, "GET", "/live/many.flv", &[]).unwrap();
        let mut header = [0u8; 13];
        resp.body.read_exact(&mut header).unwrap();
        if header[4] == 0x05 {
            break;
        }
        assert!(Instant::now() < deadline, "audio never announced");
    }
    let viewers: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || {
                let mut resp = http_open(addr, "GET", "/live/many.flv", &[]).unwrap();
                assert_eq!(resp.status, 200);
                assert_eq!(resp.header("Content-Type"), Some("video/x-flv"));
                assert_eq!(resp.header("Access-Control-Allow-Origin"), Some("*"));
                read_flv(&mut resp.body, 40, WAIT)
            })
        })
        .collect();
    for v in viewers {
        let (flags, tags) = v.join().unwrap();
        assert_eq!(flags, 0x05, "audio and video announced");
        assert_valid_start(&tags);
    }
    let _ = feeder.join().unwrap();
    let lines = server.lines();
    let mut shards = [0usize; 2];
    for l in lines[from..]
        .iter()
        .filter(|l| l.contains("httpflv{") && l.contains("play started"))
    {
        shards[shard_of(l)] += 1;
    }
    // Every viewer (and each probe above) logged its start, on one shard or the other.
    assert_eq!(shards.iter().sum::<usize>(), 20 + probes);
    assert!(
        shards.iter().all(|&n| n > 0),
        "both shards serve viewers: {shards:?}"
    );
}

#[test]
fn unknown_streams_preflight_head_and_streams_list() {
    let server = Server::start("flv-misc", &[]);
    let addr = server.httpflv_addr();
    let (status, _, body) = http_get(addr, "/live/nobody.flv");
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (404, "stream not found")
    );
    let (status, _, _) = http_get(addr, "/live/../x.flv");
    assert_eq!(status, 404);
    let (status, _, _) = http_get(addr, "/other/x.flv");
    assert_eq!(status, 404);
    let pre = http_open(
        addr,
        "OPTIONS",
        "/live/x.flv",
        &[("Origin", "http://a.example")],
    )
    .unwrap();
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("Access-Control-Allow-Origin"), Some("*"));

    let key = key_of(&server, "listed");
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 3, 0);
    let streams = || {
        let (status, _, body) = http_get(addr, "/streams");
        assert_eq!(status, 200);
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    assert_eq!(streams()["publishers"][0]["key"], "live/listed");
    // The codecs, once the stream's home shard has seen its first frames.
    wait_until("/streams names the codecs", WAIT, || {
        let p = &streams()["publishers"][0];
        p["video_codec"] == "h264" && p["audio_codec"] == "aac"
    });
    let mut head = http_open(addr, "HEAD", "/live/listed.flv", &[]).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Type"), Some("video/x-flv"));
    assert!(head.read_body().unwrap().is_empty());
}

#[test]
fn a_leaving_viewer_is_removed_at_once() {
    let server = Server::start("flv-leave", &[]);
    let key = key_of(&server, "bye");
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 5, 0);
    let mut resp = http_open(server.httpflv_addr(), "GET", "/live/bye.flv", &[]).unwrap();
    let _ = read_flv(&mut resp.body, 2, WAIT);
    let from = server.line_count();
    drop(resp);
    // Nothing more is published: only the disconnect itself can end the viewer.
    assert!(server
        .wait_for_line_from(
            from,
            |l| l.contains("httpflv{") && l.contains("play ended"),
            WAIT
        )
        .is_some());
}

#[test]
fn viewers_carry_on_across_a_republish_with_continuous_timestamps() {
    let server = Server::start("flv-again", &["--shards", "2"]);
    let key = key_of(&server, "again");
    let mut first = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    first.publish(&key).unwrap();
    publish_frames(&mut first, 0, 30, 7000);
    let mut resp = http_open(server.httpflv_addr(), "GET", "/live/again.flv", &[]).unwrap();
    let (_, before) = read_flv(&mut resp.body, 31, WAIT);
    let last = before.iter().map(|t| t.1).max().unwrap();
    first.delete_stream().unwrap();
    drop(first);
    let mut second = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    second.publish(&key).unwrap();
    publish_frames(&mut second, 100, 30, 0);
    let mut after = Vec::new();
    let deadline = Instant::now() + WAIT;
    while after.iter().filter(|t: &&Tag| t.0 == 9).count() < 31 && Instant::now() < deadline {
        let mut h = [0u8; 11];
        resp.body.read_exact(&mut h).unwrap();
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let mut rest = vec![0u8; len + 4];
        resp.body.read_exact(&mut rest).unwrap();
        rest.truncate(len);
        after.push((h[0], u32::from_be_bytes([h[7], h[4], h[5], h[6]]), rest));
    }
    let seqs: Vec<u32> = after
        .iter()
        .filter(|t| t.0 == 9)
        .filter_map(|t| frame_seq(&t.2))
        .collect();
    assert_eq!(seqs, (100..130).collect::<Vec<_>>());
    assert!(
        after.iter().all(|t| t.1 > last),
        "timestamps continue after {last}"
    );
}

#[test]
fn the_flv_switch_is_per_app() {
    let dir = std::env::temp_dir().join(format!("shardcast-flvapps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("apps.toml");
    std::fs::write(
        &file,
        "[[server]]\nappname = \"live\"\nlive = true\nflv = true\nhls = true\napi = true\n\n\
         [[server]]\nappname = \"private\"\nlive = true\nflv = false\n",
    )
    .unwrap();
    let server = Server::start("flv-apps", &["--config_file", file.to_str().unwrap()]);
    let key = key_of(&server, "cam");
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "private").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 3, 0);
    let (status, _, _) = http_get(server.httpflv_addr(), "/private/cam.flv");
    assert_eq!(status, 404, "HTTP-FLV is off for app `private`");
    let _ = std::fs::remove_dir_all(&dir);
}
