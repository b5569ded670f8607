//! MPEG audio (MP3 and its Layer I/II siblings) frame headers (ISO/IEC 11172-3 2.4.2.3,
//! ISO/IEC 13818-3 2.4.2.3, and the unofficial MPEG-2.5 extension), as carried raw in FLV
//! `SoundFormat` 2 and 14 and in MPEG-TS as stream type 0x03 / 0x04.

use crate::media::avc::MediaError;
use crate::media::ts::StreamType;

/// Length of the frame header.
pub const HEADER_LEN: usize = 4;

/// MPEG audio version (header bits 20..19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpegVersion {
    /// ISO/IEC 11172-3.
    Mpeg1,
    /// ISO/IEC 13818-3 low sampling frequencies.
    Mpeg2,
    /// Unofficial MPEG-2.5 (8 to 12 kHz).
    Mpeg25,
}

/// Facts from one MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpaHeader {
    pub version: MpegVersion,
    /// Layer 1, 2 or 3.
    pub layer: u8,
    /// Sampling frequency in Hz.
    pub sample_rate: u32,
    /// PCM samples per frame: 384 (Layer I), 1152 (Layer II, MPEG-1 Layer III), 576
    /// (MPEG-2/2.5 Layer III).
    pub samples_per_frame: u32,
    /// 1 (single channel) or 2.
    pub channels: u8,
    /// Bit rate in kbit/s; 0 for free format.
    pub bitrate_kbps: u32,
    /// Frame length in bytes including the header; `None` for free format.
    pub frame_len: Option<usize>,
}

/// Bit rates in kbit/s by index 1..=14 (index 0 is free format, 15 is forbidden).
const BITRATES_V1_L1: [u16; 14] = [
    32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
];
const BITRATES_V1_L2: [u16; 14] = [
    32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
];
const BITRATES_V1_L3: [u16; 14] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
const BITRATES_V2_L1: [u16; 14] = [
    32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
];
const BITRATES_V2_L23: [u16; 14] = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// MPEG-1 sampling frequencies; MPEG-2 halves them, MPEG-2.5 quarters them.
const SAMPLE_RATES_V1: [u32; 3] = [44100, 48000, 32000];

impl MpaHeader {
    /// Parse the 4-byte header at the start of `frame`.
    pub fn parse(frame: &[u8]) -> Result<Self, MediaError> {
        let &[b0, b1, b2, b3, ..] = frame else {
            return Err(MediaError::Truncated("MPEG audio header"));
        };
        if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
            return Err(MediaError::Invalid("MPEG audio sync word"));
        }
        let (version, rate_divisor) = match (b1 >> 3) & 0x03 {
            0 => (MpegVersion::Mpeg25, 4),
            2 => (MpegVersion::Mpeg2, 2),
            3 => (MpegVersion::Mpeg1, 1),
            _ => return Err(MediaError::Invalid("MPEG audio version")),
        };
        let layer = match (b1 >> 1) & 0x03 {
            0 => return Err(MediaError::Invalid("MPEG audio layer")),
            bits => 4 - bits,
        };
        let sample_rate = SAMPLE_RATES_V1
            .get(usize::from((b2 >> 2) & 0x03))
            .ok_or(MediaError::Invalid("MPEG audio sampling frequency"))?
            / rate_divisor;
        let bitrate_kbps = bitrate(version, layer, b2 >> 4)?;
        let samples_per_frame = match (layer, version) {
            (1, _) => 384,
            (3, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => 576,
            _ => 1152,
        };
        let padding = u32::from((b2 >> 1) & 0x01);
        let frame_len = (bitrate_kbps != 0).then(|| {
            let len = if layer == 1 {
                (12 * bitrate_kbps * 1000 / sample_rate + padding) * 4
            } else {
                samples_per_frame / 8 * bitrate_kbps * 1000 / sample_rate + padding
            };
            len as usize
        });
        Ok(MpaHeader {
            version,
            layer,
            sample_rate,
            samples_per_frame,
            channels: if b3 >> 6 == 0x03 { 1 } else { 2 },
            bitrate_kbps,
            frame_len,
        })
    }

    /// The MPEG-TS stream type: 0x03 for MPEG-1 audio, 0x04 for MPEG-2 (and 2.5) audio.
    pub fn stream_type(&self) -> StreamType {
        match self.version {
            MpegVersion::Mpeg1 => StreamType::Mpeg1Audio,
            MpegVersion::Mpeg2 | MpegVersion::Mpeg25 => StreamType::Mpeg2Audio,
        }
    }
}

