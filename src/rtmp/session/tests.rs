//! The server session driven through a whole conversation with hand-built client messages.

use super::*;
use crate::rtmp::chunk::encode_message;
use crate::rtmp::handshake::ClientHandshake;

fn session() -> ServerSession {
    ServerSession::new(SessionConfig {
        chunk_size: 4096,
        window_ack_size: 2_500_000,
        limits: DecoderLimits::default(),
    })
}

/// Client-side bytes of one AMF0 command on csid 3.
fn command(stream_id: u32, values: &[Value]) -> Vec<u8> {
    let mut body = Vec::new();
    amf::encode_amf0(values, &mut body);
    let mut out = BytesMut::new();
    encode_message(
        &mut out,
        128,
        3,
        0,
        msg_type::COMMAND_AMF0,
        stream_id,
        &body,
    );
    out.to_vec()
}

/// Run the client handshake against the session; returns the session in the chunk phase.
fn handshaken() -> ServerSession {
    let mut s = session();
    let mut client = ClientHandshake::new(true);
    let mut events = Vec::new();
    s.feed(&client.start(), &mut events).unwrap();
    let s0s1s2 = s.take_output().unwrap();
    let reply = client.feed(&s0s1s2).unwrap();
    assert!(reply.done);
    s.feed(&reply.to_send, &mut events).unwrap();
    assert!(s.handshake_done());
    assert!(events.is_empty());
    s
}

/// Decode every message the session wrote.
fn replies(s: &mut ServerSession) -> Vec<chunk::Message> {
    let mut d = ChunkDecoder::new(DecoderLimits::default());
    // The session's current chunk size (the control messages before a SetChunkSize in the
    // same batch are single chunks at any size).
    d.set_chunk_size(s.out_chunk_size()).unwrap();
    d.push(&s.take_output().unwrap_or_default());
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        if m.type_id == msg_type::SET_CHUNK_SIZE {
            d.set_chunk_size(control::read_u32_payload(&m.payload).unwrap())
                .unwrap();
        }
        out.push(m);
    }
    out
}

fn decode(m: &chunk::Message) -> Vec<Value> {
    amf::decode_amf0(&m.payload).unwrap()
}

fn status_code(m: &chunk::Message) -> String {
    decode(m)[3]
        .get("code")
        .and_then(Value::as_str)
        .unwrap()
        .to_string()
}

fn connect(s: &mut ServerSession, app: &str) -> Vec<Event> {
    let obj = Value::object([
        ("app", Value::from(app)),
        ("type", Value::from("nonprivate")),
        (
            "tcUrl",
            Value::from(format!("rtmp://127.0.0.1/{app}").as_str()),
        ),
    ]);
    let mut events = Vec::new();
    s.feed(
        &command(0, &[Value::from("connect"), Value::Number(1.0), obj]),
        &mut events,
    )
    .unwrap();
    events
}

/// Connect, accept, createStream: returns the stream id.
fn ready(s: &mut ServerSession) -> u32 {
    let ev = connect(s, "live");
    assert_eq!(
        ev,
        vec![Event::Connect {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1/live".into()
        }]
    );
    s.accept_connect();
    let msgs = replies(s);
    let types: Vec<u8> = msgs.iter().map(|m| m.type_id).collect();
    assert_eq!(
        types,
        vec![
            msg_type::WINDOW_ACK_SIZE,
            msg_type::SET_PEER_BANDWIDTH,
            msg_type::SET_CHUNK_SIZE,
            msg_type::COMMAND_AMF0
        ]
    );
    assert_eq!(decode(&msgs[3])[0], Value::from("_result"));
    assert_eq!(status_code(&msgs[3]), "NetConnection.Connect.Success");
    assert_eq!(s.out_chunk_size(), 4096);
    let mut events = Vec::new();
    s.feed(
        &command(
            0,
            &[Value::from("createStream"), Value::Number(4.0), Value::Null],
        ),
        &mut events,
    )
    .unwrap();
    let msgs = replies(s);
    let v = decode(&msgs[0]);
    assert_eq!(v[1], Value::Number(4.0));
    v[3].as_f64().unwrap() as u32
}

