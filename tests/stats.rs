//! End-to-end statistics: `/stat/livestat` (livego's envelope and fields, every protocol and
//! shard, speeds over a sliding window) and `/metrics` (Prometheus text), over `--shards 2`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(200);

/// Players of each connection-based protocol: with 16 connections spread by SO_REUSEPORT the
/// chance that one shard gets none is 2^-15.
const PLAYERS_PER_PROTOCOL: usize = 8;

/// Keeps reading from a player's socket (so it never becomes a slow viewer) until stopped.
struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    fn spawn(mut read: impl FnMut() -> bool + Send + 'static) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || while !flag.load(Ordering::Relaxed) && read() {});
        Reader {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn rtmp_player(server: &Server, room: &str) -> Reader {
    let mut client = RtmpClient::connect(server.rtmp_addr(), "live").expect("connect");
    client.play(room).expect("play");
    Reader::spawn(move || {
        client.read_media(Duration::from_millis(200), 1);
        !client.is_closed()
    })
}

fn flv_player(server: &Server, room: &str) -> Reader {
    let path = format!("/live/{room}.flv");
    let mut resp = http_open(server.httpflv_addr(), "GET", &path, &[]).expect("open FLV");
    assert_eq!(resp.status, 200);
    let mut buf = vec![0u8; 64 * 1024];
    Reader::spawn(move || resp.body.read(&mut buf).is_ok_and(|n| n > 0))
}

/// An HLS viewer: fetches the playlist and its newest segment about once a second.
fn hls_player(addr: SocketAddr, room: &str) -> Reader {
    let playlist = format!("/live/{room}.m3u8");
    Reader::spawn(move || {
        let (status, _, body) = http_get(addr, &playlist);
        if status == 200 {
            let text = String::from_utf8_lossy(&body);
            if let Some(seg) = text.lines().rfind(|l| l.ends_with(".ts")) {
                let seg = if seg.starts_with('/') {
                    seg.to_owned()
                } else {
                    format!("/live/{seg}")
                };
                http_get(addr, &seg);
            }
        }
        thread::sleep(Duration::from_secs(1));
        true
    })
}

/// Polls `/stat/livestat` until `done` holds; returns that answer's `data`.
fn livestat_until(server: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = api_json(server, "/stat/livestat");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], 200);
        if done(&body["data"]) {
            return body["data"].clone();
        }
        assert!(Instant::now() < deadline, "{what}: last answer {body}");
        thread::sleep(POLL);
    }
}

fn list<'a>(data: &'a Value, field: &str) -> &'a Vec<Value> {
    data[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} is not a list: {data}"))
}

fn count(data: &Value, protocol: &str) -> usize {
    list(data, "players")
        .iter()
        .filter(|p| p["protocol"] == protocol)
        .count()
}

/// Video and audio payload bits per second of the test recording.
fn recording_kbps() -> (f64, f64) {
    let tags = read_flv_tags(&test_media());
    let secs = DURATION_SECS as f64;
    let bytes = |kind| -> usize { tags.iter().filter(|t| t.0 == kind).map(|t| t.2.len()).sum() };
    let kbps = |b: usize| b as f64 * 8.0 / secs / 1000.0;
    (kbps(bytes(MediaKind::Video)), kbps(bytes(MediaKind::Audio)))
}

fn assert_near(what: &str, got: &Value, expected: f64) {
    let got = got
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: {got} is not a number")) as f64;
    assert!(
        (got - expected).abs() <= expected * 0.3,
        "{what}: {got} kbit/s, expected about {expected:.0}"
    );
}

fn assert_session_fields(s: &Value, key: &str) {
    assert_eq!(s["key"], "live/movie", "{s}");
    let url = s["url"].as_str().unwrap();
    assert!(
        url.ends_with("/live/movie")
            || url.ends_with("/live/movie.flv")
            || url.ends_with("/live/movie.m3u8"),
        "{s}"
    );
    assert!(!url.contains(key), "the channel key never shows: {s}");
    assert!(s["stream_id"].is_u64(), "{s}");
    for f in [
        "video_total_bytes",
        "video_speed",
        "audio_total_bytes",
        "audio_speed",
        "shard",
    ] {
        assert!(s[f].is_u64(), "{f} in {s}");
    }
    assert!(s["shard"].as_u64().unwrap() < 2, "{s}");
    let remote = s["remote"].as_str().unwrap();
    assert!(remote.starts_with("127.0.0.1"), "{s}");
    let at = s["connected_at"].as_str().unwrap();
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{s}"
    );
}

