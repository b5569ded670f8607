//! MPEG-2 transport stream muxer (ISO/IEC 13818-1), sans-IO: PAT/PMT, PES packetisation,
//! PCR and continuity counters for one program with at most one video and one audio track.
//!
//! Layout: program 1 on PMT PID [`PID_PMT`] (0x1000, ffmpeg's choice; livego used 0x1001),
//! video on [`PID_VIDEO`] (stream id 0xE0), audio on [`PID_AUDIO`] (stream id 0xC0; 0xBD,
//! private_stream_1, for AC-3 and E-AC-3 as ATSC A/52 Annex A carries them). The PCR PID is
//! the video PID when the stream has video, else the audio PID.
//!
//! PCR rule (2.7.2 requires at most 100 ms between PCRs): the PCR value is the DTS of the
//! PES it precedes, extension 0 (no decoder delay offset, as livego: HLS players buffer whole
//! segments and never run the T-STD model late). A PCR, never going backwards, goes into the
//! first packet of a PCR-PID PES on keyframes, on the first PES after
//! [`TsMuxer::write_tables`], or when 40 ms have passed since the last PCR; before a PES of
//! the other track a PCR-only packet (adaptation field only) is written on the PCR PID when
//! 80 ms have passed. When the clock jumps by more than 100 ms, PCR-only packets at 100 ms
//! steps fill the gap, so consecutive PCRs never differ by more than 100 ms; a jump beyond
//! 10 s (either way) is a time-base discontinuity, signalled with the
//! `discontinuity_indicator` instead of filled.

/// Length of a transport stream packet.
pub const PACKET_LEN: usize = 188;
/// PID of the program association table.
pub const PID_PAT: u16 = 0x0000;
/// PID of the program map table.
pub const PID_PMT: u16 = 0x1000;
/// PID of the video elementary stream.
pub const PID_VIDEO: u16 = 0x0100;
/// PID of the audio elementary stream.
pub const PID_AUDIO: u16 = 0x0101;
/// PCR PID of a program without tracks (2.4.4.9: no PCR).
const PID_NULL: u16 = 0x1FFF;

/// PTS/DTS/PCR base values are 33-bit counters of a 90 kHz clock.
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;
/// PCR on the PCR PID's own PES once this much (90 kHz) has passed: 40 ms.
const PCR_INTERVAL: u64 = 40 * 90;
/// PCR-only packet before another track's PES once this much has passed: 80 ms.
const PCR_ONLY_INTERVAL: u64 = 80 * 90;
/// Largest allowed distance between PCRs (2.7.2): 100 ms.
pub const PCR_MAX_GAP: u64 = 100 * 90;
/// Clock jumps beyond this are time-base discontinuities, not gaps to fill: 10 s.
const PCR_MAX_JUMP: u64 = 10_000 * 90;

const SYNC_BYTE: u8 = 0x47;
const HEADER_LEN: usize = 4;
const PAYLOAD_LEN: usize = PACKET_LEN - HEADER_LEN;
/// Largest `PES_packet_length`.
const PES_MAX_LEN: usize = 0xFFFF;

/// Elementary stream types (2.4.4.9, table 2-34).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamType {
    /// ISO/IEC 11172-3 audio (MPEG-1 MP3 / Layer I/II).
    Mpeg1Audio = 0x03,
    /// ISO/IEC 13818-3 audio (MPEG-2 low sampling frequencies, MPEG-2.5).
    Mpeg2Audio = 0x04,
    /// AAC in ADTS (ISO/IEC 13818-7).
    Aac = 0x0F,
    /// H.264 in Annex-B byte stream.
    H264 = 0x1B,
    /// H.265/HEVC in Annex-B byte stream.
    H265 = 0x24,
    /// AC-3 syncframes (ATSC A/52 Annex A; Apple's HLS spec uses it for Dolby Digital).
    Ac3 = 0x81,
    /// E-AC-3 syncframes (ATSC A/52 Annex G).
    Eac3 = 0x87,
}

impl StreamType {
    /// The registration descriptor (2.6.8) format identifier the PMT gives this type: the
    /// user-private AC-3 types are identified by it (ATSC A/52 Annex A.4).
    fn format_identifier(self) -> Option<&'static [u8; 4]> {
        match self {
            StreamType::Ac3 => Some(b"AC-3"),
            StreamType::Eac3 => Some(b"EAC3"),
            _ => None,
        }
    }
}

/// The tracks a stream really has; the PMT declares exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tracks {
    pub video: Option<StreamType>,
    pub audio: Option<StreamType>,
}

/// Which elementary stream a PES belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

impl Track {
    /// The track's PID.
    pub fn pid(self) -> u16 {
        match self {
            Track::Video => PID_VIDEO,
            Track::Audio => PID_AUDIO,
        }
    }

    /// The PES `stream_id` of this track when its stream type is `kind`: AC-3 and E-AC-3 go
    /// on private_stream_1 (ATSC A/52 Annex A), other audio on the first MPEG audio id.
    fn stream_id(self, kind: Option<StreamType>) -> u8 {
        match (self, kind) {
            (Track::Video, _) => 0xE0,
            (Track::Audio, Some(StreamType::Ac3 | StreamType::Eac3)) => 0xBD,
            (Track::Audio, _) => 0xC0,
        }
    }
}

/// Add a signed offset to a 90 kHz timestamp, modulo 2^33: e.g. PTS = DTS + composition
/// offset, where FLV composition offsets may be negative.
pub fn offset_90k(ts_90k: u64, delta_90k: i64) -> u64 {
    ts_90k.wrapping_add(delta_90k as u64) & TIMESTAMP_MASK
}

