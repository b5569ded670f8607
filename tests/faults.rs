//! Faults of issue 6, end to end: a publisher that vanishes in the middle of a message, a
//! relay source that accepts connections and never answers, and a SIGTERM with 500 viewers
//! attached. Each asserts what a user sees: players told and closed on whole tags, recordings
//! that read to their end, other streams that lose nothing, a clean exit. (A Redis restart
//! mid-publish is in `tests/redis.rs`, a `kill -9` during recording in `tests/record.rs`.)

mod common;

use common::hostile::*;
use common::*;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Some`, for at most `within`.
fn eventually<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        thread::sleep(POLL);
    }
}

/// The recordings of `app` under the server's `rec/` directory.
fn recordings(server: &Server, app: &str) -> Vec<PathBuf> {
    let dir = server.dir().join("rec").join(app);
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Video sequence numbers of synthetic frames (see `common::synth`).
fn video_seqs(tags: &[FlvTag]) -> Vec<u32> {
    tags.iter()
        .filter(|t| t.0 == MediaKind::Video)
        .filter_map(|t| frame_seq(&t.2))
        .collect()
}

#[test]
fn a_publisher_vanishing_mid_message_ends_the_stream_cleanly() {
    let server = Server::start(
        "faults-vanish",
        &[
            "--flv_archive",
            "--flv_dir",
            "rec",
            "--rtmp_noauth",
            "--play_wait_timeout",
            "2",
        ],
    );
    let addr = server.rtmp_addr();
    let mut player = RtmpClient::connect(addr, "live").unwrap();
    player.play("cam").unwrap();
    let mut publisher = RtmpClient::connect(addr, "live").unwrap();
    publisher.publish("cam").unwrap();
    const N: u32 = 90;
    publish_frames(&mut publisher, 0, N, 0);
    // An HTTP-FLV viewer joins while the stream is live.
    let mut viewer = http_open(server.httpflv_addr(), "GET", "/live/cam.flv", &[]).unwrap();
    assert_eq!(viewer.status, 200);
    publish_frames(&mut publisher, N, N, N * 33);
    publisher.flush().unwrap();

    // Then the encoder dies inside a 60,000-byte video message: a header and 1,000 bytes.
    let stream_id = publisher.stream_id();
    let raw = publisher.raw_stream();
    raw.write_all(&fmt0_header(7, 60_000, 9, stream_id))
        .unwrap();
    raw.write_all(&[0x17; 1000]).unwrap();
    raw.shutdown(Shutdown::Both).unwrap();
    drop(publisher);

    // The RTMP player gets every whole frame, then is told the publisher left.
    let mut media = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match player.next_event(left) {
            Some(ClientEvent::Media {
                kind,
                timestamp,
                payload,
                ..
            }) => media.push((kind, timestamp, payload)),
            Some(ClientEvent::Status { code, .. }) if code == "NetStream.Play.UnpublishNotify" => {
                break
            }
            Some(_) => {}
            None => panic!("no UnpublishNotify within {WAIT:?}"),
        }
    }
    assert_eq!(
        seqs(&media, MediaKind::Video),
        (0..2 * N).collect::<Vec<_>>()
    );

    // The HTTP-FLV viewer is closed after play_wait_timeout, on a whole tag, having received
    // the current GOP onward without a gap.
    let body = viewer.read_body().expect("the viewer's body ends");
    let tags = parse_flv(&body).expect("the viewer's FLV ends on a whole tag");
    let got = video_seqs(&tags);
    assert_eq!(got.last(), Some(&(2 * N - 1)), "the last whole frame");
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "no gap: {got:?}");
    assert!(
        got[0].is_multiple_of(30),
        "starts on a keyframe: {}",
        got[0]
    );

    // The recording is finished and holds exactly the whole frames.
    let finished = server.wait_for_line(|l| l.contains("recording finished"), WAIT);
    assert!(finished.is_some(), "the recording is finished");
    let files = recordings(&server, "live");
    assert_eq!(files.len(), 1, "{files:?}");
    let tags = read_flv_tags(&files[0]);
    assert_eq!(video_seqs(&tags), (0..2 * N).collect::<Vec<_>>());

    // The name is free again, and the log says why the publisher ended.
    let mut again = RtmpClient::connect(addr, "live").unwrap();
    again.publish("cam").expect("the name is free again");
    publish_frames(&mut again, 0, 1, 0);
    let why = server.wait_for_line(|l| l.contains("peer closed mid-message"), WAIT);
    assert!(why.is_some(), "the log says the publisher died mid-message");
}

/// A listener that completes TCP handshakes (the kernel does) and never reads nor answers;
/// counts the connections made to it.
struct Blackhole {
    addr: SocketAddr,
    listener: TcpListener,
    held: Vec<TcpStream>,
}

impl Blackhole {
    fn new() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Blackhole {
            addr: listener.local_addr().unwrap(),
            listener,
            held: Vec::new(),
        }
    }

    /// Accepts what is queued; returns how many connections were ever made.
    fn connections(&mut self) -> usize {
        while let Ok((conn, _)) = self.listener.accept() {
            self.held.push(conn);
        }
        self.held.len()
    }
}

#[test]
fn a_blackholed_pull_source_is_a_502_in_time_and_costs_other_streams_nothing() {
    let mut hole = Blackhole::new();
    let server = Server::start("faults-pull-hole", &["--rtmp_noauth", "--hls_addr", ""]);
    let healthy = HealthyStream::start(server.rtmp_addr(), "healthy", "healthy");
    let url = format!("rtmp://{}/live/src", hole.addr);
    let start = format!("/control/pull?oper=start&app=live&name=copy&url={url}");

    // The start waits for the remote to accept the play, which it never does: a 502 naming
    // the cause once the relay's start timeout (10 s) passes, not a hang.
    let asked = Instant::now();
    let (status, data) = api_json(&server, &start);
    assert_eq!(status, 502, "{data}");
    assert!(
        data["data"]
            .as_str()
            .is_some_and(|d| d.contains("no answer within")),
        "{data}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(hole.connections(), 1, "one attempt");
    // Nothing is left running: the name is free and the relay gauge is back to zero.
    let (status, data) = api_json(&server, "/control/pull?oper=stop&app=live&name=copy");
    assert_eq!(status, 404, "{data}");
    let running = metric_sum(&server, "shardcast_relays", &["kind=\"pull\""]);
    assert_eq!(running, 0, "no pull relay left");

    // The healthy stream on the same server lost nothing meanwhile.
    assert!(healthy.finish() > 0);
}

/// Follows one HTTP-FLV response as it arrives, without keeping it: the response head, the
/// FLV header, then each tag by its size.
#[derive(Default)]
struct FlvFollower {
    /// Bytes of a head or tag header not complete yet.
    pending: Vec<u8>,
    /// Body bytes of the current tag (and its back pointer) still to come.
    skip: usize,
    head_done: bool,
    flv_header_done: bool,
    status_ok: bool,
    tags: u64,
    ended: bool,
}

/// FLV header (9) and the first back pointer (4) (FLV spec E.2, E.3).
const FLV_START: usize = 13;
/// An FLV tag header (FLV spec E.4.1).
const TAG_HEADER: usize = 11;

impl FlvFollower {
    fn feed(&mut self, mut data: &[u8]) {
        if self.pending.is_empty() {
            // Inside a tag body: skip without copying.
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
        }
        self.pending.extend_from_slice(data);
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.pending.len());
                self.skip -= n;
                self.pending.drain(..n);
                if self.skip > 0 {
                    return;
                }
            }
            if !self.step() {
                return;
            }
        }
    }

    /// Parses the head, FLV header or tag header `pending` starts with; false when it needs
    /// more bytes.
    fn step(&mut self) -> bool {
        if !self.head_done {
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return false;
            };
            self.status_ok = self.pending.starts_with(b"HTTP/1.1 200");
            self.head_done = true;
            self.pending.drain(..end + 4);
            return true;
        }
        if !self.flv_header_done {
            if self.pending.len() < FLV_START {
                return false;
            }
            assert!(self.pending.starts_with(b"FLV"), "an FLV body");
            self.flv_header_done = true;
            self.pending.drain(..FLV_START);
            return true;
        }
        if self.pending.len() < TAG_HEADER {
            return false;
        }
        let size = u32::from_be_bytes([0, self.pending[1], self.pending[2], self.pending[3]]);
        self.tags += 1;
        self.skip = size as usize + 4;
        self.pending.drain(..TAG_HEADER);
        true
    }

    /// The body ended exactly after a whole tag.
    fn on_whole_tag(&self) -> bool {
        self.flv_header_done && self.skip == 0 && self.pending.is_empty()
    }
}

/// HTTP-FLV viewers on non-blocking sockets, read round-robin by one thread.
struct Viewers {
    conns: Vec<(TcpStream, FlvFollower)>,
}

impl Viewers {
    fn open(addr: SocketAddr, path: &str, n: usize) -> Viewers {
        let conns = (0..n)
            .map(|_| {
                let mut s = tcp(addr);
                write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
                s.set_nonblocking(true).unwrap();
                (s, FlvFollower::default())
            })
            .collect();
        Viewers { conns }
    }

    /// Reads what is available on every open socket; true if anything was read.
    fn pump(&mut self, buf: &mut [u8]) -> bool {
        let mut any = false;
        for (s, f) in self.conns.iter_mut().filter(|(_, f)| !f.ended) {
            loop {
                match s.read(buf) {
                    Ok(0) => {
                        f.ended = true;
                        break;
                    }
                    Ok(n) => {
                        f.feed(&buf[..n]);
                        any = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("a viewer's read failed: {e}"),
                }
            }
        }
        any
    }

    /// Pumps until `done` holds for every viewer, at most `within`.
    fn pump_until(&mut self, what: &str, within: Duration, done: impl Fn(&FlvFollower) -> bool) {
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + within;
        while !self.conns.iter().all(|(_, f)| done(f)) {
            let waiting = self.conns.iter().filter(|(_, f)| !done(f)).count();
            assert!(
                Instant::now() < deadline,
                "{what}: {waiting} viewers not within {within:?}"
            );
            if !self.pump(&mut buf) {
                // Nothing to read on any socket: let data arrive.
                thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Whole tags in an FLV file, and bytes after the last whole tag.
fn whole_tags(path: &Path) -> (usize, usize) {
    let data = fs::read(path).unwrap();
    let start = shardcast::media::flv::first_tag_offset(&data).expect("an FLV file");
    let mut end = start;
    let mut n = 0;
    for tag in shardcast::media::flv::tags(&data, start) {
        end = tag.body.end + shardcast::media::flv::BACK_POINTER_LEN;
        n += 1;
    }
    (n, data.len() - end)
}

#[test]
fn sigterm_with_500_viewers_exits_cleanly_and_finalises_the_recording() {
    require_ffmpeg();
    const VIEWERS: usize = 500;
    let mut server = Server::start(
        "faults-sigterm",
        &["--flv_archive", "--flv_dir", "rec", "--rtmp_noauth"],
    );
    let mut push = push_looped(&server.rtmp_url("live/crowd"), &test_media());
    // Live once its recording has started.
    eventually("the stream is live", WAIT, || {
        (!recordings(&server, "live").is_empty()).then_some(())
    });
    let mut viewers = Viewers::open(server.httpflv_addr(), "/live/crowd.flv", VIEWERS);
    // Attached: each has its 200, the FLV header and the stream's first tags.
    viewers.pump_until("viewers attached", Duration::from_secs(30), |f| {
        f.status_ok && f.tags >= 3
    });

    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit: {status:?}"
    );
    let _ = push.kill();
    let _ = push.wait();

    // Every viewer's body ends, on a whole tag.
    viewers.pump_until("viewers closed", WAIT, |f| f.ended);
    let cut = viewers
        .conns
        .iter()
        .filter(|(_, f)| !f.on_whole_tag())
        .count();
    assert_eq!(cut, 0, "viewers whose body ended inside a tag");

    let files = recordings(&server, "live");
    assert_eq!(files.len(), 1, "{files:?}");
    let (tags, rest) = whole_tags(&files[0]);
    assert!(tags > 3, "the recording holds the stream");
    assert_eq!(rest, 0, "the recording ends on a whole tag");
    assert!(count_video_frames(&files[0]).0 > 0, "ffprobe reads it");
}
