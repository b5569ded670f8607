//! FLV audio/video tag headers, legacy and Enhanced RTMP (veovera enhanced-rtmp v1 and v2),
//! parsed into one view, sans-IO.
//!
//! Legacy video: `FrameType(4) CodecID(4)`, then for AVC (7) and legacy HEVC (12, sent by
//! older OBS forks and Chinese CDNs) `AVCPacketType(8) CompositionTime(SI24)`.
//! Enhanced video (`IsExHeader` = top bit of the first byte): `1 FrameType(3) PacketType(4)`,
//! then any number of `ModEx` blocks, then either a `VideoCommand` byte (FrameType 5 =
//! command frame, unless PacketType is Metadata), a multitrack header, or a `FourCC`; HEVC
//! and AVC `CodedFrames` carry an SI24 composition time, `CodedFramesX` does not.
//!
//! Legacy audio: `SoundFormat(4) Rate(2) Size(1) Type(1)`, then for AAC `AACPacketType`.
//! Enhanced audio: `SoundFormat` 9, `AudioPacketType(4)`, `ModEx` blocks, then a multitrack
//! header or a `FourCC`.
//!
//! Nothing here copies: every view borrows the tag body. Hostile input gives an error, never
//! a panic.

use super::avc::MediaError;

/// A codec, as far as a server needs to know one: its name in stats, and whether MPEG-TS
/// (HLS) can carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    Hevc,
    Av1,
    Vp9,
    Vp8,
    /// Legacy FLV video codec ids 2-6 (Sorenson H.263, screen video, On2 VP6).
    LegacyVideo(u8),
    Aac,
    Mp3,
    Opus,
    Flac,
    Ac3,
    Eac3,
    /// Legacy FLV sound formats other than AAC and MP3 (PCM, ADPCM, Nellymoser, G.711, Speex).
    LegacyAudio(u8),
    /// An E-RTMP FourCC this server does not know (passed through all the same).
    Unknown([u8; 4]),
}

impl Codec {
    /// The codec of an E-RTMP FourCC (`hvc1`, `av01`, `vp09`, `avc1`, `vp08`, `Opus`, `fLaC`,
    /// `ac-3`, `ec-3`, `mp4a`, `.mp3`).
    pub fn from_fourcc(cc: [u8; 4]) -> Codec {
        match &cc {
            b"avc1" => Codec::H264,
            b"hvc1" => Codec::Hevc,
            b"av01" => Codec::Av1,
            b"vp09" => Codec::Vp9,
            b"vp08" => Codec::Vp8,
            b"Opus" => Codec::Opus,
            b"fLaC" => Codec::Flac,
            b"ac-3" => Codec::Ac3,
            b"ec-3" => Codec::Eac3,
            b"mp4a" => Codec::Aac,
            b".mp3" => Codec::Mp3,
            _ => Codec::Unknown(cc),
        }
    }

    /// The codec of a legacy FLV video `CodecID`.
    pub fn from_video_codec_id(id: u8) -> Codec {
        match id {
            7 => Codec::H264,
            12 => Codec::Hevc,
            other => Codec::LegacyVideo(other),
        }
    }

    /// The codec of a legacy FLV `SoundFormat`.
    pub fn from_sound_format(format: u8) -> Codec {
        match format {
            10 => Codec::Aac,
            2 | 14 => Codec::Mp3,
            other => Codec::LegacyAudio(other),
        }
    }

