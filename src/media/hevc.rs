//! H.265/HEVC for MPEG-TS: the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1,
//! "HVCC") and the length-prefixed to Annex-B conversion (ITU-T H.265 Annex B). As for AVC,
//! every access unit starts with an access unit delimiter (NAL type 35) and every IRAP
//! picture (NAL types 16-23) is preceded by the VPS, SPS and PPS, so each segment decodes on
//! its own, and by the record's prefix SEI (HDR mastering display and content light levels
//! travel there), as FFmpeg's `hevc_mp4toannexb` does. The HEVC stream type in MPEG-TS is 0x24 (ISO/IEC 13818-1 table 2-34).

use super::avc::{nal_units, write_nal, MediaError, Reader};

const NAL_IRAP_FIRST: u8 = 16;
const NAL_IRAP_LAST: u8 = 23;
const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;
const NAL_AUD: u8 = 35;
const NAL_PREFIX_SEI: u8 = 39;

/// Prefix SEI NAL units of a record kept for HLS. HDR metadata takes one or two, x265's
/// encoder info one; the bound keeps the per-IRAP check against the sample's own SEI linear
/// whatever a publisher puts in its record.
pub const MAX_PREFIX_SEI: usize = 4;

/// Access unit delimiter: NAL header (type 35, layer 0, nuh_temporal_id_plus1 1), then pic_type 2
/// (I, P and B slices may follow) and the RBSP stop bit.
const AUD: [u8; 3] = [NAL_AUD << 1, 0x01, 0x50];

/// Decoder configuration from an HEVC sequence header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HevcConfig {
    /// Size of the big-endian NAL length prefix in samples (1, 2 or 4 bytes).
    pub nal_length_size: u8,
    /// VPS, SPS and PPS NAL units, in that order.
    pub parameter_sets: Vec<Vec<u8>>,
    /// Prefix SEI NAL units (type 39), at most [`MAX_PREFIX_SEI`]. Suffix SEI and other
    /// arrays are left out: they cannot come before a picture's slices.
    pub prefix_sei: Vec<Vec<u8>>,
}

