//! ChunkDecoder with small limits fed arbitrary bytes in pieces; Set Chunk Size and Abort
//! messages are applied as the sessions do. Memory must stay within the limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::rtmp::chunk::{ChunkDecoder, DecoderLimits};

const LIMITS: DecoderLimits = DecoderLimits {
    max_message_size: 64 << 10,
    max_chunk_size: 16 << 10,
    max_pending_bytes: 128 << 10,
    max_chunk_streams: 8,
};

fn drain(dec: &mut ChunkDecoder) -> bool {
    loop {
        match dec.next_message() {
            Ok(Some(msg)) => {
                assert!(msg.payload.len() <= LIMITS.max_message_size as usize);
                let word = msg
                    .payload
                    .get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().unwrap()));
                match (msg.type_id, word) {
                    (1, Some(size)) if dec.set_chunk_size(size & 0x7FFF_FFFF).is_err() => {
                        return false
                    }
                    (2, Some(csid)) => dec.abort(csid),
                    _ => {}
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut dec = ChunkDecoder::new(LIMITS);
    // The first byte picks the piece size, so both whole and byte-wise feeding are covered.
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    for piece in rest.chunks(usize::from(step).max(1)) {
        dec.push(piece);
        if !drain(&mut dec) {
            return;
        }
    }
});
