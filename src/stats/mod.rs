//! Statistics and metrics: who publishes and plays what, how fast, and what each shard did.
//!
//! Each shard keeps its own [`ShardStats`]: a registry of sessions (publishers and players of
//! every protocol) with their byte meters, and plain counters. Meters and counters are
//! `Cell`s bumped by the connection that owns them: no lock, no cross-shard traffic per
//! packet. Once a second each shard samples its meters (for the speeds) and publishes a
//! [`ShardReport`] to the process-wide [`StatsBoard`]; `/stat/livestat` and `/metrics` read
//! the board, so their answers gather every shard and are at most one tick old.
//!
//! livego's `/stat/livestat` (livego.md §9) lists RTMP sessions only, reports speeds that go
//! stale when packets stop, and prints `null` for empty lists. Here every protocol is
//! listed, speeds are taken over a sliding window (an idle stream shows 0), and empty lists
//! are `[]`.

mod report;
mod time;

pub use report::{livestat, metrics_text, LivestatError};
pub use time::rfc3339;

use crate::hub::StreamKey;
use crate::limits::Limit;
use crate::media::{Codec, MediaKind};
use ahash::AHashMap;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::{Rc, Weak};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Length of the window speeds are averaged over.
pub const SPEED_WINDOW: Duration = Duration::from_secs(5);

/// The listeners, as metrics label them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Rtmp,
    HttpFlv,
    Hls,
    Api,
}

impl Proto {
    pub const ALL: [Proto; 4] = [Proto::Rtmp, Proto::HttpFlv, Proto::Hls, Proto::Api];

    pub fn label(self) -> &'static str {
        match self {
            Proto::Rtmp => "rtmp",
            Proto::HttpFlv => "httpflv",
            Proto::Hls => "hls",
            Proto::Api => "api",
        }
    }

    /// The listener named `name` (`serve`'s listener names).
    pub fn from_label(name: &str) -> Option<Proto> {
        Proto::ALL.into_iter().find(|p| p.label() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whether a session feeds a stream or consumes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Publisher,
    Player,
}

/// What a session is, fixed when it starts.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub role: Role,
    /// `rtmp`, `flv`, `hls`, or a relay kind.
    pub protocol: &'static str,
    pub key: StreamKey,
    /// The URL the client used (livego: tcUrl + "/" + name).
    pub url: String,
    /// The RTMP message stream id (0 for HTTP sessions).
    pub stream_id: u32,
    /// The peer's address (`ip:port`; just the ip for HLS, whose requests come over several
    /// connections).
    pub remote: String,
    pub connected_at: SystemTime,
}

/// Bytes a session moved, by kind. Bumped by the owning connection only.
#[derive(Debug, Default)]
pub struct Meter {
    video: Cell<u64>,
    audio: Cell<u64>,
    /// Every byte, container and protocol overhead included (the only figure for HLS, whose
    /// segments mix both tracks).
    total: Cell<u64>,
}

impl Meter {
    /// Count one media message's payload (livego counts the FLV tag body; data messages are
    /// neither video nor audio here, where livego counted them as audio).
    pub fn media(&self, kind: MediaKind, len: usize) {
        let cell = match kind {
            MediaKind::Video => &self.video,
            MediaKind::Audio => &self.audio,
            MediaKind::Data => return,
        };
        cell.set(cell.get() + len as u64);
    }

    /// Count bytes on the wire.
    pub fn wire(&self, len: usize) {
        self.total.set(self.total.get() + len as u64);
    }

