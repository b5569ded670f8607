//! Player tasks: RTMP (ClientSession), HTTP-FLV and raw (incremental FLV parser), HLS
//! (playlist polling, segment fetching).
//!
//! Every player reads into its executor's shared buffer and consumes the bytes inside the
//! read's poll (see `crate::net`): per read there is one `recv`, one clock read and the
//! parsing, nothing else.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpStream;
use glommio::sync::StaticPermit;
use shardcast::rtmp::client::{ClientEvent, ClientSession, MediaKind, RtmpUrl};

use super::exec::{ConnState, Exec, PlayerRec};
use super::target::Target;
use crate::clock::{mono_ns, sleep_until};
use crate::flvfile::{TAG_AUDIO, TAG_VIDEO};
use crate::flvstream::{Dechunker, FlvStream, TagView};
use crate::hls::{parse_playlist, TsChecker};
use crate::http::{get_request, parse_head, BodyKind, Head, HttpUrl};
use crate::net::{connect, read_into, timeout, write_all};
use crate::stats::Histogram;
use crate::track::Track;

/// Largest response head or playlist accepted.
const MAX_HEAD: usize = 64 * 1024;
const MAX_PLAYLIST: usize = 1024 * 1024;
/// Largest slice of bytes handed to an RTMP session at once.
const RTMP_FEED: usize = 16 * 1024;

type Rec = Rc<RefCell<PlayerRec>>;

/// Runs one player from its start time until the executor drops it.
pub async fn run(ex: Rc<Exec>, rec: Rec, target: Target, connect_at: u64) {
    sleep_until(connect_at).await;
    let permit = match ex.connecting.clone().acquire_static_permit(1).await {
        Ok(p) => p,
        Err(e) => {
            rec.borrow_mut().state = ConnState::Failed;
            ex.error(format!("connect slot: {e}"));
            return;
        }
    };
    {
        let mut r = rec.borrow_mut();
        r.state = ConnState::Connecting;
        r.track.connect_ns = mono_ns();
    }
    let proto = target.proto();
    let outcome = match target {
        Target::Rtmp { addr, url } => rtmp(&ex, &rec, addr, &url, permit).await,
        Target::Flv(url) => {
            let request = get_request(&url.authority, &url.path, false);
            flv(&ex, &rec, url.addr, Some(request), permit).await
        }
        Target::Raw(addr) => flv(&ex, &rec, addr, None, permit).await,
        Target::Hls(url) => hls(&ex, &rec, &url, permit).await,
    };
    let now = mono_ns();
    let mut r = rec.borrow_mut();
    let ended_early = ex.window.get().is_some_and(|w| now < w.end_ns);
    match outcome {
        Err(e) if r.state != ConnState::Connected => {
            r.state = ConnState::Failed;
            ex.error(format!("{} player: {e}", proto.name()));
        }
        Err(e) if ended_early => {
            r.disconnected = true;
            ex.error(format!("{} player: {e}", proto.name()));
        }
        Ok(()) if ended_early => {
            r.disconnected = true;
            ex.error(format!(
                "{} player: server closed the connection",
                proto.name()
            ));
        }
        _ => {}
    }
}

/// Marks the player connected and frees its connect slot.
fn connected(rec: &Rec, permit: &mut Option<StaticPermit>) {
    rec.borrow_mut().state = ConnState::Connected;
    permit.take();
}

fn setup_limit(ex: &Exec) -> Duration {
    Duration::from_secs_f64(ex.shared.cfg.connect_timeout)
}

/// RTMP player state between reads.
struct Rtmp {
    session: ClientSession,
    events: Vec<ClientEvent>,
    name: String,
    playing: bool,
}

impl Rtmp {
    fn consume(
        &mut self,
        data: &[u8],
        now: u64,
        track: &mut Track,
        latency: &mut Histogram,
    ) -> Result<(), String> {
        // Fed in slices: the session's input buffer keeps the capacity of the largest feed,
        // so slicing bounds its memory per player (reads can be as large as the shared
        // read buffer).
        for piece in data.chunks(RTMP_FEED) {
            self.session
                .feed(piece, &mut self.events)
                .map_err(|e| format!("protocol error: {e}"))?;
            self.handle_events(now, track, latency)?;
        }
        Ok(())
    }

