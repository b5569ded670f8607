//! RTMP message type ids, protocol control messages (Adobe RTMP 1.0 spec, 5.4) and user
//! control messages (spec 6.2, 7.1.7), plus window acknowledgement bookkeeping.

use std::fmt;

use bytes::BytesMut;

use super::chunk::encode_message;

/// RTMP message type ids (spec 5.4 and 7.1).
pub mod msg_type {
    /// Set Chunk Size (5.4.1).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (5.4.2).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (5.4.3).
    pub const ACK: u8 = 3;
    /// User Control Message (6.2).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (5.4.4).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (5.4.5).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (7.1.4).
    pub const AUDIO: u8 = 8;
    /// Video data (7.1.5).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 (7.1.2).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object message, AMF3 (7.1.3).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message, AMF3 (7.1.1).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 (7.1.2).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object message, AMF0 (7.1.3).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message, AMF0 (7.1.1).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (7.1.6).
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream id reserved for protocol control messages (spec 5.4).
pub const CONTROL_CSID: u32 = 2;
/// Chunk size used to write control messages: their payloads (at most 10 bytes) always fit one
/// chunk, so the bytes are the same whatever chunk size (>= 10) the connection uses.
const CONTROL_CHUNK_SIZE: u32 = 128;

/// Set Peer Bandwidth limit types (spec 5.4.5).
pub mod limit_type {
    /// The peer should limit its output to the window size.
    pub const HARD: u8 = 0;
    /// The peer should limit its output to the smaller of this and its current limit.
    pub const SOFT: u8 = 1;
    /// Hard if the previous limit was hard, otherwise ignored.
    pub const DYNAMIC: u8 = 2;
}

/// Errors parsing control message payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The payload is shorter than the message requires.
    Truncated { needed: usize, got: usize },
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, got } => write!(
                f,
                "control message payload of {got} bytes, at least {needed} needed"
            ),
        }
    }
}

impl std::error::Error for ControlError {}

/// User control events (spec 6.2 and 7.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// Event 0: the stream with this id became functional.
    StreamBegin(u32),
    /// Event 1: playback of the stream with this id is over.
    StreamEof(u32),
    /// Event 2: no more data on the stream with this id.
    StreamDry(u32),
    /// Event 3: the client's buffer length for a stream, in milliseconds.
    SetBufferLength { stream_id: u32, millis: u32 },
    /// Event 4: the stream with this id is recorded.
    StreamIsRecorded(u32),
    /// Event 6: ping carrying the sender's timestamp.
    PingRequest(u32),
    /// Event 7: answer to a ping, echoing its timestamp.
    PingResponse(u32),
    /// Any other event (e.g. SWF verification 26/27, buffer empty/ready 31/32), kept raw.
    Other { event: u16, data: Vec<u8> },
}

impl UserControl {
    /// Parses a User Control Message payload: 2-byte event type then event data.
    /// Bytes after the fields an event defines are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, ControlError> {
        let event = read_u16(payload)?;
        let data = payload.get(2..).unwrap_or_default();
        let u32_at = |offset: usize| read_u32_at(payload, 2 + offset);
        Ok(match event {
            0 => Self::StreamBegin(u32_at(0)?),
            1 => Self::StreamEof(u32_at(0)?),
            2 => Self::StreamDry(u32_at(0)?),
            3 => Self::SetBufferLength {
                stream_id: u32_at(0)?,
                millis: u32_at(4)?,
            },
            4 => Self::StreamIsRecorded(u32_at(0)?),
            6 => Self::PingRequest(u32_at(0)?),
            7 => Self::PingResponse(u32_at(0)?),
            event => Self::Other {
                event,
                data: data.to_vec(),
            },
        })
    }

    /// Encodes the event as a User Control Message payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.event_type().to_be_bytes().to_vec();
        match self {
            Self::StreamBegin(v)
            | Self::StreamEof(v)
            | Self::StreamDry(v)
            | Self::StreamIsRecorded(v)
            | Self::PingRequest(v)
            | Self::PingResponse(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::SetBufferLength { stream_id, millis } => {
                out.extend_from_slice(&stream_id.to_be_bytes());
                out.extend_from_slice(&millis.to_be_bytes());
            }
            Self::Other { data, .. } => out.extend_from_slice(data),
        }
        out
    }

    /// The 2-byte event type (spec 7.1.7).
    fn event_type(&self) -> u16 {
        match self {
            Self::StreamBegin(_) => 0,
            Self::StreamEof(_) => 1,
            Self::StreamDry(_) => 2,
            Self::SetBufferLength { .. } => 3,
            Self::StreamIsRecorded(_) => 4,
            Self::PingRequest(_) => 6,
            Self::PingResponse(_) => 7,
            Self::Other { event, .. } => *event,
        }
    }
}

