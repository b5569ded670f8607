//! AVCDecoderConfigurationRecord parsing and AVCC -> Annex-B conversion. The input is a config
//! record and a sample, split by a length prefix byte (so FLV-derived seeds stay meaningful).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::media::avc::{parse_video_tag, to_annex_b, AvcConfig};

fuzz_target!(|data: &[u8]| {
    let _ = AvcConfig::parse(data);
    let _ = parse_video_tag(data);
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (record, sample) = rest.split_at(usize::from(n).min(rest.len()));
    let Ok(cfg) = AvcConfig::parse(record) else {
        return;
    };
    let mut out = Vec::new();
    if to_annex_b(sample, &cfg, &mut out).is_ok() {
        // Start codes, an AUD and SPS/PPS add a bounded amount per NAL unit (of >= 1 byte).
        assert!(out.len() <= 64 + record.len() * 3 + sample.len() * 4);
    }
});
