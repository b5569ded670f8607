//! H.264 in FLV: the video tag header, the AVCDecoderConfigurationRecord (ISO/IEC 14496-15
//! 5.2.4.1) and the AVCC (length-prefixed) to Annex-B (start-code) conversion MPEG-TS needs
//! (ITU-T H.264 Annex B; ISO/IEC 13818-1 2.14 requires an access unit delimiter per AU).
//!
//! Also home of [`MediaError`], the error of every codec parser in `media`.

use std::fmt;

/// Why a codec payload could not be parsed or converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaError {
    /// The payload ends before the named structure does.
    Truncated(&'static str),
    /// The named field holds a value the specification forbids.
    Invalid(&'static str),
    /// Well-formed, but not something this server can mux.
    Unsupported(&'static str),
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::Truncated(what) => write!(f, "truncated {what}"),
            MediaError::Invalid(what) => write!(f, "invalid {what}"),
            MediaError::Unsupported(what) => write!(f, "unsupported {what}"),
        }
    }
}

impl std::error::Error for MediaError {}

/// `AVCPacketType` of a sequence header (AVCDecoderConfigurationRecord).
pub const AVC_SEQUENCE_HEADER: u8 = 0;
/// `AVCPacketType` of coded frames (AVCC NAL units); also reported for codecs without the field.
pub const AVC_NALU: u8 = 1;
/// `AVCPacketType` of end of sequence.
pub const AVC_END_OF_SEQUENCE: u8 = 2;

/// NAL unit types (H.264 table 7-1) this module acts on.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// Annex-B start code used for every NAL unit.
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// Access unit delimiter NAL: type 9, primary_pic_type 7 (any slice type), trailing bits.
const AUD: [u8; 2] = [0x09, 0xF0];

/// Decoder configuration from an AVC sequence header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AvcConfig {
    /// Size of the big-endian NAL length prefix in samples (1 to 4 bytes).
    pub nal_length_size: u8,
    /// Every sequence parameter set, in record order.
    pub sps: Vec<Vec<u8>>,
    /// Every picture parameter set, in record order.
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    /// Parse an AVCDecoderConfigurationRecord (the body of an AVC sequence header after the
    /// 5-byte video tag header). All SPS and PPS are kept; empty ones are skipped; bytes after
    /// the PPS (the High-profile chroma/bit-depth extension) are ignored.
    pub fn parse(record: &[u8]) -> Result<Self, MediaError> {
        let mut r = Reader(record);
        // configurationVersion, AVCProfileIndication, profile_compatibility, AVCLevelIndication.
        r.take(4, "AVC decoder configuration")?;
        // lengthSizeMinusOne is 0, 1 or 3 in the spec; 2 (3-byte lengths) decodes unambiguously
        // and is accepted too.
        let nal_length_size = (r.u8("AVC decoder configuration")? & 0x03) + 1;
        let sps_count = r.u8("AVC SPS count")? & 0x1f;
        let sps = read_parameter_sets(&mut r, sps_count, "AVC SPS")?;
        let pps_count = r.u8("AVC PPS count")?;
        let pps = read_parameter_sets(&mut r, pps_count, "AVC PPS")?;
        Ok(AvcConfig {
            nal_length_size,
            sps,
            pps,
        })
    }
}

/// Read `count` parameter sets, each with a 16-bit length prefix.
fn read_parameter_sets(
    r: &mut Reader<'_>,
    count: u8,
    what: &'static str,
) -> Result<Vec<Vec<u8>>, MediaError> {
    let mut sets = Vec::new();
    for _ in 0..count {
        let len = r.u16(what)?;
        let set = r.take(usize::from(len), what)?;
        if !set.is_empty() {
            sets.push(set.to_vec());
        }
    }
    Ok(sets)
}

