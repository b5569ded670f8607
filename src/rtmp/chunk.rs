//! RTMP chunk stream: a sans-IO decoder and a stateless encoder (Adobe RTMP 1.0 spec, 5.3).
//!
//! Interoperability choices (each cited where it is implemented):
//! - a fmt3 header that starts a new message re-applies the timestamp *field* of the previous
//!   header on that chunk stream, even after fmt0 (ffmpeg `rtmppkt.c`, librtmp, SRS);
//! - the 4 extended-timestamp bytes on fmt3 *continuation* chunks are optional on the wire:
//!   they are consumed only when they repeat the stored value (ffmpeg/Flash send them, some
//!   encoders do not; livego and SRS use the same peek);
//! - a fmt0/1/2 header on a chunk stream whose message is incomplete drops the partial message
//!   and starts the new one (spec 5.3.1.2: those headers begin a message; librtmp does the same).

use std::collections::HashMap;
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Chunk size of both directions until a Set Chunk Size message changes it (spec 5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest message length a chunk message header can carry (24-bit field, spec 5.3.1.2.1).
pub const MAX_MESSAGE_LEN: u32 = 0xFF_FFFF;
/// Smallest chunk stream id usable for messages (0 and 1 are basic-header markers).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (3-byte basic header: 65535 + 64, spec 5.3.1.1).
pub const MAX_CSID: u32 = 65_599;

/// Timestamp field value announcing a 4-byte extended timestamp (spec 5.3.1.3).
const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
/// The spec reserves bit 31 of Set Chunk Size; valid sizes are 1..=0x7FFF_FFFF (5.4.1).
const SPEC_MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Smallest growth step of a payload buffer, to avoid tiny reallocations.
const MIN_PAYLOAD_GROWTH: usize = 1024;

/// One reassembled RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream id the message arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wrapping u32).
    pub timestamp: u32,
    /// Message type id (see `control::msg_type`).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// Message payload.
    pub payload: Bytes,
}

/// Errors of the chunk decoder. All are fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The peer asked for a chunk size of 0.
    ZeroChunkSize,
    /// The peer asked for a chunk size above our limit (or with bit 31 set).
    ChunkSizeTooLarge { size: u32, max: u32 },
    /// A message header announced a length above our limit.
    MessageTooLarge { len: u32, max: u32 },
    /// Incomplete messages across all chunk streams would exceed the buffering limit.
    PendingTooLarge { pending: usize, max: usize },
    /// A fmt1/2/3 header arrived on a chunk stream that never had a fmt0 header.
    MissingHeader { csid: u32, fmt: u8 },
    /// The peer opened more chunk streams than allowed.
    TooManyChunkStreams { max: usize },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroChunkSize => write!(f, "peer set a chunk size of 0"),
            Self::ChunkSizeTooLarge { size, max } => {
                write!(f, "peer chunk size {size} exceeds the maximum {max}")
            }
            Self::MessageTooLarge { len, max } => {
                write!(f, "message length {len} exceeds the maximum {max}")
            }
            Self::PendingTooLarge { pending, max } => write!(
                f,
                "{pending} bytes of incomplete messages exceed the maximum {max}"
            ),
            Self::MissingHeader { csid, fmt } => write!(
                f,
                "fmt{fmt} chunk on chunk stream {csid} without a previous fmt0 header"
            ),
            Self::TooManyChunkStreams { max } => {
                write!(f, "peer opened more than {max} chunk streams")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

/// Resource limits of a [`ChunkDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest accepted message length (the header field is 24 bits anyway).
    pub max_message_size: u32,
    /// Largest accepted peer chunk size.
    pub max_chunk_size: u32,
    /// Cap on the payload bytes of all incomplete messages together.
    pub max_pending_bytes: usize,
    /// Cap on the number of distinct chunk stream ids the peer may use.
    pub max_chunk_streams: usize,
}

impl Default for DecoderLimits {
    /// 16 MiB messages and chunks, 32 MiB of incomplete messages, 256 chunk streams.
    fn default() -> Self {
        Self {
            max_message_size: MAX_MESSAGE_LEN,
            max_chunk_size: MAX_MESSAGE_LEN,
            max_pending_bytes: 32 << 20,
            max_chunk_streams: 256,
        }
    }
}

/// What the decoder remembers per chunk stream for header compression (spec 5.3.1.2).
#[derive(Debug, Default)]
struct StreamState {
    /// Timestamp of the last message started on this chunk stream.
    timestamp: u32,
    /// Timestamp field of the last header: what a fmt3 header starting a message adds.
    delta: u32,
    /// Extended timestamp value of the last header, when it used one.
    extended: Option<u32>,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// Payload received so far of the incomplete message; `None` between messages.
    partial: Option<Vec<u8>>,
}

/// The chunk whose payload bytes are being read.
#[derive(Debug, Clone, Copy)]
struct ChunkProgress {
    csid: u32,
    remaining: usize,
}

/// Fields of a fmt0/1/2 chunk message header, extended timestamp resolved.
struct MessageHeader {
    /// Absolute timestamp (fmt0) or delta (fmt1/2).
    timestamp: u32,
    extended: bool,
    length: Option<u32>,
    type_id: Option<u8>,
    stream_id: Option<u32>,
}

/// How a fmt3 header is to be applied.
enum Type3 {
    /// Continuation chunk of the incomplete message.
    Continue,
    /// First chunk of a new message whose timestamp advances by this delta.
    NewMessage { delta: u32 },
}

/// Reassembles messages from the peer's chunk stream (spec 5.3).
///
/// Feed received bytes with [`push`](Self::push) and call
/// [`next_message`](Self::next_message) until it returns `Ok(None)`. When a Set Chunk Size
/// message comes out, call [`set_chunk_size`](Self::set_chunk_size) before asking for the
/// next message; likewise [`abort`](Self::abort) for an Abort Message. After an error the
/// decoder state is unspecified: close the connection.
#[derive(Debug)]
pub struct ChunkDecoder {
    limits: DecoderLimits,
    chunk_size: u32,
    input: BytesMut,
    streams: HashMap<u32, StreamState>,
    /// Sum of the `partial` lengths of all chunk streams.
    pending: usize,
    chunk: Option<ChunkProgress>,
}

