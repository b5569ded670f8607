//! One RTMP connection: the sans-IO session driven over a socket, wired to the hub.
//!
//! Three futures race for each connection: the reader (bytes -> session -> events -> hub),
//! the writer (everything queued for this connection, gathered into one write per wake-up)
//! and the alarm the shard's sweeper raises (timeouts, replacement by another publisher; see
//! `serve::watch`). When one ends, the
//! connection ends; what was already queued is flushed briefly, then the socket closes.

use super::hooks::{Decision, Opened};
use super::io::Conn;
use super::tls::{TlsConn, Transport};
use super::watch::{Alarm, Watched};
use super::{within, ShardState};
use crate::hooks::{Action, HookEvent};
use crate::hub::{release_burst, Frame, Item, PlayerQueue, PubId, StreamEvent, StreamKey};
use crate::keys::{self, KeyError};
use crate::limits::{Limit, Ticket};
use crate::rtmp::chunk::DecoderLimits;
use crate::rtmp::session::{Event, ServerSession, SessionConfig};
use crate::stats::{Proto, SessionGuard, SessionInfo};
use bytes::Bytes;
use futures_lite::future;
use glommio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn, Instrument};

/// Size of one socket read.
const READ_BUF: usize = 64 * 1024;
/// Initial read buffer of a connection (the handshake's 1,537-byte C0+C1 fits).
const READ_BUF_START: usize = 4 * 1024;
/// Read buffer of a player once it plays.
const PLAYER_READ_BUF: usize = 512;
/// How long queued bytes (an error status, say) may take to leave when a connection ends.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// What the connection currently does.
enum Role {
    None,
    Publisher {
        key: StreamKey,
        id: PubId,
        /// After a frame had to be dropped, skip until the next keyframe.
        resync: bool,
    },
    Player {
        key: StreamKey,
        player: u64,
    },
}

struct RtmpConn {
    st: Rc<ShardState>,
    io: Transport,
    conn_id: u64,
    session: RefCell<ServerSession>,
    /// Everything to send, in order: protocol bytes and media frames.
    queue: Rc<RefCell<PlayerQueue>>,
    app: RefCell<Option<String>>,
    role: RefCell<Role>,
    /// Message stream id media is sent on (the play stream).
    play_stream: Cell<u32>,
    started: Instant,
    /// When the player last had a live publisher (or started waiting).
    waiting_since: Cell<Option<Instant>>,
    /// A write is under way: if the connection ends now, the peer holds a partial message
    /// and nothing more may be sent.
    writing: Cell<bool>,
    /// When the peer's last bytes arrived (for `read_timeout`).
    last_read: Cell<Instant>,
    /// Raised by the shard's sweeper when a timeout expires (see `timeout_reason`).
    alarm: Alarm,
    peer: SocketAddr,
    /// The `tcUrl` of `connect` (stats show `tcUrl/name` as the session's URL).
    tc_url: RefCell<String>,
    /// The publish or play session as `/stat/livestat` lists it.
    listed: RefCell<Option<SessionGuard>>,
    /// This player's place under `max_players_per_stream`.
    player_ticket: RefCell<Option<Ticket>>,
    /// Incomplete-message bytes last reported to the shard's `PendingBudget`.
    pending_reported: Cell<usize>,
    /// The publish or play whose end the hooks hear (on_unpublish / on_stop) when this
    /// drops, or at shutdown.
    hooked: RefCell<Option<Opened>>,
}

/// Longest `tcUrl` kept for stats.
const MAX_TC_URL: usize = 1024;

/// Why a connection ended.
type Outcome = Result<&'static str, String>;