/// Convert one AVCC sample (NAL units with `cfg.nal_length_size`-byte length prefixes) to an
/// Annex-B access unit appended to `out`: an AUD first (in-band AUDs dropped), every other NAL
/// unit kept with a 4-byte start code, and before the first IDR slice the configuration's SPS
/// (resp. PPS) unless the sample carries its own, so every IDR is decodable on its own.
/// On error `out` is left as it was.
pub fn to_annex_b(sample: &[u8], cfg: &AvcConfig, out: &mut Vec<u8>) -> Result<(), MediaError> {
    let size = usize::from(cfg.nal_length_size);
    if !(1..=4).contains(&size) {
        return Err(MediaError::Invalid("AVC NAL length size"));
    }
    // Validate every length before writing anything.
    let (mut has_sps, mut has_pps, mut payload) = (false, false, 0usize);
    for nal in nal_units(sample, size) {
        let nal = nal?;
        match nal_type(nal) {
            NAL_SPS => has_sps = true,
            NAL_PPS => has_pps = true,
            _ => {}
        }
        payload = payload.saturating_add(nal.len() + START_CODE.len());
    }
    out.reserve(payload.saturating_add(START_CODE.len() + AUD.len()));
    write_nal(out, &AUD);
    let mut inserted = false;
    for nal in nal_units(sample, size).flatten() {
        match nal_type(nal) {
            NAL_AUD => continue,
            NAL_IDR if !inserted => {
                inserted = true;
                if !has_sps {
                    cfg.sps.iter().for_each(|s| write_nal(out, s));
                }
                if !has_pps {
                    cfg.pps.iter().for_each(|p| write_nal(out, p));
                }
            }
            _ => {}
        }
        write_nal(out, nal);
    }
    Ok(())
}

/// NAL units of an AVCC sample; zero or overlong lengths are errors.
pub(super) fn nal_units(
    sample: &[u8],
    size: usize,
) -> impl Iterator<Item = Result<&[u8], MediaError>> + '_ {
    let mut r = Reader(sample);
    std::iter::from_fn(move || {
        if r.0.is_empty() {
            return None;
        }
        let item = r.uint(size, "AVC NAL length").and_then(|len| match len {
            0 => Err(MediaError::Invalid("AVC NAL length 0")),
            len => r.take(len, "AVC NAL unit"),
        });
        if item.is_err() {
            r.0 = &[];
        }
        Some(item)
    })
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

pub(super) fn write_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(nal);
}

/// A legacy FLV video tag body (Adobe FLV spec E.4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTag<'a> {
    /// `CodecID` (7 = AVC, 12 = legacy HEVC).
    pub codec: u8,
    /// `FrameType` 1 (keyframe).
    pub keyframe: bool,
    /// `AVCPacketType` for AVC/HEVC; [`AVC_NALU`] for codecs without the field.
    pub packet_type: u8,
    /// `CompositionTime` (PTS - DTS) in milliseconds, a signed 24-bit value; 0 when absent.
    pub composition_ms: i32,
    /// The bytes after the header: a configuration record, AVCC NAL units, or codec data.
    pub data: &'a [u8],
}

/// Parse a legacy FLV video tag header. AVC (7) and legacy HEVC (12) carry `AVCPacketType`
/// and `CompositionTime` (5-byte header); other codecs have a 1-byte header. Enhanced RTMP
/// (`IsExHeader`) bodies are reported as unsupported.
pub fn parse_video_tag(body: &[u8]) -> Result<VideoTag<'_>, MediaError> {
    let (&b0, rest) = body
        .split_first()
        .ok_or(MediaError::Truncated("video tag header"))?;
    if b0 & 0x80 != 0 {
        return Err(MediaError::Unsupported("enhanced RTMP video tag"));
    }
    let codec = b0 & 0x0f;
    let keyframe = b0 >> 4 == 1;
    if codec != crate::media::CODEC_AVC && codec != crate::media::CODEC_HEVC_LEGACY {
        return Ok(VideoTag {
            codec,
            keyframe,
            packet_type: AVC_NALU,
            composition_ms: 0,
            data: rest,
        });
    }
    let [packet_type, c0, c1, c2, data @ ..] = rest else {
        return Err(MediaError::Truncated("AVC video tag header"));
    };
    // Sign-extend the 24-bit composition time (E.4.3.1: SI24).
    let composition_ms = i32::from_be_bytes([*c0, *c1, *c2, 0]) >> 8;
    Ok(VideoTag {
        codec,
        keyframe,
        packet_type: *packet_type,
        composition_ms,
        data,
    })
}

