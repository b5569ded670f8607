//! Per-executor state: the connections' records, the latency histogram, the error list and
//! the read buffer, all touched by one thread only (no locks); [`Exec::snapshot`] turns them
//! into a `Send` summary at the end of the window.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use glommio::sync::Semaphore;

use super::target::Proto;
use super::Shared;
use crate::stats::{median_u32, Histogram};
use crate::track::{Track, Window};

/// Distinct error messages kept per executor.
const MAX_ERRORS: usize = 32;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Waiting for its start time or a connect slot.
    Pending,
    /// Connecting, handshaking, requesting.
    Connecting,
    /// Receiving media (players) or publishing (publishers).
    Connected,
    /// Never got there.
    Failed,
}

/// HLS counters of one player.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HlsCounts {
    /// Segments fetched completely in the window.
    pub segments: u64,
    /// Playlists fetched in the window.
    pub playlists: u64,
    /// Failed requests (whole run).
    pub errors: u64,
    /// MPEG-TS sync errors (whole run).
    pub ts_errors: u64,
}

/// One player.
#[derive(Debug)]
pub struct PlayerRec {
    pub proto: Proto,
    pub state: ConnState,
    pub track: Track,
    /// Connected, then lost the connection before the window ended.
    pub disconnected: bool,
    pub hls: HlsCounts,
}

impl PlayerRec {
    pub fn new(proto: Proto, track: Track) -> Self {
        Self {
            proto,
            state: ConnState::Pending,
            track,
            disconnected: false,
            hls: HlsCounts::default(),
        }
    }
}

/// One publisher.
#[derive(Debug)]
pub struct PubRec {
    pub stream: u32,
    pub state: ConnState,
    /// Stamped video frames sent in the window.
    pub frames: u64,
    /// Bytes written in the window.
    pub bytes: u64,
    pub disconnected: bool,
}

/// A player's numbers at the end of the window.
#[derive(Debug, Clone)]
pub struct PlayerSummary {
    pub proto: Proto,
    pub stream: u32,
    pub connected: bool,
    pub disconnected: bool,
    pub bytes: u64,
    pub video: u64,
    pub audio: u64,
    pub lost: u64,
    pub stalls: u64,
    pub seq_range: Option<(u64, u64)>,
    pub keyframe_violations: u64,
    pub timestamp_violations: u64,
    pub foreign_stamps: u64,
    pub duplicates: u64,
    pub validation_errors: u64,
    pub join_ns: Option<u64>,
    /// Median latency of the window's last second, µs.
    pub lag_us: Option<u32>,
    pub hls: HlsCounts,
}

/// A publisher's numbers at the end of the window.
#[derive(Debug, Clone)]
pub struct PubSummary {
    pub stream: u32,
    pub connected: bool,
    pub disconnected: bool,
    pub frames: u64,
    pub bytes: u64,
}

/// Everything one executor measured.
#[derive(Debug, Clone)]
pub struct ExecReport {
    pub players: Vec<PlayerSummary>,
    pub pubs: Vec<PubSummary>,
    /// Latency of every stamped frame received in the window, µs.
    pub latency_us: Histogram,
    /// Distinct error messages with counts, in order of first occurrence.
    pub errors: Vec<(String, u64)>,
}

/// Distinct error messages with counts.
#[derive(Debug, Default)]
pub struct Errors {
    list: Vec<(String, u64)>,
    dropped: u64,
}

impl Errors {
    pub fn add(&mut self, msg: String) {
        if let Some(e) = self.list.iter_mut().find(|e| e.0 == msg) {
            e.1 += 1;
        } else if self.list.len() < MAX_ERRORS {
            self.list.push((msg, 1));
        } else {
            self.dropped += 1;
        }
    }

    fn take(&mut self) -> Vec<(String, u64)> {
        let mut list = std::mem::take(&mut self.list);
        if self.dropped > 0 {
            list.push(("(more distinct errors)".to_owned(), self.dropped));
        }
        list
    }
}

/// State of one executor.
pub struct Exec {
    pub shared: Arc<Shared>,
    /// The read buffer every connection of this executor reads into (see `crate::net`).
    pub buf: RefCell<Vec<u8>>,
    pub latency_us: RefCell<Histogram>,
    pub errors: RefCell<Errors>,
    /// Connect slots (players still connecting).
    pub connecting: Rc<Semaphore>,
    /// The measurement window, once the players' start is known.
    pub window: Cell<Option<Window>>,
    pub players: RefCell<Vec<Rc<RefCell<PlayerRec>>>>,
    pub pubs: RefCell<Vec<Rc<RefCell<PubRec>>>>,
}

impl Exec {
    pub fn new(shared: Arc<Shared>) -> Self {
        let cfg = &shared.cfg;
        Self {
            buf: RefCell::new(vec![0; cfg.read_buf]),
            latency_us: RefCell::new(Histogram::new()),
            errors: RefCell::new(Errors::default()),
            connecting: Rc::new(Semaphore::new(cfg.max_connecting as u64)),
            window: Cell::new(None),
            players: RefCell::new(Vec::new()),
            pubs: RefCell::new(Vec::new()),
            shared,
        }
    }

    /// Records an error message.
    pub fn error(&self, msg: String) {
        self.errors.borrow_mut().add(msg);
    }

    /// Whether `now` is in the window.
    pub fn in_window(&self, now: u64) -> bool {
        self.window.get().is_some_and(|w| w.contains(now))
    }

    /// Closes the window and summarizes every connection.
    pub fn snapshot(&self) -> ExecReport {
        let players = self
            .players
            .borrow()
            .iter()
            .map(|rec| {
                let mut rec = rec.borrow_mut();
                let connected = rec.state == ConnState::Connected;
                if rec.state != ConnState::Connected && rec.state != ConnState::Failed {
                    self.error(format!(
                        "{} player: not connected by the end of the window",
                        rec.proto.name()
                    ));
                }
                if connected && rec.proto != Proto::Hls {
                    rec.track.finish();
                }
                let t = &mut rec.track;
                let lag_us = median_u32(&mut t.lag_us);
                let (keyframe_violations, timestamp_violations) =
                    (t.keyframe_violations, t.timestamp_violations);
                let validation_errors = t.validation_errors() + rec.hls.ts_errors;
                let t = &rec.track;
                PlayerSummary {
                    proto: rec.proto,
                    stream: t.stream,
                    connected,
                    disconnected: rec.disconnected,
                    bytes: t.bytes,
                    video: t.video,
                    audio: t.audio,
                    lost: t.lost,
                    stalls: t.stalls,
                    seq_range: t.seq_range,
                    keyframe_violations,
                    timestamp_violations,
                    foreign_stamps: t.foreign_stamps,
                    duplicates: t.duplicates,
                    validation_errors,
                    join_ns: t.join_ns,
                    lag_us,
                    hls: rec.hls,
                }
            })
            .collect();
        let pubs = self
            .pubs
            .borrow()
            .iter()
            .map(|rec| {
                let rec = rec.borrow();
                PubSummary {
                    stream: rec.stream,
                    connected: rec.state == ConnState::Connected,
                    disconnected: rec.disconnected,
                    frames: rec.frames,
                    bytes: rec.bytes,
                }
            })
            .collect();
        ExecReport {
            players,
            pubs,
            latency_us: self.latency_us.borrow().clone(),
            errors: self.errors.borrow_mut().take(),
        }
    }
}
