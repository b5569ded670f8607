//! The server side of one RTMP connection, sans-IO.
//!
//! Bytes in, bytes out, and events that the caller decides on: [`Event::Connect`],
//! [`Event::Publish`] and [`Event::Play`] wait for `accept_*` / `reject_*`, so a publish is
//! validated before `NetStream.Publish.Start` is ever sent (livego replied first: a bug).
//! The caller must answer each decision event before feeding more bytes.
//!
//! Replies follow what SRS and nginx-rtmp send, which ffmpeg, OBS and librtmp expect.

use super::amf::{self, Value};
use super::caps::{self, ClientCaps};
use super::chunk::{self, ChunkDecoder, ChunkError, DecoderLimits, Message};
use super::control::{self, msg_type, AckCounter, UserControl};
use super::handshake::{HandshakeError, ServerHandshake};
use crate::media::{flv, MediaKind};
use bytes::{Bytes, BytesMut};

/// Chunk stream ids of our replies.
const CSID_COMMAND: u32 = 3;
const CSID_STATUS: u32 = 5;
/// At most this many message streams per connection (createStream beyond it is refused).
const MAX_STREAMS: usize = 8;

/// Protocol parameters of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Chunk size we announce and send with after `connect`.
    pub chunk_size: u32,
    /// Window Acknowledgement Size we announce (and Set Peer Bandwidth).
    pub window_ack_size: u32,
    /// Bounds on what the peer may make us hold.
    pub limits: DecoderLimits,
}

/// What the peer asked for or sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `connect`: answer with [`ServerSession::accept_connect`] or `reject_connect`.
    Connect { app: String, tc_url: String },
    /// `publish`: answer with `accept_publish` or `reject_publish`.
    Publish {
        stream_id: u32,
        name: String,
        query: String,
        publish_type: String,
    },
    /// `play`: answer with `accept_play` or `reject_play`.
    Play {
        stream_id: u32,
        name: String,
        query: String,
    },
    /// Audio, video or data on a publishing stream. Data keeps its AMF0 body as sent
    /// (`@setDataFrame` included; AMF3 data has its format byte removed).
    Media {
        stream_id: u32,
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    },
    /// The publisher ended (FCUnpublish, deleteStream, closeStream).
    Unpublish { stream_id: u32 },
    /// The player ended (deleteStream, closeStream).
    StopPlay { stream_id: u32 },
}

