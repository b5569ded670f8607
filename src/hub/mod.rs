//! The per-shard stream registry and fan-out (DESIGN.md, "The data path").
//!
//! Every stream has a home shard (`shards::home_shard(app/name)`), which owns the publisher
//! slot, timestamp continuity across publishers and the stream's order (frame sequence
//! numbers). Every shard with local players of a stream holds a *replica*: a late-joiner
//! cache and its local player queues. The home has a replica too, for its own players.
//!
//! A publisher on shard P sends each frame to the home H (a local call when P == H). H
//! numbers it, caches it, queues it for its local players and sends ONE message to each
//! other shard that has players of the stream. That shard's replica caches it and queues it
//! for its players. Cross-shard sends never wait: a full channel drops frames for that shard
//! until the home can resend a snapshot (headers + GOP) at a later frame.

pub mod cache;
pub mod directory;
pub mod frame;
pub mod player;

pub use directory::{Directory, StreamInfo};
pub use frame::{Frame, LocalFrame};
pub use player::{release_burst, CloseReason, Item, PlayerQueue, StreamEvent};

use crate::media::MediaKind;
use crate::stats::StreamCodecs;
use ahash::AHashMap;
use bytes::Bytes;
use cache::MediaCache;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

/// A stream's name: `app/name`.
pub type StreamKey = Arc<str>;

/// Identifies one publishing connection in the whole process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PubId {
    pub shard: usize,
    pub conn: u64,
}

/// Messages between the hubs of different shards.
#[derive(Debug)]
pub enum HubMsg {
    /// To the home: this connection now publishes the stream (replacing any other).
    Publish { key: StreamKey, publisher: PubId },
    /// To the home: this connection stopped publishing.
    Unpublish { key: StreamKey, publisher: PubId },
    /// To the home: a frame from a publisher.
    Media {
        key: StreamKey,
        publisher: PubId,
        frame: Frame,
    },
    /// To the home: the sending shard has players of the stream.
    Subscribe { key: StreamKey, shard: usize },
    /// To the home: the sending shard has no players of the stream any more.
    Unsubscribe { key: StreamKey, shard: usize },
    /// To a publisher's shard: another publisher took the stream; close this connection.
    Kick { conn: u64 },
    /// To a subscribed shard: the stream's cache (headers then GOP) and whether it is live.
    Snapshot {
        key: StreamKey,
        frames: Vec<Frame>,
        live: bool,
    },
    /// To a subscribed shard: the next frame.
    Deliver { key: StreamKey, frame: Frame },
    /// To a subscribed shard: the stream got or lost its publisher.
    State { key: StreamKey, live: bool },
}

/// How the hub reaches other shards (the channel mesh in production, a recorder in tests).
pub trait Outbox {
    /// Queue without waiting; give the message back when the channel is full or closed.
    fn try_send(&self, to: usize, msg: HubMsg) -> Result<(), HubMsg>;
    /// Queue a control message that must not be lost, without blocking the caller.
    fn send_reliable(&self, to: usize, msg: HubMsg);
}

impl Outbox for shards::Mesh<HubMsg> {
    fn try_send(&self, to: usize, msg: HubMsg) -> Result<(), HubMsg> {
        match shards::Mesh::try_send(self, to, msg) {
            Ok(()) => Ok(()),
            Err(shards::SendError::Full(m)) => Err(m),
            Err(shards::SendError::Closed(m)) => m.map_or(Ok(()), Err),
        }
    }
    fn send_reliable(&self, to: usize, msg: HubMsg) {
        self.send_or_spawn(to, msg);
    }
}

/// An outbox that counts what it sends, for `/metrics`.
pub struct MeteredOutbox {
    inner: Rc<dyn Outbox>,
    /// Messages handed to the mesh.
    pub sent: Cell<u64>,
    /// Messages `try_send` gave back because the peer's channel was full (media dropped,
    /// the subscriber resynced from the next keyframe).
    pub full: Cell<u64>,
}

impl MeteredOutbox {
    pub fn new(inner: Rc<dyn Outbox>) -> Self {
        MeteredOutbox {
            inner,
            sent: Cell::new(0),
            full: Cell::new(0),
        }
    }
}