/// Reads the 4-byte big-endian value of Set Chunk Size, Abort, Acknowledgement and Window
/// Acknowledgement Size payloads; trailing bytes are ignored.
pub fn read_u32_payload(payload: &[u8]) -> Result<u32, ControlError> {
    read_u32_at(payload, 0)
}

/// Set Peer Bandwidth payload (spec 5.4.5): window size then limit type.
pub fn set_peer_bandwidth_payload(window: u32, limit_type: u8) -> [u8; 5] {
    let w = window.to_be_bytes();
    [w[0], w[1], w[2], w[3], limit_type]
}

/// Appends a protocol control message on chunk stream 2, message stream 0, timestamp 0.
fn write_control(out: &mut BytesMut, type_id: u8, payload: &[u8]) {
    write_control_chunked(out, CONTROL_CHUNK_SIZE, type_id, payload);
}

/// Appends a protocol or user control message (chunk stream 2, message stream 0, timestamp
/// 0) chunked at `chunk_size`: for a sender that announced a chunk size below 10 bytes, the
/// largest control payload, where the `write_*` helpers (one chunk each) would not be
/// decodable.
pub fn write_control_chunked(out: &mut BytesMut, chunk_size: u32, type_id: u8, payload: &[u8]) {
    encode_message(out, chunk_size, CONTROL_CSID, 0, type_id, 0, payload);
}

/// Appends a Set Chunk Size message (spec 5.4.1).
pub fn write_set_chunk_size(out: &mut BytesMut, size: u32) {
    write_control(out, msg_type::SET_CHUNK_SIZE, &size.to_be_bytes());
}

/// Appends a Window Acknowledgement Size message (spec 5.4.4).
pub fn write_window_ack_size(out: &mut BytesMut, size: u32) {
    write_control(out, msg_type::WINDOW_ACK_SIZE, &size.to_be_bytes());
}

/// Appends a Set Peer Bandwidth message (spec 5.4.5).
pub fn write_set_peer_bandwidth(out: &mut BytesMut, window: u32, limit_type: u8) {
    let payload = set_peer_bandwidth_payload(window, limit_type);
    write_control(out, msg_type::SET_PEER_BANDWIDTH, &payload);
}

/// Appends an Acknowledgement carrying the cumulative sequence number (spec 5.4.3).
pub fn write_ack(out: &mut BytesMut, sequence: u32) {
    write_control(out, msg_type::ACK, &sequence.to_be_bytes());
}

/// Appends a User Control Message. Spec 6.2: message stream id 0 and chunk stream 2
/// (livego sends them on message stream 1).
pub fn write_user_control(out: &mut BytesMut, ev: &UserControl) {
    write_control(out, msg_type::USER_CONTROL, &ev.encode());
}

/// Window acknowledgement bookkeeping (spec 5.4.3, 5.4.4).
///
/// Counts every byte received from the peer, chunk headers and handshake included if the
/// caller feeds them, and says when an Acknowledgement is due. The sequence number is the
/// cumulative count modulo 2^32 (livego sends the bytes since the previous ack instead).
/// Until the peer sends a Window Acknowledgement Size no ack is due (as nginx-rtmp and SRS).
#[derive(Debug, Clone, Default)]
pub struct AckCounter {
    window: u32,
    total: u32,
    since_ack: u64,
}

impl AckCounter {
    /// A counter with no window yet: acks are disabled until [`set_window`](Self::set_window).
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the peer's Window Acknowledgement Size; 0 disables acks.
    pub fn set_window(&mut self, size: u32) {
        self.window = size;
    }

    /// Records `n` received bytes; returns the sequence number to acknowledge when at least a
    /// window's worth of bytes arrived since the previous ack.
    pub fn on_received(&mut self, n: usize) -> Option<u32> {
        // Truncation is the intended modulo 2^32 of the sequence number.
        self.total = self.total.wrapping_add(n as u32);
        self.since_ack = self.since_ack.saturating_add(n as u64);
        if self.window == 0 || self.since_ack < u64::from(self.window) {
            return None;
        }
        self.since_ack = 0;
        Some(self.total)
    }
}

fn read_u16(payload: &[u8]) -> Result<u16, ControlError> {
    match payload.get(..2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(ControlError::Truncated {
            needed: 2,
            got: payload.len(),
        }),
    }
}

