//! Reading FLV files (the shared test recording, ffmpeg recordings) into RTMP media messages.

use std::path::Path;

use shardcast::media::flv;
use shardcast::rtmp::client::MediaKind;

/// One FLV tag: kind, timestamp in milliseconds, tag body (an RTMP message payload).
pub type FlvTag = (MediaKind, u32, Vec<u8>);

/// The audio, video and script tags of an FLV file. Panics if it cannot be read.
pub fn read_flv_tags(path: &Path) -> Vec<FlvTag> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_flv(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses FLV bytes (Adobe FLV spec E.2-E.4); a truncated last tag is an error.
pub fn parse_flv(data: &[u8]) -> Result<Vec<FlvTag>, String> {
    let start = flv::first_tag_offset(data).ok_or("not an FLV file")?;
    let mut tags = Vec::new();
    let mut end = start;
    for tag in flv::tags(data, start) {
        end = tag.body.end + flv::BACK_POINTER_LEN;
        let kind = match tag.type_id {
            8 => MediaKind::Audio,
            9 => MediaKind::Video,
            18 => MediaKind::Data,
            _ => continue,
        };
        tags.push((kind, tag.timestamp, data[tag.body].to_vec()));
    }
    if end < data.len() {
        return Err(format!("truncated tag at {end}"));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(type_id: u8, timestamp: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flv::write_tag(&mut out, type_id, timestamp, body);
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
