//! Synthetic FLV tag bodies for precise frame accounting without ffmpeg: every frame carries
//! its sequence number, so a test can check identity and order of what a player receives.

use shardcast::rtmp::amf::{encode_amf0, Value};

/// SPS of a real x264 baseline 320x240 stream (profile 66, level 1.3).
const SPS: [u8; 22] = [
    0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00,
    0x00, 0x0f, 0x03, 0xc5, 0x0a, 0xa8,
];
/// PPS of the same stream.
const PPS: [u8; 4] = [0x68, 0xce, 0x0f, 0xc8];
/// Marker before the hex sequence number inside a synthetic frame.
const SEQ_MARK: &[u8; 4] = b"seq=";
/// Hex digits of the sequence number (ASCII hex never forms an Annex B start code).
const SEQ_DIGITS: usize = 8;

/// FLV video tag body of an AVC sequence header (`17 00 00 00 00` + AVCDecoderConfigurationRecord,
/// ISO 14496-15 5.2.4.1) with a 320x240 baseline SPS/PPS and 4-byte NAL lengths.
pub fn avc_sequence_header() -> Vec<u8> {
    let mut out = vec![0x17, 0, 0, 0, 0];
    // version 1, profile/compatibility/level from the SPS, lengthSizeMinusOne 3, one SPS.
    out.extend_from_slice(&[1, SPS[1], SPS[2], SPS[3], 0xff, 0xe1]);
    out.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
    out.extend_from_slice(&SPS);
    out.push(1);
    out.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
    out.extend_from_slice(&PPS);
    out
}

/// FLV video tag body of one AVC frame (`17|27 01 00 00 00` + one length-prefixed NAL unit,
/// IDR slice when `key`), carrying `seq`; see [`frame_seq`].
pub fn avc_frame(key: bool, seq: u32) -> Vec<u8> {
    avc_frame_sized(key, seq, 0)
}

/// [`avc_frame`] padded with `padding` extra NAL bytes (large frames test chunking).
pub fn avc_frame_sized(key: bool, seq: u32, padding: usize) -> Vec<u8> {
    let mut nal = vec![if key { 0x65 } else { 0x41 }];
    nal.extend_from_slice(&seq_bytes(seq));
    nal.resize(nal.len() + padding, 0x55);
    let mut out = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
    out.extend_from_slice(&nal);
    out
}

/// FLV audio tag body of an AAC sequence header: AAC LC, 44.1 kHz, stereo.
pub fn aac_sequence_header() -> Vec<u8> {
    vec![0xaf, 0x00, 0x12, 0x10]
}

/// FLV audio tag body of one raw AAC frame (`af 01` + data) carrying `seq`.
pub fn aac_frame(seq: u32) -> Vec<u8> {
    let mut out = vec![0xaf, 0x01];
    out.extend_from_slice(&seq_bytes(seq));
    out
}

/// AMF0 data message `@setDataFrame`, `onMetaData`, ECMA array: 320x240, H.264 (7), AAC (10).
pub fn metadata() -> Vec<u8> {
    let props = [
        ("width", 320.0),
        ("height", 240.0),
        ("framerate", 30.0),
        ("videocodecid", 7.0),
        ("audiocodecid", 10.0),
        ("audiosamplerate", 44100.0),
    ];
    let array = Value::EcmaArray(
        props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::Number(*v)))
            .collect(),
    );
    let mut out = Vec::new();
    encode_amf0(
        &["@setDataFrame".into(), "onMetaData".into(), array],
        &mut out,
    );
    out
}

/// The sequence number carried by an [`avc_frame`] or [`aac_frame`] body.
pub fn frame_seq(payload: &[u8]) -> Option<u32> {
    let start = payload
        .windows(SEQ_MARK.len())
        .position(|w| w == SEQ_MARK)?
        + SEQ_MARK.len();
    let digits = payload.get(start..start + SEQ_DIGITS)?;
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// True for a video tag body of a keyframe (frame type 1) that is not a sequence header.
pub fn is_keyframe(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b >> 4 == 1) && payload.get(1) != Some(&0)
}

fn seq_bytes(seq: u32) -> Vec<u8> {
    let mut out = SEQ_MARK.to_vec();
    out.extend_from_slice(format!("{seq:08x}").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use shardcast::rtmp::amf::decode_amf0;

    use super::*;

    #[test]
    fn sequence_headers() {
        let avc = avc_sequence_header();
        assert_eq!(
            avc[..11],
            [0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x0d, 0xff, 0xe1]
        );
        assert_eq!(avc[11..13], [0, 22]);
        assert_eq!(avc[13..35], SPS);
        assert_eq!(avc[35..], [1, 0, 4, 0x68, 0xce, 0x0f, 0xc8]);
        assert_eq!(aac_sequence_header(), [0xaf, 0, 0x12, 0x10]);
        assert!(!is_keyframe(&avc));
    }

    #[test]
    fn frames_carry_their_sequence_number() {
        let key = avc_frame(true, 0xdead_beef);
        assert_eq!(key[..5], [0x17, 1, 0, 0, 0]);
        let nal_len = u32::from_be_bytes(key[5..9].try_into().unwrap()) as usize;
        assert_eq!(nal_len, key.len() - 9);
        assert_eq!(key[9], 0x65);
        assert_eq!(frame_seq(&key), Some(0xdead_beef));
        assert!(is_keyframe(&key));
        let inter = avc_frame_sized(false, 7, 1000);
        assert_eq!(
            (inter[0], inter[9], inter.len()),
            (0x27, 0x41, 9 + 13 + 1000)
        );
        assert_eq!(frame_seq(&inter), Some(7));
        assert!(!is_keyframe(&inter));
        let audio = aac_frame(42);
        assert_eq!(audio[..2], [0xaf, 1]);
        assert_eq!(frame_seq(&audio), Some(42));
        assert_eq!(frame_seq(&[0x27, 1]), None);
        // No Annex B start code can appear inside the NAL unit.
        assert!(!avc_frame(true, 0)
            .windows(3)
            .skip(9)
            .any(|w| w == [0, 0, 1]));
    }

    #[test]
    fn metadata_is_set_data_frame() {
        let values = decode_amf0(&metadata()).unwrap();
        assert_eq!(values[..2], ["@setDataFrame".into(), "onMetaData".into()]);
        assert_eq!(values[2].get("videocodecid"), Some(&Value::Number(7.0)));
        assert_eq!(values[2].get("audiocodecid"), Some(&Value::Number(10.0)));
        assert_eq!(values[2].get("width"), Some(&Value::Number(320.0)));
    }
}