/// `b - a` for 33-bit timestamps, as the shortest signed distance around the wrap.
fn signed_distance(a: u64, b: u64) -> i64 {
    let d = b.wrapping_sub(a) & TIMESTAMP_MASK;
    if d > TIMESTAMP_MASK / 2 {
        d as i64 - (1 << 33)
    } else {
        d as i64
    }
}

/// A PCR to write: `program_clock_reference_base` (extension always 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pcr {
    base: u64,
    /// Set the `discontinuity_indicator`: a new time base starts here.
    discontinuity: bool,
}

/// Optional adaptation field content of a packet (2.4.3.4).
#[derive(Debug, Clone, Copy, Default)]
struct Adaptation {
    random_access: bool,
    pcr: Option<Pcr>,
}

impl Adaptation {
    /// Bytes needed for these fields (length byte and flags included), 0 when none.
    fn len(&self) -> usize {
        match (self.random_access, self.pcr) {
            (false, None) => 0,
            (_, None) => 2,
            (_, Some(_)) => 8,
        }
    }

    /// Write an adaptation field of exactly `total` bytes (>= `self.len()`): fields, then
    /// 0xFF stuffing.
    fn write(&self, total: usize, out: &mut Vec<u8>) {
        if total == 0 {
            return;
        }
        let start = out.len();
        out.push((total - 1) as u8);
        if total == 1 {
            return;
        }
        let discontinuity = self.pcr.is_some_and(|p| p.discontinuity);
        out.push(
            u8::from(discontinuity) << 7
                | u8::from(self.random_access) << 6
                | u8::from(self.pcr.is_some()) << 4,
        );
        if let Some(pcr) = self.pcr {
            let b = pcr.base & TIMESTAMP_MASK;
            // base(33) reserved(6) extension(9), extension 0.
            out.extend_from_slice(&[
                (b >> 25) as u8,
                (b >> 17) as u8,
                (b >> 9) as u8,
                (b >> 1) as u8,
                ((b & 1) as u8) << 7 | 0x7E,
                0x00,
            ]);
        }
        out.resize(start + total, 0xFF);
    }
}

/// Transport stream muxer for one program. Continuity counters and the PCR clock persist
/// across segments: keep one muxer per stream and call [`TsMuxer::write_tables`] at the start
/// of each segment.
#[derive(Debug, Clone)]
pub struct TsMuxer {
    tracks: Tracks,
    /// `version_number` of the PMT, bumped when the tracks change.
    pmt_version: u8,
    /// Next continuity counter of PAT, PMT, video and audio PIDs.
    cc: [u8; 4],
    /// Base of the last PCR written.
    last_pcr: Option<u64>,
    /// A PCR is wanted at the next opportunity (segment start).
    pcr_due: bool,
}

impl TsMuxer {
    /// A muxer for a program with `tracks`. Continuity counters start at 0.
    pub fn new(tracks: Tracks) -> Self {
        TsMuxer {
            tracks,
            pmt_version: 0,
            cc: [0; 4],
            last_pcr: None,
            pcr_due: true,
        }
    }

    /// The declared tracks.
    pub fn tracks(&self) -> Tracks {
        self.tracks
    }

    /// The PES `stream_id` of `track` as declared.
    fn stream_id(&self, track: Track) -> u8 {
        let kind = match track {
            Track::Video => self.tracks.video,
            Track::Audio => self.tracks.audio,
        };
        track.stream_id(kind)
    }

    /// Change the declared tracks (e.g. audio appeared late); the PMT `version_number` is
    /// bumped, and the next [`TsMuxer::write_tables`] announces the new PMT.
    pub fn set_tracks(&mut self, tracks: Tracks) {
        if tracks != self.tracks {
            self.tracks = tracks;
            self.pmt_version = (self.pmt_version + 1) & 0x1F;
        }
    }

