//! FLV tags (Adobe FLV spec, annex E.4.1): 11-byte header, body, 4-byte PreviousTagSize.
//!
//! The same layout carries RTMP aggregate messages (RTMP 1.0 section 7.1.6), FLV files and
//! HTTP-FLV bodies.

use std::ops::Range;

/// Length of a tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Length of the PreviousTagSize that follows each tag.
pub const BACK_POINTER_LEN: usize = 4;

/// One tag found in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Tag type: 8 audio, 9 video, 18 script data (the RTMP message type ids).
    pub type_id: u8,
    /// Timestamp in milliseconds (24 low bits plus the extension byte).
    pub timestamp: u32,
    /// Where the body lies in the buffer that was walked.
    pub body: Range<usize>,
}

/// Walk the tags of `data` from offset `start`; stops at the first truncated tag (nothing
/// after a truncation can be trusted).
pub fn tags(data: &[u8], start: usize) -> impl Iterator<Item = Tag> + '_ {
    let mut pos = start;
    std::iter::from_fn(move || {
        let h = data.get(pos..pos.checked_add(TAG_HEADER_LEN)?)?;
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let body_start = pos + TAG_HEADER_LEN;
        let body_end = body_start.checked_add(len).filter(|e| *e <= data.len())?;
        pos = body_end.saturating_add(BACK_POINTER_LEN);
        Some(Tag {
            // The top bits are the reserved and filter flags.
            type_id: h[0] & 0x1f,
            timestamp,
            body: body_start..body_end,
        })
    })
}

/// The FLV file header (spec E.2) announcing the given tracks, and PreviousTagSize0. With
/// no track known yet both are announced, as livego always does.
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; 13] {
    let flags = match (has_audio, has_video) {
        (false, false) => 0x05,
        (audio, video) => (u8::from(audio) << 2) | u8::from(video),
    };
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// Append one tag (header, body, PreviousTagSize) to `out`.
pub fn write_tag(out: &mut Vec<u8>, type_id: u8, timestamp: u32, body: &[u8]) {
    let (header, trailer) = tag_framing(type_id, timestamp, body.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out.extend_from_slice(&trailer);
}

/// The bytes around a tag body of `body_len` bytes: the 11-byte tag header and the 4-byte
/// PreviousTagSize that follows the body (FLV spec E.3, E.4.1).
pub fn tag_framing(type_id: u8, timestamp: u32, body_len: usize) -> ([u8; 11], [u8; 4]) {
    let len = body_len as u32;
    let mut header = [0u8; TAG_HEADER_LEN];
    header[0] = type_id;
    header[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
    header[4..7].copy_from_slice(&timestamp.to_be_bytes()[1..]);
    header[7] = (timestamp >> 24) as u8;
    // Bytes 8..11: stream id, always 0.
    (header, (len + TAG_HEADER_LEN as u32).to_be_bytes())
}

/// Offset of the first tag in an FLV file (header length field, plus PreviousTagSize0), or
/// `None` when `data` is not an FLV file.
pub fn first_tag_offset(data: &[u8]) -> Option<usize> {
    if data.get(..3)? != b"FLV" {
        return None;
    }
    let h = data.get(5..9)?;
    let header_len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    Some(header_len.max(9) + BACK_POINTER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_walk_with_extended_timestamps() {
        let mut data = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        write_tag(&mut data, 18, 0, b"meta");
        write_tag(&mut data, 9, 0x0100_0002, &[0x17, 0]);
        let start = first_tag_offset(&data).unwrap();
        let found: Vec<Tag> = tags(&data, start).collect();
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].type_id, found[0].timestamp), (18, 0));
        assert_eq!(&data[found[0].body.clone()], b"meta");
        assert_eq!((found[1].type_id, found[1].timestamp), (9, 0x0100_0002));
        // The tag bytes are exact: 11-byte header, body, PreviousTagSize = 11 + 2.
        assert_eq!(&data[data.len() - 4..], &[0, 0, 0, 13]);
    }

    #[test]
    fn truncation_stops_the_walk() {
        let mut data = Vec::new();
        write_tag(&mut data, 8, 5, &[0xaf, 1, 2]);
        write_tag(&mut data, 8, 6, &[0xaf, 1, 2]);
        // A tag counts once its body is complete (its PreviousTagSize may still be missing).
        let second_body_end = data.len() - BACK_POINTER_LEN;
        for cut in 0..second_body_end {
            let n = tags(&data[..cut], 0).count();
            assert!(n <= 1, "cut {cut}");
        }
        assert_eq!(tags(&data, 0).count(), 2);
        assert!(first_tag_offset(b"FL").is_none());
        assert!(first_tag_offset(b"XYZ\x01\x05\0\0\0\x09").is_none());
    }
}

/// Round trip on generated tags: `write_tag` after a file header, then `tags` walks them back.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn write_then_walk(
            written in vec((0u8..32, any::<u32>(), vec(any::<u8>(), 0..600)), 0..8),
            audio in any::<bool>(),
            video in any::<bool>(),
        ) {
            let mut data = file_header(audio, video).to_vec();
            for (type_id, timestamp, body) in &written {
                write_tag(&mut data, *type_id, *timestamp, body);
            }
            let start = first_tag_offset(&data).unwrap();
            let walked: Vec<_> = tags(&data, start)
                .map(|t| (t.type_id, t.timestamp, data[t.body].to_vec()))
                .collect();
            prop_assert_eq!(walked, written);
        }
    }
}
