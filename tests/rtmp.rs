//! End-to-end RTMP: the real binary with `--shards 2`, driven by ffmpeg/ffprobe and our own
//! RTMP client, asserting what a user would see.

mod common;

use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// Video sequence numbers (not headers) among received media, in arrival order.
fn video_seqs(media: &[MediaMessage]) -> Vec<u32> {
    media
        .iter()
        .filter(|m| m.0 == MediaKind::Video)
        .filter_map(|m| frame_seq(&m.2))
        .collect()
}

#[test]
fn seed_flow_key_push_probe_and_record() {
    require_ffmpeg();
    let media = test_media();
    let server = Server::start("seed", &["--shards", "2"]);
    let key = key_of(&server, "movie");
    let mut pusher = push(&server.rtmp_url(&format!("live/{key}")), &media, true);
    assert!(
        server
            .wait_for_line(|l| l.contains("publish started"), WAIT)
            .is_some(),
        "the publish was accepted"
    );
    let out = server.dir().join("movie.flv");
    let mut recorder = record(&server.rtmp_url("live/movie"), 10, &out);
    let codecs = ffprobe_streams(&server.rtmp_url("live/movie"));
    assert!(codecs.contains(&"h264".to_string()), "{codecs:?}");
    assert!(codecs.contains(&"aac".to_string()), "{codecs:?}");
    assert!(recorder.wait().unwrap().success());
    let (frames, pts) = count_video_frames(&out);
    assert!(
        (285..=315).contains(&frames),
        "10 s at 30 fps holds about 300 frames, got {frames}"
    );
    assert!(
        pts.windows(2).all(|w| w[1] > w[0]),
        "timestamps increase: {pts:?}"
    );
    assert!(pusher.wait().unwrap().success(), "the publisher finished");
}

#[test]
fn wrong_key_is_refused_and_reset_rotates_the_key() {
    require_ffmpeg();
    let media = test_media();
    let server = Server::start("keys", &["--shards", "2"]);
    let key = key_of(&server, "movie");
    let mut watcher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    watcher.play("movie").unwrap();

    let status = push(&server.rtmp_url("live/not-the-key"), &media, false)
        .wait()
        .unwrap();
    assert!(!status.success(), "ffmpeg must fail on a wrong key");
    let refused = RtmpClient::connect(server.rtmp_addr(), "live")
        .unwrap()
        .publish("movie");
    assert_eq!(refused, Err("NetStream.Publish.BadName".to_string()));
    // Both refused publishers are gone: nothing reached the player.
    assert!(watcher.read_media(Duration::from_millis(300), 1).is_empty());

    let (status, body) = api_json(&server, "/control/reset?room=movie");
    assert_eq!(status, 200);
    let new_key = body["data"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    let old = RtmpClient::connect(server.rtmp_addr(), "live")
        .unwrap()
        .publish(&key);
    assert_eq!(old, Err("NetStream.Publish.BadName".to_string()));
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&new_key).unwrap();
    publish_frames(&mut publisher, 0, 30, 0);
    let got = watcher.read_media(WAIT, 63);
    assert_eq!(video_seqs(&got), (0..30).collect::<Vec<_>>());

    let (status, body) = api_json(&server, "/control/delete?room=movie");
    assert_eq!((status, body["data"].as_str()), (200, Some("Ok")));
    let deleted = RtmpClient::connect(server.rtmp_addr(), "live")
        .unwrap()
        .publish(&new_key);
    assert_eq!(deleted, Err("NetStream.Publish.BadName".to_string()));
}

#[test]
fn unknown_app_is_rejected_at_connect() {
    let server = Server::start("apps", &[]);
    let err = RtmpClient::connect(server.rtmp_addr(), "nope").err();
    assert_eq!(err.as_deref(), Some("NetConnection.Connect.Rejected"));
}

#[test]
fn players_on_both_shards_get_every_frame() {
    let server = Server::start("fanout", &["--shards", "2"]);
    let key = key_of(&server, "fan");
    let mut players = Vec::new();
    let mut shards = [0usize; 2];
    // The kernel spreads connections over the shards; keep adding players until both shards
    // serve some (bounded: the chance of 24 landing on one shard is 2^-23).
    for _ in 0..24 {
        let from = server.line_count();
        let mut p = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
        p.play("fan").unwrap();
        let line = server
            .wait_for_line_from(from, |l| l.contains("play started"), WAIT)
            .expect("play logged");
        shards[shard_of(&line)] += 1;
        players.push(p);
        if players.len() >= 6 && shards.iter().all(|&n| n > 0) {
            break;
        }
    }
    assert!(
        shards.iter().all(|&n| n > 0),
        "both shards serve players: {shards:?}"
    );
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 150, 0);
    for (i, p) in players.iter_mut().enumerate() {
        // metadata + 2 headers + 150 video + 150 audio
        let got = p.read_media(WAIT, 303);
        assert_eq!(got.len(), 303, "player {i} got every message");
        assert_eq!(video_seqs(&got), (0..150).collect::<Vec<_>>(), "player {i}");
        let ts: Vec<u32> = got.iter().map(|m| m.1).collect();
        assert!(
            ts[3..].windows(2).all(|w| w[1] >= w[0]),
            "player {i}: {ts:?}"
        );
    }
}

