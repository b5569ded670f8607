//! AMF3 decode of arbitrary bytes; whatever decodes must re-encode (without references) to
//! bytes that decode to a value with the same encoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::rtmp::amf::{decode_amf3, encode_amf3_value};

fn encode(values: &[shardcast::rtmp::amf::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode_amf3_value(v, &mut out);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(values) = decode_amf3(data) else {
        return;
    };
    let first = encode(&values);
    let again = decode_amf3(&first).expect("our own AMF3 encoding must decode");
    assert_eq!(first, encode(&again), "AMF3 re-encoding is not stable");
});