#[test]
fn publish_is_decided_before_any_status_is_sent() {
    let mut s = handshaken();
    let id = ready(&mut s);
    let mut events = Vec::new();
    s.feed(
        &command(
            id,
            &[
                Value::from("publish"),
                Value::Number(5.0),
                Value::Null,
                Value::from("key123?token=abc"),
                Value::from("live"),
            ],
        ),
        &mut events,
    )
    .unwrap();
    assert_eq!(
        events,
        vec![Event::Publish {
            stream_id: id,
            name: "key123".into(),
            query: "token=abc".into(),
            publish_type: "live".into()
        }]
    );
    assert!(
        s.take_output().is_none(),
        "nothing is said before the decision"
    );
    s.reject_publish(id, "NetStream.Publish.BadName", "invalid stream key");
    let msgs = replies(&mut s);
    assert_eq!(status_code(&msgs[0]), "NetStream.Publish.BadName");
    assert_eq!(msgs[0].stream_id, id);
}

#[test]
fn accepted_publish_yields_media_and_ends_on_fcunpublish() {
    let mut s = handshaken();
    let id = ready(&mut s);
    let mut events = Vec::new();
    let publish = [
        Value::from("publish"),
        Value::Number(5.0),
        Value::Null,
        Value::from("movie"),
    ];
    s.feed(&command(id, &publish), &mut events).unwrap();
    s.accept_publish(id, "movie");
    let msgs = replies(&mut s);
    assert_eq!(msgs[0].type_id, msg_type::USER_CONTROL);
    assert_eq!(status_code(&msgs[1]), "NetStream.Publish.Start");
    events.clear();
    let mut video = BytesMut::new();
    encode_message(
        &mut video,
        128,
        6,
        40,
        msg_type::VIDEO,
        id,
        &[0x17, 1, 0, 0, 0],
    );
    s.feed(&video, &mut events).unwrap();
    assert_eq!(
        events,
        vec![Event::Media {
            stream_id: id,
            kind: MediaKind::Video,
            timestamp: 40,
            payload: Bytes::from_static(&[0x17, 1, 0, 0, 0])
        }]
    );
    events.clear();
    let unpublish = [
        Value::from("FCUnpublish"),
        Value::Number(6.0),
        Value::Null,
        Value::from("movie"),
    ];
    s.feed(&command(0, &unpublish), &mut events).unwrap();
    assert_eq!(events, vec![Event::Unpublish { stream_id: id }]);
    // Media after the end is ignored.
    events.clear();
    s.feed(&video, &mut events).unwrap();
    assert!(events.is_empty());
}

#[test]
fn play_replies_and_notifications() {
    let mut s = handshaken();
    let id = ready(&mut s);
    let mut events = Vec::new();
    let play = [
        Value::from("play"),
        Value::Number(0.0),
        Value::Null,
        Value::from("movie"),
        Value::Number(-2000.0),
    ];
    s.feed(&command(id, &play), &mut events).unwrap();
    assert_eq!(
        events,
        vec![Event::Play {
            stream_id: id,
            name: "movie".into(),
            query: String::new()
        }]
    );
    s.accept_play(id, "movie");
    let msgs = replies(&mut s);
    let codes: Vec<String> = msgs[1..].iter().map(status_code).collect();
    assert_eq!(codes, vec!["NetStream.Play.Reset", "NetStream.Play.Start"]);
    s.notify_unpublished(id);
    s.notify_published(id);
    let msgs = replies(&mut s);
    assert_eq!(
        UserControl::parse(&msgs[0].payload).unwrap(),
        UserControl::StreamEof(id)
    );
    assert_eq!(status_code(&msgs[1]), "NetStream.Play.UnpublishNotify");
    assert_eq!(
        UserControl::parse(&msgs[2].payload).unwrap(),
        UserControl::StreamBegin(id)
    );
    assert_eq!(status_code(&msgs[3]), "NetStream.Play.PublishNotify");
    // A second role on the same connection is refused.
    events.clear();
    let publish = [
        Value::from("publish"),
        Value::Number(5.0),
        Value::Null,
        Value::from("x"),
    ];
    s.feed(&command(id, &publish), &mut events).unwrap();
    assert!(events.is_empty());
    assert_eq!(
        status_code(&replies(&mut s)[0]),
        "NetStream.Publish.BadConnection"
    );
    // deleteStream ends the play.
    let delete = [
        Value::from("deleteStream"),
        Value::Number(0.0),
        Value::Null,
        Value::Number(f64::from(id)),
    ];
    s.feed(&command(0, &delete), &mut events).unwrap();
    assert_eq!(events, vec![Event::StopPlay { stream_id: id }]);
}

