//! Sans-IO RTMP client session (relays, tests): handshake, `connect`, `createStream`, then
//! `publish` or `play` (Adobe RTMP 1.0 spec, 7.2), as ffmpeg's `rtmpproto.c` does them.
//!
//! Feed received bytes with [`ClientSession::feed`], collect [`ClientEvent`]s, and write what
//! [`ClientSession::take_output`] returns. The session answers pings, acknowledges received
//! bytes per the server's window and applies Set Chunk Size and Abort by itself.
//!
//! Chunk streams we send on (ffmpeg's choice): 2 protocol control, 3 NetConnection commands,
//! 4 audio, 5 data, 6 video, 8 NetStream commands (`publish`, `play`).

use std::collections::HashMap;
use std::fmt;

use bytes::{Bytes, BytesMut};

use super::amf::{decode_amf0, encode_amf0, AmfError, Value};
use super::chunk::{
    encode_message, ChunkDecoder, ChunkError, DecoderLimits, Message, DEFAULT_CHUNK_SIZE,
    MAX_MESSAGE_LEN,
};
use super::control::{
    msg_type, read_u32_payload, write_control_chunked, write_set_chunk_size, AckCounter,
    ControlError, UserControl,
};
use super::handshake::{ClientHandshake, HandshakeError};
use crate::media::flv;

/// Chunk stream of NetConnection commands (`connect`, `createStream`, ...).
const COMMAND_CSID: u32 = 3;
/// Chunk stream of NetStream commands (`publish`, `play`), ffmpeg's "source channel".
const STREAM_COMMAND_CSID: u32 = 8;
/// Buffer length announced after `play`, in milliseconds (ffmpeg's default `rtmp_buffer`).
const PLAY_BUFFER_MS: u32 = 3000;
/// `play` start argument: -2 s means "live stream if any, else recorded" (spec 7.2.2.1).
const PLAY_START_ANY: f64 = -2000.0;

/// What the client says in `connect` and how it writes chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Application name, the first path segment of the URL (`live`).
    pub app: String,
    /// `rtmp://host:port/app`, sent as `tcUrl`.
    pub tc_url: String,
    /// Chunk size announced with Set Chunk Size right after `connect` and used from then on;
    /// clamped to 1..=0xFFFFFF.
    pub chunk_size: u32,
    /// `flashVer` of `connect`.
    pub flash_ver: String,
    /// Complex (digest) handshake as Flash/ffmpeg, else the simple one.
    pub complex_handshake: bool,
}

impl ClientConfig {
    /// Defaults: chunk size 4096, ffmpeg-like `flashVer`, complex handshake.
    pub fn new(app: &str, tc_url: &str) -> Self {
        Self {
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            chunk_size: 4096,
            flash_ver: "FMLE/3.0 (compatible; shardcast)".to_owned(),
            complex_handshake: true,
        }
    }
}

/// Kind of a media message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Audio message (type 8): an FLV audio tag body.
    Audio,
    /// Video message (type 9): an FLV video tag body.
    Video,
    /// AMF0 data message (type 18), e.g. `onMetaData`.
    Data,
}

impl MediaKind {
    /// RTMP message type id.
    pub fn type_id(self) -> u8 {
        match self {
            Self::Audio => msg_type::AUDIO,
            Self::Video => msg_type::VIDEO,
            Self::Data => msg_type::DATA_AMF0,
        }
    }

    /// Chunk stream we send this kind on.
    fn csid(self) -> u32 {
        match self {
            Self::Audio => 4,
            Self::Data => 5,
            Self::Video => 6,
        }
    }

    /// The kind of a media message type id (aggregates excluded).
    fn from_type_id(type_id: u8) -> Option<Self> {
        match type_id {
            msg_type::AUDIO => Some(Self::Audio),
            msg_type::VIDEO => Some(Self::Video),
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => Some(Self::Data),
            _ => None,
        }
    }
}

/// Something the server said.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `_result` of `connect`.
    Connected,
    /// `_error` of `connect`, with the info object's `code` and `description`.
    ConnectRejected { code: String, description: String },
    /// `_result` of `createStream`.
    StreamCreated { stream_id: u32 },
    /// `_error` of `createStream`, or a `_result` without a usable stream id.
    CreateStreamFailed { code: String, description: String },
    /// An `onStatus` (NetStream.Publish.Start, NetStream.Play.Start, ...) on this message stream.
    Status {
        stream_id: u32,
        level: String,
        code: String,
        description: String,
    },
    /// An audio, video or data message (aggregates arrive split into their parts).
    Media {
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
        stream_id: u32,
    },
    /// A user control event (pings are answered before this is reported).
    UserControl(UserControl),
    /// Any other command: `name` then every value after it, transaction id first
    /// (`onBWDone`, `close`, replies to `releaseStream`, ...).
    Command { name: String, args: Vec<Value> },
}

/// Fatal errors of a client session: close the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientError {
    /// The server's handshake is unusable.
    Handshake(HandshakeError),
    /// The server's chunk stream is invalid or exceeds our limits.
    Chunk(ChunkError),
    /// A protocol control message with a malformed payload.
    Control { type_id: u8, source: ControlError },
    /// A command message that is not valid AMF.
    Amf(AmfError),
    /// A command message whose first value is not a string.
    CommandWithoutName,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "handshake: {e}"),
            Self::Chunk(e) => write!(f, "chunk stream: {e}"),
            Self::Control { type_id, source } => {
                write!(f, "control message type {type_id}: {source}")
            }
            Self::Amf(e) => write!(f, "command message: {e}"),
            Self::CommandWithoutName => write!(f, "command message without a command name"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Handshake(e) => Some(e),
            Self::Chunk(e) => Some(e),
            Self::Control { source, .. } => Some(source),
            Self::Amf(e) => Some(e),
            Self::CommandWithoutName => None,
        }
    }
}

impl From<HandshakeError> for ClientError {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<ChunkError> for ClientError {
    fn from(e: ChunkError) -> Self {
        Self::Chunk(e)
    }
}

impl From<AmfError> for ClientError {
    fn from(e: AmfError) -> Self {
        Self::Amf(e)
    }
}

/// A request whose `_result`/`_error` the session interprets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Connect,
    CreateStream,
}

