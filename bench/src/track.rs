//! Per-player checks and counters, shared by the RTMP, HTTP-FLV and raw players.
//!
//! Checks (whole run): after a sequence header the first video frame is a keyframe; timestamps
//! never go back per track; stamps carry the player's stream index and increasing sequence
//! numbers. Counts (measurement window only): bytes, frames, lost frames (gaps in the stamps'
//! sequence numbers), stalls (no video for more than 1 s), latency (receive time minus the
//! stamp's send time), and the latencies of the last second (the player's lag).

use shardcast::media;

use crate::stamp::parse_stamp;
use crate::stats::Histogram;

/// A gap without video longer than this is a stall.
pub const STALL_NS: u64 = 1_000_000_000;

/// The measurement window, CLOCK_MONOTONIC ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    /// Whether `t` lies in the window.
    pub fn contains(&self, t: u64) -> bool {
        t >= self.start_ns && t < self.end_ns
    }

    /// Start of the last second of the window (the lag's frames).
    pub fn lag_from(&self) -> u64 {
        self.end_ns.saturating_sub(1_000_000_000).max(self.start_ns)
    }

    /// Length in seconds.
    pub fn secs(&self) -> f64 {
        (self.end_ns - self.start_ns) as f64 / 1e9
    }
}

/// One player's state and counters.
#[derive(Debug, Clone)]
pub struct Track {
    /// The stream index this player plays (stamps must carry it).
    pub stream: u32,
    window: Window,
    /// When the TCP connect started (join time origin).
    pub connect_ns: u64,
    need_key: bool,
    last_video_ts: Option<u32>,
    last_audio_ts: Option<u32>,
    last_seq: Option<u64>,
    last_video_ns: u64,
    /// Bytes read from the socket in the window.
    pub bytes: u64,
    /// Video frames (coded pictures) received in the window.
    pub video: u64,
    /// Audio frames (not sequence headers) received in the window.
    pub audio: u64,
    /// Frames missing from the stamps' sequence in the window.
    pub lost: u64,
    /// Gaps of more than 1 s without video in the window.
    pub stalls: u64,
    /// First and last stamp sequence numbers received in the window.
    pub seq_range: Option<(u64, u64)>,
    /// Frames received before a keyframe after a sequence header (or at the start).
    pub keyframe_violations: u64,
    /// Timestamps that went back.
    pub timestamp_violations: u64,
    /// Stamps of another stream.
    pub foreign_stamps: u64,
    /// Frames whose stamp sequence number is not above the last one (repeated or reordered).
    pub duplicates: u64,
    /// Connect start to first keyframe, ns.
    pub join_ns: Option<u64>,
    /// Latencies (µs) of the frames received in the window's last second.
    pub lag_us: Vec<u32>,
    /// Latency samples recorded (window).
    pub latency_samples: u64,
}

impl Track {
    /// A player of stream `stream` whose connect starts at `connect_ns`.
    pub fn new(stream: u32, window: Window, connect_ns: u64) -> Self {
        Self {
            stream,
            window,
            connect_ns,
            need_key: true,
            last_video_ts: None,
            last_audio_ts: None,
            last_seq: None,
            last_video_ns: 0,
            bytes: 0,
            video: 0,
            audio: 0,
            lost: 0,
            stalls: 0,
            seq_range: None,
            keyframe_violations: 0,
            timestamp_violations: 0,
            foreign_stamps: 0,
            duplicates: 0,
            join_ns: None,
            lag_us: Vec::new(),
            latency_samples: 0,
        }
    }

    /// The window this track counts in.
    pub fn window(&self) -> Window {
        self.window
    }

    /// `n` bytes read at `now`.
    pub fn on_bytes(&mut self, n: usize, now: u64) {
        if self.window.contains(now) {
            self.bytes += n as u64;
        }
    }

    /// A video message / tag body (or its prefix) received at `now`.
    pub fn on_video(&mut self, timestamp: u32, body: &[u8], now: u64, latency_us: &mut Histogram) {
        let Some(&b0) = body.first() else {
            return;
        };
        let frame_type = (b0 >> 4) & 0x07;
        let (header, keyframe) = if b0 & 0x0f == media::CODEC_AVC && b0 & 0x80 == 0 {
            match body.get(1) {
                Some(0) => (true, false),
                Some(1) => (false, frame_type == 1),
                _ => return, // end of sequence, truncated
            }
        } else {
            let info = media::video_info(body);
            if frame_type == 5 && !info.sequence_header {
                return; // video info / command frame: no picture
            }
            (info.sequence_header, info.keyframe)
        };
        if header {
            self.need_key = true;
            return;
        }
        if self.need_key {
            if !keyframe {
                self.keyframe_violations += 1;
            }
            self.need_key = false;
        }
        if keyframe && self.join_ns.is_none() {
            self.join_ns = Some(now.saturating_sub(self.connect_ns));
        }
        if self.last_video_ts.is_some_and(|last| timestamp < last) {
            self.timestamp_violations += 1;
        }
        self.last_video_ts = Some(timestamp);
        let in_window = self.window.contains(now);
        if in_window {
            self.video += 1;
            let from = self.last_video_ns.max(self.window.start_ns);
            if now - from > STALL_NS {
                self.stalls += 1;
            }
        }
        self.last_video_ns = now;
        let Some(stamp) = parse_stamp(body) else {
            return;
        };
        if stamp.stream != self.stream {
            self.foreign_stamps += 1;
        }
        if let Some(last) = self.last_seq {
            if stamp.seq <= last {
                self.duplicates += 1;
            } else if in_window && stamp.seq > last + 1 {
                self.lost += stamp.seq - last - 1;
            }
        }
        self.last_seq = Some(stamp.seq);
        if in_window {
            self.seq_range = Some(match self.seq_range {
                Some((first, _)) => (first, stamp.seq),
                None => (stamp.seq, stamp.seq),
            });
            let us = now.saturating_sub(stamp.send_ns) / 1000;
            latency_us.record(us);
            self.latency_samples += 1;
            if now >= self.window.lag_from() {
                self.lag_us.push(us.min(u64::from(u32::MAX)) as u32);
            }
        }
    }

