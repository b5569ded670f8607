//! An FLV file loaded into memory: its header, its tags (bodies as shared [`Bytes`]), where the
//! metadata and the sequence headers are, and how long it lasts.

use bytes::Bytes;
use shardcast::media::{self, flv};

/// FLV tag types (= RTMP message type ids).
pub const TAG_AUDIO: u8 = 8;
/// Video tag type.
pub const TAG_VIDEO: u8 = 9;
/// Script data tag type.
pub const TAG_SCRIPT: u8 = 18;

/// Frame interval used when a file has fewer than two video frames.
const DEFAULT_FRAME_INTERVAL_MS: u32 = 33;

/// One tag of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTag {
    /// 8 audio, 9 video, 18 script data.
    pub type_id: u8,
    /// Timestamp in milliseconds, as in the file.
    pub timestamp: u32,
    /// The tag body (an RTMP message payload).
    pub body: Bytes,
}

impl FileTag {
    /// An AVC coded frame (AVCPacketType 1): the tags that get a stamp.
    pub fn is_avc_frame(&self) -> bool {
        is_avc_frame(&self.body)
    }
}

/// Whether a video tag body is an AVC coded frame (codec 7, AVCPacketType 1).
pub fn is_avc_frame(body: &[u8]) -> bool {
    body.len() >= 5 && body[0] & 0x0f == media::CODEC_AVC && body[1] == 1
}

/// An FLV file in memory.
#[derive(Debug, Clone)]
pub struct FlvFile {
    /// The FLV header (13 bytes: signature, version, flags, offset, PreviousTagSize0).
    pub header: Bytes,
    /// Every tag, in file order.
    pub tags: Vec<FileTag>,
    /// Index of the first `onMetaData` tag.
    pub metadata: Option<usize>,
    /// Index of the first AVC sequence header.
    pub avc_sequence_header: Option<usize>,
    /// Index of the first AAC (audio) sequence header.
    pub aac_sequence_header: Option<usize>,
    /// Indices of the tags a replay sends in its loops: audio and video tags that are not
    /// sequence headers.
    pub media: Vec<usize>,
    /// Smallest timestamp of the media tags.
    pub first_ts: u32,
    /// Largest minus smallest timestamp of the media tags.
    pub duration_ms: u32,
    /// Median interval between consecutive video tags (33 when unknown).
    pub frame_interval_ms: u32,
    /// NAL unit length size from the AVC sequence header (lengthSizeMinusOne + 1).
    pub nal_length_size: Option<u8>,
}