/// Sans-IO RTMP client connection.
#[derive(Debug)]
pub struct ClientSession {
    cfg: ClientConfig,
    /// `Some` until the handshake completes.
    handshake: Option<ClientHandshake>,
    decoder: ChunkDecoder,
    acks: AckCounter,
    /// Bytes to write now.
    out: BytesMut,
    /// Messages requested before the handshake completed; written right after `connect`.
    deferred: BytesMut,
    /// Chunk size of our outgoing messages.
    chunk_size: u32,
    next_txn: u32,
    requests: HashMap<u32, Request>,
    /// Stream name per message stream we publish on, for `FCUnpublish`.
    publishing: HashMap<u32, String>,
    /// Last Window Acknowledgement Size we sent.
    sent_window: Option<u32>,
    connected: bool,
}

impl ClientSession {
    /// A session that has not started its handshake; call [`start`](Self::start) first.
    pub fn new(cfg: ClientConfig) -> Self {
        Self::with_limits(cfg, DecoderLimits::default())
    }

    /// [`new`](Self::new) with bounds on what the server may make us buffer (message size,
    /// chunk size, pending bytes): a relay applies the server's own configured limits.
    pub fn with_limits(cfg: ClientConfig, limits: DecoderLimits) -> Self {
        let handshake = ClientHandshake::new(cfg.complex_handshake);
        Self {
            cfg,
            handshake: Some(handshake),
            decoder: ChunkDecoder::new(limits),
            acks: AckCounter::new(),
            out: BytesMut::new(),
            deferred: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            next_txn: 1,
            requests: HashMap::new(),
            publishing: HashMap::new(),
            sent_window: None,
            connected: false,
        }
    }

    /// C0+C1: the first bytes to send.
    pub fn start(&mut self) -> Vec<u8> {
        self.handshake
            .as_mut()
            .map(ClientHandshake::start)
            .unwrap_or_default()
    }

    /// True once the server accepted `connect`.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Consumes bytes from the server, appending what they mean to `events`. When the
    /// handshake completes, `connect` and Set Chunk Size are queued for output, followed by
    /// anything requested earlier.
    pub fn feed(&mut self, data: &[u8], events: &mut Vec<ClientEvent>) -> Result<(), ClientError> {
        let Some(handshake) = self.handshake.as_mut() else {
            return self.feed_chunks(data, events);
        };
        let output = handshake.feed(data)?;
        self.out.extend_from_slice(&output.to_send);
        if !output.done {
            return Ok(());
        }
        self.handshake = None;
        self.send_connect();
        self.feed_chunks(&output.leftover, events)
    }

    /// Bytes to write to the server now (possibly empty).
    pub fn take_output(&mut self) -> Bytes {
        self.out.split().freeze()
    }

    /// Number of bytes waiting in the output.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Chunk size of our outgoing messages (the configured one once `connect` is sent), for
    /// callers that chunk media themselves on csids 4 (audio), 5 (data) and 6 (video).
    pub fn out_chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// True once the handshake is over.
    pub fn handshake_done(&self) -> bool {
        self.handshake.is_none()
    }

    /// Sends `createStream`; the answer is [`ClientEvent::StreamCreated`] or
    /// [`ClientEvent::CreateStreamFailed`].
    pub fn create_stream(&mut self) {
        let txn = self.request(Request::CreateStream);
        self.send_command(COMMAND_CSID, 0, &["createStream".into(), txn, Value::Null]);
    }

    /// Sends `releaseStream`, `FCPublish` and `publish(name, "live")` as ffmpeg does; the
    /// answer is a [`ClientEvent::Status`] (NetStream.Publish.Start on success).
    pub fn publish(&mut self, stream_id: u32, name: &str) {
        for command in ["releaseStream", "FCPublish"] {
            let txn = self.txn();
            self.send_command(
                COMMAND_CSID,
                0,
                &[command.into(), txn, Value::Null, name.into()],
            );
        }
        let txn = self.txn();
        let publish = [
            "publish".into(),
            txn,
            Value::Null,
            name.into(),
            "live".into(),
        ];
        self.send_command(STREAM_COMMAND_CSID, stream_id, &publish);
        self.publishing.insert(stream_id, name.to_owned());
    }

    /// Sends `play(name, -2000)` and a 3 s buffer length (spec 7.2.2.1, ffmpeg); the answer is
    /// a [`ClientEvent::Status`] (NetStream.Play.Start on success), then media.
    pub fn play(&mut self, stream_id: u32, name: &str) {
        let txn = self.txn();
        let play = [
            "play".into(),
            txn,
            Value::Null,
            name.into(),
            PLAY_START_ANY.into(),
        ];
        self.send_command(STREAM_COMMAND_CSID, stream_id, &play);
        let buffer = UserControl::SetBufferLength {
            stream_id,
            millis: PLAY_BUFFER_MS,
        };
        self.send_control(msg_type::USER_CONTROL, &buffer.encode());
    }

    /// Sends one audio (csid 4), video (csid 6) or data (csid 5) message on `stream_id`.
    /// Data payloads go as given: wrapping metadata in `@setDataFrame` is the caller's choice.
    /// Payloads longer than 0xFFFFFF bytes cannot be expressed in RTMP and are not sent.
    pub fn send_media(&mut self, stream_id: u32, kind: MediaKind, timestamp: u32, payload: &[u8]) {
        if payload.len() > MAX_MESSAGE_LEN as usize {
            return;
        }
        let chunk_size = self.send_chunk_size();
        let out = self.out_buf();
        encode_message(
            out,
            chunk_size,
            kind.csid(),
            timestamp,
            kind.type_id(),
            stream_id,
            payload,
        );
    }

    /// Sends `FCUnpublish` (if we publish on this stream) then `deleteStream`.
    pub fn delete_stream(&mut self, stream_id: u32) {
        if let Some(name) = self.publishing.remove(&stream_id) {
            let txn = self.txn();
            let unpublish = ["FCUnpublish".into(), txn, Value::Null, name.into()];
            self.send_command(COMMAND_CSID, 0, &unpublish);
        }
        let txn = self.txn();
        let delete = [
            "deleteStream".into(),
            txn,
            Value::Null,
            f64::from(stream_id).into(),
        ];
        self.send_command(COMMAND_CSID, 0, &delete);
    }

    /// Appends arbitrary bytes to the output (tests of hostile input).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The chunk size we announce after `connect`.
    fn announced_chunk_size(&self) -> u32 {
        self.cfg.chunk_size.clamp(1, MAX_MESSAGE_LEN)
    }

    /// Chunk size of a message written now: messages held back during the handshake go out
    /// after our Set Chunk Size, so they are chunked at the announced size.
    fn send_chunk_size(&self) -> u32 {
        if self.handshake.is_some() {
            self.announced_chunk_size()
        } else {
            self.chunk_size
        }
    }