impl Outbox for MeteredOutbox {
    fn try_send(&self, to: usize, msg: HubMsg) -> Result<(), HubMsg> {
        let r = self.inner.try_send(to, msg);
        let counter = if r.is_ok() { &self.sent } else { &self.full };
        counter.set(counter.get() + 1);
        r
    }
    fn send_reliable(&self, to: usize, msg: HubMsg) {
        self.sent.set(self.sent.get() + 1);
        self.inner.send_reliable(to, msg);
    }
}

/// Something the home shard of a stream feeds (the HLS segmenter; later the recorder): it sees
/// each publisher start and end and every frame in order, with rebased timestamps.
pub trait HomeSink {
    fn on_publish(&mut self, key: &str);
    fn on_frame(&mut self, key: &str, frame: &Frame);
    fn on_unpublish(&mut self, key: &str);
    /// Called about once a second for housekeeping.
    fn tick(&mut self, now: std::time::Instant);
}

/// Sizes and counts the hub works with.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub gop_num: usize,
    pub gop_cache_max_bytes: usize,
}

/// A stream as seen from one shard.
struct Stream {
    cache: MediaCache,
    players: Vec<(u64, Rc<RefCell<PlayerQueue>>)>,
    /// Whether a publisher is on (as far as this shard knows).
    live: bool,
    home: Option<HomeState>,
}

/// What only the home shard of a stream keeps.
#[derive(Default)]
struct HomeState {
    publisher: Option<PubId>,
    subscribers: Vec<Subscriber>,
    next_seq: u64,
    /// Added (wrapping) to publisher timestamps so players see one continuous timeline.
    ts_base: u32,
    /// Output timestamp (decode time) of the last frame.
    last_out: Option<u32>,
    /// Latest presentation time sent (decode time + composition offset): with B-frames the
    /// last pictures shown lie after `last_out`, and a new publisher must start after them.
    last_shown: Option<u32>,
    rebase_pending: bool,
    /// Tracks seen from the current publisher (published in the directory when they change).
    tracks: StreamInfo,
}

struct Subscriber {
    shard: usize,
    /// False until the shard has a snapshot of the current state (after subscribing or after
    /// a frame to it was dropped on a full channel).
    synced: bool,
}

/// The publishing side of a local connection, as the hub sees it.
#[derive(Default)]
struct PublisherCtl {
    kicked: Cell<bool>,
}

/// One shard's registry of streams.
pub struct Hub {
    shard: usize,
    shards: usize,
    cfg: HubConfig,
    outbox: Rc<dyn Outbox>,
    directory: Arc<Directory>,
    sinks: Vec<Box<dyn HomeSink>>,
    streams: AHashMap<StreamKey, Stream>,
    publishers: AHashMap<u64, Rc<PublisherCtl>>,
    /// Messages this shard sent to itself, handled before the current call returns.
    local: VecDeque<HubMsg>,
    next_player: u64,
}

impl Hub {
    pub fn new(
        shard: usize,
        shards: usize,
        cfg: HubConfig,
        outbox: Rc<dyn Outbox>,
        directory: Arc<Directory>,
    ) -> Self {
        Hub {
            shard,
            shards,
            cfg,
            outbox,
            directory,
            sinks: Vec::new(),
            streams: AHashMap::new(),
            publishers: AHashMap::new(),
            local: VecDeque::new(),
            next_player: 1,
        }
    }

    /// Feed `sink` the streams this shard is home of.
    pub fn add_sink(&mut self, sink: Box<dyn HomeSink>) {
        self.sinks.push(sink);
    }

    /// Housekeeping for the sinks (call about once a second).
    pub fn tick(&mut self) {
        let now = std::time::Instant::now();
        for sink in &mut self.sinks {
            sink.tick(now);
        }
    }

    /// Wake the writers of players holding audio for a video frame that is late (called every
    /// `audio_merge_ms`; see [`PlayerQueue::with_audio_merge`]).
    pub fn flush_held(&self) {
        for stream in self.streams.values() {
            for (_, q) in &stream.players {
                q.borrow_mut().flush_held();
            }
        }
    }

    /// The home shard of `key`.
    pub fn home_of(&self, key: &str) -> usize {
        shards::home_shard(key, self.shards)
    }

