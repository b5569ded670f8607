//! The real-time pacer: yields a file's tags at their due times, looping forever.
//!
//! The metadata and the sequence headers go first, once, due at 0. Then the media tags of the
//! file (audio and video frames) follow with timestamps rebased to start at 0. Each loop adds
//! the file's duration plus one frame interval to the timestamps, so they stay continuous and
//! non-decreasing per track. Every AVC coded frame gets a [`Stamp`] (stream index, video
//! sequence number, send time) as an SEI NAL unit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::flvfile::{FlvFile, TAG_VIDEO};
use crate::stamp::{stamp_video, Stamp};

/// One tag to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacedTag {
    /// 8 audio, 9 video, 18 script data.
    pub type_id: u8,
    /// Output timestamp, ms.
    pub timestamp: u32,
    /// Body (stamped for AVC coded frames).
    pub body: Bytes,
    /// A sequence header or the metadata (sent once, before the media).
    pub header: bool,
    /// A video keyframe (not a sequence header).
    pub keyframe: bool,
    /// The stamp, for AVC coded frames.
    pub stamp: Option<Stamp>,
}

/// Yields the tags of a file in order, looping with continuous timestamps.
#[derive(Debug)]
pub struct Pacer {
    file: Arc<FlvFile>,
    stream: u32,
    /// Header tags still to send (indices into `file.tags`), in order.
    headers: Vec<usize>,
    next_header: usize,
    /// Position in `file.media`.
    pos: usize,
    /// Completed loops.
    loops: u64,
    /// Timestamp offset added per loop: duration + one frame interval.
    loop_ms: u64,
    /// Next video sequence number.
    seq: u64,
}

impl Pacer {
    /// A pacer over `file` stamping frames with stream index `stream`. Fails when the file's
    /// video is AVC with NAL length sizes other than 4 (the stamp NAL needs 4).
    pub fn new(file: Arc<FlvFile>, stream: u32) -> Result<Self, String> {
        if file.avc_sequence_header.is_some() && file.nal_length_size != Some(4) {
            return Err(format!(
                "AVC NAL length size {:?} is not supported (need 4)",
                file.nal_length_size
            ));
        }
        let headers = [
            file.metadata,
            file.avc_sequence_header,
            file.aac_sequence_header,
        ]
        .into_iter()
        .flatten()
        .collect();
        let loop_ms = u64::from(file.duration_ms) + u64::from(file.frame_interval_ms);
        Ok(Self {
            file,
            stream,
            headers,
            next_header: 0,
            pos: 0,
            loops: 0,
            loop_ms,
            seq: 0,
        })
    }

    /// The file being replayed.
    pub fn file(&self) -> &Arc<FlvFile> {
        &self.file
    }

    /// Whether the next tag is one of the header tags (metadata, sequence headers).
    pub fn header_pending(&self) -> bool {
        self.next_header < self.headers.len()
    }

    /// Output timestamp (ms since the start) of the next tag.
    pub fn next_ts_ms(&self) -> u64 {
        if self.next_header < self.headers.len() {
            return 0;
        }
        let tag = &self.file.tags[self.file.media[self.pos]];
        u64::from(tag.timestamp - self.file.first_ts) + self.loops * self.loop_ms
    }

    /// When the next tag is due, relative to the start of the replay.
    pub fn next_due(&self) -> Duration {
        Duration::from_millis(self.next_ts_ms())
    }

    /// Video frames stamped so far (= the next sequence number).
    pub fn video_frames(&self) -> u64 {
        self.seq
    }

    /// The next tag; `send_ns` is the stamp's send time (CLOCK_MONOTONIC ns).
    pub fn next_tag(&mut self, send_ns: u64) -> PacedTag {
        if let Some(&index) = self.headers.get(self.next_header) {
            self.next_header += 1;
            let tag = &self.file.tags[index];
            return PacedTag {
                type_id: tag.type_id,
                timestamp: 0,
                body: tag.body.clone(),
                header: true,
                keyframe: false,
                stamp: None,
            };
        }
        let timestamp = self.next_ts_ms() as u32;
        let tag = &self.file.tags[self.file.media[self.pos]];
        self.pos += 1;
        if self.pos == self.file.media.len() {
            self.pos = 0;
            self.loops += 1;
        }
        let keyframe = tag.type_id == TAG_VIDEO && tag.body.first().is_some_and(|b| b >> 4 == 1);
        let (body, stamp) = if tag.type_id == TAG_VIDEO && tag.is_avc_frame() {
            let stamp = Stamp {
                stream: self.stream,
                seq: self.seq,
                send_ns,
            };
            self.seq += 1;
            (stamp_video(&tag.body, &stamp), Some(stamp))
        } else {
            (tag.body.clone(), None)
        };
        PacedTag {
            type_id: tag.type_id,
            timestamp,
            body,
            header: false,
            keyframe,
            stamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flvfile::{synth_file, TAG_AUDIO, TAG_SCRIPT};
    use crate::stamp::parse_stamp;

    #[test]
    fn loops_with_continuous_timestamps() {
        let file = Arc::new(FlvFile::parse(synth_file(60)).unwrap());
        let mut p = Pacer::new(file.clone(), 3).unwrap();
        // Headers first, once, due at 0.
        let kinds: Vec<u8> = (0..3).map(|_| p.next_tag(0).type_id).collect();
        assert_eq!(kinds, [TAG_SCRIPT, TAG_VIDEO, TAG_AUDIO]);
        let loop_ms = u64::from(file.duration_ms + file.frame_interval_ms);
        assert_eq!(loop_ms, 59 * 33 + 10 + 33);
        let mut last = [0u32; 2];
        let mut seqs = Vec::new();
        let mut due = Duration::ZERO;
        for n in 0..(120 * 3) {
            assert!(p.next_due() >= due);
            due = p.next_due();
            let t = p.next_tag(1000 + n);
            assert!(!t.header, "headers are sent only once");
            let track = usize::from(t.type_id == TAG_VIDEO);
            assert!(t.timestamp >= last[track], "timestamps never go back");
            last[track] = t.timestamp;
            assert_eq!(u64::from(t.timestamp), due.as_millis() as u64);
            if t.type_id == TAG_VIDEO {
                let s = parse_stamp(&t.body).expect("every coded frame is stamped");
                assert_eq!(Some(s), t.stamp);
                assert_eq!((s.stream, s.send_ns), (3, 1000 + n));
                seqs.push(s.seq);
                // The first frame of each loop is a keyframe at loop * loop_ms.
                if seqs.len() % 60 == 1 {
                    let k = (seqs.len() / 60) as u64;
                    assert!(t.keyframe);
                    assert_eq!(u64::from(t.timestamp), k * loop_ms);
                }
            }
        }
        assert_eq!(seqs, (0..180).collect::<Vec<u64>>());
        assert_eq!(p.video_frames(), 180);
        // The step across a loop boundary is one frame interval for video.
        assert_eq!(u64::from(last[1]), 2 * loop_ms + 59 * 33);
    }

    #[test]
    fn rejects_short_nal_lengths() {
        let mut file = FlvFile::parse(synth_file(2)).unwrap();
        file.nal_length_size = Some(2);
        assert!(Pacer::new(Arc::new(file), 0).is_err());
    }
}
