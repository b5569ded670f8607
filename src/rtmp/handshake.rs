//! Sans-IO RTMP handshakes (Adobe RTMP 1.0 spec, 5.2), simple and complex (digest).
//!
//! The complex handshake is not in the published spec; it is the Flash Player 9 scheme that
//! ffmpeg (`rtmpproto.c`), librtmp and every server implement: a 32-byte HMAC-SHA256 digest
//! hidden in C1/S1 at an offset derived from four bytes of the packet, and S2/C2 signed with a
//! key derived from the peer's digest. Players (Flash, librtmp/OBS, ffmpeg) check S1 and S2.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// Size of C1, C2, S1 and S2 (spec 5.2.3).
pub const PACKET_SIZE: usize = 1536;
/// The only RTMP version we speak (C0/S0, spec 5.2.2); 6 would be RTMPE.
pub const RTMP_VERSION: u8 = 3;

const DIGEST_LEN: usize = 32;
/// Bytes of a signed C2/S2 that the trailing signature covers.
const SIGNED_LEN: usize = PACKET_SIZE - DIGEST_LEN;
/// Version field of our complex S1, as livego sends.
const SERVER_VERSION: [u8; 4] = [0x0d, 0x0e, 0x0a, 0x0d];
/// Version field of our complex C1, as ffmpeg sends (9.0.124.2).
const CLIENT_VERSION: [u8; 4] = [9, 0, 124, 2];

const KEY_MAGIC: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const PLAYER_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
const SERVER_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// Errors of either handshake side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// C0/S0 carried a version other than 3 (6 = RTMPE, encrypted RTMP, is unsupported).
    UnsupportedVersion(u8),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(6) => {
                write!(
                    f,
                    "RTMP handshake version 6 (RTMPE, encrypted) is not supported"
                )
            }
            Self::UnsupportedVersion(v) => write!(f, "RTMP handshake version {v} is not supported"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Result of feeding bytes to a handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeOutput {
    /// Bytes to send to the peer now (possibly empty).
    pub to_send: Vec<u8>,
    /// The handshake is complete; chunk streams start with `leftover`.
    pub done: bool,
    /// Bytes received after the handshake (a client may send `connect` right behind C2).
    pub leftover: Vec<u8>,
}

/// Where a 32-byte digest sits in C1/S1: after the 4 offset bytes at `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Offset bytes at 8..12, digest in 12..772 ("schema 1", what Flash and ffmpeg send).
    Base8,
    /// Offset bytes at 772..776, digest in 776..1536 ("schema 0").
    Base772,
}

impl Schema {
    /// Offset of the digest inside a 1536-byte packet: at most 1503, so it always fits.
    fn digest_offset(self, packet: &[u8; PACKET_SIZE]) -> usize {
        let base = match self {
            Self::Base8 => 8,
            Self::Base772 => 772,
        };
        let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        sum % 728 + base + 4
    }
}

fn player_key() -> [u8; 62] {
    concat_key(PLAYER_TEXT)
}

fn server_key() -> [u8; 68] {
    concat_key(SERVER_TEXT)
}

/// Text followed by the 32 magic bytes (hsClientFullKey / hsServerFullKey).
fn concat_key<const T: usize, const N: usize>(text: &[u8; T]) -> [u8; N] {
    let mut key = [0; N];
    key[..T].copy_from_slice(text);
    key[T..].copy_from_slice(&KEY_MAGIC);
    key
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // Keys are our constants or 32-byte digests, and HMAC accepts keys of any length anyway.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().into()
}

