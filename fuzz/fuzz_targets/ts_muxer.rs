//! TsMuxer fed arbitrary PES payloads of arbitrary tracks, timestamps and track sets. Every
//! output must be whole 188-byte packets with a sync byte.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shardcast::media::ts::{StreamType, Track, Tracks, TsMuxer, PACKET_LEN};

#[derive(Arbitrary, Debug)]
enum Op {
    Tables,
    SetTracks(u8),
    Pes {
        video: bool,
        pts: u64,
        dts: u64,
        keyframe: bool,
        data: Vec<u8>,
    },
}

fn tracks(bits: u8) -> Tracks {
    let audio = [None, Some(StreamType::Aac), Some(StreamType::Mpeg1Audio)];
    let audio = audio[usize::from(bits >> 1) % 3];
    let video = (bits & 1 == 1).then_some(StreamType::H264);
    Tracks { video, audio }
}

fuzz_target!(|input: (u8, Vec<Op>)| {
    let (first, ops) = input;
    let mut muxer = TsMuxer::new(tracks(first));
    let mut out = Vec::new();
    for op in ops {
        out.clear();
        match op {
            Op::Tables => muxer.write_tables(&mut out),
            Op::SetTracks(bits) => muxer.set_tracks(tracks(bits)),
            Op::Pes {
                video,
                pts,
                dts,
                keyframe,
                data,
            } => {
                let track = if video { Track::Video } else { Track::Audio };
                muxer.write_pes(track, pts, dts, keyframe, &data, &mut out);
            }
        }
        assert_eq!(out.len() % PACKET_LEN, 0);
        assert!(out.chunks(PACKET_LEN).all(|p| p[0] == 0x47));
    }
});
