//! Codec-level facts about FLV tag bodies (= RTMP audio/video/data message payloads), sans-IO.
//!
//! The hub needs three answers about every message: is it a sequence header (decoder
//! configuration to cache and replay), is it a point where a player may start (a video
//! keyframe), and is a data message the stream's metadata. Legacy FLV tags and Enhanced RTMP
//! (veovera E-RTMP v1/v2 `ExVideoTagHeader` / `ExAudioTagHeader`) are both recognised.

pub mod aac;
pub mod avc;
pub mod ertmp;
pub mod flv;
pub mod hevc;
pub mod mpa;
pub mod ts;

pub use avc::MediaError;
pub use ertmp::Codec;

use bytes::Bytes;

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// Script data (AMF0), e.g. `onMetaData`.
    Data,
}

/// FLV `CodecID` of legacy AVC (H.264) video.
pub const CODEC_AVC: u8 = 7;
/// Legacy "codec id 12" HEVC, sent by older OBS forks and CDNs.
pub const CODEC_HEVC_LEGACY: u8 = 12;
/// FLV `SoundFormat` of AAC.
pub const SOUND_AAC: u8 = 10;
/// FLV `SoundFormat` 9 marks an Enhanced RTMP `ExAudioTagHeader`.
pub const SOUND_EX_HEADER: u8 = 9;

/// Facts about a video tag body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VideoInfo {
    /// A keyframe (random access point) carrying picture data, of the default track.
    pub keyframe: bool,
    /// Decoder configuration (AVC/HEVC sequence header, E-RTMP SequenceStart or
    /// MPEG2TSSequenceStart) or E-RTMP video Metadata: cached for late joiners.
    pub sequence_header: bool,
}

/// Classify a video tag body (legacy FLV or E-RTMP, see [`ertmp`]). Empty or unknown bodies
/// are neither keyframes nor headers; a legacy tag too short for its header is still a
/// keyframe by its frame type (a player may start there; the decoder will tell).
pub fn video_info(body: &[u8]) -> VideoInfo {
    match ertmp::parse_video(body) {
        Ok(tag) => VideoInfo {
            // Only the default track (0) starts a GOP: a late joiner starting on another
            // track's keyframe would get undecodable pictures on track 0.
            keyframe: tag.is_keyframe() && tag.track == 0,
            // E-RTMP video Metadata (`colorInfo`) is cached and replayed like configuration.
            sequence_header: tag.is_sequence_header() || tag.packet == ertmp::VideoPacket::Metadata,
        },
        // A legacy header cut short: judge by the bytes there are, as players do.
        Err(_) => {
            let b0 = body.first().copied().unwrap_or(0);
            let key = b0 & 0x80 == 0 && b0 >> 4 == 1;
            let codec = b0 & 0x0f;
            let avc_like = codec == CODEC_AVC || codec == CODEC_HEVC_LEGACY;
            let packet_type = body.get(1).copied();
            VideoInfo {
                keyframe: key && !(avc_like && matches!(packet_type, Some(0 | 2))),
                sequence_header: key && avc_like && packet_type == Some(0),
            }
        }
    }
}

/// Whether an audio tag body is decoder configuration (AAC AudioSpecificConfig, or an E-RTMP
/// audio SequenceStart or MultichannelConfig).
pub fn audio_is_sequence_header(body: &[u8]) -> bool {
    ertmp::parse_audio(body).is_ok_and(|t| t.is_sequence_header())
}

/// The codec of a video or audio tag body, when its header says (command frames and
/// multitrack tracks other than track 0 do not speak for the stream).
pub fn codec_of(kind: MediaKind, body: &[u8]) -> Option<Codec> {
    match kind {
        MediaKind::Video => ertmp::parse_video(body)
            .ok()
            .filter(|t| t.packet != ertmp::VideoPacket::Command && t.track == 0)
            .map(|t| t.codec),
        MediaKind::Audio => ertmp::parse_audio(body)
            .ok()
            .filter(|t| t.track == 0)
            .map(|t| t.codec),
        MediaKind::Data => None,
    }
}

/// Which cached header a header message replaces: one slot per (kind, packet type, track),
/// so an E-RTMP Opus `MultichannelConfig` does not evict its `SequenceStart`, nor a second
/// multitrack track the first one's. Legacy and E-RTMP sequence headers share a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSlot {
    pub kind: MediaKind,
    /// 0 for sequence headers and metadata, else the E-RTMP packet type.
    pub packet: u8,
    pub track: u8,
}