    /// Append a PAT and a PMT packet (the PMT declares only the tracks that exist). Call at
    /// the start of each segment.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        self.write_section(PID_PAT, &pat_section(), out);
        let pmt = pmt_section(self.tracks, self.pmt_version, self.pcr_pid());
        self.write_section(PID_PMT, &pmt, out);
        self.pcr_due = true;
    }

    /// Append one access unit (or several audio frames) as PES on `track`'s PID.
    ///
    /// `pts_90k`/`dts_90k` are 90 kHz timestamps taken modulo 2^33 (see [`offset_90k`] for
    /// negative composition offsets); the header carries PTS only when they are equal. Video
    /// PES longer than the 16-bit `PES_packet_length` get length 0 (2.4.3.7 allows it for
    /// video); audio PES always have an exact length, so audio data that does not fit is
    /// continued in further PES packets without PTS. `keyframe` sets the
    /// `random_access_indicator` (and requests a PCR on the PCR PID); pass `false` for audio
    /// unless every frame should be flagged. PCR placement: see the module documentation.
    pub fn write_pes(
        &mut self,
        track: Track,
        pts_90k: u64,
        dts_90k: u64,
        keyframe: bool,
        data: &[u8],
        out: &mut Vec<u8>,
    ) {
        let (pts, dts) = (pts_90k & TIMESTAMP_MASK, dts_90k & TIMESTAMP_MASK);
        let first = Adaptation {
            random_access: keyframe,
            pcr: self.clock(track, dts, keyframe, out),
        };
        out.reserve((data.len() / PAYLOAD_LEN + 2) * PACKET_LEN);
        let timestamps = PesTimestamps { pts, dts };
        if track == Track::Video {
            let header = pes_header(self.stream_id(track), Some(timestamps), data.len());
            self.write_packets(track.pid(), first, &header, data, out);
            return;
        }
        // Audio: exact lengths; data that does not fit continues in PES without PTS.
        let mut timestamps = Some(timestamps);
        let mut adaptation = first;
        let mut rest = data;
        loop {
            let room = PES_MAX_LEN - pes_header_tail_len(timestamps);
            let (chunk, tail) = rest.split_at(rest.len().min(room));
            let header = pes_header(self.stream_id(track), timestamps, chunk.len());
            self.write_packets(track.pid(), adaptation, &header, chunk, out);
            rest = tail;
            if rest.is_empty() {
                return;
            }
            timestamps = None;
            adaptation = Adaptation::default();
        }
    }

    fn pcr_pid(&self) -> u16 {
        self.pcr_track().map_or(PID_NULL, Track::pid)
    }

    fn pcr_track(&self) -> Option<Track> {
        match self.tracks {
            Tracks { video: Some(_), .. } => Some(Track::Video),
            Tracks { audio: Some(_), .. } => Some(Track::Audio),
            _ => None,
        }
    }

    /// Apply the PCR rule before a PES of `track` decoded at `dts`: writes any PCR-only
    /// packets, and returns the PCR for the PES's first packet when `track` is the PCR track.
    fn clock(&mut self, track: Track, dts: u64, keyframe: bool, out: &mut Vec<u8>) -> Option<Pcr> {
        let pcr_track = self.pcr_track()?;
        let on_pcr_pid = track == pcr_track;
        let pcr = self.next_pcr(dts, on_pcr_pid, keyframe, pcr_track.pid(), out)?;
        if on_pcr_pid {
            return Some(pcr);
        }
        self.write_pcr_only(pcr_track.pid(), pcr, out);
        None
    }

    /// The PCR due before a PES decoded at `dts`, if any; fills gaps over 100 ms with PCR-only
    /// packets on `pcr_pid`.
    fn next_pcr(
        &mut self,
        dts: u64,
        on_pcr_pid: bool,
        keyframe: bool,
        pcr_pid: u16,
        out: &mut Vec<u8>,
    ) -> Option<Pcr> {
        let Some(last) = self.last_pcr else {
            return Some(self.set_pcr(dts, false));
        };
        let elapsed = signed_distance(last, dts);
        if elapsed.unsigned_abs() > PCR_MAX_JUMP {
            return Some(self.set_pcr(dts, true));
        }
        // The PCR never goes backwards (audio may lag video a little).
        let elapsed = u64::try_from(elapsed).ok().filter(|e| *e > 0)?;
        if elapsed > PCR_MAX_GAP {
            let mut base = last;
            for _ in 1..elapsed.div_ceil(PCR_MAX_GAP) {
                base = (base + PCR_MAX_GAP) & TIMESTAMP_MASK;
                let filler = Pcr {
                    base,
                    discontinuity: false,
                };
                self.write_pcr_only(pcr_pid, filler, out);
            }
            return Some(self.set_pcr(dts, false));
        }
        let interval = if on_pcr_pid {
            PCR_INTERVAL
        } else {
            PCR_ONLY_INTERVAL
        };
        let wanted = (keyframe && on_pcr_pid) || self.pcr_due || elapsed >= interval;
        wanted.then(|| self.set_pcr(dts, false))
    }

    fn set_pcr(&mut self, base: u64, discontinuity: bool) -> Pcr {
        self.last_pcr = Some(base);
        self.pcr_due = false;
        Pcr {
            base,
            discontinuity,
        }
    }

    /// A packet with an adaptation field carrying only a PCR (2.4.3.3: adaptation-only
    /// packets repeat the continuity counter of the previous packet).
    fn write_pcr_only(&mut self, pid: u16, pcr: Pcr, out: &mut Vec<u8>) {
        self.packet_header(pid, false, true, false, out);
        let adaptation = Adaptation {
            random_access: false,
            pcr: Some(pcr),
        };
        adaptation.write(PAYLOAD_LEN, out);
    }

    /// One PSI section in one packet: pointer_field 0, section, 0xFF fill.
    fn write_section(&mut self, pid: u16, section: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        self.packet_header(pid, true, false, true, out);
        out.push(0);
        out.extend_from_slice(section);
        out.resize(start + PACKET_LEN, 0xFF);
    }

    /// Split `header` + `data` into packets on `pid`: PUSI and `first` fields on the first,
    /// the last padded with adaptation-field stuffing.
    fn write_packets(
        &mut self,
        pid: u16,
        first: Adaptation,
        header: &[u8],
        data: &[u8],
        out: &mut Vec<u8>,
    ) {
        let (mut header, mut data) = (header, data);
        let mut adaptation = first;
        let mut pusi = true;
        while !header.is_empty() || !data.is_empty() {
            let n = (header.len() + data.len()).min(PAYLOAD_LEN - adaptation.len());
            let stuffed = PAYLOAD_LEN - n;
            self.packet_header(pid, pusi, stuffed > 0, true, out);
            adaptation.write(stuffed, out);
            let from_header = n.min(header.len());
            let (h, rest) = header.split_at(from_header);
            out.extend_from_slice(h);
            header = rest;
            let (d, rest) = data.split_at(n - from_header);
            out.extend_from_slice(d);
            data = rest;
            adaptation = Adaptation::default();
            pusi = false;
        }
    }

    /// The 4-byte packet header; the continuity counter advances only with a payload.
    fn packet_header(
        &mut self,
        pid: u16,
        pusi: bool,
        adaptation: bool,
        payload: bool,
        out: &mut Vec<u8>,
    ) {
        let slot = match pid {
            PID_PAT => 0,
            PID_PMT => 1,
            PID_VIDEO => 2,
            _ => 3,
        };
        let counter = &mut self.cc[slot];
        let cc = if payload {
            let cc = *counter;
            *counter = (cc + 1) & 0x0F;
            cc
        } else {
            counter.wrapping_sub(1) & 0x0F
        };
        out.extend_from_slice(&[
            SYNC_BYTE,
            u8::from(pusi) << 6 | (pid >> 8) as u8 & 0x1F,
            pid as u8,
            u8::from(adaptation) << 5 | u8::from(payload) << 4 | cc,
        ]);
    }
}

