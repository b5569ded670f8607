//! The configured limits of issue 6, end to end: reaching each one refuses only what is over
//! it, the way a client can read (an RTMP status, an HTTP 503 with the limit's name, a close),
//! counts it in `/metrics` under `shardcast_limit_refusals_total{limit="<config key>"}`, and
//! gives the place back when the holder leaves. Also: error replies are not lost to a reset
//! when the client had sent more than the server read (the lingering close).

mod common;

use common::hostile::*;
use common::http::read_response;
use common::*;
use shardcast::rtmp::control::msg_type;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// How long a refusal, a metric update (once a second) or a freed place may take to show.
const SHOW: Duration = Duration::from_secs(10);
/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Some`, for at most [`SHOW`].
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SHOW;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {SHOW:?}");
        thread::sleep(POLL);
    }
}

/// Refusals counted at `limit` over every shard, once the count reaches `at_least`.
fn wait_refusals(server: &Server, limit: &str, at_least: u64) -> u64 {
    let label = format!("limit=\"{limit}\"");
    eventually(&format!("{limit} refusals >= {at_least}"), || {
        let n = metric_sum(server, "shardcast_limit_refusals_total", &[&label]);
        (n >= at_least).then_some(n)
    })
}

fn publisher(addr: SocketAddr, room: &str) -> Result<RtmpClient, String> {
    let mut c = RtmpClient::connect(addr, "live")?;
    c.publish(room)?;
    publish_frames(&mut c, 0, 2, 0);
    Ok(c)
}

fn player(addr: SocketAddr, room: &str) -> Result<RtmpClient, String> {
    let mut c = RtmpClient::connect(addr, "live")?;
    c.play(room)?;
    Ok(c)
}

/// The status and body of one HTTP-FLV request for `room`, read until the head (and, for a
/// refusal, its body); a 200 viewer is closed right after its head.
fn flv_status(server: &Server, room: &str) -> (u16, String) {
    let mut resp = http_open(
        server.httpflv_addr(),
        "GET",
        &format!("/live/{room}.flv"),
        &[],
    )
    .unwrap();
    if resp.status == 200 {
        return (200, String::new());
    }
    let body = resp.read_body().unwrap_or_default();
    (resp.status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn stream_and_player_limits_refuse_with_a_status() {
    let server = Server::start(
        "limits-streams",
        &[
            "--shards",
            "2",
            "--rtmp_noauth",
            "--max_streams",
            "2",
            "--max_players_per_stream",
            "2",
        ],
    );
    let addr = server.rtmp_addr();
    let a = publisher(addr, "a").unwrap();
    let b = publisher(addr, "b").unwrap();
    // A third stream is refused with a status ffmpeg and OBS show; a publisher replacing the
    // one of a live stream is not a new stream.
    assert_eq!(
        publisher(addr, "c").err().as_deref(),
        Some("NetStream.Publish.Rejected")
    );
    let a2 = publisher(addr, "a").expect("republishing a live stream");
    drop(a);
    assert!(wait_refusals(&server, "max_streams", 1) >= 1);

    // Two players of `a` on any shards, then the third: refused over RTMP and HTTP-FLV.
    let p1 = player(addr, "a").unwrap();
    let p2 = player(addr, "a").unwrap();
    assert_eq!(
        player(addr, "a").err().as_deref(),
        Some("NetStream.Play.Failed")
    );
    let (status, body) = flv_status(&server, "a");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("max_players_per_stream"), "{body}");
    let _other = player(addr, "b").expect("another stream has its own players");
    assert!(wait_refusals(&server, "max_players_per_stream", 2) >= 2);

    // A player leaving gives its place back.
    drop(p1);
    eventually("a freed player place", || {
        (flv_status(&server, "a").0 == 200).then_some(())
    });
    drop(p2);

    // A stream ending gives its place back.
    drop(b);
    eventually("a freed stream place", || publisher(addr, "c").ok());
    drop(a2);
}

#[test]
fn connections_per_address_are_capped_over_every_listener() {
    let server = Server::start(
        "limits-per-ip",
        &[
            "--shards",
            "2",
            "--max_connections_per_ip",
            "3",
            // The held connections never publish or play: they must outlive the test.
            "--idle_timeout",
            "120",
        ],
    );
    // Three RTMP connections from 127.0.0.1 (on either shard), each handshaken so it is known
    // to be admitted before the next is opened (accept order across shards is not connect
    // order)...
    let held: Vec<TcpStream> = (0..3).map(|_| raw_handshake(server.rtmp_addr())).collect();
    // ...so a fourth is closed at once on RTMP, and answered 503 on an HTTP listener.
    let mut rtmp = tcp(server.rtmp_addr());
    assert_eq!(
        read_until_closed(&mut rtmp, SHOW).as_deref(),
        Some(&[][..]),
        "closed without a byte"
    );
    let mut http = tcp(server.httpflv_addr());
    let answer = read_until_closed(&mut http, SHOW).expect("the refusal closes");
    let mut resp = read_response(&answer[..], false).expect("an HTTP response");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("Retry-After"), Some("5"));
    let body = String::from_utf8(resp.read_body().unwrap()).unwrap();
    assert_eq!(body, "limit reached: max_connections_per_ip\n");
    drop(held);
    // Places come back: the API answers again (its requests count as connections too).
    let refused = eventually("the per-address limit released", || {
        let (status, _, body) = http_get(server.api_addr(), "/metrics");
        (status == 200).then(|| String::from_utf8(body).unwrap())
    });
    assert!(
        refused.contains("shardcast_limit_refusals_total{limit=\"max_connections_per_ip\""),
        "{refused}"
    );
    assert!(wait_refusals(&server, "max_connections_per_ip", 2) >= 2);
}

#[test]
fn connection_limit_answers_http_with_503() {
    let server = Server::start("limits-conns", &["--shards", "1", "--max_connections", "2"]);
    let held: Vec<TcpStream> = (0..2).map(|_| tcp(server.hls_addr())).collect();
    let mut third = tcp(server.hls_addr());
    let answer = read_until_closed(&mut third, SHOW).expect("the refusal closes");
    let mut resp = read_response(&answer[..], false).expect("an HTTP response");
    assert_eq!(resp.status, 503);
    let body = String::from_utf8(resp.read_body().unwrap()).unwrap();
    assert_eq!(body, "limit reached: max_connections\n");
    // Other listeners have their own count.
    let (status, _, _) = http_get(server.api_addr(), "/stat/livestat");
    assert_eq!(status, 200);
    drop(held);
    assert!(wait_refusals(&server, "max_connections", 1) >= 1);
    let refused = metric_sum(
        &server,
        "shardcast_connections_refused_total",
        &["protocol=\"hls\""],
    );
    assert_eq!(refused, 1);
}

/// A connection holding `bytes` of one never-finished 1 MiB video message.
fn holding_incomplete(addr: SocketAddr, bytes: usize) -> (RtmpClient, SocketAddr) {
    let (mut client, peer) = connected(addr);
    let mut out = fmt0_header(5, 1 << 20, msg_type::VIDEO, 1);
    let chunk = vec![0x27u8; CLIENT_CHUNK as usize];
    out.extend_from_slice(&chunk);
    for _ in 1..bytes / CLIENT_CHUNK as usize {
        out.push(0xc0 | 5);
        out.extend_from_slice(&chunk);
    }
    let _ = client.raw_stream().write_all(&out);
    (client, peer)
}

#[test]
fn a_shard_caps_incomplete_message_memory_over_its_connections() {
    const MIB: usize = 1 << 20;
    let server = Server::start(
        "limits-pending",
        &[
            "--shards",
            "1",
            "--idle_timeout",
            "60",
            "--max_message_size",
            &MIB.to_string(),
            "--max_pending_bytes",
            &MIB.to_string(),
            "--max_shard_pending_bytes",
            &(2 * MIB).to_string(),
        ],
    );
    let addr = server.rtmp_addr();
    let key = key_of(&server, "healthy");
    let healthy = HealthyStream::start(addr, "healthy", &key);
    // Two connections hold 800 KiB each: under the shard's 2 MiB, both stay.
    let held = 800 * 1024;
    let (mut first, _) = holding_incomplete(addr, held);
    let (mut second, _) = holding_incomplete(addr, held);
    eventually("1.6 MiB of incomplete messages reported", || {
        let n = metric_sum(&server, "shardcast_pending_message_bytes", &[]);
        (n >= 2 * held as u64).then_some(())
    });
    // A third crosses the cap on its way to 800 KiB: it is the one closed.
    let (mut third, third_peer) = holding_incomplete(addr, held);
    assert!(
        third.wait_closed(SHOW),
        "the connection over the cap is closed"
    );
    let line = closing_line(&server, third_peer).expect("its close is logged");
    assert!(line.contains("max_shard_pending_bytes"), "{line}");
    assert!(!first.is_closed() && !second.is_closed());
    assert!(!first.wait_closed(Duration::from_millis(200)));
    assert!(!second.wait_closed(Duration::from_millis(200)));
    assert!(wait_refusals(&server, "max_shard_pending_bytes", 1) >= 1);
    // Their bytes are given back when they go.
    drop((first, second));
    eventually("incomplete bytes released", || {
        let n = metric_sum(&server, "shardcast_pending_message_bytes", &[]);
        (n < 64 * 1024).then_some(())
    });
    healthy.finish();
}

/// An error reply must reach a client that sent more than the server read: the server
/// half-closes and drains instead of closing with unread bytes (which sends a reset that can
/// destroy the reply before the client reads it).
#[test]
fn error_replies_are_not_lost_to_a_reset() {
    let server = Server::start("limits-linger", &["--shards", "1"]);
    let mut junk = b"\x01\x02 not http\r\n\r\n".to_vec();
    junk.extend(std::iter::repeat_n(b'x', 48 * 1024));
    for (listener, addr) in [
        ("httpflv", server.httpflv_addr()),
        ("hls", server.hls_addr()),
        ("api", server.api_addr()),
    ] {
        for round in 0..20 {
            let mut stream = tcp(addr);
            // The server replies before it reads all of this.
            let _ = stream.write_all(&junk);
            let _ = stream.shutdown(Shutdown::Write);
            let mut got = Vec::new();
            let read = stream.read_to_end(&mut got);
            let text = String::from_utf8_lossy(&got);
            assert!(
                text.starts_with("HTTP/1.1 400"),
                "{listener} round {round}: {read:?}, got {text:?}"
            );
        }
    }
}
