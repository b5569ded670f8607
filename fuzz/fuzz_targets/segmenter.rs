//! HLS Segmenter (AVC/AAC/MP3 -> TS segments, playlist) fed arbitrary frames: arbitrary kinds,
//! timestamps (jumps back and forth) and payloads, with restarts and finishes in between.
#![no_main]
use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shardcast::hls::{HlsConfig, Segmenter};
use shardcast::hub::Frame;
use shardcast::media::MediaKind;

#[derive(Arbitrary, Debug)]
enum Op {
    Frame {
        kind: u8,
        timestamp: u32,
        payload: Vec<u8>,
    },
    Restart,
    Finish(bool),
    Playlist,
}

fn frame(kind: u8, timestamp: u32, payload: Vec<u8>) -> Frame {
    let kind = match kind % 3 {
        0 => MediaKind::Video,
        1 => MediaKind::Audio,
        _ => MediaKind::Data,
    };
    Frame::from_message(kind, timestamp, Bytes::from(payload))
}

fuzz_target!(|ops: Vec<Op>| {
    let cfg = HlsConfig {
        fragment_ms: 500,
        window: 3,
        grace: 2,
    };
    let mut seg = Segmenter::new(cfg, "room");
    for op in ops {
        match op {
            Op::Frame {
                kind,
                timestamp,
                payload,
            } => {
                seg.push(&frame(kind, timestamp, payload));
            }
            Op::Restart => seg.restart(),
            Op::Finish(endlist) => seg.finish(endlist),
            Op::Playlist => {
                let _ = seg.playlist();
                let view = seg.view();
                assert!(view.segments.len() <= 3 + 2 + 1);
            }
        }
    }
    let _ = seg.playlist();
});