#[derive(Debug, Clone, Copy)]
struct PesTimestamps {
    pts: u64,
    dts: u64,
}

/// A PES header (2.4.3.6) for `data_len` payload bytes. `PES_packet_length` is exact when it
/// fits, else 0 (only reached for video).
fn pes_header(stream_id: u8, timestamps: Option<PesTimestamps>, data_len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(&[0, 0, 1, stream_id, 0, 0]);
    match timestamps {
        None => h.extend_from_slice(&[0x80, 0x00, 0x00]),
        Some(t) if t.pts == t.dts => {
            h.extend_from_slice(&[0x80, 0x80, 5]);
            write_timestamp(&mut h, 0x2, t.pts);
        }
        Some(t) => {
            h.extend_from_slice(&[0x80, 0xC0, 10]);
            write_timestamp(&mut h, 0x3, t.pts);
            write_timestamp(&mut h, 0x1, t.dts);
        }
    }
    let len = pes_header_tail_len(timestamps).saturating_add(data_len);
    let len = if len > PES_MAX_LEN { 0 } else { len as u16 };
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h
}

/// Bytes of a PES header after `PES_packet_length`: flags, header length, timestamps.
fn pes_header_tail_len(timestamps: Option<PesTimestamps>) -> usize {
    match timestamps {
        None => 3,
        Some(t) if t.pts == t.dts => 8,
        Some(_) => 13,
    }
}

/// A 33-bit PTS/DTS with its 4-bit prefix and marker bits (2.4.3.7).
fn write_timestamp(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    let ts = ts & TIMESTAMP_MASK;
    out.extend_from_slice(&[
        prefix << 4 | ((ts >> 29) as u8 & 0x0E) | 1,
        (ts >> 22) as u8,
        ((ts >> 14) as u8 & 0xFE) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8 & 0xFE) | 1,
    ]);
}

/// PAT (2.4.4.3): transport_stream_id 1, program 1 on [`PID_PMT`].
fn pat_section() -> Vec<u8> {
    let pmt = PID_PMT.to_be_bytes();
    let section = vec![
        0x00, // table_id
        0xB0,
        0x0D, // section_syntax_indicator, '0', reserved, section_length 13
        0x00,
        0x01, // transport_stream_id
        0xC1, // reserved, version 0, current_next_indicator
        0x00,
        0x00, // section_number, last_section_number
        0x00,
        0x01, // program_number 1
        0xE0 | pmt[0],
        pmt[1],
    ];
    with_crc(section)
}

/// PMT (2.4.4.8) for program 1 declaring the existing tracks; a registration descriptor
/// for the types that need one (AC-3, E-AC-3).
fn pmt_section(tracks: Tracks, version: u8, pcr_pid: u16) -> Vec<u8> {
    let streams = [(tracks.video, PID_VIDEO), (tracks.audio, PID_AUDIO)];
    let streams = streams
        .iter()
        .filter_map(|(t, pid)| Some((t.as_ref()?, *pid)));
    let es_info_len = |t: &StreamType| t.format_identifier().map_or(0, |_| 6);
    let entries: usize = streams.clone().map(|(t, _)| 5 + es_info_len(t)).sum();
    let pcr = pcr_pid.to_be_bytes();
    let mut s = vec![
        0x02, // table_id
        0xB0,
        (13 + entries) as u8, // section_length
        0x00,
        0x01, // program_number
        0xC1 | (version & 0x1F) << 1,
        0x00,
        0x00,
        0xE0 | pcr[0],
        pcr[1],
        0xF0,
        0x00, // program_info_length 0
    ];
    for (stream_type, pid) in streams {
        let pid = pid.to_be_bytes();
        let info = es_info_len(stream_type) as u8;
        s.extend_from_slice(&[*stream_type as u8, 0xE0 | pid[0], pid[1], 0xF0, info]);
        if let Some(id) = stream_type.format_identifier() {
            // registration_descriptor: tag 5, length 4, format_identifier.
            s.extend_from_slice(&[0x05, 4]);
            s.extend_from_slice(id);
        }
    }
    with_crc(s)
}