    /// The name shown in stats and metrics (FFmpeg's codec names where one exists).
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Hevc => "hevc",
            Codec::Av1 => "av1",
            Codec::Vp9 => "vp9",
            Codec::Vp8 => "vp8",
            Codec::LegacyVideo(2) => "flv1",
            Codec::LegacyVideo(3) => "flashsv",
            Codec::LegacyVideo(4) => "vp6f",
            Codec::LegacyVideo(5) => "vp6a",
            Codec::LegacyVideo(6) => "flashsv2",
            Codec::LegacyVideo(_) => "unknown",
            Codec::Aac => "aac",
            Codec::Mp3 => "mp3",
            Codec::Opus => "opus",
            Codec::Flac => "flac",
            Codec::Ac3 => "ac3",
            Codec::Eac3 => "eac3",
            Codec::LegacyAudio(0 | 3) => "pcm",
            Codec::LegacyAudio(1) => "adpcm",
            Codec::LegacyAudio(4..=6) => "nellymoser",
            Codec::LegacyAudio(7) => "pcm_alaw",
            Codec::LegacyAudio(8) => "pcm_mulaw",
            Codec::LegacyAudio(11) => "speex",
            Codec::LegacyAudio(_) | Codec::Unknown(_) => "unknown",
        }
    }

    /// Whether shardcast's HLS (MPEG-TS) output carries this codec.
    pub fn over_hls(self) -> bool {
        matches!(
            self,
            Codec::H264 | Codec::Hevc | Codec::Aac | Codec::Mp3 | Codec::Ac3 | Codec::Eac3
        )
    }
}

/// E-RTMP `VideoFrameType` 5: a command frame (no picture).
pub const FRAME_COMMAND: u8 = 5;

/// What a video tag carries (legacy `AVCPacketType` mapped onto E-RTMP `VideoPacketType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacket {
    /// Decoder configuration record (AVCC, HVCC, av1C, vpcC).
    SequenceStart,
    /// Coded frames (`CodedFrames`, and `CodedFramesX` whose composition time is 0).
    CodedFrames,
    SequenceEnd,
    /// AMF-encoded metadata such as `colorInfo`.
    Metadata,
    /// AV1 `MPEG2TSSequenceStart` (an av1 video descriptor).
    Mpeg2TsSequenceStart,
    /// A command frame (`VideoCommand` byte): no picture.
    Command,
    /// A packet type this version does not know.
    Unknown(u8),
}

/// What an audio tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPacket {
    /// Decoder configuration (AAC AudioSpecificConfig, OpusHead, FLAC STREAMINFO, ...).
    SequenceStart,
    CodedFrames,
    SequenceEnd,
    /// Channel order and count (E-RTMP v2).
    MultichannelConfig,
    Unknown(u8),
}

/// One video tag body, legacy or enhanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTag<'a> {
    pub codec: Codec,
    /// `FrameType`: 1 key, 2 inter, 3 disposable, 4 generated key, 5 command/info.
    pub frame_type: u8,
    pub packet: VideoPacket,
    /// PTS - DTS in milliseconds (signed 24 bits); 0 where the header has none.
    pub composition_ms: i32,
    /// The E-RTMP track id (0 outside multitrack packets; the first track of a multitrack one).
    pub track: u8,
    /// A multitrack packet (its data is the first track's).
    pub multitrack: bool,
    /// An E-RTMP header (as opposed to a legacy FLV one).
    pub enhanced: bool,
    /// The bytes after the header.
    pub data: &'a [u8],
}

impl VideoTag<'_> {
    /// A picture a decoder may start from (a key frame with coded data).
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == 1 && self.packet == VideoPacket::CodedFrames
    }

    /// Decoder configuration to cache and replay to late joiners.
    pub fn is_sequence_header(&self) -> bool {
        matches!(
            self.packet,
            VideoPacket::SequenceStart | VideoPacket::Mpeg2TsSequenceStart
        )
    }
}

/// One audio tag body, legacy or enhanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTag<'a> {
    pub codec: Codec,
    pub packet: AudioPacket,
    /// The E-RTMP track id (0 outside multitrack packets).
    pub track: u8,
    pub multitrack: bool,
    pub enhanced: bool,
    pub data: &'a [u8],
}

impl AudioTag<'_> {
    /// Configuration to cache and replay to late joiners.
    pub fn is_sequence_header(&self) -> bool {
        matches!(
            self.packet,
            AudioPacket::SequenceStart | AudioPacket::MultichannelConfig
        )
    }
}

/// Video `PacketType` values (E-RTMP v1/v2).
mod vpt {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const CODED_FRAMES_X: u8 = 3;
    pub const METADATA: u8 = 4;
    pub const MPEG2TS_SEQUENCE_START: u8 = 5;
    pub const MULTITRACK: u8 = 6;
    pub const MOD_EX: u8 = 7;
}

