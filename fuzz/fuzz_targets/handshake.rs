//! ServerHandshake and ClientHandshake fed arbitrary bytes in arbitrary splits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::rtmp::handshake::{ClientHandshake, ServerHandshake};

/// Feed `data` in pieces whose sizes come from `splits` (cycled; 0 means "the rest").
fn pieces<'a>(mut data: &'a [u8], splits: &[u16]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut sizes = splits.iter().cycle();
    while !data.is_empty() {
        let size = match sizes.next() {
            Some(0) | None => data.len(),
            Some(&n) => usize::from(n).min(data.len()),
        };
        let (head, tail) = data.split_at(size);
        out.push(head);
        data = tail;
    }
    out
}

fuzz_target!(|input: (Vec<u16>, bool, &[u8])| {
    let (splits, complex, data) = input;
    let mut server = ServerHandshake::new();
    for piece in pieces(data, &splits) {
        match server.feed(piece) {
            Ok(out) => assert!(out.to_send.len() <= 1 + 2 * 1536),
            Err(_) => break,
        }
    }
    let mut client = ClientHandshake::new(complex);
    let _ = client.start();
    for piece in pieces(data, &splits) {
        if client.feed(piece).is_err() {
            break;
        }
    }
});
