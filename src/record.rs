//! Recording streams to FLV files (livego.md §7), sans-IO: what bytes a recording holds and
//! where it goes. `serve::record` does the file I/O.
//!
//! A recording is one publish: `flv_dir/{app}/{room}_{unix}.flv`, the same tags HTTP-FLV
//! sends (spec E.3 framing, `@setDataFrame` already stripped), timestamps starting at 0. The
//! file header's track flags are decided once the first real media frame arrives (headers and
//! metadata are held until then), so an audio-only stream is not announced as video.
//!
//! Fixed relative to livego: room names are validated before publishing (no path traversal,
//! no `/`), a republish in the same second gets a new file instead of overwriting one, and a
//! replaced publisher's recording ends with it.

use crate::hub::Frame;
use crate::media::{flv, MediaKind};
use crate::rtmp::control::msg_type;
use bytes::Bytes;
use std::path::{Path, PathBuf};

/// Frames held at most while waiting for the first media frame to decide the header.
const HOLD_FRAMES: usize = 64;

/// Turns a stream's frames into the bytes of an FLV file.
#[derive(Debug, Default)]
pub struct FlvRecorder {
    held: Vec<Frame>,
    started: bool,
    base: Option<u32>,
}

impl FlvRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `frame`'s bytes (header pieces and the shared payload) to `out`.
    pub fn push(&mut self, frame: &Frame, out: &mut Vec<Bytes>) {
        if self.started {
            self.write(frame, out);
            return;
        }
        self.held.push(frame.clone());
        let media = !frame.header && frame.kind != MediaKind::Data;
        if media || self.held.len() >= HOLD_FRAMES {
            self.start(out);
        }
    }

    /// The stream ended: write anything still held.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        if !self.started && !self.held.is_empty() {
            self.start(out);
        }
    }

    /// Whether the file header has been written.
    pub fn started(&self) -> bool {
        self.started
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        let has = |k| self.held.iter().any(|f| f.kind == k);
        let header = flv::file_header(has(MediaKind::Audio), has(MediaKind::Video));
        out.push(Bytes::copy_from_slice(&header));
        self.started = true;
        for f in std::mem::take(&mut self.held) {
            self.write(&f, out);
        }
    }

    fn write(&mut self, f: &Frame, out: &mut Vec<Bytes>) {
        let base = *self.base.get_or_insert(f.timestamp);
        // A frame stamped before the first one (audio around a rebase) is clamped to 0.
        let ts = f.timestamp.saturating_sub(base);
        let type_id = match f.kind {
            MediaKind::Audio => msg_type::AUDIO,
            MediaKind::Video => msg_type::VIDEO,
            MediaKind::Data => msg_type::DATA_AMF0,
        };
        let (head, trailer) = flv::tag_framing(type_id, ts, f.payload.len());
        let framing = Bytes::from([&head[..], &trailer[..]].concat());
        out.push(framing.slice(..head.len()));
        if !f.payload.is_empty() {
            out.push(f.payload.clone());
        }
        out.push(framing.slice(head.len()..));
    }
}

/// Why a stream cannot be recorded under `flv_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeName(pub String);

/// `dir/{app}/{room}_{unix}.flv`, or `..._{unix}_{n}.flv` for the `n`th file of the same
/// second. `app` and `room` must be plain path segments: anything that could leave `dir`
/// is refused (publishing validates room names already; this is the last line).
pub fn record_path(
    dir: &Path,
    app: &str,
    room: &str,
    unix: u64,
    n: u32,
) -> Result<PathBuf, UnsafeName> {
    for part in [app, room] {
        let bad = part.is_empty()
            || part == "."
            || part == ".."
            || part.chars().any(|c| matches!(c, '/' | '\\' | '\0'));
        if bad {
            return Err(UnsafeName(part.to_owned()));
        }
    }
    let name = match n {
        0 => format!("{room}_{unix}.flv"),
        n => format!("{room}_{unix}_{n}.flv"),
    };
    Ok(dir.join(app).join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::frame;

    fn video(ts: u32, key: bool, header: bool) -> Frame {
        let mut f = frame(MediaKind::Video, ts, Bytes::from(vec![0x17, 1, 0, 0, 0, 9]));
        f.keyframe = key;
        f.header = header;
        f
    }

    fn audio(ts: u32, header: bool) -> Frame {
        let mut f = frame(MediaKind::Audio, ts, Bytes::from(vec![0xaf, 1, 7]));
        f.header = header;
        f
    }

    fn bytes(out: &[Bytes]) -> Vec<u8> {
        out.concat()
    }

    #[test]
    fn the_header_waits_for_media_and_announces_the_tracks_seen() {
        let mut r = FlvRecorder::new();
        let mut out = Vec::new();
        r.push(&video(1000, true, true), &mut out);
        r.push(&audio(1000, true), &mut out);
        assert!(out.is_empty() && !r.started());
        r.push(&video(1000, true, false), &mut out);
        let data = bytes(&out);
        assert_eq!(data[..13], flv::file_header(true, true));
        let tags: Vec<_> = flv::tags(&data, 13).collect();
        assert_eq!(tags.len(), 3);
        assert!(tags.iter().all(|t| t.timestamp == 0), "rebased to 0");
        out.clear();
        r.push(&audio(1023, false), &mut out);
        let tag = flv::tags(&bytes(&out), 0).next().unwrap();
        assert_eq!((tag.type_id, tag.timestamp), (8, 23));
    }

    #[test]
    fn audio_only_streams_announce_audio_only() {
        let mut r = FlvRecorder::new();
        let mut out = Vec::new();
        r.push(&audio(0, true), &mut out);
        r.push(&audio(23, false), &mut out);
        assert_eq!(bytes(&out)[4], 0x04);
    }

    #[test]
    fn finish_writes_what_was_held() {
        let mut r = FlvRecorder::new();
        let mut out = Vec::new();
        r.push(&video(5, true, true), &mut out);
        r.finish(&mut out);
        let data = bytes(&out);
        assert_eq!(data[4], 0x01);
        assert_eq!(flv::tags(&data, 13).count(), 1);
    }

    #[test]
    fn paths_stay_inside_the_directory() {
        let dir = Path::new("/rec");
        assert_eq!(
            record_path(dir, "live", "movie", 1_700_000_000, 0),
            Ok(PathBuf::from("/rec/live/movie_1700000000.flv"))
        );
        assert_eq!(
            record_path(dir, "live", "movie", 7, 2),
            Ok(PathBuf::from("/rec/live/movie_7_2.flv"))
        );
        for (app, room) in [
            ("live", ".."),
            ("..", "x"),
            ("live", "a/b"),
            ("live", ""),
            ("a\\b", "x"),
        ] {
            assert!(record_path(dir, app, room, 1, 0).is_err(), "{app}/{room}");
        }
    }
}