#[test]
fn pings_are_answered_and_acks_are_cumulative() {
    let mut s = handshaken();
    ready(&mut s);
    let mut events = Vec::new();
    let mut out = BytesMut::new();
    control::write_window_ack_size(&mut out, 100);
    control::write_user_control(&mut out, &UserControl::PingRequest(77));
    s.feed(&out, &mut events).unwrap();
    let msgs = replies(&mut s);
    let pong = msgs
        .iter()
        .find(|m| m.type_id == msg_type::USER_CONTROL)
        .unwrap();
    assert_eq!(
        UserControl::parse(&pong.payload).unwrap(),
        UserControl::PingResponse(77)
    );
    // 3 x 60 bytes of audio: Acks report the running total, not deltas.
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let mut audio = BytesMut::new();
        encode_message(&mut audio, 128, 4, 0, msg_type::AUDIO, 1, &[0xaf; 48]);
        s.feed(&audio, &mut events).unwrap();
        for m in replies(&mut s) {
            if m.type_id == msg_type::ACK {
                seqs.push(control::read_u32_payload(&m.payload).unwrap());
            }
        }
    }
    assert!(seqs.len() >= 2, "acks: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] > w[0]));
}

#[test]
fn rejected_connect_and_protocol_errors() {
    let mut s = handshaken();
    let ev = connect(&mut s, "nope");
    assert!(matches!(&ev[0], Event::Connect { app, .. } if app == "nope"));
    s.reject_connect("application `nope` not found");
    let msgs = replies(&mut s);
    assert_eq!(decode(&msgs[0])[0], Value::from("_error"));
    assert_eq!(status_code(&msgs[0]), "NetConnection.Connect.Rejected");

    // Anything but connect first is a protocol error.
    let mut s = handshaken();
    let mut events = Vec::new();
    let err = s.feed(
        &command(0, &[Value::from("play"), Value::Number(1.0)]),
        &mut events,
    );
    assert!(matches!(err, Err(SessionError::Protocol(_))));
    // A command whose name is not a string.
    let mut s = handshaken();
    let err = s.feed(&command(0, &[Value::Number(1.0)]), &mut events);
    assert!(matches!(err, Err(SessionError::Protocol(_))));
    // A zero chunk size.
    let mut s = handshaken();
    let mut out = BytesMut::new();
    control::write_set_chunk_size(&mut out, 0);
    assert!(matches!(
        s.feed(&out, &mut events),
        Err(SessionError::Chunk(_))
    ));
}

#[test]
fn aggregate_messages_are_split() {
    let mut s = handshaken();
    let id = ready(&mut s);
    let mut events = Vec::new();
    let publish = [
        Value::from("publish"),
        Value::Number(5.0),
        Value::Null,
        Value::from("m"),
    ];
    s.feed(&command(id, &publish), &mut events).unwrap();
    s.accept_publish(id, "m");
    events.clear();
    // Two FLV tags (video at 1000, audio at 1023) inside one aggregate at ts 5000.
    let mut agg = Vec::new();
    flv::write_tag(&mut agg, 9, 1000, &[0x17, 1, 0, 0, 0]);
    flv::write_tag(&mut agg, 8, 1023, &[0xaf, 1]);
    let mut out = BytesMut::new();
    encode_message(&mut out, 128, 6, 5000, msg_type::AGGREGATE, id, &agg);
    s.feed(&out, &mut events).unwrap();
    let ts: Vec<(MediaKind, u32)> = events
        .iter()
        .map(|e| match e {
            Event::Media {
                kind, timestamp, ..
            } => (*kind, *timestamp),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(ts, vec![(MediaKind::Video, 5000), (MediaKind::Audio, 5023)]);
}

#[test]
fn garbage_after_the_handshake_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut s = handshaken();
        let _ = connect(&mut s, "live");
        s.accept_connect();
        let mut buf = vec![0u8; (x % 600) as usize];
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut events = Vec::new();
        let _ = s.feed(&buf, &mut events);
    }
}

