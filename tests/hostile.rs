//! Hostile RTMP input, end to end: garbage, oversized message lengths, absurd chunk sizes,
//! mistyped and deeply nested commands, truncated and silent handshakes. Each must close only
//! its own connection, with a logged reason, while a healthy publisher and player carry on.

mod common;

use bytes::BytesMut;
use common::hostile::*;
use common::*;
use shardcast::rtmp::amf::{encode_amf0, Value};
use shardcast::rtmp::chunk::encode_message;
use shardcast::rtmp::control::{msg_type, write_set_chunk_size};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `--handshake_timeout` of the scenario, in seconds.
const HANDSHAKE_TIMEOUT: u64 = 2;
/// `--idle_timeout` of the scenario, in seconds.
const IDLE_TIMEOUT: u64 = 3;
/// An attack the server detects on arrival must close its connection within this: well under
/// `IDLE_TIMEOUT`, so the idle watchdog cannot be what closed it (the logged reason says so too).
const PROMPT: Duration = Duration::from_secs(2);
/// Slack on top of a server timeout (the watchdog ticks every 250 ms; CI machines are slow).
const MARGIN: Duration = Duration::from_secs(2);

/// One attack connection: the address the server logs it under (`peer=...`) and the reason
/// it must log when closing it (a piece of it; any of several where two timers race).
struct Attack {
    name: &'static str,
    peer: SocketAddr,
    reasons: Vec<String>,
}

impl Attack {
    fn new(name: &'static str, peer: SocketAddr, reason: impl Into<String>) -> Self {
        Self::any_of(name, peer, &[&reason.into()])
    }

    fn any_of(name: &'static str, peer: SocketAddr, reasons: &[&str]) -> Self {
        Attack {
            name,
            peer,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        }
    }
}

/// What the server logs when `handshake_timeout` runs out: the read timeout or the watchdog,
/// whichever fires first.
const HANDSHAKE_TIMED_OUT: [&str; 2] = ["handshake timed out", "(handshake_timeout)"];

/// Connects, then writes `bytes` raw (after the client's own chunks); the server must close
/// the connection promptly.
fn after_connect(addr: SocketAddr, name: &'static str, bytes: &[u8], reason: &str) -> Attack {
    let (mut client, peer) = connected(addr);
    // The server may reset the connection before all of it is written.
    let _ = client.raw_stream().write_all(bytes);
    assert!(
        client.wait_closed(PROMPT),
        "{name}: the server closes the connection"
    );
    Attack::new(name, peer, reason)
}

/// a. 4 KiB of random bytes right after TCP connect: C0 is not version 3.
fn bad_c0(addr: SocketAddr) -> Attack {
    let mut garbage = random_bytes(0xc0, 4096);
    garbage[0] |= 0x80; // never 3 (RTMP) nor 6 (RTMPE)
    let mut stream = tcp(addr);
    let peer = stream.local_addr().unwrap();
    let _ = stream.write_all(&garbage);
    let answer = read_until_closed(&mut stream, PROMPT).expect("a bad C0 closes the connection");
    assert!(answer.is_empty(), "no S0/S1 for a bad C0: {answer:?}");
    let reason = format!("RTMP handshake version {} is not supported", garbage[0]);
    Attack::new("bad C0", peer, reason)
}

/// b. C0 and half of C1, then silence: closed when `handshake_timeout` runs out.
fn truncated_handshake(addr: SocketAddr) -> Attack {
    let mut stream = tcp(addr);
    let peer = stream.local_addr().unwrap();
    let mut partial = vec![3u8];
    partial.resize(1 + PACKET / 2, 0);
    stream.write_all(&partial).unwrap();
    let sent = Instant::now();
    let limit = Duration::from_secs(HANDSHAKE_TIMEOUT) + MARGIN;
    let answer =
        read_until_closed(&mut stream, limit).expect("a truncated handshake is cut off in time");
    let waited = sent.elapsed();
    assert!(answer.is_empty(), "no S0/S1 before C1 is complete");
    assert!(
        waited >= Duration::from_secs(HANDSHAKE_TIMEOUT) - Duration::from_millis(300),
        "closed by the handshake timeout, not earlier: {waited:?}"
    );
    Attack::any_of("truncated handshake", peer, &HANDSHAKE_TIMED_OUT)
}

/// c. A fmt0 chunk header on chunk stream 3 announcing a 0xFFFFFF-byte command.
fn huge_message_length(addr: SocketAddr) -> Attack {
    let mut header = vec![
        0x03,
        0,
        0,
        0,
        0xff,
        0xff,
        0xff,
        msg_type::COMMAND_AMF0,
        0,
        0,
        0,
        0,
    ];
    header.extend_from_slice(&[0x02; 100]); // the start of its "payload"
    after_connect(
        addr,
        "16 MiB message length",
        &header,
        "message length 16777215 exceeds the maximum 8388608",
    )
}