/// Why the connection must close.
#[derive(Debug)]
pub enum SessionError {
    Handshake(HandshakeError),
    Chunk(ChunkError),
    /// A message that breaks the protocol (named).
    Protocol(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Handshake(e) => write!(f, "handshake: {e}"),
            SessionError::Chunk(e) => write!(f, "chunk stream: {e}"),
            SessionError::Protocol(s) => write!(f, "protocol: {s}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ChunkError> for SessionError {
    fn from(e: ChunkError) -> Self {
        SessionError::Chunk(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Idle,
    /// A publish or play was reported as an event and awaits `accept_*`/`reject_*`: a second
    /// one in the same read must find the connection busy already.
    Asked,
    Publishing,
    Playing,
}

enum Phase {
    Handshake(ServerHandshake),
    Chunks,
}

/// One RTMP connection, server side.
pub struct ServerSession {
    cfg: SessionConfig,
    phase: Phase,
    decoder: ChunkDecoder,
    ack: AckCounter,
    out: BytesMut,
    out_chunk_size: u32,
    connected: bool,
    connect_txn: f64,
    object_encoding: f64,
    /// What an Enhanced RTMP client declared in `connect` (`None` for a legacy client).
    client_caps: Option<ClientCaps>,
    /// Message streams made by createStream, with what each does.
    streams: Vec<(u32, Role)>,
    next_stream_id: u32,
}

impl ServerSession {
    pub fn new(cfg: SessionConfig) -> Self {
        ServerSession {
            decoder: ChunkDecoder::new(cfg.limits),
            cfg,
            phase: Phase::Handshake(ServerHandshake::new()),
            ack: AckCounter::new(),
            out: BytesMut::new(),
            out_chunk_size: chunk::DEFAULT_CHUNK_SIZE,
            connected: false,
            connect_txn: 0.0,
            object_encoding: 0.0,
            client_caps: None,
            streams: Vec::new(),
            next_stream_id: 1,
        }
    }

    /// Whether the handshake is over.
    pub fn handshake_done(&self) -> bool {
        matches!(self.phase, Phase::Chunks)
    }

    /// The chunk size our outgoing messages use now.
    pub fn out_chunk_size(&self) -> u32 {
        self.out_chunk_size
    }

    /// Bytes of incomplete messages held (see `ChunkDecoder::pending`).
    pub fn pending_bytes(&self) -> usize {
        self.decoder.pending()
    }

    /// Bytes to send, if any. The buffer goes with them rather than being split off it: a
    /// split would keep the handshake's 3 KiB allocation alive for the connection's whole
    /// life, and most connections (players) send little else.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out).freeze())
    }

    /// Take in bytes from the peer; events are appended to `events`.
    pub fn feed(&mut self, data: &[u8], events: &mut Vec<Event>) -> Result<(), SessionError> {
        if let Phase::Handshake(hs) = &mut self.phase {
            let step = hs.feed(data).map_err(SessionError::Handshake)?;
            self.out.extend_from_slice(&step.to_send);
            if !step.done {
                return Ok(());
            }
            self.phase = Phase::Chunks;
            self.decoder.push(&step.leftover);
            self.count_received(step.leftover.len());
        } else {
            self.decoder.push(data);
            self.count_received(data.len());
        }
        while let Some(msg) = self.decoder.next_message()? {
            self.on_message(msg, events)?;
        }
        Ok(())
    }

    /// Window acknowledgement: Ack with the cumulative byte count when the peer's window is
    /// reached (RTMP 1.0 section 5.4.3).
    fn count_received(&mut self, n: usize) {
        if let Some(seq) = self.ack.on_received(n) {
            control::write_ack(&mut self.out, seq);
        }
    }

    fn on_message(&mut self, msg: Message, events: &mut Vec<Event>) -> Result<(), SessionError> {
        match msg.type_id {
            msg_type::SET_CHUNK_SIZE => {
                let size = control::read_u32_payload(&msg.payload).map_err(protocol)?;
                self.decoder.set_chunk_size(size)?;
            }
            msg_type::ABORT => {
                let csid = control::read_u32_payload(&msg.payload).map_err(protocol)?;
                self.decoder.abort(csid);
            }
            msg_type::WINDOW_ACK_SIZE => {
                let size = control::read_u32_payload(&msg.payload).map_err(protocol)?;
                self.ack.set_window(size);
            }
            msg_type::USER_CONTROL => {
                if let Ok(UserControl::PingRequest(t)) = UserControl::parse(&msg.payload) {
                    control::write_user_control(&mut self.out, &UserControl::PingResponse(t));
                }
            }
            msg_type::COMMAND_AMF0 => self.on_command(&msg, &msg.payload, events)?,
            // AMF3 command: a format byte (0), then AMF0 values that may switch to AMF3.
            msg_type::COMMAND_AMF3 => {
                let body = msg.payload.get(1..).unwrap_or_default();
                self.on_command(&msg, body, events)?;
            }
            msg_type::AUDIO => self.on_media(&msg, MediaKind::Audio, msg.payload.clone(), events),
            msg_type::VIDEO => self.on_media(&msg, MediaKind::Video, msg.payload.clone(), events),
            msg_type::DATA_AMF0 => {
                self.on_media(&msg, MediaKind::Data, msg.payload.clone(), events)
            }
            msg_type::DATA_AMF3 => {
                let body = msg.payload.slice(msg.payload.len().min(1)..);
                self.on_media(&msg, MediaKind::Data, body, events);
            }
            msg_type::AGGREGATE => self.on_aggregate(&msg, events),
            // Acks, peer bandwidth and shared objects need no answer.
            _ => {}
        }
        Ok(())
    }

    fn role_of(&self, stream_id: u32) -> Option<Role> {
        self.streams
            .iter()
            .find(|(id, _)| *id == stream_id)
            .map(|(_, r)| *r)
    }

    fn set_role(&mut self, stream_id: u32, role: Role) {
        if let Some(s) = self.streams.iter_mut().find(|(id, _)| *id == stream_id) {
            s.1 = role;
        }
    }

    fn on_media(
        &mut self,
        msg: &Message,
        kind: MediaKind,
        payload: Bytes,
        events: &mut Vec<Event>,
    ) {
        if self.role_of(msg.stream_id) != Some(Role::Publishing) {
            return; // media on a stream that is not publishing is ignored
        }
        events.push(Event::Media {
            stream_id: msg.stream_id,
            kind,
            timestamp: msg.timestamp,
            payload,
        });
    }

    /// Aggregate message (type 22): FLV tags back to back, each followed by its
    /// PreviousTagSize; sub-tag timestamps are relative to the first (RTMP 1.0 section 7.1.6).
    fn on_aggregate(&mut self, msg: &Message, events: &mut Vec<Event>) {
        let mut first_ts: Option<u32> = None;
        for tag in flv::tags(&msg.payload, 0) {
            let base = *first_ts.get_or_insert(tag.timestamp);
            let kind = match tag.type_id {
                msg_type::AUDIO => MediaKind::Audio,
                msg_type::VIDEO => MediaKind::Video,
                msg_type::DATA_AMF0 => MediaKind::Data,
                _ => continue,
            };
            let sub = Message {
                csid: msg.csid,
                timestamp: msg.timestamp.wrapping_add(tag.timestamp.wrapping_sub(base)),
                type_id: tag.type_id,
                stream_id: msg.stream_id,
                payload: msg.payload.slice(tag.body),
            };
            self.on_media(&sub, kind, sub.payload.clone(), events);
        }
    }

    fn on_command(
        &mut self,
        msg: &Message,
        body: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        let values = amf::decode_amf0(body).map_err(|e| protocol(format!("command AMF: {e}")))?;
        let mut it = values.into_iter();
        let name = match it.next() {
            Some(Value::String(s)) => s,
            _ => return Err(protocol("command without a name")),
        };
        let txn = it.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let args: Vec<Value> = it.collect();
        if !self.connected && name != "connect" {
            return Err(protocol(format!("`{name}` before connect")));
        }
        match name.as_str() {
            "connect" => self.on_connect(txn, &args, events),
            "createStream" => {
                self.on_create_stream(txn);
                Ok(())
            }
            "publish" => self.on_publish(msg.stream_id, &args, events),
            "play" => self.on_play(msg.stream_id, &args, events),
            "releaseStream" | "FCPublish" | "getStreamLength" | "_checkbw" => {
                self.write_result(txn, Value::Undefined);
                Ok(())
            }
            "FCUnpublish" => {
                if let Some(id) = self.stream_with(Role::Publishing) {
                    self.set_role(id, Role::Idle);
                    events.push(Event::Unpublish { stream_id: id });
                }
                self.write_result(txn, Value::Undefined);
                Ok(())
            }
            "deleteStream" => {
                let id = args.get(1).and_then(Value::as_f64).map_or(0, |v| v as u32);
                self.end_stream(id, events);
                self.streams.retain(|(s, _)| *s != id);
                Ok(())
            }
            "closeStream" => {
                self.end_stream(msg.stream_id, events);
                Ok(())
            }
            _ => {
                tracing::debug!(command = %name, "ignored RTMP command");
                Ok(())
            }
        }
    }

    fn stream_with(&self, role: Role) -> Option<u32> {
        self.streams
            .iter()
            .find(|(_, r)| *r == role)
            .map(|(id, _)| *id)
    }

    fn end_stream(&mut self, stream_id: u32, events: &mut Vec<Event>) {
        match self.role_of(stream_id) {
            Some(Role::Publishing) => events.push(Event::Unpublish { stream_id }),
            Some(Role::Playing) => events.push(Event::StopPlay { stream_id }),
            _ => {}
        }
        self.set_role(stream_id, Role::Idle);
    }

    fn on_connect(
        &mut self,
        txn: f64,
        args: &[Value],
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        if self.connected {
            return Err(protocol("second connect"));
        }
        let obj = args.first();
        let field = |k: &str| {
            obj.and_then(|o| o.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        // Some clients put the query in the app ("live?token=x"); the app is before it.
        let app_field = field("app");
        let app = app_field
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        self.connect_txn = txn;
        self.object_encoding = obj
            .and_then(|o| o.get("objectEncoding"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        self.client_caps = obj.and_then(ClientCaps::from_connect);
        events.push(Event::Connect {
            app,
            tc_url: field("tcUrl"),
        });
        Ok(())
    }

    /// The Enhanced RTMP capabilities the client declared in `connect`, if any.
    pub fn client_caps(&self) -> Option<&ClientCaps> {
        self.client_caps.as_ref()
    }

    /// Accept `connect`: window, bandwidth, our chunk size, then `_result` (with the
    /// Enhanced RTMP capabilities when the client declared its own).
    pub fn accept_connect(&mut self) {
        self.connected = true;
        control::write_window_ack_size(&mut self.out, self.cfg.window_ack_size);
        control::write_set_peer_bandwidth(
            &mut self.out,
            self.cfg.window_ack_size,
            control::limit_type::DYNAMIC,
        );
        control::write_set_chunk_size(&mut self.out, self.cfg.chunk_size);
        self.out_chunk_size = self.cfg.chunk_size;
        let mut props = vec![
            ("fmsVer".to_string(), Value::from("FMS/3,0,1,123")),
            ("capabilities".to_string(), Value::Number(31.0)),
            ("mode".to_string(), Value::Number(1.0)),
        ];
        if self.client_caps.is_some() {
            // Enhanced RTMP: answer with what this server carries (legacy clients get the
            // legacy reply, byte for byte).
            props.extend(caps::forwarding_properties());
        }
        let props = Value::Object(props);
        let info = Value::object([
            ("level", Value::from("status")),
            ("code", Value::from("NetConnection.Connect.Success")),
            ("description", Value::from("Connection succeeded.")),
            ("objectEncoding", Value::Number(self.object_encoding)),
        ]);
        self.write_command(
            CSID_COMMAND,
            0,
            &[
                Value::from("_result"),
                Value::Number(self.connect_txn),
                props,
                info,
            ],
        );
    }

    /// Refuse `connect` (unknown or disabled app); the caller then closes.
    pub fn reject_connect(&mut self, description: &str) {
        let info = status("error", "NetConnection.Connect.Rejected", description);
        self.write_command(
            CSID_COMMAND,
            0,
            &[
                Value::from("_error"),
                Value::Number(self.connect_txn),
                Value::Null,
                info,
            ],
        );
    }

    fn on_create_stream(&mut self, txn: f64) {
        if self.streams.len() >= MAX_STREAMS {
            let info = status("error", "NetConnection.Call.Failed", "too many streams");
            self.write_command(
                CSID_COMMAND,
                0,
                &[Value::from("_error"), Value::Number(txn), Value::Null, info],
            );
            return;
        }
        let id = self.next_stream_id;
        self.next_stream_id = self.next_stream_id.wrapping_add(1).max(1);
        self.streams.push((id, Role::Idle));
        self.write_result(txn, Value::Number(f64::from(id)));
    }

    /// Resolve the message stream a publish/play arrived on; some clients send them on stream 0
    /// right after createStream, meaning the stream they just created.
    fn target_stream(&self, stream_id: u32) -> Option<u32> {
        if self.role_of(stream_id).is_some() {
            return Some(stream_id);
        }
        self.streams.last().map(|(id, _)| *id)
    }

    fn on_publish(
        &mut self,
        msg_stream: u32,
        args: &[Value],
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        let Some(stream_id) = self.free_stream(msg_stream, "publish")? else {
            return Ok(());
        };
        let (name, query) = split_name(args.get(1));
        let publish_type = args
            .get(2)
            .and_then(Value::as_str)
            .unwrap_or("live")
            .to_string();
        events.push(Event::Publish {
            stream_id,
            name,
            query,
            publish_type,
        });
        Ok(())
    }

    fn on_play(
        &mut self,
        msg_stream: u32,
        args: &[Value],
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        let Some(stream_id) = self.free_stream(msg_stream, "play")? else {
            return Ok(());
        };
        let (name, query) = split_name(args.get(1));
        events.push(Event::Play {
            stream_id,
            name,
            query,
        });
        Ok(())
    }

    /// The stream a publish/play applies to, if the connection may take that role: a
    /// connection either publishes or plays, once (a second request gets an error status).
    fn free_stream(&mut self, msg_stream: u32, what: &str) -> Result<Option<u32>, SessionError> {
        let Some(stream_id) = self.target_stream(msg_stream) else {
            return Err(protocol(format!("{what} without createStream")));
        };
        let busy = self.streams.iter().any(|(_, r)| *r != Role::Idle);
        if !busy {
            self.set_role(stream_id, Role::Asked);
            return Ok(Some(stream_id));
        }
        let code = match what {
            "publish" => "NetStream.Publish.BadConnection",
            _ => "NetStream.Play.Failed",
        };
        self.write_status(
            stream_id,
            "error",
            code,
            "this connection already publishes or plays",
        );
        Ok(None)
    }

    /// Accept a publish: StreamBegin and `NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, stream_id: u32, name: &str) {
        self.set_role(stream_id, Role::Publishing);
        control::write_user_control(&mut self.out, &UserControl::StreamBegin(stream_id));
        let desc = format!("{name} is now published.");
        self.write_status(stream_id, "status", "NetStream.Publish.Start", &desc);
    }

    /// Refuse a publish (`NetStream.Publish.BadName` and the like); nothing is published.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        self.set_role(stream_id, Role::Idle);
        self.write_status(stream_id, "error", code, description);
    }

    /// Accept a play: StreamBegin, Play.Reset, Play.Start (as nginx-rtmp; the data messages
    /// SRS adds, `|RtmpSampleAccess` and `Data.Start`, show up as a bogus data stream in
    /// ffprobe).
    pub fn accept_play(&mut self, stream_id: u32, name: &str) {
        self.set_role(stream_id, Role::Playing);
        control::write_user_control(&mut self.out, &UserControl::StreamBegin(stream_id));
        let reset = format!("Playing and resetting {name}.");
        self.write_status(stream_id, "status", "NetStream.Play.Reset", &reset);
        let start = format!("Started playing {name}.");
        self.write_status(stream_id, "status", "NetStream.Play.Start", &start);
    }

    /// Refuse a play.
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) {
        self.set_role(stream_id, Role::Idle);
        self.write_status(stream_id, "error", code, description);
    }

    /// Tell a player its stream got a publisher (`PublishNotify`, after StreamBegin).
    pub fn notify_published(&mut self, stream_id: u32) {
        control::write_user_control(&mut self.out, &UserControl::StreamBegin(stream_id));
        self.write_status(
            stream_id,
            "status",
            "NetStream.Play.PublishNotify",
            "Started publishing.",
        );
    }

    /// Tell a player its publisher left: StreamEOF and `UnpublishNotify` (as nginx-rtmp); the
    /// player may keep waiting for the next publisher.
    pub fn notify_unpublished(&mut self, stream_id: u32) {
        control::write_user_control(&mut self.out, &UserControl::StreamEof(stream_id));
        self.write_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            "Stopped publishing.",
        );
    }

    /// Send an `onStatus` on `stream_id`.
    pub fn write_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let info = status(level, code, description);
        self.write_command(
            CSID_STATUS,
            stream_id,
            &[
                Value::from("onStatus"),
                Value::Number(0.0),
                Value::Null,
                info,
            ],
        );
    }

    fn write_result(&mut self, txn: f64, value: Value) {
        self.write_command(
            CSID_COMMAND,
            0,
            &[
                Value::from("_result"),
                Value::Number(txn),
                Value::Null,
                value,
            ],
        );
    }

    fn write_command(&mut self, csid: u32, stream_id: u32, values: &[Value]) {
        self.write_amf(csid, msg_type::COMMAND_AMF0, stream_id, values);
    }

    fn write_amf(&mut self, csid: u32, type_id: u8, stream_id: u32, values: &[Value]) {
        let mut body = Vec::new();
        amf::encode_amf0(values, &mut body);
        chunk::encode_message(
            &mut self.out,
            self.out_chunk_size,
            csid,
            0,
            type_id,
            stream_id,
            &body,
        );
    }
}

fn protocol(e: impl std::fmt::Display) -> SessionError {
    SessionError::Protocol(e.to_string())
}

fn status(level: &str, code: &str, description: &str) -> Value {
    Value::object([
        ("level", Value::from(level)),
        ("code", Value::from(code)),
        ("description", Value::from(description)),
    ])
}

/// Split a publish/play name into the stream name and its query (`key?token=x`).
fn split_name(v: Option<&Value>) -> (String, String) {
    let full = v.and_then(Value::as_str).unwrap_or_default();
    match full.split_once('?') {
        Some((name, query)) => (name.to_string(), query.to_string()),
        None => (full.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests;