/// Digest of a packet: HMAC over everything but the 32 digest bytes at `offset`.
fn packet_digest(packet: &[u8; PACKET_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_sha256(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Finds a valid digest, trying schema 772 then 8 like livego and ffmpeg.
fn find_digest(packet: &[u8; PACKET_SIZE], key: &[u8]) -> Option<(Schema, [u8; DIGEST_LEN])> {
    [Schema::Base772, Schema::Base8]
        .into_iter()
        .find_map(|schema| {
            let offset = schema.digest_offset(packet);
            let digest = packet_digest(packet, offset, key);
            (packet[offset..offset + DIGEST_LEN] == digest).then_some((schema, digest))
        })
}

/// Writes the digest of `packet` at its `schema` offset and returns it.
fn sign_packet(packet: &mut [u8; PACKET_SIZE], schema: Schema, key: &[u8]) -> [u8; DIGEST_LEN] {
    let offset = schema.digest_offset(packet);
    let digest = packet_digest(packet, offset, key);
    packet[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
    digest
}

/// Signature ending a complex S2/C2: HMAC(HMAC(full key, peer digest), packet[..1504]).
fn response_signature(packet: &[u8], peer_digest: &[u8], full_key: &[u8]) -> [u8; DIGEST_LEN] {
    let key = hmac_sha256(full_key, &[peer_digest]);
    hmac_sha256(&key, &[packet.get(..SIGNED_LEN).unwrap_or(packet)])
}

/// A random S2/C2 signed for the peer's digest.
fn signed_response(peer_digest: &[u8], full_key: &[u8]) -> [u8; PACKET_SIZE] {
    let mut packet = random_packet();
    let signature = response_signature(&packet, peer_digest, full_key);
    packet[SIGNED_LEN..].copy_from_slice(&signature);
    packet
}

/// Time 0, version 0, random bytes. Spec 5.2.3: the time field may be 0; ours is the epoch of
/// the chunk timestamps we send, which start from the media timestamps, so 0 is honest.
fn random_packet() -> [u8; PACKET_SIZE] {
    let mut packet = [0; PACKET_SIZE];
    rand::thread_rng().fill(&mut packet[8..]);
    packet
}

/// Moves up to `want` bytes from the front of `data` into `buf`.
fn fill(buf: &mut Vec<u8>, want: usize, data: &mut &[u8]) {
    let take = want.saturating_sub(buf.len()).min(data.len());
    let (head, tail) = data.split_at(take);
    buf.extend_from_slice(head);
    *data = tail;
}

/// The packet after the version byte once `buf` holds version byte + packet.
fn packet_after_version(buf: &[u8]) -> Option<&[u8; PACKET_SIZE]> {
    buf.get(1..1 + PACKET_SIZE)?.try_into().ok()
}

fn check_version(buf: &[u8]) -> Result<(), HandshakeError> {
    match buf.first() {
        Some(&v) if v != RTMP_VERSION => Err(HandshakeError::UnsupportedVersion(v)),
        _ => Ok(()),
    }
}

#[derive(Debug)]
enum ServerState {
    /// Collecting C0 + C1.
    ReadC0C1(Vec<u8>),
    /// S0+S1+S2 sent; this many C2 bytes are still to come.
    ReadC2(usize),
    Done,
}

/// Server side: answers C0+C1 with S0+S1+S2, then skips C2.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// A handshake waiting for C0.
    pub fn new() -> Self {
        Self {
            state: ServerState::ReadC0C1(Vec::with_capacity(1 + PACKET_SIZE)),
        }
    }

    /// Consumes received bytes; S0+S1+S2 are emitted once C0+C1 are in, `done` after C2.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<HandshakeOutput, HandshakeError> {
        let mut out = HandshakeOutput::default();
        if let ServerState::ReadC0C1(buf) = &mut self.state {
            fill(buf, 1 + PACKET_SIZE, &mut data);
            check_version(buf)?;
            let Some(c1) = packet_after_version(buf) else {
                return Ok(out);
            };
            out.to_send = server_response(c1);
            self.state = ServerState::ReadC2(PACKET_SIZE);
        }
        if let ServerState::ReadC2(remaining) = &mut self.state {
            // C2 is not validated: clients differ (echo of S1, or signed for S1's digest).
            let take = (*remaining).min(data.len());
            data = &data[take..];
            *remaining -= take;
            if *remaining == 0 {
                self.state = ServerState::Done;
            }
        }
        if let ServerState::Done = self.state {
            out.done = true;
            out.leftover = data.to_vec();
        }
        Ok(out)
    }
}

/// S0+S1+S2 for this C1: complex when C1 has a valid Flash Player digest, else simple.
fn server_response(c1: &[u8; PACKET_SIZE]) -> Vec<u8> {
    let complex = c1[4..8] != [0; 4];
    // livego rejects a C1 whose digest does not validate; we fall back to the simple handshake.
    let found = complex.then(|| find_digest(c1, &player_key()[..PLAYER_TEXT.len()]));
    let (s1, s2) = match found.flatten() {
        Some((schema, client_digest)) => {
            let mut s1 = random_packet();
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            sign_packet(&mut s1, schema, &server_key()[..SERVER_TEXT.len()]);
            (s1, signed_response(&client_digest, &server_key()))
        }
        // Spec 5.2.3/5.2.4: S1 is time + zero + random (livego sends zeros), S2 echoes C1.
        None => (random_packet(), *c1),
    };
    let mut out = Vec::with_capacity(1 + 2 * PACKET_SIZE);
    out.push(RTMP_VERSION);
    out.extend_from_slice(&s1);
    out.extend_from_slice(&s2);
    out
}

#[derive(Debug)]
enum ClientState {
    /// Collecting S0 + S1.
    ReadS0S1(Vec<u8>),
    /// C2 sent; collecting S2.
    ReadS2(Vec<u8>),
    Done,
}

/// Client side (relays, tests): sends C0+C1, answers S1 with C2, completes after S2.
#[derive(Debug)]
pub struct ClientHandshake {
    c1: [u8; PACKET_SIZE],
    /// Our C1 digest when complex.
    c1_digest: Option<[u8; DIGEST_LEN]>,
    /// S1 carried a valid server digest.
    s1_verified: bool,
    /// S1 digest verified and S2 carried the matching signature.
    server_verified: bool,
    state: ClientState,
}

impl ClientHandshake {
    /// Prepares C1: simple (version 0) or complex (digest at schema 8, player key).
    pub fn new(complex: bool) -> Self {
        let mut c1 = random_packet();
        let c1_digest = complex.then(|| {
            c1[4..8].copy_from_slice(&CLIENT_VERSION);
            sign_packet(&mut c1, Schema::Base8, &player_key()[..PLAYER_TEXT.len()])
        });
        Self {
            c1,
            c1_digest,
            s1_verified: false,
            server_verified: false,
            state: ClientState::ReadS0S1(Vec::with_capacity(1 + PACKET_SIZE)),
        }
    }

    /// C0+C1, to send first.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + PACKET_SIZE);
        out.push(RTMP_VERSION);
        out.extend_from_slice(&self.c1);
        out
    }

    /// True once a complex handshake validated the S1 digest and the S2 signature, i.e. the
    /// server is a digest-speaking (Flash Media Server-like) peer. Always false when simple.
    pub fn server_verified(&self) -> bool {
        self.server_verified
    }

    /// Consumes received bytes; emits C2 as soon as S1 is in (spec 5.2.1 only requires S1),
    /// `done` once S2 is in.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<HandshakeOutput, HandshakeError> {
        let mut out = HandshakeOutput::default();
        if let ClientState::ReadS0S1(buf) = &mut self.state {
            fill(buf, 1 + PACKET_SIZE, &mut data);
            check_version(buf)?;
            let Some(s1) = packet_after_version(buf) else {
                return Ok(out);
            };
            let s1 = *s1;
            out.to_send = self.respond(&s1).to_vec();
            self.state = ClientState::ReadS2(Vec::with_capacity(PACKET_SIZE));
        }
        if let ClientState::ReadS2(buf) = &mut self.state {
            fill(buf, PACKET_SIZE, &mut data);
            if buf.len() < PACKET_SIZE {
                return Ok(out);
            }
            self.server_verified = self.s1_verified
                && self.c1_digest.is_some_and(|d| {
                    buf.get(SIGNED_LEN..) == Some(&response_signature(buf, &d, &server_key())[..])
                });
            self.state = ClientState::Done;
        }
        out.done = true;
        out.leftover = data.to_vec();
        Ok(out)
    }

    /// C2 for this S1. With a complex C1 and a valid S1 digest, C2 is signed for the server's
    /// digest as ffmpeg and librtmp do (strict servers check it); otherwise it echoes S1
    /// (spec 5.2.4), which simple servers expect and ffmpeg's server accepts.
    fn respond(&mut self, s1: &[u8; PACKET_SIZE]) -> [u8; PACKET_SIZE] {
        if self.c1_digest.is_none() {
            return *s1;
        }
        match find_digest(s1, &server_key()[..SERVER_TEXT.len()]) {
            Some((_, server_digest)) => {
                self.s1_verified = true;
                signed_response(&server_digest, &player_key())
            }
            None => *s1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(bytes: &[u8]) -> &[u8; PACKET_SIZE] {
        bytes.try_into().unwrap()
    }

    /// S0+S1+S2 split into (S1, S2) after checking S0.
    fn split_response(out: &[u8]) -> (&[u8; PACKET_SIZE], &[u8; PACKET_SIZE]) {
        assert_eq!((out.len(), out[0]), (1 + 2 * PACKET_SIZE, RTMP_VERSION));
        (
            packet(&out[1..1 + PACKET_SIZE]),
            packet(&out[1 + PACKET_SIZE..]),
        )
    }

    /// Runs a client against a server; returns (C0C1, S0S1S2, C2, client).
    fn run(complex: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>, ClientHandshake) {
        let mut client = ClientHandshake::new(complex);
        let mut server = ServerHandshake::new();
        let c0c1 = client.start();
        let s = server.feed(&c0c1).unwrap();
        assert!(!s.done);
        let c = client.feed(&s.to_send).unwrap();
        assert!(c.done && c.leftover.is_empty());
        let end = server.feed(&c.to_send).unwrap();
        assert!(end.done && end.to_send.is_empty() && end.leftover.is_empty());
        (c0c1, s.to_send, c.to_send, client)
    }

    #[test]
    fn simple_handshake_both_ways() {
        let (c0c1, s0s1s2, c2, client) = run(false);
        assert_eq!(c0c1[5..9], [0; 4], "simple C1 has a zero version");
        let (s1, s2) = split_response(&s0s1s2);
        assert_eq!(s1[..8], [0; 8]);
        assert_ne!(
            s1[8..],
            [0; PACKET_SIZE - 8],
            "S1 is random, not zeros like livego"
        );
        assert_eq!(s2[..], c0c1[1..], "S2 echoes C1");
        assert_eq!(c2[..], s1[..], "C2 echoes S1");
        assert!(!client.server_verified());
    }

    #[test]
    fn complex_handshake_both_ways() {
        let (c0c1, s0s1s2, c2, client) = run(true);
        let c1 = packet(&c0c1[1..]);
        assert_eq!(c1[4..8], CLIENT_VERSION);
        let (schema, client_digest) = find_digest(c1, &player_key()[..30]).unwrap();
        assert_eq!(schema, Schema::Base8);
        let (s1, s2) = split_response(&s0s1s2);
        assert_eq!(s1[4..8], [0x0d, 0x0e, 0x0a, 0x0d]);
        let (s1_schema, server_digest) = find_digest(s1, &server_key()[..36]).unwrap();
        assert_eq!(
            s1_schema,
            Schema::Base8,
            "S1 digest uses the client's schema"
        );
        assert_eq!(
            s2[SIGNED_LEN..],
            response_signature(s2, &client_digest, &server_key())
        );
        assert_eq!(
            c2[SIGNED_LEN..],
            response_signature(&c2, &server_digest, &player_key())
        );
        assert!(client.server_verified());
    }

    #[test]
    fn complex_schema_772_answered_in_kind() {
        let mut c1 = random_packet();
        c1[4..8].copy_from_slice(&CLIENT_VERSION);
        let client_digest = sign_packet(&mut c1, Schema::Base772, &player_key()[..30]);
        let mut c0c1 = vec![RTMP_VERSION];
        c0c1.extend_from_slice(&c1);
        let out = ServerHandshake::new().feed(&c0c1).unwrap();
        let (s1, s2) = split_response(&out.to_send);
        let (schema, _) = find_digest(s1, &server_key()[..36]).unwrap();
        assert_eq!(schema, Schema::Base772);
        assert_eq!(
            s2[SIGNED_LEN..],
            response_signature(s2, &client_digest, &server_key())
        );
    }

    #[test]
    fn bad_digest_falls_back_to_simple() {
        let mut c0c1 = vec![RTMP_VERSION];
        let mut c1 = random_packet();
        c1[4..8].copy_from_slice(&[1, 2, 3, 4]);
        c0c1.extend_from_slice(&c1);
        let out = ServerHandshake::new().feed(&c0c1).unwrap();
        let (s1, s2) = split_response(&out.to_send);
        assert_eq!(s1[4..8], [0; 4]);
        assert_eq!(s2[..], c1[..]);
    }

    #[test]
    fn leftover_after_c2_preserved() {
        let mut client = ClientHandshake::new(false);
        let mut server = ServerHandshake::new();
        let s = server.feed(&client.start()).unwrap();
        let mut c2 = client.feed(&s.to_send).unwrap().to_send;
        c2.extend_from_slice(b"connect");
        let end = server.feed(&c2).unwrap();
        assert!(end.done);
        assert_eq!(end.leftover, b"connect");
        let later = server.feed(b"more").unwrap();
        assert_eq!((later.done, &later.leftover[..]), (true, &b"more"[..]));
    }

    #[test]
    fn everything_in_one_feed() {
        let mut client = ClientHandshake::new(true);
        let mut data = client.start();
        data.extend_from_slice(&[7; PACKET_SIZE]);
        data.extend_from_slice(&[1, 2, 3]);
        let out = ServerHandshake::new().feed(&data).unwrap();
        assert_eq!(out.to_send.len(), 1 + 2 * PACKET_SIZE);
        assert!(out.done);
        assert_eq!(out.leftover, [1, 2, 3]);
        // The client too: S0S1S2 plus the first server message in one read.
        let mut s = out.to_send.clone();
        s.extend_from_slice(&[9, 9]);
        let c = client.feed(&s).unwrap();
        assert!(c.done && client.server_verified());
        assert_eq!(
            (c.to_send.len(), &c.leftover[..]),
            (PACKET_SIZE, &[9, 9][..])
        );
    }

    #[test]
    fn byte_at_a_time() {
        let mut client = ClientHandshake::new(true);
        let mut server = ServerHandshake::new();
        let mut s0s1s2 = Vec::new();
        for b in client.start() {
            let out = server.feed(&[b]).unwrap();
            assert!(!out.done);
            s0s1s2.extend(out.to_send);
        }
        let mut c2 = Vec::new();
        let mut done = false;
        for (i, b) in s0s1s2.iter().enumerate() {
            let out = client.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(out.done, i == s0s1s2.len() - 1);
            if !out.to_send.is_empty() {
                assert_eq!(i, PACKET_SIZE, "C2 goes out as soon as S1 is in");
            }
            c2.extend(out.to_send);
            done = out.done;
        }
        assert!(done && client.server_verified());
        let outs: Vec<_> = c2
            .iter()
            .map(|b| server.feed(&[*b]).unwrap().done)
            .collect();
        assert_eq!(outs.iter().filter(|d| **d).count(), 1);
        assert!(outs[PACKET_SIZE - 1]);
    }

    #[test]
    fn rtmpe_and_other_versions_rejected() {
        let err = ServerHandshake::new().feed(&[6]).unwrap_err();
        assert_eq!(err, HandshakeError::UnsupportedVersion(6));
        assert!(err.to_string().contains("RTMPE"));
        let mut data = vec![0xff];
        data.extend_from_slice(&[0; PACKET_SIZE]);
        assert!(ServerHandshake::new().feed(&data).is_err());
        let mut client = ClientHandshake::new(false);
        assert_eq!(
            client.feed(&[8]),
            Err(HandshakeError::UnsupportedVersion(8))
        );
    }

    #[test]
    fn every_prefix_of_c0c1_waits() {
        for complex in [false, true] {
            let c0c1 = ClientHandshake::new(complex).start();
            for len in 0..c0c1.len() {
                let out = ServerHandshake::new().feed(&c0c1[..len]).unwrap();
                assert_eq!(out, HandshakeOutput::default(), "prefix {len}");
            }
        }
    }

    /// livego's simple S1 is all zeros: our client echoes it and reports no verification.
    #[test]
    fn complex_client_against_simple_server() {
        let mut client = ClientHandshake::new(true);
        let c0c1 = client.start();
        let mut s = vec![RTMP_VERSION];
        s.extend_from_slice(&[0; PACKET_SIZE]);
        s.extend_from_slice(&c0c1[1..]);
        let out = client.feed(&s).unwrap();
        assert!(out.done && !client.server_verified());
        assert_eq!(out.to_send, [0; PACKET_SIZE]);
    }

    #[test]
    fn digest_offsets_stay_in_bounds() {
        let mut p = [0xff; PACKET_SIZE];
        assert_eq!(Schema::Base8.digest_offset(&p), 1020 % 728 + 12);
        assert_eq!(Schema::Base772.digest_offset(&p), 1020 % 728 + 776);
        p[772..776].copy_from_slice(&[0xff, 0xff, 0xd9, 0]); // sum 727
        assert_eq!(
            Schema::Base772.digest_offset(&p),
            1503,
            "largest offset; digest ends at 1535"
        );
    }
}