    /// Queues a protocol or user control message at our chunk size (which may be below the
    /// 10 bytes of a control payload).
    fn send_control(&mut self, type_id: u8, payload: &[u8]) {
        let chunk_size = self.send_chunk_size();
        write_control_chunked(self.out_buf(), chunk_size, type_id, payload);
    }

    /// Where messages go: held back until the handshake is over and `connect` is sent.
    fn out_buf(&mut self) -> &mut BytesMut {
        if self.handshake.is_some() {
            &mut self.deferred
        } else {
            &mut self.out
        }
    }

    /// Queues `connect` (at the default chunk size), Set Chunk Size, then deferred messages.
    fn send_connect(&mut self) {
        let txn = self.request(Request::Connect);
        let mut props = vec![
            ("app".to_string(), self.cfg.app.as_str().into()),
            ("type".to_string(), "nonprivate".into()),
            ("flashVer".to_string(), self.cfg.flash_ver.as_str().into()),
            ("tcUrl".to_string(), self.cfg.tc_url.as_str().into()),
            ("fpad".to_string(), false.into()),
            ("capabilities".to_string(), 15.0.into()),
            ("audioCodecs".to_string(), 4071.0.into()),
            ("videoCodecs".to_string(), 252.0.into()),
            ("videoFunction".to_string(), 1.0.into()),
        ];
        // Enhanced RTMP v1/v2: a relay forwards HEVC, AV1, VP9, Opus... as they come.
        props.extend(super::caps::forwarding_properties());
        let props = Value::Object(props);
        self.send_command(COMMAND_CSID, 0, &["connect".into(), txn, props]);
        // Spec 5.4.1: the new size applies to every chunk we send after this message.
        let chunk_size = self.announced_chunk_size();
        write_set_chunk_size(&mut self.out, chunk_size);
        self.chunk_size = chunk_size;
        let deferred = self.deferred.split();
        self.out.extend_from_slice(&deferred);
    }

    /// The next transaction id, as an AMF number.
    fn txn(&mut self) -> Value {
        let txn = self.next_txn;
        self.next_txn = self.next_txn.wrapping_add(1).max(1);
        f64::from(txn).into()
    }

    /// Allocates a transaction id whose reply the session interprets.
    fn request(&mut self, request: Request) -> Value {
        self.requests.insert(self.next_txn, request);
        self.txn()
    }

    fn send_command(&mut self, csid: u32, stream_id: u32, values: &[Value]) {
        let mut payload = Vec::new();
        encode_amf0(values, &mut payload);
        let chunk_size = self.send_chunk_size();
        let out = self.out_buf();
        encode_message(
            out,
            chunk_size,
            csid,
            0,
            msg_type::COMMAND_AMF0,
            stream_id,
            &payload,
        );
    }

    /// Decodes chunk-stream bytes, then acknowledges them if a window's worth arrived.
    fn feed_chunks(
        &mut self,
        data: &[u8],
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        self.decoder.push(data);
        while let Some(message) = self.decoder.next_message()? {
            self.handle_message(message, events)?;
        }
        // Spec 5.4.3: the sequence number counts the bytes received so far (after the handshake,
        // as ffmpeg counts them).
        if let Some(sequence) = self.acks.on_received(data.len()) {
            self.send_control(msg_type::ACK, &sequence.to_be_bytes());
        }
        Ok(())
    }

    fn handle_message(
        &mut self,
        msg: Message,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        let control = |source| ClientError::Control {
            type_id: msg.type_id,
            source,
        };
        match msg.type_id {
            msg_type::SET_CHUNK_SIZE => {
                let size = read_u32_payload(&msg.payload).map_err(control)?;
                self.decoder.set_chunk_size(size)?;
            }
            msg_type::ABORT => {
                let csid = read_u32_payload(&msg.payload).map_err(control)?;
                self.decoder.abort(csid);
            }
            msg_type::WINDOW_ACK_SIZE => {
                let size = read_u32_payload(&msg.payload).map_err(control)?;
                self.acks.set_window(size);
            }
            msg_type::SET_PEER_BANDWIDTH => {
                let window = read_u32_payload(&msg.payload).map_err(control)?;
                self.answer_peer_bandwidth(window);
            }
            msg_type::USER_CONTROL => {
                let event = UserControl::parse(&msg.payload).map_err(control)?;
                if let UserControl::PingRequest(timestamp) = event {
                    let pong = UserControl::PingResponse(timestamp);
                    self.send_control(msg_type::USER_CONTROL, &pong.encode());
                }
                events.push(ClientEvent::UserControl(event));
            }
            msg_type::COMMAND_AMF0 => self.handle_command(&msg, &msg.payload, events)?,
            // Spec 7.1.1: an AMF3 command starts with a format byte, then AMF0 values (0x11
            // switches one value to AMF3).
            msg_type::COMMAND_AMF3 => {
                self.handle_command(&msg, msg.payload.get(1..).unwrap_or_default(), events)?
            }
            msg_type::AGGREGATE => split_aggregate(&msg, events),
            type_id => {
                if let Some(event) =
                    media_event(type_id, msg.timestamp, msg.stream_id, &msg.payload)
                {
                    events.push(event);
                }
            }
        }
        Ok(())
    }

    /// Spec 5.4.5: answer Set Peer Bandwidth with our Window Acknowledgement Size when it
    /// differs from the last one we sent (librtmp sends it too).
    fn answer_peer_bandwidth(&mut self, window: u32) {
        if self.sent_window != Some(window) {
            self.send_control(msg_type::WINDOW_ACK_SIZE, &window.to_be_bytes());
            self.sent_window = Some(window);
        }
    }

    fn handle_command(
        &mut self,
        msg: &Message,
        payload: &[u8],
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        let mut values = decode_amf0(payload)?.into_iter();
        let Some(Value::String(name)) = values.next() else {
            return Err(ClientError::CommandWithoutName);
        };
        let args: Vec<Value> = values.collect();
        let request = args
            .first()
            .and_then(amf_u32)
            .filter(|_| name == "_result" || name == "_error")
            .and_then(|txn| self.requests.remove(&txn));
        let event = match (request, name.as_str()) {
            (Some(request), _) => self.reply_event(request, name == "_result", &args),
            (None, "onStatus") => match info_object(&args) {
                Some(info) => ClientEvent::Status {
                    stream_id: msg.stream_id,
                    level: info_string(info, "level"),
                    code: info_string(info, "code"),
                    description: info_string(info, "description"),
                },
                None => ClientEvent::Command { name, args },
            },
            _ => ClientEvent::Command { name, args },
        };
        events.push(event);
        Ok(())
    }