    fn totals(&self) -> Totals {
        Totals {
            video: self.video.get(),
            audio: self.audio.get(),
            total: self.total.get(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    video: u64,
    audio: u64,
    total: u64,
}

/// Samples of a meter, one per tick, spanning [`SPEED_WINDOW`].
#[derive(Debug, Default)]
struct SpeedWindow {
    samples: VecDeque<(Instant, Totals)>,
}

/// kbit/s, as livego reports them (its field is misnamed `SpeedInBytesperMS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Speeds {
    video: u64,
    audio: u64,
    total: u64,
}

impl SpeedWindow {
    fn sample(&mut self, now: Instant, t: Totals) {
        self.samples.push_back((now, t));
        while self
            .samples
            .get(1)
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= SPEED_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn speeds(&self) -> Speeds {
        let (Some((t0, a)), Some((t1, b))) = (self.samples.front(), self.samples.back()) else {
            return Speeds::default();
        };
        let ms = t1.saturating_duration_since(*t0).as_millis() as u64;
        if ms == 0 {
            return Speeds::default();
        }
        let kbps = |x: u64, y: u64| y.saturating_sub(x) * 8 / ms;
        Speeds {
            video: kbps(a.video, b.video),
            audio: kbps(a.audio, b.audio),
            total: kbps(a.total, b.total),
        }
    }
}

/// One session as `/stat/livestat` lists it: livego's fields, then ours.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionReport {
    pub key: String,
    pub url: String,
    pub stream_id: u32,
    pub video_total_bytes: u64,
    pub video_speed: u64,
    pub audio_total_bytes: u64,
    pub audio_speed: u64,
    pub total_bytes: u64,
    pub speed: u64,
    pub protocol: &'static str,
    pub shard: usize,
    pub remote: String,
    pub connected_at: String,
    /// The stream's video codec (`hevc`, `av1`, ...), once known.
    pub video_codec: Option<&'static str>,
    /// The stream's audio codec (`aac`, `opus`, ...), once known.
    pub audio_codec: Option<&'static str>,
    /// What HLS carries of the stream (see [`StreamCodecs::hls`]).
    pub hls: Option<&'static str>,
    #[serde(skip)]
    pub role: Role,
}

struct Entry {
    info: SessionInfo,
    meter: Rc<Meter>,
    window: SpeedWindow,
}

impl Entry {
    fn new(info: SessionInfo, meter: Rc<Meter>) -> Self {
        Entry {
            info,
            meter,
            window: SpeedWindow::default(),
        }
    }

    fn report(&self, shard: usize) -> SessionReport {
        let t = self.meter.totals();
        let s = self.window.speeds();
        SessionReport {
            key: self.info.key.to_string(),
            url: self.info.url.clone(),
            stream_id: self.info.stream_id,
            video_total_bytes: t.video,
            video_speed: s.video,
            audio_total_bytes: t.audio,
            audio_speed: s.audio,
            total_bytes: t.total,
            speed: s.total,
            protocol: self.info.protocol,
            shard,
            remote: self.info.remote.clone(),
            connected_at: rfc3339(self.info.connected_at),
            video_codec: None,
            audio_codec: None,
            hls: None,
            role: self.info.role,
        }
    }
}

/// An HLS viewer: recognised by stream and client address, gone after `expiry` without a
/// request.
struct HlsViewer {
    entry: Entry,
    last_seen: Instant,
}

/// A session's registration; dropping it removes the session from the registry.
pub struct SessionGuard {
    meter: Rc<Meter>,
    id: u64,
    stats: Weak<ShardStats>,
}

impl SessionGuard {
    pub fn meter(&self) -> &Meter {
        &self.meter
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Some(stats) = self.stats.upgrade() {
            stats.sessions.borrow_mut().remove(&self.id);
        }
    }
}

/// One shard's sessions and counters.
pub struct ShardStats {
    shard: usize,
    sessions: RefCell<AHashMap<u64, Entry>>,
    next_session: Cell<u64>,
    hls: RefCell<AHashMap<(StreamKey, IpAddr), HlsViewer>>,
    hls_expiry: Duration,
    pub counters: Counters,
}

/// Plain per-shard counters (see [`metrics_text`] for their meaning).
#[derive(Debug, Default)]
pub struct Counters {
    open: [Cell<u64>; 4],
    accepted: [Cell<u64>; 4],
    refused: [Cell<u64>; 4],
    bytes_in: [Cell<u64>; 4],
    bytes_out: [Cell<u64>; 4],
    /// Players closed because they could not keep up.
    slow_closed: Cell<u64>,
    /// Frames skipped for players that fell behind, over ended players (live ones are
    /// added at report time).
    dropped_ended: Cell<u64>,
    http: RefCell<AHashMap<(Proto, u16), u64>>,
    /// Refusals by limit (indexed by `Limit::index`).
    limits: [Cell<u64>; Limit::ALL.len()],
    /// HTTP hooks (see [`HookFigures`]).
    hooks: HookCounters,
}

/// Outcome of one hook call, the `result` label of `shardcast_hook_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookResult {
    /// A 2xx answer.
    Allow,
    /// Any other status.
    Deny,
    /// No answer within `hooks.timeout_ms`.
    Timeout,
    /// Unreachable, or an answer that is not HTTP (or too large).
    Error,
    /// A notification not sent: `hooks.max_in_flight` calls were already running.
    Dropped,
}

impl HookResult {
    pub const ALL: [HookResult; 5] = [
        HookResult::Allow,
        HookResult::Deny,
        HookResult::Timeout,
        HookResult::Error,
        HookResult::Dropped,
    ];

