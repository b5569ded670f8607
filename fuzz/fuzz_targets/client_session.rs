//! ClientSession (relays, tests) fed an arbitrary server: a simple S0+S1+S2, then arbitrary
//! chunk-stream bytes. The client reacts as a relay would: createStream, then publish or play,
//! and sends media.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::rtmp::chunk::DecoderLimits;
use shardcast::rtmp::client::{ClientConfig, ClientEvent, ClientSession, MediaKind};

const SPLITS: [usize; 5] = [1, 7, 128, 4096, 3];

const LIMITS: DecoderLimits = DecoderLimits {
    max_message_size: 64 << 10,
    max_chunk_size: 16 << 10,
    max_pending_bytes: 128 << 10,
    max_chunk_streams: 8,
};

fn react(client: &mut ClientSession, event: &ClientEvent, publish: bool) {
    match event {
        ClientEvent::Connected => client.create_stream(),
        ClientEvent::StreamCreated { stream_id } if publish => {
            client.publish(*stream_id, "room");
            client.send_media(*stream_id, MediaKind::Video, 0, &[0x17, 0, 0, 0, 0]);
        }
        ClientEvent::StreamCreated { stream_id } => client.play(*stream_id, "room"),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut cfg = ClientConfig::new("live", "rtmp://127.0.0.1/live");
    cfg.complex_handshake = mode & 1 == 1;
    let publish = mode & 2 == 2;
    let mut client = ClientSession::with_limits(cfg, LIMITS);
    let _ = client.start();
    let mut events = Vec::new();
    let mut server = vec![3u8];
    server.resize(1 + 2 * 1536, 0);
    server.extend_from_slice(rest);
    let mut rest = &server[..];
    for &size in SPLITS.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let result = client.feed(piece, &mut events);
        for event in events.drain(..) {
            react(&mut client, &event, publish);
        }
        let _ = client.take_output();
        if result.is_err() {
            return;
        }
    }
});
