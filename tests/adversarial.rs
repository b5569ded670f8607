//! The adversarial suite of issue 6, end to end: each attack runs while a healthy publisher and
//! player stream sequence-numbered frames, and must be refused or closed (with the RTMP status
//! or HTTP status a client sees), cost the healthy player no frame, and leave the server up.
//!
//! Here: a 0xFFFFFF-byte message, chunk size 1, chunk stream id churn, interleaved messages
//! that never complete, apps that are not live, play and publish on one connection, 1,000
//! publisher connect/disconnect cycles; slowloris, 10,000- and 20,000-byte URLs, pipelined
//! garbage and `..`/`%2e%2e` paths on the HTTP-FLV, HLS and API listeners; forged, `alg: none`
//! and expired JWTs; 2,000 idle RTMP connections (and 300 per HTTP listener).
//!
//! In tests/hostile.rs, also under a healthy stream: garbage and truncated handshakes, chunk
//! sizes 0 and 2^31-1, a message length over `max_message_size`, AMF nested 10,000 deep,
//! mistyped commands, silent connections. Without a stream: the JWT reasons (tests/jwt.rs),
//! statics traversal and symlinks (tests/statics.rs), the API's hostile HTTP (tests/api.rs).

mod common;

use bytes::BytesMut;
use common::hostile::*;
use common::http::read_response;
use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value as Json};
use shardcast::rtmp::amf::{encode_amf0, Value};
use shardcast::rtmp::chunk::encode_message;
use shardcast::rtmp::client::ClientConfig;
use shardcast::rtmp::control::{msg_type, write_set_chunk_size};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Slack on top of a server timeout (the watchdogs tick every 250 ms; CI machines are slow).
const MARGIN: Duration = Duration::from_secs(2);
/// An attack the server detects on arrival must close its connection within this.
const PROMPT: Duration = Duration::from_secs(2);
/// `--idle_timeout` of the RTMP scenario, in seconds.
const IDLE_TIMEOUT: u64 = 3;
/// `--http_header_timeout` of the HTTP scenario, in seconds.
const HEADER_TIMEOUT: u64 = 2;

/// Asserts the server process is still running and logged no panic.
fn assert_alive(server: &mut Server) {
    assert!(
        server.wait_exit(Duration::from_millis(50)).is_none(),
        "the server is still running"
    );
    assert!(
        !server.lines().iter().any(|l| l.contains("panicked")),
        "no panic in the server"
    );
}

/// Asserts the server logged the close of `peer` with `reason` in it.
fn assert_closed_for(server: &Server, name: &str, peer: SocketAddr, reason: &str) {
    let line = closing_line(server, peer).unwrap_or_else(|| panic!("{name}: no `closing` line"));
    assert!(
        line.contains(reason),
        "{name}: expected {reason:?} in {line}"
    );
}