#[test]
fn livestat_lists_every_protocol_and_shard_with_speeds_of_the_stream() {
    require_ffmpeg();
    let server = Server::start("stats-livestat", &["--shards", "2", "--hls_fragment", "1"]);
    let (video_kbps, audio_kbps) = recording_kbps();
    let key = key_of(&server, "movie");
    let mut push = push_looped(&server.rtmp_url(&format!("live/{key}")), &test_media());
    livestat_until(&server, "publisher listed", |d| {
        list(d, "publishers").len() == 1
    });

    let mut players = Vec::new();
    for _ in 0..PLAYERS_PER_PROTOCOL {
        players.push(rtmp_player(&server, "movie"));
        players.push(flv_player(&server, "movie"));
    }
    players.push(hls_player(server.hls_addr(), "movie"));

    // Speeds cover 5 s: wait until the window is full of the live stream.
    let settled = format!("every player listed, video speeds near {video_kbps:.0} kbit/s");
    let data = livestat_until(&server, &settled, |d| {
        count(d, "rtmp") == PLAYERS_PER_PROTOCOL
            && count(d, "flv") == PLAYERS_PER_PROTOCOL
            && count(d, "hls") == 1
            && list(d, "players")
                .iter()
                .chain(list(d, "publishers"))
                .filter(|p| p["protocol"] != "hls")
                .all(|p| {
                    let v = p["video_speed"].as_u64().unwrap_or(0) as f64;
                    (v - video_kbps).abs() <= video_kbps * 0.3
                })
    });
    let publisher = &list(&data, "publishers")[0];
    assert_session_fields(publisher, &key);
    assert_eq!(publisher["protocol"], "rtmp");
    assert_eq!(publisher["stream_id"], 1);
    assert_near("publisher video", &publisher["video_speed"], video_kbps);
    assert_near("publisher audio", &publisher["audio_speed"], audio_kbps);
    let mut shards = std::collections::BTreeSet::new();
    for p in list(&data, "players") {
        assert_session_fields(p, &key);
        shards.insert(p["shard"].as_u64().unwrap());
        if p["protocol"] != "hls" {
            assert_near("player audio", &p["audio_speed"], audio_kbps);
        } else {
            assert!(p["total_bytes"].as_u64().unwrap() > 0, "{p}");
        }
    }
    assert_eq!(shards.len(), 2, "players on both shards: {data}");

    // The room filter, and livego's 404 for a room nobody uses.
    let (status, one) = api_json(&server, "/stat/livestat?room=live/movie");
    assert_eq!(status, 200);
    assert_eq!(list(&one["data"], "publishers").len(), 1);
    let (status, none) = api_json(&server, "/stat/livestat?room=live/nobody");
    assert_eq!(
        (status, none["data"].as_str()),
        (404, Some("room not found or inactive"))
    );

    // The publisher stops: it leaves the list, and its players' speeds fall to 0.
    let _ = push.kill();
    let _ = push.wait();
    let data = livestat_until(&server, "idle players show 0", |d| {
        list(d, "publishers").is_empty()
            && list(d, "players")
                .iter()
                .filter(|p| p["protocol"] != "hls")
                .all(|p| p["video_speed"] == 0 && p["audio_speed"] == 0)
    });
    assert!(count(&data, "rtmp") == PLAYERS_PER_PROTOCOL, "{data}");
    drop(players);
    livestat_until(&server, "players unlisted once gone", |d| {
        count(d, "rtmp") == 0 && count(d, "flv") == 0
    });
}

/// `/metrics` as a map from series (`name{labels}`) to value, checking every line's syntax.
fn metrics(server: &Server) -> HashMap<String, u64> {
    let (status, headers, body) = http_get(server.api_addr(), "/metrics");
    assert_eq!(status, 200);
    assert!(header(&headers, "Content-Type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).expect("UTF-8");
    let mut series = HashMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name_labels, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let (name, labels) = name_labels
            .split_once('{')
            .unwrap_or_else(|| panic!("{line}"));
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        assert!(labels.ends_with('}'), "{line}");
        for pair in labels.trim_end_matches('}').split(',') {
            let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
            assert!(
                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
        }
        let value = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        assert!(
            series.insert(name_labels.to_owned(), value).is_none(),
            "duplicate {line}"
        );
    }
    series
}

fn sum(m: &HashMap<String, u64>, name: &str, label: &str) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(&format!("{name}{{")) && k.contains(label))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn metrics_count_connections_bytes_sessions_and_responses() {
    let server = Server::start("stats-metrics", &["--shards", "2", "--rtmp_noauth"]);
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").expect("connect");
    publisher.publish("m").expect("publish");
    let mut players: Vec<RtmpClient> = (0..4)
        .map(|_| {
            let mut p = RtmpClient::connect(server.rtmp_addr(), "live").expect("connect");
            p.play("m").expect("play");
            p
        })
        .collect();
    publish_frames(&mut publisher, 0, 60, 0);
    for p in &mut players {
        assert!(!p.read_media(WAIT, 20).is_empty(), "player got media");
    }
    let (status, _, _) = http_get(server.api_addr(), "/no/such/route");
    assert_eq!(status, 404);

    let deadline = Instant::now() + WAIT;
    let m = loop {
        let m = metrics(&server);
        let done = sum(&m, "shardcast_connections", "protocol=\"rtmp\"") == 5
            && sum(
                &m,
                "shardcast_sessions",
                "role=\"player\",protocol=\"rtmp\"",
            ) == 4
            && sum(&m, "shardcast_http_responses_total", "status=\"404\"") >= 1;
        if done {
            break m;
        }
        assert!(Instant::now() < deadline, "metrics never settled: {m:?}");
        thread::sleep(POLL);
    };
    assert_eq!(
        sum(
            &m,
            "shardcast_sessions",
            "role=\"publisher\",protocol=\"rtmp\""
        ),
        1
    );
    assert!(
        sum(
            &m,
            "shardcast_connections_accepted_total",
            "protocol=\"rtmp\""
        ) >= 5
    );
    assert!(sum(&m, "shardcast_received_bytes_total", "protocol=\"rtmp\"") > 60 * 100);
    assert!(sum(&m, "shardcast_sent_bytes_total", "protocol=\"rtmp\"") > 4 * 20 * 100);
    assert_eq!(sum(&m, "shardcast_live_streams", "shard="), 1);
    assert_eq!(sum(&m, "shardcast_dropped_frames_total", "shard="), 0);
    for shard in ["0", "1"] {
        let series = format!("shardcast_mesh_sent_total{{shard=\"{shard}\"}}");
        assert!(m.contains_key(&series), "{series}");
    }
    // The players leave: the gauges come back down.
    drop(players);
    let deadline = Instant::now() + WAIT;
    while sum(&metrics(&server), "shardcast_sessions", "role=\"player\"") != 0 {
        assert!(Instant::now() < deadline, "players still counted");
        thread::sleep(POLL);
    }
}