    /// An audio message / tag body received at `now`.
    pub fn on_audio(&mut self, timestamp: u32, body: &[u8], now: u64) {
        if body.is_empty() || media::audio_is_sequence_header(body) {
            return;
        }
        if self.last_audio_ts.is_some_and(|last| timestamp < last) {
            self.timestamp_violations += 1;
        }
        self.last_audio_ts = Some(timestamp);
        if self.window.contains(now) {
            self.audio += 1;
        }
    }

    /// Closes the window: a final gap without video longer than 1 s is a stall.
    pub fn finish(&mut self) {
        let from = self.last_video_ns.max(self.window.start_ns);
        if self.window.end_ns.saturating_sub(from) > STALL_NS {
            self.stalls += 1;
        }
    }

    /// Keyframe, timestamp and stamp violations.
    pub fn validation_errors(&self) -> u64 {
        self.keyframe_violations + self.timestamp_violations + self.foreign_stamps + self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::{stamp_video, Stamp};

    const MS: u64 = 1_000_000;

    fn frame(key: bool, stream: u32, seq: u64, send_ns: u64) -> Vec<u8> {
        let b0 = if key { 0x17 } else { 0x27 };
        let stamp = Stamp {
            stream,
            seq,
            send_ns,
        };
        stamp_video(&[b0, 1, 0, 0, 0, 0, 0, 0, 1, 0x65], &stamp).to_vec()
    }

    #[test]
    fn counts_loss_stalls_latency_and_violations() {
        let w = Window {
            start_ns: 1000 * MS,
            end_ns: 5000 * MS,
        };
        let mut t = Track::new(2, w, 500 * MS);
        let mut h = Histogram::new();
        // Sequence header, then a delta frame first: a keyframe violation.
        t.on_video(0, &[0x17, 0, 0, 0, 0, 1, 0x64], 600 * MS, &mut h);
        t.on_video(0, &frame(false, 2, 0, 590 * MS), 600 * MS, &mut h);
        assert_eq!(t.keyframe_violations, 1);
        t.on_video(33, &frame(true, 2, 1, 690 * MS), 700 * MS, &mut h);
        assert_eq!(t.join_ns, Some(200 * MS));
        // Before the window: not counted.
        assert_eq!((t.video, h.count()), (0, 0));
        // In the window, 2 ms latency; then a jump of 3 sequence numbers (2 lost).
        t.on_video(66, &frame(false, 2, 2, 1098 * MS), 1100 * MS, &mut h);
        t.on_video(99, &frame(false, 2, 5, 1198 * MS), 1200 * MS, &mut h);
        assert_eq!((t.video, t.lost, t.stalls), (2, 2, 0));
        // 1.5 s without video: a stall; a timestamp going back; a foreign stamp.
        t.on_video(50, &frame(false, 3, 6, 2698 * MS), 2700 * MS, &mut h);
        assert_eq!(
            (t.stalls, t.timestamp_violations, t.foreign_stamps),
            (1, 1, 1)
        );
        // The last second feeds the lag.
        t.on_video(150, &frame(false, 2, 7, 3499 * MS), 3500 * MS, &mut h);
        t.on_video(200, &frame(false, 2, 8, 4390 * MS), 4400 * MS, &mut h);
        assert_eq!(t.lag_us, vec![10_000]);
        assert_eq!(t.seq_range, Some((2, 8)));
        assert_eq!(h.count(), 5);
        assert_eq!(h.max(), 10_000);
        // Audio: header ignored, frames counted in the window.
        t.on_audio(0, &[0xaf, 0, 0x12], 4500 * MS);
        t.on_audio(10, &[0xaf, 1, 0x21], 4500 * MS);
        t.on_audio(5, &[0xaf, 1, 0x21], 4600 * MS);
        assert_eq!((t.audio, t.timestamp_violations), (2, 2));
        t.on_bytes(100, 900 * MS);
        t.on_bytes(100, 1000 * MS);
        assert_eq!(t.bytes, 100);
        // Last video at 4.4 s, window ends at 5 s: no final stall.
        t.finish();
        assert_eq!(t.stalls, 1);
        assert_eq!(t.validation_errors(), 1 + 2 + 1);
    }

    #[test]
    fn silent_player_stalls_once() {
        let w = Window {
            start_ns: 0,
            end_ns: 10_000 * MS,
        };
        let mut t = Track::new(0, w, 0);
        t.finish();
        assert_eq!(t.stalls, 1);
    }
}