    /// The event for the `_result` (`ok`) or `_error` of one of our requests.
    fn reply_event(&mut self, request: Request, ok: bool, args: &[Value]) -> ClientEvent {
        let info = info_object(args);
        let code = info.map(|i| info_string(i, "code")).unwrap_or_default();
        let description = info
            .map(|i| info_string(i, "description"))
            .unwrap_or_default();
        match request {
            Request::Connect if ok => {
                self.connected = true;
                ClientEvent::Connected
            }
            Request::Connect => ClientEvent::ConnectRejected { code, description },
            // Spec 7.2.1.3: `_result`, txn, command object (null), stream id.
            Request::CreateStream if ok => match args.get(2).and_then(amf_u32) {
                Some(stream_id) => ClientEvent::StreamCreated { stream_id },
                None => ClientEvent::CreateStreamFailed {
                    code,
                    description: "createStream result without a stream id".to_owned(),
                },
            },
            Request::CreateStream => ClientEvent::CreateStreamFailed { code, description },
        }
    }
}

/// A non-negative integral AMF number that fits a u32 (transaction and stream ids).
fn amf_u32(value: &Value) -> Option<u32> {
    let n = value.as_f64()?;
    let valid = n >= 0.0 && n <= f64::from(u32::MAX) && n.fract() == 0.0;
    // The range check makes the cast exact.
    valid.then_some(n as u32)
}

/// The info object of a status or reply: the last object among the arguments.
fn info_object(args: &[Value]) -> Option<&Value> {
    args.iter().rev().find(|v| {
        matches!(
            v,
            Value::Object(_) | Value::TypedObject { .. } | Value::EcmaArray(_)
        )
    })
}

fn info_string(info: &Value, key: &str) -> String {
    info.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The media event of an audio, video or data message; `None` for other types.
fn media_event(
    type_id: u8,
    timestamp: u32,
    stream_id: u32,
    payload: &Bytes,
) -> Option<ClientEvent> {
    let kind = MediaKind::from_type_id(type_id)?;
    // Spec 7.1.2: an AMF3 data message starts with a format byte; reported as AMF0 data.
    let payload = if type_id == msg_type::DATA_AMF3 {
        payload.slice(payload.len().min(1)..)
    } else {
        payload.clone()
    };
    Some(ClientEvent::Media {
        kind,
        timestamp,
        payload,
        stream_id,
    })
}

/// Spec 7.1.6: an aggregate message is a sequence of FLV-like tags (11-byte header, body,
/// 4-byte back pointer). Sub-message timestamps are offsets from the first one, rebased on
/// the aggregate's timestamp. A truncated tail is ignored (nothing more can be trusted).
fn split_aggregate(msg: &Message, events: &mut Vec<ClientEvent>) {
    let mut first_timestamp = None;
    for tag in flv::tags(&msg.payload, 0) {
        let base = *first_timestamp.get_or_insert(tag.timestamp);
        let timestamp = msg.timestamp.wrapping_add(tag.timestamp.wrapping_sub(base));
        let body = msg.payload.slice(tag.body);
        if let Some(event) = media_event(tag.type_id, timestamp, msg.stream_id, &body) {
            events.push(event);
        }
    }
}

/// Parts of an `rtmp[s]://host[:port]/app[/stream]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: RTMP over TLS.
    pub secure: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port, 1935 when absent.
    pub port: u16,
    /// First path segment.
    pub app: String,
    /// The rest of the path (may contain `/`), query string included; may be empty.
    pub stream: String,
}

/// Why a URL is not a usable `rtmp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// The scheme is neither `rtmp://` nor `rtmps://`.
    Scheme,
    /// No host before the path.
    MissingHost,
    /// The port is not a number in 1..=65535.
    BadPort,
    /// No application name in the path.
    MissingApp,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "URL does not start with rtmp:// or rtmps://",
            Self::MissingHost => "URL has no host",
            Self::BadPort => "URL port is not a number in 1..=65535",
            Self::MissingApp => "URL has no application name",
        })
    }
}

impl std::error::Error for UrlError {}

impl RtmpUrl {
    /// Default RTMP port.
    pub const DEFAULT_PORT: u16 = 1935;
    /// Default RTMPS port (as ffmpeg and livego).
    pub const DEFAULT_TLS_PORT: u16 = 443;