/// d, e. Set Chunk Size with `size`.
fn set_chunk_size(addr: SocketAddr, name: &'static str, size: u32, reason: &str) -> Attack {
    let mut msg = BytesMut::new();
    write_set_chunk_size(&mut msg, size);
    assert_eq!(
        msg[..],
        [
            [0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0].as_slice(),
            &size.to_be_bytes()
        ]
        .concat(),
        "type 1 on chunk stream 2, message stream 0"
    );
    after_connect(addr, name, &msg, reason)
}

/// f. 64 KiB of random bytes where chunks should be.
fn garbage_chunks(addr: SocketAddr) -> Attack {
    let garbage = random_bytes(0xf00d, 64 * 1024);
    after_connect(
        addr,
        "garbage chunks",
        &garbage,
        "bad input: chunk stream: ",
    )
}

/// g. `connect` whose `app` is a number: refused with `_error`, then closed.
fn connect_with_numeric_app(addr: SocketAddr) -> Attack {
    let mut stream = raw_handshake(addr);
    let peer = stream.local_addr().unwrap();
    let props = Value::object([
        ("app", Value::Number(42.0)),
        ("tcUrl", Value::Number(7.0)),
        ("objectEncoding", Value::from("zero")),
    ]);
    let msg = command(&["connect".into(), 1.0.into(), props], 0, DEFAULT_CHUNK);
    stream.write_all(&msg).unwrap();
    let answer = read_until_closed(&mut stream, PROMPT).expect("a bad connect is closed");
    assert!(
        contains(&answer, b"_error") && contains(&answer, b"NetConnection.Connect.Rejected"),
        "the connect is refused before the close: {:?}",
        String::from_utf8_lossy(&answer)
    );
    Attack::new(
        "connect with a numeric app",
        peer,
        "connect to unknown or disabled app ``",
    )
}

/// g. `publish` whose name is an object: refused with BadName, then closed.
fn publish_with_object_name(addr: SocketAddr) -> Attack {
    let (mut client, peer) = connected(addr);
    let stream_id = client.create_stream().expect("createStream");
    let name = Value::object([("name", Value::from("healthy"))]);
    let msg = command(
        &[
            "publish".into(),
            5.0.into(),
            Value::Null,
            name,
            "live".into(),
        ],
        stream_id,
        CLIENT_CHUNK,
    );
    client.raw_stream().write_all(&msg).unwrap();
    let refused = client.wait_for(PROMPT, |e| match e {
        ClientEvent::Status { code, level, .. } if level == "error" => Some(code.clone()),
        _ => None,
    });
    assert_eq!(refused.as_deref(), Some("NetStream.Publish.BadName"));
    assert!(client.wait_closed(PROMPT), "a refused publisher is closed");
    Attack::new(
        "publish with an object name",
        peer,
        "publish to app `live` refused: invalid key",
    )
}

/// g. A command whose name is a number.
fn command_without_name(addr: SocketAddr) -> Attack {
    let msg = command(&[7.0.into(), 1.0.into(), Value::Null], 0, CLIENT_CHUNK);
    after_connect(
        addr,
        "numeric command name",
        &msg,
        "protocol: command without a name",
    )
}

/// h. A command whose argument is 10,000 nested strict arrays (AMF0 0x0A, count 1).
fn deep_amf(addr: SocketAddr) -> Attack {
    let mut body = Vec::new();
    encode_amf0(&["call".into(), 9.0.into(), Value::Null], &mut body);
    for _ in 0..10_000 {
        body.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
    }
    body.push(0x05); // the innermost element: null
    let mut msg = BytesMut::new();
    encode_message(
        &mut msg,
        CLIENT_CHUNK,
        3,
        0,
        msg_type::COMMAND_AMF0,
        0,
        &body,
    );
    after_connect(
        addr,
        "AMF nested 10,000 deep",
        &msg,
        "nested deeper than 64",
    )
}

