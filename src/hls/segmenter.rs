//! One stream's HLS segmenter: FLV frames in, MPEG-TS segments and a playlist out.
//!
//! Cut rule: a segment ends at the first video keyframe once `fragment` has passed since its
//! start (every segment starts on a keyframe with PAT/PMT); streams without video are cut by
//! duration at any audio frame. A segment's duration is the distance between its first
//! timestamp and the next segment's, so the playlist matches the content.

use crate::hub::Frame;
use crate::media::aac::AacConfig;
use crate::media::avc::{self, AvcConfig};
use crate::media::ertmp::{self, AudioPacket, VideoPacket};
use crate::media::hevc::{self, HevcConfig};
use crate::media::ts::{self, StreamType, Track, Tracks, TsMuxer};
use crate::media::Codec;
use crate::media::{mpa, MediaKind};
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt::Write as _;

/// Segmenting and playlist parameters.
#[derive(Debug, Clone)]
pub struct HlsConfig {
    /// Target segment duration, ms.
    pub fragment_ms: u64,
    /// Segments listed in the playlist.
    pub window: usize,
    /// Segments kept fetchable beyond the window.
    pub grace: usize,
}

/// A finished segment.
#[derive(Debug, Clone)]
pub struct Segment {
    pub seq: u64,
    pub duration_ms: u64,
    pub data: Bytes,
    /// The first segment after a publisher change (`#EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
}

struct Open {
    start_dts: u64,
    last_dts: u64,
    frames: u64,
    buf: Vec<u8>,
    discontinuity: bool,
}

/// Video decoder configuration of the codecs MPEG-TS carries here.
#[derive(Debug, Clone)]
enum VideoConfig {
    Avc(AvcConfig),
    Hevc(HevcConfig),
}

impl VideoConfig {
    fn stream_type(&self) -> StreamType {
        match self {
            VideoConfig::Avc(_) => StreamType::H264,
            VideoConfig::Hevc(_) => StreamType::H265,
        }
    }
}

