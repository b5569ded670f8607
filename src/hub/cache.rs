//! The late-joiner cache of one stream on one shard: metadata, sequence headers and the last
//! `gop_num` GOPs (audio included), bounded in bytes.

use super::frame::LocalFrame;
use crate::media::{self, HeaderSlot, MediaKind};
use std::collections::VecDeque;
use std::rc::Rc;

/// Header slots kept at most (a publisher inventing track ids cannot grow the cache).
pub const MAX_HEADERS: usize = 16;

/// Metadata + sequence headers + recent GOPs, as a late joiner needs them.
#[derive(Debug)]
pub struct MediaCache {
    gop_num: usize,
    max_bytes: usize,
    /// Metadata and sequence headers, one per [`HeaderSlot`] (a few: metadata, video and
    /// audio configuration, E-RTMP multichannel config, video metadata, multitrack tracks),
    /// in arrival order; at most [`MAX_HEADERS`].
    headers: Vec<(HeaderSlot, Rc<LocalFrame>)>,
    /// Frames of the cached GOPs; always starts with a keyframe when non-empty.
    gop: VecDeque<Rc<LocalFrame>>,
    gop_bytes: usize,
    /// Number of keyframes (GOP starts) in `gop`.
    gop_starts: usize,
    /// A video frame of this publisher was pushed (the stream is not audio-only). Kept as a
    /// flag: the hub asks for every frame, and scanning the GOP each time cost O(GOP).
    seen_video: bool,
}

impl MediaCache {
    pub fn new(gop_num: usize, max_bytes: usize) -> Self {
        MediaCache {
            gop_num,
            max_bytes,
            headers: Vec::new(),
            gop: VecDeque::new(),
            gop_bytes: 0,
            gop_starts: 0,
            seen_video: false,
        }
    }

    /// Take in the next frame of the stream.
    pub fn push(&mut self, f: &Rc<LocalFrame>) {
        let frame = &f.frame;
        self.seen_video |= frame.kind == MediaKind::Video;
        if frame.header {
            let slot = media::header_slot(frame.kind, &frame.payload);
            // Keep arrival (= sequence) order: players ignore a frame older than one they
            // already got, so a header replayed after a newer one would be lost.
            self.headers.retain(|(s, _)| *s != slot);
            if self.headers.len() >= MAX_HEADERS {
                // Full (many multitrack renditions): give up the oldest header of another
                // track, never the main track's configuration or the metadata.
                let victim = self
                    .headers
                    .iter()
                    .position(|(s, _)| s.track != 0)
                    .unwrap_or(0);
                self.headers.remove(victim);
            }
            self.headers.push((slot, f.clone()));
            return;
        }
        if frame.keyframe {
            if self.gop_num == 0 {
                return;
            }
            self.gop_starts += 1;
        } else if self.gop.is_empty() {
            // Nothing before the first keyframe is worth replaying.
            return;
        }
        self.gop_bytes += frame.len();
        self.gop.push_back(f.clone());
        while self.gop_starts > self.gop_num
            || (self.gop_bytes > self.max_bytes && !self.gop.is_empty())
        {
            self.drop_oldest_gop();
        }
    }

    /// Drop the oldest GOP (everything up to the second keyframe, or all of it).
    fn drop_oldest_gop(&mut self) {
        if let Some(first) = self.gop.pop_front() {
            self.gop_bytes -= first.frame.len();
            if first.frame.keyframe {
                self.gop_starts -= 1;
            }
        }
        while let Some(next) = self.gop.front() {
            if next.frame.keyframe {
                break;
            }
            self.gop_bytes -= next.frame.len();
            self.gop.pop_front();
        }
    }