#[test]
fn late_joiners_start_with_headers_then_the_cached_keyframe() {
    let server = Server::start("late", &["--shards", "2"]);
    let key = key_of(&server, "late");
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    // Keyframes at 0 and 30; frames 30..45 form the current GOP.
    publish_frames(&mut publisher, 0, 45, 0);
    // Wait until the home has everything: a watcher sees the last frame.
    let mut watcher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    watcher.play("late").unwrap();
    let seen = watcher.read_media(WAIT, 3 + 2 * 15);
    assert_eq!(video_seqs(&seen).last(), Some(&44));
    for joiner in 0..4 {
        let mut p = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
        p.play("late").unwrap();
        let got = p.read_media(WAIT, 3 + 2 * 15);
        assert_eq!(got[0].0, MediaKind::Data, "joiner {joiner}: metadata first");
        let videos: Vec<&MediaMessage> = got.iter().filter(|m| m.0 == MediaKind::Video).collect();
        assert_eq!(
            videos[0].2,
            avc_sequence_header(),
            "joiner {joiner}: AVC header"
        );
        assert!(
            is_keyframe(&videos[1].2),
            "joiner {joiner}: then a keyframe"
        );
        assert_eq!(
            frame_seq(&videos[1].2),
            Some(30),
            "joiner {joiner}: of the cached GOP"
        );
        assert_eq!(video_seqs(&got), (30..45).collect::<Vec<_>>());
        let audio_first = got.iter().position(|m| m.0 == MediaKind::Audio).unwrap();
        assert_eq!(got[audio_first].2, aac_sequence_header());
    }
}

#[test]
fn a_player_that_comes_first_plays_when_the_publisher_arrives() {
    require_ffmpeg();
    let media = test_media();
    let server = Server::start("early", &["--shards", "2"]);
    let key = key_of(&server, "early");
    let out = server.dir().join("early.flv");
    let mut recorder = record(&server.rtmp_url("live/early"), 4, &out);
    assert!(server
        .wait_for_line(|l| l.contains("play started"), WAIT)
        .is_some());
    let mut pusher = push(&server.rtmp_url(&format!("live/{key}")), &media, true);
    assert!(recorder.wait().unwrap().success());
    let (frames, pts) = count_video_frames(&out);
    assert!(frames >= 100, "4 s of video, got {frames}");
    assert!(pts.windows(2).all(|w| w[1] > w[0]));
    let _ = pusher.kill();
    let _ = pusher.wait();
}