impl ChunkDecoder {
    /// A decoder with the peer chunk size at its default of 128 bytes.
    pub fn new(limits: DecoderLimits) -> Self {
        Self {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            input: BytesMut::new(),
            streams: HashMap::new(),
            pending: 0,
            chunk: None,
        }
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
    }

    /// Bytes pushed but not yet consumed by the parser.
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// Payload bytes of the messages still incomplete (what `max_pending_bytes` bounds).
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Parses chunks until one whole message is assembled; `Ok(None)` means more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            let Some(chunk) = self.chunk else {
                if !self.read_header()? {
                    return Ok(None);
                }
                continue;
            };
            if !self.read_payload(chunk)? {
                return Ok(None);
            }
            if let Some(message) = self.take_complete(chunk.csid) {
                return Ok(Some(message));
            }
        }
    }

    /// Applies the peer's Set Chunk Size (spec 5.4.1) to the chunks that follow.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        let max = self.limits.max_chunk_size.min(SPEC_MAX_CHUNK_SIZE);
        if size == 0 {
            return Err(ChunkError::ZeroChunkSize);
        }
        if size > max {
            return Err(ChunkError::ChunkSizeTooLarge { size, max });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Abort Message (spec 5.4.2): discards the partial message of chunk stream `csid`.
    pub fn abort(&mut self, csid: u32) {
        if let Some(partial) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
            self.pending = self.pending.saturating_sub(partial.len());
        }
    }

    /// Parses one chunk header; `Ok(false)` when it is not complete in the input yet.
    fn read_header(&mut self) -> Result<bool, ChunkError> {
        let Some((fmt, csid, basic_len)) = parse_basic_header(&self.input) else {
            return Ok(false);
        };
        let rest = self.input.get(basic_len..).unwrap_or_default();
        if fmt == 3 {
            let Some((kind, len)) = self.parse_type3(csid, rest)? else {
                return Ok(false);
            };
            self.input.advance(basic_len + len);
            self.apply_type3(csid, kind);
        } else {
            let Some((header, len)) = parse_message_header(fmt, rest) else {
                return Ok(false);
            };
            self.apply_header(fmt, csid, header)?;
            self.input.advance(basic_len + len);
            self.start_message(csid);
        }
        Ok(true)
    }

    /// Decides what a fmt3 header means and how many bytes follow the basic header.
    fn parse_type3(&self, csid: u32, rest: &[u8]) -> Result<Option<(Type3, usize)>, ChunkError> {
        let state = self
            .streams
            .get(&csid)
            .ok_or(ChunkError::MissingHeader { csid, fmt: 3 })?;
        if state.partial.is_some() {
            return Ok(continuation_extended_len(state, rest).map(|len| (Type3::Continue, len)));
        }
        // Spec 5.3.1.3: a fmt3 chunk carries the extended timestamp when the last header did.
        Ok(match state.extended {
            Some(_) => read_u32_be(rest).map(|delta| (Type3::NewMessage { delta }, 4)),
            None => Some((Type3::NewMessage { delta: state.delta }, 0)),
        })
    }

    /// Applies a parsed fmt3 header and sets up its chunk.
    fn apply_type3(&mut self, csid: u32, kind: Type3) {
        match kind {
            Type3::Continue => self.continue_message(csid),
            Type3::NewMessage { delta } => {
                if let Some(state) = self.streams.get_mut(&csid) {
                    state.timestamp = state.timestamp.wrapping_add(delta);
                    state.delta = delta;
                    state.extended = state.extended.map(|_| delta);
                }
                self.start_message(csid);
            }
        }
    }

    /// Applies a fmt0/1/2 header to the chunk stream state.
    fn apply_header(
        &mut self,
        fmt: u8,
        csid: u32,
        header: MessageHeader,
    ) -> Result<(), ChunkError> {
        if let Some(len) = header.length {
            if len > self.limits.max_message_size {
                let max = self.limits.max_message_size;
                return Err(ChunkError::MessageTooLarge { len, max });
            }
        }
        if fmt != 0 && !self.streams.contains_key(&csid) {
            return Err(ChunkError::MissingHeader { csid, fmt });
        }
        if !self.streams.contains_key(&csid) && self.streams.len() >= self.limits.max_chunk_streams
        {
            let max = self.limits.max_chunk_streams;
            return Err(ChunkError::TooManyChunkStreams { max });
        }
        // Spec 5.3.1.2: fmt0/1/2 begin a new message; a partial one on this csid is dropped.
        self.abort(csid);
        let state = self.streams.entry(csid).or_default();
        state.timestamp = if fmt == 0 {
            header.timestamp
        } else {
            state.timestamp.wrapping_add(header.timestamp)
        };
        // ffmpeg (rtmppkt.c, `ts_field`) and librtmp keep the raw field, fmt0 included, as the
        // delta a later fmt3 header starting a new message re-applies (livego/nginx-rtmp differ).
        state.delta = header.timestamp;
        state.extended = header.extended.then_some(header.timestamp);
        state.length = header.length.unwrap_or(state.length);
        state.type_id = header.type_id.unwrap_or(state.type_id);
        state.stream_id = header.stream_id.unwrap_or(state.stream_id);
        Ok(())
    }

    /// Opens an empty message on `csid` and sets up its first chunk.
    fn start_message(&mut self, csid: u32) {
        if let Some(state) = self.streams.get_mut(&csid) {
            state.partial = Some(Vec::new());
        }
        self.continue_message(csid);
    }

    /// Sets up the next chunk of the incomplete message on `csid`.
    fn continue_message(&mut self, csid: u32) {
        let remaining = self.streams.get(&csid).map_or(0, |state| {
            let got = state.partial.as_ref().map_or(0, Vec::len);
            (state.length as usize).saturating_sub(got)
        });
        let chunk_size = self.chunk_size as usize;
        self.chunk = Some(ChunkProgress {
            csid,
            remaining: remaining.min(chunk_size),
        });
    }

    /// Moves available chunk payload bytes into the message; `Ok(true)` once the chunk is done.
    fn read_payload(&mut self, mut chunk: ChunkProgress) -> Result<bool, ChunkError> {
        let n = chunk.remaining.min(self.input.len());
        let state = self.streams.get_mut(&chunk.csid);
        // An aborted message may still have chunk bytes in flight: they are skipped.
        if let Some((partial, length)) = state.and_then(|s| Some((s.partial.as_mut()?, s.length))) {
            let pending = self.pending.saturating_add(n);
            if pending > self.limits.max_pending_bytes {
                let max = self.limits.max_pending_bytes;
                return Err(ChunkError::PendingTooLarge { pending, max });
            }
            append_bounded(
                partial,
                self.input.get(..n).unwrap_or_default(),
                length as usize,
            );
            self.pending = pending;
        }
        self.input.advance(n);
        chunk.remaining -= n;
        let done = chunk.remaining == 0;
        self.chunk = (!done).then_some(chunk);
        Ok(done)
    }

    /// Returns the message of `csid` if all its payload has arrived.
    fn take_complete(&mut self, csid: u32) -> Option<Message> {
        let state = self.streams.get_mut(&csid)?;
        if state.partial.as_ref()?.len() < state.length as usize {
            return None;
        }
        let payload = state.partial.take()?;
        self.pending = self.pending.saturating_sub(payload.len());
        Some(Message {
            csid,
            timestamp: state.timestamp,
            type_id: state.type_id,
            stream_id: state.stream_id,
            payload: Bytes::from(payload),
        })
    }
}