    /// Forget the GOPs (not the headers): after a gap the cached pictures are incomplete.
    pub fn clear_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.gop_starts = 0;
    }

    /// Forget everything (a publisher ended; the next one brings its own headers).
    pub fn clear(&mut self) {
        self.clear_gop();
        self.seen_video = false;
        self.headers.clear();
    }

    /// What a late joiner gets, in order: metadata and headers in the order they arrived
    /// (players drop a frame older than one they already have, so the order must be the
    /// stream's), then the cached GOPs starting on a keyframe.
    pub fn snapshot(&self) -> Vec<Rc<LocalFrame>> {
        let mut out = Vec::with_capacity(self.headers.len() + self.gop.len());
        out.extend(self.headers.iter().map(|(_, f)| f.clone()));
        out.extend(self.gop.iter().cloned());
        out
    }

    /// Bytes held by the GOPs.
    pub fn gop_bytes(&self) -> usize {
        self.gop_bytes
    }

    /// Whether a video frame was pushed since the last `clear` (the stream is not audio-only).
    pub fn has_video(&self) -> bool {
        self.seen_video
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::frame::Frame;
    use bytes::Bytes;

    fn frame(kind: MediaKind, key: bool, header: bool, len: usize, seq: u64) -> Rc<LocalFrame> {
        Rc::new(LocalFrame::new(Frame {
            kind,
            timestamp: seq as u32,
            payload: Bytes::from(vec![0u8; len]),
            keyframe: key,
            header,
            seq,
        }))
    }

    fn seqs(c: &MediaCache) -> Vec<u64> {
        c.snapshot().iter().map(|f| f.frame.seq).collect()
    }

    #[test]
    fn starts_on_a_keyframe_and_keeps_gop_num_gops_with_audio() {
        let mut c = MediaCache::new(2, 1 << 20);
        c.push(&frame(MediaKind::Data, false, true, 10, 1));
        c.push(&frame(MediaKind::Video, false, true, 10, 2));
        c.push(&frame(MediaKind::Audio, false, true, 2, 3));
        c.push(&frame(MediaKind::Video, false, false, 10, 4)); // before any keyframe: dropped
        c.push(&frame(MediaKind::Video, true, false, 10, 5));
        c.push(&frame(MediaKind::Audio, false, false, 5, 6));
        c.push(&frame(MediaKind::Video, false, false, 10, 7));
        c.push(&frame(MediaKind::Video, true, false, 10, 8));
        c.push(&frame(MediaKind::Audio, false, false, 5, 9));
        assert_eq!(seqs(&c), vec![1, 2, 3, 5, 6, 7, 8, 9]);
        c.push(&frame(MediaKind::Video, true, false, 10, 10));
        assert_eq!(seqs(&c), vec![1, 2, 3, 8, 9, 10]);
    }

    #[test]
    fn gop_num_zero_caches_only_headers() {
        let mut c = MediaCache::new(0, 1 << 20);
        c.push(&frame(MediaKind::Video, false, true, 10, 1));
        c.push(&frame(MediaKind::Video, true, false, 10, 2));
        c.push(&frame(MediaKind::Video, false, false, 10, 3));
        assert_eq!(seqs(&c), vec![1]);
    }

    #[test]
    fn byte_bound_drops_whole_gops_then_everything() {
        let mut c = MediaCache::new(3, 100);
        c.push(&frame(MediaKind::Video, true, false, 40, 1));
        c.push(&frame(MediaKind::Video, false, false, 20, 2));
        c.push(&frame(MediaKind::Video, true, false, 40, 3));
        assert_eq!(seqs(&c), vec![1, 2, 3]);
        c.push(&frame(MediaKind::Video, false, false, 20, 4)); // 120 > 100: drop GOP 1
        assert_eq!(seqs(&c), vec![3, 4]);
        assert_eq!(c.gop_bytes(), 60);
        c.push(&frame(MediaKind::Video, false, false, 50, 5)); // one GOP alone too big
        assert_eq!(seqs(&c), Vec::<u64>::new());
        c.push(&frame(MediaKind::Video, false, false, 5, 6)); // waits for the next keyframe
        assert!(seqs(&c).is_empty());
        c.push(&frame(MediaKind::Video, true, false, 5, 7));
        assert_eq!(seqs(&c), vec![7]);
    }

    fn real(kind: MediaKind, payload: &'static [u8], seq: u64) -> Rc<LocalFrame> {
        let mut f = Frame::from_message(kind, seq as u32, Bytes::from_static(payload));
        f.seq = seq;
        Rc::new(LocalFrame::new(f))
    }

    #[test]
    fn enhanced_rtmp_headers_each_keep_their_slot() {
        let mut c = MediaCache::new(1, 1 << 20);
        // As FFmpeg sends HEVC + Opus: video SequenceStart, Opus SequenceStart and
        // MultichannelConfig, video Metadata (colorInfo), then a key frame.
        c.push(&real(MediaKind::Video, b"\x90hvc1\x01\x01", 1));
        c.push(&real(MediaKind::Audio, b"\x90OpusOpusHead\x01", 2));
        c.push(&real(MediaKind::Audio, b"\x94Opus\x01\x01\0\0\0\x04", 3));
        c.push(&real(MediaKind::Video, b"\xd4hvc1\x02\x00\x09colorInfo", 4));
        c.push(&real(MediaKind::Video, b"\x91hvc1\0\0\0\0\0\0\x01\x26", 5));
        c.push(&real(MediaKind::Audio, b"\x91Opus\xf8", 6));
        assert_eq!(seqs(&c), vec![1, 2, 3, 4, 5, 6]);
        // A new SequenceStart replaces the old one and the headers stay in sequence order
        // (a player would drop a header older than one it already has); the
        // MultichannelConfig stays.
        c.push(&real(MediaKind::Audio, b"\x90OpusOpusHead\x02", 7));
        c.push(&real(MediaKind::Video, b"\x90hvc1\x01\x02", 8));
        assert_eq!(seqs(&c), vec![3, 4, 7, 8, 5, 6]);
        // A legacy sequence header shares the slot of an enhanced one.
        c.push(&real(MediaKind::Video, b"\x1c\x00\0\0\0\x01", 9));
        assert_eq!(seqs(&c), vec![3, 4, 7, 9, 5, 6]);
    }

    #[test]
    fn header_slots_are_bounded() {
        let mut c = MediaCache::new(1, 1 << 20);
        let bodies: Vec<&'static [u8]> = (0..=255u8)
            .map(|track| {
                let v: &'static [u8] = Box::leak(
                    [&b"\x96\x00av01"[..], &[track, 0x81]]
                        .concat()
                        .into_boxed_slice(),
                );
                v
            })
            .collect();
        for (i, b) in bodies.into_iter().enumerate() {
            c.push(&real(MediaKind::Video, b, i as u64));
        }
        assert_eq!(c.snapshot().len(), MAX_HEADERS);
    }

    #[test]
    fn clear_keeps_nothing() {
        let mut c = MediaCache::new(1, 1000);
        c.push(&frame(MediaKind::Video, false, true, 10, 1));
        c.push(&frame(MediaKind::Video, true, false, 10, 2));
        assert!(c.has_video());
        c.clear();
        assert!(c.snapshot().is_empty());
        assert!(!c.has_video());
    }
}
