//! AAC in FLV: the audio tag header, the AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) and
//! the ADTS header (ISO/IEC 13818-7 6.2 / 14496-3 1.A.2) that AAC needs in MPEG-TS
//! (stream type 0x0F).

use crate::media::avc::MediaError;

/// Sampling frequencies by `samplingFrequencyIndex` (ISO/IEC 14496-3 table 1.18).
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// `AACPacketType` of the AudioSpecificConfig.
pub const AAC_SEQUENCE_HEADER: u8 = 0;
/// `AACPacketType` of a raw AAC frame.
pub const AAC_RAW: u8 = 1;

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;
/// Largest ADTS frame (13-bit `aac_frame_length`, header included).
const ADTS_MAX_FRAME: usize = 0x1FFF;

/// Audio object types of explicitly signalled SBR (HE-AAC) and PS (HE-AACv2).
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;
/// AAC LC, the ADTS profile used for object types ADTS cannot name.
const AOT_LC: u8 = 2;

/// Decoder configuration from an AudioSpecificConfig. For HE-AAC (explicit SBR/PS
/// signalling) the fields describe the AAC core, which is what ADTS carries (decoders find
/// SBR/PS implicitly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type of the core (2 = AAC LC).
    pub object_type: u8,
    /// Index into [`SAMPLE_RATES`] of the core sampling frequency.
    pub sample_rate_index: u8,
    /// Core sampling frequency in Hz.
    pub sample_rate: u32,
    /// `channelConfiguration` (0 = defined by a program config element, 1 to 7).
    pub channel_config: u8,
}

impl AacConfig {
    /// Parse an AudioSpecificConfig. Escaped object types (31) and explicit frequencies
    /// equal to a table entry are handled; channel configurations ADTS cannot carry (> 7) and
    /// frequencies without an index are unsupported.
    pub fn parse(asc: &[u8]) -> Result<Self, MediaError> {
        let mut bits = BitReader { data: asc, pos: 0 };
        let mut object_type = read_object_type(&mut bits)?;
        let sample_rate_index = read_sample_rate_index(&mut bits)?;
        let channel_config = bits.read(4)? as u8;
        if object_type == AOT_SBR || object_type == AOT_PS {
            // extensionSamplingFrequencyIndex, then the core object type.
            read_sample_rate_index(&mut bits)?;
            object_type = read_object_type(&mut bits)?;
        }
        if object_type == 0 {
            return Err(MediaError::Invalid("AAC audio object type 0"));
        }
        if channel_config > 7 {
            return Err(MediaError::Unsupported("AAC channel configuration above 7"));
        }
        Ok(AacConfig {
            object_type,
            sample_rate_index,
            sample_rate: SAMPLE_RATES[usize::from(sample_rate_index)],
            channel_config,
        })
    }

    /// The ADTS header (no CRC) for one raw AAC frame of `payload_len` bytes: MPEG-4 ID,
    /// profile = object type - 1 (object types above 4 are written as LC), the full 3-bit
    /// channel configuration, buffer fullness 0x7FF (VBR), one raw data block.
    pub fn adts_header(&self, payload_len: usize) -> Result<[u8; ADTS_HEADER_LEN], MediaError> {
        let len = payload_len
            .checked_add(ADTS_HEADER_LEN)
            .filter(|l| *l <= ADTS_MAX_FRAME)
            .ok_or(MediaError::Invalid(
                "AAC frame longer than an ADTS frame allows",
            ))?;
        let profile = match self.object_type {
            1..=4 => self.object_type - 1,
            _ => AOT_LC - 1,
        };
        let channels = self.channel_config & 0x07;
        Ok([
            0xFF,
            0xF1, // syncword, ID 0 (MPEG-4), layer 0, protection_absent 1
            (profile << 6) | ((self.sample_rate_index & 0x0F) << 2) | (channels >> 2),
            ((channels & 0x03) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len & 0x07) as u8) << 5 | 0x1F,
            0xFC,
        ])
    }
}

/// PCM samples per AAC frame (the 960-sample variant is not used in RTMP/TS).
pub fn samples_per_frame() -> u32 {
    1024
}

/// `GetAudioObjectType()` (14496-3 table 1.14): 5 bits, 31 escapes to 32 + 6 bits.
fn read_object_type(bits: &mut BitReader<'_>) -> Result<u8, MediaError> {
    match bits.read(5)? as u8 {
        31 => Ok(32 + bits.read(6)? as u8),
        aot => Ok(aot),
    }
}

/// `samplingFrequencyIndex`, with index 15 (explicit 24-bit frequency) mapped back to a
/// table index when the frequency is in the table.
fn read_sample_rate_index(bits: &mut BitReader<'_>) -> Result<u8, MediaError> {
    let index = bits.read(4)? as usize;
    if index == 15 {
        let rate = bits.read(24)?;
        let index = SAMPLE_RATES
            .iter()
            .position(|r| *r == rate)
            .ok_or(MediaError::Unsupported(
                "AAC sampling frequency outside the ADTS table",
            ))?;
        return Ok(index as u8);
    }
    if index >= SAMPLE_RATES.len() {
        return Err(MediaError::Invalid("AAC sampling frequency index"));
    }
    Ok(index as u8)
}

/// MSB-first bit reader.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    /// Read `n` (at most 32) bits.
    fn read(&mut self, n: usize) -> Result<u32, MediaError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or(MediaError::Truncated("AAC AudioSpecificConfig"))?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