/// Audio `AudioPacketType` values (E-RTMP v2).
mod apt {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const MULTICHANNEL_CONFIG: u8 = 4;
    pub const MULTITRACK: u8 = 5;
    pub const MOD_EX: u8 = 7;
}

/// `AvMultitrackType` 0, one track (1 and 2, several tracks of one or several codecs, carry
/// a size per track).
const MULTITRACK_ONE_TRACK: u8 = 0;

/// Parse a video tag body.
pub fn parse_video(body: &[u8]) -> Result<VideoTag<'_>, MediaError> {
    let mut r = Cursor(body);
    let b0 = r.u8("video tag header")?;
    if b0 & 0x80 == 0 {
        return parse_legacy_video(b0, r.0);
    }
    let frame_type = (b0 >> 4) & 0x07;
    let mut packet_type = b0 & 0x0f;
    while packet_type == vpt::MOD_EX {
        packet_type = skip_mod_ex(&mut r, "video ModEx")?;
    }
    let mut tag = VideoTag {
        codec: Codec::Unknown(*b"\0\0\0\0"),
        frame_type,
        packet: VideoPacket::Unknown(packet_type),
        composition_ms: 0,
        track: 0,
        multitrack: false,
        enhanced: true,
        data: &[],
    };
    if frame_type == FRAME_COMMAND && packet_type != vpt::METADATA {
        r.u8("video command")?;
        tag.packet = VideoPacket::Command;
        tag.data = r.0;
        return Ok(tag);
    }
    if packet_type == vpt::MULTITRACK {
        let b = r.u8("video multitrack header")?;
        let (kind, inner) = (b >> 4, b & 0x0f);
        packet_type = inner;
        tag.multitrack = true;
        let (codec, track, data) = first_track(&mut r, kind, "video multitrack")?;
        tag.codec = codec;
        tag.track = track;
        r = Cursor(data);
    } else {
        tag.codec = Codec::from_fourcc(r.fourcc("video FourCC")?);
    }
    tag.packet = match packet_type {
        vpt::SEQUENCE_START => VideoPacket::SequenceStart,
        vpt::CODED_FRAMES => {
            if matches!(tag.codec, Codec::Hevc | Codec::H264) {
                tag.composition_ms = r.si24("composition time")?;
            }
            VideoPacket::CodedFrames
        }
        vpt::CODED_FRAMES_X => VideoPacket::CodedFrames,
        vpt::SEQUENCE_END => VideoPacket::SequenceEnd,
        vpt::METADATA => VideoPacket::Metadata,
        vpt::MPEG2TS_SEQUENCE_START => VideoPacket::Mpeg2TsSequenceStart,
        other => VideoPacket::Unknown(other),
    };
    tag.data = r.0;
    Ok(tag)
}

fn parse_legacy_video(b0: u8, rest: &[u8]) -> Result<VideoTag<'_>, MediaError> {
    let id = b0 & 0x0f;
    let codec = Codec::from_video_codec_id(id);
    let mut tag = VideoTag {
        codec,
        frame_type: b0 >> 4,
        packet: VideoPacket::CodedFrames,
        composition_ms: 0,
        track: 0,
        multitrack: false,
        enhanced: false,
        data: rest,
    };
    if tag.frame_type == FRAME_COMMAND {
        tag.packet = VideoPacket::Command;
        return Ok(tag);
    }
    if !matches!(codec, Codec::H264 | Codec::Hevc) {
        return Ok(tag);
    }
    let mut r = Cursor(rest);
    let packet_type = r.u8("AVC packet type")?;
    tag.composition_ms = r.si24("composition time")?;
    tag.packet = match packet_type {
        0 => VideoPacket::SequenceStart,
        1 => VideoPacket::CodedFrames,
        2 => VideoPacket::SequenceEnd,
        other => VideoPacket::Unknown(other),
    };
    tag.data = r.0;
    Ok(tag)
}