#[test]
fn a_new_publisher_replaces_the_old_and_players_carry_on() {
    let server = Server::start("replace", &["--shards", "2"]);
    let key = key_of(&server, "swap");
    let mut player = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    player.play("swap").unwrap();
    let mut first = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    first.publish(&key).unwrap();
    publish_frames(&mut first, 0, 30, 5000);
    let before = player.read_media(WAIT, 63);
    assert_eq!(video_seqs(&before), (0..30).collect::<Vec<_>>());
    let last_ts = before.iter().map(|m| m.1).max().unwrap();

    let mut second = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    second.publish(&key).unwrap();
    assert!(first.wait_closed(WAIT), "the old publisher is disconnected");
    publish_frames(&mut second, 100, 30, 0);
    let after = player.read_media(WAIT, 63);
    assert_eq!(video_seqs(&after), (100..130).collect::<Vec<_>>());
    let ts: Vec<u32> = after.iter().map(|m| m.1).collect();
    assert!(
        ts[0] > last_ts,
        "timestamps continue: {last_ts} then {ts:?}"
    );
    assert!(ts[3..].windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn unpublish_is_announced_and_players_wait_for_the_next_publisher() {
    let server = Server::start("notify", &["--shards", "2"]);
    let key = key_of(&server, "again");
    let mut player = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    player.play("again").unwrap();
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 10, 0);
    assert_eq!(
        video_seqs(&player.read_media(WAIT, 23)),
        (0..10).collect::<Vec<_>>()
    );
    publisher.delete_stream().unwrap();
    let notified = player.wait_for(WAIT, |e| match e {
        ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify" => Some(()),
        _ => None,
    });
    assert!(notified.is_some(), "UnpublishNotify arrives");
    drop(publisher);
    let mut next = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    next.publish(&key).unwrap();
    publish_frames(&mut next, 50, 10, 0);
    let media = player.read_media(WAIT, 3 + 2 * 10);
    assert_eq!(video_seqs(&media), (50..60).collect::<Vec<_>>());
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = Server::start("term", &["--shards", "2"]);
    let key = key_of(&server, "bye");
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    let mut player = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    player.play("bye").unwrap();
    server.signal("TERM");
    let status = server.wait_exit(WAIT).expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(player.wait_closed(WAIT), "connections are closed");
}

#[test]
fn librtmp_players_work() {
    require_ffmpeg();
    let media = test_media();
    let server = Server::start("librtmp", &["--shards", "2"]);
    let key = key_of(&server, "lib");
    let mut pusher = push(&server.rtmp_url(&format!("live/{key}")), &media, true);
    assert!(server
        .wait_for_line(|l| l.contains("publish started"), WAIT)
        .is_some());
    let out = server.dir().join("rtmpdump.flv");
    // rtmpdump is librtmp's own client; -B stops after 4 s of media.
    let status = std::process::Command::new("rtmpdump")
        .args(["-q", "--live", "-B", "4", "-r"])
        .arg(server.rtmp_url("live/lib"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("rtmpdump is installed by scripts/setup");
    assert!(
        status.success() || status.code() == Some(2),
        "rtmpdump: {status:?}"
    );
    let (frames, pts) = count_video_frames(&out);
    assert!(frames >= 90, "about 4 s of video, got {frames}");
    assert!(pts.windows(2).all(|w| w[1] > w[0]));
    let _ = pusher.kill();
    let _ = pusher.wait();
}

#[test]
fn a_silent_publisher_is_closed_and_players_are_told() {
    let server = Server::start("silent", &["--shards", "2", "--read_timeout", "2"]);
    let key = key_of(&server, "quiet");
    let mut player = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    player.play("quiet").unwrap();
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 5, 0);
    // The publisher now sends nothing: read_timeout closes it.
    assert!(publisher.wait_closed(WAIT), "silent publisher disconnected");
    assert!(server
        .wait_for_line(
            |l| l.contains("closing") && l.contains("read_timeout"),
            WAIT
        )
        .is_some());
    let told = player.wait_for(WAIT, |e| match e {
        ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify" => Some(()),
        _ => None,
    });
    assert!(told.is_some(), "the player hears the stream ended");
}

#[test]
fn a_player_waits_for_a_publisher_only_play_wait_timeout() {
    let server = Server::start("wait", &["--play_wait_timeout", "2"]);
    let mut player = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    player.play("nobody").unwrap();
    assert!(player.wait_closed(WAIT), "closed after play_wait_timeout");
    assert!(server
        .wait_for_line(|l| l.contains("play_wait_timeout"), WAIT)
        .is_some());
}

#[test]
fn every_configured_app_counts_and_disabled_apps_are_refused() {
    let server_dir = std::env::temp_dir().join(format!("shardcast-apps-{}", std::process::id()));
    std::fs::create_dir_all(&server_dir).unwrap();
    let file = server_dir.join("apps.toml");
    std::fs::write(
        &file,
        "[[server]]\nappname = \"live\"\nlive = true\nflv = true\nhls = true\napi = true\n\n\
         [[server]]\nappname = \"studio\"\nlive = true\n\n\
         [[server]]\nappname = \"off\"\nlive = false\n",
    )
    .unwrap();
    let server = Server::start("apps2", &["--config_file", file.to_str().unwrap()]);
    let key = key_of(&server, "cam");
    let mut player = RtmpClient::connect(server.rtmp_addr(), "studio").unwrap();
    player.play("cam").unwrap();
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "studio").unwrap();
    publisher.publish(&key).unwrap();
    publish_frames(&mut publisher, 0, 5, 0);
    assert_eq!(
        video_seqs(&player.read_media(WAIT, 13)),
        (0..5).collect::<Vec<_>>()
    );
    let off = RtmpClient::connect(server.rtmp_addr(), "off").err();
    assert_eq!(off.as_deref(), Some("NetConnection.Connect.Rejected"));
    let _ = std::fs::remove_dir_all(&server_dir);
}