    /// Number of streams this shard knows (home or replica).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Handle a message from another shard.
    pub fn on_message(&mut self, _from: usize, msg: HubMsg) {
        self.handle(msg);
        self.drain_local();
    }

    fn send(&mut self, to: usize, msg: HubMsg) {
        if to == self.shard {
            self.local.push_back(msg);
        } else {
            self.outbox.send_reliable(to, msg);
        }
    }

    fn drain_local(&mut self) {
        while let Some(msg) = self.local.pop_front() {
            self.handle(msg);
        }
    }

    fn handle(&mut self, msg: HubMsg) {
        match msg {
            HubMsg::Publish { key, publisher } => self.home_publish(key, publisher),
            HubMsg::Unpublish { key, publisher } => self.home_unpublish(&key, publisher),
            HubMsg::Media {
                key,
                publisher,
                frame,
            } => self.home_media(&key, publisher, frame),
            HubMsg::Subscribe { key, shard } => self.home_subscribe(key, shard),
            HubMsg::Unsubscribe { key, shard } => self.home_unsubscribe(&key, shard),
            HubMsg::Kick { conn } => self.kick_local(conn),
            HubMsg::Snapshot { key, frames, live } => self.replica_snapshot(&key, frames, live),
            HubMsg::Deliver { key, frame } => self.replica_deliver(&key, frame),
            HubMsg::State { key, live } => self.replica_state(&key, live),
        }
    }

    fn new_stream(&self, is_home: bool) -> Stream {
        Stream {
            cache: MediaCache::new(self.cfg.gop_num, self.cfg.gop_cache_max_bytes),
            players: Vec::new(),
            live: false,
            home: is_home.then(HomeState::default),
        }
    }

    // ---- the publisher side (any shard) ----

    /// Register a local connection as the publisher of `key`.
    pub fn start_publish(&mut self, key: &StreamKey, conn: u64) -> PubId {
        let id = PubId {
            shard: self.shard,
            conn,
        };
        self.publishers
            .insert(conn, Rc::new(PublisherCtl::default()));
        // Listed as live at once, not when the home gets to it: a viewer asking right after
        // Publish.Start must not get a 404. The home refines the tracks and removes the entry.
        if self.directory.get(key).is_none() {
            self.directory.set(key, StreamInfo::default());
        }
        let home = self.home_of(key);
        self.send(
            home,
            HubMsg::Publish {
                key: key.clone(),
                publisher: id,
            },
        );
        self.drain_local();
        id
    }

    /// A frame from a local publisher. Returns false when it had to be dropped (the home's
    /// channel is full); the caller then skips to the next keyframe.
    pub fn publish_frame(&mut self, key: &StreamKey, id: PubId, frame: Frame) -> bool {
        let home = self.home_of(key);
        let msg = HubMsg::Media {
            key: key.clone(),
            publisher: id,
            frame,
        };
        if home == self.shard {
            self.handle(msg);
            self.drain_local();
            return true;
        }
        match self.outbox.try_send(home, msg) {
            Ok(()) => true,
            Err(HubMsg::Media { frame, .. }) if frame.header => {
                // Decoder configuration must arrive even under pressure.
                self.outbox.send_reliable(
                    home,
                    HubMsg::Media {
                        key: key.clone(),
                        publisher: id,
                        frame,
                    },
                );
                true
            }
            Err(_) => false,
        }
    }

    /// A local publisher left (connection closed, FCUnpublish, deleteStream).
    pub fn stop_publish(&mut self, key: &StreamKey, id: PubId) {
        self.publishers.remove(&id.conn);
        let home = self.home_of(key);
        self.send(
            home,
            HubMsg::Unpublish {
                key: key.clone(),
                publisher: id,
            },
        );
        self.drain_local();
    }

    /// Whether the local publisher `conn` was replaced by another publisher of its stream.
    pub fn is_kicked(&self, conn: u64) -> bool {
        self.publishers.get(&conn).is_some_and(|c| c.kicked.get())
    }

    fn kick_local(&mut self, conn: u64) {
        if let Some(ctl) = self.publishers.get(&conn) {
            ctl.kicked.set(true);
        }
    }

    // ---- the player side (any shard) ----