impl FlvFile {
    /// Reads and parses `path`.
    pub fn load(path: &str) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
        Self::parse(Bytes::from(data)).map_err(|e| format!("{path}: {e}"))
    }

    /// Parses a whole FLV file.
    pub fn parse(data: Bytes) -> Result<Self, String> {
        let start = flv::first_tag_offset(&data).ok_or("not an FLV file")?;
        if start > data.len() {
            return Err("truncated FLV header".into());
        }
        // Keep a canonical 13-byte header: the 9-byte header with offset 9, PreviousTagSize0.
        let mut header = data[..9].to_vec();
        header[5..9].copy_from_slice(&9u32.to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, 0]);
        let mut file = FlvFile {
            header: Bytes::from(header),
            tags: Vec::new(),
            metadata: None,
            avc_sequence_header: None,
            aac_sequence_header: None,
            media: Vec::new(),
            first_ts: 0,
            duration_ms: 0,
            frame_interval_ms: DEFAULT_FRAME_INTERVAL_MS,
            nal_length_size: None,
        };
        for tag in flv::tags(&data, start) {
            let index = file.tags.len();
            let body = data.slice(tag.body);
            match tag.type_id {
                TAG_SCRIPT if file.metadata.is_none() && media::is_metadata(&body) => {
                    file.metadata = Some(index);
                }
                TAG_VIDEO => {
                    if media::video_info(&body).sequence_header {
                        if file.avc_sequence_header.is_none() {
                            file.avc_sequence_header = Some(index);
                            file.nal_length_size = nal_length_size(&body);
                        }
                    } else {
                        file.media.push(index);
                    }
                }
                TAG_AUDIO => {
                    if media::audio_is_sequence_header(&body) {
                        file.aac_sequence_header.get_or_insert(index);
                    } else {
                        file.media.push(index);
                    }
                }
                _ => {}
            }
            file.tags.push(FileTag {
                type_id: tag.type_id,
                timestamp: tag.timestamp,
                body,
            });
        }
        if file.media.is_empty() {
            return Err("no audio or video frames".into());
        }
        let timestamps = || file.media.iter().map(|&i| file.tags[i].timestamp);
        let first = timestamps().min().unwrap_or(0);
        let last = timestamps().max().unwrap_or(0);
        file.first_ts = first;
        file.duration_ms = last - first;
        let video: Vec<u32> = file
            .media
            .iter()
            .filter(|&&i| file.tags[i].type_id == TAG_VIDEO)
            .map(|&i| file.tags[i].timestamp)
            .collect();
        let mut deltas: Vec<u32> = video
            .windows(2)
            .filter_map(|w| w[1].checked_sub(w[0]))
            .filter(|d| *d > 0)
            .collect();
        deltas.sort_unstable();
        if let Some(&median) = deltas.get(deltas.len() / 2) {
            file.frame_interval_ms = median;
        }
        Ok(file)
    }

    /// Number of AVC coded frames in one loop of the file.
    pub fn video_frames(&self) -> usize {
        self.media
            .iter()
            .filter(|&&i| self.tags[i].is_avc_frame())
            .count()
    }

    /// Whether the file has video and audio tags, as the header's flags should say.
    pub fn has_tracks(&self) -> (bool, bool) {
        let has = |t| self.media.iter().any(|&i| self.tags[i].type_id == t);
        (has(TAG_AUDIO), has(TAG_VIDEO))
    }
}

/// lengthSizeMinusOne + 1 from an AVC sequence header tag body (FLV 5-byte video header, then
/// the AVCDecoderConfigurationRecord: version, profile, compatibility, level, 0b111111xx).
pub fn nal_length_size(body: &[u8]) -> Option<u8> {
    let record = body.get(5..)?;
    if record.len() < 5 || record[0] != 1 {
        return None;
    }
    Some((record[4] & 0x03) + 1)
}

#[cfg(test)]
/// A small synthetic FLV file: metadata, AVC and AAC headers, then `frames` video frames
/// 33 ms apart (keyframe every 30), each followed by an audio frame 10 ms later.
pub(crate) fn synth_file(frames: u32) -> Bytes {
    let mut out = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
    flv::write_tag(
        &mut out,
        TAG_SCRIPT,
        0,
        b"\x02\x00\x0aonMetaData\x08\0\0\0\0\0\0\x09",
    );
    let avcc = [0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0];
    flv::write_tag(&mut out, TAG_VIDEO, 0, &avcc);
    flv::write_tag(&mut out, TAG_AUDIO, 0, &[0xaf, 0, 0x12, 0x10]);
    for i in 0..frames {
        let key = if i % 30 == 0 { 0x17 } else { 0x27 };
        let body = [key, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88];
        flv::write_tag(&mut out, TAG_VIDEO, i * 33, &body);
        flv::write_tag(&mut out, TAG_AUDIO, i * 33 + 10, &[0xaf, 1, 0x21]);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_and_duration() {
        let f = FlvFile::parse(synth_file(60)).unwrap();
        assert_eq!(f.tags.len(), 3 + 120);
        assert_eq!(f.metadata, Some(0));
        assert_eq!(f.avc_sequence_header, Some(1));
        assert_eq!(f.aac_sequence_header, Some(2));
        assert_eq!(f.nal_length_size, Some(4));
        assert_eq!(f.media.len(), 120);
        assert_eq!(f.first_ts, 0);
        assert_eq!(f.duration_ms, 59 * 33 + 10);
        assert_eq!(f.frame_interval_ms, 33);
        assert_eq!(f.video_frames(), 60);
        assert_eq!(f.has_tracks(), (true, true));
        assert_eq!(f.header.len(), 13);
        assert!(FlvFile::parse(Bytes::from_static(b"nope")).is_err());
    }
}