/// `apps.toml` with app `live` (everything on) and app `vod`, configured but not live.
fn apps_config(server_name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{server_name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("apps.toml");
    std::fs::write(
        &file,
        "[[server]]\nappname = \"live\"\nlive = true\nflv = true\nhls = true\napi = true\n\n\
         [[server]]\nappname = \"vod\"\nlive = false\n",
    )
    .unwrap();
    file
}

/// Chunk size 1 is legal: a publisher that sets it and sends every message in 1-byte chunks
/// is served, and its own player gets every frame.
fn chunk_size_one(server: &Server) {
    let addr = server.rtmp_addr();
    let key = key_of(server, "tiny");
    let mut player = RtmpClient::connect(addr, "live").unwrap();
    player.play("tiny").unwrap();
    let mut cfg = ClientConfig::new("live", &format!("rtmp://{addr}/live"));
    cfg.chunk_size = 1;
    let mut publisher = RtmpClient::connect_with(addr, cfg).expect("connect in 1-byte chunks");
    publisher.publish(&key).expect("publish in 1-byte chunks");
    publish_frames(&mut publisher, 0, 30, 0);
    let media = player.read_media(WAIT, 3 + 60);
    assert_eq!(
        seqs(&media, MediaKind::Video),
        (0..30).collect::<Vec<_>>(),
        "chunk size 1: every frame"
    );
}

/// A message at the 24-bit maximum length (0xFFFFFF bytes, allowed by this scenario's
/// `--max_message_size`): a `releaseStream` whose stream name is an AMF0 long string filling
/// it. It is answered, and the connection goes on serving (createStream).
fn max_length_message(server: &Server) {
    const MAX: usize = 0xFF_FFFF;
    let (mut client, _) = connected(server.rtmp_addr());
    let mut body = Vec::new();
    encode_amf0(
        &["releaseStream".into(), 9.0.into(), Value::Null],
        &mut body,
    );
    let text = MAX - body.len() - 5;
    body.push(0x0c); // AMF0 long string
    body.extend_from_slice(&(text as u32).to_be_bytes());
    body.resize(MAX, b'x');
    let mut msg = BytesMut::new();
    write_set_chunk_size(&mut msg, 65536);
    encode_message(&mut msg, 65536, 3, 0, msg_type::COMMAND_AMF0, 0, &body);
    client.raw_stream().write_all(&msg).unwrap();
    let started = Instant::now();
    let answered = client.wait_for(WAIT, |e| match e {
        ClientEvent::Command { name, .. } if name == "_result" => Some(()),
        _ => None,
    });
    assert!(answered.is_some(), "the 16 MiB command is answered");
    client
        .create_stream()
        .expect("the connection is still served after a 16 MiB message");
    eprintln!(
        "a 0xFFFFFF-byte command answered in {:?}",
        started.elapsed()
    );
}

/// Chunk stream id churn: one small complete message on each of 300 new chunk stream ids
/// (3-byte basic headers); past 256 the connection is closed.
fn chunk_stream_churn(server: &Server) {
    let (mut client, peer) = connected(server.rtmp_addr());
    let mut out = BytesMut::new();
    for i in 0..300u32 {
        let ack = 1000u32.to_be_bytes();
        encode_message(&mut out, CLIENT_CHUNK, 400 + i, 0, msg_type::ACK, 0, &ack);
    }
    let _ = client.raw_stream().write_all(&out);
    assert!(client.wait_closed(PROMPT), "churn: closed");
    assert_closed_for(
        server,
        "chunk stream churn",
        peer,
        "peer opened more than 256 chunk streams",
    );
}

/// Interleaved messages that never complete: five 8 MiB video messages on five chunk streams,
/// 64 KiB chunks round robin, none finished; past `max_pending_bytes` (32 MiB) the connection
/// is closed, long before the 40 MiB they announce.
fn interleaved_incomplete(server: &Server) {
    let (mut client, peer) = connected(server.rtmp_addr());
    const CHUNK: usize = 64 * 1024;
    const LEN: u32 = 8 << 20;
    let mut out = BytesMut::new();
    write_set_chunk_size(&mut out, CHUNK as u32);
    let payload = vec![0x27u8; CHUNK];
    let csids = 4u8..9;
    for csid in csids.clone() {
        out.extend_from_slice(&fmt0_header(csid, LEN, msg_type::VIDEO, 1));
        out.extend_from_slice(&payload);
    }
    let stream = client.raw_stream();
    let mut written = 0usize;
    let mut cut = stream.write_all(&out).is_err();
    // Each round adds 5 chunks; 127 more rounds complete every message, so stop before.
    for _ in 0..120 {
        if cut {
            break;
        }
        let mut round = Vec::with_capacity(5 * (CHUNK + 1));
        for csid in csids.clone() {
            round.push(0xc0 | csid);
            round.extend_from_slice(&payload);
        }
        cut = stream.write_all(&round).is_err();
        written += round.len();
    }
    assert!(client.wait_closed(PROMPT), "incomplete messages: closed");
    assert!(written < 40 << 20);
    assert_closed_for(
        server,
        "interleaved incomplete messages",
        peer,
        "bytes of incomplete messages exceed the maximum 33554432",
    );
}

/// A partial message, then silence: closed at `idle_timeout`, not kept forever.
fn incomplete_then_silent(server: &Server) -> (RtmpClient, SocketAddr, Instant) {
    let (mut client, peer) = connected(server.rtmp_addr());
    let mut out = fmt0_header(9, 100_000, msg_type::VIDEO, 1);
    out.extend_from_slice(&[0x27; 1000]);
    client.raw_stream().write_all(&out).unwrap();
    (client, peer, Instant::now())
}

/// `connect` to app `vod` (configured, live off) and to an unknown app: `_error` with
/// NetConnection.Connect.Rejected, then closed; a publish naming `vod/<key>` on app `live` is
/// refused with BadName.
fn apps_that_are_not_live(server: &Server, key: &str) {
    let addr = server.rtmp_addr();
    for app in ["vod", "nope"] {
        let mut stream = raw_handshake(addr);
        let peer = stream.local_addr().unwrap();
        let props = Value::object([
            ("app", Value::from(app)),
            (
                "tcUrl",
                Value::from(format!("rtmp://{addr}/{app}").as_str()),
            ),
        ]);
        let msg = command(&["connect".into(), 1.0.into(), props], 0, DEFAULT_CHUNK);
        stream.write_all(&msg).unwrap();
        let answer = read_until_closed(&mut stream, PROMPT).expect("closed after the refusal");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            contains(&answer, b"_error") && contains(&answer, b"NetConnection.Connect.Rejected"),
            "{app}: {text}"
        );
        let description = format!("application `{app}` not found");
        assert!(contains(&answer, description.as_bytes()), "{app}: {text}");
        let reason = format!("connect to unknown or disabled app `{app}`");
        assert_closed_for(server, app, peer, &reason);
    }
    let (mut client, peer) = connected(addr);
    assert_eq!(
        client.publish(&format!("vod/{key}")),
        Err("NetStream.Publish.BadName".to_owned())
    );
    assert!(client.wait_closed(PROMPT), "a refused publisher is closed");
    assert_closed_for(server, "publish to vod/", peer, "refused: invalid key");
}

