//! A player's outgoing queue: bounded in bytes, skipping to the next keyframe when full.
//!
//! The hub pushes shared frames; the connection's writer task drains everything pending in one
//! go and writes it. A player that cannot keep up loses whole GOPs (never a partial picture
//! sequence, never the publisher's or another player's frames), and one that stays behind for
//! `max_skips` consecutive skips is closed.

use super::frame::LocalFrame;
use crate::media::MediaKind;
use bytes::Bytes;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Items a drained queue keeps room for; a burst beyond it (a late joiner's cached GOP) is
/// given back once sent, so an idle player's memory stays small.
pub const KEEP_CAPACITY: usize = 64;

/// Give back the room a burst left in an emptied per-player buffer (see [`KEEP_CAPACITY`]).
pub fn release_burst<T>(v: &mut Vec<T>) {
    if v.capacity() > KEEP_CAPACITY {
        v.shrink_to(KEEP_CAPACITY);
    }
}

/// A change of the stream's publisher, for protocols that tell the player about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent {
    /// A publisher started (or replaced another): RTMP `NetStream.Play.PublishNotify`.
    Published,
    /// The publisher left: RTMP `NetStream.Play.UnpublishNotify`.
    Unpublished,
}

/// One thing to send, in order.
#[derive(Debug, Clone)]
pub enum Item {
    Frame(Rc<LocalFrame>),
    Event(StreamEvent),
    /// Protocol bytes made by the connection itself (command replies, acks).
    Raw(Bytes),
}

/// Why the hub closed a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Skipped to a keyframe `max_skips` times in a row without catching up.
    Lagging,
    /// Protocol bytes piled up beyond the bound (a peer that never reads).
    Overflow,
}

/// The queue shared (through `Rc<RefCell<..>>`) by the hub and one connection.
#[derive(Debug)]
pub struct PlayerQueue {
    items: VecDeque<Item>,
    frame_bytes: usize,
    raw_bytes: usize,
    max_bytes: usize,
    max_skips: u32,
    need_keyframe: bool,
    skips: u32,
    last_seq: u64,
    dropped: u64,
    closed: Option<CloseReason>,
    waker: Option<Waker>,
    /// Hold audio frames (without waking the writer) until the next video frame or
    /// `flush_held`, so both go out in one write.
    merge_audio: bool,
    /// Hold every non-header frame until `flush_held` (merged writes with a latency budget).
    merge_all: bool,
    /// A video frame went through: the stream is not audio-only, audio may be held.
    saw_video: bool,
    /// Frames are queued that the writer was not woken for.
    holding: bool,
}

impl PlayerQueue {
    /// A queue that holds audio for the next video frame (see [`PlayerQueue::with_audio_merge`]).
    pub fn new(max_bytes: usize, max_skips: u32) -> Self {
        PlayerQueue {
            items: VecDeque::new(),
            frame_bytes: 0,
            raw_bytes: 0,
            max_bytes,
            max_skips,
            need_keyframe: true,
            skips: 0,
            last_seq: 0,
            dropped: 0,
            closed: None,
            waker: None,
            merge_audio: false,
            merge_all: false,
            saw_video: false,
            holding: false,
        }
    }

    /// Hold audio frames of a stream with video until its next video frame (or the shard's
    /// next `flush_held` tick), so a player gets one write per video frame instead of one
    /// per frame: the audio rides along. Video and headers always wake the writer at once.
    pub fn with_audio_merge(mut self, on: bool) -> Self {
        self.merge_audio = on;
        self
    }

    /// Hold every frame but headers until the shard's next `flush_held` tick: one write per
    /// player per tick (SRS `mw_latency`), for much less CPU per viewer.
    pub fn with_merged_writes(mut self, on: bool) -> Self {
        self.merge_all = on;
        self
    }

    /// Wake the writer for frames held back; the shard calls it every `audio_merge_ms`.
    pub fn flush_held(&mut self) {
        if self.holding {
            self.wake();
        }
    }