/// Serve one accepted RTMP connection to the end.
pub(crate) async fn serve(st: Rc<ShardState>, stream: TcpStream, peer: SocketAddr) {
    let conn_id = st.next_conn_id();
    let span = tracing::info_span!("rtmp", shard = st.id, conn = conn_id, %peer);
    async move {
        let io = match &st.rtmp_tls {
            None => Transport::Plain(Conn::new(stream)),
            Some(tls) => match TlsConn::new(Conn::new(stream), tls.clone()) {
                Ok(t) => Transport::Tls(Box::new(t)),
                Err(e) => return warn!(error = %e, "RTMPS session not created"),
            },
        };
        let conn = Rc::new(RtmpConn::new(st.clone(), io, conn_id, peer));
        let watched: Rc<dyn Watched> = conn.clone();
        st.watchlist.add(Rc::downgrade(&watched));
        debug!("connected");
        let outcome = future::or(
            future::or(conn.clone().read_loop(), conn.clone().write_loop()),
            async { Outcome::Err(conn.alarm.wait().await) },
        )
        .await;
        match &outcome {
            Ok(why) => debug!(reason = why, "closing"),
            Err(why) => info!(reason = %why, "closing"),
        }
        conn.leave();
        conn.final_flush().await;
    }
    .instrument(span)
    .await
}

impl RtmpConn {
    fn new(st: Rc<ShardState>, io: Transport, conn_id: u64, peer: SocketAddr) -> Self {
        let cfg = &st.cfg;
        let session = ServerSession::new(SessionConfig {
            chunk_size: cfg.rtmp_chunk_size,
            window_ack_size: cfg.window_ack_size,
            limits: DecoderLimits {
                max_message_size: cfg.max_message_size,
                max_chunk_size: cfg.max_chunk_size,
                max_pending_bytes: cfg.max_pending_bytes,
                max_chunk_streams: cfg.max_chunk_streams,
            },
        });
        // No per-read socket timeout: the shard's sweeper checks handshake_timeout and
        // idle_timeout since accept and read_timeout since the last read (`timeout_reason`),
        // so a read that waits arms no timer.
        io.conn()
            .set_write_timeout(Some(Duration::from_secs(cfg.write_timeout)));
        let queue = PlayerQueue::new(cfg.player_queue_bytes, cfg.player_max_skips)
            .with_audio_merge(cfg.audio_merge_ms > 0)
            .with_merged_writes(cfg.merge_write_ms > 0);
        RtmpConn {
            io,
            conn_id,
            session: RefCell::new(session),
            queue: Rc::new(RefCell::new(queue)),
            app: RefCell::new(None),
            role: RefCell::new(Role::None),
            play_stream: Cell::new(1),
            started: Instant::now(),
            waiting_since: Cell::new(None),
            writing: Cell::new(false),
            last_read: Cell::new(Instant::now()),
            alarm: Alarm::default(),
            peer,
            tc_url: RefCell::default(),
            listed: RefCell::default(),
            player_ticket: RefCell::default(),
            pending_reported: Cell::new(0),
            hooked: RefCell::default(),
            st,
        }
    }

    /// List this connection in the shard's stats as publishing or playing `key`.
    fn list(&self, role: crate::stats::Role, key: &StreamKey, name: &str, stream_id: u32) {
        let base = self.tc_url.borrow();
        let url = format!("{}/{name}", base.trim_end_matches('/'));
        let guard = self.st.stats.open(SessionInfo {
            role,
            protocol: "rtmp",
            key: key.clone(),
            url,
            stream_id,
            remote: self.peer.to_string(),
            connected_at: std::time::SystemTime::now(),
        });
        *self.listed.borrow_mut() = Some(guard);
    }

    // ---- reading ----

