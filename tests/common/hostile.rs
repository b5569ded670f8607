//! Shared by the hostile-input suites (`tests/hostile.rs`, `tests/adversarial.rs`): a healthy
//! publisher and player streaming sequence-numbered frames while attacks run, and raw RTMP
//! helpers to build the attacks.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use shardcast::rtmp::amf::{encode_amf0, Value};
use shardcast::rtmp::chunk::encode_message;
use shardcast::rtmp::client::{ClientConfig, MediaKind};
use shardcast::rtmp::control::msg_type;

use super::rtmp::{MediaMessage, RtmpClient};
use super::server::Server;
use super::synth::{
    aac_frame, aac_sequence_header, avc_frame, avc_sequence_header, frame_seq, is_keyframe,
    metadata,
};

/// How long a connect, a read of a reply or a wait for a log line may take.
pub const WAIT: Duration = Duration::from_secs(15);
/// Chunk size our test client announces after `connect`: raw chunks written after it must use it.
pub const CLIENT_CHUNK: u32 = 4096;
/// Chunk size of a connection that never sent Set Chunk Size (RTMP 1.0 section 5.4.1).
pub const DEFAULT_CHUNK: u32 = 128;
/// Size of C1, C2, S1 and S2.
pub const PACKET: usize = 1536;
/// Real-time pacing of the healthy publisher (30 fps).
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// Upper bound on a whole scenario, for the healthy player's reads.
const SCENARIO_LIMIT: Duration = Duration::from_secs(90);

/// Sequence numbers of the `kind` frames (not headers) among received media, in arrival order.
pub fn seqs(media: &[MediaMessage], kind: MediaKind) -> Vec<u32> {
    media
        .iter()
        .filter(|m| m.0 == kind)
        .filter_map(|m| frame_seq(&m.2))
        .collect()
}

/// `n` reproducible pseudo-random bytes.
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A plain TCP connection to `addr`.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).expect("TCP connect");
    stream.set_nodelay(true).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// A simple (digest-less) handshake by hand: C0+C1, read S0+S1+S2, send C2 (the echo of S1).
/// Nothing else is sent, so the connection's chunk size stays at the default 128.
pub fn raw_handshake(addr: SocketAddr) -> TcpStream {
    let mut stream = tcp(addr);
    let mut c0c1 = vec![3u8];
    c0c1.resize(1 + PACKET, 0);
    stream.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * PACKET];
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.read_exact(&mut s0s1s2).expect("S0+S1+S2");
    assert_eq!(s0s1s2[0], 3, "S0 is RTMP version 3");
    stream.write_all(&s0s1s2[1..1 + PACKET]).unwrap();
    stream
}

/// An AMF0 command message (type 20) on chunk stream 3.
pub fn command(values: &[Value], stream_id: u32, chunk_size: u32) -> BytesMut {
    let mut body = Vec::new();
    encode_amf0(values, &mut body);
    let mut out = BytesMut::new();
    encode_message(
        &mut out,
        chunk_size,
        3,
        0,
        msg_type::COMMAND_AMF0,
        stream_id,
        &body,
    );
    out
}

/// A client connected to app `live` (handshake + `connect` accepted) that sends with
/// [`CLIENT_CHUNK`], and the address the server logs as its peer.
pub fn connected(addr: SocketAddr) -> (RtmpClient, SocketAddr) {
    let mut cfg = ClientConfig::new("live", &format!("rtmp://{addr}/live"));
    cfg.chunk_size = CLIENT_CHUNK;
    let mut client = RtmpClient::connect_with(addr, cfg).expect("connect");
    let peer = client.raw_stream().local_addr().unwrap();
    (client, peer)
}