/// Play and publish on one connection: the second role is refused with an error status
/// (the first goes on), including a player trying to publish the healthy stream's own key.
fn play_and_publish_on_one_connection(server: &Server, healthy_key: &str) {
    let addr = server.rtmp_addr();
    let key = key_of(server, "both");
    let mut publisher = RtmpClient::connect(addr, "live").unwrap();
    let publishing = publisher.publish(&key).unwrap();
    assert_eq!(
        publisher.play("healthy"),
        Err("NetStream.Play.Failed".to_owned()),
        "a publisher cannot also play"
    );
    assert!(!publisher.is_closed());

    let mut player = RtmpClient::connect(addr, "live").unwrap();
    player.play("healthy").unwrap();
    assert_eq!(
        player.publish(healthy_key),
        Err("NetStream.Publish.BadConnection".to_owned()),
        "a player cannot also publish"
    );
    // The refused publish took nothing: the player still plays the healthy stream.
    let media = player.read_media(WAIT, 8);
    assert!(
        !seqs(&media, MediaKind::Video).is_empty(),
        "the player still plays: {media:?}"
    );
    // And the first publisher still publishes on its stream.
    let mut watcher = RtmpClient::connect(addr, "live").unwrap();
    watcher.play("both").unwrap();
    publisher
        .session()
        .send_media(publishing, MediaKind::Video, 0, &avc_sequence_header());
    publisher.flush().unwrap();
    publisher
        .session()
        .send_media(publishing, MediaKind::Video, 33, &avc_frame(true, 7));
    publisher.flush().unwrap();
    let got = watcher.read_media(WAIT, 2);
    assert_eq!(seqs(&got, MediaKind::Video), [7], "{got:?}");
}