/// The segmenter of one stream.
pub struct Segmenter {
    cfg: HlsConfig,
    room: String,
    muxer: Option<TsMuxer>,
    avc: Option<VideoConfig>,
    aac: Option<AacConfig>,
    /// The stream type of audio whose frames go into PES as they come (MP3, AC-3, E-AC-3),
    /// known from its first frame.
    passthrough: Option<StreamType>,
    open: Option<Open>,
    done: VecDeque<Segment>,
    /// Discontinuities carried by segments no longer held (for DISCONTINUITY-SEQUENCE).
    dropped_discontinuities: u64,
    next_seq: u64,
    /// `#EXT-X-TARGETDURATION` (s): raised by a longer segment, never lowered (see `close`).
    target_secs: u64,
    discontinuity_next: bool,
    ended: bool,
    /// Codecs HLS cannot carry, already reported.
    reported: Vec<(&'static str, Codec)>,
    scratch: Vec<u8>,
}

/// `v` without spare capacity (one copy per segment, when it had any).
fn shrunk(mut v: Vec<u8>) -> Vec<u8> {
    v.shrink_to_fit();
    v
}

/// Segment-duration jitter that does not raise the target duration (see `Segmenter::close`).
const TARGET_SLACK_MS: u64 = 100;

impl Segmenter {
    /// A segmenter for the stream `room` (segment URIs are `room/<seq>.ts`, relative to the
    /// playlist `app/room.m3u8`).
    pub fn new(cfg: HlsConfig, room: &str) -> Self {
        Segmenter {
            cfg,
            room: room.to_string(),
            muxer: None,
            avc: None,
            aac: None,
            passthrough: None,
            open: None,
            done: VecDeque::new(),
            dropped_discontinuities: 0,
            next_seq: 0,
            target_secs: 1,
            discontinuity_next: false,
            ended: false,
            reported: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// A (new) publisher starts: close what is open; if segments exist, the next one follows a
    /// discontinuity. Codec configuration comes anew from the new publisher.
    pub fn restart(&mut self) {
        self.close(None);
        self.discontinuity_next = !self.done.is_empty();
        self.ended = false;
        self.avc = None;
        self.aac = None;
        self.passthrough = None;
        self.muxer = None;
    }

    /// The publisher ended: close the open segment; `endlist` marks the playlist finished.
    pub fn finish(&mut self, endlist: bool) {
        self.close(None);
        self.ended = endlist;
    }

    /// Take in one frame; true when a segment was completed.
    pub fn push(&mut self, f: &Frame) -> bool {
        let dts = u64::from(f.timestamp) * 90;
        match f.kind {
            MediaKind::Video => self.push_video(f, dts),
            MediaKind::Audio => self.push_audio(f, dts),
            MediaKind::Data => false,
        }
    }

    fn push_video(&mut self, f: &Frame, dts: u64) -> bool {
        let Ok(tag) = ertmp::parse_video(&f.payload) else {
            return false;
        };
        if tag.multitrack || tag.packet == VideoPacket::Command {
            // Extra tracks (RTMP and FLV outputs carry them, HLS does not) and command frames
            // (no picture): nothing for TS, and no codec to judge.
            return false;
        }
        if !matches!(tag.codec, Codec::H264 | Codec::Hevc) {
            self.report("video", tag.codec);
            return false;
        }
        match tag.packet {
            VideoPacket::SequenceStart => {
                self.avc = match tag.codec {
                    Codec::Hevc => HevcConfig::parse(tag.data).ok().map(VideoConfig::Hevc),
                    _ => AvcConfig::parse(tag.data).ok().map(VideoConfig::Avc),
                };
                return false;
            }
            VideoPacket::CodedFrames => {}
            _ => return false,
        }
        let keyframe = tag.frame_type == 1;
        match (&self.avc, tag.codec) {
            (Some(VideoConfig::Avc(_)), Codec::H264)
            | (Some(VideoConfig::Hevc(_)), Codec::Hevc) => {}
            _ => return false, // no (matching) configuration yet
        }
        let mut cut = false;
        if keyframe && self.due(dts) {
            cut = self.close(Some(dts));
            self.start(dts);
        }
        if self.open.is_none() {
            return cut; // wait for the first keyframe
        }
        self.scratch.clear();
        let converted = match &self.avc {
            Some(VideoConfig::Avc(cfg)) => avc::to_annex_b(tag.data, cfg, &mut self.scratch),
            Some(VideoConfig::Hevc(cfg)) => hevc::to_annex_b(tag.data, cfg, &mut self.scratch),
            None => return cut,
        };
        if converted.is_err() {
            return cut;
        }
        let pts = ts::offset_90k(dts, i64::from(tag.composition_ms) * 90);
        self.write(Track::Video, pts, dts, keyframe);
        cut
    }

    fn push_audio(&mut self, f: &Frame, dts: u64) -> bool {
        let Ok(tag) = ertmp::parse_audio(&f.payload) else {
            return false;
        };
        if tag.multitrack {
            return false;
        }
        self.scratch.clear();
        match tag.codec {
            Codec::Aac => match tag.packet {
                AudioPacket::SequenceStart => {
                    self.aac = AacConfig::parse(tag.data).ok();
                    return false;
                }
                AudioPacket::CodedFrames => {
                    let Some(cfg) = &self.aac else {
                        return false;
                    };
                    let Ok(header) = cfg.adts_header(tag.data.len()) else {
                        return false;
                    };
                    self.scratch.extend_from_slice(&header);
                    self.scratch.extend_from_slice(tag.data);
                }
                _ => return false,
            },
            Codec::Mp3 => {
                if tag.packet != AudioPacket::CodedFrames {
                    return false;
                }
                if self.passthrough.is_none() {
                    self.passthrough = mpa::MpaHeader::parse(tag.data)
                        .ok()
                        .map(|h| h.stream_type());
                }
                self.scratch.extend_from_slice(tag.data);
            }
            // E-RTMP `ac-3`/`ec-3` coded frames are whole syncframes (ATSC A/52 5.3), which
            // MPEG-TS carries as they are (A/52 Annex A, stream types 0x81 and 0x87).
            Codec::Ac3 | Codec::Eac3 => {
                const SYNCWORD: [u8; 2] = [0x0B, 0x77];
                if tag.packet != AudioPacket::CodedFrames || !tag.data.starts_with(&SYNCWORD) {
                    return false;
                }
                if self.passthrough.is_none() {
                    self.passthrough = Some(match tag.codec {
                        Codec::Ac3 => StreamType::Ac3,
                        _ => StreamType::Eac3,
                    });
                }
                self.scratch.extend_from_slice(tag.data);
            }
            other => {
                self.report("audio", other);
                return false;
            }
        }
        let mut cut = false;
        // Without video, audio decides where segments start and end.
        if self.avc.is_none() && self.due(dts) {
            cut = self.close(Some(dts));
            self.start(dts);
        }
        if self.open.is_some() {
            self.write(Track::Audio, dts, dts, false);
        }
        cut
    }

    /// Whether a segment should start at `dts`: none is open, or the open one is long enough.
    fn due(&self, dts: u64) -> bool {
        match &self.open {
            None => true,
            Some(o) => dts.saturating_sub(o.start_dts) >= self.cfg.fragment_ms * 90,
        }
    }

    fn tracks(&self) -> Tracks {
        let audio = if self.aac.is_some() {
            Some(StreamType::Aac)
        } else {
            self.passthrough
        };
        Tracks {
            video: self.avc.as_ref().map(VideoConfig::stream_type),
            audio,
        }
    }

    fn start(&mut self, dts: u64) {
        let tracks = self.tracks();
        let muxer = match self.muxer.take() {
            Some(m) if m.tracks() == tracks => m,
            _ => TsMuxer::new(tracks),
        };
        let mut buf = Vec::with_capacity(256 * 1024);
        let mut muxer = muxer;
        muxer.write_tables(&mut buf);
        self.muxer = Some(muxer);
        self.open = Some(Open {
            start_dts: dts,
            last_dts: dts,
            frames: 0,
            buf,
            discontinuity: std::mem::take(&mut self.discontinuity_next),
        });
    }

    fn write(&mut self, track: Track, pts: u64, dts: u64, keyframe: bool) {
        let (Some(open), Some(muxer)) = (self.open.as_mut(), self.muxer.as_mut()) else {
            return;
        };
        muxer.write_pes(track, pts, dts, keyframe, &self.scratch, &mut open.buf);
        open.last_dts = open.last_dts.max(dts);
        open.frames += 1;
    }

    /// Close the open segment, ending at `next_start` (or after its last frame); true if one
    /// was closed.
    fn close(&mut self, next_start: Option<u64>) -> bool {
        let Some(open) = self.open.take() else {
            return false;
        };
        let span = open.last_dts - open.start_dts;
        let end = next_start.unwrap_or(open.last_dts + span / open.frames.max(1));
        let duration_ms = end.saturating_sub(open.start_dts).div_ceil(90).max(1);
        // RFC 8216 §6.2.1: the target duration MUST NOT change, and §4.3.3.1: every EXTINF,
        // rounded to the nearest second, is at most the target. Keep the rounded-up maximum of
        // every segment so far (not of the window, which would let it fall back), with 100 ms
        // of slack so timestamp jitter (a 4.016 s segment of 4 s GOPs) does not bump it.
        self.target_secs = self
            .target_secs
            .max(duration_ms.saturating_sub(TARGET_SLACK_MS).div_ceil(1000));
        self.done.push_back(Segment {
            seq: self.next_seq,
            duration_ms,
            // The buffer grew by doubling: without this, `Bytes::from` would keep up to twice
            // the segment's size alive for as long as the segment is served.
            data: Bytes::from(shrunk(open.buf)),
            discontinuity: open.discontinuity,
        });
        self.next_seq += 1;
        while self.done.len() > self.cfg.window + self.cfg.grace {
            if self.done.pop_front().is_some_and(|s| s.discontinuity) {
                self.dropped_discontinuities += 1;
            }
        }
        true
    }

    /// Log once per stream (and publisher) that a track's codec cannot go into MPEG-TS; the
    /// other track and every other output keep working.
    fn report(&mut self, track: &'static str, codec: Codec) {
        // Called per frame of such a track: compare, allocate nothing.
        let what = (track, codec);
        if !self.reported.contains(&what) {
            tracing::warn!(
                stream = %self.room,
                track,
                codec = codec.name(),
                "{track} codec {} not available over HLS; HLS carries the other track only",
                codec.name()
            );
            self.reported.push(what);
        }
    }

    /// Segments in the playlist window.
    fn window(&self) -> impl Iterator<Item = &Segment> {
        let skip = self.done.len().saturating_sub(self.cfg.window);
        self.done.iter().skip(skip)
    }

    /// The playlist (RFC 8216): the window, discontinuities, and ENDLIST when finished.
    pub fn playlist(&self) -> String {
        let target = self.target_secs;
        let first = self.window().next().map_or(self.next_seq, |s| s.seq);
        let disc_before = self.dropped_discontinuities
            + self
                .done
                .iter()
                .take_while(|s| s.seq < first)
                .filter(|s| s.discontinuity)
                .count() as u64;
        let mut out = String::new();
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n\
             #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-DISCONTINUITY-SEQUENCE:{disc_before}\n"
        );
        for s in self.window() {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = write!(
                out,
                "#EXTINF:{}.{:03},\n{}/{}.ts\n",
                s.duration_ms / 1000,
                s.duration_ms % 1000,
                self.room,
                s.seq
            );
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }

    /// The immutable view HTTP requests read.
    pub fn view(&self) -> super::HlsView {
        super::HlsView {
            playlist: Bytes::from(self.playlist()),
            segments: self.done.iter().map(|s| (s.seq, s.data.clone())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(window: usize, grace: usize) -> HlsConfig {
        HlsConfig {
            fragment_ms: 3000,
            window,
            grace,
        }
    }

    fn avc_header() -> Frame {
        let (sps, pps) = (
            [0x67u8, 0x64, 0, 0x1f, 0xac, 0xd9],
            [0x68u8, 0xeb, 0xe3, 0xcb],
        );
        let mut body = vec![
            0x17,
            0,
            0,
            0,
            0,
            1,
            0x64,
            0,
            0x1f,
            0xff,
            0xe1,
            0,
            sps.len() as u8,
        ];
        body.extend_from_slice(&sps);
        body.extend_from_slice(&[1, 0, pps.len() as u8]);
        body.extend_from_slice(&pps);
        Frame::from_message(MediaKind::Video, 0, Bytes::from(body))
    }

    fn video(ts: u32, key: bool) -> Frame {
        let nal: &[u8] = if key {
            &[0x65, 0x88, 0x84]
        } else {
            &[0x41, 0x9a, 0x02]
        };
        let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        body.extend_from_slice(nal);
        Frame::from_message(MediaKind::Video, ts, Bytes::from(body))
    }

    fn aac(ts: u32, header: bool) -> Frame {
        let body: &[u8] = if header {
            &[0xaf, 0, 0x12, 0x10]
        } else {
            &[0xaf, 1, 0x21, 0x10, 0x05]
        };
        Frame::from_message(MediaKind::Audio, ts, Bytes::copy_from_slice(body))
    }

    /// `seconds` of 30 fps video with a keyframe every 30 frames, from `ts0`.
    fn feed_video(s: &mut Segmenter, ts0: u32, seconds: u32) -> usize {
        let mut cuts = 0;
        s.push(&avc_header());
        for i in 0..seconds * 30 {
            cuts += usize::from(s.push(&video(ts0 + i * 33, i % 30 == 0)));
        }
        cuts
    }

    #[test]
    fn the_target_duration_never_changes_for_jitter_nor_falls_back() {
        let mut s = Segmenter::new(cfg(2, 0), "movie");
        s.push(&avc_header());
        // Keyframes every 4 s, one GOP 16 ms long, then a 6 s GOP, then 4 s ones again.
        let keys = [0, 4000, 8016, 12016, 18016, 22016, 26016, 30016];
        let mut t = 0;
        let mut p = String::new();
        for pair in keys.windows(2) {
            while t < pair[1] {
                s.push(&video(t, t == pair[0]));
                t = (t + 33).min(pair[1]);
            }
            if pair[1] == 18016 {
                p = s.playlist(); // before the 6 s segment is closed
            }
        }
        assert!(p.contains("#EXTINF:4.016,"), "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:4\n"), "{p}");
        s.push(&video(t, true));
        let target = |p: &str| {
            p.lines()
                .find(|l| l.starts_with("#EXT-X-TARGETDURATION"))
                .map(str::to_owned)
        };
        let p = s.playlist();
        assert_eq!(
            target(&p).as_deref(),
            Some("#EXT-X-TARGETDURATION:6"),
            "{p}"
        );
        assert!(
            !p.contains("#EXTINF:6"),
            "the 6 s segment left the window: {p}"
        );
    }

    #[test]
    fn cuts_at_the_first_keyframe_after_the_fragment() {
        let mut s = Segmenter::new(cfg(6, 0), "movie");
        assert_eq!(feed_video(&mut s, 0, 10), 2);
        // Keyframes every 990 ms: the first one at or after 3000 ms is 3960.
        let p = s.playlist();
        assert!(p.contains("#EXT-X-TARGETDURATION:4\n"), "{p}");
        assert!(
            p.contains("#EXTINF:3.960,\nmovie/0.ts\n#EXTINF:3.960,\nmovie/1.ts\n"),
            "{p}"
        );
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
        assert!(!p.contains("ENDLIST"));
        let view = s.view();
        let seg = view.segment(0).unwrap();
        assert_eq!(seg.len() % 188, 0);
        assert_eq!(
            &seg[..3],
            &[0x47, 0x40, 0x00],
            "a segment starts with the PAT"
        );
    }

    #[test]
    fn window_grace_and_media_sequence() {
        let mut s = Segmenter::new(cfg(2, 1), "m");
        feed_video(&mut s, 0, 21); // cuts at 3.96 s intervals: 5 segments
        let p = s.playlist();
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{p}");
        assert_eq!(p.matches("#EXTINF").count(), 2);
        let held: Vec<u64> = s.view().segments.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(held, vec![2, 3, 4], "window plus one grace segment");
    }

    #[test]
    fn republish_is_a_discontinuity_and_finish_ends_the_list() {
        let mut s = Segmenter::new(cfg(10, 0), "m");
        feed_video(&mut s, 0, 5);
        s.restart();
        feed_video(&mut s, 5000, 5);
        s.finish(true);
        let p = s.playlist();
        assert_eq!(p.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{p}");
        assert!(p.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
        assert!(p.ends_with("#EXT-X-ENDLIST\n"), "{p}");
        // The discontinuity sits right before the first segment of the second publisher.
        let before = p.split("#EXT-X-DISCONTINUITY\n").next().unwrap();
        assert_eq!(before.matches("#EXTINF").count(), 2);
    }

    #[test]
    fn audio_only_streams_are_cut_by_duration() {
        let mut s = Segmenter::new(cfg(6, 0), "radio");
        s.push(&aac(0, true));
        let mut cuts = 0;
        for i in 0..300u32 {
            cuts += usize::from(s.push(&aac(i * 23, false)));
        }
        // 300 frames of 23 ms = 6.9 s: cuts at 3.013 and 6.026 s.
        assert_eq!(cuts, 2);
        let p = s.playlist();
        assert!(p.contains("#EXTINF:3.013,\nradio/0.ts"), "{p}");
    }

    #[test]
    fn video_waits_for_a_keyframe_and_unsupported_codecs_are_skipped() {
        let mut s = Segmenter::new(cfg(6, 0), "m");
        s.push(&avc_header());
        assert!(!s.push(&video(0, false)));
        assert!(s.view().segments.is_empty());
        // VP6 (codec 4) is not carried: nothing happens, nothing panics.
        let vp6 = Frame::from_message(MediaKind::Video, 0, Bytes::from_static(&[0x14, 0, 0]));
        assert!(!s.push(&vp6));
        let garbage = Frame::from_message(MediaKind::Video, 0, Bytes::from_static(&[0x17]));
        assert!(!s.push(&garbage));
    }

    /// An E-RTMP HEVC SequenceStart (`hvc1`) with a minimal record: VPS, SPS, PPS arrays.
    fn hevc_header() -> Frame {
        let mut body = b"\x90hvc1".to_vec();
        body.extend_from_slice(&[1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x3c, 0xf0, 0]);
        body.extend_from_slice(&[0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 3]);
        for nal in [
            &[0x40u8, 0x01, 0x0c][..],
            &[0x42, 0x01, 0x01],
            &[0x44, 0x01, 0xc0],
        ] {
            body.extend_from_slice(&[0x20 | (nal[0] >> 1), 0, 1, 0, nal.len() as u8]);
            body.extend_from_slice(nal);
        }
        Frame::from_message(MediaKind::Video, 0, Bytes::from(body))
    }

    /// An E-RTMP HEVC coded frame: IDR_N_LP (key) or TRAIL_R, composition time 0.
    fn hevc_video(ts: u32, key: bool) -> Frame {
        let nal: &[u8] = if key {
            &[0x28, 0x01, 0xaf]
        } else {
            &[0x02, 0x01, 0xd0]
        };
        let mut body = vec![if key { 0x91 } else { 0xa1 }];
        body.extend_from_slice(b"hvc1\0\0\0");
        body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        body.extend_from_slice(nal);
        Frame::from_message(MediaKind::Video, ts, Bytes::from(body))
    }

    #[test]
    fn enhanced_rtmp_hevc_goes_into_ts_as_stream_type_0x24_with_opus_left_out() {
        let mut s = Segmenter::new(cfg(6, 0), "m");
        s.push(&hevc_header());
        let opus_head = Frame::from_message(
            MediaKind::Audio,
            0,
            Bytes::from_static(b"\x90OpusOpusHead\x01\x01"),
        );
        s.push(&opus_head);
        for i in 0..120u32 {
            s.push(&hevc_video(i * 33, i % 30 == 0));
            let opus = Frame::from_message(
                MediaKind::Audio,
                i * 33,
                Bytes::from_static(b"\x91Opus\xf8\xff"),
            );
            s.push(&opus);
        }
        s.finish(true);
        let view = s.view();
        assert!(!view.segments.is_empty());
        let ts = &view.segments[0].1;
        // PMT (second packet): one stream, HEVC (0x24) on the video PID; no audio stream.
        let pmt = &ts[188..376];
        assert_eq!(pmt[5], 0x02, "PMT table id");
        let section_len = usize::from(pmt[6] & 0x0f) << 8 | usize::from(pmt[7]);
        assert_eq!(section_len, 13 + 5, "one elementary stream");
        assert_eq!(pmt[17], 0x24, "HEVC stream type");
        // The first PES: AUD, then VPS/SPS/PPS, then the IDR slice.
        let want: Vec<u8> = [
            &[0, 0, 0, 1, 0x46, 0x01, 0x50][..],
            &[0, 0, 0, 1, 0x40, 0x01, 0x0c],
            &[0, 0, 0, 1, 0x42, 0x01, 0x01],
            &[0, 0, 0, 1, 0x44, 0x01, 0xc0],
            &[0, 0, 0, 1, 0x28, 0x01, 0xaf],
        ]
        .concat();
        assert!(
            ts.windows(want.len()).any(|w| w == want.as_slice()),
            "Annex-B IRAP access unit in the segment"
        );
        // Legacy codec id 12 HEVC is carried the same way.
        let mut legacy = Segmenter::new(cfg(6, 0), "l");
        let mut header = vec![0x1c, 0, 0, 0, 0];
        header.extend_from_slice(&hevc_header().payload[5..]);
        legacy.push(&Frame::from_message(
            MediaKind::Video,
            0,
            Bytes::from(header),
        ));
        let mut key = vec![0x1c, 1, 0, 0, 0];
        key.extend_from_slice(&hevc_video(0, true).payload[8..]);
        legacy.push(&Frame::from_message(MediaKind::Video, 0, Bytes::from(key)));
        legacy.finish(true);
        let seg = &legacy.view().segments[0].1;
        assert_eq!(seg[188 + 17], 0x24);
        assert!(seg.windows(want.len()).any(|w| w == want.as_slice()));
    }
}