#[test]
fn amf3_commands_and_data_are_understood() {
    let mut s = handshaken();
    // An AMF3 command message (type 17): a format byte, then AMF0 values; the command object
    // switches to AMF3 with the avmplus marker (0x11).
    let mut body = vec![0u8];
    amf::encode_amf0(&[Value::from("connect"), Value::Number(1.0)], &mut body);
    body.push(0x11);
    let obj = Value::object([
        ("app", Value::from("live")),
        ("tcUrl", Value::from("rtmp://h/live")),
    ]);
    amf::encode_amf3_value(&obj, &mut body);
    let mut out = BytesMut::new();
    encode_message(&mut out, 128, 3, 0, msg_type::COMMAND_AMF3, 0, &body);
    let mut events = Vec::new();
    s.feed(&out, &mut events).unwrap();
    assert_eq!(
        events,
        vec![Event::Connect {
            app: "live".into(),
            tc_url: "rtmp://h/live".into()
        }]
    );
    s.accept_connect();
    let _ = replies(&mut s);
    let mut events = Vec::new();
    s.feed(
        &command(
            0,
            &[Value::from("createStream"), Value::Number(2.0), Value::Null],
        ),
        &mut events,
    )
    .unwrap();
    let _ = replies(&mut s);
    let publish = [
        Value::from("publish"),
        Value::Number(3.0),
        Value::Null,
        Value::from("k"),
    ];
    s.feed(&command(1, &publish), &mut events).unwrap();
    s.accept_publish(1, "k");
    events.clear();
    // AMF3 data (type 15): the format byte is dropped, the AMF0 body kept.
    let mut data = vec![0u8];
    amf::encode_amf0(&[Value::from("onMetaData")], &mut data);
    let mut out = BytesMut::new();
    encode_message(&mut out, 128, 5, 0, msg_type::DATA_AMF3, 1, &data);
    s.feed(&out, &mut events).unwrap();
    assert_eq!(
        events,
        vec![Event::Media {
            stream_id: 1,
            kind: MediaKind::Data,
            timestamp: 0,
            payload: Bytes::copy_from_slice(&data[1..])
        }]
    );
}

/// The `_result` of an accepted connect, decoded.
fn connect_result(obj: Value) -> Value {
    let mut s = handshaken();
    let mut events = Vec::new();
    s.feed(
        &command(0, &[Value::from("connect"), Value::Number(1.0), obj]),
        &mut events,
    )
    .unwrap();
    s.accept_connect();
    let msgs = replies(&mut s);
    let result = msgs
        .iter()
        .find(|m| m.type_id == msg_type::COMMAND_AMF0)
        .unwrap();
    decode(result)[2].clone()
}

#[test]
fn enhanced_rtmp_connect_is_answered_with_forwarded_fourccs() {
    // As FFmpeg 6.1+ sends it with `-rtmp_enhanced_codecs hvc1,av01,vp09`.
    let obj = Value::object([
        ("app", Value::from("live")),
        (
            "fourCcList",
            Value::StrictArray(vec![
                Value::from("hvc1"),
                Value::from("av01"),
                Value::from("vp09"),
            ]),
        ),
        ("capsEx", Value::Number(15.0)),
    ]);
    let props = connect_result(obj);
    let video = props.get("videoFourCcInfoMap").unwrap();
    for cc in ["hvc1", "av01", "vp09", "avc1"] {
        assert_eq!(video.get(cc), Some(&Value::Number(4.0)), "{cc} CanForward");
    }
    let audio = props.get("audioFourCcInfoMap").unwrap();
    assert_eq!(audio.get("Opus"), Some(&Value::Number(4.0)));
    // Multitrack and ModEx, not Reconnect nor nanosecond offsets.
    assert_eq!(props.get("capsEx"), Some(&Value::Number(6.0)));
    assert!(matches!(props.get("fourCcList"), Some(Value::StrictArray(l)) if l.len() == 5));
    assert_eq!(props.get("fmsVer"), Some(&Value::from("FMS/3,0,1,123")));
}

#[test]
fn legacy_connect_gets_no_enhanced_properties() {
    let props = connect_result(Value::object([("app", Value::from("live"))]));
    assert!(props.get("fmsVer").is_some());
    assert!(props.get("fourCcList").is_none());
    assert!(props.get("capsEx").is_none());
}

#[test]
fn a_second_publish_or_play_in_the_same_read_is_refused_until_the_first_is_decided() {
    let mut s = handshaken();
    let id = ready(&mut s);
    let publish = |name: &str| {
        command(
            id,
            &[
                Value::from("publish"),
                Value::Number(5.0),
                Value::Null,
                Value::from(name),
            ],
        )
    };
    let play = command(
        id,
        &[
            Value::from("play"),
            Value::Number(6.0),
            Value::Null,
            Value::from("c"),
        ],
    );
    // One read holding two publishes and a play: only the first is reported.
    let mut bytes = publish("a");
    bytes.extend(publish("b"));
    bytes.extend(&play);
    let mut events = Vec::new();
    s.feed(&bytes, &mut events).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(&events[0], Event::Publish { name, .. } if name == "a"));
    let codes: Vec<String> = replies(&mut s).iter().map(status_code).collect();
    assert_eq!(
        codes,
        ["NetStream.Publish.BadConnection", "NetStream.Play.Failed"]
    );
    // Refusing the first frees the connection for another try.
    s.reject_publish(id, "NetStream.Publish.BadName", "invalid stream key");
    replies(&mut s);
    events.clear();
    s.feed(&publish("d"), &mut events).unwrap();
    assert!(matches!(&events[..], [Event::Publish { name, .. }] if name == "d"));
}
