//! Reading FLV files (the shared test recording, ffmpeg recordings) into RTMP media messages.

use std::path::Path;

use shardcast::rtmp::client::MediaKind;

/// One FLV tag: kind, timestamp in milliseconds, tag body (an RTMP message payload).
pub type FlvTag = (MediaKind, u32, Vec<u8>);

/// FLV file header (9 bytes) plus the first PreviousTagSize (4).
const FILE_HEADER_LEN: usize = 13;
/// Tag header length (FLV spec E.4.1).
const TAG_HEADER_LEN: usize = 11;

/// The audio, video and script tags of an FLV file. Panics if it cannot be read.
pub fn read_flv_tags(path: &Path) -> Vec<FlvTag> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_flv(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses FLV bytes (Adobe FLV spec E.2-E.4); a truncated last tag is an error.
pub fn parse_flv(data: &[u8]) -> Result<Vec<FlvTag>, String> {
    if data.get(..3) != Some(b"FLV") {
        return Err("not an FLV file".to_owned());
    }
    let header_len = data
        .get(5..9)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("truncated FLV header")?;
    let mut pos = header_len.max(9) + FILE_HEADER_LEN - 9;
    let mut tags = Vec::new();
    while pos < data.len() {
        let header = data
            .get(pos..pos + TAG_HEADER_LEN)
            .ok_or_else(|| format!("truncated tag header at {pos}"))?;
        let len = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let timestamp = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
        let start = pos + TAG_HEADER_LEN;
        let body = data
            .get(start..start + len)
            .ok_or_else(|| format!("truncated tag body at {pos}"))?;
        let kind = match header[0] & 0x1f {
            8 => Some(MediaKind::Audio),
            9 => Some(MediaKind::Video),
            18 => Some(MediaKind::Data),
            _ => None,
        };
        if let Some(kind) = kind {
            tags.push((kind, timestamp, body.to_vec()));
        }
        pos = start + len + 4;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(type_id: u8, timestamp: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![type_id];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&timestamp.to_be_bytes()[1..]);
        out.push((timestamp >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(body);
        out.extend_from_slice(&(body.len() as u32 + 11).to_be_bytes());
        out
    }

    #[test]
    fn parses_tags_with_extended_timestamps() {
        let mut data = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        data.extend(tag(18, 0, b"meta"));
        data.extend(tag(9, 0x0100_0002, &[0x17, 0]));
        data.extend(tag(7, 5, b"?"));
        data.extend(tag(8, 23, &[0xaf, 1]));
        let tags = parse_flv(&data).unwrap();
        assert_eq!(
            tags,
            [
                (MediaKind::Data, 0, b"meta".to_vec()),
                (MediaKind::Video, 0x0100_0002, vec![0x17, 0]),
                (MediaKind::Audio, 23, vec![0xaf, 1])
            ]
        );
        assert!(parse_flv(&data[..data.len() - 6]).is_err());
        assert!(parse_flv(b"FLX").is_err());
    }
}
