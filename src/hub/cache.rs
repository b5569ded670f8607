//! The late-joiner cache of one stream on one shard: metadata, sequence headers and the last
//! `gop_num` GOPs (audio included), bounded in bytes.

use super::frame::LocalFrame;
use crate::media::MediaKind;
use std::collections::VecDeque;
use std::rc::Rc;

/// Metadata + sequence headers + recent GOPs, as a late joiner needs them.
#[derive(Debug)]
pub struct MediaCache {
    gop_num: usize,
    max_bytes: usize,
    metadata: Option<Rc<LocalFrame>>,
    video_header: Option<Rc<LocalFrame>>,
    audio_header: Option<Rc<LocalFrame>>,
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
            metadata: None,
            video_header: None,
            audio_header: None,
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
            let slot = match frame.kind {
                MediaKind::Data => &mut self.metadata,
                MediaKind::Video => &mut self.video_header,
                MediaKind::Audio => &mut self.audio_header,
            };
            *slot = Some(f.clone());
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
        self.metadata = None;
        self.video_header = None;
        self.audio_header = None;
    }

    /// What a late joiner gets, in order: metadata, video and audio sequence headers, then the
    /// cached GOPs starting on a keyframe.
    pub fn snapshot(&self) -> Vec<Rc<LocalFrame>> {
        let headers = [&self.metadata, &self.video_header, &self.audio_header];
        let mut out: Vec<Rc<LocalFrame>> = headers.into_iter().flatten().cloned().collect();
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