/// Parse an audio tag body.
pub fn parse_audio(body: &[u8]) -> Result<AudioTag<'_>, MediaError> {
    let mut r = Cursor(body);
    let b0 = r.u8("audio tag header")?;
    let format = b0 >> 4;
    if format != super::SOUND_EX_HEADER {
        let codec = Codec::from_sound_format(format);
        let mut tag = AudioTag {
            codec,
            packet: AudioPacket::CodedFrames,
            track: 0,
            multitrack: false,
            enhanced: false,
            data: r.0,
        };
        if codec == Codec::Aac {
            tag.packet = match r.u8("AAC packet type")? {
                0 => AudioPacket::SequenceStart,
                1 => AudioPacket::CodedFrames,
                other => AudioPacket::Unknown(other),
            };
            tag.data = r.0;
        }
        return Ok(tag);
    }
    let mut packet_type = b0 & 0x0f;
    while packet_type == apt::MOD_EX {
        packet_type = skip_mod_ex(&mut r, "audio ModEx")?;
    }
    let mut tag = AudioTag {
        codec: Codec::Unknown(*b"\0\0\0\0"),
        packet: AudioPacket::Unknown(packet_type),
        track: 0,
        multitrack: false,
        enhanced: true,
        data: &[],
    };
    if packet_type == apt::MULTITRACK {
        let b = r.u8("audio multitrack header")?;
        let (kind, inner) = (b >> 4, b & 0x0f);
        packet_type = inner;
        tag.multitrack = true;
        let (codec, track, data) = first_track(&mut r, kind, "audio multitrack")?;
        tag.codec = codec;
        tag.track = track;
        r = Cursor(data);
    } else {
        tag.codec = Codec::from_fourcc(r.fourcc("audio FourCC")?);
    }
    tag.packet = match packet_type {
        apt::SEQUENCE_START => AudioPacket::SequenceStart,
        apt::CODED_FRAMES => AudioPacket::CodedFrames,
        apt::SEQUENCE_END => AudioPacket::SequenceEnd,
        apt::MULTICHANNEL_CONFIG => AudioPacket::MultichannelConfig,
        other => AudioPacket::Unknown(other),
    };
    tag.data = r.0;
    Ok(tag)
}

/// Skip one `ModEx` block (`modExDataSize` UI8 + 1, or UI16 + 1 when the byte says 256;
/// the data; then `ModExType(4) PacketType(4)`); returns the next packet type.
fn skip_mod_ex(r: &mut Cursor<'_>, what: &'static str) -> Result<u8, MediaError> {
    let mut size = usize::from(r.u8(what)?) + 1;
    if size == 256 {
        size = usize::from(r.u16(what)?) + 1;
    }
    r.take(size, what)?;
    Ok(r.u8(what)? & 0x0f)
}

/// The first track of a multitrack packet: its codec, track id and data (up to its
/// `sizeOfTrack` when the packet holds several tracks).
fn first_track<'a>(
    r: &mut Cursor<'a>,
    kind: u8,
    what: &'static str,
) -> Result<(Codec, u8, &'a [u8]), MediaError> {
    // The FourCC comes first either way: shared by every track (OneTrack, ManyTracks) or the
    // first track's own (ManyTracksManyCodecs), at the same place for the first track.
    let cc = r.fourcc(what)?;
    let track = r.u8(what)?;
    let data = if kind == MULTITRACK_ONE_TRACK {
        r.0
    } else {
        let size = r.u24(what)?;
        r.take(size, what)?
    };
    Ok((Codec::from_fourcc(cc), track, data))
}

