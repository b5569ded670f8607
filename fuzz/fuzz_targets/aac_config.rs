//! AudioSpecificConfig parsing, ADTS headers, FLV audio tag headers and MP3 frame headers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::media::aac::{parse_audio_tag, AacConfig};
use shardcast::media::mpa;

fuzz_target!(|data: &[u8]| {
    let _ = parse_audio_tag(data);
    if let Ok(cfg) = AacConfig::parse(data) {
        for len in [0, 1, data.len(), 0x1FFF, usize::MAX] {
            let _ = cfg.adts_header(len);
        }
    }
    let _ = mpa::MpaHeader::parse(data);
});