    async fn read_loop(self: Rc<Self>) -> Outcome {
        // Players send little more than acks: start small (a player's memory is mostly this
        // buffer) and grow to READ_BUF once a read fills it (a publisher, at once).
        let mut buf = vec![0u8; READ_BUF_START];
        let mut events = Vec::new();
        loop {
            let n = match self.io.read(&mut buf).await {
                Ok(0) => return self.peer_closed(),
                Ok(n) if n == buf.len() && n < READ_BUF => {
                    buf.resize(READ_BUF, 0);
                    n
                }
                Ok(n) => n,
                Err(e) => return Err(format!("read: {e}")),
            };
            self.last_read.set(Instant::now());
            self.st.stats.counters.bytes_in(Proto::Rtmp, n);
            if let Some(listed) = &*self.listed.borrow() {
                listed.meter().wire(n);
            }
            let fed = self.session.borrow_mut().feed(&buf[..n], &mut events);
            self.flush_session();
            if let Err(e) = fed {
                return Err(format!("bad input: {e}"));
            }
            self.check_pending()?;
            for ev in events.drain(..) {
                if let Err(why) = self.on_event(ev).await {
                    self.flush_session();
                    return Err(why);
                }
                self.flush_session();
            }
            if buf.len() > PLAYER_READ_BUF && matches!(*self.role.borrow(), Role::Player { .. }) {
                // A player only sends acks from now on: a thousand of them need no 4 KiB each.
                buf = vec![0u8; PLAYER_READ_BUF];
            }
        }
    }

    /// EOF: a normal end, unless it cut a message short (an encoder that died mid-write),
    /// which the log says (the whole messages before it were delivered and recorded).
    fn peer_closed(&self) -> Outcome {
        match self.session.borrow().pending_bytes() {
            0 => Ok("peer closed"),
            n => Err(format!(
                "peer closed mid-message ({n} bytes of incomplete messages dropped)"
            )),
        }
    }

    /// Report this connection's incomplete-message bytes to the shard; the connection that
    /// takes the shard over `max_shard_pending_bytes` is closed.
    fn check_pending(&self) -> Result<(), String> {
        let now = self.session.borrow().pending_bytes();
        if now == self.pending_reported.get() {
            return Ok(());
        }
        if self.st.pending.update(&self.pending_reported, now) {
            return Ok(());
        }
        self.st.stats.counters.limit_reached(Limit::PendingBytes);
        Err(format!(
            "holds {now} bytes of incomplete messages while the shard is over \
             max_shard_pending_bytes ({})",
            self.st.cfg.max_shard_pending_bytes
        ))
    }

