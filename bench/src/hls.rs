//! HLS pieces: media playlists and an incremental MPEG-TS packet checker.

/// TS packet size.
pub const TS_PACKET: usize = 188;

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    /// `#EXT-X-TARGETDURATION`, seconds.
    pub target_duration: f64,
    /// Sequence number of the first segment.
    pub media_sequence: u64,
    /// (sequence number, URI) of each segment, in order.
    pub segments: Vec<(u64, String)>,
    /// `#EXT-X-ENDLIST` seen.
    pub ended: bool,
}

/// Parses a media playlist.
pub fn parse_playlist(text: &str) -> Result<Playlist, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("playlist does not start with #EXTM3U".into());
    }
    let mut p = Playlist {
        target_duration: 0.0,
        media_sequence: 0,
        segments: Vec::new(),
        ended: false,
    };
    let mut uris = Vec::new();
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = v.parse().map_err(|_| "bad #EXT-X-TARGETDURATION")?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().map_err(|_| "bad #EXT-X-MEDIA-SEQUENCE")?;
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        } else if !line.starts_with('#') {
            uris.push(line.to_owned());
        }
    }
    p.segments = uris
        .into_iter()
        .enumerate()
        .map(|(i, u)| (p.media_sequence + i as u64, u))
        .collect();
    Ok(p)
}

/// Checks a stream of TS packets: sync bytes, and counts PES starts per kind.
#[derive(Debug, Clone)]
pub struct TsChecker {
    carry: [u8; TS_PACKET],
    have: usize,
    /// Packets seen.
    pub packets: u64,
    /// Packets without the 0x47 sync byte.
    pub sync_errors: u64,
    /// PES packets started with a video stream id (0xE0..0xEF): one per video frame.
    pub video_pes: u64,
    /// PES packets started with an audio stream id (0xC0..0xDF).
    pub audio_pes: u64,
}

impl Default for TsChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl TsChecker {
    /// A checker at a packet boundary.
    pub fn new() -> Self {
        Self {
            carry: [0; TS_PACKET],
            have: 0,
            packets: 0,
            sync_errors: 0,
            video_pes: 0,
            audio_pes: 0,
        }
    }

    /// Consumes bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.have > 0 {
            let take = (TS_PACKET - self.have).min(data.len());
            self.carry[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have < TS_PACKET {
                return;
            }
            let packet = self.carry;
            self.packet(&packet);
            self.have = 0;
        }
        let mut packets = data.chunks_exact(TS_PACKET);
        for p in &mut packets {
            self.packet(p);
        }
        let rest = packets.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.have = rest.len();
    }

    /// Ends a segment: a trailing partial packet counts as a sync error. Resets for the next.
    pub fn end_segment(&mut self) {
        if self.have > 0 {
            self.sync_errors += 1;
            self.have = 0;
        }
    }

    fn packet(&mut self, p: &[u8]) {
        self.packets += 1;
        if p[0] != 0x47 {
            self.sync_errors += 1;
            return;
        }
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        if !pusi || afc & 1 == 0 {
            return;
        }
        let start = if afc & 2 != 0 {
            5 + usize::from(p[4])
        } else {
            4
        };
        let Some(h) = p.get(start..start + 4) else {
            return;
        };
        if h[..3] == [0, 0, 1] {
            match h[3] {
                0xe0..=0xef => self.video_pes += 1,
                0xc0..=0xdf => self.audio_pes += 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
                    #EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
                    #EXTINF:3.960,\nmovie/7.ts\n#EXTINF:3.960,\nmovie/8.ts\n";
        let p = parse_playlist(text).unwrap();
        assert_eq!(p.target_duration, 4.0);
        assert_eq!(
            p.segments,
            vec![(7, "movie/7.ts".to_owned()), (8, "movie/8.ts".to_owned())]
        );
        assert!(!p.ended);
        assert!(parse_playlist("#EXT-X-ENDLIST\n").is_err());
        assert!(parse_playlist("#EXTM3U\n#EXT-X-ENDLIST\n").unwrap().ended);
    }

    fn packet(pusi: bool, adaptation: Option<u8>, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x47, if pusi { 0x41 } else { 0x01 }, 0x00];
        match adaptation {
            Some(len) => {
                p.push(0x30);
                p.push(len);
                p.extend(std::iter::repeat_n(0xff, usize::from(len)));
            }
            None => p.push(0x10),
        }
        p.extend_from_slice(payload);
        p.resize(TS_PACKET, 0xff);
        p
    }

    #[test]
    fn ts_packets_across_splits() {
        let mut seg = Vec::new();
        seg.extend(packet(true, None, &[0, 0, 1, 0xe0]));
        seg.extend(packet(false, None, &[0, 0, 1, 0xe0]));
        seg.extend(packet(true, Some(7), &[0, 0, 1, 0xc0]));
        seg.extend(packet(true, None, &[0, 0, 1, 0xbd]));
        for cut in [0, 1, 100, 188, 200, seg.len()] {
            let mut c = TsChecker::new();
            c.feed(&seg[..cut]);
            c.feed(&seg[cut..]);
            c.end_segment();
            assert_eq!(
                (c.packets, c.sync_errors, c.video_pes, c.audio_pes),
                (4, 0, 1, 1),
                "{cut}"
            );
        }
        let mut c = TsChecker::new();
        seg[188] = 0x46;
        c.feed(&seg[..seg.len() - 1]);
        c.end_segment();
        assert_eq!(c.sync_errors, 2);
    }
}