/// Bounds-checked big-endian reader.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MediaError> {
        if n > self.0.len() {
            return Err(MediaError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, MediaError> {
        let (&b, rest) = self.0.split_first().ok_or(MediaError::Truncated(what))?;
        self.0 = rest;
        Ok(b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, MediaError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self, what: &'static str) -> Result<usize, MediaError> {
        let b = self.take(3, what)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    }

    /// A signed 24-bit value (FLV `SI24`).
    fn si24(&mut self, what: &'static str) -> Result<i32, MediaError> {
        let b = self.take(3, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8)
    }

    fn fourcc(&mut self, what: &'static str) -> Result<[u8; 4], MediaError> {
        let b = self.take(4, what)?;
        Ok([b[0], b[1], b[2], b[3]])
    }
}

/// FourCC capability bits of the E-RTMP v2 `connect` info maps (`FourCcInfoMask`).
pub mod caps {
    pub const CAN_DECODE: u32 = 0x01;
    pub const CAN_ENCODE: u32 = 0x02;
    pub const CAN_FORWARD: u32 = 0x04;
    /// `CapsExMask`: the peer may send reconnect requests.
    pub const CAPS_EX_RECONNECT: u32 = 0x01;
    /// `CapsExMask`: multitrack audio/video.
    pub const CAPS_EX_MULTITRACK: u32 = 0x02;
    /// `CapsExMask`: `ModEx` packet types can be parsed.
    pub const CAPS_EX_MOD_EX: u32 = 0x04;
    /// `CapsExMask`: nanosecond timestamp offsets (a ModEx type).
    pub const CAPS_EX_TIMESTAMP_NANO_OFFSET: u32 = 0x08;

    /// Video FourCCs shardcast forwards (to RTMP, HTTP-FLV and recordings).
    pub const VIDEO_FOURCCS: [&str; 5] = ["avc1", "hvc1", "av01", "vp09", "vp08"];
    /// Audio FourCCs shardcast forwards.
    pub const AUDIO_FOURCCS: [&str; 6] = ["mp4a", ".mp3", "Opus", "fLaC", "ac-3", "ec-3"];
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tag bodies captured from FFmpeg 9.0 (imageio-ffmpeg's static build) muxing
    // `-c:v libx265 / libsvtav1 / libvpx-vp9 -c:a aac / libopus -f flv`, truncated where
    // marked ("...": the rest of the body does not change the header).

    /// HEVC SequenceStart: 0x90 'hvc1' + HEVCDecoderConfigurationRecord (first 20 bytes).
    const HEVC_SEQ: &str = "90687663310101600000009000000000003cf000fcfdf8f8";
    /// HEVC key frame, CodedFrames with composition time 0x000043 = 67 ms (first 16 bytes).
    const HEVC_KEY: &str = "91687663310000430000129d2801ac21";
    /// HEVC inter frame, CodedFrames, composition time 0xa6 = 166 ms.
    const HEVC_INTER: &str = "a1687663310000a6000009040201d021";
    /// HEVC inter frame, CodedFramesX (no composition time).
    const HEVC_INTER_X: &str = "a368766331000001de0001e024fd7a24";
    /// Video Metadata (`colorInfo` AMF), FrameType 5 (info frame).
    const VIDEO_META: &str = "d468766331020009636f6c6f72496e666f03000b636f6c6f72";
    /// AV1 SequenceStart: 'av01' + av1C (0x81 = marker, version 1).
    const AV1_SEQ: &str = "906176303181000c000a0b0200000521e7fde017c002";
    /// AV1 key frame (CodedFrames, no composition time for AV1).
    const AV1_KEY: &str = "916176303112000a0b0200000521e7fde257c80232993110";
    /// AV1 inter frame.
    const AV1_INTER: &str = "a16176303112001a01e8";
    /// VP9 SequenceStart: 'vp09' + vpcC.
    const VP9_SEQ: &str = "9076703039010000000014820202020000";
    /// VP9 key frame.
    const VP9_KEY: &str = "9176703039824983420013f00ef60638";
    /// Opus SequenceStart: 'Opus' + OpusHead.
    const OPUS_SEQ: &str = "904f7075734f707573486561640101380180bb0000000000";
    /// Opus MultichannelConfig: channel order 1 (native), 1 channel, flags 4 (front center).
    const OPUS_MC: &str = "944f707573010100000004";
    /// Opus CodedFrames.
    const OPUS_FRAME: &str = "914f707573f87249472710e4c85b78";
    /// Legacy AAC sequence header (FFmpeg keeps the legacy header for AAC).
    const AAC_SEQ: &str = "af00118856e500";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ffmpeg_hevc_tags() {
        let b = hex(HEVC_SEQ);
        let t = parse_video(&b).unwrap();
        assert_eq!(
            (t.codec, t.packet, t.enhanced),
            (Codec::Hevc, VideoPacket::SequenceStart, true)
        );
        assert!(t.is_sequence_header() && !t.is_keyframe());
        assert_eq!(t.data[0], 1, "configurationVersion");
        let b = hex(HEVC_KEY);
        let t = parse_video(&b).unwrap();
        assert!(t.is_keyframe() && !t.is_sequence_header());
        assert_eq!(t.composition_ms, 67);
        assert_eq!(&t.data[..4], &[0, 0, 0x12, 0x9d], "first NAL length");
        let b = hex(HEVC_INTER);
        let t = parse_video(&b).unwrap();
        assert!(!t.is_keyframe());
        assert_eq!((t.frame_type, t.composition_ms), (2, 166));
        let b = hex(HEVC_INTER_X);
        let t = parse_video(&b).unwrap();
        assert_eq!((t.packet, t.composition_ms), (VideoPacket::CodedFrames, 0));
        assert_eq!(
            &t.data[..4],
            &[0, 0, 1, 0xde],
            "NAL length right after FourCC"
        );
        let b = hex(VIDEO_META);
        let t = parse_video(&b).unwrap();
        assert_eq!((t.frame_type, t.packet), (5, VideoPacket::Metadata));
        assert!(!t.is_keyframe() && !t.is_sequence_header());
        assert_eq!(t.data[0], 2, "AMF0 string marker of `colorInfo`");
    }

    #[test]
    fn ffmpeg_av1_vp9_tags() {
        for (seq, key, codec) in [
            (AV1_SEQ, AV1_KEY, Codec::Av1),
            (VP9_SEQ, VP9_KEY, Codec::Vp9),
        ] {
            let b = hex(seq);
            let t = parse_video(&b).unwrap();
            assert_eq!((t.codec, t.packet), (codec, VideoPacket::SequenceStart));
            let b = hex(key);
            let t = parse_video(&b).unwrap();
            assert!(t.is_keyframe(), "{codec:?}");
            assert_eq!(t.composition_ms, 0, "no composition time for {codec:?}");
        }
        let b = hex(AV1_INTER);
        let t = parse_video(&b).unwrap();
        assert!(!t.is_keyframe());
        assert_eq!(t.data, &[0x12, 0x00, 0x1a, 0x01, 0xe8]);
    }

    #[test]
    fn ffmpeg_audio_tags() {
        let b = hex(OPUS_SEQ);
        let t = parse_audio(&b).unwrap();
        assert_eq!(
            (t.codec, t.packet),
            (Codec::Opus, AudioPacket::SequenceStart)
        );
        assert!(t.data.starts_with(b"OpusHead"));
        let b = hex(OPUS_MC);
        let t = parse_audio(&b).unwrap();
        assert_eq!(t.packet, AudioPacket::MultichannelConfig);
        assert!(t.is_sequence_header());
        let b = hex(OPUS_FRAME);
        let t = parse_audio(&b).unwrap();
        assert_eq!((t.codec, t.packet), (Codec::Opus, AudioPacket::CodedFrames));
        assert!(!t.is_sequence_header());
        let b = hex(AAC_SEQ);
        let t = parse_audio(&b).unwrap();
        assert_eq!(
            (t.codec, t.packet, t.enhanced),
            (Codec::Aac, AudioPacket::SequenceStart, false)
        );
        assert_eq!(t.data, &[0x11, 0x88, 0x56, 0xe5, 0x00]);
        let t = parse_audio(&[0x2f, 0xff, 0xfb]).unwrap();
        assert_eq!((t.codec, t.packet), (Codec::Mp3, AudioPacket::CodedFrames));
    }

    #[test]
    fn legacy_video_and_codec_id_12() {
        let t = parse_video(&[0x17, 0x00, 0, 0, 0, 1, 0x64]).unwrap();
        assert_eq!(
            (t.codec, t.packet),
            (Codec::H264, VideoPacket::SequenceStart)
        );
        let t = parse_video(&[0x1c, 0x01, 0xff, 0xff, 0xfe, 9]).unwrap();
        assert_eq!((t.codec, t.composition_ms), (Codec::Hevc, -2));
        assert!(t.is_keyframe());
        assert_eq!(t.data, &[9]);
        let t = parse_video(&[0x2c, 0x00, 0, 0, 0]).unwrap();
        assert!(t.is_sequence_header(), "sequence header by packet type");
        let t = parse_video(&[0x22, 1, 2]).unwrap();
        assert_eq!(t.codec.name(), "flv1");
        assert!(parse_video(&[0x17, 0x01]).is_err());
        assert!(parse_video(&[]).is_err());
    }

    #[test]
    fn mod_ex_command_and_multitrack() {
        // ModEx (1 byte of data: size byte 0 = 1 byte), then ModExType 0 / CodedFrames.
        let mut b = vec![0x97, 0x00, 0xaa, 0x01];
        b.extend_from_slice(b"hvc1\x00\x00\x05\x00\x00\x00\x01\x26");
        let t = parse_video(&b).unwrap();
        assert!(t.is_keyframe());
        assert_eq!(t.composition_ms, 5);
        // Command frame: FrameType 5, PacketType CodedFrames, VideoCommand 0 (start seek).
        let t = parse_video(&[0xd1, 0x00]).unwrap();
        assert_eq!(t.packet, VideoPacket::Command);
        assert!(!t.is_keyframe());
        // Multitrack, OneTrack, inner SequenceStart, 'av01', track 1.
        let mut b = vec![0x96, 0x00];
        b.extend_from_slice(b"av01\x01\x81\x00");
        let t = parse_video(&b).unwrap();
        assert!(t.multitrack && t.is_sequence_header());
        assert_eq!((t.codec, t.track, t.data), (Codec::Av1, 1, &[0x81, 0][..]));
        // ManyTracks (1), CodedFrames, shared 'hvc1': track 2 of 3 bytes, then another track.
        let mut b = vec![0x96, 0x11];
        b.extend_from_slice(b"hvc1\x02\x00\x00\x03\x00\x00\x07\x03\x00\x00\x01\xff");
        let t = parse_video(&b).unwrap();
        assert!(t.is_keyframe());
        assert_eq!((t.track, t.composition_ms, t.data), (2, 7, &[][..]));
        // ManyTracksManyCodecs (2), audio: per-track FourCC.
        let mut b = vec![0x95, 0x20];
        b.extend_from_slice(b"Opus\x00\x00\x00\x02OH");
        let t = parse_audio(&b).unwrap();
        assert_eq!(
            (t.codec, t.packet, t.data),
            (Codec::Opus, AudioPacket::SequenceStart, &b"OH"[..])
        );
        // Truncations are errors, not panics.
        for cut in 0..b.len() - 2 {
            let _ = parse_audio(&b[..cut]);
        }
        assert!(parse_video(&[0x96, 0x10, b'h']).is_err());
        assert!(parse_video(&[0x97, 0xff]).is_err());
        assert!(parse_audio(&[0x97, 0x00]).is_err());
    }

    #[test]
    fn every_truncation_of_real_tags_is_handled() {
        for v in [
            HEVC_SEQ,
            HEVC_KEY,
            HEVC_INTER,
            HEVC_INTER_X,
            VIDEO_META,
            AV1_SEQ,
            AV1_KEY,
            VP9_SEQ,
        ] {
            let b = hex(v);
            for cut in 0..=b.len() {
                let _ = parse_video(&b[..cut]);
            }
        }
        for v in [OPUS_SEQ, OPUS_MC, OPUS_FRAME, AAC_SEQ] {
            let b = hex(v);
            for cut in 0..=b.len() {
                let _ = parse_audio(&b[..cut]);
            }
        }
    }

    #[test]
    fn codec_names_and_hls() {
        assert_eq!(Codec::from_fourcc(*b"hvc1").name(), "hevc");
        assert_eq!(Codec::from_fourcc(*b"ec-3").name(), "eac3");
        assert_eq!(Codec::from_fourcc(*b"zzzz").name(), "unknown");
        assert!(Codec::Hevc.over_hls() && Codec::Aac.over_hls());
        assert!(!Codec::Av1.over_hls() && !Codec::Vp9.over_hls() && !Codec::Opus.over_hls());
    }
}