#[test]
fn hostile_inputs_close_only_their_connection_while_a_player_keeps_playing() {
    let mut server = Server::start(
        "hostile",
        &[
            "--shards",
            "2",
            "--handshake_timeout",
            &HANDSHAKE_TIMEOUT.to_string(),
            "--idle_timeout",
            &IDLE_TIMEOUT.to_string(),
        ],
    );
    let addr = server.rtmp_addr();
    let key = key_of(&server, "healthy");

    let healthy = HealthyStream::start(addr, "healthy", &key);

    // i. Connections that stay silent: one never handshakes, one connects but never
    // publishes or plays. They run while the other attacks go on.
    let mut silent = tcp(addr);
    let silent_peer = silent.local_addr().unwrap();
    let silent_since = Instant::now();
    let (mut idle, idle_peer) = connected(addr);
    let idle_since = Instant::now();

    let mut attacks = vec![
        bad_c0(addr),
        truncated_handshake(addr),
        huge_message_length(addr),
        set_chunk_size(addr, "chunk size 0", 0, "peer set a chunk size of 0"),
        set_chunk_size(
            addr,
            "chunk size 0x7FFFFFFF",
            0x7fff_ffff,
            "peer chunk size 2147483647 exceeds the maximum 16777215",
        ),
        garbage_chunks(addr),
        connect_with_numeric_app(addr),
        publish_with_object_name(addr),
        command_without_name(addr),
        deep_amf(addr),
    ];

    let left = (silent_since + Duration::from_secs(HANDSHAKE_TIMEOUT) + MARGIN)
        .saturating_duration_since(Instant::now());
    assert!(
        read_until_closed(&mut silent, left).is_some(),
        "a connection that sends nothing is closed within handshake_timeout"
    );
    attacks.push(Attack::any_of(
        "silent connection",
        silent_peer,
        &HANDSHAKE_TIMED_OUT,
    ));
    let left = (idle_since + Duration::from_secs(IDLE_TIMEOUT) + MARGIN)
        .saturating_duration_since(Instant::now());
    assert!(
        idle.wait_closed(left),
        "a connection that neither publishes nor plays is closed within idle_timeout"
    );
    // The read timeout or the watchdog, whichever fires first.
    attacks.push(Attack::any_of(
        "idle connection",
        idle_peer,
        &["idle connection timed out", "(idle_timeout)"],
    ));

    // The server still accepts and serves a new player: headers, then the cached keyframe.
    let mut late = RtmpClient::connect(addr, "live").expect("a new client connects");
    late.play("healthy").expect("and plays");
    let joined = late.read_media(WAIT, 6);
    let videos: Vec<&MediaMessage> = joined.iter().filter(|m| m.0 == MediaKind::Video).collect();
    assert!(videos.len() >= 2, "late joiner got {joined:?}");
    assert_eq!(videos[0].2, avc_sequence_header());
    assert!(is_keyframe(&videos[1].2), "then a keyframe");

    assert!(
        !server
            .lines()
            .iter()
            .any(|l| l.contains("stream=live/healthy") && l.contains("publish ended")),
        "the healthy publish never ended during the attacks"
    );
    healthy.finish();

    assert!(
        server.wait_exit(Duration::from_millis(50)).is_none(),
        "the server is still running"
    );
    for attack in &attacks {
        let line = closing_line(&server, attack.peer)
            .unwrap_or_else(|| panic!("{}: no `closing` line for {}", attack.name, attack.peer));
        assert!(
            attack.reasons.iter().any(|r| line.contains(r.as_str())),
            "{}: expected the reason {:?} in {line}",
            attack.name,
            attack.reasons
        );
    }
    let lines = server.lines();
    assert!(
        !lines.iter().any(|l| l.contains("panicked")),
        "no panic in the server"
    );
}

/// Sends C0+C1 one byte every 500 ms (so no single read of the server waits long enough for a
/// 2 s read timeout) until the server closes the connection or `limit` passes; returns when
/// it closed, and the peer address it logs the connection under.
fn trickle_handshake(addr: SocketAddr, limit: Duration) -> (Option<Duration>, SocketAddr) {
    let mut stream = tcp(addr);
    let peer = stream.local_addr().unwrap();
    let start = Instant::now();
    let mut c0c1 = vec![3u8];
    c0c1.resize(1 + PACKET, 0);
    for byte in c0c1.chunks(1) {
        if start.elapsed() >= limit {
            break;
        }
        if stream.write_all(byte).is_err() {
            return (Some(start.elapsed()), peer);
        }
        // Waiting for the close is also the pacing between bytes.
        if read_until_closed(&mut stream, Duration::from_millis(500)).is_some() {
            return (Some(start.elapsed()), peer);
        }
    }
    (None, peer)
}

#[test]
fn a_trickled_handshake_is_cut_off_at_handshake_timeout() {
    let server = Server::start(
        "trickle-handshake",
        &["--handshake_timeout", "2", "--idle_timeout", "30"],
    );
    let limit = Duration::from_secs(2) + MARGIN;
    let (closed, peer) = trickle_handshake(server.rtmp_addr(), limit);
    let closed = closed.unwrap_or_else(|| {
        panic!("handshake_timeout bounds the whole handshake, not each read: open after {limit:?}")
    });
    assert!(
        closed >= Duration::from_millis(1700),
        "closed after {closed:?}"
    );
    let line = closing_line(&server, peer).expect("the close is logged");
    assert!(line.contains("(handshake_timeout)"), "{line}");
}
