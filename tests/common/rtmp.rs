//! A blocking RTMP test client over `std::net::TcpStream`, driving [`ClientSession`].

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardcast::rtmp::client::{ClientConfig, ClientEvent, ClientSession, MediaKind};

use super::synth::{aac_frame, aac_sequence_header, avc_frame, avc_sequence_header, metadata};

/// How long connect, publish and play wait for the server's answer.
pub const RTMP_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer size.
const READ_SIZE: usize = 64 * 1024;

/// One media message: kind, timestamp, payload.
pub type MediaMessage = (MediaKind, u32, Bytes);

/// A connected RTMP client. Events that a wait did not consume stay queued, in order, for
/// [`next_event`](Self::next_event).
pub struct RtmpClient {
    stream: TcpStream,
    session: ClientSession,
    events: VecDeque<ClientEvent>,
    /// Message stream of the last publish or play.
    stream_id: u32,
    closed: bool,
    /// Why the session failed, if it did.
    error: Option<String>,
    buf: Vec<u8>,
}

impl RtmpClient {
    /// Connects to `addr`, handshakes and sends `connect` for `app` (tcUrl
    /// `rtmp://addr/app`); waits for the `_result`. `Err` holds the rejection code, or
    /// `"timeout"`, `"closed"` or an I/O error.
    pub fn connect(addr: SocketAddr, app: &str) -> Result<Self, String> {
        Self::connect_with(
            addr,
            ClientConfig::new(app, &format!("rtmp://{addr}/{app}")),
        )
    }