fn with_crc(mut section: Vec<u8>) -> Vec<u8> {
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

/// CRC-32/MPEG-2 (annex A): polynomial 0x04C11DB7, initial value 0xFFFFFFFF, MSB first, no
/// final xor. Over a whole section including its CRC field, the result is 0.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// One parsed transport stream packet.
    #[derive(Debug, Clone)]
    struct Packet {
        pid: u16,
        pusi: bool,
        cc: u8,
        has_payload: bool,
        /// PCR in 27 MHz units (base * 300 + extension).
        pcr: Option<u64>,
        random_access: bool,
        discontinuity: bool,
        payload: Vec<u8>,
    }

    /// Parse a TS byte stream, checking sync bytes, sizes and adaptation field lengths.
    fn parse(ts: &[u8]) -> Vec<Packet> {
        assert_eq!(ts.len() % PACKET_LEN, 0, "whole packets");
        ts.chunks(PACKET_LEN)
            .map(|p| {
                assert_eq!(p[0], SYNC_BYTE);
                let afc = (p[3] >> 4) & 0x03;
                assert_ne!(afc, 0, "reserved adaptation_field_control");
                let mut pos = 4;
                let (mut flags, mut pcr) = (None, None);
                if afc & 0x02 != 0 {
                    let len = usize::from(p[4]);
                    assert!(len <= if afc == 2 { 183 } else { 182 });
                    let af = p[5..5 + len].to_vec();
                    if let Some(&flags) = af.first() {
                        if flags & 0x10 != 0 {
                            let b: Vec<u64> = af[1..7].iter().map(|&x| u64::from(x)).collect();
                            let base = b[0] << 25 | b[1] << 17 | b[2] << 9 | b[3] << 1 | b[4] >> 7;
                            let ext = (b[4] & 1) << 8 | b[5];
                            assert_eq!(b[4] & 0x7E, 0x7E, "PCR reserved bits");
                            pcr = Some(base * 300 + ext);
                        }
                    }
                    flags = af.first().copied();
                    pos = 5 + len;
                }
                Packet {
                    pid: u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]),
                    pusi: p[1] & 0x40 != 0,
                    cc: p[3] & 0x0F,
                    has_payload: afc & 0x01 != 0,
                    pcr,
                    random_access: flags.is_some_and(|f| f & 0x40 != 0),
                    discontinuity: flags.is_some_and(|f| f & 0x80 != 0),
                    payload: if afc & 0x01 != 0 {
                        p[pos..].to_vec()
                    } else {
                        assert_eq!(pos, PACKET_LEN, "adaptation-only fills the packet");
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    /// Continuity counters advance by one per payload packet and repeat on adaptation-only
    /// packets (2.4.3.3).
    fn check_continuity(packets: &[Packet]) {
        let mut last: HashMap<u16, u8> = HashMap::new();
        for p in packets {
            if let Some(prev) = last.get(&p.pid) {
                let expected = if p.has_payload {
                    (prev + 1) & 0x0F
                } else {
                    *prev
                };
                assert_eq!(p.cc, expected, "cc on PID {:#x}", p.pid);
            }
            last.insert(p.pid, p.cc);
        }
    }

    /// Reassemble the PES packets of `pid`.
    fn pes_of(packets: &[Packet], pid: u16) -> Vec<Vec<u8>> {
        let mut pes: Vec<Vec<u8>> = Vec::new();
        for p in packets.iter().filter(|p| p.pid == pid && p.has_payload) {
            if p.pusi {
                pes.push(Vec::new());
            }
            pes.last_mut()
                .expect("PES starts with PUSI")
                .extend_from_slice(&p.payload);
        }
        pes
    }

    const AV: Tracks = Tracks {
        video: Some(StreamType::H264),
        audio: Some(StreamType::Aac),
    };

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        assert_eq!(crc32_mpeg2(&[]), 0xFFFF_FFFF);
    }

    #[test]
    fn livego_golden_audio_packet() {
        // livego's TestTSEncoder: a 40-byte audio packet at ts 0 is exactly one packet. livego's
        // audio counter starts at 1 and it writes no PCR before audio, so the stream here starts
        // with a video keyframe (carrying the PCR) and the second audio packet (cc 1) is compared.
        let data: Vec<u8> = (0..40).collect();
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        mux.write_pes(Track::Video, 0, 0, true, &[0; 10], &mut out);
        out.clear();
        mux.write_pes(Track::Audio, 0, 0, false, &data, &mut out);
        let mut expected = vec![0x47, 0x41, 0x01, 0x30, 0x81, 0x00];
        expected.resize(4 + 130, 0xFF);
        expected.extend_from_slice(&[
            0x00, 0x00, 0x01, 0xC0, 0x00, 0x30, 0x80, 0x80, 0x05, 0x21, 0x00, 0x01, 0x00, 0x01,
        ]);
        expected.extend_from_slice(&data);
        assert_eq!(out, expected, "cc 0");
        out.clear();
        mux.write_pes(Track::Audio, 0, 0, false, &data, &mut out);
        expected[3] = 0x31;
        assert_eq!(out.len(), PACKET_LEN);
        assert_eq!(out, expected, "livego's bytes, cc 1");
    }

    #[test]
    fn pat_bytes_and_crc() {
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        mux.write_tables(&mut out);
        assert_eq!(out.len(), 2 * PACKET_LEN);
        let pat = &out[..PACKET_LEN];
        assert_eq!(&pat[..5], &[0x47, 0x40, 0x00, 0x10, 0x00]);
        // Same bytes as ffmpeg's default PAT (program 1 on PMT PID 0x1000).
        assert_eq!(
            &pat[5..21],
            &[
                0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00, 0x2A, 0xB1,
                0x04, 0xB2
            ]
        );
        assert_eq!(crc32_mpeg2(&pat[5..21]), 0);
        assert!(pat[21..].iter().all(|&b| b == 0xFF));
        // Counters advance on the next segment's tables.
        out.clear();
        mux.write_tables(&mut out);
        assert_eq!((out[3], out[PACKET_LEN + 3]), (0x11, 0x11));
    }

    /// The PMT section of a freshly muxed table pair.
    fn pmt_of(tracks: Tracks) -> Vec<u8> {
        let mut out = Vec::new();
        TsMuxer::new(tracks).write_tables(&mut out);
        let pmt = &out[PACKET_LEN..];
        assert_eq!(&pmt[..5], &[0x47, 0x50, 0x00, 0x10, 0x00]);
        let len = 3 + usize::from(pmt[7]);
        let section = pmt[5..5 + len].to_vec();
        assert_eq!(crc32_mpeg2(&section), 0, "CRC");
        assert!(pmt[5 + len..].iter().all(|&b| b == 0xFF));
        section
    }

    #[test]
    fn pmt_declares_real_tracks() {
        let head = [
            0x02, 0xB0, 0x17, 0x00, 0x01, 0xC1, 0x00, 0x00, 0xE1, 0x00, 0xF0, 0x00,
        ];
        let av = pmt_of(AV);
        assert_eq!(&av[..12], &head);
        assert_eq!(
            &av[12..22],
            &[0x1B, 0xE1, 0x00, 0xF0, 0x00, 0x0F, 0xE1, 0x01, 0xF0, 0x00]
        );
        // Same bytes as ffmpeg's H.264 + AAC PMT.
        assert_eq!(&av[22..], &[0x2F, 0x44, 0xB9, 0x9B]);

        let audio = pmt_of(Tracks {
            video: None,
            audio: Some(StreamType::Aac),
        });
        assert_eq!(audio.len(), 3 + 18);
        assert_eq!(&audio[2..3], &[0x12]);
        assert_eq!(&audio[8..10], &[0xE1, 0x01], "PCR on the audio PID");
        assert_eq!(&audio[12..17], &[0x0F, 0xE1, 0x01, 0xF0, 0x00]);

        let video = pmt_of(Tracks {
            video: Some(StreamType::H264),
            audio: None,
        });
        assert_eq!(&video[8..10], &[0xE1, 0x00]);
        assert_eq!(&video[12..17], &[0x1B, 0xE1, 0x00, 0xF0, 0x00]);
        assert_eq!(video.len(), 21);

        let mp3 = pmt_of(Tracks {
            video: Some(StreamType::H264),
            audio: Some(StreamType::Mpeg1Audio),
        });
        assert_eq!(mp3[17], 0x03);

        let none = pmt_of(Tracks::default());
        assert_eq!(&none[8..10], &[0xFF, 0xFF], "no PCR PID");
    }

    #[test]
    fn ac3_and_eac3_have_their_atsc_types_descriptors_and_private_stream_1() {
        for (kind, stream_type, id) in [
            (StreamType::Ac3, 0x81, b"AC-3"),
            (StreamType::Eac3, 0x87, b"EAC3"),
        ] {
            let tracks = Tracks {
                video: Some(StreamType::H265),
                audio: Some(kind),
            };
            let pmt = pmt_of(tracks);
            // HEVC entry (5 bytes), then the audio entry with a 6-byte registration
            // descriptor (ATSC A/52 Annex A.4), as FFmpeg writes them.
            assert_eq!(pmt[2], 13 + 5 + 11, "section_length");
            assert_eq!(&pmt[12..17], &[0x24, 0xE1, 0x00, 0xF0, 0x00]);
            assert_eq!(&pmt[17..22], &[stream_type, 0xE1, 0x01, 0xF0, 0x06]);
            assert_eq!(&pmt[22..24], &[0x05, 0x04]);
            assert_eq!(&pmt[24..28], id);
            let mut mux = TsMuxer::new(tracks);
            let mut out = Vec::new();
            mux.write_pes(Track::Audio, 0, 0, false, &[0x0B, 0x77, 1, 2], &mut out);
            let pes = pes_of(&parse(&out), PID_AUDIO);
            assert_eq!(&pes[0][..4], &[0, 0, 1, 0xBD], "private_stream_1");
            out.clear();
            mux.write_pes(Track::Video, 0, 0, true, &[0; 8], &mut out);
            assert_eq!(&pes_of(&parse(&out), PID_VIDEO)[0][..4], &[0, 0, 1, 0xE0]);
        }
    }

    #[test]
    fn set_tracks_bumps_pmt_version() {
        let mut mux = TsMuxer::new(Tracks {
            video: Some(StreamType::H264),
            audio: None,
        });
        mux.set_tracks(AV);
        mux.set_tracks(AV);
        let mut out = Vec::new();
        mux.write_tables(&mut out);
        assert_eq!(out[PACKET_LEN + 10], 0xC3, "version 1");
        assert_eq!(mux.tracks(), AV);
    }

    #[test]
    fn negative_composition_offset() {
        // dts 100 ms, composition -33 ms: pts = 9000 - 2970 = 6030.
        let pts = offset_90k(9000, -33 * 90);
        assert_eq!(pts, 6030);
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        mux.write_pes(Track::Video, pts, 9000, false, &[0xAB; 4], &mut out);
        let packets = parse(&out);
        let pes = &pes_of(&packets, PID_VIDEO)[0];
        assert_eq!(
            pes,
            &[
                0x00, 0x00, 0x01, 0xE0, 0x00, 0x11, 0x80, 0xC0, 0x0A, // PTS+DTS
                0x31, 0x00, 0x01, 0x2F, 0x1D, // PTS 6030, prefix 0011
                0x11, 0x00, 0x01, 0x46, 0x51, // DTS 9000, prefix 0001
                0xAB, 0xAB, 0xAB, 0xAB,
            ]
        );
        // Composition offset pushing PTS below 0 wraps around 2^33.
        assert_eq!(offset_90k(1000, -2000), (1 << 33) - 1000);
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        let mut h = Vec::new();
        write_timestamp(&mut h, 0x2, TIMESTAMP_MASK);
        assert_eq!(h, [0x2F, 0xFF, 0xFF, 0xFF, 0xFF]);
        h.clear();
        write_timestamp(&mut h, 0x2, 1 << 32);
        assert_eq!(h, [0x29, 0x00, 0x01, 0x00, 0x01]);

        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        let dts = (1 << 33) - 1000;
        mux.write_pes(Track::Video, dts, dts, true, &[1], &mut out);
        // Next frame 50 ms later, given unwrapped: the same as 3500.
        let next = dts + 4500;
        mux.write_pes(
            Track::Video,
            offset_90k(next, 3000),
            next,
            false,
            &[2],
            &mut out,
        );
        let packets = parse(&out);
        let pes = pes_of(&packets, PID_VIDEO);
        assert_eq!(
            &pes[1][9..19],
            &[0x31, 0, 0x01, 0x32, 0xC9, 0x11, 0, 0x01, 0x1B, 0x59]
        );
        // The PCR after the wrap is 3500 (40 ms or more passed): still "later".
        let pcrs: Vec<u64> = packets.iter().filter_map(|p| p.pcr).collect();
        assert_eq!(pcrs, [((1 << 33) - 1000) * 300, 3500 * 300]);
    }

    #[test]
    fn big_keyframe_is_split_with_continuity() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        mux.write_tables(&mut out);
        mux.write_pes(Track::Video, 3000, 0, true, &data, &mut out);
        mux.write_pes(Track::Video, 6000, 3000, false, &data[..500], &mut out);
        let packets = parse(&out);
        check_continuity(&packets);
        let video: Vec<&Packet> = packets.iter().filter(|p| p.pid == PID_VIDEO).collect();
        assert_eq!(video.iter().filter(|p| p.pusi).count(), 2);
        assert!(video[0].pusi && video[0].random_access);
        assert_eq!(video[0].pcr, Some(0));
        assert!(video[1..]
            .iter()
            .all(|p| !p.random_access && p.pcr.is_none()));
        let pes = pes_of(&packets, PID_VIDEO);
        assert_eq!(&pes[0][4..6], &[0, 0], "length 0 above 0xFFFF");
        assert_eq!(&pes[0][19..], &data[..]);
        assert_eq!(pes[1].len(), 19 + 500);
        assert_eq!(&pes[1][4..6], &(13u16 + 500).to_be_bytes());
        // Counters wrapped several times and carry on into the next segment.
        out.clear();
        mux.write_tables(&mut out);
        mux.write_pes(Track::Video, 9000, 6000, true, &[0; 5], &mut out);
        let last = video.last().unwrap().cc;
        assert_eq!(parse(&out)[2].cc, (last + 1) & 0x0F);
    }

    #[test]
    fn one_byte_stuffing() {
        // 14-byte PES header + 169 bytes = 183: adaptation field of length 0.
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        mux.write_pes(Track::Video, 0, 0, true, &[0], &mut out);
        out.clear();
        mux.write_pes(Track::Audio, 0, 0, false, &[7; 169], &mut out);
        assert_eq!(&out[..5], &[0x47, 0x41, 0x01, 0x30, 0x00]);
        assert_eq!(&out[5..9], &[0, 0, 1, 0xC0]);
        // 184 bytes: no adaptation field at all; 185: two packets.
        for (len, packets) in [(170, 1), (171, 2)] {
            out.clear();
            mux.write_pes(Track::Audio, 0, 0, false, &vec![7; len], &mut out);
            let parsed = parse(&out);
            assert_eq!(parsed.len(), packets);
            assert_eq!(pes_of(&parsed, PID_AUDIO)[0].len(), 14 + len);
        }
    }

    #[test]
    fn oversized_audio_continues_without_pts() {
        let data = vec![0x55; 70_000];
        let mut mux = TsMuxer::new(Tracks {
            video: None,
            audio: Some(StreamType::Aac),
        });
        let mut out = Vec::new();
        mux.write_pes(Track::Audio, 900, 900, false, &data, &mut out);
        let packets = parse(&out);
        check_continuity(&packets);
        let pes = pes_of(&packets, PID_AUDIO);
        assert_eq!(pes.len(), 2);
        assert_eq!(&pes[0][4..9], &[0xFF, 0xFF, 0x80, 0x80, 0x05]);
        assert_eq!(pes[0].len(), 6 + 0xFFFF);
        assert_eq!(&pes[1][..9], &[0, 0, 1, 0xC0, 0x11, 0x7C, 0x80, 0x00, 0x00]);
        assert_eq!(pes[0].len() - 14 + pes[1].len() - 9, data.len());
        // Only the first PES carries the PCR.
        assert_eq!(packets.iter().filter(|p| p.pcr.is_some()).count(), 1);
    }

    /// Feed frames as an RTMP publisher would (interleaved by millisecond timestamps) and
    /// return the PCRs of each PID in stream order.
    fn mux_av(tracks: Tracks, video_fps: Option<u32>, audio: bool, ms: u64) -> Vec<Packet> {
        let mut frames: Vec<(u64, Track)> = Vec::new();
        if let Some(fps) = video_fps {
            let n = ms * u64::from(fps) / 1000;
            frames.extend((0..n).map(|i| (i * 1000 / u64::from(fps), Track::Video)));
        }
        if audio {
            let n = ms * 44100 / 1024 / 1000;
            frames.extend((0..n).map(|i| (i * 1024 * 1000 / 44100, Track::Audio)));
        }
        frames.sort_by_key(|f| f.0);
        let mut mux = TsMuxer::new(tracks);
        let mut out = Vec::new();
        mux.write_tables(&mut out);
        for (i, (ts_ms, track)) in frames.into_iter().enumerate() {
            let dts = ts_ms * 90;
            let (pts, key, len) = match track {
                Track::Video => (dts + 6000, i == 0, 3000 + i % 700),
                Track::Audio => (dts, false, 370),
            };
            mux.write_pes(track, pts, dts, key, &vec![i as u8; len], &mut out);
        }
        let packets = parse(&out);
        check_continuity(&packets);
        packets
    }

    /// PCRs (27 MHz) per PID in stream order; asserts increasing and at most 100 ms apart.
    fn pcr_spacing(packets: &[Packet]) -> HashMap<u16, Vec<u64>> {
        let mut pcrs: HashMap<u16, Vec<u64>> = HashMap::new();
        for p in packets {
            if let Some(pcr) = p.pcr {
                pcrs.entry(p.pid).or_default().push(pcr);
            }
        }
        for list in pcrs.values() {
            for w in list.windows(2) {
                assert!(w[1] > w[0], "PCR increases: {w:?}");
                assert!(w[1] - w[0] <= PCR_MAX_GAP * 300, "PCR gap {w:?}");
            }
        }
        pcrs
    }

    #[test]
    fn pcr_spacing_video_and_audio() {
        let packets = mux_av(AV, Some(30), true, 2000);
        let pcrs = pcr_spacing(&packets);
        assert_eq!(pcrs.keys().copied().collect::<Vec<_>>(), [PID_VIDEO]);
        let list = &pcrs[&PID_VIDEO];
        assert_eq!(list[0], 0);
        assert!(*list.last().unwrap() >= 1900 * 90 * 300);
        // Carried by the 30 fps video itself: no PCR-only packets needed.
        assert!(packets.iter().all(|p| p.has_payload || p.pid != PID_VIDEO));
        // Audio and video PES all arrive intact.
        assert_eq!(pes_of(&packets, PID_VIDEO).len(), 60);
        assert_eq!(pes_of(&packets, PID_AUDIO).len(), 86);
    }

    #[test]
    fn pcr_spacing_slow_video_gets_pcr_only_packets() {
        // 5 fps video-only: frames 200 ms apart, filled with PCR-only packets.
        let packets = mux_av(
            Tracks {
                video: Some(StreamType::H264),
                audio: None,
            },
            Some(5),
            false,
            2000,
        );
        let pcrs = pcr_spacing(&packets);
        assert!(pcrs[&PID_VIDEO].len() >= 19);
        assert!(packets.iter().any(|p| !p.has_payload && p.pcr.is_some()));
        // 5 fps video with audio: audio PES trigger PCR-only packets on the video PID.
        let packets = mux_av(AV, Some(5), true, 2000);
        let pcrs = pcr_spacing(&packets);
        assert_eq!(pcrs.len(), 1);
        assert!(packets
            .iter()
            .filter(|p| p.pid == PID_AUDIO)
            .all(|p| p.pcr.is_none()));
    }

    #[test]
    fn pcr_spacing_audio_only() {
        let packets = mux_av(
            Tracks {
                video: None,
                audio: Some(StreamType::Aac),
            },
            None,
            true,
            2000,
        );
        let pcrs = pcr_spacing(&packets);
        assert_eq!(pcrs.keys().copied().collect::<Vec<_>>(), [PID_AUDIO]);
        assert!(pcrs[&PID_AUDIO].len() >= 40);
    }

    #[test]
    fn pcr_never_backwards_and_jumps_are_discontinuities() {
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        mux.write_pes(Track::Video, 9000, 9000, true, &[1], &mut out);
        // Audio lagging video: no PCR.
        mux.write_pes(Track::Audio, 8000, 8000, false, &[2], &mut out);
        // A 1-hour jump: one PCR with the discontinuity indicator, no filler flood.
        let later = 9000 + 3600 * 90_000;
        mux.write_pes(Track::Video, later, later, false, &[3], &mut out);
        let packets = parse(&out);
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[0].pcr, Some(9000 * 300));
        assert!(!packets[0].discontinuity && packets[0].random_access);
        assert_eq!(packets[1].pcr, None);
        assert_eq!(packets[2].pcr, Some(later * 300));
        assert!(packets[2].discontinuity);
    }

    #[test]
    fn tables_request_a_pcr_and_no_tracks_means_no_pcr() {
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        mux.write_pes(Track::Video, 0, 0, true, &[1], &mut out);
        mux.write_tables(&mut out);
        // 10 ms later, not a keyframe: a PCR anyway, as the segment's first.
        mux.write_pes(Track::Video, 900, 900, false, &[1], &mut out);
        assert_eq!(parse(&out)[3].pcr, Some(900 * 300));

        let mut mux = TsMuxer::new(Tracks::default());
        out.clear();
        mux.write_pes(Track::Audio, 0, 0, true, &[1], &mut out);
        let packets = parse(&out);
        assert_eq!(packets.len(), 1);
        assert!(packets[0].pcr.is_none() && packets[0].random_access);
    }

    #[test]
    fn random_input_never_panics_and_stays_well_formed() {
        let mut rng = 0x1234_5678_9ABC_DEF1u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut mux = TsMuxer::new(AV);
        let mut out = Vec::new();
        for _ in 0..3000 {
            let r = next();
            let track = if r & 1 == 0 {
                Track::Video
            } else {
                Track::Audio
            };
            let len = (next() % 3000) as usize;
            let (pts, dts) = match r % 5 {
                0 => (next(), next()),
                _ => (r >> 40, (r >> 40).saturating_sub(r >> 60)),
            };
            if r % 97 == 0 {
                mux.write_tables(&mut out);
            }
            mux.write_pes(track, pts, dts, r & 2 == 0, &vec![0; len], &mut out);
        }
        check_continuity(&parse(&out));
    }
}