/// Bounds-checked big-endian reader over a byte slice.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MediaError> {
        if n > self.0.len() {
            return Err(MediaError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, MediaError> {
        Ok(self.uint(1, what)? as u8)
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, MediaError> {
        Ok(self.uint(2, what)? as u16)
    }

    /// An unsigned big-endian integer of `n` (at most 4) bytes.
    fn uint(&mut self, n: usize, what: &'static str) -> Result<usize, MediaError> {
        let bytes = self.take(n, what)?;
        Ok(bytes.iter().fold(0, |acc, &b| (acc << 8) | usize::from(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real High-profile 720p record: 1 SPS of 26 bytes, 1 PPS of 6 bytes.
    const RECORD: &[u8] = &[
        0x01, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0x00, 0x1A, 0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40,
        0x50, 0x05, 0xBB, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xC0,
        0xF1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0,
    ];

    fn cfg(size: u8) -> AvcConfig {
        AvcConfig {
            nal_length_size: size,
            sps: vec![vec![0x67, 0xAA]],
            pps: vec![vec![0x68, 0xBB]],
        }
    }

    /// AVCC sample with 4-byte lengths.
    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn parses_real_record() {
        let c = AvcConfig::parse(RECORD).unwrap();
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.sps.len(), 1);
        assert_eq!(c.sps[0].len(), 26);
        assert_eq!(&c.sps[0][..4], &[0x67, 0x64, 0x00, 0x1F]);
        assert_eq!(c.pps, vec![vec![0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0]]);
        // Any truncation is an error, never a panic.
        for n in 0..RECORD.len() - 1 {
            assert!(AvcConfig::parse(&RECORD[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn parses_multiple_sets_and_two_byte_lengths() {
        let record = [
            0x01, 0x4D, 0x40, 0x1E, 0xFD, 0xE2, // 2-byte NAL lengths, 2 SPS
            0x00, 0x02, 0x67, 0x01, 0x00, 0x03, 0x67, 0x02, 0x03, // SPS
            0x03, // 3 PPS, the middle one empty (skipped)
            0x00, 0x01, 0x68, 0x00, 0x00, 0x00, 0x02, 0x68, 0x09, //
            0xFD, 0xF8, 0xF8, 0x00, // High-profile trailer, ignored
        ];
        let c = AvcConfig::parse(&record).unwrap();
        assert_eq!(c.nal_length_size, 2);
        assert_eq!(c.sps, vec![vec![0x67, 0x01], vec![0x67, 0x02, 0x03]]);
        assert_eq!(c.pps, vec![vec![0x68], vec![0x68, 0x09]]);
    }

    #[test]
    fn idr_gets_aud_sps_pps() {
        let sample = avcc(&[&[0x06, 0x05, 0x01], &[0x65, 0x88, 0x80], &[0x65, 0x99]]);
        let mut out = vec![0xEE];
        to_annex_b(&sample, &cfg(4), &mut out).unwrap();
        let expected: Vec<u8> = [
            &[0xEE][..],
            &[0, 0, 0, 1, 0x09, 0xF0],
            &[0, 0, 0, 1, 0x06, 0x05, 0x01], // SEI
            &[0, 0, 0, 1, 0x67, 0xAA],
            &[0, 0, 0, 1, 0x68, 0xBB],
            &[0, 0, 0, 1, 0x65, 0x88, 0x80],
            &[0, 0, 0, 1, 0x65, 0x99], // second slice: no second insertion
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn non_idr_gets_only_aud_and_inband_aud_dropped() {
        let sample = avcc(&[&[0x09, 0x30], &[0x41, 0x9A, 0x02]]);
        let mut out = Vec::new();
        to_annex_b(&sample, &cfg(4), &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0x9A, 0x02]);
    }

    #[test]
    fn inband_parameter_sets_not_duplicated() {
        let sample = avcc(&[&[0x67, 0x11], &[0x68, 0x22], &[0x65, 0x33]]);
        let mut out = Vec::new();
        to_annex_b(&sample, &cfg(4), &mut out).unwrap();
        let expected: Vec<u8> = [
            &[0, 0, 0, 1, 0x09, 0xF0][..],
            &[0, 0, 0, 1, 0x67, 0x11],
            &[0, 0, 0, 1, 0x68, 0x22],
            &[0, 0, 0, 1, 0x65, 0x33],
        ]
        .concat();
        assert_eq!(out, expected);
        // Only an in-band SPS: the configuration's PPS is still inserted.
        let sample = avcc(&[&[0x67, 0x11], &[0x65, 0x33]]);
        out.clear();
        to_annex_b(&sample, &cfg(4), &mut out).unwrap();
        assert_eq!(
            out,
            [
                &[0, 0, 0, 1, 0x09, 0xF0][..],
                &[0, 0, 0, 1, 0x67, 0x11],
                &[0, 0, 0, 1, 0x68, 0xBB],
                &[0, 0, 0, 1, 0x65, 0x33],
            ]
            .concat()
        );
    }

    #[test]
    fn honours_nal_length_size() {
        let sample = [0x00, 0x02, 0x41, 0x01, 0x00, 0x01, 0x41];
        let mut out = Vec::new();
        to_annex_b(&sample, &cfg(2), &mut out).unwrap();
        assert_eq!(
            out,
            [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0x01, 0, 0, 0, 1, 0x41]
        );
        let sample = [0x01, 0x41];
        out.clear();
        to_annex_b(&sample, &cfg(1), &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41]);
    }

    #[test]
    fn bad_lengths_are_errors_and_leave_out_untouched() {
        let mut out = vec![7];
        for bad in [
            &[0, 0, 0, 5, 0x41, 0x01][..], // overlong
            &[0, 0, 0, 0, 0x41],           // zero length
            &[0, 0, 1],                    // truncated length
            &[0, 0, 0, 1, 0x41, 0, 0],     // trailing garbage
        ] {
            assert!(to_annex_b(bad, &cfg(4), &mut out).is_err());
            assert_eq!(out, [7]);
        }
        assert!(to_annex_b(&[0x41], &cfg(0), &mut out).is_err());
        // An empty sample still yields a (lone) AUD.
        to_annex_b(&[], &cfg(4), &mut out).unwrap();
        assert_eq!(out, [7, 0, 0, 0, 1, 0x09, 0xF0]);
    }

    #[test]
    fn video_tag_headers() {
        let tag = parse_video_tag(&[0x27, 0x01, 0xFF, 0xFF, 0xDF, 0xAB]).unwrap();
        assert_eq!(
            tag,
            VideoTag {
                codec: 7,
                keyframe: false,
                packet_type: AVC_NALU,
                composition_ms: -33,
                data: &[0xAB],
            }
        );
        let tag = parse_video_tag(&[0x17, 0x00, 0x00, 0x00, 0x43]).unwrap();
        assert!(tag.keyframe);
        assert_eq!(tag.packet_type, AVC_SEQUENCE_HEADER);
        assert_eq!(tag.composition_ms, 67);
        assert_eq!(
            parse_video_tag(&[0x17, 0x01, 0x7F, 0xFF, 0xFF])
                .unwrap()
                .composition_ms,
            0x7F_FFFF
        );
        assert_eq!(
            parse_video_tag(&[0x27, 0x01, 0x80, 0x00, 0x00])
                .unwrap()
                .composition_ms,
            -0x80_0000
        );
        // Sorenson H.263: 1-byte header.
        let tag = parse_video_tag(&[0x12, 0x55]).unwrap();
        assert_eq!((tag.codec, tag.keyframe, tag.data), (2, true, &[0x55][..]));
        assert!(parse_video_tag(&[]).is_err());
        assert!(parse_video_tag(&[0x17, 0x01, 0x00, 0x00]).is_err());
        assert!(matches!(
            parse_video_tag(b"\x91hvc1"),
            Err(MediaError::Unsupported(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut out = Vec::new();
        for round in 0..20_000 {
            let len = (round % 64) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            let _ = AvcConfig::parse(&data);
            let _ = parse_video_tag(&data);
            for size in 0..=5 {
                out.clear();
                let _ = to_annex_b(&data, &cfg(size), &mut out);
            }
        }
    }
}