    /// [`connect`](Self::connect) with a custom configuration.
    pub fn connect_with(addr: SocketAddr, cfg: ClientConfig) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&addr, RTMP_TIMEOUT).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(RTMP_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut session = ClientSession::new(cfg);
        let c0c1 = session.start();
        let mut client = Self {
            stream,
            session,
            events: VecDeque::new(),
            stream_id: 0,
            closed: false,
            error: None,
            buf: vec![0; READ_SIZE],
        };
        client.stream.write_all(&c0c1).map_err(|e| e.to_string())?;
        let answer = client.wait_for(RTMP_TIMEOUT, |e| match e {
            ClientEvent::Connected => Some(Ok(())),
            ClientEvent::ConnectRejected { code, .. } => Some(Err(error_code(code))),
            _ => None,
        });
        client.outcome(answer)?;
        Ok(client)
    }

    /// Sends `createStream` and waits for its stream id.
    pub fn create_stream(&mut self) -> Result<u32, String> {
        self.session.create_stream();
        self.flush().map_err(|e| e.to_string())?;
        let answer = self.wait_for(RTMP_TIMEOUT, |e| match e {
            ClientEvent::StreamCreated { stream_id } => Some(Ok(*stream_id)),
            ClientEvent::CreateStreamFailed { code, .. } => Some(Err(error_code(code))),
            _ => None,
        });
        self.outcome(answer)
    }

    /// createStream + publish; waits for NetStream.Publish.Start. `Err` holds the code of an
    /// error-level status (e.g. NetStream.Publish.BadName), or `"closed"`/`"timeout"`.
    pub fn publish(&mut self, name: &str) -> Result<u32, String> {
        let stream_id = self.create_stream()?;
        self.session.publish(stream_id, name);
        self.stream_id = stream_id;
        self.flush().map_err(|e| e.to_string())?;
        self.wait_status(stream_id, "NetStream.Publish.Start")
    }

    /// createStream + play; waits for NetStream.Play.Start (errors as [`publish`](Self::publish)).
    pub fn play(&mut self, name: &str) -> Result<u32, String> {
        let stream_id = self.create_stream()?;
        self.session.play(stream_id, name);
        self.stream_id = stream_id;
        self.flush().map_err(|e| e.to_string())?;
        self.wait_status(stream_id, "NetStream.Play.Start")
    }

    /// Waits for status `code` on `stream_id`; an error-level status fails.
    fn wait_status(&mut self, stream_id: u32, code: &str) -> Result<u32, String> {
        let answer = self.wait_for(RTMP_TIMEOUT, |e| match e {
            ClientEvent::Status {
                code: got, level, ..
            } if level == "error" => Some(Err(got.clone())),
            ClientEvent::Status { code: got, .. } if got == code => Some(Ok(stream_id)),
            _ => None,
        });
        self.outcome(answer)
    }

    /// `Some(result)` as is, `None` as `"closed"` or `"timeout"`.
    fn outcome<T>(&self, answer: Option<Result<T, String>>) -> Result<T, String> {
        answer.unwrap_or_else(|| {
            Err(if self.closed {
                self.error.clone().unwrap_or_else(|| "closed".to_owned())
            } else {
                "timeout".to_owned()
            })
        })
    }

    /// The message stream of the last publish or play.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Sends a video message on the publishing stream.
    pub fn send_video(&mut self, timestamp: u32, payload: &[u8]) -> io::Result<()> {
        self.send_media(MediaKind::Video, timestamp, payload)
    }

    /// Sends an audio message on the publishing stream.
    pub fn send_audio(&mut self, timestamp: u32, payload: &[u8]) -> io::Result<()> {
        self.send_media(MediaKind::Audio, timestamp, payload)
    }

    /// Sends a data message (e.g. [`metadata`](super::synth::metadata)) on the publishing stream.
    pub fn send_metadata(&mut self, timestamp: u32, payload: &[u8]) -> io::Result<()> {
        self.send_media(MediaKind::Data, timestamp, payload)
    }

    /// Sends a media message on the publishing stream and flushes.
    pub fn send_media(
        &mut self,
        kind: MediaKind,
        timestamp: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        self.session
            .send_media(self.stream_id, kind, timestamp, payload);
        self.flush()
    }

    /// Sends FCUnpublish (when publishing) and deleteStream for the current stream.
    pub fn delete_stream(&mut self) -> io::Result<()> {
        self.session.delete_stream(self.stream_id);
        self.flush()
    }

    /// Writes everything the session has queued (acks, pongs, commands, media).
    pub fn flush(&mut self) -> io::Result<()> {
        let out = self.session.take_output();
        if out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&out)
    }

    /// The next event, reading for up to `timeout`; `None` on timeout or once the connection
    /// is closed (or the session failed: see [`error`](Self::error)).
    pub fn next_event(&mut self, timeout: Duration) -> Option<ClientEvent> {
        self.wait_for(timeout, |e| Some(e.clone()))
    }

    /// Waits up to `timeout` for the first queued or new event for which `pick` returns
    /// `Some`, removes it and returns the pick; other events stay queued.
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&ClientEvent) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            while let Some(event) = self.events.get(checked) {
                if let Some(found) = pick(event) {
                    self.events.remove(checked);
                    return Some(found);
                }
                checked += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.closed || left.is_zero() || !self.read_some(left) {
                return None;
            }
        }
    }

    /// Up to `n` media messages, waiting at most `timeout` in total; other events stay queued.
    pub fn read_media(&mut self, timeout: Duration, n: usize) -> Vec<MediaMessage> {
        let deadline = Instant::now() + timeout;
        let mut media = Vec::new();
        while media.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = self.wait_for(left, |e| match e {
                ClientEvent::Media {
                    kind,
                    timestamp,
                    payload,
                    ..
                } => Some((*kind, *timestamp, payload.clone())),
                _ => None,
            });
            match next {
                Some(m) => media.push(m),
                None => break,
            }
        }
        media
    }

    /// Waits up to `timeout` for the server to close the connection, discarding what arrives.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.read_some(left);
            self.events.clear();
        }
        true
    }

    /// Reads once (up to `timeout`) and feeds the session; false on timeout or close.
    fn read_some(&mut self, timeout: Duration) -> bool {
        if self.stream.set_read_timeout(Some(timeout)).is_err() {
            return false;
        }
        let n = match self.stream.read(&mut self.buf) {
            Ok(0) => return self.close(None),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => return true,
            Err(e) => return self.close(Some(e.to_string())),
        };
        let mut events = Vec::new();
        let fed = self.session.feed(&self.buf[..n], &mut events);
        self.events.extend(events);
        if let Err(e) = fed {
            return self.close(Some(format!("protocol error: {e}")));
        }
        if let Err(e) = self.flush() {
            return self.close(Some(e.to_string()));
        }
        true
    }

    /// Marks the connection closed; returns false (nothing more to read).
    fn close(&mut self, error: Option<String>) -> bool {
        self.closed = true;
        self.error = error;
        false
    }

    /// True once the server closed the connection or the session failed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Why the connection ended, if not by a clean close.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The socket, for hostile tests writing raw bytes.
    pub fn raw_stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The sans-IO session (e.g. `send_raw`, then [`flush`](Self::flush)).
    pub fn session(&mut self) -> &mut ClientSession {
        &mut self.session
    }
}

/// A failure's status code, `"_error"` when the server gave none.
fn error_code(code: &str) -> String {
    if code.is_empty() { "_error" } else { code }.to_owned()
}
/// Publish synthetic media: metadata, AVC + AAC headers, then `frames` video frames (a
/// keyframe every 30, 33 ms apart) each followed by an audio frame. Video frame `i` carries
/// sequence number `first + i`.
pub fn publish_frames(p: &mut RtmpClient, first: u32, frames: u32, ts0: u32) {
    p.send_metadata(ts0, &metadata()).unwrap();
    p.send_video(ts0, &avc_sequence_header()).unwrap();
    p.send_audio(ts0, &aac_sequence_header()).unwrap();
    for i in 0..frames {
        let ts = ts0 + i * 33;
        p.send_video(ts, &avc_frame(i % 30 == 0, first + i))
            .unwrap();
        p.send_audio(ts + 10, &aac_frame(first + i)).unwrap();
    }
}

/// The shard a `play started` log line reports.
pub fn shard_of(line: &str) -> usize {
    let v = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("shard="))
        .expect("shard field");
    v.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .expect("shard number")
}
