use super::*;
use std::net::Ipv4Addr;

fn info(role: Role, key: &str) -> SessionInfo {
    SessionInfo {
        role,
        protocol: "rtmp",
        key: key.into(),
        url: format!("rtmp://127.0.0.1:1935/{key}"),
        stream_id: 1,
        remote: "127.0.0.1:50000".into(),
        connected_at: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    }
}

fn figures() -> HubFigures {
    HubFigures::default()
}

#[test]
fn speeds_are_kbit_per_second_over_the_window_and_fall_to_zero_when_idle() {
    let stats = ShardStats::new(0, Duration::from_secs(10));
    let guard = stats.open(info(Role::Publisher, "live/a"));
    let t0 = Instant::now();
    let mut report = stats.tick(t0, figures());
    for s in 1..=5 {
        // 250,000 video bytes and 16,000 audio bytes a second: 2,000 and 128 kbit/s.
        guard.meter().media(MediaKind::Video, 250_000);
        guard.meter().media(MediaKind::Audio, 16_000);
        guard.meter().media(MediaKind::Data, 999);
        report = stats.tick(t0 + Duration::from_secs(s), figures());
    }
    let s = &report.sessions[0];
    assert_eq!((s.video_speed, s.audio_speed), (2_000, 128));
    assert_eq!(
        (s.video_total_bytes, s.audio_total_bytes),
        (1_250_000, 80_000)
    );
    for s in 6..=11 {
        report = stats.tick(t0 + Duration::from_secs(s), figures());
    }
    let s = &report.sessions[0];
    assert_eq!((s.video_speed, s.audio_speed), (0, 0));
    assert_eq!(s.video_total_bytes, 1_250_000);
}

#[test]
fn a_dropped_guard_unlists_its_session() {
    let stats = ShardStats::new(3, Duration::from_secs(10));
    let a = stats.open(info(Role::Publisher, "live/a"));
    let b = stats.open(info(Role::Player, "live/a"));
    let now = Instant::now();
    assert_eq!(stats.tick(now, figures()).sessions.len(), 2);
    drop(a);
    let report = stats.tick(now, figures());
    assert_eq!(report.sessions.len(), 1);
    assert_eq!(report.sessions[0].role, Role::Player);
    assert_eq!(report.sessions[0].shard, 3);
    drop(b);
    assert!(stats.tick(now, figures()).sessions.is_empty());
}

#[test]
fn hls_viewers_are_one_per_stream_and_address_until_they_go_quiet() {
    let stats = ShardStats::new(0, Duration::from_secs(10));
    let key: StreamKey = "live/a".into();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let t0 = Instant::now();
    let url = "http://h/live/a.m3u8";
    stats.hls_request(&key, ip, url, 300, t0);
    stats.hls_request(&key, ip, url, 1_000, t0 + Duration::from_secs(2));
    stats.hls_request(&key, other, url, 300, t0 + Duration::from_secs(2));
    let report = stats.tick(t0 + Duration::from_secs(3), figures());
    let mut totals: Vec<_> = report
        .sessions
        .iter()
        .map(|s| (s.remote.as_str(), s.total_bytes, s.protocol))
        .collect();
    totals.sort();
    assert_eq!(
        totals,
        [("127.0.0.1", 1_300, "hls"), ("127.0.0.2", 300, "hls")]
    );
    assert!(stats
        .tick(t0 + Duration::from_secs(13), figures())
        .sessions
        .is_empty());
}

