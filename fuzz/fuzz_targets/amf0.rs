//! AMF0 decode of arbitrary bytes; whatever decodes must re-encode to bytes that decode to a
//! value with the same encoding (encode . decode is idempotent on encoder output).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::rtmp::amf::{decode_amf0, decode_amf0_value, encode_amf0};

fuzz_target!(|data: &[u8]| {
    let _ = decode_amf0_value(data);
    let Ok(values) = decode_amf0(data) else {
        return;
    };
    let mut first = Vec::new();
    encode_amf0(&values, &mut first);
    let again = decode_amf0(&first).expect("our own AMF0 encoding must decode");
    let mut second = Vec::new();
    encode_amf0(&again, &mut second);
    assert_eq!(first, second, "AMF0 re-encoding is not stable");
});