    pub fn label(self) -> &'static str {
        match self {
            HookResult::Allow => "allow",
            HookResult::Deny => "deny",
            HookResult::Timeout => "timeout",
            HookResult::Error => "error",
            HookResult::Dropped => "dropped",
        }
    }
}

/// Per-shard hook counters, indexed by `hooks::Action::index`.
#[derive(Debug, Default)]
struct HookCounters {
    calls: [[Cell<u64>; 5]; crate::hooks::Action::ALL.len()],
    latency_ms: [Cell<u64>; crate::hooks::Action::ALL.len()],
    /// Refusals because of a hook: [answered non-2xx, failed call under a deny policy].
    denials: [[Cell<u64>; 2]; crate::hooks::Action::ALL.len()],
}

/// Hook figures of one shard, by `hooks::Action::index`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookFigures {
    /// Calls by result (`HookResult as usize`).
    pub calls: [[u64; 5]; crate::hooks::Action::ALL.len()],
    /// Sum of the answered and timed-out calls' durations, in milliseconds.
    pub latency_ms: [u64; crate::hooks::Action::ALL.len()],
    /// Refusals: [denied by the answer, failed call with a deny policy].
    pub denials: [[u64; 2]; crate::hooks::Action::ALL.len()],
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

impl Counters {
    pub fn accepted(&self, p: Proto) {
        bump(&self.accepted[p.index()], 1);
        bump(&self.open[p.index()], 1);
    }

    pub fn closed(&self, p: Proto) {
        let c = &self.open[p.index()];
        c.set(c.get().saturating_sub(1));
    }

    pub fn refused(&self, p: Proto) {
        bump(&self.refused[p.index()], 1);
    }

    /// Something (a connection, publish or play) was refused at `limit`.
    pub fn limit_reached(&self, limit: Limit) {
        bump(&self.limits[limit.index()], 1);
    }

    pub fn bytes_in(&self, p: Proto, n: usize) {
        bump(&self.bytes_in[p.index()], n as u64);
    }

    pub fn bytes_out(&self, p: Proto, n: usize) {
        bump(&self.bytes_out[p.index()], n as u64);
    }

    /// A hook call of `action` ended with `result` after `ms` milliseconds.
    pub fn hook_call(&self, action: crate::hooks::Action, result: HookResult, ms: u64) {
        let h = &self.hooks;
        bump(&h.calls[action.index()][result as usize], 1);
        bump(&h.latency_ms[action.index()], ms);
    }