fn read_u32_at(payload: &[u8], offset: usize) -> Result<u32, ControlError> {
    match payload.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(ControlError::Truncated {
            needed: offset + 4,
            got: payload.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::chunk::{ChunkDecoder, DecoderLimits};
    use super::*;

    fn decode_one(bytes: &[u8]) -> super::super::chunk::Message {
        let mut dec = ChunkDecoder::new(DecoderLimits::default());
        dec.push(bytes);
        let msg = dec.next_message().unwrap().unwrap();
        assert_eq!(dec.buffered(), 0);
        msg
    }

    #[test]
    fn set_chunk_size_bytes() {
        let mut out = BytesMut::new();
        write_set_chunk_size(&mut out, 150);
        assert_eq!(out[..], [2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0x96]);
        let msg = decode_one(&out);
        assert_eq!((msg.csid, msg.stream_id, msg.type_id), (2, 0, 1));
        assert_eq!(read_u32_payload(&msg.payload), Ok(150));
    }

    #[test]
    fn window_ack_peer_bandwidth_and_ack_bytes() {
        let mut out = BytesMut::new();
        write_window_ack_size(&mut out, 2_500_000);
        write_set_peer_bandwidth(&mut out, 2_500_000, limit_type::DYNAMIC);
        write_ack(&mut out, 0x0102_0304);
        let expected: &[u8] = &[
            2, 0, 0, 0, 0, 0, 4, 5, 0, 0, 0, 0, 0x00, 0x26, 0x25, 0xa0, //
            2, 0, 0, 0, 0, 0, 5, 6, 0, 0, 0, 0, 0x00, 0x26, 0x25, 0xa0, 2, //
            2, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 1, 2, 3, 4,
        ];
        assert_eq!(out[..], *expected);
    }

    #[test]
    fn user_control_on_message_stream_zero() {
        let mut out = BytesMut::new();
        write_user_control(&mut out, &UserControl::StreamBegin(1));
        assert_eq!(
            out[..],
            [2, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn user_control_round_trips() {
        let events = [
            (UserControl::StreamBegin(1), vec![0, 0, 0, 0, 0, 1]),
            (UserControl::StreamEof(2), vec![0, 1, 0, 0, 0, 2]),
            (UserControl::StreamDry(3), vec![0, 2, 0, 0, 0, 3]),
            (
                UserControl::SetBufferLength {
                    stream_id: 1,
                    millis: 3000,
                },
                vec![0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8],
            ),
            (UserControl::StreamIsRecorded(4), vec![0, 4, 0, 0, 0, 4]),
            (
                UserControl::PingRequest(0xdead_beef),
                vec![0, 6, 0xde, 0xad, 0xbe, 0xef],
            ),
            (UserControl::PingResponse(7), vec![0, 7, 0, 0, 0, 7]),
            (
                UserControl::Other {
                    event: 31,
                    data: vec![0, 0, 0, 1],
                },
                vec![0, 31, 0, 0, 0, 1],
            ),
        ];
        for (event, bytes) in events {
            assert_eq!(event.encode(), bytes);
            assert_eq!(UserControl::parse(&bytes), Ok(event));
        }
    }

    #[test]
    fn truncated_payloads_rejected() {
        assert_eq!(
            UserControl::parse(&[0]),
            Err(ControlError::Truncated { needed: 2, got: 1 })
        );
        let err = UserControl::parse(&[0, 3, 0, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(err, ControlError::Truncated { needed: 10, got: 7 });
        assert!(err.to_string().contains("7 bytes"));
        assert!(UserControl::parse(&[0, 6, 1]).is_err());
        assert_eq!(
            read_u32_payload(&[0, 0, 1]),
            Err(ControlError::Truncated { needed: 4, got: 3 })
        );
        assert_eq!(read_u32_payload(&[0, 0, 1, 0, 9]), Ok(256));
        assert_eq!(
            UserControl::parse(&[0, 7, 0, 0, 0, 9, 1]),
            Ok(UserControl::PingResponse(9))
        );
    }

    #[test]
    fn peer_bandwidth_payload() {
        assert_eq!(set_peer_bandwidth_payload(0x0102_0304, 1), [1, 2, 3, 4, 1]);
    }

    #[test]
    fn ack_counter_disabled_without_window() {
        let mut acks = AckCounter::new();
        assert_eq!(acks.on_received(10_000_000), None);
        acks.set_window(100);
        assert_eq!(
            acks.on_received(0),
            Some(10_000_000),
            "window already exceeded"
        );
    }

    #[test]
    fn ack_counter_cumulative_across_windows() {
        let mut acks = AckCounter::new();
        acks.set_window(1000);
        let got: Vec<_> = (0..10).filter_map(|_| acks.on_received(300)).collect();
        // Every 4th read of 300 bytes crosses the window; 600 bytes are left after the last ack.
        assert_eq!(got, [1200, 2400]);
        assert_eq!(acks.on_received(1000), Some(4000));
        acks.set_window(0);
        assert_eq!(acks.on_received(5000), None);
    }

    #[test]
    fn ack_counter_sequence_wraps() {
        let mut acks = AckCounter::new();
        acks.set_window(0x8000_0000);
        assert_eq!(acks.on_received(0xffff_fff0), Some(0xffff_fff0));
        assert_eq!(acks.on_received(0x7fff_fff0), None);
        // 0xffff_fff0 + 0x7fff_fff0 + 0x20 = 0x1_8000_0000, modulo 2^32.
        assert_eq!(acks.on_received(0x20), Some(0x8000_0000));
    }
}