/// Parses the basic header (spec 5.3.1.1): `(fmt, csid, header length)`.
fn parse_basic_header(buf: &[u8]) -> Option<(u8, u32, usize)> {
    let first = *buf.first()?;
    let fmt = first >> 6;
    match first & 0x3F {
        0 => Some((fmt, u32::from(*buf.get(1)?) + 64, 2)),
        1 => {
            let id = u16::from_le_bytes([*buf.get(1)?, *buf.get(2)?]);
            Some((fmt, u32::from(id) + 64, 3))
        }
        id => Some((fmt, u32::from(id), 1)),
    }
}

/// Parses a fmt0/1/2 message header plus extended timestamp (spec 5.3.1.2, 5.3.1.3).
fn parse_message_header(fmt: u8, buf: &[u8]) -> Option<(MessageHeader, usize)> {
    let len = match fmt {
        0 => 11,
        1 => 7,
        _ => 3,
    };
    let field = buf.get(..len)?;
    let timestamp = read_u24_be(field)?;
    let (length, type_id) = if fmt <= 1 {
        (Some(read_u24_be(field.get(3..)?)?), Some(*field.get(6)?))
    } else {
        (None, None)
    };
    let stream_id = if fmt == 0 {
        Some(u32::from_le_bytes(field.get(7..11)?.try_into().ok()?))
    } else {
        None
    };
    let mut header = MessageHeader {
        timestamp,
        extended: false,
        length,
        type_id,
        stream_id,
    };
    if timestamp != EXTENDED_TIMESTAMP {
        return Some((header, len));
    }
    header.timestamp = read_u32_be(buf.get(len..)?)?;
    header.extended = true;
    Some((header, len + 4))
}

/// Bytes of repeated extended timestamp after a fmt3 continuation header, `None` if undecided.
///
/// Spec 5.3.1.3 says fmt3 chunks carry the extended timestamp whenever the message header did;
/// ffmpeg and Flash do so, but some encoders omit it on continuation chunks. Like livego
/// (chunk_stream.go) and SRS, the 4 bytes are peeked and consumed only when they repeat the
/// header's extended value (what ffmpeg repeats, a delta after fmt1/2) or the message's absolute
/// timestamp (what livego compares against).
fn continuation_extended_len(state: &StreamState, rest: &[u8]) -> Option<usize> {
    let Some(extended) = state.extended else {
        return Some(0);
    };
    let candidates = [extended.to_be_bytes(), state.timestamp.to_be_bytes()];
    let avail = rest.get(..4).unwrap_or(rest);
    if avail.len() == 4 {
        let repeated = candidates.iter().any(|c| c[..] == *avail);
        return Some(if repeated { 4 } else { 0 });
    }
    // Fewer than 4 bytes: wait only while they could still be a repeat.
    let may_repeat = candidates.iter().any(|c| c.starts_with(avail));
    (!may_repeat).then_some(0)
}

/// Appends `data` to a payload buffer growing at most to `total`, doubling as bytes arrive,
/// so a length field the peer controls never reserves memory by itself.
fn append_bounded(buf: &mut Vec<u8>, data: &[u8], total: usize) {
    let needed = buf.len() + data.len();
    if needed > buf.capacity() {
        let target = needed
            .max(buf.len() * 2)
            .max(MIN_PAYLOAD_GROWTH)
            .min(total.max(needed));
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(data);
}

fn read_u24_be(buf: &[u8]) -> Option<u32> {
    let b = buf.get(..3)?;
    Some(u32::from_be_bytes([0, b[0], b[1], b[2]]))
}

fn read_u32_be(buf: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(..4)?.try_into().ok()?))
}

/// Appends `payload` as one chunked message: a fmt0 chunk, then fmt3 continuation chunks.
///
/// Stateless: the same inputs always give the same bytes, so one encoding can be shared by
/// every player using that chunk size. Timestamps >= 0xFFFFFF use the extended timestamp in
/// the fmt0 header and repeat it on every fmt3 chunk (spec 5.3.1.3; what ffmpeg expects).
/// Preconditions (our own data, not the peer's): `csid` in 2..=65599, `payload.len()` at most
/// 0xFFFFFF; a `chunk_size` of 0 is treated as 1.
pub fn encode_message(
    out: &mut BytesMut,
    chunk_size: u32,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
) {
    debug_assert!(payload.len() <= MAX_MESSAGE_LEN as usize);
    out.reserve(encoded_len(chunk_size, csid, timestamp, payload.len()));
    put_message_header(out, csid, timestamp, type_id, stream_id, payload.len());
    let mut chunks = payload.chunks(chunk_size.max(1) as usize);
    out.put_slice(chunks.next().unwrap_or_default());
    for chunk in chunks {
        put_continuation_header(out, csid, timestamp);
        out.put_slice(chunk);
    }
}