#[test]
fn livestat_lists_every_shard_with_livego_fields_and_empty_lists() {
    let empty = StatsBoard::new(2);
    let data = livestat(&empty.reports(), None).unwrap();
    assert_eq!(data.to_string(), r#"{"players":[],"publishers":[]}"#);
    assert_eq!(
        livestat(&empty.reports(), Some("live/a")),
        Err(LivestatError::RoomNotFound)
    );

    let board = StatsBoard::new(2);
    let s0 = ShardStats::new(0, Duration::from_secs(10));
    let s1 = ShardStats::new(1, Duration::from_secs(10));
    let _p = s0.open(info(Role::Publisher, "live/a"));
    let _v = s1.open(info(Role::Player, "live/a"));
    let _w = s1.open(info(Role::Player, "live/b"));
    board.publish(s0.tick(Instant::now(), figures()));
    board.publish(s1.tick(Instant::now(), figures()));
    let data = livestat(&board.reports(), None).unwrap();
    assert_eq!(data["publishers"].as_array().unwrap().len(), 1);
    assert_eq!(data["players"].as_array().unwrap().len(), 2);
    let p = &data["publishers"][0];
    for field in [
        "key",
        "url",
        "stream_id",
        "video_total_bytes",
        "video_speed",
        "audio_total_bytes",
        "audio_speed",
        "protocol",
        "shard",
        "remote",
        "connected_at",
    ] {
        assert!(!p[field].is_null(), "{field} missing in {p}");
    }
    assert_eq!(p["connected_at"], "2023-11-14T22:13:20Z");
    assert_eq!(p["shard"], 0);
    let only_a = livestat(&board.reports(), Some("live/a")).unwrap();
    assert_eq!(only_a["players"].as_array().unwrap().len(), 1);
    assert_eq!(only_a["players"][0]["shard"], 1);
}

#[test]
fn metrics_are_prometheus_text() {
    let stats = ShardStats::new(1, Duration::from_secs(10));
    stats.counters.accepted(Proto::Rtmp);
    stats.counters.accepted(Proto::Rtmp);
    stats.counters.closed(Proto::Rtmp);
    stats.counters.bytes_out(Proto::HttpFlv, 1234);
    stats.counters.http_response(Proto::Api, 404);
    let _p = stats.open(info(Role::Publisher, "live/a"));
    let board = StatsBoard::new(2);
    board.publish(stats.tick(
        Instant::now(),
        HubFigures {
            mesh_full: 7,
            ..figures()
        },
    ));
    let text = metrics_text(&board.reports(), &[("pull", "running", 2)]);
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        value.parse::<u64>().unwrap();
        assert!(samples
            .insert(series.to_owned(), value.to_owned())
            .is_none());
    }
    let get = |s: &str| samples.get(s).map(String::as_str);
    assert_eq!(
        get(r#"shardcast_connections{protocol="rtmp",shard="1"}"#),
        Some("1")
    );
    assert_eq!(
        get(r#"shardcast_connections_accepted_total{protocol="rtmp",shard="1"}"#),
        Some("2")
    );
    assert_eq!(
        get(r#"shardcast_sent_bytes_total{protocol="httpflv",shard="1"}"#),
        Some("1234")
    );
    assert_eq!(
        get(r#"shardcast_connections{protocol="rtmp",shard="0"}"#),
        Some("0")
    );
    assert_eq!(
        get(r#"shardcast_http_responses_total{listener="api",status="404",shard="1"}"#),
        Some("1")
    );
    assert_eq!(
        get(r#"shardcast_sessions{role="publisher",protocol="rtmp",shard="1"}"#),
        Some("1")
    );
    assert_eq!(get(r#"shardcast_mesh_full_total{shard="1"}"#), Some("7"));
    assert_eq!(
        get(r#"shardcast_relays{kind="pull",state="running"}"#),
        Some("2")
    );
}

#[test]
fn an_hls_viewer_seen_by_two_shards_is_listed_once() {
    let board = StatsBoard::new(2);
    let key: StreamKey = "live/a".into();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let t0 = Instant::now();
    for shard in 0..2 {
        let s = ShardStats::new(shard, Duration::from_secs(10));
        s.hls_request(&key, ip, "http://h/live/a.m3u8", 1_000, t0);
        board.publish(s.tick(t0, figures()));
    }
    let data = livestat(&board.reports(), None).unwrap();
    let players = data["players"].as_array().unwrap();
    assert_eq!(players.len(), 1, "{data}");
    assert_eq!(players[0]["total_bytes"], 2_000);
}

#[test]
fn codecs_show_in_livestat_and_metrics_with_what_hls_carries() {
    let stats = ShardStats::new(0, Duration::from_secs(10));
    let _p = stats.open(info(Role::Publisher, "live/a"));
    let _q = stats.open(info(Role::Player, "live/a"));
    let _other = stats.open(info(Role::Publisher, "live/b"));
    let mut report = stats.tick(Instant::now(), figures());
    report.streams = vec![
        StreamCodecs {
            key: "live/a".into(),
            video: Some(Codec::Hevc),
            audio: Some(Codec::Opus),
        },
        StreamCodecs {
            key: "live/b".into(),
            video: None,
            audio: None,
        },
    ];
    let data = livestat(&[report.clone()], Some("live/a")).unwrap();
    for s in [&data["publishers"][0], &data["players"][0]] {
        assert_eq!(s["video_codec"], "hevc", "{s}");
        assert_eq!(s["audio_codec"], "opus", "{s}");
        assert_eq!(s["hls"], "video only", "{s}");
    }
    let b = livestat(&[report.clone()], Some("live/b")).unwrap();
    assert!(b["publishers"][0]["video_codec"].is_null());
    let text = metrics_text(&[report], &[]);
    assert!(text.contains(
        "shardcast_stream_codec_info{stream=\"live/a\",track=\"video\",codec=\"hevc\",hls=\"yes\"} 1"
    ));
    assert!(text.contains(
        "shardcast_stream_codec_info{stream=\"live/a\",track=\"audio\",codec=\"opus\",hls=\"no\"} 1"
    ));
    assert!(!text.contains("stream=\"live/b\""));
}

#[test]
fn what_hls_carries() {
    let c = |video, audio| StreamCodecs {
        key: String::new(),
        video,
        audio,
    };
    assert_eq!(c(Some(Codec::Hevc), Some(Codec::Aac)).hls(), "yes");
    assert_eq!(c(Some(Codec::H264), None).hls(), "yes");
    assert_eq!(c(Some(Codec::Hevc), Some(Codec::Opus)).hls(), "video only");
    assert_eq!(c(Some(Codec::Av1), Some(Codec::Aac)).hls(), "audio only");
    assert_eq!(
        c(Some(Codec::Av1), Some(Codec::Opus)).hls(),
        "not available over HLS"
    );
    assert_eq!(c(Some(Codec::Vp9), None).hls(), "not available over HLS");
    assert_eq!(c(Some(Codec::Hevc), Some(Codec::Ac3)).hls(), "yes");
    assert_eq!(c(Some(Codec::Vp9), Some(Codec::Eac3)).hls(), "audio only");
    assert_eq!(c(Some(Codec::Hevc), Some(Codec::Flac)).hls(), "video only");
    assert_eq!(c(None, None).hls(), "not yet known");
}
