//! Frames: one media message as it travels from a publisher to players.

use crate::media::{self, MediaKind};
use crate::rtmp::chunk;
use bytes::{Bytes, BytesMut};
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

/// A frame as held on one shard: the frame plus its encodings, made once per shard and
/// shared by every local player (nginx-rtmp chunks a message once into shared buffers).
#[derive(Debug)]
pub struct LocalFrame {
    pub frame: Frame,
    rtmp: OnceCell<(u32, u32, Bytes)>,
    flv: OnceCell<Bytes>,
}

impl LocalFrame {
    pub fn new(frame: Frame) -> Self {
        LocalFrame {
            frame,
            rtmp: OnceCell::new(),
            flv: OnceCell::new(),
        }
    }

    /// The frame as an FLV tag (header, body, PreviousTagSize), made once and shared by every
    /// HTTP-FLV viewer on the shard.
    pub fn flv_tag(&self) -> Bytes {
        self.flv
            .get_or_init(|| {
                let f = &self.frame;
                let mut out = Vec::with_capacity(f.payload.len() + 15);
                crate::media::flv::write_tag(&mut out, self.type_id(), f.timestamp, &f.payload);
                Bytes::from(out)
            })
            .clone()
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

    /// The frame as a complete RTMP chunked message for `chunk_size` and message stream id
    /// `stream_id`. The first encoding is kept; players with the same parameters (all of them
    /// in practice) share it.
    pub fn rtmp_chunks(&self, chunk_size: u32, stream_id: u32) -> Bytes {
        let cached = self.rtmp.get_or_init(|| {
            (
                chunk_size,
                stream_id,
                self.encode_rtmp(chunk_size, stream_id),
            )
        });
        if cached.0 == chunk_size && cached.1 == stream_id {
            cached.2.clone()
        } else {
            self.encode_rtmp(chunk_size, stream_id)
        }
    }

    fn encode_rtmp(&self, chunk_size: u32, stream_id: u32) -> Bytes {
        let f = &self.frame;
        let type_id = self.type_id();
        let csid = match f.kind {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        };
        let mut out = BytesMut::with_capacity(chunk::encoded_len(
            chunk_size,
            csid,
            f.timestamp,
            f.payload.len(),
        ));
        chunk::encode_message(
            &mut out,
            chunk_size,
            csid,
            f.timestamp,
            type_id,
            stream_id,
            &f.payload,
        );
        out.freeze()
    }
}
