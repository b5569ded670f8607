//! Incremental parsers for byte streams that arrive in arbitrary pieces: FLV tags (HTTP-FLV
//! bodies, the raw baseline) and HTTP/1.1 chunked transfer coding.
//!
//! Neither keeps whole tags: a player only needs each tag's header and the first bytes of its
//! body (the stamp NAL is at the front), so the parsers use fixed buffers and never allocate.

use std::fmt;

/// Body bytes kept per tag: enough for the 5-byte video header and the stamp NAL.
pub const PREFIX_LEN: usize = 128;

/// One complete tag: its header fields and the first [`PREFIX_LEN`] bytes of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagView<'a> {
    pub type_id: u8,
    pub timestamp: u32,
    /// Full body length.
    pub len: usize,
    /// The start of the body (all of it when `len <= PREFIX_LEN`).
    pub prefix: &'a [u8],
}

/// A stream that is not valid FLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvError {
    /// The stream does not start with "FLV".
    Signature,
    /// A tag type other than audio, video or script data: the stream lost its framing.
    TagType(u8),
    /// A PreviousTagSize that does not match the tag before it.
    BackPointer { expected: u32, got: u32 },
}

impl fmt::Display for FlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signature => write!(f, "FLV stream does not start with an FLV header"),
            Self::TagType(t) => write!(f, "FLV tag of unknown type {t}"),
            Self::BackPointer { expected, got } => {
                write!(f, "FLV PreviousTagSize {got}, expected {expected}")
            }
        }
    }
}

impl std::error::Error for FlvError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting the 9-byte file header.
    FileHeader,
    /// Skipping the rest of the header and PreviousTagSize0.
    Skip(usize),
    /// Collecting an 11-byte tag header.
    TagHeader,
    /// Inside a body; bytes left.
    Body(usize),
    /// Collecting the 4-byte PreviousTagSize.
    BackPointer,
}

/// Incremental FLV parser.
#[derive(Debug, Clone)]
pub struct FlvStream {
    state: State,
    head: [u8; 11],
    have: usize,
    type_id: u8,
    timestamp: u32,
    len: usize,
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    tags: u64,
}

impl FlvStream {
    /// A parser expecting the FLV file header first.
    pub fn new() -> Self {
        Self {
            state: State::FileHeader,
            head: [0; 11],
            have: 0,
            type_id: 0,
            timestamp: 0,
            len: 0,
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            tags: 0,
        }
    }

    /// Whether the file header has been seen.
    pub fn started(&self) -> bool {
        !matches!(self.state, State::FileHeader)
    }

    /// Complete tags so far.
    pub fn tags(&self) -> u64 {
        self.tags
    }

