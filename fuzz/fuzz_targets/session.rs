//! ServerSession: a valid simple handshake, then arbitrary bytes as the chunk stream, fed in
//! pieces of varying size. Every request is accepted, so the whole state machine is reachable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::rtmp::chunk::DecoderLimits;
use shardcast::rtmp::session::{Event, ServerSession, SessionConfig};

/// Piece sizes, cycled: byte-wise, odd, chunk-sized and large reads.
const SPLITS: [usize; 5] = [1, 7, 128, 4096, 3];

fn config() -> SessionConfig {
    SessionConfig {
        chunk_size: 4096,
        window_ack_size: 2_500_000,
        limits: DecoderLimits {
            max_message_size: 64 << 10,
            max_chunk_size: 16 << 10,
            max_pending_bytes: 128 << 10,
            max_chunk_streams: 8,
        },
    }
}

fn answer(session: &mut ServerSession, event: &Event) {
    match event {
        Event::Connect { .. } => session.accept_connect(),
        Event::Publish {
            stream_id, name, ..
        } => {
            session.accept_publish(*stream_id, name);
            session.notify_published(*stream_id);
        }
        Event::Play {
            stream_id, name, ..
        } => session.accept_play(*stream_id, name),
        Event::Unpublish { stream_id } => session.notify_unpublished(*stream_id),
        Event::Media { .. } | Event::StopPlay { .. } => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut session = ServerSession::new(config());
    let mut events = Vec::new();
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * 1536, 0);
    session
        .feed(&handshake, &mut events)
        .expect("simple handshake");
    let mut rest = data;
    for &size in SPLITS.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let result = session.feed(piece, &mut events);
        for event in events.drain(..) {
            answer(&mut session, &event);
        }
        let _ = session.take_output();
        if result.is_err() {
            return;
        }
    }
});