/// A raw fmt0 chunk header (11-byte message header, csid 2..=63).
pub fn fmt0_header(csid: u8, len: u32, type_id: u8, stream_id: u32) -> Vec<u8> {
    assert!((2..64).contains(&csid));
    let mut h = vec![csid, 0, 0, 0];
    h.extend_from_slice(&len.to_be_bytes()[1..]);
    h.push(type_id);
    h.extend_from_slice(&stream_id.to_le_bytes());
    h
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `closing reason=...` line the server logged for the connection from `peer`.
pub fn closing_line(server: &Server, peer: SocketAddr) -> Option<String> {
    let span = format!("peer={peer}}}");
    server.wait_for_line(|l| l.contains(&span) && l.contains("closing reason="), WAIT)
}

/// Publishes metadata, headers, then frames (a keyframe every 30; video `i` and audio `i`
/// carry sequence number `i`) in real time until `stop`; returns how many frames it sent.
pub fn spawn_publisher(mut publisher: RtmpClient, stop: Arc<AtomicBool>) -> JoinHandle<u32> {
    thread::spawn(move || {
        publisher.send_metadata(0, &metadata()).unwrap();
        publisher.send_video(0, &avc_sequence_header()).unwrap();
        publisher.send_audio(0, &aac_sequence_header()).unwrap();
        let start = Instant::now();
        let mut sent = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let ts = sent * 33;
            let cut = |e: std::io::Error| -> ! {
                panic!("the healthy publisher was cut off at frame {sent}: {e}")
            };
            publisher
                .send_video(ts, &avc_frame(sent.is_multiple_of(30), sent))
                .unwrap_or_else(|e| cut(e));
            publisher
                .send_audio(ts + 10, &aac_frame(sent))
                .unwrap_or_else(|e| cut(e));
            sent += 1;
            // Pacing (30 fps, like a camera), not a wait for a condition.
            let next = start + FRAME_INTERVAL * sent;
            if let Some(pause) = next.checked_duration_since(Instant::now()) {
                thread::sleep(pause);
            }
        }
        sent
    })
}

/// Reads media until the video frame whose sequence number arrives on `last` (announced
/// once the publisher stopped), the connection closes or [`SCENARIO_LIMIT`] passes. Signals
/// `started` on the first message.
pub fn spawn_player(
    mut player: RtmpClient,
    started: mpsc::Sender<()>,
    last: mpsc::Receiver<u32>,
) -> JoinHandle<(Vec<MediaMessage>, bool)> {
    thread::spawn(move || {
        let deadline = Instant::now() + SCENARIO_LIMIT;
        let mut media: Vec<MediaMessage> = Vec::new();
        let mut last_seq = None;
        let mut newest = None;
        while Instant::now() < deadline && !player.is_closed() {
            let got = player.read_media(Duration::from_millis(200), 64);
            if media.is_empty() && !got.is_empty() {
                let _ = started.send(());
            }
            newest = seqs(&got, MediaKind::Video).last().copied().or(newest);
            media.extend(got);
            last_seq = last_seq.or_else(|| last.try_recv().ok());
            if last_seq.is_some() && newest >= last_seq {
                break;
            }
        }
        (media, player.is_closed())
    })
}

/// A healthy publisher and player of `live/<room>` streaming while a test attacks the server.
pub struct HealthyStream {
    stop: Arc<AtomicBool>,
    last: mpsc::Sender<u32>,
    publisher: JoinHandle<u32>,
    player: JoinHandle<(Vec<MediaMessage>, bool)>,
}

impl HealthyStream {
    /// The player comes first (so it must get every frame from the first), then the publisher
    /// with `key`; returns once the player received media.
    pub fn start(addr: SocketAddr, room: &str, key: &str) -> HealthyStream {
        let mut player = RtmpClient::connect(addr, "live").unwrap();
        player.play(room).unwrap();
        let mut publisher = RtmpClient::connect(addr, "live").unwrap();
        publisher.publish(key).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = mpsc::channel();
        let (last, last_rx) = mpsc::channel();
        let player = spawn_player(player, started_tx, last_rx);
        let publisher = spawn_publisher(publisher, stop.clone());
        started_rx
            .recv_timeout(WAIT)
            .expect("the healthy player receives media before the attacks");
        HealthyStream {
            stop,
            last,
            publisher,
            player,
        }
    }

    /// Stops the publisher and asserts what the player saw: never disconnected, the AVC header
    /// first, a keyframe first among frames, and every video and audio frame in order, none
    /// missing. Returns how many frames went through.
    pub fn finish(self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        let frames = self
            .publisher
            .join()
            .expect("the healthy publisher never failed");
        assert!(frames > 0);
        self.last.send(frames - 1).unwrap();
        let (media, player_closed) = self.player.join().unwrap();
        assert!(!player_closed, "the healthy player was never disconnected");
        let first_video = media.iter().find(|m| m.0 == MediaKind::Video).unwrap();
        assert_eq!(first_video.2, avc_sequence_header(), "AVC header first");
        let first_frame = media
            .iter()
            .find(|m| m.0 == MediaKind::Video && frame_seq(&m.2).is_some())
            .unwrap();
        assert!(is_keyframe(&first_frame.2), "the first frame is a keyframe");
        assert_eq!(
            seqs(&media, MediaKind::Video),
            (0..frames).collect::<Vec<_>>(),
            "every video frame, in order"
        );
        assert_eq!(
            seqs(&media, MediaKind::Audio),
            (0..frames).collect::<Vec<_>>(),
            "every audio frame, in order"
        );
        frames
    }
}