    /// Consumes `data`, calling `on_tag` for each tag completed in it.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        on_tag: &mut impl FnMut(TagView<'_>),
    ) -> Result<(), FlvError> {
        while !data.is_empty() {
            match self.state {
                State::FileHeader => {
                    let take = (9 - self.have).min(data.len());
                    self.head[self.have..self.have + take].copy_from_slice(&data[..take]);
                    self.have += take;
                    data = &data[take..];
                    if self.have == 9 {
                        if &self.head[..3] != b"FLV" {
                            return Err(FlvError::Signature);
                        }
                        let h = &self.head;
                        let offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
                        self.state = State::Skip(offset.max(9) - 9 + 4);
                        self.have = 0;
                    }
                }
                State::Skip(n) => {
                    let take = n.min(data.len());
                    data = &data[take..];
                    self.state = if take == n {
                        State::TagHeader
                    } else {
                        State::Skip(n - take)
                    };
                }
                State::TagHeader => {
                    let take = (11 - self.have).min(data.len());
                    self.head[self.have..self.have + take].copy_from_slice(&data[..take]);
                    self.have += take;
                    data = &data[take..];
                    if self.have == 11 {
                        let h = &self.head;
                        self.type_id = h[0] & 0x1f;
                        if !matches!(self.type_id, 8 | 9 | 18) {
                            return Err(FlvError::TagType(self.type_id));
                        }
                        self.len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
                        self.timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                        self.prefix_len = 0;
                        self.have = 0;
                        self.state = State::Body(self.len);
                        if self.len == 0 {
                            self.finish_tag(on_tag);
                        }
                    }
                }
                State::Body(left) => {
                    let take = left.min(data.len());
                    let keep = (PREFIX_LEN - self.prefix_len).min(take);
                    self.prefix[self.prefix_len..self.prefix_len + keep]
                        .copy_from_slice(&data[..keep]);
                    self.prefix_len += keep;
                    data = &data[take..];
                    if take == left {
                        self.finish_tag(on_tag);
                    } else {
                        self.state = State::Body(left - take);
                    }
                }
                State::BackPointer => {
                    let take = (4 - self.have).min(data.len());
                    self.head[self.have..self.have + take].copy_from_slice(&data[..take]);
                    self.have += take;
                    data = &data[take..];
                    if self.have == 4 {
                        let h = &self.head;
                        let got = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                        let expected = self.len as u32 + 11;
                        if got != expected {
                            return Err(FlvError::BackPointer { expected, got });
                        }
                        self.have = 0;
                        self.state = State::TagHeader;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish_tag(&mut self, on_tag: &mut impl FnMut(TagView<'_>)) {
        self.tags += 1;
        on_tag(TagView {
            type_id: self.type_id,
            timestamp: self.timestamp,
            len: self.len,
            prefix: &self.prefix[..self.prefix_len],
        });
        self.state = State::BackPointer;
    }
}

impl Default for FlvStream {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size.
    Size { digits: u8 },
    /// Chunk extensions or whitespace up to the end of the size line.
    Ext,
    /// Expecting the LF of the size line.
    SizeLf,
    /// Chunk data; bytes left.
    Data(u64),
    /// Expecting the CR (or LF) after the data.
    DataCr,
    /// Expecting the LF after the data.
    DataLf,
    /// The last chunk was seen; nothing more is body.
    Done,
}

/// Incremental decoder of `Transfer-Encoding: chunked` (RFC 9112 section 7.1).
#[derive(Debug, Clone)]
pub struct Dechunker {
    state: Chunk,
    size: u64,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

impl Dechunker {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self {
            state: Chunk::Size { digits: 0 },
            size: 0,
        }
    }

    /// Whether the last chunk has been seen.
    pub fn done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decodes `data`, handing each piece of body to `out` in order. Bytes after the last
    /// chunk (trailers) are ignored.
    pub fn feed<E: From<String>>(
        &mut self,
        mut data: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let bad = |what: &str| E::from(format!("bad chunked encoding: {what}"));
        while !data.is_empty() {
            match self.state {
                Chunk::Size { digits } => {
                    let b = data[0];
                    data = &data[1..];
                    let v = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        b'A'..=b'F' => b - b'A' + 10,
                        b';' | b' ' | b'\t' if digits > 0 => {
                            self.state = Chunk::Ext;
                            continue;
                        }
                        b'\r' if digits > 0 => {
                            self.state = Chunk::SizeLf;
                            continue;
                        }
                        b'\n' if digits > 0 => {
                            self.end_size_line();
                            continue;
                        }
                        _ => return Err(bad("chunk size")),
                    };
                    if digits >= 15 {
                        return Err(bad("chunk size too large"));
                    }
                    self.size = self.size << 4 | u64::from(v);
                    self.state = Chunk::Size { digits: digits + 1 };
                }
                Chunk::Ext => match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        data = &data[i + 1..];
                        self.end_size_line();
                    }
                    None => data = &[],
                },
                Chunk::SizeLf => {
                    if data[0] != b'\n' {
                        return Err(bad("no LF after the chunk size"));
                    }
                    data = &data[1..];
                    self.end_size_line();
                }
                Chunk::Data(left) => {
                    let take = (left.min(data.len() as u64)) as usize;
                    out(&data[..take])?;
                    data = &data[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left)
                    };
                }
                Chunk::DataCr => {
                    self.state = match data[0] {
                        b'\r' => Chunk::DataLf,
                        b'\n' => Chunk::Size { digits: 0 },
                        _ => return Err(bad("no CRLF after chunk data")),
                    };
                    data = &data[1..];
                }
                Chunk::DataLf => {
                    if data[0] != b'\n' {
                        return Err(bad("no LF after chunk data"));
                    }
                    data = &data[1..];
                    self.state = Chunk::Size { digits: 0 };
                }
                Chunk::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        self.state = if self.size == 0 {
            Chunk::Done
        } else {
            Chunk::Data(self.size)
        };
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardcast::media::flv::write_tag;

    fn stream_bytes() -> Vec<u8> {
        let mut data = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        write_tag(&mut data, 18, 0, b"\x02\x00\x0aonMetaData");
        let big: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        write_tag(&mut data, 9, 40, &big);
        write_tag(&mut data, 8, 0x0100_0002, &[0xaf, 1, 2]);
        write_tag(&mut data, 9, 80, &[]);
        data
    }

    type Seen = Vec<(u8, u32, usize, Vec<u8>)>;

    fn collect(pieces: &[&[u8]]) -> Result<Seen, FlvError> {
        let mut p = FlvStream::new();
        let mut got = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut |t| {
                got.push((t.type_id, t.timestamp, t.len, t.prefix.to_vec()))
            })?;
        }
        Ok(got)
    }

    #[test]
    fn tags_across_any_split() {
        let data = stream_bytes();
        let whole = collect(&[&data]).unwrap();
        assert_eq!(whole.len(), 4);
        assert_eq!((whole[1].0, whole[1].1, whole[1].2), (9, 40, 1000));
        assert_eq!(whole[1].3.len(), PREFIX_LEN);
        assert_eq!(
            whole[1].3[..],
            (0..128u32).map(|i| i as u8).collect::<Vec<_>>()[..]
        );
        assert_eq!(whole[2].1, 0x0100_0002);
        assert_eq!(whole[3].2, 0);
        for cut in 0..data.len() {
            assert_eq!(
                collect(&[&data[..cut], &data[cut..]]).unwrap(),
                whole,
                "{cut}"
            );
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(collect(&bytes).unwrap(), whole);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            collect(&[b"FLX\x01\x05\0\0\0\x09"]),
            Err(FlvError::Signature)
        );
        let mut data = stream_bytes();
        let n = data.len();
        data[n - 1] ^= 1;
        assert!(matches!(
            collect(&[&data]),
            Err(FlvError::BackPointer { .. })
        ));
        let mut data = stream_bytes();
        data[13] = 7;
        assert_eq!(collect(&[&data]), Err(FlvError::TagType(7)));
    }

    fn dechunk(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), String> {
        let mut d = Dechunker::new();
        let mut body = Vec::new();
        for p in pieces {
            d.feed(p, &mut |b: &[u8]| {
                body.extend_from_slice(b);
                Ok::<(), String>(())
            })?;
        }
        Ok((body, d.done()))
    }

    #[test]
    fn chunked_across_any_split() {
        let wire = b"5\r\nhello\r\nA;ext=1\r\n0123456789\r\n1\n!\n0\r\n\r\n";
        let (body, done) = dechunk(&[wire]).unwrap();
        assert_eq!(body, b"hello0123456789!");
        assert!(done);
        for cut in 0..wire.len() {
            let (b, d) = dechunk(&[&wire[..cut], &wire[cut..]]).unwrap();
            assert_eq!((b.as_slice(), d), (&b"hello0123456789!"[..], true), "{cut}");
        }
        assert!(dechunk(&[b"zz\r\n"]).is_err());
        assert!(dechunk(&[b"3\r\nabcX"]).is_err());
        assert!(dechunk(&[b"ffffffffffffffffff\r\n"]).is_err());
    }
}