    /// Add a local player of `key`; it is sent the cached state at once. Returns its id.
    pub fn add_player(&mut self, key: &StreamKey, queue: Rc<RefCell<PlayerQueue>>) -> u64 {
        let id = self.next_player;
        self.next_player += 1;
        let home = self.home_of(key);
        let is_home = home == self.shard;
        let fresh = !self.streams.contains_key(key);
        let stream = match self.streams.get(key) {
            Some(_) => self.streams.get_mut(key),
            None => {
                let s = self.new_stream(is_home);
                self.streams.insert(key.clone(), s);
                self.streams.get_mut(key)
            }
        };
        let Some(stream) = stream else { return id };
        {
            let mut q = queue.borrow_mut();
            for f in stream.cache.snapshot() {
                q.push_frame(&f);
            }
        }
        stream.players.push((id, queue));
        if fresh && !is_home {
            self.send(
                home,
                HubMsg::Subscribe {
                    key: key.clone(),
                    shard: self.shard,
                },
            );
        }
        self.drain_local();
        id
    }

    /// This shard's stream figures for `/metrics`: (streams with a live publisher homed
    /// here, streams held, frames skipped so far for the live players).
    pub fn figures(&self) -> (u64, u64, u64) {
        let live = self
            .streams
            .values()
            .filter(|s| s.home.as_ref().is_some_and(|h| h.publisher.is_some()))
            .count();
        let dropped = self
            .streams
            .values()
            .flat_map(|s| &s.players)
            .map(|(_, q)| q.borrow().dropped())
            .sum();
        (live as u64, self.streams.len() as u64, dropped)
    }

    /// The codecs of every stream this shard is home of with a live publisher.
    pub fn codecs(&self) -> Vec<StreamCodecs> {
        self.streams
            .iter()
            .filter_map(|(key, s)| {
                let home = s.home.as_ref().filter(|h| h.publisher.is_some())?;
                Some(StreamCodecs {
                    key: key.to_string(),
                    video: home.tracks.video_codec,
                    audio: home.tracks.audio_codec,
                })
            })
            .collect()
    }

    /// Whether `key` has a publisher, as far as this shard knows.
    pub fn is_live(&self, key: &str) -> bool {
        self.streams.get(key).is_some_and(|s| s.live)
    }