    fn handle_events(
        &mut self,
        now: u64,
        track: &mut Track,
        latency: &mut Histogram,
    ) -> Result<(), String> {
        for event in self.events.drain(..) {
            match event {
                ClientEvent::Media {
                    kind: MediaKind::Video,
                    timestamp,
                    payload,
                    ..
                } => track.on_video(timestamp, &payload, now, latency),
                ClientEvent::Media {
                    kind: MediaKind::Audio,
                    timestamp,
                    payload,
                    ..
                } => track.on_audio(timestamp, &payload, now),
                ClientEvent::Connected => self.session.create_stream(),
                ClientEvent::ConnectRejected { code, .. } => {
                    return Err(format!("connect rejected: {code}"))
                }
                ClientEvent::StreamCreated { stream_id } => {
                    self.session.play(stream_id, &self.name)
                }
                ClientEvent::CreateStreamFailed { code, .. } => {
                    return Err(format!("createStream failed: {code}"))
                }
                ClientEvent::Status { level, code, .. } => {
                    if level == "error" {
                        return Err(format!("play refused: {code}"));
                    }
                    if code == "NetStream.Play.Start" {
                        self.playing = true;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// One read: bytes counted, then handed to `consume`; `Ok(false)` when the peer closed.
async fn read_step(
    ex: &Exec,
    rec: &Rec,
    stream: &RefCell<TcpStream>,
    mut consume: impl FnMut(&[u8], u64, &mut Track, &mut Histogram) -> Result<(), String>,
) -> Result<bool, String> {
    let got = read_into(stream, &ex.buf, |data| {
        let now = mono_ns();
        let mut r = rec.borrow_mut();
        r.track.on_bytes(data.len(), now);
        consume(data, now, &mut r.track, &mut ex.latency_us.borrow_mut())
    })
    .await
    .map_err(|e| format!("read: {e}"))?;
    match got {
        None => Ok(false),
        Some(r) => r.map(|()| true),
    }
}

async fn rtmp(
    ex: &Exec,
    rec: &Rec,
    addr: std::net::SocketAddr,
    url: &RtmpUrl,
    permit: StaticPermit,
) -> Result<(), String> {
    let mut permit = Some(permit);
    let limit = setup_limit(ex);
    let stream = connect(addr, limit)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let stream = RefCell::new(stream);
    let mut st = Rtmp {
        session: ClientSession::new(url.client_config()),
        events: Vec::new(),
        name: url.stream.clone(),
        playing: false,
    };
    let c0c1 = st.session.start();
    write_all(&stream, &c0c1)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let deadline = mono_ns() + limit.as_nanos() as u64;
    loop {
        let playing = st.playing;
        let step = read_step(ex, rec, &stream, |d, now, t, h| st.consume(d, now, t, h));
        let open = if playing {
            step.await?
        } else {
            let left = Duration::from_nanos(deadline.saturating_sub(mono_ns()).max(1));
            timeout(left, step)
                .await
                .ok_or("timed out before NetStream.Play.Start")??
        };
        if st.session.output_len() > 0 {
            let out = st.session.take_output();
            write_all(&stream, &out)
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
        if st.playing && permit.is_some() {
            connected(rec, &mut permit);
        }
        if !open {
            return if st.playing {
                Ok(())
            } else {
                Err("server closed the connection".into())
            };
        }
    }
}

/// HTTP-FLV (with `request`) or raw (without) player state between reads.
struct Flv {
    /// The response head read so far; `None` once the body started.
    head: Option<Vec<u8>>,
    chunked: Option<Dechunker>,
    flv: FlvStream,
}

impl Flv {
    fn consume(
        &mut self,
        data: &[u8],
        now: u64,
        track: &mut Track,
        latency: &mut Histogram,
    ) -> Result<(), String> {
        let rest;
        let mut data = data;
        if let Some(head) = &mut self.head {
            head.extend_from_slice(data);
            match parse_head(head)? {
                None if head.len() > MAX_HEAD => return Err("response head too large".into()),
                None => return Ok(()),
                Some(h) if h.status != 200 => return Err(format!("HTTP status {}", h.status)),
                Some(h) => {
                    if h.body == BodyKind::Chunked {
                        self.chunked = Some(Dechunker::new());
                    }
                    rest = head.split_off(h.len);
                    data = &rest;
                    self.head = None;
                }
            }
        }
        let mut on_tag = |t: TagView<'_>| match t.type_id {
            TAG_VIDEO => track.on_video(t.timestamp, t.prefix, now, latency),
            TAG_AUDIO => track.on_audio(t.timestamp, t.prefix, now),
            _ => {}
        };
        let flv = &mut self.flv;
        match &mut self.chunked {
            Some(d) => d.feed(data, &mut |piece: &[u8]| {
                flv.feed(piece, &mut on_tag).map_err(|e| e.to_string())
            }),
            None => flv.feed(data, &mut on_tag).map_err(|e| e.to_string()),
        }
    }
}

async fn flv(
    ex: &Exec,
    rec: &Rec,
    addr: std::net::SocketAddr,
    request: Option<Vec<u8>>,
    permit: StaticPermit,
) -> Result<(), String> {
    let mut permit = Some(permit);
    let limit = setup_limit(ex);
    let stream = connect(addr, limit)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let stream = RefCell::new(stream);
    let mut st = Flv {
        head: request.as_ref().map(|_| Vec::new()),
        chunked: None,
        flv: FlvStream::new(),
    };
    if let Some(request) = request {
        write_all(&stream, &request)
            .await
            .map_err(|e| format!("write: {e}"))?;
    }
    let deadline = mono_ns() + limit.as_nanos() as u64;
    loop {
        if st.head.is_none() && permit.is_some() {
            connected(rec, &mut permit);
        }
        let step = read_step(ex, rec, &stream, |d, now, t, h| st.consume(d, now, t, h));
        let open = if permit.is_none() {
            step.await?
        } else {
            let left = Duration::from_nanos(deadline.saturating_sub(mono_ns()).max(1));
            timeout(left, step)
                .await
                .ok_or("timed out waiting for the response")??
        };
        if !open {
            return if permit.is_none() {
                Ok(())
            } else {
                Err("server closed the connection".into())
            };
        }
    }
}

/// Where an HTTP response body goes.
enum Sink<'a> {
    Collect(&'a mut Vec<u8>),
    Ts(&'a mut TsChecker),
}

/// An HTTP response being read.
struct Response<'a> {
    head_buf: Vec<u8>,
    head: Option<Head>,
    left: u64,
    chunked: Dechunker,
    done: bool,
    sink: Sink<'a>,
}

impl Response<'_> {
    fn consume(&mut self, data: &[u8]) -> Result<(), String> {
        let rest;
        let mut data = data;
        if self.head.is_none() {
            self.head_buf.extend_from_slice(data);
            match parse_head(&self.head_buf)? {
                None if self.head_buf.len() > MAX_HEAD => {
                    return Err("response head too large".into())
                }
                None => return Ok(()),
                Some(h) => {
                    rest = self.head_buf.split_off(h.len);
                    data = &rest;
                    if let BodyKind::Length(n) = h.body {
                        self.left = n;
                        self.done = n == 0;
                    }
                    self.head = Some(h);
                }
            }
        }
        let sink = &mut self.sink;
        let mut put = |piece: &[u8]| -> Result<(), String> {
            match sink {
                Sink::Collect(v) => {
                    if v.len() + piece.len() > MAX_PLAYLIST {
                        return Err("playlist too large".into());
                    }
                    v.extend_from_slice(piece);
                }
                Sink::Ts(c) => c.feed(piece),
            }
            Ok(())
        };
        match self.head.as_ref().map(|h| h.body) {
            Some(BodyKind::Length(_)) => {
                let take = (self.left.min(data.len() as u64)) as usize;
                put(&data[..take])?;
                self.left -= take as u64;
                self.done = self.left == 0;
            }
            Some(BodyKind::Chunked) => {
                self.chunked.feed(data, &mut put)?;
                self.done = self.chunked.done();
            }
            Some(BodyKind::Close) => put(data)?,
            None => {}
        }
        Ok(())
    }
}

/// GET `path` on a keep-alive connection (opened if needed); returns the status. The
/// connection is dropped after errors and when the server does not keep it alive.
async fn get(
    ex: &Exec,
    rec: &Rec,
    conn: &mut Option<RefCell<TcpStream>>,
    url: &HttpUrl,
    path: &str,
    sink: Sink<'_>,
) -> Result<u16, String> {
    let what = match sink {
        Sink::Collect(_) => "playlist",
        Sink::Ts(_) => "segment",
    };
    let limit = setup_limit(ex);
    if conn.is_none() {
        let stream = connect(url.addr, limit)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        *conn = Some(RefCell::new(stream));
    }
    let stream = conn.as_ref().expect("connected above");
    let request = get_request(&url.authority, path, true);
    let mut resp = Response {
        head_buf: Vec::new(),
        head: None,
        left: 0,
        chunked: Dechunker::new(),
        done: false,
        sink,
    };
    let exchange = async {
        write_all(stream, &request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        while !resp.done {
            let got = read_into(stream, &ex.buf, |data| {
                rec.borrow_mut().track.on_bytes(data.len(), mono_ns());
                resp.consume(data)
            })
            .await
            .map_err(|e| format!("read: {e}"))?;
            match got {
                Some(r) => r?,
                None if resp.head.is_some_and(|h| h.body == BodyKind::Close) => break,
                None => return Err("server closed the connection".to_owned()),
            }
        }
        Ok(())
    };
    let outcome = timeout(limit, exchange)
        .await
        .unwrap_or_else(|| Err(format!("{what} request timed out")));
    let head = resp.head;
    if outcome.is_err() || !head.is_some_and(|h| h.keep_alive) {
        *conn = None;
    }
    outcome?;
    let status = head.map_or(0, |h| h.status);
    if status != 200 {
        return Err(format!("HTTP status {status} for a {what}"));
    }
    Ok(status)
}

async fn hls(ex: &Exec, rec: &Rec, url: &HttpUrl, permit: StaticPermit) -> Result<(), String> {
    let mut permit = Some(permit);
    let mut conn = None;
    let mut last: Option<u64> = None;
    let mut ts = TsChecker::new();
    let mut text = Vec::new();
    let started = mono_ns();
    loop {
        text.clear();
        let mut poll = Duration::from_millis(500);
        match get(ex, rec, &mut conn, url, &url.path, Sink::Collect(&mut text)).await {
            Ok(_) => {
                let playlist = std::str::from_utf8(&text)
                    .map_err(|_| "playlist is not UTF-8".to_owned())
                    .and_then(parse_playlist);
                match playlist {
                    Ok(p) => {
                        if permit.is_some() {
                            connected(rec, &mut permit);
                        }
                        if ex.in_window(mono_ns()) {
                            rec.borrow_mut().hls.playlists += 1;
                        }
                        poll = Duration::from_secs_f64((p.target_duration / 2.0).clamp(0.5, 2.0));
                        let fresh: Vec<(u64, String)> = match last {
                            None => p.segments.last().cloned().into_iter().collect(),
                            Some(l) => p.segments.into_iter().filter(|s| s.0 > l).collect(),
                        };
                        for (seq, uri) in fresh {
                            let path = url.join(&uri);
                            let (v0, a0) = (ts.video_pes, ts.audio_pes);
                            match get(ex, rec, &mut conn, url, &path, Sink::Ts(&mut ts)).await {
                                Ok(_) => {
                                    ts.end_segment();
                                    let now = mono_ns();
                                    let mut r = rec.borrow_mut();
                                    r.hls.ts_errors = ts.sync_errors;
                                    if ex.in_window(now) {
                                        r.hls.segments += 1;
                                        r.track.video += ts.video_pes - v0;
                                        r.track.audio += ts.audio_pes - a0;
                                    }
                                    last = Some(seq);
                                }
                                Err(e) => {
                                    ts.end_segment();
                                    hls_error(ex, rec, e);
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => hls_error(ex, rec, e),
                }
            }
            Err(e) => hls_error(ex, rec, e),
        }
        if permit.is_some() && mono_ns() - started > setup_limit(ex).as_nanos() as u64 {
            return Err("no playlist before the connect timeout".into());
        }
        glommio::timer::sleep(poll).await;
    }
}

fn hls_error(ex: &Exec, rec: &Rec, e: String) {
    rec.borrow_mut().hls.errors += 1;
    ex.error(format!("hls player: {e}"));
}
