//! FLV: `first_tag_offset` and `tags` over arbitrary bytes; every tag body is then given to the
//! media classifiers and tag-header parsers, as HTTP-FLV, RTMP aggregates and HLS do.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shardcast::media::{self, aac, avc, flv};

fuzz_target!(|data: &[u8]| {
    let start = flv::first_tag_offset(data).unwrap_or(0);
    // The offset may lie past the end: a header of a file still being received.
    let mut count = 0usize;
    for tag in flv::tags(data, start) {
        count += 1;
        assert!(count <= data.len(), "more tags than bytes");
        let body = Bytes::copy_from_slice(&data[tag.body]);
        let _ = media::video_info(&body);
        let _ = media::audio_is_sequence_header(&body);
        let _ = media::is_metadata(&body);
        let _ = media::strip_set_data_frame(&body);
        let _ = avc::parse_video_tag(&body);
        let _ = aac::parse_audio_tag(&body);
    }
});