/// The header slot of a header message (see [`HeaderSlot`]).
pub fn header_slot(kind: MediaKind, body: &[u8]) -> HeaderSlot {
    let (packet, track) = match kind {
        MediaKind::Video => match ertmp::parse_video(body) {
            Ok(t) => (
                match t.packet {
                    ertmp::VideoPacket::Mpeg2TsSequenceStart => 5,
                    ertmp::VideoPacket::Metadata => 4,
                    _ => 0,
                },
                t.track,
            ),
            Err(_) => (0, 0),
        },
        MediaKind::Audio => match ertmp::parse_audio(body) {
            Ok(t) => (
                u8::from(t.packet == ertmp::AudioPacket::MultichannelConfig) * 4,
                t.track,
            ),
            Err(_) => (0, 0),
        },
        MediaKind::Data => (0, 0),
    };
    HeaderSlot {
        kind,
        packet,
        track,
    }
}

/// AMF0 encoding of the string `@setDataFrame` (marker 0x02, u16 length 13).
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";
/// AMF0 encoding of the string `onMetaData`.
const ON_META_DATA: &[u8] = b"\x02\x00\x0aonMetaData";

/// Strip a leading `@setDataFrame` from a data message: publishers wrap metadata in it
/// (`@setDataFrame`, `onMetaData`, {...}); players must receive `onMetaData`, {...}.
pub fn strip_set_data_frame(body: &Bytes) -> Bytes {
    if body.starts_with(SET_DATA_FRAME) {
        body.slice(SET_DATA_FRAME.len()..)
    } else {
        body.clone()
    }
}

/// Whether a (stripped) data message is the stream's `onMetaData`, as opposed to cue points,
/// text data and the like, which are forwarded but not cached.
pub fn is_metadata(body: &[u8]) -> bool {
    body.starts_with(ON_META_DATA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_tags() {
        assert_eq!(
            video_info(&[0x17, 0x00, 0, 0, 0]),
            VideoInfo {
                keyframe: false,
                sequence_header: true
            }
        );
        assert_eq!(
            video_info(&[0x17, 0x01, 0, 0, 0]),
            VideoInfo {
                keyframe: true,
                sequence_header: false
            }
        );
        assert_eq!(video_info(&[0x27, 0x01, 0, 0, 0]), VideoInfo::default());
        // End of sequence is not a keyframe.
        assert_eq!(video_info(&[0x17, 0x02, 0, 0, 0]), VideoInfo::default());
        assert_eq!(video_info(&[]), VideoInfo::default());
        // A truncated AVC keyframe tag is still a keyframe by its frame type.
        assert!(video_info(&[0x17]).keyframe);
    }

    #[test]
    fn legacy_hevc_and_enhanced_tags() {
        assert!(video_info(&[0x1c, 0x00]).sequence_header);
        assert!(video_info(&[0x1c, 0x01]).keyframe);
        // E-RTMP: 0x90 = ExHeader | key frame | SequenceStart, FourCC follows.
        let seq = video_info(b"\x90hvc1");
        assert!(seq.sequence_header && !seq.keyframe);
        // 0x91 = key frame CodedFrames; 0xA3 = inter frame CodedFramesX.
        assert!(video_info(b"\x91av01").keyframe);
        assert_eq!(video_info(b"\xa3vp09"), VideoInfo::default());
    }

    #[test]
    fn only_the_default_track_starts_a_gop() {
        // Multitrack OneTrack key frames: track 0 is a start point, track 1 is not.
        assert!(video_info(b"\x96\x01av01\x00\x12\x00").keyframe);
        assert!(!video_info(b"\x96\x01av01\x01\x12\x00").keyframe);
        // A multitrack sequence header of any track is a header.
        assert!(video_info(b"\x96\x00av01\x01\x81").sequence_header);
    }

    #[test]
    fn audio_headers() {
        assert!(audio_is_sequence_header(&[0xaf, 0x00, 0x12, 0x10]));
        assert!(!audio_is_sequence_header(&[0xaf, 0x01, 0x21]));
        assert!(!audio_is_sequence_header(&[0x2f, 0x00])); // MP3 has no header
        assert!(audio_is_sequence_header(b"\x90Opus"));
        assert!(!audio_is_sequence_header(b"\x91Opus"));
        assert!(!audio_is_sequence_header(&[0xaf]));
    }

    #[test]
    fn metadata_is_stripped_and_recognised() {
        let mut v = SET_DATA_FRAME.to_vec();
        v.extend_from_slice(ON_META_DATA);
        v.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 9]);
        let stripped = strip_set_data_frame(&Bytes::from(v));
        assert!(stripped.starts_with(ON_META_DATA));
        assert!(is_metadata(&stripped));
        let cue = Bytes::from_static(b"\x02\x00\x0aonCuePoint");
        assert_eq!(strip_set_data_frame(&cue), cue);
        assert!(!is_metadata(&cue));
    }
}