    /// Remove a local player.
    pub fn remove_player(&mut self, key: &StreamKey, id: u64) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        stream.players.retain(|(pid, _)| *pid != id);
        if !stream.players.is_empty() {
            return;
        }
        if stream.home.is_none() {
            self.streams.remove(key);
            let home = self.home_of(key);
            self.send(
                home,
                HubMsg::Unsubscribe {
                    key: key.clone(),
                    shard: self.shard,
                },
            );
            self.drain_local();
        } else {
            self.collect_if_idle(key);
        }
    }

    // ---- the home side ----

    fn home_stream(&mut self, key: &StreamKey) -> &mut Stream {
        if !self.streams.contains_key(key) {
            let s = self.new_stream(true);
            self.streams.insert(key.clone(), s);
        }
        let stream = self.streams.get_mut(key).expect("inserted above");
        if stream.home.is_none() {
            stream.home = Some(HomeState::default());
        }
        stream
    }

    fn home_publish(&mut self, key: StreamKey, publisher: PubId) {
        let directory = self.directory.clone();
        let stream = self.home_stream(&key);
        let Some(home) = stream.home.as_mut() else {
            return;
        };
        let previous = home.publisher.replace(publisher);
        home.rebase_pending = home.last_out.is_some();
        home.tracks = StreamInfo::default();
        directory.set(&key, home.tracks);
        stream.cache.clear();
        stream.live = true;
        let subscribers: Vec<usize> = home.subscribers.iter().map(|s| s.shard).collect();
        for (_, q) in &stream.players {
            q.borrow_mut().push_event(StreamEvent::Published);
        }
        for sink in &mut self.sinks {
            sink.on_publish(&key);
        }
        if let Some(old) = previous.filter(|old| *old != publisher) {
            tracing::info!(stream = %key, old_shard = old.shard, old_conn = old.conn, "publisher replaced");
            self.send(old.shard, HubMsg::Kick { conn: old.conn });
        }
        for shard in subscribers {
            self.send(
                shard,
                HubMsg::State {
                    key: key.clone(),
                    live: true,
                },
            );
        }
    }

    fn home_unpublish(&mut self, key: &StreamKey, publisher: PubId) {
        let directory = self.directory.clone();
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let Some(home) = stream.home.as_mut() else {
            return;
        };
        if home.publisher != Some(publisher) {
            return; // an old publisher that was already replaced
        }
        home.publisher = None;
        home.rebase_pending = true;
        directory.remove(key);
        stream.live = false;
        stream.cache.clear();
        let subscribers: Vec<usize> = home.subscribers.iter().map(|s| s.shard).collect();
        for (_, q) in &stream.players {
            q.borrow_mut().push_event(StreamEvent::Unpublished);
        }
        for sink in &mut self.sinks {
            sink.on_unpublish(key);
        }
        for shard in subscribers {
            self.send(
                shard,
                HubMsg::State {
                    key: key.clone(),
                    live: false,
                },
            );
        }
        self.collect_if_idle(key);
    }

    fn home_media(&mut self, key: &StreamKey, publisher: PubId, mut frame: Frame) {
        let directory = self.directory.clone();
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let Some(home) = stream.home.as_mut() else {
            return;
        };
        if home.publisher != Some(publisher) {
            return;
        }
        frame.timestamp = rebase(home, frame.timestamp, composition_ms(&frame));
        let mut tracks = home.tracks;
        match frame.kind {
            MediaKind::Audio => {
                tracks.has_audio = true;
                if frame.header || tracks.audio_codec.is_none() {
                    tracks.audio_codec =
                        crate::media::codec_of(frame.kind, &frame.payload).or(tracks.audio_codec);
                }
            }
            MediaKind::Video => {
                tracks.has_video = true;
                if frame.header || tracks.video_codec.is_none() {
                    tracks.video_codec =
                        crate::media::codec_of(frame.kind, &frame.payload).or(tracks.video_codec);
                }
            }
            MediaKind::Data => {}
        }
        if tracks != home.tracks {
            home.tracks = tracks;
            directory.set(key, tracks);
        }
        home.next_seq += 1;
        frame.seq = home.next_seq;
        if frame.kind == MediaKind::Video && !stream.cache.has_video() {
            // The stream turned out to have video: audio-only start points no longer apply.
            stream.cache.clear_gop();
        }
        if frame.kind == MediaKind::Audio && !frame.header && !stream.cache.has_video() {
            frame.keyframe = true; // audio-only stream: any frame is a start point
        }
        for sink in &mut self.sinks {
            sink.on_frame(key, &frame);
        }
        let local = Rc::new(LocalFrame::new(frame));
        stream.cache.push(&local);
        for (_, q) in &stream.players {
            q.borrow_mut().push_frame(&local);
        }
        let outbox = self.outbox.clone();
        for sub in &mut home.subscribers {
            if sub.synced {
                let msg = HubMsg::Deliver {
                    key: key.clone(),
                    frame: local.frame.clone(),
                };
                if outbox.try_send(sub.shard, msg).is_err() {
                    sub.synced = false;
                }
            } else if local.frame.keyframe {
                // Resend the state at a start point; players there skip the hole (their queues
                // see the sequence gap) and resume on this GOP.
                sub.synced = try_send_snapshot(&*outbox, sub.shard, key, &stream.cache, true);
            }
        }
    }

    fn home_subscribe(&mut self, key: StreamKey, shard: usize) {
        let outbox = self.outbox.clone();
        let stream = self.home_stream(&key);
        let live = stream.live;
        let Some(home) = stream.home.as_mut() else {
            return;
        };
        home.subscribers.retain(|s| s.shard != shard);
        let synced = try_send_snapshot(&*outbox, shard, &key, &stream.cache, live);
        home.subscribers.push(Subscriber { shard, synced });
    }

    fn home_unsubscribe(&mut self, key: &StreamKey, shard: usize) {
        if let Some(home) = self.streams.get_mut(key).and_then(|s| s.home.as_mut()) {
            home.subscribers.retain(|s| s.shard != shard);
        }
        self.collect_if_idle(key);
    }

    /// Forget a home stream that has no publisher and no players anywhere.
    fn collect_if_idle(&mut self, key: &StreamKey) {
        let idle = self.streams.get(key).is_some_and(|s| {
            s.players.is_empty()
                && s.home
                    .as_ref()
                    .is_some_and(|h| h.publisher.is_none() && h.subscribers.is_empty())
        });
        if idle {
            self.streams.remove(key);
        }
    }

    // ---- the replica side (a shard with players, not the home) ----

    fn replica_snapshot(&mut self, key: &StreamKey, frames: Vec<Frame>, live: bool) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        if stream.home.is_some() {
            return;
        }
        stream.cache.clear();
        if live && !stream.live {
            for (_, q) in &stream.players {
                q.borrow_mut().push_event(StreamEvent::Published);
            }
        }
        stream.live = live;
        for frame in frames {
            let local = Rc::new(LocalFrame::new(frame));
            stream.cache.push(&local);
            for (_, q) in &stream.players {
                q.borrow_mut().push_frame(&local);
            }
        }
    }

    fn replica_deliver(&mut self, key: &StreamKey, frame: Frame) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let local = Rc::new(LocalFrame::new(frame));
        stream.cache.push(&local);
        for (_, q) in &stream.players {
            q.borrow_mut().push_frame(&local);
        }
    }

    fn replica_state(&mut self, key: &StreamKey, live: bool) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        if !live && !stream.live {
            return;
        }
        // live -> live is a publisher replacing another: players hear of the new one.
        stream.live = live;
        stream.cache.clear();
        let event = if live {
            StreamEvent::Published
        } else {
            StreamEvent::Unpublished
        };
        for (_, q) in &stream.players {
            q.borrow_mut().push_event(event);
        }
    }
}