/// A legacy FLV audio tag body (Adobe FLV spec E.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTag<'a> {
    /// `SoundFormat` (2 = MP3, 10 = AAC, 14 = MP3 8 kHz).
    pub sound_format: u8,
    /// `AACPacketType` for AAC, `None` for other formats.
    pub packet_type: Option<u8>,
    /// The bytes after the header.
    pub data: &'a [u8],
}

/// Parse a legacy FLV audio tag header (1 byte, plus `AACPacketType` for AAC). Enhanced
/// RTMP (`SoundFormat` 9) bodies are reported as unsupported.
pub fn parse_audio_tag(body: &[u8]) -> Result<AudioTag<'_>, MediaError> {
    let (&b0, rest) = body
        .split_first()
        .ok_or(MediaError::Truncated("audio tag header"))?;
    let sound_format = b0 >> 4;
    match sound_format {
        crate::media::SOUND_AAC => {
            let (&packet_type, data) = rest
                .split_first()
                .ok_or(MediaError::Truncated("AAC audio tag header"))?;
            Ok(AudioTag {
                sound_format,
                packet_type: Some(packet_type),
                data,
            })
        }
        9 => Err(MediaError::Unsupported("enhanced RTMP audio tag")),
        _ => Ok(AudioTag {
            sound_format,
            packet_type: None,
            data: rest,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        let c = AacConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(
            c,
            AacConfig {
                object_type: 2,
                sample_rate_index: 4,
                sample_rate: 44100,
                channel_config: 2,
            }
        );
        // 100-byte frame: length 107 = 0x6B.
        assert_eq!(
            c.adts_header(100).unwrap(),
            [0xFF, 0xF1, 0x50, 0x80, 0x0D, 0x7F, 0xFC]
        );
        // Largest frame: 8191 bytes including the header.
        assert_eq!(
            c.adts_header(8184).unwrap(),
            [0xFF, 0xF1, 0x50, 0x83, 0xFF, 0xFF, 0xFC]
        );
        assert!(c.adts_header(8185).is_err());
        assert!(c.adts_header(usize::MAX).is_err());
    }

    #[test]
    fn channel_config_bit_2_kept() {
        // LC, 48 kHz (index 3), 5.1 (6): 0x11 0xB0.
        let c = AacConfig::parse(&[0x11, 0xB0]).unwrap();
        assert_eq!((c.sample_rate, c.channel_config), (48000, 6));
        let h = c.adts_header(0).unwrap();
        assert_eq!(h[2] & 0x01, 1, "channel bit 2");
        assert_eq!(h[3] >> 6, 0b10, "channel bits 1..0");
        // 7.1 (7): 0x11 0xB8.
        let h = AacConfig::parse(&[0x11, 0xB8])
            .unwrap()
            .adts_header(0)
            .unwrap();
        assert_eq!((h[2] & 0x01, h[3] >> 6), (1, 0b11));
        assert!(AacConfig::parse(&[0x11, 0xC0]).is_err()); // channel configuration 8
    }

    #[test]
    fn escaped_and_sbr_object_types() {
        // Object type 31 escape: 32 + 10 = 42 (USAC-like), index 4, stereo.
        // 11111 001010 0100 0010 -> 1111 1001 0100 1000 010(0 0000)
        let c = AacConfig::parse(&[0xF9, 0x48, 0x40]).unwrap();
        assert_eq!(
            (c.object_type, c.sample_rate, c.channel_config),
            (42, 44100, 2)
        );
        assert_eq!(c.adts_header(0).unwrap()[2] >> 6, 1, "written as LC");
        assert!(AacConfig::parse(&[0xF9, 0x48]).is_err());
        // HE-AAC: AOT 5, core 24 kHz (6), stereo, extension 48 kHz (3), core AOT 2.
        // 00101 0110 0010 0011 00010 -> 0010 1011 0001 0001 1000 10(00)
        let c = AacConfig::parse(&[0x2B, 0x11, 0x88]).unwrap();
        assert_eq!((c.object_type, c.sample_rate), (2, 24000));
        // Explicit frequency 44100 (index 15 + 24 bits), mono.
        // 00010 1111 0x00AC44 0001 -> 0001 0111 1000 0000 0101 0110 0010 0010 0000 1(000)
        let c = AacConfig::parse(&[0x17, 0x80, 0x56, 0x22, 0x08]).unwrap();
        assert_eq!((c.sample_rate_index, c.channel_config), (4, 1));
        assert!(matches!(
            AacConfig::parse(&[0x17, 0x80, 0x00, 0x00, 0x80]), // 1 Hz
            Err(MediaError::Unsupported(_))
        ));
        assert!(AacConfig::parse(&[0x16, 0x80]).is_err()); // index 13
        assert!(AacConfig::parse(&[0x02, 0x10]).is_err()); // object type 0
        assert!(AacConfig::parse(&[0x12]).is_err());
    }

    #[test]
    fn audio_tags() {
        let t = parse_audio_tag(&[0xAF, 0x01, 0x21]).unwrap();
        assert_eq!(
            (t.sound_format, t.packet_type, t.data),
            (10, Some(1), &[0x21][..])
        );
        assert!(parse_audio_tag(&[0xAF]).is_err());
        let t = parse_audio_tag(&[0x2F, 0xFF, 0xFB]).unwrap();
        assert_eq!((t.sound_format, t.packet_type), (2, None));
        assert_eq!(t.data, &[0xFF, 0xFB]);
        assert!(parse_audio_tag(&[]).is_err());
        assert!(parse_audio_tag(b"\x90Opus").is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..50_000 {
            let data: Vec<u8> = (0..round % 9)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            if let Ok(c) = AacConfig::parse(&data) {
                let _ = c.adts_header(round);
            }
            let _ = parse_audio_tag(&data);
        }
    }
}