/// The same bytes as [`encode_message`], as pieces to send in order without copying the
/// payload: the fmt0 header, then the payload's chunks (slices of `payload`) separated by the
/// fmt3 continuation header, which is identical for every chunk and so made once.
pub fn message_pieces(
    chunk_size: u32,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &Bytes,
) -> Vec<Bytes> {
    debug_assert!(payload.len() <= MAX_MESSAGE_LEN as usize);
    let chunk = chunk_size.max(1) as usize;
    let mut head = BytesMut::with_capacity(18);
    put_message_header(
        &mut head,
        csid,
        timestamp,
        type_id,
        stream_id,
        payload.len(),
    );
    let mut pieces = Vec::with_capacity(2 * payload.len().div_ceil(chunk).max(1));
    pieces.push(head.freeze());
    let continuation = {
        let mut h = BytesMut::with_capacity(7);
        put_continuation_header(&mut h, csid, timestamp);
        h.freeze()
    };
    for start in (0..payload.len()).step_by(chunk) {
        if start > 0 {
            pieces.push(continuation.clone());
        }
        pieces.push(payload.slice(start..(start + chunk).min(payload.len())));
    }
    pieces
}

/// The fmt0 chunk header that starts a message (spec 5.3.1.2.1), with the extended timestamp
/// when needed.
fn put_message_header(
    out: &mut BytesMut,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    len: usize,
) {
    debug_assert!((MIN_CSID..=MAX_CSID).contains(&csid), "csid {csid}");
    put_basic_header(out, 0, csid);
    out.put_uint(u64::from(timestamp.min(EXTENDED_TIMESTAMP)), 3);
    out.put_uint(len as u64, 3);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if timestamp >= EXTENDED_TIMESTAMP {
        out.put_u32(timestamp);
    }
}

/// The fmt3 header of a continuation chunk, repeating an extended timestamp (spec 5.3.1.3).
fn put_continuation_header(out: &mut BytesMut, csid: u32, timestamp: u32) {
    put_basic_header(out, 3, csid);
    if timestamp >= EXTENDED_TIMESTAMP {
        out.put_u32(timestamp);
    }
}

/// Number of bytes [`encode_message`] appends for these parameters.
pub fn encoded_len(chunk_size: u32, csid: u32, timestamp: u32, payload_len: usize) -> usize {
    let chunks = payload_len.div_ceil(chunk_size.max(1) as usize).max(1);
    let extended = if timestamp >= EXTENDED_TIMESTAMP {
        4
    } else {
        0
    };
    chunks * (basic_header_len(csid) + extended) + 11 + payload_len
}