    /// A connect, publish or play was refused because of a hook; `failed`: the call failed
    /// (and the policy denies) rather than being answered non-2xx.
    pub fn hook_denied(&self, action: crate::hooks::Action, failed: bool) {
        bump(&self.hooks.denials[action.index()][usize::from(failed)], 1);
    }

    fn hook_figures(&self) -> HookFigures {
        let h = &self.hooks;
        HookFigures {
            calls: std::array::from_fn(|a| std::array::from_fn(|r| h.calls[a][r].get())),
            latency_ms: std::array::from_fn(|a| h.latency_ms[a].get()),
            denials: std::array::from_fn(|a| std::array::from_fn(|r| h.denials[a][r].get())),
        }
    }

    /// A player left having skipped `dropped` frames; `slow`: it was closed for falling behind.
    pub fn player_ended(&self, dropped: u64, slow: bool) {
        bump(&self.dropped_ended, dropped);
        if slow {
            bump(&self.slow_closed, 1);
        }
    }

    pub fn http_response(&self, p: Proto, status: u16) {
        *self.http.borrow_mut().entry((p, status)).or_default() += 1;
    }

    fn per_proto(cells: &[Cell<u64>; 4]) -> [u64; 4] {
        std::array::from_fn(|i| cells[i].get())
    }
}

/// What the hub contributes to a report (it owns the streams and the mesh).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubFigures {
    /// Streams this shard is home of with a live publisher.
    pub live_streams: u64,
    /// Streams this shard knows (home or replica).
    pub streams: u64,
    /// Frames skipped for the live players of this shard.
    pub dropped_live: u64,
    pub mesh_sent: u64,
    pub mesh_full: u64,
    pub mesh_received: u64,
    /// Bytes of incomplete RTMP messages the shard's connections hold.
    pub pending_bytes: u64,
    /// Tasks the shard runs (connections, writers, relays, recordings, timers).
    pub tasks: u64,
    /// HLS viewers allowed by `on_play` whose session this shard started and follows.
    pub hls_hook_sessions: u64,
}

/// The codecs of one live stream (from its home shard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCodecs {
    /// `app/name`.
    pub key: String,
    pub video: Option<Codec>,
    pub audio: Option<Codec>,
}

impl StreamCodecs {
    /// What HLS carries of the stream: `"yes"` when every track, `"video only"` /
    /// `"audio only"` when one track's codec cannot go into MPEG-TS (e.g. HEVC + Opus), and
    /// `"not available over HLS"` when none can (AV1 + Opus).
    pub fn hls(&self) -> &'static str {
        let ok = |c: Option<Codec>| c.is_none_or(Codec::over_hls);
        let has = |c: Option<Codec>| c.is_some_and(Codec::over_hls);
        match (ok(self.video), ok(self.audio)) {
            (true, true) if has(self.video) || has(self.audio) => "yes",
            (true, true) => "not yet known",
            (true, false) if has(self.video) => "video only",
            (false, true) if has(self.audio) => "audio only",
            _ => "not available over HLS",
        }
    }
}

/// A shard's figures at one tick.
#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    pub shard: usize,
    pub sessions: Vec<SessionReport>,
    pub open: [u64; 4],
    pub accepted: [u64; 4],
    pub refused: [u64; 4],
    /// Refusals by limit (indexed by `Limit::index`).
    pub limit_refusals: [u64; Limit::ALL.len()],
    pub bytes_in: [u64; 4],
    pub bytes_out: [u64; 4],
    pub slow_closed: u64,
    pub dropped_frames: u64,
    pub http: Vec<(Proto, u16, u64)>,
    pub hub: HubFigures,
    /// Codecs of the live streams this shard is home of (filled by the caller of `tick`).
    pub streams: Vec<StreamCodecs>,
    pub hooks: HookFigures,
}

