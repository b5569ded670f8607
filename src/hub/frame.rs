//! Frames: one media message as it travels from a publisher to players.

use crate::media::{self, MediaKind};
use crate::rtmp::chunk;
use bytes::Bytes;
#[cfg(test)]
use bytes::BytesMut;
use std::cell::OnceCell;

/// One audio, video or data message of a stream. `Send`: it crosses shards as is, and its
/// payload is a refcounted [`Bytes`], never copied per player.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: MediaKind,
    /// Output timestamp in milliseconds (rebased by the home shard across publishers).
    pub timestamp: u32,
    pub payload: Bytes,
    /// A player may start here (a video keyframe; any audio frame of an audio-only stream).
    pub keyframe: bool,
    /// Decoder configuration or `onMetaData`: cached apart from the GOP and never skipped.
    pub header: bool,
    /// Order of the frame in its stream, assigned by the home shard; 0 = not yet assigned.
    pub seq: u64,
}

impl Frame {
    /// Classify a message from a publisher. Data messages have `@setDataFrame` stripped.
    pub fn from_message(kind: MediaKind, timestamp: u32, payload: Bytes) -> Frame {
        let (payload, keyframe, header) = match kind {
            MediaKind::Video => {
                let info = media::video_info(&payload);
                (payload, info.keyframe, info.sequence_header)
            }
            MediaKind::Audio => {
                let header = media::audio_is_sequence_header(&payload);
                (payload, false, header)
            }
            MediaKind::Data => {
                let body = media::strip_set_data_frame(&payload);
                let header = media::is_metadata(&body);
                (body, false, header)
            }
        };
        Frame {
            kind,
            timestamp,
            payload,
            keyframe,
            header,
            seq: 0,
        }
    }

    /// Bytes this frame holds (for queue and cache bounds).
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

/// RTMP chunk stream ids used for media sent to players.
pub const CSID_AUDIO: u32 = 4;
pub const CSID_DATA: u32 = 5;
pub const CSID_VIDEO: u32 = 6;

/// A frame as held on one shard: the frame plus its wire forms, made once per shard and
/// shared by every local player (nginx-rtmp chunks a message once into shared buffers). A
/// wire form is a list of pieces: small headers plus slices of the payload, so it costs a few
/// dozen bytes per frame, not a copy of the payload (the GOP cache holds every frame's forms).
#[derive(Debug)]
pub struct LocalFrame {
    pub frame: Frame,
    rtmp: OnceCell<(u32, u32, Box<[Bytes]>)>,
    flv: OnceCell<[Bytes; 3]>,
}

impl LocalFrame {
    pub fn new(frame: Frame) -> Self {
        LocalFrame {
            frame,
            rtmp: OnceCell::new(),
            flv: OnceCell::new(),
        }
    }

    /// Append the frame as an FLV tag (header, body, PreviousTagSize) to `out`.
    pub fn flv_tag(&self, out: &mut Vec<Bytes>) {
        let pieces = self.flv.get_or_init(|| {
            let f = &self.frame;
            let (header, trailer) =
                crate::media::flv::tag_framing(self.type_id(), f.timestamp, f.payload.len());
            let framing = Bytes::from([&header[..], &trailer[..]].concat());
            [framing.slice(..11), f.payload.clone(), framing.slice(11..)]
        });
        out.extend(pieces.iter().filter(|p| !p.is_empty()).cloned());
    }

    /// The RTMP message type (= FLV tag type) of the frame.
    fn type_id(&self) -> u8 {
        use crate::rtmp::control::msg_type;
        match self.frame.kind {
            MediaKind::Audio => msg_type::AUDIO,
            MediaKind::Video => msg_type::VIDEO,
            MediaKind::Data => msg_type::DATA_AMF0,
        }
    }

    /// Append the frame as a complete RTMP chunked message for `chunk_size` and message stream
    /// id `stream_id` to `out`. The first encoding is kept; players with the same parameters
    /// (all of them in practice) share it.
    pub fn rtmp_chunks(&self, chunk_size: u32, stream_id: u32, out: &mut Vec<Bytes>) {
        let cached = self.rtmp.get_or_init(|| {
            let pieces = self.encode_rtmp(chunk_size, stream_id);
            (chunk_size, stream_id, pieces.into_boxed_slice())
        });
        if cached.0 == chunk_size && cached.1 == stream_id {
            out.extend(cached.2.iter().cloned());
        } else {
            out.extend(self.encode_rtmp(chunk_size, stream_id));
        }
    }

    fn encode_rtmp(&self, chunk_size: u32, stream_id: u32) -> Vec<Bytes> {
        let f = &self.frame;
        let csid = match f.kind {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        };
        chunk::message_pieces(
            chunk_size,
            csid,
            f.timestamp,
            self.type_id(),
            stream_id,
            &f.payload,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: MediaKind, timestamp: u32, len: usize) -> LocalFrame {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        LocalFrame::new(Frame::from_message(kind, timestamp, Bytes::from(payload)))
    }

    #[test]
    fn flv_tag_pieces_are_one_tag() {
        for len in [0, 1, 300] {
            let f = frame(MediaKind::Audio, 0x0123_4567, len);
            let mut pieces = Vec::new();
            f.flv_tag(&mut pieces);
            let mut want = Vec::new();
            crate::media::flv::write_tag(&mut want, 8, 0x0123_4567, &f.frame.payload);
            assert_eq!(pieces.concat(), want, "{len}");
        }
    }

    #[test]
    fn rtmp_pieces_are_the_chunked_message_and_shared() {
        let f = frame(MediaKind::Video, 40, 10_000);
        let mut want = BytesMut::new();
        chunk::encode_message(&mut want, 4096, CSID_VIDEO, 40, 9, 1, &f.frame.payload);
        let (mut a, mut b, mut other) = (Vec::new(), Vec::new(), Vec::new());
        f.rtmp_chunks(4096, 1, &mut a);
        f.rtmp_chunks(4096, 1, &mut b);
        f.rtmp_chunks(128, 1, &mut other);
        assert_eq!(a.concat(), want[..]);
        assert_eq!(a, b);
        assert_eq!(a[1].as_ptr(), b[1].as_ptr(), "the same bytes, not a copy");
        assert_eq!(
            a[1].as_ptr(),
            f.frame.payload.as_ptr(),
            "payload slices, not a copy"
        );
        assert_eq!(
            other.concat().len(),
            chunk::encoded_len(128, CSID_VIDEO, 40, 10_000)
        );
    }
}
