//! Enhanced RTMP: arbitrary bytes as video and audio tag bodies through the E-RTMP parser and
//! every classifier built on it (keyframe, sequence header, header slot, codec), an HEVC
//! configuration record plus sample through the Annex-B conversion HLS uses, and arbitrary
//! AMF0 as a `connect` command object through the capability negotiation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::media::{self, ertmp, hevc, MediaKind};
use shardcast::rtmp::{amf, caps::ClientCaps};

/// `inner` lies within `outer` (parsers only borrow).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fuzz_target!(|data: &[u8]| {
    for kind in [MediaKind::Video, MediaKind::Audio] {
        let _ = media::codec_of(kind, data);
        let _ = media::header_slot(kind, data);
    }
    let info = media::video_info(data);
    assert!(!(info.keyframe && info.sequence_header), "a header is no keyframe");
    let _ = media::audio_is_sequence_header(data);
    if let Ok(t) = ertmp::parse_video(data) {
        assert!(within(data, t.data));
        assert!(!(t.is_keyframe() && t.is_sequence_header()));
        let _ = t.codec.name();
        if t.codec == ertmp::Codec::Hevc && t.is_sequence_header() {
            let _ = hevc::HevcConfig::parse(t.data);
        }
    }
    if let Ok(t) = ertmp::parse_audio(data) {
        assert!(within(data, t.data));
        let _ = t.codec.name();
    }
    // First byte: where an HEVC record ends and a sample begins.
    if let Some((&split, rest)) = data.split_first() {
        let (record, sample) = rest.split_at((usize::from(split) * 8).min(rest.len()));
        if let Ok(cfg) = hevc::HevcConfig::parse(record) {
            let _ = hevc::is_irap(sample, &cfg);
            let mut out = vec![0xAA];
            match hevc::to_annex_b(sample, &cfg, &mut out) {
                Ok(()) => assert!(out.len() > 1),
                Err(_) => assert_eq!(out, [0xAA], "left as it was on error"),
            }
        }
    }
    if let Ok(values) = amf::decode_amf0(data) {
        for v in &values {
            if let Some(c) = ClientCaps::from_connect(v) {
                assert!(c.fourcc_list.len() <= 32 && c.video.len() <= 32 && c.audio.len() <= 32);
                let _ = c.lists("hvc1");
            }
        }
    }
});