fn basic_header_len(csid: u32) -> usize {
    match csid {
        0..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

/// Writes a basic header in its 1-, 2- or 3-byte form (spec 5.3.1.1).
fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(fmt | 1);
            out.put_u16_le(csid.saturating_sub(64) as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn decoder() -> ChunkDecoder {
        ChunkDecoder::new(DecoderLimits::default())
    }

    /// Pushes `bytes` at once and collects every complete message.
    fn decode_all(dec: &mut ChunkDecoder, bytes: &[u8]) -> Vec<Message> {
        dec.push(bytes);
        std::iter::from_fn(|| dec.next_message().unwrap()).collect()
    }

    fn encode(
        chunk_size: u32,
        csid: u32,
        ts: u32,
        type_id: u8,
        sid: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_message(&mut out, chunk_size, csid, ts, type_id, sid, payload);
        assert_eq!(out.len(), encoded_len(chunk_size, csid, ts, payload.len()));
        out.to_vec()
    }

    /// livego chunk_stream_test.go TestChunkRead1, first part: fmt0 + 2 x fmt3 at chunk size 128.
    fn livego_video_307() -> Vec<u8> {
        let mut data = vec![0x06, 0, 0, 0, 0x00, 0x01, 0x33, 0x09, 0x01, 0, 0, 0];
        data.extend_from_slice(&[0; 128]);
        data.push(0xc6);
        data.extend_from_slice(&[0; 128]);
        data.push(0xc6);
        data.extend_from_slice(&[0; 51]);
        data
    }

    #[test]
    fn livego_chunk_read1() {
        let msgs = decode_all(&mut decoder(), &livego_video_307());
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!((m.csid, m.timestamp, m.type_id, m.stream_id), (6, 0, 9, 1));
        assert_eq!(m.payload[..], [0; 307][..]);
    }

    /// TestChunkRead1, second part: extended timestamp 5 repeated on the first fmt3 chunk only.
    #[test]
    fn livego_chunk_read1_extended_timestamp() {
        let mut data = vec![
            0x06, 0xff, 0xff, 0xff, 0, 0x01, 0x33, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 5,
        ];
        data.extend_from_slice(&[0; 128]);
        data.push(0xc6);
        data.extend_from_slice(&[0, 0, 0, 5]);
        data.extend_from_slice(&[0; 128]);
        data.push(0xc6);
        data.extend_from_slice(&[0; 51]);
        let mut dec = decoder();
        let msgs = decode_all(&mut dec, &data);
        assert_eq!(msgs.len(), 1);
        assert_eq!(
            (msgs[0].timestamp, msgs[0].type_id, msgs[0].stream_id),
            (5, 9, 1)
        );
        assert_eq!(msgs[0].payload.len(), 307);
        assert_eq!(dec.buffered(), 0);
    }

    /// livego TestWriteChunk: 307 bytes at chunk size 128 = 12 + 128 + 1 + 128 + 1 + 51 bytes.
    #[test]
    fn livego_write_chunk() {
        let payload: Vec<u8> = (0..307u32).map(|i| i as u8).collect();
        let out = encode(128, 4, 40, 9, 0, &payload);
        assert_eq!(out.len(), 321);
        assert_eq!(out[..12], [0x04, 0, 0, 0x28, 0, 0x01, 0x33, 9, 0, 0, 0, 0]);
        assert_eq!(out[12..140], payload[..128]);
        assert_eq!(out[140], 0xc4);
        assert_eq!(out[141..269], payload[128..256]);
        assert_eq!(out[269], 0xc4);
        assert_eq!(out[270..], payload[256..]);
    }

    #[test]
    fn pieces_are_the_encoded_message() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (chunk_size, csid, timestamp, len) in [
            (128, 4, 40, 307),
            (128, 6, 0xFF_FFFF, 256),
            (4096, 400, 1, 0),
            (1, 70, 0x1_0000_0000u64 as u32, 5),
            (4096, 6, 7, 4096),
            (4096, 6, 7, 4097),
        ] {
            let payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let whole = encode(chunk_size, csid, timestamp, 9, 1, &payload);
            let pieces = message_pieces(chunk_size, csid, timestamp, 9, 1, &Bytes::from(payload));
            assert_eq!(
                pieces.concat(),
                whole[..],
                "{chunk_size} {csid} {timestamp} {len}"
            );
        }
    }

    /// livego TestConnWrite: exact bytes of small single-chunk audio messages.
    #[test]
    fn livego_conn_write() {
        assert_eq!(
            encode(128, 4, 0x28, 8, 0, &[1, 2, 3]),
            [0x4, 0, 0, 0x28, 0, 0, 0x3, 0x8, 0, 0, 0, 0, 1, 2, 3]
        );
        assert_eq!(
            encode(128, 4, 0xa0, 8, 0, &[1, 2, 3, 4]),
            [0x4, 0, 0, 0xa0, 0, 0, 0x4, 0x8, 0, 0, 0, 0, 1, 2, 3, 4]
        );
    }

    /// livego TestConnCrossReading: interleaved video (csid 6) and audio (csid 4) messages.
    #[test]
    fn livego_cross_reading() {
        let (d128, d51) = ([0x11; 128], [0x22; 51]);
        let mut data = vec![0x06, 0, 0, 0, 0, 0x01, 0x33, 0x09, 0x01, 0, 0, 0];
        data.extend_from_slice(&d128);
        data.push(0xc6);
        data.extend_from_slice(&d128);
        data.extend_from_slice(&[0x04, 0, 0, 0, 0, 0x01, 0x33, 0x08, 0x01, 0, 0, 0]);
        data.extend_from_slice(&d128);
        data.push(0xc4);
        data.extend_from_slice(&d128);
        data.push(0xc6);
        data.extend_from_slice(&d51);
        data.push(0xc4);
        data.extend_from_slice(&d51);
        let mut dec = decoder();
        let msgs = decode_all(&mut dec, &data);
        let expected: Vec<u8> = [&d128[..], &d128, &d51].concat();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].csid, msgs[0].type_id), (6, 9));
        assert_eq!((msgs[1].csid, msgs[1].type_id), (4, 8));
        assert!(msgs.iter().all(|m| m.payload[..] == expected[..]));
        assert_eq!((dec.buffered(), dec.pending), (0, 0));
    }

    /// livego TestSetChunksizeForWrite: 133-byte audio is 146 bytes at 128, 145 at 150.
    #[test]
    fn livego_set_chunk_size_for_write() {
        let mut audio = [0u8; 133];
        audio[0] = 0xff;
        audio[128] = 0xff;
        assert_eq!(encode(128, 4, 40, 8, 1, &audio).len(), 146);
        assert_eq!(encode(150, 4, 40, 8, 1, &audio).len(), 145);
    }

    /// livego TestSetChunksize: the peer's Set Chunk Size 150 applies to the following reads.
    #[test]
    fn livego_set_chunk_size() {
        let mut dec = decoder();
        let msgs = decode_all(&mut dec, &livego_video_307());
        assert_eq!(
            (msgs[0].type_id, msgs[0].csid, msgs[0].stream_id),
            (9, 6, 1)
        );
        let set = [0x02, 0, 0, 0, 0, 0, 0x04, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x96];
        let msgs = decode_all(&mut dec, &set);
        assert_eq!(
            (msgs[0].type_id, &msgs[0].payload[..]),
            (1, &[0, 0, 0, 0x96][..])
        );
        dec.set_chunk_size(150).unwrap();
        let mut data = vec![0x06, 0, 0, 0, 0, 0x01, 0x33, 0x08, 0x01, 0, 0, 0];
        data.extend_from_slice(&[0; 150]);
        data.push(0xc6);
        data.extend_from_slice(&[0; 150]);
        data.push(0xc6);
        data.extend_from_slice(&[0; 7]);
        let msgs = decode_all(&mut dec, &data);
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].type_id, msgs[0].payload.len()), (8, 307));
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn extended_csid_forms_round_trip() {
        let cases: [(u32, &[u8]); 6] = [
            (2, &[0x02]),
            (63, &[0x3f]),
            (64, &[0x00, 0x00]),
            (319, &[0x00, 0xff]),
            (320, &[0x01, 0x00, 0x01]),
            (65599, &[0x01, 0xff, 0xff]),
        ];
        let mut dec = decoder();
        for (csid, basic) in cases {
            let payload = vec![csid as u8; 300];
            let bytes = encode(128, csid, 7, 9, 1, &payload);
            assert_eq!(&bytes[..basic.len()], basic, "csid {csid}");
            let fmt3 = bytes.len() - 44 - basic.len();
            assert_eq!(bytes[fmt3], basic[0] | 0xc0);
            assert_eq!(bytes[fmt3 + 1..fmt3 + basic.len()], basic[1..]);
            let msgs = decode_all(&mut dec, &bytes);
            assert_eq!(msgs.len(), 1);
            assert_eq!((msgs[0].csid, msgs[0].timestamp), (csid, 7));
            assert_eq!(msgs[0].payload[..], payload[..]);
        }
        assert_eq!(dec.streams.len(), 6, "each full csid has its own state");
    }

    #[test]
    fn fmt1_fmt2_fmt3_timestamp_deltas() {
        let mut data = vec![0x03, 0, 0x03, 0xe8, 0, 0, 3, 8, 1, 0, 0, 0, 1, 2, 3]; // fmt0 ts 1000
        data.extend_from_slice(&[0x43, 0, 0, 20, 0, 0, 2, 9, 4, 5]); // fmt1 +20, len 2, video
        data.extend_from_slice(&[0x83, 0, 0, 30, 6, 7]); // fmt2 +30
        data.extend_from_slice(&[0xc3, 8, 9]); // fmt3 new message: +30 again
        data.extend_from_slice(&[0xc3, 10, 11]); // and again
        let msgs = decode_all(&mut decoder(), &data);
        let got: Vec<_> = msgs
            .iter()
            .map(|m| (m.timestamp, m.type_id, m.stream_id))
            .collect();
        assert_eq!(
            got,
            [
                (1000, 8, 1),
                (1020, 9, 1),
                (1050, 9, 1),
                (1080, 9, 1),
                (1110, 9, 1)
            ]
        );
        assert_eq!(msgs[4].payload[..], [10, 11]);
    }

    /// ffmpeg/librtmp semantics: after fmt0, a fmt3 new message adds the fmt0 timestamp field.
    #[test]
    fn fmt3_after_fmt0_repeats_the_fmt0_field_as_delta() {
        let data = [
            0x04, 0, 0, 40, 0, 0, 1, 8, 1, 0, 0, 0, 0xaa, 0xc4, 0xbb, 0xc4, 0xcc,
        ];
        let msgs = decode_all(&mut decoder(), &data);
        let ts: Vec<_> = msgs.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, [40, 80, 120]);
    }

    #[test]
    fn timestamp_arithmetic_wraps() {
        let mut data = encode(128, 3, 0xffff_fff0, 8, 1, &[1]);
        data.extend_from_slice(&[0x83, 0, 0, 0x20, 2]); // fmt2 delta 0x20 wraps past 2^32
        let msgs = decode_all(&mut decoder(), &data);
        assert_eq!(msgs[1].timestamp, 0x10);
    }

    #[test]
    fn extended_timestamps_round_trip() {
        let payload: Vec<u8> = (0..400u32).map(|i| (i * 7) as u8).collect();
        for ts in [0xff_fffe, 0xff_ffff, 0x100_0000, 0x1234_5678, u32::MAX] {
            let bytes = encode(128, 6, ts, 9, 1, &payload);
            let extended = ts >= 0xff_ffff;
            assert_eq!(bytes.len(), 12 + 400 + 3 + if extended { 16 } else { 0 });
            if extended {
                assert_eq!(bytes[1..4], [0xff; 3]);
                assert_eq!(bytes[12..16], ts.to_be_bytes());
                assert_eq!(
                    bytes[16 + 128..16 + 133],
                    [&[0xc6][..], &ts.to_be_bytes()].concat()[..]
                );
            }
            let msgs = decode_all(&mut decoder(), &bytes);
            assert_eq!((msgs.len(), msgs[0].timestamp), (1, ts));
            assert_eq!(msgs[0].payload[..], payload[..]);
        }
    }

    /// Removes the repeated extended timestamp after every fmt3 basic header of one message.
    fn strip_fmt3_extended(bytes: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = bytes[..16 + chunk.min(bytes.len() - 16)].to_vec();
        for piece in bytes[16 + chunk..].chunks(5 + chunk) {
            out.push(piece[0]);
            out.extend_from_slice(&piece[5..]);
        }
        out
    }

    #[test]
    fn extended_timestamp_not_repeated_on_continuations() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let full = encode(128, 6, 0x0100_0000, 9, 1, &payload);
        let stripped = strip_fmt3_extended(&full, 128);
        assert_eq!(stripped.len(), full.len() - 8);
        let msgs = decode_all(&mut decoder(), &stripped);
        assert_eq!(msgs[0].timestamp, 0x0100_0000);
        assert_eq!(msgs[0].payload[..], payload[..]);
    }

    #[test]
    fn extended_delta_on_fmt1_repeated_as_delta_or_absolute() {
        let base = encode(128, 6, 1000, 9, 1, &[0]);
        let delta: u32 = 0x0100_0000;
        let absolute = 1000 + delta;
        for repeat in [Some(delta), Some(absolute), None] {
            let mut data = base.clone();
            data.extend_from_slice(&[0x46, 0xff, 0xff, 0xff, 0, 0, 200, 9]);
            data.extend_from_slice(&delta.to_be_bytes());
            data.extend_from_slice(&[1; 128]);
            data.push(0xc6);
            if let Some(v) = repeat {
                data.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(&[2; 72]);
            let msgs = decode_all(&mut decoder(), &data);
            assert_eq!(msgs.len(), 2, "{repeat:?}");
            assert_eq!(msgs[1].timestamp, absolute);
            assert_eq!(msgs[1].payload[..], [&[1; 128][..], &[2; 72]].concat()[..]);
        }
    }

    /// Spec 5.3.1.3: a fmt3 header starting a message after an extended header carries it.
    #[test]
    fn fmt3_new_message_reads_extended_timestamp() {
        let mut data = encode(128, 6, 0x0100_0000, 9, 1, &[1, 2]);
        data.push(0xc6);
        data.extend_from_slice(&0x0100_0005u32.to_be_bytes());
        data.extend_from_slice(&[3, 4]);
        let msgs = decode_all(&mut decoder(), &data);
        assert_eq!(msgs[1].timestamp, 0x0200_0005);
        assert_eq!(msgs[1].payload[..], [3, 4]);
    }

    /// A short tail that cannot be a repeated extended timestamp is payload, not a wait.
    #[test]
    fn partial_extended_peek_resolves_early() {
        let payload = [9u8; 130];
        let full = encode(128, 6, 0x0100_0000, 9, 1, &payload);
        let stripped = strip_fmt3_extended(&full, 128);
        let mut dec = decoder();
        let msgs = decode_all(&mut dec, &stripped);
        assert_eq!(msgs[0].payload[..], payload[..]);
        // Tail [0x01] is a prefix of the value: the decoder must wait for more bytes.
        let mut dec = decoder();
        let mut data = full[..16 + 128 + 1].to_vec();
        data.push(0x01);
        assert!(decode_all(&mut dec, &data).is_empty());
        let msgs = decode_all(&mut dec, &full[data.len()..]);
        assert_eq!(msgs[0].payload[..], payload[..]);
    }

    fn mixed_stream() -> Vec<u8> {
        let mut data = Vec::new();
        for (i, csid) in [3u32, 4, 6, 64, 400].iter().enumerate() {
            let payload: Vec<u8> = (0..(i * 97 + 3)).map(|b| b as u8).collect();
            let ts = if i % 2 == 0 {
                100 * i as u32
            } else {
                0x0100_0000 + i as u32
            };
            data.extend(encode(128, *csid, ts, 8 + i as u8, i as u32, &payload));
        }
        data.extend(encode(128, 4, 0, 9, 1, &[]));
        data
    }

    #[test]
    fn byte_at_a_time_matches_whole_buffer() {
        let data = mixed_stream();
        let whole = decode_all(&mut decoder(), &data);
        assert_eq!(whole.len(), 6);
        let mut dec = decoder();
        let mut split = Vec::new();
        for b in &data {
            split.extend(decode_all(&mut dec, std::slice::from_ref(b)));
        }
        assert_eq!(split, whole);
        assert_eq!((dec.buffered(), dec.pending), (0, 0));
    }

    #[test]
    fn zero_length_message() {
        let bytes = encode(128, 5, 9, 18, 1, &[]);
        assert_eq!(bytes, [0x05, 0, 0, 9, 0, 0, 0, 18, 1, 0, 0, 0]);
        let mut data = bytes.clone();
        data.push(0xc5); // fmt3: another empty message, ts + 9
        let msgs = decode_all(&mut decoder(), &data);
        assert_eq!(msgs.len(), 2);
        assert!(msgs.iter().all(|m| m.payload.is_empty()));
        assert_eq!(msgs[1].timestamp, 18);
    }

    #[test]
    fn chunk_size_limits() {
        let mut dec = decoder();
        assert_eq!(dec.set_chunk_size(0), Err(ChunkError::ZeroChunkSize));
        let max = MAX_MESSAGE_LEN;
        assert_eq!(
            dec.set_chunk_size(0x7fff_ffff),
            Err(ChunkError::ChunkSizeTooLarge {
                size: 0x7fff_ffff,
                max
            })
        );
        let mut dec = ChunkDecoder::new(DecoderLimits {
            max_chunk_size: u32::MAX,
            ..DecoderLimits::default()
        });
        assert!(dec.set_chunk_size(0x8000_0000).is_err(), "bit 31 must be 0");
        assert_eq!(dec.set_chunk_size(0x7fff_ffff), Ok(()));
        assert_eq!(dec.set_chunk_size(1), Ok(()));
    }

    #[test]
    fn oversized_message_rejected_before_payload() {
        let mut dec = ChunkDecoder::new(DecoderLimits {
            max_message_size: 1 << 20,
            ..DecoderLimits::default()
        });
        dec.push(&[0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
        let err = dec.next_message().unwrap_err();
        assert_eq!(
            err,
            ChunkError::MessageTooLarge {
                len: 0xff_ffff,
                max: 1 << 20
            }
        );
        assert!(err.to_string().contains("16777215"));
        assert!(dec.streams.values().all(|s| s.partial.is_none()));
    }

    #[test]
    fn claimed_length_does_not_reserve_memory() {
        let mut dec = decoder();
        dec.push(&[0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0, 1, 2, 3]);
        assert_eq!(dec.next_message(), Ok(None));
        let partial = dec.streams[&6].partial.as_ref().unwrap();
        assert_eq!(partial.len(), 3);
        assert!(partial.capacity() <= MIN_PAYLOAD_GROWTH);
    }

    #[test]
    fn pending_bytes_capped_across_chunk_streams() {
        let mut dec = ChunkDecoder::new(DecoderLimits {
            max_pending_bytes: 1000,
            ..DecoderLimits::default()
        });
        for csid in 3..10u32 {
            let bytes = encode(128, csid, 0, 9, 1, &[0; 1000]);
            assert!(decode_all(&mut dec, &bytes[..140]).is_empty());
        }
        assert_eq!(dec.pending, 7 * 128);
        let bytes = encode(128, 10, 0, 9, 1, &[0; 1000]);
        dec.push(&bytes[..140]);
        assert_eq!(
            dec.next_message(),
            Err(ChunkError::PendingTooLarge {
                pending: 1024,
                max: 1000
            })
        );
    }

    #[test]
    fn chunk_stream_count_capped() {
        let mut dec = ChunkDecoder::new(DecoderLimits {
            max_chunk_streams: 3,
            ..DecoderLimits::default()
        });
        for csid in 2..5 {
            assert_eq!(
                decode_all(&mut dec, &encode(128, csid, 0, 8, 1, &[1])).len(),
                1
            );
        }
        dec.push(&encode(128, 5, 0, 8, 1, &[1]));
        assert_eq!(
            dec.next_message(),
            Err(ChunkError::TooManyChunkStreams { max: 3 })
        );
    }

    #[test]
    fn missing_fmt0_header_rejected() {
        for (fmt, bytes) in [
            (1u8, &[0x47, 0, 0, 1, 0, 0, 1, 8][..]),
            (2, &[0x87, 0, 0, 1]),
            (3, &[0xc7]),
        ] {
            let mut dec = decoder();
            dec.push(bytes);
            assert_eq!(
                dec.next_message(),
                Err(ChunkError::MissingHeader { csid: 7, fmt })
            );
        }
    }

    #[test]
    fn abort_discards_partial_message() {
        let mut dec = decoder();
        let first = encode(128, 4, 10, 8, 1, &[7; 200]);
        assert!(decode_all(&mut dec, &first[..12 + 128]).is_empty());
        assert_eq!(dec.pending, 128);
        dec.abort(4);
        assert_eq!(dec.pending, 0);
        // The next fmt3 header starts a new 200-byte message (ts 10 + 10).
        let mut data = vec![0xc4];
        data.extend_from_slice(&[1; 128]);
        data.push(0xc4);
        data.extend_from_slice(&[2; 72]);
        let msgs = decode_all(&mut dec, &data);
        assert_eq!((msgs.len(), msgs[0].timestamp), (1, 20));
        assert_eq!(msgs[0].payload[..], [&[1; 128][..], &[2; 72]].concat()[..]);
        dec.abort(99); // unknown csid: no-op
    }

    #[test]
    fn abort_in_the_middle_of_a_chunk_skips_its_bytes() {
        let mut dec = decoder();
        let first = encode(128, 4, 10, 8, 1, &[7; 200]);
        assert!(decode_all(&mut dec, &first[..50]).is_empty());
        dec.abort(4);
        let mut rest = first[50..12 + 128].to_vec();
        rest.extend(encode(128, 4, 30, 8, 1, &[5; 3]));
        let msgs = decode_all(&mut dec, &rest);
        assert_eq!((msgs.len(), msgs[0].timestamp), (1, 30));
        assert_eq!(dec.pending, 0);
    }

    /// A new fmt0/1/2 header on a chunk stream with an incomplete message drops the partial.
    #[test]
    fn new_header_during_message_restarts() {
        let mut dec = decoder();
        let partial = encode(128, 4, 10, 8, 1, &[7; 200]);
        let mut data = partial[..12 + 128].to_vec();
        data.extend_from_slice(&[0x84, 0, 0, 5]); // fmt2 +5: new 200-byte message
        data.extend_from_slice(&[3; 128]);
        data.push(0xc4);
        data.extend_from_slice(&[4; 72]);
        let msgs = decode_all(&mut dec, &data);
        assert_eq!((msgs.len(), msgs[0].timestamp), (1, 15));
        assert_eq!(msgs[0].payload[..], [&[3; 128][..], &[4; 72]].concat()[..]);
        assert_eq!(dec.pending, 0);
    }

    #[test]
    fn encode_decode_round_trip_many_sizes() {
        for chunk_size in [1u32, 128, 4096, 65536] {
            let mut dec = decoder();
            dec.set_chunk_size(chunk_size).unwrap();
            let mut out = BytesMut::new();
            let mut expected = Vec::new();
            for len in 0..=600usize {
                let payload: Vec<u8> = (0..len).map(|i| (i ^ len) as u8).collect();
                let csid = [2, 3, 63, 64, 319, 320, 65599][len % 7];
                let ts = (len as u32) * 0x9000;
                let before = out.len();
                encode_message(&mut out, chunk_size, csid, ts, 9, 1, &payload);
                assert_eq!(out.len() - before, encoded_len(chunk_size, csid, ts, len));
                expected.push((csid, ts, payload));
            }
            let msgs = decode_all(&mut dec, &out);
            let got: Vec<_> = msgs
                .into_iter()
                .map(|m| (m.csid, m.timestamp, m.payload.to_vec()))
                .collect();
            assert_eq!(got, expected, "chunk size {chunk_size}");
        }
    }

    #[test]
    fn encoding_is_deterministic() {
        let payload = [5u8; 1000];
        assert_eq!(
            encode(128, 6, 0x0100_0000, 9, 1, &payload),
            encode(128, 6, 0x0100_0000, 9, 1, &payload)
        );
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for round in 0..10_000 {
            let len = rng.gen_range(0..600);
            let mut data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if round % 2 == 0 {
                // Plausible prefix so parsing goes deeper than the first header.
                data.splice(0..0, encode(128, 3, 0xff_ffff, 8, 1, &[1; 200]));
            }
            let mut dec = ChunkDecoder::new(DecoderLimits {
                max_message_size: 4096,
                max_chunk_size: 4096,
                max_pending_bytes: 8192,
                max_chunk_streams: 16,
            });
            if round % 3 == 0 {
                let _ = dec.set_chunk_size(rng.gen_range(0..5000));
            }
            for piece in data.chunks(rng.gen_range(1..64)) {
                dec.push(piece);
                while let Ok(Some(_)) = dec.next_message() {}
            }
        }
    }
}

/// Round trip on generated messages: `encode_message` at any chunk size, then `ChunkDecoder`
/// fed the bytes in arbitrary pieces, gives the messages back.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = Message> {
        let csid = prop_oneof![MIN_CSID..64u32, 64..320u32, 320..=MAX_CSID];
        (
            csid,
            any::<u32>(),
            any::<u8>(),
            any::<u32>(),
            vec(any::<u8>(), 0..1500),
        )
            .prop_map(|(csid, timestamp, type_id, stream_id, payload)| Message {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload: Bytes::from(payload),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn encode_then_decode(
            chunk_size in prop_oneof![1..300u32, 300..70_000u32],
            messages in vec(message(), 1..6),
            piece in 1..5000usize,
        ) {
            let mut bytes = BytesMut::new();
            for m in &messages {
                encode_message(&mut bytes, chunk_size, m.csid, m.timestamp, m.type_id, m.stream_id, &m.payload);
            }
            let mut dec = ChunkDecoder::new(DecoderLimits::default());
            dec.set_chunk_size(chunk_size).unwrap();
            let mut got = Vec::new();
            for part in bytes.chunks(piece) {
                dec.push(part);
                while let Some(m) = dec.next_message().unwrap() {
                    got.push(m);
                }
            }
            prop_assert_eq!(got, messages);
            prop_assert_eq!(dec.buffered(), 0);
        }
    }
}