    /// Offer a frame. Frames already delivered (by sequence number) are ignored, so a resync
    /// snapshot never duplicates; non-header frames wait for a keyframe after a start, a skip
    /// or a hole in the sequence.
    pub fn push_frame(&mut self, f: &Rc<LocalFrame>) {
        let frame = &f.frame;
        if self.closed.is_some() || (frame.seq != 0 && frame.seq <= self.last_seq) {
            return;
        }
        if !frame.header {
            if frame.seq > self.last_seq.saturating_add(1) && self.last_seq != 0 {
                // A hole (frames this shard never got): pictures would reference missing
                // frames until the next keyframe, so wait for it.
                self.need_keyframe = true;
            }
            if self.frame_bytes + frame.len() > self.max_bytes {
                self.skip();
                if self.closed.is_some() {
                    return;
                }
            }
            if self.need_keyframe && !frame.keyframe {
                self.dropped += 1;
                return;
            }
            self.need_keyframe = false;
        }
        self.last_seq = self.last_seq.max(frame.seq);
        self.frame_bytes += frame.len();
        self.items.push_back(Item::Frame(f.clone()));
        let video = frame.kind == MediaKind::Video;
        self.saw_video |= video;
        let held_audio = self.merge_audio && self.saw_video && frame.kind == MediaKind::Audio;
        if !frame.header && (self.merge_all || held_audio) {
            self.holding = true;
        } else {
            self.wake();
        }
    }

    /// Drop every queued non-header frame and wait for the next keyframe.
    fn skip(&mut self) {
        let before = self.items.len();
        self.items.retain(|i| match i {
            Item::Frame(f) => f.frame.header,
            _ => true,
        });
        self.dropped += (before - self.items.len()) as u64;
        self.frame_bytes = self.items.iter().map(item_frame_bytes).sum();
        self.need_keyframe = true;
        self.skips += 1;
        if self.skips > self.max_skips {
            self.close(CloseReason::Lagging);
        }
    }

    pub fn push_event(&mut self, e: StreamEvent) {
        self.items.push_back(Item::Event(e));
        self.wake();
    }

    /// Queue protocol bytes; a peer that lets them pile up past the bound is closed.
    pub fn push_raw(&mut self, b: Bytes) {
        if self.closed.is_some() {
            return;
        }
        self.raw_bytes += b.len();
        if self.raw_bytes > self.max_bytes {
            self.close(CloseReason::Overflow);
            return;
        }
        self.items.push_back(Item::Raw(b));
        self.wake();
    }

    /// Close the queue; the writer sees it on its next poll.
    pub fn close(&mut self, reason: CloseReason) {
        if self.closed.is_none() {
            self.closed = Some(reason);
        }
        self.wake();
    }