    /// Splits a URL as livego and ffmpeg do: app is the first path segment, the stream the
    /// rest, the query string kept in the stream name.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (secure, rest) = match strip_prefix_ignore_case(url, "rtmps://") {
            Some(rest) => (true, rest),
            None => (
                false,
                strip_prefix_ignore_case(url, "rtmp://").ok_or(UrlError::Scheme)?,
            ),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let default_port = if secure {
            Self::DEFAULT_TLS_PORT
        } else {
            Self::DEFAULT_PORT
        };
        let (host, port) = split_host_port(authority, default_port)?;
        let (app, stream) = path.split_once('/').unwrap_or((path, ""));
        if app.is_empty() {
            return Err(UrlError::MissingApp);
        }
        Ok(Self {
            secure,
            host: host.to_owned(),
            port,
            app: app.to_owned(),
            stream: stream.to_owned(),
        })
    }

    /// `host:port` for connecting (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `rtmp[s]://host:port/app`, the `tcUrl` of `connect`.
    pub fn tc_url(&self) -> String {
        let scheme = if self.secure { "rtmps" } else { "rtmp" };
        format!("{scheme}://{}/{}", self.authority(), self.app)
    }

    /// A client configuration for this URL with the [`ClientConfig::new`] defaults.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(&self.app, &self.tc_url())
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str, default_port: u16) -> Result<(&str, u16), UrlError> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(UrlError::MissingHost)?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or(UrlError::BadPort)?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::super::chunk::encoded_len;
    use super::super::control::{
        limit_type, write_ack, write_set_peer_bandwidth, write_user_control, write_window_ack_size,
    };
    use super::super::handshake::ServerHandshake;
    use super::*;

    /// The server end of a conversation: handshake, then decoding what the client sends.
    struct Server {
        handshake: ServerHandshake,
        decoder: ChunkDecoder,
    }

    impl Server {
        fn new() -> Self {
            Self {
                handshake: ServerHandshake::new(),
                decoder: ChunkDecoder::new(DecoderLimits::default()),
            }
        }

        /// Decodes client bytes into messages, applying the client's Set Chunk Size.
        fn receive(&mut self, bytes: &[u8]) -> Vec<Message> {
            self.decoder.push(bytes);
            let mut messages = Vec::new();
            while let Some(m) = self.decoder.next_message().unwrap() {
                if m.type_id == msg_type::SET_CHUNK_SIZE {
                    let size = read_u32_payload(&m.payload).unwrap();
                    self.decoder.set_chunk_size(size).unwrap();
                }
                messages.push(m);
            }
            messages
        }
    }

    fn config() -> ClientConfig {
        ClientConfig::new("live", "rtmp://127.0.0.1:1935/live")
    }

    /// Runs the handshake; returns the client, the server and the client's first messages.
    fn handshaken(cfg: ClientConfig) -> (ClientSession, Server, Vec<Message>) {
        let mut client = ClientSession::new(cfg);
        let mut server = Server::new();
        let s0s1s2 = server.handshake.feed(&client.start()).unwrap();
        assert!(!s0s1s2.done);
        let mut events = Vec::new();
        client.feed(&s0s1s2.to_send, &mut events).unwrap();
        assert!(events.is_empty());
        let c2_and_more = server.handshake.feed(&client.take_output()).unwrap();
        assert!(c2_and_more.done);
        let messages = server.receive(&c2_and_more.leftover);
        (client, server, messages)
    }

    /// One AMF0 command message as the server writes it (chunk size 128).
    fn command(stream_id: u32, values: &[Value]) -> Vec<u8> {
        let mut payload = Vec::new();
        encode_amf0(values, &mut payload);
        message(3, msg_type::COMMAND_AMF0, 0, stream_id, &payload)
    }

    fn message(csid: u32, type_id: u8, timestamp: u32, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_message(&mut out, 128, csid, timestamp, type_id, stream_id, payload);
        out.to_vec()
    }

    fn feed(client: &mut ClientSession, bytes: &[u8]) -> Vec<ClientEvent> {
        let mut events = Vec::new();
        client.feed(bytes, &mut events).unwrap();
        events
    }

    fn amf(m: &Message) -> Vec<Value> {
        assert_eq!(m.type_id, msg_type::COMMAND_AMF0);
        decode_amf0(&m.payload).unwrap()
    }

    fn result(txn: f64, info: Value) -> Vec<u8> {
        command(0, &["_result".into(), txn.into(), Value::Null, info])
    }

    fn status(level: &str, code: &str) -> Value {
        Value::object([
            ("level", level.into()),
            ("code", code.into()),
            ("description", "text".into()),
        ])
    }

    /// A client that got `_result` for `connect`.
    fn connected() -> (ClientSession, Server) {
        let (mut client, server, _) = handshaken(config());
        let events = feed(&mut client, &result(1.0, status("status", "x")));
        assert_eq!(events, [ClientEvent::Connected]);
        (client, server)
    }

    /// A connected client with stream 1 created.
    fn with_stream() -> (ClientSession, Server) {
        let (mut client, mut server) = connected();
        client.create_stream();
        let msgs = server.receive(&client.take_output());
        assert_eq!(
            amf(&msgs[0]),
            ["createStream".into(), 2.0.into(), Value::Null]
        );
        let reply = command(0, &["_result".into(), 2.0.into(), Value::Null, 1.0.into()]);
        let events = feed(&mut client, &reply);
        assert_eq!(events, [ClientEvent::StreamCreated { stream_id: 1 }]);
        (client, server)
    }

    #[test]
    fn a_chunk_size_below_a_control_payload_chunks_everything_at_it() {
        // Chunk size 1 is legal: every message we send after Set Chunk Size, control messages
        // (up to 10 bytes) and those held back during the handshake included, uses it.
        let mut client = ClientSession::new(ClientConfig {
            chunk_size: 1,
            ..config()
        });
        let mut server = Server::new();
        let s0s1s2 = server.handshake.feed(&client.start()).unwrap();
        client.create_stream(); // held back until `connect` is sent
        let mut events = Vec::new();
        client.feed(&s0s1s2.to_send, &mut events).unwrap();
        let c2_and_more = server.handshake.feed(&client.take_output()).unwrap();
        let msgs = server.receive(&c2_and_more.leftover);
        let types: Vec<u8> = msgs.iter().map(|m| m.type_id).collect();
        assert_eq!(
            types,
            [
                msg_type::COMMAND_AMF0,
                msg_type::SET_CHUNK_SIZE,
                msg_type::COMMAND_AMF0
            ]
        );
        assert_eq!(msgs[1].payload[..], 1u32.to_be_bytes());
        assert_eq!(amf(&msgs[2])[0], "createStream".into());
        let Value::Number(connect_txn) = amf(&msgs[0])[1] else {
            panic!("connect has a transaction id")
        };

        let mut input = BytesMut::new();
        write_set_peer_bandwidth(&mut input, 1000, limit_type::DYNAMIC);
        write_user_control(&mut input, &UserControl::PingRequest(7));
        let mut input = input.to_vec();
        input.extend(result(connect_txn, status("status", "x")));
        assert!(feed(&mut client, &input).contains(&ClientEvent::Connected));
        client.play(1, "cam");
        let msgs = server.receive(&client.take_output());
        let types: Vec<u8> = msgs.iter().map(|m| m.type_id).collect();
        assert_eq!(
            types,
            [
                msg_type::WINDOW_ACK_SIZE,
                msg_type::USER_CONTROL,
                msg_type::COMMAND_AMF0,
                msg_type::USER_CONTROL
            ]
        );
        assert_eq!(msgs[0].payload[..], 1000u32.to_be_bytes());
        assert_eq!(
            UserControl::parse(&msgs[1].payload).unwrap(),
            UserControl::PingResponse(7)
        );
        assert_eq!(amf(&msgs[2])[0], "play".into());
        assert!(matches!(
            UserControl::parse(&msgs[3].payload).unwrap(),
            UserControl::SetBufferLength { stream_id: 1, .. }
        ));
        assert!(msgs.iter().all(|m| m.csid > 1));
    }

    #[test]
    fn handshake_then_connect_and_chunk_size() {
        for complex in [false, true] {
            let cfg = ClientConfig {
                complex_handshake: complex,
                ..config()
            };
            let (client, _, msgs) = handshaken(cfg);
            assert_eq!(msgs.len(), 2);
            let connect = &msgs[0];
            assert_eq!((connect.csid, connect.stream_id), (3, 0));
            let values = amf(connect);
            assert_eq!(values[..2], ["connect".into(), 1.0.into()]);
            let props = &values[2];
            assert_eq!(props.get("app"), Some(&"live".into()));
            assert_eq!(
                props.get("tcUrl"),
                Some(&"rtmp://127.0.0.1:1935/live".into())
            );
            assert_eq!(
                props.get("flashVer"),
                Some(&"FMLE/3.0 (compatible; shardcast)".into())
            );
            // What a server reads from it: an Enhanced RTMP client forwarding every codec.
            let caps = super::super::caps::ClientCaps::from_connect(props).expect("E-RTMP");
            for fourcc in ["hvc1", "av01", "vp09", "avc1"] {
                assert!(caps.lists(fourcc), "{fourcc}: {caps:?}");
            }
            assert_eq!(msgs[1].type_id, msg_type::SET_CHUNK_SIZE);
            assert_eq!(msgs[1].payload[..], 4096u32.to_be_bytes());
            assert!(!client.is_connected());
        }
    }

    #[test]
    fn limits_bound_what_the_server_may_send() {
        let limits = DecoderLimits {
            max_message_size: 1000,
            ..DecoderLimits::default()
        };
        let mut client = ClientSession::with_limits(config(), limits);
        let mut server = Server::new();
        let s0s1s2 = server.handshake.feed(&client.start()).unwrap();
        let mut events = Vec::new();
        client.feed(&s0s1s2.to_send, &mut events).unwrap();
        assert!(client.handshake_done());
        assert_eq!(client.out_chunk_size(), 4096);
        let big = message(6, msg_type::VIDEO, 0, 1, &[0u8; 1001]);
        let err = client.feed(&big, &mut events).unwrap_err();
        assert!(matches!(
            err,
            ClientError::Chunk(ChunkError::MessageTooLarge { len: 1001, .. })
        ));
    }

    #[test]
    fn connect_result_with_control_messages() {
        let (mut client, _, _) = handshaken(config());
        let mut input = BytesMut::new();
        write_window_ack_size(&mut input, 2_500_000);
        write_set_peer_bandwidth(&mut input, 2_500_000, limit_type::DYNAMIC);
        write_set_chunk_size(&mut input, 1024);
        let mut input = input.to_vec();
        let info = status("status", "NetConnection.Connect.Success");
        let mut payload = Vec::new();
        encode_amf0(
            &["_result".into(), 1.0.into(), Value::Null, info],
            &mut payload,
        );
        let mut reply = BytesMut::new();
        encode_message(&mut reply, 1024, 3, 0, 20, 0, &payload);
        input.extend_from_slice(&reply);
        assert_eq!(feed(&mut client, &input), [ClientEvent::Connected]);
        assert!(client.is_connected());
        // Spec 5.4.5: the peer bandwidth is answered with our window acknowledgement size.
        let mut expected = BytesMut::new();
        write_window_ack_size(&mut expected, 2_500_000);
        assert_eq!(client.take_output(), expected);
        // A repeated Set Peer Bandwidth with the same window is not answered again.
        let mut again = BytesMut::new();
        write_set_peer_bandwidth(&mut again, 2_500_000, limit_type::SOFT);
        assert!(feed(&mut client, &again).is_empty());
        assert_eq!(client.output_len(), 0);
    }

    #[test]
    fn connect_rejected() {
        let (mut client, _, _) = handshaken(config());
        let info = status("error", "NetConnection.Connect.Rejected");
        let reply = command(0, &["_error".into(), 1.0.into(), Value::Null, info]);
        assert_eq!(
            feed(&mut client, &reply),
            [ClientEvent::ConnectRejected {
                code: "NetConnection.Connect.Rejected".into(),
                description: "text".into()
            }]
        );
        assert!(!client.is_connected());
    }

    #[test]
    fn publish_sends_ffmpeg_sequence() {
        let (mut client, mut server) = with_stream();
        client.publish(1, "room");
        let msgs = server.receive(&client.take_output());
        let got: Vec<_> = msgs.iter().map(|m| (m.csid, m.stream_id, amf(m))).collect();
        assert_eq!(
            got,
            [
                (
                    3,
                    0,
                    vec![
                        "releaseStream".into(),
                        3.0.into(),
                        Value::Null,
                        "room".into()
                    ]
                ),
                (
                    3,
                    0,
                    vec!["FCPublish".into(), 4.0.into(), Value::Null, "room".into()]
                ),
                (
                    8,
                    1,
                    vec![
                        "publish".into(),
                        5.0.into(),
                        Value::Null,
                        "room".into(),
                        "live".into()
                    ]
                ),
            ]
        );
        let reply = command(
            1,
            &[
                "onStatus".into(),
                0.0.into(),
                Value::Null,
                status("status", "NetStream.Publish.Start"),
            ],
        );
        assert_eq!(
            feed(&mut client, &reply),
            [ClientEvent::Status {
                stream_id: 1,
                level: "status".into(),
                code: "NetStream.Publish.Start".into(),
                description: "text".into()
            }]
        );
    }

    #[test]
    fn media_uses_announced_chunk_size_and_csids() {
        let (mut client, mut server) = with_stream();
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        client.send_media(1, MediaKind::Video, 0x0100_0000, &big);
        client.send_media(1, MediaKind::Audio, 40, &[0xaf, 1, 2]);
        client.send_media(1, MediaKind::Data, 0, b"meta");
        let out = client.take_output();
        let expected_len = encoded_len(4096, 6, 0x0100_0000, big.len())
            + encoded_len(4096, 4, 40, 3)
            + encoded_len(4096, 5, 0, 4);
        assert_eq!(out.len(), expected_len);
        let got: Vec<_> = server
            .receive(&out)
            .into_iter()
            .map(|m| {
                (
                    m.csid,
                    m.type_id,
                    m.stream_id,
                    m.timestamp,
                    m.payload.to_vec(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (6, 9, 1, 0x0100_0000, big),
                (4, 8, 1, 40, vec![0xaf, 1, 2]),
                (5, 18, 1, 0, b"meta".to_vec())
            ]
        );
    }

    #[test]
    fn oversized_media_is_not_sent() {
        let (mut client, _) = connected();
        client.send_media(1, MediaKind::Video, 0, &vec![0; 0x100_0000]);
        assert_eq!(client.output_len(), 0);
    }

    #[test]
    fn play_sends_command_and_buffer_length() {
        let (mut client, mut server) = with_stream();
        client.play(1, "room");
        let msgs = server.receive(&client.take_output());
        assert_eq!((msgs[0].csid, msgs[0].stream_id), (8, 1));
        assert_eq!(
            amf(&msgs[0]),
            [
                "play".into(),
                3.0.into(),
                Value::Null,
                "room".into(),
                (-2000.0).into()
            ]
        );
        assert_eq!(msgs[1].type_id, msg_type::USER_CONTROL);
        assert_eq!(msgs[1].payload[..], [0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8]);
    }

    #[test]
    fn create_stream_failures() {
        let (mut client, mut server) = connected();
        client.create_stream();
        client.create_stream();
        server.receive(&client.take_output());
        let info = status("error", "NetConnection.Call.Failed");
        let error = command(0, &["_error".into(), 2.0.into(), Value::Null, info]);
        let no_id = command(0, &["_result".into(), 3.0.into(), Value::Null]);
        let events = feed(&mut client, &[error, no_id].concat());
        assert_eq!(
            events,
            [
                ClientEvent::CreateStreamFailed {
                    code: "NetConnection.Call.Failed".into(),
                    description: "text".into()
                },
                ClientEvent::CreateStreamFailed {
                    code: String::new(),
                    description: "createStream result without a stream id".into()
                }
            ]
        );
    }

    #[test]
    fn other_commands_are_reported_whole() {
        let (mut client, _) = connected();
        let bw = command(0, &["onBWDone".into(), 0.0.into(), Value::Null]);
        // A second `_result` for connect: no request is pending any more.
        let late = result(1.0, Value::Null);
        let no_info = command(1, &["onStatus".into(), 0.0.into(), Value::Null]);
        let events = feed(&mut client, &[bw, late, no_info].concat());
        assert_eq!(
            events,
            [
                ClientEvent::Command {
                    name: "onBWDone".into(),
                    args: vec![0.0.into(), Value::Null]
                },
                ClientEvent::Command {
                    name: "_result".into(),
                    args: vec![1.0.into(), Value::Null, Value::Null]
                },
                ClientEvent::Command {
                    name: "onStatus".into(),
                    args: vec![0.0.into(), Value::Null]
                }
            ]
        );
    }

    #[test]
    fn amf3_command_and_data_messages() {
        let (mut client, _) = connected();
        let mut payload = vec![0];
        encode_amf0(
            &[
                "onStatus".into(),
                0.0.into(),
                Value::Null,
                status("status", "NetStream.Play.Start"),
            ],
            &mut payload,
        );
        let mut input = message(3, msg_type::COMMAND_AMF3, 0, 1, &payload);
        input.extend(message(5, msg_type::DATA_AMF3, 7, 1, &[0, 2, 0, 1, b'x']));
        let events = feed(&mut client, &input);
        assert!(
            matches!(&events[0], ClientEvent::Status { code, .. } if code == "NetStream.Play.Start")
        );
        assert_eq!(
            events[1],
            ClientEvent::Media {
                kind: MediaKind::Data,
                timestamp: 7,
                payload: Bytes::from_static(&[2, 0, 1, b'x']),
                stream_id: 1
            }
        );
    }

    #[test]
    fn ping_is_answered_and_reported() {
        let (mut client, _) = connected();
        let mut input = BytesMut::new();
        write_user_control(&mut input, &UserControl::PingRequest(0x0102_0304));
        write_user_control(&mut input, &UserControl::StreamBegin(1));
        let events = feed(&mut client, &input);
        assert_eq!(
            events,
            [
                ClientEvent::UserControl(UserControl::PingRequest(0x0102_0304)),
                ClientEvent::UserControl(UserControl::StreamBegin(1))
            ]
        );
        assert_eq!(
            client.take_output()[..],
            [2, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 7, 1, 2, 3, 4]
        );
    }

    #[test]
    fn acknowledgements_follow_the_server_window() {
        let (mut client, _) = connected();
        let mut window = BytesMut::new();
        write_window_ack_size(&mut window, 1000);
        let video = message(6, msg_type::VIDEO, 0, 1, &[0x17; 600]);
        let mut total = window.len();
        let events = feed(&mut client, &window);
        assert!(events.is_empty());
        assert_eq!(client.output_len(), 0);
        // The connect `_result` bytes fed earlier count too.
        let before = result(1.0, status("status", "x")).len();
        feed(&mut client, &video);
        total += video.len();
        assert_eq!(client.output_len(), 0, "{} < 1000", before + total);
        feed(&mut client, &video);
        total += video.len();
        let sequence = (before + total) as u32;
        let mut expected = BytesMut::new();
        write_ack(&mut expected, sequence);
        assert_eq!(client.take_output(), expected);
    }

    #[test]
    fn media_events_after_set_chunk_size_and_abort() {
        let (mut client, _) = connected();
        let mut input = BytesMut::new();
        write_set_chunk_size(&mut input, 200);
        let mut input = input.to_vec();
        let mut partial = BytesMut::new();
        encode_message(&mut partial, 200, 4, 10, msg_type::AUDIO, 1, &[1; 300]);
        input.extend_from_slice(&partial[..12 + 200]);
        // Abort (type 2) discards the rest of the audio message on csid 4.
        input.extend(message(2, msg_type::ABORT, 0, 0, &4u32.to_be_bytes()));
        let mut video = BytesMut::new();
        encode_message(&mut video, 200, 6, 33, msg_type::VIDEO, 1, &[9; 500]);
        input.extend_from_slice(&video);
        let events = feed(&mut client, &input);
        assert_eq!(
            events,
            [ClientEvent::Media {
                kind: MediaKind::Video,
                timestamp: 33,
                payload: Bytes::from(vec![9; 500]),
                stream_id: 1
            }]
        );
    }

    fn tag(type_id: u8, timestamp: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flv::write_tag(&mut out, type_id, timestamp, body);
        out
    }

    #[test]
    fn aggregate_messages_are_split_and_rebased() {
        let (mut client, _) = connected();
        let mut body = tag(9, 0x0100_0000, &[0x17, 1]);
        body.extend(tag(8, 0x0100_0014, &[0xaf, 1]));
        body.extend(tag(4, 0x0100_0020, &[0, 0])); // not media: skipped
        body.extend(tag(9, 0x0100_0021, &[0x27, 1]));
        body.extend(&tag(9, 0x0100_0030, &[0x27, 2])[..12]); // truncated tail: ignored
        let input = message(6, msg_type::AGGREGATE, 1000, 1, &body);
        let got: Vec<_> = feed(&mut client, &input)
            .into_iter()
            .map(|e| match e {
                ClientEvent::Media {
                    kind,
                    timestamp,
                    payload,
                    stream_id,
                } => (kind, timestamp, payload.to_vec(), stream_id),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (MediaKind::Video, 1000, vec![0x17, 1], 1),
                (MediaKind::Audio, 1020, vec![0xaf, 1], 1),
                (MediaKind::Video, 1033, vec![0x27, 1], 1)
            ]
        );
    }

    #[test]
    fn delete_stream_unpublishes_first() {
        let (mut client, mut server) = with_stream();
        client.publish(1, "room");
        server.receive(&client.take_output());
        client.delete_stream(1);
        client.delete_stream(1);
        let msgs = server.receive(&client.take_output());
        let got: Vec<_> = msgs.iter().map(amf).collect();
        assert_eq!(
            got,
            [
                vec!["FCUnpublish".into(), 6.0.into(), Value::Null, "room".into()],
                vec!["deleteStream".into(), 7.0.into(), Value::Null, 1.0.into()],
                vec!["deleteStream".into(), 8.0.into(), Value::Null, 1.0.into()]
            ]
        );
    }

    #[test]
    fn requests_before_handshake_follow_connect() {
        let mut client = ClientSession::new(config());
        let mut server = Server::new();
        let c0c1 = client.start();
        client.create_stream();
        client.send_raw(b"");
        assert_eq!(
            client.output_len(),
            0,
            "nothing before the handshake is done"
        );
        let s0s1s2 = server.handshake.feed(&c0c1).unwrap();
        feed(&mut client, &s0s1s2.to_send);
        let rest = server.handshake.feed(&client.take_output()).unwrap();
        let msgs = server.receive(&rest.leftover);
        let names: Vec<_> = msgs
            .iter()
            .map(|m| match m.type_id {
                msg_type::COMMAND_AMF0 => amf(m)[0].clone(),
                t => f64::from(t).into(),
            })
            .collect();
        assert_eq!(names, ["connect".into(), 1.0.into(), "createStream".into()]);
    }

    #[test]
    fn handshake_leftover_is_decoded() {
        let mut client = ClientSession::new(config());
        let mut server = Server::new();
        let mut input = server.handshake.feed(&client.start()).unwrap().to_send;
        input.extend(message(6, msg_type::VIDEO, 5, 1, &[0x17]));
        let events = feed(&mut client, &input);
        assert!(matches!(
            events[..],
            [ClientEvent::Media { timestamp: 5, .. }]
        ));
    }

    #[test]
    fn protocol_errors() {
        let (mut client, _) = connected();
        let mut events = Vec::new();
        let zero = message(2, msg_type::SET_CHUNK_SIZE, 0, 0, &[0; 4]);
        let err = client.feed(&zero, &mut events).unwrap_err();
        assert_eq!(err, ClientError::Chunk(ChunkError::ZeroChunkSize));
        assert_eq!(err.to_string(), "chunk stream: peer set a chunk size of 0");

        let (mut client, _) = connected();
        let short = message(2, msg_type::WINDOW_ACK_SIZE, 0, 0, &[1, 2]);
        let err = client.feed(&short, &mut events).unwrap_err();
        assert_eq!(
            err,
            ClientError::Control {
                type_id: 5,
                source: ControlError::Truncated { needed: 4, got: 2 }
            }
        );

        let (mut client, _) = connected();
        let nameless = command(0, &[1.0.into(), 2.0.into()]);
        let err = client.feed(&nameless, &mut events).unwrap_err();
        assert_eq!(err, ClientError::CommandWithoutName);

        let (mut client, _) = connected();
        let bad_amf = message(3, msg_type::COMMAND_AMF0, 0, 0, &[0x02, 0, 9, b'x']);
        let err = client.feed(&bad_amf, &mut events).unwrap_err();
        assert_eq!(err, ClientError::Amf(AmfError::Truncated));

        let mut client = ClientSession::new(config());
        let err = client.feed(&[6], &mut events).unwrap_err();
        assert_eq!(
            err,
            ClientError::Handshake(HandshakeError::UnsupportedVersion(6))
        );
        assert!(events.is_empty());
    }

    #[test]
    fn random_server_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..1000 {
            let (mut client, _) = connected();
            let len = rng.gen_range(0..400);
            let mut data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if round % 2 == 0 {
                // Plausible headers so parsing reaches the message handlers.
                let type_id = rng.gen_range(1..=22);
                let payload: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect();
                data.splice(0..0, message(3, type_id, 0, 1, &payload));
            }
            let mut events = Vec::new();
            for piece in data.chunks(rng.gen_range(1..50)) {
                if client.feed(piece, &mut events).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn url_parsing() {
        let url = RtmpUrl::parse("rtmp://example.com/live/room?key=1").unwrap();
        assert_eq!(
            url,
            RtmpUrl {
                secure: false,
                host: "example.com".into(),
                port: 1935,
                app: "live".into(),
                stream: "room?key=1".into()
            }
        );
        assert_eq!(url.tc_url(), "rtmp://example.com:1935/live");
        let url = RtmpUrl::parse("RTMP://[::1]:1936/app/a/b").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 1936));
        assert_eq!((url.app.as_str(), url.stream.as_str()), ("app", "a/b"));
        assert_eq!(url.authority(), "[::1]:1936");
        let cfg = RtmpUrl::parse("rtmp://h:1/live").unwrap().client_config();
        assert_eq!(
            (cfg.app.as_str(), cfg.tc_url.as_str()),
            ("live", "rtmp://h:1/live")
        );
        let url = RtmpUrl::parse("rtmps://live.example.com/app/k").unwrap();
        assert!(url.secure);
        assert_eq!(url.port, 443);
        assert_eq!(url.tc_url(), "rtmps://live.example.com:443/app");
        let errors = [
            ("http://h/live/x", UrlError::Scheme),
            ("rtmp://", UrlError::MissingHost),
            ("rtmp://:1935/live", UrlError::MissingHost),
            ("rtmp://h:0/live", UrlError::BadPort),
            ("rtmp://h:x/live", UrlError::BadPort),
            ("rtmp://h:1935", UrlError::MissingApp),
            ("rtmp://h//x", UrlError::MissingApp),
        ];
        for (url, err) in errors {
            assert_eq!(RtmpUrl::parse(url), Err(err), "{url}");
        }
    }
}