impl ShardStats {
    /// `hls_expiry`: how long an HLS viewer stays listed after its last request.
    pub fn new(shard: usize, hls_expiry: Duration) -> Rc<Self> {
        Rc::new(ShardStats {
            shard,
            sessions: RefCell::default(),
            next_session: Cell::new(0),
            hls: RefCell::default(),
            hls_expiry,
            counters: Counters::default(),
        })
    }

    /// Register a session; it is listed until the guard is dropped.
    pub fn open(self: &Rc<Self>, info: SessionInfo) -> SessionGuard {
        let id = self.next_session.get() + 1;
        self.next_session.set(id);
        let meter = Rc::new(Meter::default());
        let entry = Entry::new(info, meter.clone());
        self.sessions.borrow_mut().insert(id, entry);
        SessionGuard {
            meter,
            id,
            stats: Rc::downgrade(self),
        }
    }

    /// An HLS request of `key` from `ip` moved `bytes` (a playlist or a segment).
    pub fn hls_request(&self, key: &StreamKey, ip: IpAddr, url: &str, bytes: usize, now: Instant) {
        let mut hls = self.hls.borrow_mut();
        let viewer = hls.entry((key.clone(), ip)).or_insert_with(|| HlsViewer {
            entry: Entry::new(
                SessionInfo {
                    role: Role::Player,
                    protocol: "hls",
                    key: key.clone(),
                    url: url.to_owned(),
                    stream_id: 0,
                    remote: ip.to_string(),
                    connected_at: SystemTime::now(),
                },
                Rc::default(),
            ),
            last_seen: now,
        });
        viewer.last_seen = now;
        viewer.entry.meter.wire(bytes);
    }

    /// Sample every meter, forget HLS viewers that went quiet, and report.
    pub fn tick(&self, now: Instant, hub: HubFigures) -> ShardReport {
        for e in self.sessions.borrow_mut().values_mut() {
            let t = e.meter.totals();
            e.window.sample(now, t);
        }
        let mut hls = self.hls.borrow_mut();
        hls.retain(|_, v| now.saturating_duration_since(v.last_seen) < self.hls_expiry);
        for v in hls.values_mut() {
            let t = v.entry.meter.totals();
            v.entry.window.sample(now, t);
        }
        let sessions = self.sessions.borrow();
        let all = sessions.values().chain(hls.values().map(|v| &v.entry));
        let c = &self.counters;
        let mut http: Vec<_> = c
            .http
            .borrow()
            .iter()
            .map(|(k, n)| (k.0, k.1, *n))
            .collect();
        http.sort_by_key(|(p, s, _)| (p.index(), *s));
        ShardReport {
            shard: self.shard,
            sessions: all.map(|e| e.report(self.shard)).collect(),
            open: Counters::per_proto(&c.open),
            accepted: Counters::per_proto(&c.accepted),
            refused: Counters::per_proto(&c.refused),
            limit_refusals: std::array::from_fn(|i| c.limits[i].get()),
            bytes_in: Counters::per_proto(&c.bytes_in),
            bytes_out: Counters::per_proto(&c.bytes_out),
            slow_closed: c.slow_closed.get(),
            dropped_frames: c.dropped_ended.get() + hub.dropped_live,
            http,
            hub,
            streams: Vec::new(),
            hooks: c.hook_figures(),
        }
    }
}

/// The latest report of every shard: the only shared state of statistics, written once per
/// tick by each shard and read by the API.
pub struct StatsBoard {
    reports: Mutex<Vec<ShardReport>>,
}

impl StatsBoard {
    pub fn new(shards: usize) -> Self {
        let reports = (0..shards)
            .map(|shard| ShardReport {
                shard,
                ..ShardReport::default()
            })
            .collect();
        StatsBoard {
            reports: Mutex::new(reports),
        }
    }

    pub fn publish(&self, report: ShardReport) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = reports.get_mut(report.shard) {
            *slot = report;
        }
    }

    /// A copy of every shard's latest report.
    pub fn reports(&self) -> Vec<ShardReport> {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests;
