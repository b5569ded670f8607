//! HLS, sans-IO: a per-stream segmenter (FLV frames -> MPEG-TS segments), the playlist, and
//! the process-wide store that HTTP requests on any shard read.
//!
//! The home shard of a stream runs its [`Segmenter`] (through [`HlsSink`], a hub sink) so the
//! stream is muxed once. When a segment is cut, the home publishes an immutable [`HlsView`]
//! (playlist text and segment `Bytes`) into the [`HlsStore`]: one write per segment, never per
//! packet. Requests clone an `Arc` of the view and send the segment `Bytes` as they are.

mod segmenter;

pub use segmenter::{HlsConfig, Segment, Segmenter};

use crate::hub::{Frame, HomeSink};
use ahash::{AHashMap, AHashSet};
use bytes::Bytes;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What HTTP requests see of one stream's HLS: immutable, replaced whole at every cut.
#[derive(Debug, Default)]
pub struct HlsView {
    /// The playlist text (`#EXTM3U` ...).
    pub playlist: Bytes,
    /// Fetchable segments (the playlist window plus the grace segments) by sequence number.
    pub segments: Vec<(u64, Bytes)>,
}

impl HlsView {
    /// The segment with sequence number `seq`.
    pub fn segment(&self, seq: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, b)| b.clone())
    }

    /// Whether the playlist lists at least one segment.
    pub fn has_segments(&self) -> bool {
        !self.segments.is_empty()
    }
}

/// HLS views of every stream, shared by all shards.
#[derive(Debug, Default)]
pub struct HlsStore {
    streams: RwLock<AHashMap<String, Arc<HlsView>>>,
}

impl HlsStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current view of `key` (`app/room`).
    pub fn get(&self, key: &str) -> Option<Arc<HlsView>> {
        self.streams.read().ok()?.get(key).cloned()
    }

    fn set(&self, key: &str, view: HlsView) {
        if let Ok(mut m) = self.streams.write() {
            m.insert(key.to_string(), Arc::new(view));
        }
    }

    fn remove(&self, key: &str) {
        if let Ok(mut m) = self.streams.write() {
            m.remove(key);
        }
    }
}

/// Settings of the HLS sink.
#[derive(Debug, Clone)]
pub struct HlsSettings {
    pub segmenter: HlsConfig,
    /// Apps whose `hls` switch is on.
    pub apps: AHashSet<String>,
    /// Keep ended streams (with `#EXT-X-ENDLIST`) instead of removing them after `linger`.
    pub keep_after_end: bool,
    pub linger: Duration,
}

struct StreamHls {
    seg: Segmenter,
    ended_at: Option<Instant>,
}

/// The hub sink that segments the streams a shard is home of.
pub struct HlsSink {
    settings: HlsSettings,
    store: Arc<HlsStore>,
    streams: AHashMap<String, StreamHls>,
}

impl HlsSink {
    pub fn new(settings: HlsSettings, store: Arc<HlsStore>) -> Self {
        HlsSink {
            settings,
            store,
            streams: AHashMap::new(),
        }
    }

    fn wanted(&self, key: &str) -> bool {
        key.split_once('/')
            .is_some_and(|(app, _)| self.settings.apps.contains(app))
    }

    fn publish_view(&self, key: &str) {
        if let Some(s) = self.streams.get(key) {
            self.store.set(key, s.seg.view());
        }
    }
}

impl HomeSink for HlsSink {
    fn on_publish(&mut self, key: &str) {
        if !self.wanted(key) {
            return;
        }
        let room = key.split_once('/').map_or(key, |(_, r)| r);
        let cfg = self.settings.segmenter.clone();
        let entry = self
            .streams
            .entry(key.to_string())
            .or_insert_with(|| StreamHls {
                seg: Segmenter::new(cfg, room),
                ended_at: None,
            });
        // A republish continues the same playlist after a discontinuity.
        entry.seg.restart();
        entry.ended_at = None;
        self.publish_view(key);
    }

    fn on_frame(&mut self, key: &str, frame: &Frame) {
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        if s.seg.push(frame) {
            self.publish_view(key);
        }
    }

    fn on_unpublish(&mut self, key: &str) {
        let keep = self.settings.keep_after_end;
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        s.seg.finish(keep);
        s.ended_at = (!keep).then(Instant::now);
        self.publish_view(key);
    }

    fn tick(&mut self, now: Instant) {
        let linger = self.settings.linger;
        let expired: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| s.ended_at.is_some_and(|t| now.duration_since(t) > linger))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.streams.remove(&key);
            self.store.remove(&key);
        }
    }
}