    pub fn closed(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Frames dropped for this player so far (skips and waiting for a keyframe).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Take everything pending into `out`. Ready when there is something or the queue closed.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>, out: &mut Vec<Item>) -> Poll<()> {
        if self.items.is_empty() && self.closed.is_none() {
            self.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        out.extend(self.items.drain(..));
        self.holding = false;
        if self.items.capacity() > KEEP_CAPACITY {
            // A join's burst (the cached GOP) grew the queue: don't keep that per player.
            self.items.shrink_to(KEEP_CAPACITY);
        }
        self.frame_bytes = 0;
        self.raw_bytes = 0;
        if !self.need_keyframe {
            // Caught up: the skip streak is over.
            self.skips = 0;
        }
        Poll::Ready(())
    }

    fn wake(&mut self) {
        self.holding = false;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

fn item_frame_bytes(i: &Item) -> usize {
    match i {
        Item::Frame(f) => f.frame.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::frame::Frame;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::Waker;

    fn f(key: bool, header: bool, len: usize, seq: u64) -> Rc<LocalFrame> {
        Rc::new(LocalFrame::new(Frame {
            kind: MediaKind::Video,
            timestamp: seq as u32,
            payload: Bytes::from(vec![1u8; len]),
            keyframe: key,
            header,
            seq,
        }))
    }

    fn drain(q: &mut PlayerQueue) -> Vec<u64> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        let _ = q.poll_drain(&mut cx, &mut out);
        out.iter()
            .filter_map(|i| match i {
                Item::Frame(f) => Some(f.frame.seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn starts_on_keyframe_and_ignores_duplicates() {
        let mut q = PlayerQueue::new(1000, 3);
        q.push_frame(&f(false, true, 5, 1));
        q.push_frame(&f(false, false, 5, 2));
        q.push_frame(&f(true, false, 5, 3));
        q.push_frame(&f(false, false, 5, 4));
        q.push_frame(&f(true, false, 5, 3)); // duplicate of a delivered frame
        assert_eq!(drain(&mut q), vec![1, 3, 4]);
        assert_eq!(q.dropped(), 1);
    }

    #[test]
    fn full_queue_skips_to_next_keyframe_keeping_headers() {
        let mut q = PlayerQueue::new(100, 3);
        q.push_frame(&f(false, true, 10, 1));
        q.push_frame(&f(true, false, 40, 2));
        q.push_frame(&f(false, false, 40, 3));
        q.push_frame(&f(false, false, 40, 4)); // would exceed: skip
        q.push_frame(&f(false, false, 10, 5)); // still waiting for a keyframe
        q.push_frame(&f(true, false, 10, 6));
        assert_eq!(drain(&mut q), vec![1, 6]);
        assert_eq!(q.dropped(), 4);
        assert_eq!(q.closed(), None);
    }

    #[test]
    fn a_player_that_never_drains_is_closed_and_bounded() {
        let mut q = PlayerQueue::new(100, 2);
        for seq in 1..1000u64 {
            q.push_frame(&f(seq % 3 == 1, false, 40, seq));
            assert!(q.frame_bytes <= 100);
        }
        assert_eq!(q.closed(), Some(CloseReason::Lagging));
    }

    #[test]
    fn draining_resets_the_skip_streak() {
        let mut q = PlayerQueue::new(100, 1);
        for round in 0..10u64 {
            let base = round * 10 + 1;
            q.push_frame(&f(true, false, 60, base));
            q.push_frame(&f(false, false, 60, base + 1)); // skip
            q.push_frame(&f(true, false, 60, base + 2));
            drain(&mut q);
        }
        assert_eq!(q.closed(), None);
    }

    #[test]
    fn a_hole_in_the_sequence_waits_for_the_next_keyframe() {
        let mut q = PlayerQueue::new(1000, 3);
        q.push_frame(&f(true, false, 5, 1));
        q.push_frame(&f(false, false, 5, 2));
        q.push_frame(&f(false, false, 5, 4)); // 3 never arrived
        q.push_frame(&f(false, false, 5, 5));
        q.push_frame(&f(true, false, 5, 6));
        q.push_frame(&f(false, false, 5, 7));
        assert_eq!(drain(&mut q), vec![1, 2, 6, 7]);
    }

    #[test]
    fn audio_waits_for_the_next_video_frame_unless_the_stream_is_audio_only() {
        let audio = |seq: u64| {
            Rc::new(LocalFrame::new(Frame {
                kind: MediaKind::Audio,
                timestamp: seq as u32,
                payload: Bytes::from_static(b"\xaf\x01a"),
                keyframe: true,
                header: false,
                seq,
            }))
        };
        let woken = |q: &mut PlayerQueue| {
            let flag = Arc::new(Flag::default());
            let waker = Waker::from(flag.clone());
            let mut out = Vec::new();
            let _ = q.poll_drain(&mut Context::from_waker(&waker), &mut out);
            assert!(out.is_empty(), "{out:?}");
            flag
        };
        // Audio-only so far: every frame wakes the writer.
        let mut q = PlayerQueue::new(1000, 3).with_audio_merge(true);
        let w = woken(&mut q);
        q.push_frame(&audio(1));
        assert!(w.0.load(Ordering::SeqCst));
        drain(&mut q);
        // Once video flows, audio is held until the next video frame...
        q.push_frame(&f(true, false, 5, 2));
        drain(&mut q);
        let w = woken(&mut q);
        q.push_frame(&audio(3));
        assert!(!w.0.load(Ordering::SeqCst), "audio held");
        q.push_frame(&f(false, false, 5, 4));
        assert!(w.0.load(Ordering::SeqCst), "video wakes");
        assert_eq!(drain(&mut q), vec![3, 4], "in order, in one go");
        // ... or the shard's flush.
        let w = woken(&mut q);
        q.push_frame(&audio(5));
        q.flush_held();
        assert!(w.0.load(Ordering::SeqCst), "flushed");
        // Merged writes hold video too, never headers.
        let mut q = PlayerQueue::new(1000, 3).with_merged_writes(true);
        let w = woken(&mut q);
        q.push_frame(&f(true, false, 5, 1));
        assert!(!w.0.load(Ordering::SeqCst), "video held");
        q.push_frame(&f(false, true, 5, 2));
        assert!(w.0.load(Ordering::SeqCst), "a header wakes");
        // Without merging, audio wakes at once.
        let mut q = PlayerQueue::new(1000, 3);
        q.push_frame(&f(true, false, 5, 1));
        drain(&mut q);
        let w = woken(&mut q);
        q.push_frame(&audio(2));
        assert!(w.0.load(Ordering::SeqCst));
    }

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn raw_bytes_are_bounded() {
        let mut q = PlayerQueue::new(10, 1);
        q.push_raw(Bytes::from_static(b"12345"));
        q.push_raw(Bytes::from_static(b"12345"));
        assert_eq!(q.closed(), None);
        q.push_raw(Bytes::from_static(b"1"));
        assert_eq!(q.closed(), Some(CloseReason::Overflow));
    }
}
