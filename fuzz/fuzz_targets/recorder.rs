//! FlvRecorder fed arbitrary frames; what it writes must walk back as FLV tags.
#![no_main]
use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shardcast::hub::Frame;
use shardcast::media::{flv, MediaKind};
use shardcast::record::FlvRecorder;

#[derive(Arbitrary, Debug)]
struct In {
    kind: u8,
    timestamp: u32,
    payload: Vec<u8>,
}

fuzz_target!(|frames: Vec<In>| {
    let mut rec = FlvRecorder::new();
    let mut out = Vec::new();
    let mut pushed = 0;
    for f in frames {
        let kind = [MediaKind::Video, MediaKind::Audio, MediaKind::Data][usize::from(f.kind % 3)];
        rec.push(
            &Frame::from_message(kind, f.timestamp, Bytes::from(f.payload)),
            &mut out,
        );
        pushed += 1;
    }
    rec.finish(&mut out);
    let file: Vec<u8> = out.concat();
    if pushed > 0 {
        let start = flv::first_tag_offset(&file).expect("an FLV header");
        assert!(flv::tags(&file, start).count() <= pushed);
    }
});
