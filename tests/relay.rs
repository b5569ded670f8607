//! Relays between two real servers: `/control/pull`, `/control/push` and `static_push`.

mod common;

use common::*;
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

/// Longest wait for a relayed stream to show up or go away.
const WAIT: Duration = Duration::from_secs(30);

fn start(name: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "2"];
    args.extend_from_slice(extra);
    Server::start(name, &args)
}

/// An API call's status and `data`.
fn call(server: &Server, path: &str) -> (u16, Value) {
    let (status, body) = api_json(server, path);
    assert_eq!(body["status"].as_u64(), Some(u64::from(status)), "{body}");
    (status, body["data"].clone())
}

/// The sessions `/stat/livestat` lists as `role` ("publishers"/"players") for `key`.
fn sessions(server: &Server, role: &str, key: &str) -> Vec<Value> {
    let (_, data) = call(server, "/stat/livestat");
    data[role]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["key"] == key)
        .cloned()
        .collect()
}

fn has_publisher(server: &Server, key: &str) -> bool {
    !sessions(server, "publishers", key).is_empty()
}

/// ffmpeg publishing the test media in a loop to `room` of `server` (with its key).
fn live_source(server: &Server, room: &str) -> KillOnDrop {
    let key = key_of(server, room);
    let child = push_looped(&server.rtmp_url(&format!("live/{key}")), &test_media());
    let key = format!("live/{room}");
    wait_until("the source stream", WAIT, || has_publisher(server, &key));
    KillOnDrop(child)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn assert_h264_aac(url: &str) {
    let streams = ffprobe_streams(url);
    assert!(
        streams.contains(&"h264".to_owned()) && streams.contains(&"aac".to_owned()),
        "{url}: {streams:?}"
    );
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of a metric line that starts with `series`.
fn metric(server: &Server, series: &str) -> Option<u64> {
    let (status, _, body) = http_get(server.api_addr(), "/metrics");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn pull_carries_a_live_stream_until_stopped() {
    require_ffmpeg();
    let a = start("pull-a", &[]);
    let b = start("pull-b", &[]);
    let _source = live_source(&a, "room");
    let url = a.rtmp_url("live/room");
    let start = format!("/control/pull?oper=start&app=live&name=copy&url={url}");
    let (status, data) = call(&b, &start);
    assert_eq!(status, 200, "{data}");
    assert_h264_aac(&b.rtmp_url("live/copy"));
    assert_h264_aac(&b.httpflv_url("live/copy.flv"));

    // `/stat/livestat` shows each shard's report of its last tick (once a second).
    wait_until("the pull listed among b's publishers", WAIT, || {
        has_publisher(&b, "live/copy")
    });
    let listed = sessions(&b, "publishers", "live/copy");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["protocol"], "relay-pull");
    assert_eq!(listed[0]["url"], url.as_str());
    assert_eq!(listed[0]["remote"], a.rtmp_addr().to_string());
    wait_until("the relay gauge", WAIT, || {
        metric(&b, r#"shardcast_relays{kind="pull",state="running"}"#) == Some(1)
    });

    let (status, data) = call(&b, &start);
    assert_eq!(status, 409, "{data}");

    let (status, data) = call(&b, "/control/pull?oper=stop&app=live&name=copy");
    assert_eq!(status, 200, "{data}");
    wait_until("the pulled stream to end", WAIT, || {
        !has_publisher(&b, "live/copy")
    });
    wait_until("HTTP-FLV to know the stream is gone", WAIT, || {
        http_get(b.httpflv_addr(), "/live/copy.flv").0 == 404
    });
    let (status, _) = call(&b, "/control/pull?oper=stop&app=live&name=copy");
    assert_eq!(status, 404);
    assert_eq!(
        metric(&b, r#"shardcast_relays{kind="pull",state="running"}"#),
        Some(0)
    );
}

#[test]
fn push_publishes_a_local_stream_until_stopped() {
    require_ffmpeg();
    let a = start("push-a", &[]);
    let b = start("push-b", &[]);
    let _source = live_source(&a, "room");
    let target = b.rtmp_url(&format!("live/{}", key_of(&b, "out")));
    let start = format!("/control/push?oper=start&app=live&name=room&url={target}");
    let (status, data) = call(&a, &start);
    assert_eq!(status, 200, "{data}");
    wait_until("the pushed stream", WAIT, || has_publisher(&b, "live/out"));
    assert_h264_aac(&b.rtmp_url("live/out"));

    // `/stat/livestat` shows each shard's report of its last tick (once a second).
    let is_push = |s: &Value| s["protocol"] == "relay-push";
    wait_until("the push listed among a's players", WAIT, || {
        sessions(&a, "players", "live/room").iter().any(is_push)
    });
    let listed = sessions(&a, "players", "live/room");
    let relay: Vec<_> = listed
        .iter()
        .filter(|s| s["protocol"] == "relay-push")
        .collect();
    assert_eq!(relay.len(), 1, "{listed:?}");
    assert_eq!(relay[0]["url"], target.as_str());
    assert_eq!(relay[0]["remote"], b.rtmp_addr().to_string());
    assert_eq!(call(&a, &start).0, 409);

    let (status, data) = call(&a, "/control/push?oper=stop&app=live&name=room");
    assert_eq!(status, 200, "{data}");
    wait_until("the pushed stream to end", WAIT, || {
        !has_publisher(&b, "live/out")
    });
    wait_until("the relay player to leave", WAIT, || {
        sessions(&a, "players", "live/room").is_empty()
    });
    assert_eq!(
        call(&a, "/control/push?oper=stop&app=live&name=room").0,
        404
    );
}

#[test]
fn a_push_reconnects_to_a_restarted_remote() {
    require_ffmpeg();
    let a = start("again-a", &[]);
    let port = free_port().to_string();
    let b_addr = format!("127.0.0.1:{port}");
    let b_args = ["--rtmp_addr", b_addr.as_str(), "--rtmp_noauth"];
    let b = start("again-b1", &b_args);
    let _source = live_source(&a, "room");
    let target = format!("rtmp://{b_addr}/live/out");
    let start_push = format!("/control/push?oper=start&app=live&name=room&url={target}");
    assert_eq!(call(&a, &start_push).0, 200);
    wait_until("the pushed stream", WAIT, || has_publisher(&b, "live/out"));

    drop(b);
    wait_until("the relay to notice", WAIT, || {
        metric(&a, r#"shardcast_relays{kind="push",state="running"}"#) == Some(0)
    });
    let b = start("again-b2", &b_args);
    wait_until("the push to reconnect", WAIT, || {
        has_publisher(&b, "live/out")
    });
    assert_h264_aac(&b.rtmp_url("live/out"));
    assert_eq!(
        call(&a, "/control/push?oper=stop&app=live&name=room").0,
        200
    );
}

#[test]
fn relay_requests_are_checked() {
    let a = start("codes", &[]);
    let bad = [
        "/control/pull?oper=begin&app=live&name=x&url=rtmp://127.0.0.1/live/x",
        "/control/pull?oper=start&app=live&name=x",
        "/control/pull?oper=start&app=nope&name=x&url=rtmp://127.0.0.1/live/x",
        "/control/pull?oper=start&app=live&name=..&url=rtmp://127.0.0.1/live/x",
        "/control/push?oper=start&app=live&name=x&url=http://127.0.0.1/live/x",
        "/control/push?oper=start&app=live&name=x&url=rtmps://:1935/live/x",
        "/control/push?oper=start&app=live&name=x&url=rtmp://127.0.0.1/live",
    ];
    for path in bad {
        let (status, data) = call(&a, path);
        assert_eq!(status, 400, "{path}: {data}");
        assert!(!data.as_str().unwrap().contains('<'), "plain text: {data}");
    }
    assert_eq!(call(&a, "/control/push?oper=stop&app=live&name=x").0, 404);

    // Nothing listens: the start fails at once with 502, and nothing stays registered.
    let closed = format!("rtmp://127.0.0.1:{}/live/x", free_port());
    for kind in ["pull", "push"] {
        let path = format!("/control/{kind}?oper=start&app=live&name=x&url={closed}");
        let (status, data) = call(&a, &path);
        assert_eq!(status, 502, "{data}");
        let stop = format!("/control/{kind}?oper=stop&app=live&name=x");
        assert_eq!(call(&a, &stop).0, 404);
    }
    // The remote answers but refuses: publishing with an invalid key.
    let bad_key = a.rtmp_url("live/not-a-key");
    let path = format!("/control/push?oper=start&app=live&name=x&url={bad_key}");
    let (status, data) = call(&a, &path);
    assert_eq!(status, 502, "{data}");
    assert!(data.as_str().unwrap().contains("BadName"), "{data}");
}

/// A config file for `live` with static_push targets.
fn static_push_config(name: &str, targets: &[String]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shardcast-relay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("apps.toml");
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let text = format!(
        "[[server]]\nappname = \"live\"\nlive = true\nflv = true\napi = true\nstatic_push = [{}]\n",
        list.join(", ")
    );
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn static_push_republishes_every_publish() {
    require_ffmpeg();
    let b = start("static-b", &["--rtmp_noauth"]);
    let config = static_push_config("ok", &[format!("rtmp://{}/live", b.rtmp_addr())]);
    let a = start(
        "static-a",
        &["--config_file", config.to_str().unwrap(), "--hls_addr", ""],
    );
    let source = live_source(&a, "room");
    wait_until("the static push", WAIT, || has_publisher(&b, "live/room"));
    assert_h264_aac(&b.rtmp_url("live/room"));
    assert_eq!(
        metric(
            &a,
            r#"shardcast_relays{kind="static_push",state="running"}"#
        ),
        Some(1)
    );
    drop(source);
    wait_until("the static push to end with the publish", WAIT, || {
        !has_publisher(&b, "live/room")
    });
    wait_until("the static push to be unregistered", WAIT, || {
        metric(
            &a,
            r#"shardcast_relays{kind="static_push",state="running"}"#,
        ) == Some(0)
    });
}

#[test]
fn a_blackholed_static_push_costs_the_publisher_and_players_nothing() {
    // Accepts connections and never reads nor answers the handshake.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_addr: SocketAddr = hole.local_addr().unwrap();
    let held = thread::spawn(move || {
        let mut kept: Vec<TcpStream> = Vec::new();
        for conn in hole.incoming().take(4).flatten() {
            kept.push(conn);
        }
        thread::sleep(WAIT);
    });
    let config = static_push_config("hole", &[format!("rtmp://{hole_addr}/live")]);
    let a = start(
        "hole-a",
        &[
            "--config_file",
            config.to_str().unwrap(),
            "--rtmp_noauth",
            "--hls_addr",
            "",
        ],
    );
    let mut player = RtmpClient::connect(a.rtmp_addr(), "live").unwrap();
    player.play("room").unwrap();
    let mut publisher = RtmpClient::connect(a.rtmp_addr(), "live").unwrap();
    publisher.publish("room").unwrap();
    const N: u32 = 300;
    let started = Instant::now();
    publish_frames(&mut publisher, 0, N, 0);
    let got = player.read_media(Duration::from_secs(20), N as usize * 2 + 3);
    let seqs: Vec<u32> = got
        .iter()
        .filter(|m| m.0 == MediaKind::Video)
        .filter_map(|m| frame_seq(&m.2))
        .collect();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "the player lost no frame");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the publisher was not held up: {:?}",
        started.elapsed()
    );
    assert_eq!(
        metric(
            &a,
            r#"shardcast_relays{kind="static_push",state="connecting"}"#
        ),
        Some(1),
        "the push to the blackhole is still trying"
    );
    drop(held);
}