impl HevcConfig {
    /// Parse an HEVCDecoderConfigurationRecord: 22 fixed bytes (lengthSizeMinusOne in the
    /// low bits of the last), then `numOfArrays` arrays of NAL units.
    pub fn parse(record: &[u8]) -> Result<Self, MediaError> {
        let mut r = Reader(record);
        let fixed = r.take(22, "HEVC decoder configuration")?;
        let nal_length_size = (fixed[21] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(MediaError::Invalid("HEVC NAL length size"));
        }
        let arrays = r.u8("HEVC array count")?;
        let mut by_type: [Vec<Vec<u8>>; 4] = Default::default();
        for _ in 0..arrays {
            let nal_type = r.u8("HEVC array")? & 0x3f;
            let count = r.u16("HEVC NAL count")?;
            for _ in 0..count {
                let len = r.u16("HEVC NAL length")?;
                let nal = r.take(usize::from(len), "HEVC NAL unit")?;
                let slot = match nal_type {
                    NAL_VPS => 0,
                    NAL_SPS => 1,
                    NAL_PPS => 2,
                    NAL_PREFIX_SEI => 3,
                    _ => continue,
                };
                let full = slot == 3 && by_type[slot].len() >= MAX_PREFIX_SEI;
                if !nal.is_empty() && !full {
                    by_type[slot].push(nal.to_vec());
                }
            }
        }
        let [vps, sps, pps, prefix_sei] = by_type;
        Ok(HevcConfig {
            nal_length_size,
            parameter_sets: [vps, sps, pps].into_iter().flatten().collect(),
            prefix_sei,
        })
    }
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// Whether an HEVC sample (length-prefixed NAL units) holds an IRAP picture.
pub fn is_irap(sample: &[u8], cfg: &HevcConfig) -> bool {
    nal_units(sample, usize::from(cfg.nal_length_size))
        .map_while(Result::ok)
        .any(|n| (NAL_IRAP_FIRST..=NAL_IRAP_LAST).contains(&nal_type(n)))
}

/// Convert one HEVC sample to an Annex-B access unit appended to `out`: an AUD first
/// (in-band AUDs dropped), then every NAL unit with a 4-byte start code, the configuration's
/// VPS/SPS/PPS inserted before the first IRAP slice unless the sample carries its own, and
/// its prefix SEI right before that slice (after the sample's own parameter sets and SEI),
/// unless the sample carries the same NAL unit. On error `out` is left as it was.
pub fn to_annex_b(sample: &[u8], cfg: &HevcConfig, out: &mut Vec<u8>) -> Result<(), MediaError> {
    let size = usize::from(cfg.nal_length_size);
    if !matches!(size, 1 | 2 | 4) {
        return Err(MediaError::Invalid("HEVC NAL length size"));
    }
    // Which of VPS, SPS, PPS the sample carries in-band: only the others are inserted (an
    // IRAP with just an in-band PPS still needs the configuration's VPS and SPS).
    // They go before the first parameter set, prefix SEI or slice of an IRAP sample, so a
    // PPS never comes before the SPS it refers to.
    let irap = |t: u8| (NAL_IRAP_FIRST..=NAL_IRAP_LAST).contains(&t);
    let (mut in_band, mut has_irap, mut payload) = ([false; 3], false, 0usize);
    for nal in nal_units(sample, size) {
        let nal = nal?;
        if let Some(i) = param_index(nal_type(nal)) {
            in_band[i] = true;
        }
        has_irap |= irap(nal_type(nal));
        payload = payload.saturating_add(nal.len() + 4);
    }
    out.reserve(payload.saturating_add(4 + AUD.len()));
    write_nal(out, &AUD);
    let (mut params_inserted, mut sei_inserted) = (!has_irap, !has_irap);
    for nal in nal_units(sample, size).flatten() {
        let t = nal_type(nal);
        if t == NAL_AUD {
            continue;
        }
        // Parameter sets first: before the sample's own prefix SEI, which may refer to them.
        let leading = irap(t) || t == NAL_PREFIX_SEI || param_index(t).is_some();
        if !params_inserted && leading {
            params_inserted = true;
            cfg.parameter_sets
                .iter()
                .filter(|p| param_index(nal_type(p)).is_some_and(|i| !in_band[i]))
                .for_each(|p| write_nal(out, p));
        }
        if !sei_inserted && irap(t) {
            sei_inserted = true;
            let own = |sei: &[u8]| nal_units(sample, size).flatten().any(|n| n == sei);
            cfg.prefix_sei
                .iter()
                .filter(|sei| !own(sei))
                .for_each(|sei| write_nal(out, sei));
        }
        write_nal(out, nal);
    }
    Ok(())
}

/// 0, 1, 2 for a VPS, SPS, PPS NAL unit type.
fn param_index(t: u8) -> Option<usize> {
    match t {
        NAL_VPS => Some(0),
        NAL_SPS => Some(1),
        NAL_PPS => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From FFmpeg 9.0 + libx265 320x240 (`-f flv`): the record's 22 fixed bytes, then the
    // VPS, SPS and PPS arrays (x265 also stores a 2332-byte SEI array, left out here).
    const FIXED: &str = "0101600000009000000000003cf000fcfdf8f800000f";
    const VPS: &str = "40010c01ffff01600000030090000003000003003c959409";
    const SPS: &str =
        "42010101600000030090000003000003003ca00a080f16595952930bc05a020000030002000003003c10";
    const PPS: &str = "4401c073c189";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn record(with_sei: bool) -> Vec<u8> {
        let mut r = hex(FIXED);
        r.push(3 + u8::from(with_sei));
        if with_sei {
            r.extend_from_slice(&[0x27, 0, 1, 0, 2, 0x4e, 0x01]);
        }
        for (t, nal) in [(0xa0u8, VPS), (0xa1, SPS), (0xa2, PPS)] {
            let nal = hex(nal);
            r.extend_from_slice(&[t, 0, 1]);
            r.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            r.extend_from_slice(&nal);
        }
        r
    }

    fn sample(nals: &[&[u8]]) -> Vec<u8> {
        let mut s = Vec::new();
        for n in nals {
            s.extend_from_slice(&(n.len() as u32).to_be_bytes());
            s.extend_from_slice(n);
        }
        s
    }

    /// The prefix SEI array of `record(true)`: NAL header 0x4e01 (type 39), no payload.
    const SEI: [u8; 2] = [0x4e, 0x01];

    #[test]
    fn real_record_parses() {
        let c = HevcConfig::parse(&record(true)).unwrap();
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.parameter_sets, vec![hex(VPS), hex(SPS), hex(PPS)]);
        assert_eq!(c.prefix_sei, vec![SEI.to_vec()]);
        assert!(HevcConfig::parse(&record(false))
            .unwrap()
            .prefix_sei
            .is_empty());
        // A record stuffed with SEI keeps only the first few.
        let mut stuffed = hex(FIXED);
        stuffed.push(1);
        stuffed.extend_from_slice(&[0x27, 0x03, 0xe8]); // 1000 NAL units
        for i in 0..1000u16 {
            stuffed.extend_from_slice(&[0, 3, 0x4e, 0x01, i as u8]);
        }
        let c = HevcConfig::parse(&stuffed).unwrap();
        assert_eq!(c.prefix_sei.len(), MAX_PREFIX_SEI);
        assert_eq!(c.prefix_sei[3], [0x4e, 0x01, 3]);
    }

    #[test]
    fn the_records_prefix_sei_goes_right_before_the_irap_slice_once() {
        let c = HevcConfig::parse(&record(true)).unwrap();
        let idr = [0x28, 0x01, 0xac, 0x21];
        let own_pps = [0x44, 0x01, 0xc1, 0x99];
        let expect = |nals: &[&[u8]]| {
            let mut want = vec![0, 0, 0, 1, 0x46, 0x01, 0x50];
            for n in nals {
                want.extend_from_slice(&[0, 0, 0, 1]);
                want.extend_from_slice(n);
            }
            want
        };
        let mut out = Vec::new();
        to_annex_b(&sample(&[&own_pps, &idr]), &c, &mut out).unwrap();
        let (vps, sps) = (hex(VPS), hex(SPS));
        assert_eq!(
            out,
            expect(&[&vps, &sps, &own_pps, &SEI, &idr]),
            "after the sample's own parameter set, before the slice"
        );
        out.clear();
        to_annex_b(&sample(&[&SEI, &idr]), &c, &mut out).unwrap();
        let pps = hex(PPS);
        assert_eq!(
            out,
            expect(&[&vps, &sps, &pps, &SEI, &idr]),
            "not twice when the sample carries it"
        );
        out.clear();
        let trail = [0x02, 0x01, 0xd0];
        to_annex_b(&sample(&[&trail]), &c, &mut out).unwrap();
        assert_eq!(out, expect(&[&trail]), "not before other pictures");
    }

    #[test]
    fn irap_gets_aud_then_parameter_sets() {
        let c = HevcConfig::parse(&record(false)).unwrap();
        // IDR_N_LP (20) slice as x265 sends it, after an in-band AUD that is replaced.
        let idr = [0x28, 0x01, 0xac, 0x21];
        let s = sample(&[&[0x46, 0x01, 0x50], &idr]);
        assert!(is_irap(&s, &c));
        let mut out = Vec::new();
        to_annex_b(&s, &c, &mut out).unwrap();
        let mut want = vec![0, 0, 0, 1, 0x46, 0x01, 0x50];
        for p in [hex(VPS), hex(SPS), hex(PPS), idr.to_vec()] {
            want.extend_from_slice(&[0, 0, 0, 1]);
            want.extend_from_slice(&p);
        }
        assert_eq!(out, want);
        // A trailing picture (TRAIL_R, type 1) gets the AUD only.
        let trail = [0x02, 0x01, 0xd0];
        let s = sample(&[&trail]);
        assert!(!is_irap(&s, &c));
        out.clear();
        to_annex_b(&s, &c, &mut out).unwrap();
        assert_eq!(
            out,
            [0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x02, 0x01, 0xd0]
        );
    }

    #[test]
    fn only_missing_parameter_sets_are_inserted() {
        let c = HevcConfig::parse(&record(false)).unwrap();
        let idr = [0x28, 0x01, 0xac, 0x21];
        let own_pps = [0x44, 0x01, 0xc1, 0x99];
        let s = sample(&[&own_pps, &idr]);
        let mut out = Vec::new();
        to_annex_b(&s, &c, &mut out).unwrap();
        let mut want = vec![0, 0, 0, 1, 0x46, 0x01, 0x50];
        for p in [hex(VPS), hex(SPS), own_pps.to_vec(), idr.to_vec()] {
            want.extend_from_slice(&[0, 0, 0, 1]);
            want.extend_from_slice(&p);
        }
        assert_eq!(
            out, want,
            "VPS and SPS from the record, the sample's own PPS"
        );
    }

    #[test]
    fn hostile_input_is_an_error() {
        let r = record(false);
        for cut in 0..r.len() {
            assert!(HevcConfig::parse(&r[..cut]).is_err(), "cut {cut}");
        }
        let c = HevcConfig::parse(&r).unwrap();
        let mut out = vec![7];
        assert!(to_annex_b(&[0, 0, 0, 9, 1], &c, &mut out).is_err());
        assert!(to_annex_b(&[0, 0, 0, 0], &c, &mut out).is_err());
        assert_eq!(out, [7], "left as it was");
        let mut bad = r.clone();
        bad[21] = 0xfe; // lengthSizeMinusOne 2
        assert!(HevcConfig::parse(&bad).is_err());
    }
}
