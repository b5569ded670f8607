//! The stamp carried by every H.264 coded frame a publisher (or raw-fanout) sends.
//!
//! Right after the 5-byte FLV video tag header comes one extra NAL unit, with a 4-byte length
//! prefix: an SEI (type 6) holding one `user_data_unregistered` message (payload type 5): the
//! 16-byte [`STAMP_UUID`], the stamp as 40 ASCII hex digits (stream index: 8, sequence number:
//! 16, CLOCK_MONOTONIC send time in ns: 16), then the RBSP trailing byte 0x80. None of these
//! bytes is 0x00, so the NAL never needs emulation-prevention bytes.

use bytes::Bytes;

/// The UUID of our SEI messages (ASCII, no 0x00 byte).
pub const STAMP_UUID: [u8; 16] = *b"shardcast-bench1";
/// Hex digits of the stamp.
const HEX_LEN: usize = 8 + 16 + 16;
/// SEI payload: UUID + hex digits.
const PAYLOAD_LEN: usize = 16 + HEX_LEN;
/// The NAL unit: header, payload type, payload size, payload, trailing bits.
const NAL_LEN: usize = 3 + PAYLOAD_LEN + 1;
/// Bytes the stamp adds to a video tag body (length prefix + NAL).
pub const STAMP_BYTES: usize = 4 + NAL_LEN;
/// FLV video tag header of AVC: frame type/codec, AVCPacketType, composition time.
const AVC_HEADER_LEN: usize = 5;
/// How many NAL units [`parse_stamp`] looks at before giving up.
const MAX_NALS: usize = 16;

/// What a stamp says about a video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Stream index of the publisher (`{i}` of the publish URL).
    pub stream: u32,
    /// Video sequence number, 0, 1, 2, ... per publisher.
    pub seq: u64,
    /// CLOCK_MONOTONIC nanoseconds when the frame was handed to the socket.
    pub send_ns: u64,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut Vec<u8>, value: u64, digits: usize) {
    for i in (0..digits).rev() {
        out.push(HEX[((value >> (i * 4)) & 0xf) as usize]);
    }
}

fn get_hex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(v))
    })
}

/// Appends the stamp NAL unit (4-byte length prefix included) to `out`.
pub fn write_stamp_nal(out: &mut Vec<u8>, stamp: &Stamp) {
    out.extend_from_slice(&(NAL_LEN as u32).to_be_bytes());
    out.extend_from_slice(&[6, 5, PAYLOAD_LEN as u8]);
    out.extend_from_slice(&STAMP_UUID);
    put_hex(out, u64::from(stamp.stream), 8);
    put_hex(out, stamp.seq, 16);
    put_hex(out, stamp.send_ns, 16);
    out.push(0x80);
}

/// A copy of an AVC video tag body with the stamp NAL inserted right after the 5-byte header.
/// The caller checks that the body is an AVC coded frame with 4-byte NAL lengths.
pub fn stamp_video(body: &[u8], stamp: &Stamp) -> Bytes {
    let split = body.len().min(AVC_HEADER_LEN);
    let mut out = Vec::with_capacity(body.len() + STAMP_BYTES);
    out.extend_from_slice(&body[..split]);
    write_stamp_nal(&mut out, stamp);
    out.extend_from_slice(&body[split..]);
    Bytes::from(out)
}

/// The stamp of one SEI NAL unit (header byte first), if it is ours.
pub fn parse_sei(nal: &[u8]) -> Option<Stamp> {
    if nal.len() < NAL_LEN || nal[0] & 0x1f != 6 || nal[1] != 5 || nal[2] != PAYLOAD_LEN as u8 {
        return None;
    }
    if nal[3..19] != STAMP_UUID || nal[NAL_LEN - 1] != 0x80 {
        return None;
    }
    let hex = &nal[19..19 + HEX_LEN];
    Some(Stamp {
        stream: get_hex(&hex[..8])? as u32,
        seq: get_hex(&hex[8..24])?,
        send_ns: get_hex(&hex[24..40])?,
    })
}

/// Finds our stamp in an AVC video tag body (FLV/RTMP payload: 5-byte header, then AVCC NAL
/// units with 4-byte lengths). Works on a prefix of the body too, as long as the stamp NAL is
/// complete in it (it comes first, so the first [`STAMP_BYTES`] + 5 bytes suffice).
pub fn parse_stamp(body: &[u8]) -> Option<Stamp> {
    let mut pos = AVC_HEADER_LEN;
    for _ in 0..MAX_NALS {
        let len = body.get(pos..pos + 4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let start = pos + 4;
        let end = start.checked_add(len)?;
        let nal = &body[start..end.min(body.len())];
        if nal.first().is_some_and(|h| h & 0x1f == 6) {
            if let Some(stamp) = parse_sei(nal) {
                return Some(stamp);
            }
        }
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_without_zero_bytes() {
        let frame = [0x27, 1, 0, 0, 0x21, 0, 0, 0, 3, 0x41, 0x9a, 0x00];
        let stamp = Stamp {
            stream: 7,
            seq: 123_456,
            send_ns: 0x1234_5678_9abc_def0,
        };
        let stamped = stamp_video(&frame, &stamp);
        assert_eq!(stamped.len(), frame.len() + STAMP_BYTES);
        assert_eq!(&stamped[..5], &frame[..5]);
        assert_eq!(&stamped[5 + STAMP_BYTES..], &frame[5..]);
        // The NAL itself (after the length prefix) contains no 0x00 at all.
        let nal = &stamped[9..5 + STAMP_BYTES];
        assert!(!nal.contains(&0));
        assert_eq!(parse_stamp(&stamped), Some(stamp));
        // A prefix holding the whole stamp NAL is enough.
        assert_eq!(parse_stamp(&stamped[..5 + STAMP_BYTES]), Some(stamp));
        assert_eq!(parse_stamp(&stamped[..5 + STAMP_BYTES - 1]), None);
        assert_eq!(parse_stamp(&frame), None);
        // Extremes of every field.
        let max = Stamp {
            stream: u32::MAX,
            seq: u64::MAX,
            send_ns: u64::MAX,
        };
        assert_eq!(parse_stamp(&stamp_video(&frame, &max)), Some(max));
    }

    #[test]
    fn found_after_other_nal_units() {
        let stamp = Stamp {
            stream: 1,
            seq: 2,
            send_ns: 3,
        };
        let mut body = vec![0x17, 1, 0, 0, 0];
        // An x264 SEI of another UUID, then an AUD, then ours, then the slice.
        body.extend_from_slice(&[0, 0, 0, 4, 6, 5, 1, 0x80]);
        body.extend_from_slice(&[0, 0, 0, 2, 9, 0xf0]);
        write_stamp_nal(&mut body, &stamp);
        body.extend_from_slice(&[0, 0, 0, 2, 0x65, 0x88]);
        assert_eq!(parse_stamp(&body), Some(stamp));
        // A corrupted UUID is not ours.
        let at = body.len() - 6 - NAL_LEN + 3;
        body[at] ^= 1;
        assert_eq!(parse_stamp(&body), None);
    }
}