/// Bit rate for a `bitrate_index`; 0 means free format.
fn bitrate(version: MpegVersion, layer: u8, index: u8) -> Result<u32, MediaError> {
    if index == 0 {
        return Ok(0);
    }
    let table = match (version, layer) {
        (MpegVersion::Mpeg1, 1) => &BITRATES_V1_L1,
        (MpegVersion::Mpeg1, 2) => &BITRATES_V1_L2,
        (MpegVersion::Mpeg1, _) => &BITRATES_V1_L3,
        (_, 1) => &BITRATES_V2_L1,
        _ => &BITRATES_V2_L23,
    };
    table
        .get(usize::from(index) - 1)
        .map(|k| u32::from(*k))
        .ok_or(MediaError::Invalid("MPEG audio bit rate index"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpeg1_layer3_44100() {
        // 128 kbit/s, 44.1 kHz, no padding, joint stereo.
        let h = MpaHeader::parse(&[0xFF, 0xFB, 0x90, 0x64, 0x00]).unwrap();
        assert_eq!(
            h,
            MpaHeader {
                version: MpegVersion::Mpeg1,
                layer: 3,
                sample_rate: 44100,
                samples_per_frame: 1152,
                channels: 2,
                bitrate_kbps: 128,
                frame_len: Some(417),
            }
        );
        assert_eq!(h.stream_type(), StreamType::Mpeg1Audio);
        // Same with the padding bit: one more byte.
        let h = MpaHeader::parse(&[0xFF, 0xFB, 0x92, 0x64]).unwrap();
        assert_eq!(h.frame_len, Some(418));
    }

    #[test]
    fn mpeg2_and_25_layer3() {
        // MPEG-2 Layer III, 64 kbit/s, 22.05 kHz, mono.
        let h = MpaHeader::parse(&[0xFF, 0xF3, 0x80, 0xC4]).unwrap();
        assert_eq!(h.version, MpegVersion::Mpeg2);
        assert_eq!(
            (h.sample_rate, h.samples_per_frame, h.channels),
            (22050, 576, 1)
        );
        assert_eq!((h.bitrate_kbps, h.frame_len), (64, Some(208)));
        assert_eq!(h.stream_type(), StreamType::Mpeg2Audio);
        // MPEG-2.5, 8 kHz (index 2), 8 kbit/s.
        let h = MpaHeader::parse(&[0xFF, 0xE3, 0x18, 0x00]).unwrap();
        assert_eq!(h.version, MpegVersion::Mpeg25);
        assert_eq!((h.sample_rate, h.samples_per_frame), (8000, 576));
        assert_eq!(h.stream_type(), StreamType::Mpeg2Audio);
    }

    #[test]
    fn layers_1_and_2() {
        // MPEG-1 Layer II, 192 kbit/s, 48 kHz: 1152 samples, 576 bytes.
        let h = MpaHeader::parse(&[0xFF, 0xFD, 0xA4, 0x00]).unwrap();
        assert_eq!(
            (h.layer, h.samples_per_frame, h.frame_len),
            (2, 1152, Some(576))
        );
        // MPEG-1 Layer I, 448 kbit/s, 32 kHz, padded: (12*448000/32000 + 1) * 4 = 676.
        let h = MpaHeader::parse(&[0xFF, 0xFF, 0xEA, 0x00]).unwrap();
        assert_eq!(
            (h.layer, h.samples_per_frame, h.frame_len),
            (1, 384, Some(676))
        );
        // Free format.
        let h = MpaHeader::parse(&[0xFF, 0xFB, 0x00, 0x00]).unwrap();
        assert_eq!((h.bitrate_kbps, h.frame_len), (0, None));
    }

    #[test]
    fn rejects_bad_headers() {
        for bad in [
            &[0xFF, 0xFB, 0x90][..], // truncated
            &[0xFE, 0xFB, 0x90, 0x64],
            &[0xFF, 0xEB, 0x90, 0x64], // reserved version
            &[0xFF, 0xF9, 0x90, 0x64], // reserved layer
            &[0xFF, 0xFB, 0xF0, 0x64], // bit rate index 15
            &[0xFF, 0xFB, 0x9C, 0x64], // sampling frequency index 3
        ] {
            assert!(MpaHeader::parse(bad).is_err(), "{bad:02X?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = 0xD1B5_4A32_D192_ED03u64;
        for _ in 0..100_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let b = rng.to_be_bytes();
            let _ = MpaHeader::parse(&[0xFF, b[1] | 0xE0, b[2], b[3]]);
            let _ = MpaHeader::parse(&b[..(b[0] % 6) as usize]);
        }
    }
}