/// Map a publisher timestamp onto the stream's continuous timeline. After a publisher change
/// the new publisher's first frame lands just after the last picture players were shown, so
/// no new picture is presented at the same time as an old one (browsers' MSE drops frames
/// that overlap in presentation time).
fn rebase(home: &mut HomeState, ts: u32, composition_ms: i32) -> u32 {
    /// Gap left between the last frame of one publisher and the first of the next (ms).
    const REPUBLISH_GAP_MS: u32 = 40;
    if home.rebase_pending {
        home.rebase_pending = false;
        if let Some(last) = home.last_out {
            let end = home.last_shown.map_or(last, |shown| later(last, shown));
            home.ts_base = end.wrapping_add(REPUBLISH_GAP_MS).wrapping_sub(ts);
        }
    }
    let out = ts.wrapping_add(home.ts_base);
    home.last_out = Some(out);
    let shown = out.wrapping_add(composition_ms.max(0) as u32);
    home.last_shown = Some(home.last_shown.map_or(shown, |s| later(s, shown)));
    out
}

/// The later of two wrapping millisecond timestamps (RTMP timestamps wrap at 2^32).
fn later(a: u32, b: u32) -> u32 {
    if (b.wrapping_sub(a) as i32) > 0 {
        b
    } else {
        a
    }
}

/// A video frame's composition offset (PTS - DTS, ms); 0 for other frames and for codecs
/// without one.
fn composition_ms(frame: &Frame) -> i32 {
    if frame.kind != MediaKind::Video {
        return 0;
    }
    crate::media::ertmp::parse_video(&frame.payload).map_or(0, |t| t.composition_ms)
}

/// Send shard `to` the stream's cached state; true if it was queued.
fn try_send_snapshot(
    outbox: &dyn Outbox,
    to: usize,
    key: &StreamKey,
    cache: &MediaCache,
    live: bool,
) -> bool {
    let frames = cache.snapshot().iter().map(|f| f.frame.clone()).collect();
    outbox
        .try_send(
            to,
            HubMsg::Snapshot {
                key: key.clone(),
                frames,
                live,
            },
        )
        .is_ok()
}

/// Shared handle to a shard's hub.
pub type SharedHub = Rc<RefCell<Hub>>;

/// Convenience for building frames from raw message parts.
pub fn frame(kind: MediaKind, timestamp: u32, payload: Bytes) -> Frame {
    Frame::from_message(kind, timestamp, payload)
}

#[cfg(test)]
mod tests;