    fn secs(&self, s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Move the session's pending output into the send queue (keeps reply order).
    fn flush_session(&self) {
        if let Some(bytes) = self.session.borrow_mut().take_output() {
            self.queue.borrow_mut().push_raw(bytes);
        }
    }

    async fn on_event(&self, ev: Event) -> Result<(), String> {
        match ev {
            Event::Connect { app, tc_url } => Box::pin(self.on_connect(app, &tc_url)).await,
            // Boxed: the key check may wait on a blocking store, and that future would
            // otherwise sit inline in every connection's task, players' included.
            Event::Publish {
                stream_id,
                name,
                query,
                ..
            } => Box::pin(self.on_publish(stream_id, name, query)).await,
            Event::Play {
                stream_id,
                name,
                query,
                ..
            } => Box::pin(self.on_play(stream_id, name, query)).await,
            Event::Media {
                kind,
                timestamp,
                payload,
                ..
            } => {
                self.on_media(Frame::from_message(kind, timestamp, payload));
                Ok(())
            }
            Event::Unpublish { .. } | Event::StopPlay { .. } => {
                self.leave();
                Ok(())
            }
        }
    }

    async fn on_connect(&self, app: String, tc_url: &str) -> Result<(), String> {
        let live = self.st.cfg.app(&app).is_some_and(|a| a.live);
        if !live {
            self.session
                .borrow_mut()
                .reject_connect(&format!("application `{app}` not found"));
            return Err(format!("connect to unknown or disabled app `{app}`"));
        }
        debug!(app = %app, tc_url, "connect");
        if let Some(caps) = self.session.borrow().client_caps() {
            let video: Vec<&str> = caps.video.iter().map(|(c, _)| c.as_str()).collect();
            let audio: Vec<&str> = caps.audio.iter().map(|(c, _)| c.as_str()).collect();
            debug!(
                fourcc_list = %caps.fourcc_list.join(","),
                video = %video.join(","),
                audio = %audio.join(","),
                caps_ex = caps.caps_ex,
                "enhanced RTMP client"
            );
        }
        let mut kept = tc_url.to_owned();
        if kept.len() > MAX_TC_URL {
            kept.truncate(kept.floor_char_boundary(MAX_TC_URL));
        }
        *self.tc_url.borrow_mut() = kept;
        if self.st.hooks.has(&app, Action::Connect) {
            // The client's query rides on the app ("live?token=x"), so on the tcUrl: taken from
            // the whole tcUrl (the kept one is cut for stats), at most as long as an HTTP
            // viewer's request head may be.
            let mut query = tc_url.split_once('?').map_or("", |(_, q)| q);
            let limit = self.st.cfg.http_max_header_bytes;
            if query.len() > limit {
                query = &query[..query.floor_char_boundary(limit)];
            }
            let ev = self.hook_event(&app, String::new(), query.to_owned());
            if let Decision::Deny { reason, .. } = self.st.hooks.decide(Action::Connect, &ev).await
            {
                self.session
                    .borrow_mut()
                    .reject_connect("unauthorized (on_connect hook)");
                return Err(format!(
                    "connect to `{app}` refused by on_connect hook: {reason}"
                ));
            }
        }
        self.session.borrow_mut().accept_connect();
        *self.app.borrow_mut() = Some(app);
        Ok(())
    }

    fn app(&self) -> String {
        self.app.borrow().clone().unwrap_or_default()
    }

    /// What hooks are told about this connection's `stream` (a name or room) in `app`.
    fn hook_event(&self, app: &str, stream: String, query: String) -> HookEvent {
        HookEvent {
            app: app.to_owned(),
            stream,
            query,
            client: self.peer.to_string(),
            protocol: "rtmp",
            conn_id: self.conn_id,
            file: None,
            tc_url: Some(self.tc_url.borrow().clone()),
        }
    }

    /// Ask the on_publish hooks: `Ok(Some(room))` when one mapped the name to a room (the
    /// channel-key check is then skipped), `Ok(None)` to go on with the key check, `Err`
    /// after refusing the publish.
    async fn publish_hook(
        &self,
        stream_id: u32,
        app: &str,
        name: &str,
        query: &str,
    ) -> Result<Option<String>, String> {
        if !self.st.hooks.has(app, Action::Publish) {
            return Ok(None);
        }
        let ev = self.hook_event(app, name.to_owned(), query.to_owned());
        match self.st.hooks.decide(Action::Publish, &ev).await {
            Decision::Allow { room: None } => Ok(None),
            Decision::Allow { room: Some(room) } => match keys::validate_room(&room) {
                Ok(()) => Ok(Some(room)),
                Err(e) => {
                    self.session.borrow_mut().reject_publish(
                        stream_id,
                        "NetStream.Publish.BadName",
                        "the on_publish hook mapped the name to an invalid room",
                    );
                    Err(format!(
                        "publish refused: on_publish hook gave room `{room}`: {e}"
                    ))
                }
            },
            Decision::Deny { reason, .. } => {
                self.session.borrow_mut().reject_publish(
                    stream_id,
                    "NetStream.Publish.Unauthorized",
                    "unauthorized (on_publish hook)",
                );
                Err(format!(
                    "publish to `{app}` refused by on_publish hook: {reason}"
                ))
            }
        }
    }

    async fn on_publish(&self, stream_id: u32, name: String, query: String) -> Result<(), String> {
        let app = self.app();
        let mapped = self.publish_hook(stream_id, &app, &name, &query).await?;
        let (room, key) = match self
            .admit_publish(stream_id, &app, name.clone(), mapped)
            .await
        {
            Ok(admitted) => admitted,
            Err(why) => {
                if self.st.hooks.has(&app, Action::Publish) {
                    // on_publish allowed it: its hook server hears that it did not happen.
                    let ev = self.hook_event(&app, name, query);
                    self.st.hooks.notify(Action::Unpublish, &ev);
                }
                return Err(why);
            }
        };
        let id = self.st.hub.borrow_mut().start_publish(&key, self.conn_id);
        self.session.borrow_mut().accept_publish(stream_id, &room);
        *self.hooked.borrow_mut() = self.st.hooks.open(
            Action::Unpublish,
            self.hook_event(&app, room.clone(), query),
        );
        self.list(crate::stats::Role::Publisher, &key, &room, stream_id);
        info!(shard = self.st.id, stream = %key, "publish started");
        *self.role.borrow_mut() = Role::Publisher {
            key,
            id,
            resync: false,
        };
        Ok(())
    }

    /// After the hook: the channel-key check (unless the hook gave the room) and
    /// `max_streams`. Returns the room and stream key, or refuses the publish.
    async fn admit_publish(
        &self,
        stream_id: u32,
        app: &str,
        name: String,
        mapped: Option<String>,
    ) -> Result<(String, StreamKey), String> {
        let checked = match mapped {
            Some(room) => Ok(Some(room)),
            None => self.authorize(name).await,
        };
        let room = match checked {
            Ok(Some(room)) => room,
            Ok(None) => {
                self.session.borrow_mut().reject_publish(
                    stream_id,
                    "NetStream.Publish.BadName",
                    "invalid stream key",
                );
                return Err(format!("publish to app `{app}` refused: invalid key"));
            }
            Err(e) => {
                self.session.borrow_mut().reject_publish(
                    stream_id,
                    "NetStream.Publish.BadName",
                    "stream keys unavailable",
                );
                return Err(format!("publish refused: {e}"));
            }
        };
        let key: StreamKey = format!("{app}/{room}").into();
        if !self.st.directory.claim(&key, self.st.cfg.max_streams) {
            self.st.stats.counters.limit_reached(Limit::Streams);
            self.session.borrow_mut().reject_publish(
                stream_id,
                "NetStream.Publish.Rejected",
                "server stream limit reached (max_streams)",
            );
            return Err(format!("publish of `{key}` refused: max_streams reached"));
        }
        Ok((room, key))
    }

    /// Map a publish name to a room with the key store, off the executor when it may block.
    async fn authorize(&self, name: String) -> Result<Option<String>, KeyError> {
        let store = self.st.keys.clone();
        let noauth = self.st.cfg.rtmp_noauth;
        if store.is_blocking() {
            glommio::executor()
                .spawn_blocking(move || keys::authorize_publish(&*store, &name, noauth))
                .await
        } else {
            keys::authorize_publish(&*store, &name, noauth)
        }
    }

    async fn on_play(&self, stream_id: u32, name: String, query: String) -> Result<(), String> {
        if let Err(e) = keys::validate_room(&name) {
            self.session.borrow_mut().reject_play(
                stream_id,
                "NetStream.Play.StreamNotFound",
                &format!("invalid stream name: {e}"),
            );
            return Err(format!("play refused: invalid name: {e}"));
        }
        // The place first: a play the hook allowed is never refused after it (its hook server
        // would wait for an on_stop that never comes).
        let key: StreamKey = format!("{}/{}", self.app(), name).into();
        let Some(ticket) = self.st.admission.join(&key) else {
            self.st
                .stats
                .counters
                .limit_reached(Limit::PlayersPerStream);
            self.session.borrow_mut().reject_play(
                stream_id,
                "NetStream.Play.Failed",
                "stream player limit reached (max_players_per_stream)",
            );
            return Err(format!("play of `{key}` refused: max_players_per_stream"));
        };
        let app = self.app();
        let ev = self.hook_event(&app, name.clone(), query);
        if self.st.hooks.has(&app, Action::Play) {
            if let Decision::Deny { reason, .. } = self.st.hooks.decide(Action::Play, &ev).await {
                self.session.borrow_mut().reject_play(
                    stream_id,
                    "NetStream.Play.Failed",
                    "unauthorized (on_play hook)",
                );
                return Err(format!(
                    "play of `{app}/{name}` refused by on_play hook: {reason}"
                ));
            }
        }
        *self.player_ticket.borrow_mut() = Some(ticket);
        *self.hooked.borrow_mut() = self.st.hooks.open(Action::Stop, ev);
        self.session.borrow_mut().accept_play(stream_id, &name);
        self.flush_session();
        self.play_stream.set(stream_id);
        // Players may stay silent for long (acks only): the write side watches them instead.
        let player = self
            .st
            .hub
            .borrow_mut()
            .add_player(&key, self.queue.clone());
        let live = self.st.hub.borrow().is_live(&key);
        self.waiting_since.set((!live).then(Instant::now));
        self.list(crate::stats::Role::Player, &key, &name, stream_id);
        info!(shard = self.st.id, stream = %key, live, "play started");
        *self.role.borrow_mut() = Role::Player { key, player };
        Ok(())
    }

    fn on_media(&self, frame: Frame) {
        let mut role = self.role.borrow_mut();
        let Role::Publisher { key, id, resync } = &mut *role else {
            return;
        };
        // After a drop, video resumes at a keyframe; audio frames stand alone and always go.
        let is_video = frame.kind == crate::media::MediaKind::Video;
        if *resync && is_video && !frame.keyframe && !frame.header {
            return;
        }
        let keyframe = is_video && frame.keyframe;
        if let Some(listed) = &*self.listed.borrow() {
            listed.meter().media(frame.kind, frame.len());
        }
        let sent = self.st.hub.borrow_mut().publish_frame(key, *id, frame);
        if !sent {
            if !*resync {
                warn!(stream = %key, "home shard is congested: skipping to the next keyframe");
            }
            *resync = true;
        } else if keyframe {
            *resync = false;
        }
    }

    /// Stop publishing or playing, if doing either.
    fn leave(&self) {
        self.listed.borrow_mut().take();
        self.player_ticket.borrow_mut().take();
        self.st.pending.release(&self.pending_reported);
        let role = std::mem::replace(&mut *self.role.borrow_mut(), Role::None);
        // Its hooks hear the end (on_unpublish / on_stop).
        drop(self.hooked.borrow_mut().take());
        match role {
            Role::Publisher { key, id, .. } => {
                self.st.hub.borrow_mut().stop_publish(&key, id);
                info!(shard = self.st.id, stream = %key, "publish ended");
            }
            Role::Player { key, player } => {
                self.st.hub.borrow_mut().remove_player(&key, player);
                let dropped = self.queue.borrow().dropped();
                let slow = self.queue.borrow().closed().is_some();
                self.st.stats.counters.player_ended(dropped, slow);
                info!(shard = self.st.id, stream = %key, dropped, "play ended");
            }
            Role::None => {}
        }
    }

    // ---- writing ----

    async fn write_loop(self: Rc<Self>) -> Outcome {
        let mut items = Vec::new();
        let mut bufs = Vec::new();
        loop {
            poll_fn(|cx| self.queue.borrow_mut().poll_drain(cx, &mut items)).await;
            if let Some(reason) = self.queue.borrow().closed() {
                return Err(format!("player closed: {reason:?} (cannot keep up)"));
            }
            self.gather(&mut items, &mut bufs);
            release_burst(&mut items);
            let len: usize = bufs.iter().map(Bytes::len).sum();
            self.writing.set(true);
            let written = self.io.write_all_vectored(&mut bufs).await;
            self.writing.set(false);
            match written {
                Ok(()) => {
                    self.st.stats.counters.bytes_out(Proto::Rtmp, len);
                    if let Some(listed) = &*self.listed.borrow() {
                        listed.meter().wire(len);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(format!(
                        "peer accepted nothing for {} s (write_timeout)",
                        self.st.cfg.write_timeout
                    ));
                }
                Err(e) => return Err(format!("write: {e}")),
            }
        }
    }

    /// Turn queued items into wire buffers, in order: shared frame encodings by reference,
    /// sent together with one vectored write per wake-up.
    fn gather(&self, items: &mut Vec<Item>, bufs: &mut Vec<Bytes>) {
        let chunk_size = self.session.borrow().out_chunk_size();
        let stream_id = self.play_stream.get();
        let listed = self.listed.borrow();
        for item in items.drain(..) {
            match item {
                Item::Raw(b) => bufs.push(b),
                Item::Frame(f) => {
                    if let Some(listed) = &*listed {
                        listed.meter().media(f.frame.kind, f.frame.len());
                    }
                    f.rtmp_chunks(chunk_size, stream_id, bufs)
                }
                Item::Event(e) => {
                    self.on_stream_event(e, stream_id);
                    if let Some(b) = self.session.borrow_mut().take_output() {
                        bufs.push(b);
                    }
                }
            }
        }
    }

    fn on_stream_event(&self, e: StreamEvent, stream_id: u32) {
        let mut session = self.session.borrow_mut();
        match e {
            StreamEvent::Published => {
                self.waiting_since.set(None);
                session.notify_published(stream_id);
            }
            StreamEvent::Unpublished => {
                self.waiting_since.set(Some(Instant::now()));
                session.notify_unpublished(stream_id);
            }
        }
    }

    /// Send what is still queued (e.g. an error status), briefly, then close our side.
    async fn final_flush(&self) {
        if self.writing.get() {
            // The writer stopped mid-message: more bytes would be garbage to the peer.
            self.io.shutdown().await;
            return;
        }
        let mut items = Vec::new();
        {
            let mut q = self.queue.borrow_mut();
            let noop = std::task::Waker::noop();
            let _ = q.poll_drain(&mut std::task::Context::from_waker(noop), &mut items);
        }
        let raw: Vec<u8> = items
            .into_iter()
            .filter_map(|i| match i {
                Item::Raw(b) => Some(b),
                _ => None,
            })
            .flat_map(|b| b.to_vec())
            .collect();
        if !raw.is_empty() {
            let _ = within(FINAL_FLUSH, self.io.write_all(&raw)).await;
        }
        self.io.shutdown().await;
    }

    // ---- timeouts and replacement ----

    /// Why the connection must end now, if it must: a timeout, a lagging player, or another
    /// publisher took its stream (the hub then already serves the new one; `leave` sends a
    /// harmless stale unpublish). Called by the shard's sweeper every `watch::TICK`.
    fn timeout_reason(&self, now: Instant) -> Option<String> {
        let cfg = &self.st.cfg;
        let (idle, publisher) = match &*self.role.borrow() {
            Role::None => (true, false),
            Role::Publisher { .. } => (false, true),
            Role::Player { .. } => (false, false),
        };
        if let Some(reason) = self.queue.borrow().closed() {
            // Seen here too: the writer may be stuck in a write to a peer that reads nothing.
            return Some(format!("player closed: {reason:?} (cannot keep up)"));
        }
        if publisher && self.st.hub.borrow().is_kicked(self.conn_id) {
            return Some("replaced by a new publisher of the same stream".into());
        }
        let silent = now.saturating_duration_since(self.last_read.get());
        if publisher && silent > self.secs(cfg.read_timeout) {
            return Some(format!(
                "publisher sent nothing for {} s (read_timeout)",
                cfg.read_timeout
            ));
        }
        let age = now.saturating_duration_since(self.started);
        let handshaking = !self.session.borrow().handshake_done();
        if handshaking && age > self.secs(cfg.handshake_timeout) {
            return Some(format!(
                "handshake not finished within {} s (handshake_timeout)",
                cfg.handshake_timeout
            ));
        }
        if idle && age > self.secs(cfg.idle_timeout) {
            return Some(format!(
                "neither published nor played within {} s (idle_timeout)",
                cfg.idle_timeout
            ));
        }
        let waited = self
            .waiting_since
            .get()
            .map(|t| now.saturating_duration_since(t));
        if waited.is_some_and(|w| w > self.secs(cfg.play_wait_timeout)) {
            return Some(format!(
                "no publisher for {} s (play_wait_timeout)",
                cfg.play_wait_timeout
            ));
        }
        None
    }
}

impl Watched for RtmpConn {
    fn check(&self, now: Instant) -> Option<String> {
        let revoked = self.hooked.borrow().as_ref().and_then(Opened::revoked);
        revoked.or_else(|| self.timeout_reason(now))
    }

    fn alarm(&self) -> &Alarm {
        &self.alarm
    }
}