/// 1,000 publisher connect/publish/disconnect cycles, 4 at a time: each publish ends on the
/// server (one `publish ended` each), memory does not creep and it takes seconds.
fn publisher_churn(server: &Server) {
    const THREADS: u32 = 4;
    const CYCLES: u32 = 250;
    let addr = server.rtmp_addr();
    let keys: Vec<String> = (0..THREADS)
        .map(|t| key_of(server, &format!("churn{t}")))
        .collect();
    let before = server.rss_kib();
    let started = Instant::now();
    let workers: Vec<_> = keys
        .into_iter()
        .map(|key| {
            thread::spawn(move || {
                for i in 0..CYCLES {
                    let mut p = RtmpClient::connect(addr, "live")
                        .unwrap_or_else(|e| panic!("cycle {i}: connect: {e}"));
                    p.publish(&key)
                        .unwrap_or_else(|e| panic!("cycle {i}: publish: {e}"));
                    p.send_video(0, &avc_sequence_header()).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("every cycle connects and publishes");
    }
    let took = started.elapsed();
    let ended = |server: &Server| {
        server
            .lines()
            .iter()
            .filter(|l| l.contains("stream=live/churn") && l.contains("publish ended"))
            .count()
    };
    let deadline = Instant::now() + WAIT;
    while ended(server) < (THREADS * CYCLES) as usize && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        ended(server),
        (THREADS * CYCLES) as usize,
        "every publish ended"
    );
    let growth = server.rss_kib().saturating_sub(before);
    eprintln!("publisher churn: 1000 cycles in {took:?}, RSS growth {growth} KiB");
    assert!(took < Duration::from_secs(60), "1,000 cycles took {took:?}");
    assert!(growth < 32 * 1024, "RSS grew by {growth} KiB");
    // `/stat/livestat` shows each shard's report of its last tick (once a second).
    let listed = || {
        let (status, body) = api_json(server, "/stat/livestat");
        assert_eq!(status, 200);
        body["data"]["publishers"]
            .as_array()
            .expect("publishers")
            .iter()
            .filter(|p| p["key"].as_str().unwrap_or("").starts_with("live/churn"))
            .count()
    };
    let deadline = Instant::now() + WAIT;
    while listed() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed(), 0, "no churn publisher is left listed");
}

#[test]
fn rtmp_abuse_is_refused_while_a_stream_plays() {
    let config = apps_config("adv-rtmp");
    let mut server = Server::start(
        "adv-rtmp",
        &[
            "--config_file",
            config.to_str().unwrap(),
            "--shards",
            "2",
            "--idle_timeout",
            &IDLE_TIMEOUT.to_string(),
            // The 24-bit maximum a chunk header can announce.
            "--max_message_size",
            "16777215",
        ],
    );
    let _ = std::fs::remove_dir_all(config.parent().unwrap());
    let addr = server.rtmp_addr();
    let key = key_of(&server, "healthy");
    let healthy = HealthyStream::start(addr, "healthy", &key);

    let (mut silent, silent_peer, silent_since) = incomplete_then_silent(&server);
    max_length_message(&server);
    chunk_size_one(&server);
    chunk_stream_churn(&server);
    interleaved_incomplete(&server);
    apps_that_are_not_live(&server, &key);
    play_and_publish_on_one_connection(&server, &key);
    publisher_churn(&server);

    let left = (silent_since + Duration::from_secs(IDLE_TIMEOUT) + MARGIN)
        .saturating_duration_since(Instant::now());
    assert!(
        silent.wait_closed(left),
        "a partial message then silence is closed within idle_timeout"
    );
    let line = closing_line(&server, silent_peer).expect("the silent close is logged");
    assert!(
        line.contains("idle connection timed out") || line.contains("(idle_timeout)"),
        "{line}"
    );

    healthy.finish();
    assert_alive(&mut server);
}

/// One HTTP exchange on a new connection: `raw` written at once, everything read until the
/// server closes; the responses in it, in order: `(status, body)`.
fn exchange_all(addr: SocketAddr, raw: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut stream = tcp(addr);
    let _ = stream.write_all(raw);
    let answer = read_until_closed(&mut stream, WAIT).expect("the server closes");
    let mut rest = &answer[..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut resp = read_response(&mut rest, false).expect("an HTTP response");
        let body = resp.read_body().expect("its body");
        out.push((resp.status, body));
    }
    out
}

/// Slowloris: a request head at one byte per second; the server answers 408 and closes when
/// `http_header_timeout` runs out. Returns how long it stayed open.
fn slowloris(addr: SocketAddr, target: &str) -> Duration {
    let mut stream = tcp(addr);
    let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n\r\n");
    let start = Instant::now();
    let limit = Duration::from_secs(HEADER_TIMEOUT) + MARGIN;
    let mut answer = None;
    for (i, byte) in head.as_bytes().chunks(1).enumerate() {
        if stream.write_all(byte).is_err() {
            break;
        }
        // The wait for the close is also the pacing: one byte per second, the second byte
        // half a second after the first, so that no byte lands as the timeout fires (a
        // server closing with a byte unread resets the connection, and the reset may discard
        // its 408 before we read it).
        let pause = Duration::from_millis(if i == 0 { 500 } else { 1000 });
        if let Some(got) = read_until_closed(&mut stream, pause) {
            answer = Some(got);
            break;
        }
        assert!(start.elapsed() < limit, "{addr}: open after {limit:?}");
    }
    let waited = start.elapsed();
    let answer = answer.unwrap_or_else(|| {
        read_until_closed(&mut stream, limit.saturating_sub(waited)).expect("closed in time")
    });
    let waited = start.elapsed();
    let resp = read_response(&answer[..], false).expect("an answer before the close");
    assert_eq!(resp.status, 408, "{addr}{target}");
    assert!(
        waited >= Duration::from_secs(HEADER_TIMEOUT) - Duration::from_millis(300),
        "closed by the header timeout, not earlier: {waited:?}"
    );
    waited
}

#[test]
fn http_abuse_on_every_listener_while_a_stream_plays() {
    let mut server = Server::start(
        "adv-http",
        &[
            "--shards",
            "2",
            "--http_header_timeout",
            &HEADER_TIMEOUT.to_string(),
        ],
    );
    std::fs::write(server.dir().join("secret.m3u8"), "#EXTM3U\n# secret\n").unwrap();
    std::fs::write(server.dir().join("secret.flv"), "FLV secret").unwrap();
    let key = key_of(&server, "healthy");
    let healthy = HealthyStream::start(server.rtmp_addr(), "healthy", &key);
    let (flv, hls, api) = (server.httpflv_addr(), server.hls_addr(), server.api_addr());
    let listeners = [
        ("httpflv", flv, "/live/healthy.flv"),
        ("hls", hls, "/live/healthy.m3u8"),
        ("api", api, "/control/get?room=healthy"),
    ];

    // Slowloris on the three listeners at once, while the rest runs.
    let slow: Vec<_> = listeners
        .iter()
        .map(|&(_, addr, target)| thread::spawn(move || slowloris(addr, target)))
        .collect();

    for (name, addr, target) in listeners {
        // A 10,000-byte URL fits the default 16 KiB head: an ordinary 4xx, promptly.
        let long = format!("{target}{}", "a".repeat(10_000));
        let replies = exchange_all(
            addr,
            format!("GET {long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(replies.len(), 1, "{name}");
        assert!(
            (400..500).contains(&replies[0].0),
            "{name}: {}",
            replies[0].0
        );
        // A 20,000-byte one does not: 414.
        let longer = format!(
            "GET {target}{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(20_000)
        );
        let replies = exchange_all(addr, longer.as_bytes());
        assert_eq!(replies.len(), 1, "{name}");
        assert_eq!(replies[0].0, 414, "{name}");

        // Pipelined garbage: a good request answered first, then 400 and close.
        let probe = match name {
            "api" => target,
            _ => "/live/nothing-here.m3u8",
        };
        let pipelined = format!(
            "GET {probe} HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\x02\x00 \r\n garbage\r\n\r\n\
             GET {probe} HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let replies = exchange_all(addr, pipelined.as_bytes());
        // After its answer the server either closes (the streaming listeners end a
        // connection after an error) or reads on and refuses the garbage; never more.
        let expected_first = if name == "api" { 200 } else { 404 };
        let statuses: Vec<u16> = replies.iter().map(|r| r.0).collect();
        assert!(
            statuses == [expected_first] || statuses == [expected_first, 400],
            "{name}: answered, then refused or closed: {statuses:?}"
        );
        if name == "api" {
            let envelope: Json = serde_json::from_slice(&replies[0].1).unwrap();
            assert_eq!(envelope["data"], key.as_str(), "the same key, unchanged");
        }

        // `..` and its encodings: refused (4xx), nothing outside the tree served.
        for path in [
            "/../secret.m3u8",
            "/live/../secret.m3u8",
            "/live/../../secret.flv",
            "/%2e%2e/secret.m3u8",
            "/live/%2e%2e/secret.flv",
            "/live/%2e%2e%2fsecret.m3u8",
            "/live/..%2f..%2fsecret.flv",
            "/%2E%2E/%2E%2E/etc/passwd",
            "/statics/../secret.m3u8",
            "/statics/%2e%2e/secret.flv",
            "/live/..%5csecret.m3u8",
        ] {
            let (status, _, body) = http_get(addr, path);
            assert!((400..500).contains(&status), "{name} {path}: {status}");
            assert!(!contains(&body, b"secret"), "{name} {path}: leaked");
        }
    }

    for (t, (name, ..)) in slow.into_iter().zip(listeners) {
        let waited = t.join().expect("slowloris answered 408 in time");
        eprintln!("slowloris on {name}: closed after {waited:?}");
    }
    // Every listener still serves.
    let (status, _, _) = http_get(hls, "/live/healthy.m3u8");
    assert!(status == 200 || status == 404, "hls answers: {status}");
    let mut resp = http_open(flv, "GET", "/live/healthy.flv", &[]).expect("HTTP-FLV still plays");
    assert_eq!(resp.status, 200);
    let mut flv_head = [0u8; 13];
    resp.body.read_exact(&mut flv_head).expect("an FLV header");
    assert_eq!(&flv_head[..4], b"FLV\x01");
    assert_eq!(key_of(&server, "healthy"), key);

    healthy.finish();
    assert_alive(&mut server);
}

const SECRET: &str = "an adversarial secret of 32+ bytes";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: &Json) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign a token")
}

fn b64(v: &Json) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `GET target` with `Authorization: Bearer <token>`: status and the envelope's `data`.
fn api_call(addr: SocketAddr, target: &str, token: &str) -> (u16, Json) {
    let auth = format!("Bearer {token}");
    let mut resp = http_open(addr, "GET", target, &[("Authorization", &auth)]).unwrap();
    let body = resp.read_body().unwrap();
    let json: Json = serde_json::from_slice(&body).unwrap();
    (resp.status, json["data"].clone())
}

#[test]
fn forged_tokens_are_refused_while_a_stream_plays() {
    let mut server = Server::start("adv-jwt", &["--shards", "2", "--jwt.secret", SECRET]);
    let api = server.api_addr();
    let valid = hs256(&json!({"sub": "ops", "exp": now() + 600}));
    let (status, key) = api_call(api, "/control/get?room=healthy", &valid);
    assert_eq!(status, 200);
    let key = key.as_str().unwrap().to_owned();
    let healthy = HealthyStream::start(server.rtmp_addr(), "healthy", &key);

    let admin = json!({"sub": "root", "admin": true, "exp": now() + 600});
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&admin)
    );
    let mut parts: Vec<&str> = valid.split('.').collect();
    let forged_claims = b64(&admin);
    parts[1] = &forged_claims;
    let tampered = parts.join(".");
    let expired = hs256(&json!({"sub": "ops", "exp": now() - 3600}));
    let cases = [
        (&alg_none, "'none' signature type is not allowed"),
        (&tampered, "signature is invalid"),
        (&expired, "Token is expired"),
    ];
    for (token, why) in cases {
        for target in [
            "/control/reset?room=healthy",
            "/control/delete?room=healthy",
            "/control/get?room=stolen",
        ] {
            assert_eq!(
                api_call(api, target, token),
                (403, Json::from(why)),
                "{target} with {token}"
            );
            let query = format!("{target}&jwt={token}");
            let mut resp = http_open(api, "GET", &query, &[]).unwrap();
            assert_eq!(resp.status, 403, "{query}");
            resp.read_body().unwrap();
        }
    }
    // Nothing above changed a key: the healthy one stands, `stolen` was never created.
    assert_eq!(
        api_call(api, "/control/get?room=healthy", &valid),
        (200, Json::from(key.as_str()))
    );
    assert_eq!(
        api_call(api, "/control/delete?room=stolen", &valid),
        (404, Json::from("room not found"))
    );

    healthy.finish();
    assert_alive(&mut server);
}

/// `--handshake_timeout`, `--http_header_timeout` and `--http_keepalive_timeout` of the idle
/// scenario, in seconds.
const IDLE_BOUND: u64 = 2;
/// Idle RTMP connections, and idle connections on each HTTP listener.
const IDLE_RTMP: usize = 2000;
const IDLE_HTTP: usize = 300;
/// `--max_connections` (per shard per listener) of the idle scenario: with 2 shards, fewer
/// than `IDLE_RTMP` fit, so some are refused at once and the rest time out.
const IDLE_MAX_CONNECTIONS: &str = "600";

/// `n` connections to `addr` that never send a byte, opened from 4 threads; each with the
/// instant it was opened.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<(TcpStream, Instant)> {
    let workers: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                (t..n)
                    .step_by(4)
                    .map(|_| (tcp(addr), Instant::now()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect()
}

/// The sum over shards of metric `name` with label `protocol="<proto>"` in `/metrics`.
fn metric(server: &Server, name: &str, proto: &str) -> u64 {
    metric_sum(server, name, &[&format!("protocol=\"{proto}\"")])
}

#[test]
fn two_thousand_idle_connections_are_closed_in_time_with_bounded_memory() {
    let bound = IDLE_BOUND.to_string();
    let mut server = Server::start(
        "adv-idle",
        &[
            "--shards",
            "2",
            "--max_connections",
            IDLE_MAX_CONNECTIONS,
            "--handshake_timeout",
            &bound,
            "--http_header_timeout",
            &bound,
            "--http_keepalive_timeout",
            &bound,
            // Info, not debug: 2,600 connections would log 10,000 lines.
            "--level",
            "info",
        ],
    );
    let key = key_of(&server, "healthy");
    let healthy = HealthyStream::start(server.rtmp_addr(), "healthy", &key);
    let before = server.rss_kib();
    // The peak, sampled while the idle connections come and go.
    let pid = server.pid();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(Ordering::SeqCst) {
                peak = peak.max(rss_kib(pid));
                thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };

    let started = Instant::now();
    let mut idle = open_idle(server.rtmp_addr(), IDLE_RTMP);
    for addr in [server.httpflv_addr(), server.hls_addr(), server.api_addr()] {
        idle.extend(open_idle(addr, IDLE_HTTP));
    }
    let opened = started.elapsed();

    let limit = Duration::from_secs(IDLE_BOUND) + MARGIN;
    let mut slowest = Duration::ZERO;
    for (stream, since) in &mut idle {
        let left = (*since + limit).saturating_duration_since(Instant::now());
        let answer = read_until_closed(stream, left);
        let answer = answer.unwrap_or_else(|| panic!("an idle connection open after {limit:?}"));
        slowest = slowest.max(since.elapsed());
        // HTTP listeners may answer 408 to an idle connection; RTMP sends nothing.
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
            "{answer:?}"
        );
    }
    let closed_all = started.elapsed();
    sampling.store(false, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    let after = server.rss_kib();
    // `/metrics` shows each shard's report of its last tick (once a second).
    let deadline = Instant::now() + WAIT;
    let mut refused = metric(&server, "shardcast_connections_refused_total", "rtmp");
    while refused == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        refused = metric(&server, "shardcast_connections_refused_total", "rtmp");
    }
    let growth = peak.saturating_sub(before);
    eprintln!(
        "idle: {} connections opened in {opened:?}, all closed after {closed_all:?} \
         (slowest {slowest:?} after its open); {refused} RTMP refused at max_connections; \
         RSS {before} KiB before, {peak} KiB with them open, {after} KiB after",
        idle.len()
    );
    assert!(
        refused > 0 || opened > Duration::from_secs(IDLE_BOUND),
        "beyond max_connections some are refused at once"
    );
    assert!(growth < 64 * 1024, "RSS grew by {growth} KiB");
    drop(idle);

    // Still serving: a new player gets the stream, HTTP answers.
    let mut late = RtmpClient::connect(server.rtmp_addr(), "live").expect("a new client");
    late.play("healthy").expect("plays");
    assert!(!late.read_media(WAIT, 4).is_empty());
    assert_eq!(key_of(&server, "healthy"), key);

    healthy.finish();
    assert_alive(&mut server);
}
