//! AMF0 and AMF3 codec for RTMP command messages (types 20 and 17) and data messages (18 and 15).
//!
//! Specs: Adobe "Action Message Format -- AMF 0" (December 2007) and "Action Message Format --
//! AMF 3" (January 2013). Sections cited below as "AMF0 §x" and "AMF3 §x".
//!
//! Decoding is hardened against hostile input:
//! - nesting deeper than [`MAX_DEPTH`] containers fails with [`AmfError::TooDeep`], so recursion
//!   (and the recursive `Drop`/`Clone` of the result) stays shallow;
//! - no allocation is sized from a length or count field beyond what the remaining input can hold;
//! - references (AMF0 0x07, AMF3 string/trait/object references) are resolved by re-decoding the
//!   referenced bytes, and the total re-decoded size per call is capped by [`MAX_EXPANSION`], so a
//!   few hundred bytes of references to references cannot expand exponentially;
//! - a reference to a value that is still being decoded (a cycle) fails with
//!   [`AmfError::BadReference`]: [`Value`] is a tree and cannot hold cycles;
//! - strings that are not valid UTF-8 are decoded lossily (U+FFFD), never rejected.
//!
//! Mapping of wire types to [`Value`] that is not one-to-one:
//! - AMF3 arrays: only a dense part -> `StrictArray`; only an associative part -> `EcmaArray`;
//!   both -> `EcmaArray` holding the dense items under the keys "0", "1", ... followed by the
//!   associative items. AMF3 vectors (int, uint, double, object) decode to `StrictArray`.
//! - AMF3 dates carry no time zone: they decode with `tz: 0`.
//! - Externalizable AMF3 objects (class-specific encoding) and AMF3 dictionaries fail cleanly.
//!
//! Encoding (infallible; input comes from our own code, not from peers):
//! - AMF0: `Integer` is written as a number; `ByteArray` as the avmplus marker 0x11 followed by
//!   an AMF3 byte array (AMF0 §3.1); strings over 65535 bytes as long strings. Names longer than
//!   65535 bytes are cut to the longest prefix that fits and ends on a char boundary.
//! - AMF3: no reference compression. `Integer` outside the 29-bit range and `Number` are written
//!   as doubles; `Object`, `TypedObject` as dynamic objects with their class name; `EcmaArray`
//!   as an array with an empty dense part; `Unsupported` as undefined; dates lose `tz`. AMF3
//!   cannot represent empty member names (the empty name ends the member list), so members
//!   named "" are skipped.

use std::fmt;
use std::ops::Range;
use std::rc::Rc;

/// Maximum container nesting (objects, arrays, vectors) a decoder accepts; deeper input fails
/// with [`AmfError::TooDeep`].
pub const MAX_DEPTH: usize = 64;

/// Maximum number of bytes that resolving references may re-read or copy in one decode call;
/// more fails with [`AmfError::ExpansionLimit`]. Legitimate RTMP payloads stay far below it.
pub const MAX_EXPANSION: usize = 1 << 20;

/// One AMF0 or AMF3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// IEEE-754 double.
    Number(f64),
    /// Boolean.
    Boolean(bool),
    /// AMF0 string and long string, AMF3 string.
    String(String),
    /// AMF0 anonymous object, AMF3 object without a class name.
    Object(Vec<(String, Value)>),
    /// AMF0 typed object, AMF3 object with a class name.
    TypedObject {
        /// Class name (alias) of the object.
        class: String,
        /// Members in wire order.
        props: Vec<(String, Value)>,
    },
    /// AMF0 ECMA array, AMF3 array with an associative part (see the module docs).
    EcmaArray(Vec<(String, Value)>),
    /// AMF0 strict array, AMF3 dense array and vectors.
    StrictArray(Vec<Value>),
    /// Null.
    Null,
    /// Undefined.
    Undefined,
    /// Date: milliseconds since the Unix epoch (UTC) and a time zone offset (AMF0 only).
    Date {
        /// Milliseconds since 1970-01-01T00:00:00Z.
        millis: f64,
        /// Time zone offset; AMF0 §2.13 says it should be 0x0000. Always 0 from AMF3.
        tz: i16,
    },
    /// AMF0 XML document, AMF3 XML and XMLDocument.
    Xml(String),
    /// AMF3 integer (29-bit signed on the wire), or an item of an AMF3 `Vector.<int>`.
    Integer(i32),
    /// AMF3 byte array.
    ByteArray(Vec<u8>),
    /// AMF0 unsupported marker.
    Unsupported,
}

impl Value {
    /// The string, if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a `Number` or an `Integer`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Integer(i) => Some(f64::from(*i)),
            _ => None,
        }
    }

    /// The boolean, if this is a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The first member named `key` of an `Object`, `TypedObject` or `EcmaArray`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let props = match self {
            Value::Object(props) | Value::TypedObject { props, .. } | Value::EcmaArray(props) => {
                props
            }
            _ => return None,
        };
        props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Builds an anonymous `Object` from name/value pairs, keeping their order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// Why AMF input could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmfError {
    /// The input ended inside a value.
    Truncated,
    /// A type marker that neither spec defines.
    UnknownMarker(u8),
    /// A defined marker this codec does not decode: AMF0 movieclip (0x04) and recordset (0x0E),
    /// both reserved; AMF3 dictionary (0x11).
    UnsupportedMarker(u8),
    /// An AMF0 object-end marker (0x09) where a value was expected.
    UnexpectedObjectEnd,
    /// Containers nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A reference index beyond the table, or to a value still being decoded (a cycle).
    BadReference,
    /// An AMF3 externalizable object: its encoding is private to the named class.
    Externalizable(String),
    /// References would re-read more than [`MAX_EXPANSION`] bytes.
    ExpansionLimit,
}

impl fmt::Display for AmfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmfError::Truncated => write!(f, "AMF input ends inside a value"),
            AmfError::UnknownMarker(m) => write!(f, "unknown AMF type marker 0x{m:02x}"),
            AmfError::UnsupportedMarker(m) => write!(f, "unsupported AMF type marker 0x{m:02x}"),
            AmfError::UnexpectedObjectEnd => write!(f, "AMF0 object-end marker outside an object"),
            AmfError::TooDeep => write!(f, "AMF values nested deeper than {MAX_DEPTH}"),
            AmfError::BadReference => write!(f, "AMF reference to a missing or unfinished value"),
            AmfError::Externalizable(class) => {
                write!(
                    f,
                    "AMF3 externalizable object of class {class:?} cannot be decoded"
                )
            }
            AmfError::ExpansionLimit => {
                write!(f, "AMF references expand beyond {MAX_EXPANSION} bytes")
            }
        }
    }
}

impl std::error::Error for AmfError {}

type Result<T> = std::result::Result<T, AmfError>;

/// Decodes every AMF0 value in `buf` until it is exhausted. The AMF0 "avmplus-object" marker
/// 0x11 switches to AMF3 for exactly that one value (how AMF3 commands, RTMP message type 17,
/// carry values). AMF0 references may point at any complex value decoded earlier in `buf`.
pub fn decode_amf0(buf: &[u8]) -> std::result::Result<Vec<Value>, AmfError> {
    let mut dec = Decoder::new(buf);
    let mut values = Vec::new();
    while dec.remaining() > 0 {
        values.push(dec.amf0_value()?);
    }
    Ok(values)
}

/// Decodes one AMF0 value from the front of `buf`, returning the value and the bytes consumed.
pub fn decode_amf0_value(buf: &[u8]) -> std::result::Result<(Value, usize), AmfError> {
    let mut dec = Decoder::new(buf);
    let value = dec.amf0_value()?;
    Ok((value, dec.pos))
}

/// Decodes a sequence of AMF3 values filling `buf`; the reference tables span the whole call.
pub fn decode_amf3(buf: &[u8]) -> std::result::Result<Vec<Value>, AmfError> {
    let mut dec = Decoder::new(buf);
    let mut tables = Amf3Tables::default();
    let mut values = Vec::new();
    while dec.remaining() > 0 {
        values.push(dec.amf3_value(&mut tables)?);
    }
    Ok(values)
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// AMF0 object-end marker (AMF0 §2.11).
const OBJECT_END: u8 = 0x09;

/// Values that may be referenced, as byte ranges of their encodings in the input; `None` while
/// the value is still being decoded.
#[derive(Default)]
struct RefTable(Vec<Option<Range<usize>>>);

impl RefTable {
    /// Adds an entry for a value whose decoding starts now; returns its index.
    fn reserve(&mut self) -> usize {
        self.0.push(None);
        self.0.len() - 1
    }

    /// Records where the value of entry `index` was encoded.
    fn complete(&mut self, index: usize, range: Range<usize>) {
        if let Some(entry) = self.0.get_mut(index) {
            *entry = Some(range);
        }
    }

    /// The encoding of a finished value.
    fn get(&self, index: usize) -> Result<Range<usize>> {
        self.0
            .get(index)
            .cloned()
            .flatten()
            .ok_or(AmfError::BadReference)
    }
}

/// AMF3 class traits (AMF3 §3.12); names are byte ranges of the input.
struct Traits {
    class: Range<usize>,
    sealed: Vec<Range<usize>>,
    dynamic: bool,
    externalizable: bool,
}

/// AMF3 reference tables (AMF3 §2.2), fresh for each AMF3 context.
#[derive(Default)]
struct Amf3Tables {
    strings: Vec<Range<usize>>,
    objects: RefTable,
    traits: Vec<Rc<Traits>>,
    /// True while re-decoding a referenced object: its strings, traits and objects are in the
    /// tables already and must not be added again.
    replay: bool,
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Containers currently open.
    depth: usize,
    /// Bytes that resolving references may still re-read or copy.
    budget: usize,
    amf0_refs: RefTable,
    /// True while re-decoding an AMF0 reference target.
    amf0_replay: bool,
}

impl<'a> Decoder<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Decoder {
            buf,
            pos: 0,
            depth: 0,
            budget: MAX_EXPANSION,
            amf0_refs: RefTable::default(),
            amf0_replay: false,
        }
    }

    // --- primitives -------------------------------------------------------------------------

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(AmfError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(AmfError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn take_range(&mut self, n: usize) -> Result<Range<usize>> {
        let start = self.pos;
        self.take(n)?;
        Ok(start..self.pos)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| AmfError::Truncated)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A u32 used as a length or count.
    fn u32_usize(&mut self) -> Result<usize> {
        let n = u32::from_be_bytes(self.array()?);
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    /// Variable-length unsigned 29-bit integer (AMF3 §1.3.1): up to three bytes carry 7 bits
    /// each with a continuation flag; a fourth byte carries all 8 bits.
    fn u29(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for _ in 0..3 {
            let byte = self.u8()?;
            value = (value << 7) | u32::from(byte & 0x7F);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Ok((value << 8) | u32::from(self.u8()?))
    }

    /// A U29 used as a length, count or index.
    fn u29_usize(&mut self) -> Result<usize> {
        Ok(usize::try_from(self.u29()?).unwrap_or(usize::MAX))
    }

    /// The input bytes in `range` as text, invalid UTF-8 replaced.
    fn text(&self, range: Range<usize>) -> String {
        String::from_utf8_lossy(self.buf.get(range).unwrap_or_default()).into_owned()
    }

    /// Spends `n` bytes of the reference expansion budget.
    fn charge(&mut self, n: usize) -> Result<()> {
        self.budget = self.budget.checked_sub(n).ok_or(AmfError::ExpansionLimit)?;
        Ok(())
    }

    /// Runs `f` one container level deeper.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(AmfError::TooDeep);
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Re-decodes the value encoded at `range` with `f`, then resumes where we were. The
    /// re-read bytes are charged to the expansion budget first.
    fn replay<T>(
        &mut self,
        range: Range<usize>,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        self.charge(range.len())?;
        let resume = std::mem::replace(&mut self.pos, range.start);
        let value = f(self)?;
        self.pos = resume;
        Ok(value)
    }

    // --- AMF0 -------------------------------------------------------------------------------

    fn amf0_value(&mut self) -> Result<Value> {
        let start = self.pos;
        let marker = self.u8()?;
        let value = match marker {
            0x00 => Value::Number(self.f64()?),
            0x01 => Value::Boolean(self.u8()? != 0),
            0x02 => Value::String(self.amf0_string()?),
            0x03 => self.amf0_complex(start, |d| Ok(Value::Object(d.amf0_props()?)))?,
            // AMF0 §2.6 movieclip and §2.15 recordset: reserved, not supported by Flash Player.
            0x04 | 0x0E => return Err(AmfError::UnsupportedMarker(marker)),
            0x05 => Value::Null,
            0x06 => Value::Undefined,
            0x07 => self.amf0_reference()?,
            0x08 => self.amf0_complex(start, Self::amf0_ecma_array)?,
            OBJECT_END => return Err(AmfError::UnexpectedObjectEnd),
            0x0A => self.amf0_complex(start, Self::amf0_strict_array)?,
            0x0B => {
                let millis = self.f64()?;
                Value::Date {
                    millis,
                    tz: self.i16()?,
                }
            }
            0x0C => Value::String(self.amf0_long_string()?),
            0x0D => Value::Unsupported,
            0x0F => Value::Xml(self.amf0_long_string()?),
            0x10 => self.amf0_complex(start, |d| {
                let class = d.amf0_string()?;
                let props = d.amf0_props()?;
                Ok(Value::TypedObject { class, props })
            })?,
            // AMF0 §3.1: avmplus-object switches to AMF3 for one value, with fresh AMF3 tables.
            0x11 => self.amf3_value(&mut Amf3Tables::default())?,
            _ => return Err(AmfError::UnknownMarker(marker)),
        };
        Ok(value)
    }

    /// UTF-8 with a u16 length (AMF0 §1.3).
    fn amf0_string(&mut self) -> Result<String> {
        let len = usize::from(self.u16()?);
        let range = self.take_range(len)?;
        Ok(self.text(range))
    }

    /// UTF-8-long with a u32 length (AMF0 §1.3).
    fn amf0_long_string(&mut self) -> Result<String> {
        let len = self.u32_usize()?;
        let range = self.take_range(len)?;
        Ok(self.text(range))
    }

    /// Decodes a complex value (one that enters the reference table, AMF0 §2.9) with `body`.
    fn amf0_complex(
        &mut self,
        start: usize,
        body: impl FnOnce(&mut Self) -> Result<Value>,
    ) -> Result<Value> {
        let slot = (!self.amf0_replay).then(|| self.amf0_refs.reserve());
        let value = self.nested(body)?;
        if let Some(index) = slot {
            self.amf0_refs.complete(index, start..self.pos);
        }
        Ok(value)
    }

    /// Members up to the empty name followed by the object-end marker (AMF0 §2.5). An empty
    /// name followed by any other marker is an ordinary member named "".
    fn amf0_props(&mut self) -> Result<Vec<(String, Value)>> {
        let mut props = Vec::new();
        loop {
            let key = self.amf0_string()?;
            if key.is_empty() && self.buf.get(self.pos) == Some(&OBJECT_END) {
                self.u8()?;
                return Ok(props);
            }
            let value = self.amf0_value()?;
            props.push((key, value));
        }
    }

    /// ECMA array (AMF0 §2.10): the u32 count is only a hint; members run to object-end.
    fn amf0_ecma_array(&mut self) -> Result<Value> {
        self.u32_usize()?;
        Ok(Value::EcmaArray(self.amf0_props()?))
    }

    /// Strict array (AMF0 §2.12): u32 count, then that many values.
    fn amf0_strict_array(&mut self) -> Result<Value> {
        let count = self.u32_usize()?;
        let mut items = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            items.push(self.amf0_value()?);
        }
        Ok(Value::StrictArray(items))
    }

    /// Reference (AMF0 §2.9): u16 index into the complex values met so far in this call.
    fn amf0_reference(&mut self) -> Result<Value> {
        let index = usize::from(self.u16()?);
        let range = self.amf0_refs.get(index)?;
        let was_replay = std::mem::replace(&mut self.amf0_replay, true);
        let value = self.replay(range, Self::amf0_value);
        self.amf0_replay = was_replay;
        value
    }

    // --- AMF3 -------------------------------------------------------------------------------

    fn amf3_value(&mut self, cx: &mut Amf3Tables) -> Result<Value> {
        let start = self.pos;
        let marker = self.u8()?;
        match marker {
            0x00 => Ok(Value::Undefined),
            0x01 => Ok(Value::Null),
            0x02 => Ok(Value::Boolean(false)),
            0x03 => Ok(Value::Boolean(true)),
            0x04 => Ok(Value::Integer(sign_extend_u29(self.u29()?))),
            0x05 => Ok(Value::Number(self.f64()?)),
            0x06 => {
                let range = self.amf3_string(cx)?;
                Ok(Value::String(self.text(range)))
            }
            // AMF3 §3.9 XMLDocument and §3.13 XML: U29X-value then UTF-8 bytes.
            0x07 | 0x0B => self.amf3_complex(cx, start, |d, _, len| {
                let range = d.take_range(len)?;
                Ok(Value::Xml(d.text(range)))
            }),
            // AMF3 §3.10: the remaining U29D bits are unused; the date is a UTC double.
            0x08 => self.amf3_complex(cx, start, |d, _, _| {
                Ok(Value::Date {
                    millis: d.f64()?,
                    tz: 0,
                })
            }),
            0x09 => self.amf3_complex(cx, start, Self::amf3_array),
            0x0A => self.amf3_complex(cx, start, Self::amf3_object),
            0x0C => self.amf3_complex(cx, start, |d, _, len| {
                Ok(Value::ByteArray(d.take(len)?.to_vec()))
            }),
            0x0D..=0x10 => {
                self.amf3_complex(cx, start, |d, cx, count| d.amf3_vector(cx, marker, count))
            }
            0x11 => Err(AmfError::UnsupportedMarker(marker)),
            _ => Err(AmfError::UnknownMarker(marker)),
        }
    }

    /// UTF-8-vr (AMF3 §1.3.2): an inline string, added to the string table unless empty, or
    /// a string reference. Returns the string's bytes as a range of the input.
    fn amf3_string(&mut self, cx: &mut Amf3Tables) -> Result<Range<usize>> {
        let header = self.u29_usize()?;
        if header & 1 == 0 {
            let range = cx
                .strings
                .get(header >> 1)
                .cloned()
                .ok_or(AmfError::BadReference)?;
            self.charge(range.len())?;
            return Ok(range);
        }
        let range = self.take_range(header >> 1)?;
        if !range.is_empty() && !cx.replay {
            cx.strings.push(range.clone());
        }
        Ok(range)
    }

    /// A value that enters the object table (AMF3 §2.2): its U29 header's low bit is 0 for a
    /// reference (index in the remaining bits) and 1 for an inline value, whose `body` gets
    /// the remaining bits.
    fn amf3_complex(
        &mut self,
        cx: &mut Amf3Tables,
        start: usize,
        body: impl FnOnce(&mut Self, &mut Amf3Tables, usize) -> Result<Value>,
    ) -> Result<Value> {
        let header = self.u29_usize()?;
        if header & 1 == 0 {
            return self.amf3_object_reference(cx, header >> 1);
        }
        let slot = (!cx.replay).then(|| cx.objects.reserve());
        let value = body(self, cx, header >> 1)?;
        if let Some(index) = slot {
            cx.objects.complete(index, start..self.pos);
        }
        Ok(value)
    }

    /// Object reference: the index is the header shifted right once (unlike livego, which
    /// shifts it twice).
    fn amf3_object_reference(&mut self, cx: &mut Amf3Tables, index: usize) -> Result<Value> {
        let range = cx.objects.get(index)?;
        let was_replay = std::mem::replace(&mut cx.replay, true);
        let value = self.replay(range, |d| d.amf3_value(cx));
        cx.replay = was_replay;
        value
    }

    /// Array (AMF3 §3.11): associative members up to the empty name, then `dense_len` values.
    fn amf3_array(&mut self, cx: &mut Amf3Tables, dense_len: usize) -> Result<Value> {
        self.nested(|d| {
            let assoc = d.amf3_dynamic_members(cx, Vec::new())?;
            let mut dense = Vec::with_capacity(dense_len.min(d.remaining()));
            for _ in 0..dense_len {
                dense.push(d.amf3_value(cx)?);
            }
            Ok(array_value(dense, assoc))
        })
    }

    /// Name/value pairs appended to `members` up to the empty name (AMF3 §3.11, §3.12).
    fn amf3_dynamic_members(
        &mut self,
        cx: &mut Amf3Tables,
        mut members: Vec<(String, Value)>,
    ) -> Result<Vec<(String, Value)>> {
        loop {
            let name = self.amf3_string(cx)?;
            if name.is_empty() {
                return Ok(members);
            }
            let name = self.text(name);
            members.push((name, self.amf3_value(cx)?));
        }
    }

    /// Object (AMF3 §3.12): traits, sealed member values in traits order, then dynamic members.
    fn amf3_object(&mut self, cx: &mut Amf3Tables, header: usize) -> Result<Value> {
        let traits = self.amf3_traits(cx, header)?;
        let class = self.text(traits.class.clone());
        if traits.externalizable {
            return Err(AmfError::Externalizable(class));
        }
        self.nested(|d| {
            let mut props = Vec::new();
            for name in &traits.sealed {
                let name = d.text(name.clone());
                props.push((name, d.amf3_value(cx)?));
            }
            if traits.dynamic {
                props = d.amf3_dynamic_members(cx, props)?;
            }
            Ok(if class.is_empty() {
                Value::Object(props)
            } else {
                Value::TypedObject { class, props }
            })
        })
    }

    /// Traits (AMF3 §3.12), given the object header without its low (inline object) bit:
    /// bit 0 clear -> traits reference (index in the rest); else bit 1 externalizable, bit 2
    /// dynamic, the rest the sealed member count.
    fn amf3_traits(&mut self, cx: &mut Amf3Tables, header: usize) -> Result<Rc<Traits>> {
        if header & 1 == 0 {
            let traits = cx
                .traits
                .get(header >> 1)
                .cloned()
                .ok_or(AmfError::BadReference)?;
            // Reusing traits copies their member names into the new object.
            let names: usize = traits.sealed.iter().map(|r| r.len()).sum();
            self.charge(names.saturating_add(traits.class.len()))?;
            return Ok(traits);
        }
        let externalizable = header & 2 != 0;
        let class = self.amf3_string(cx)?;
        let mut sealed = Vec::new();
        if !externalizable {
            for _ in 0..header >> 3 {
                sealed.push(self.amf3_string(cx)?);
            }
        }
        let traits = Rc::new(Traits {
            class,
            sealed,
            dynamic: header & 4 != 0,
            externalizable,
        });
        if !cx.replay {
            cx.traits.push(Rc::clone(&traits));
        }
        Ok(traits)
    }

    /// `Vector.<int|uint|double|Object>` (AMF3 §3.15) as a `StrictArray`.
    fn amf3_vector(&mut self, cx: &mut Amf3Tables, marker: u8, count: usize) -> Result<Value> {
        self.nested(|d| {
            d.u8()?; // fixed-length flag
            let items = match marker {
                0x0D => d.amf3_fixed_items(count, |b| Value::Integer(i32::from_be_bytes(b)))?,
                0x0E => {
                    d.amf3_fixed_items(count, |b| Value::Number(f64::from(u32::from_be_bytes(b))))?
                }
                0x0F => d.amf3_fixed_items(count, |b| Value::Number(f64::from_be_bytes(b)))?,
                _ => {
                    d.amf3_string(cx)?; // object type name
                    let mut items = Vec::with_capacity(count.min(d.remaining()));
                    for _ in 0..count {
                        items.push(d.amf3_value(cx)?);
                    }
                    items
                }
            };
            Ok(Value::StrictArray(items))
        })
    }

    /// `count` fixed-size big-endian items, all read (and bounds-checked) before allocating.
    fn amf3_fixed_items<const N: usize>(
        &mut self,
        count: usize,
        item: fn([u8; N]) -> Value,
    ) -> Result<Vec<Value>> {
        let bytes = self.take(count.checked_mul(N).ok_or(AmfError::Truncated)?)?;
        Ok(bytes
            .chunks_exact(N)
            .filter_map(|chunk| chunk.try_into().ok())
            .map(item)
            .collect())
    }
}

/// Sign-extends a 29-bit two's-complement integer (AMF3 §3.6).
fn sign_extend_u29(n: u32) -> i32 {
    ((n << 3) as i32) >> 3
}

/// Maps an AMF3 array's dense and associative parts to one value (see the module docs).
fn array_value(dense: Vec<Value>, assoc: Vec<(String, Value)>) -> Value {
    if assoc.is_empty() {
        return Value::StrictArray(dense);
    }
    if dense.is_empty() {
        return Value::EcmaArray(assoc);
    }
    let indexed = dense
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i.to_string(), v));
    Value::EcmaArray(indexed.chain(assoc).collect())
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Encodes `values` one after another as AMF0 (see the module docs for the type mapping).
pub fn encode_amf0(values: &[Value], out: &mut Vec<u8>) {
    for value in values {
        encode_amf0_value(value, out);
    }
}

/// Encodes one value as AMF0 (see the module docs for the type mapping).
pub fn encode_amf0_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Number(n) => put_amf0_number(*n, out),
        Value::Integer(i) => put_amf0_number(f64::from(*i), out),
        Value::Boolean(b) => out.extend([0x01, u8::from(*b)]),
        Value::String(s) if s.len() <= usize::from(u16::MAX) => {
            out.push(0x02);
            put_amf0_string(s, out);
        }
        Value::String(s) => {
            out.push(0x0C);
            put_amf0_long_string(s, out);
        }
        Value::Object(props) => {
            out.push(0x03);
            put_amf0_props(props, out);
        }
        Value::TypedObject { class, props } => {
            out.push(0x10);
            put_amf0_string(class, out);
            put_amf0_props(props, out);
        }
        Value::EcmaArray(props) => {
            out.push(0x08);
            out.extend(clamp_u32(props.len()).to_be_bytes());
            put_amf0_props(props, out);
        }
        Value::StrictArray(items) => {
            let count = clamp_u32(items.len());
            out.push(0x0A);
            out.extend(count.to_be_bytes());
            for item in items.iter().take(count as usize) {
                encode_amf0_value(item, out);
            }
        }
        Value::Null => out.push(0x05),
        Value::Undefined => out.push(0x06),
        Value::Date { millis, tz } => {
            out.push(0x0B);
            out.extend(millis.to_be_bytes());
            out.extend(tz.to_be_bytes());
        }
        Value::Xml(s) => {
            out.push(0x0F);
            put_amf0_long_string(s, out);
        }
        Value::ByteArray(_) => {
            out.push(0x11);
            encode_amf3_value(value, out);
        }
        Value::Unsupported => out.push(0x0D),
    }
}

fn put_amf0_number(n: f64, out: &mut Vec<u8>) {
    out.push(0x00);
    out.extend(n.to_be_bytes());
}

/// UTF-8 with a u16 length, cut to fit.
fn put_amf0_string(s: &str, out: &mut Vec<u8>) {
    let s = clip(s, usize::from(u16::MAX));
    out.extend((s.len() as u16).to_be_bytes());
    out.extend(s.as_bytes());
}

/// UTF-8-long with a u32 length, cut to fit.
fn put_amf0_long_string(s: &str, out: &mut Vec<u8>) {
    let s = clip(s, u32::MAX as usize);
    out.extend(clamp_u32(s.len()).to_be_bytes());
    out.extend(s.as_bytes());
}

/// Members, then the empty name and the object-end marker.
fn put_amf0_props(props: &[(String, Value)], out: &mut Vec<u8>) {
    for (name, value) in props {
        put_amf0_string(name, out);
        encode_amf0_value(value, out);
    }
    out.extend([0x00, 0x00, OBJECT_END]);
}

/// Longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Largest length or count an AMF3 U29 header can carry next to its flag bit.
const AMF3_MAX_LEN: usize = (1 << 28) - 1;

/// Largest and smallest values of an AMF3 integer (AMF3 §3.6).
const AMF3_INT_RANGE: std::ops::RangeInclusive<i32> = -(1 << 28)..=(1 << 28) - 1;

/// Encodes one value as AMF3, without reference compression (see the module docs).
pub fn encode_amf3_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Undefined | Value::Unsupported => out.push(0x00),
        Value::Null => out.push(0x01),
        Value::Boolean(b) => out.push(if *b { 0x03 } else { 0x02 }),
        Value::Integer(i) if AMF3_INT_RANGE.contains(i) => {
            out.push(0x04);
            put_u29(*i as u32, out);
        }
        Value::Integer(i) => put_amf3_double(f64::from(*i), out),
        Value::Number(n) => put_amf3_double(*n, out),
        Value::String(s) => {
            out.push(0x06);
            put_amf3_string(s, out);
        }
        Value::Xml(s) => {
            out.push(0x07);
            put_amf3_string(s, out);
        }
        Value::Date { millis, .. } => {
            out.extend([0x08, 0x01]);
            out.extend(millis.to_be_bytes());
        }
        Value::StrictArray(items) => {
            let items = items
                .get(..items.len().min(AMF3_MAX_LEN))
                .unwrap_or_default();
            out.push(0x09);
            put_u29_inline(items.len(), out);
            out.push(0x01); // no associative members
            for item in items {
                encode_amf3_value(item, out);
            }
        }
        Value::EcmaArray(props) => {
            out.extend([0x09, 0x01]); // empty dense part
            put_amf3_members(props, out);
        }
        Value::Object(props) => put_amf3_object("", props, out),
        Value::TypedObject { class, props } => put_amf3_object(class, props, out),
        Value::ByteArray(bytes) => {
            let bytes = bytes
                .get(..bytes.len().min(AMF3_MAX_LEN))
                .unwrap_or_default();
            out.push(0x0C);
            put_u29_inline(bytes.len(), out);
            out.extend(bytes);
        }
    }
}

fn put_amf3_double(n: f64, out: &mut Vec<u8>) {
    out.push(0x05);
    out.extend(n.to_be_bytes());
}

/// Inline UTF-8-vr, cut to fit.
fn put_amf3_string(s: &str, out: &mut Vec<u8>) {
    let s = clip(s, AMF3_MAX_LEN);
    put_u29_inline(s.len(), out);
    out.extend(s.as_bytes());
}

/// Object with inline traits: dynamic, no sealed members (header 0b1011), the class name,
/// then the members.
fn put_amf3_object(class: &str, props: &[(String, Value)], out: &mut Vec<u8>) {
    out.extend([0x0A, 0x0B]);
    put_amf3_string(class, out);
    put_amf3_members(props, out);
}

/// Dynamic members up to the empty name; members named "" cannot be represented.
fn put_amf3_members(props: &[(String, Value)], out: &mut Vec<u8>) {
    for (name, value) in props.iter().filter(|(name, _)| !name.is_empty()) {
        put_amf3_string(name, out);
        encode_amf3_value(value, out);
    }
    out.push(0x01);
}

/// U29 header of an inline value: `len << 1 | 1`; `len` must not exceed [`AMF3_MAX_LEN`].
fn put_u29_inline(len: usize, out: &mut Vec<u8>) {
    put_u29(((len.min(AMF3_MAX_LEN) as u32) << 1) | 1, out);
}

/// Variable-length U29 (AMF3 §1.3.1); bits above 29 are dropped.
fn put_u29(n: u32, out: &mut Vec<u8>) {
    let n = n & 0x1FFF_FFFF;
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0x3FFF => out.extend([(n >> 7) as u8 | 0x80, n as u8 & 0x7F]),
        0x4000..=0x1F_FFFF => out.extend([
            (n >> 14) as u8 | 0x80,
            (n >> 7) as u8 | 0x80,
            n as u8 & 0x7F,
        ]),
        _ => out.extend([
            (n >> 22) as u8 | 0x80,
            (n >> 15) as u8 | 0x80,
            (n >> 8) as u8 | 0x80,
            n as u8,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amf0(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_amf0_value(value, &mut out);
        out
    }

    fn amf3(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_amf3_value(value, &mut out);
        out
    }

    /// Decodes exactly one AMF0 value filling `buf`.
    fn one0(buf: &[u8]) -> Value {
        let (value, used) = decode_amf0_value(buf).unwrap();
        assert_eq!(used, buf.len());
        value
    }

    /// Decodes exactly one AMF3 value filling `buf`.
    fn one3(buf: &[u8]) -> Value {
        let mut values = decode_amf3(buf).unwrap();
        assert_eq!(values.len(), 1);
        values.remove(0)
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    const FOO_BAR: &[u8] = b"\x03\x00\x03foo\x02\x00\x03bar\x00\x00\x09";

    // --- AMF0 vectors -----------------------------------------------------------------------

    #[test]
    fn amf0_object_vector() {
        let value = Value::object([("foo", s("bar"))]);
        assert_eq!(amf0(&value), FOO_BAR);
        assert_eq!(one0(FOO_BAR), value);
        assert_eq!(
            one0(FOO_BAR).get("foo").and_then(Value::as_str),
            Some("bar")
        );
    }

    #[test]
    fn amf0_number_and_scalars() {
        let one = [0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0];
        assert_eq!(amf0(&Value::Number(1.0)), one);
        assert_eq!(one0(&one), Value::Number(1.0));
        assert_eq!(amf0(&Value::Integer(1)), one);
        assert_eq!(
            one0(&[0x00, 0x3f, 0xf3, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]),
            Value::Number(1.2)
        );
        assert_eq!(one0(&[0x01, 0x01]), Value::Boolean(true));
        assert_eq!(one0(&[0x01, 0x00]), Value::Boolean(false));
        assert_eq!(amf0(&Value::Boolean(true)), [0x01, 0x01]);
        assert_eq!(one0(b"\x02\x00\x03foo"), s("foo"));
        assert_eq!(amf0(&s("foo")), b"\x02\x00\x03foo");
        assert_eq!(one0(&[0x05]), Value::Null);
        assert_eq!(one0(&[0x06]), Value::Undefined);
        assert_eq!(one0(&[0x0D]), Value::Unsupported);
        assert_eq!(amf0(&Value::Null), [0x05]);
        assert_eq!(amf0(&Value::Undefined), [0x06]);
        assert_eq!(amf0(&Value::Unsupported), [0x0D]);
    }

    #[test]
    fn amf0_connect_command_round_trip() {
        let command = [
            s("connect"),
            Value::Number(1.0),
            Value::object([
                ("app", s("live")),
                ("type", s("nonprivate")),
                ("flashVer", s("FMLE/3.0 (compatible; FMSc/1.0)")),
                ("tcUrl", s("rtmp://127.0.0.1:1935/live")),
            ]),
        ];
        let wire = cat(&[
            b"\x02\x00\x07connect",
            b"\x00\x3f\xf0\x00\x00\x00\x00\x00\x00",
            b"\x03",
            b"\x00\x03app\x02\x00\x04live",
            b"\x00\x04type\x02\x00\x0anonprivate",
            b"\x00\x08flashVer\x02\x00\x1fFMLE/3.0 (compatible; FMSc/1.0)",
            b"\x00\x05tcUrl\x02\x00\x1artmp://127.0.0.1:1935/live",
            b"\x00\x00\x09",
        ]);
        let mut out = Vec::new();
        encode_amf0(&command, &mut out);
        assert_eq!(out, wire);
        let decoded = decode_amf0(&wire).unwrap();
        assert_eq!(decoded, command);
        assert_eq!(decoded[0].as_str(), Some("connect"));
        assert_eq!(decoded[1].as_f64(), Some(1.0));
        let app = decoded[2].get("app").and_then(Value::as_str);
        assert_eq!(app, Some("live"));
    }

    #[test]
    fn amf0_ecma_array() {
        // The count (1) is a hint only; members run to the object-end marker.
        let wire = b"\x08\x00\x00\x00\x01\x00\x03foo\x02\x00\x03bar\x00\x00\x09";
        let value = Value::EcmaArray(vec![("foo".into(), s("bar"))]);
        assert_eq!(one0(wire), value);
        assert_eq!(amf0(&value), wire);
        let lying_count = b"\x08\xff\xff\xff\xff\x00\x01a\x05\x00\x01b\x05\x00\x00\x09";
        let expected = vec![("a".into(), Value::Null), ("b".into(), Value::Null)];
        assert_eq!(one0(lying_count), Value::EcmaArray(expected));
    }

    #[test]
    fn amf0_strict_array() {
        let wire = b"\x0a\x00\x00\x00\x03\x00\x40\x14\x00\x00\x00\x00\x00\x00\x02\x00\x03foo\x05";
        let value = Value::StrictArray(vec![Value::Number(5.0), s("foo"), Value::Null]);
        assert_eq!(one0(wire), value);
        assert_eq!(amf0(&value), wire);
        // A count far beyond the input is neither trusted nor preallocated.
        let lying = b"\x0a\xff\xff\xff\xff\x05";
        assert_eq!(decode_amf0(lying), Err(AmfError::Truncated));
    }

    #[test]
    fn amf0_date_long_string_xml() {
        let date = [0x0b, 0x40, 0x14, 0, 0, 0, 0, 0, 0, 0xff, 0xc4];
        let value = Value::Date {
            millis: 5.0,
            tz: -60,
        };
        assert_eq!(one0(&date), value);
        assert_eq!(amf0(&value), date);
        assert_eq!(one0(b"\x0c\x00\x00\x00\x03foo"), s("foo"));
        assert_eq!(one0(b"\x0f\x00\x00\x00\x03foo"), Value::Xml("foo".into()));
        assert_eq!(amf0(&Value::Xml("foo".into())), b"\x0f\x00\x00\x00\x03foo");
        // Strings over 65535 bytes are written as long strings.
        let long = "x".repeat(70_000);
        let wire = amf0(&s(&long));
        assert_eq!(&wire[..5], &[0x0c, 0x00, 0x01, 0x11, 0x70]);
        assert_eq!(one0(&wire), s(&long));
    }

    #[test]
    fn amf0_typed_object() {
        let wire = cat(&[
            b"\x10\x00\x0forg.amf.ASClass",
            b"\x00\x03baz\x05",
            b"\x00\x03foo\x02\x00\x03bar",
            b"\x00\x00\x09",
        ]);
        let value = Value::TypedObject {
            class: "org.amf.ASClass".into(),
            props: vec![("baz".into(), Value::Null), ("foo".into(), s("bar"))],
        };
        assert_eq!(one0(&wire), value);
        assert_eq!(amf0(&value), wire);
        assert_eq!(value.get("foo"), Some(&s("bar")));
    }

    #[test]
    fn amf0_empty_name_before_a_value_is_a_member() {
        let wire = b"\x03\x00\x00\x05\x00\x00\x09";
        assert_eq!(
            one0(wire),
            Value::Object(vec![(String::new(), Value::Null)])
        );
        assert_eq!(amf0(&one0(wire)), wire);
    }

    #[test]
    fn amf0_invalid_utf8_is_lossy() {
        assert_eq!(one0(b"\x02\x00\x02\xff\xfe"), s("\u{fffd}\u{fffd}"));
        let key = b"\x03\x00\x01\xff\x05\x00\x00\x09";
        assert_eq!(one0(key), Value::object([("\u{fffd}", Value::Null)]));
    }

    #[test]
    fn amf0_bad_markers() {
        assert_eq!(decode_amf0(&[0x04]), Err(AmfError::UnsupportedMarker(0x04)));
        assert_eq!(decode_amf0(&[0x0E]), Err(AmfError::UnsupportedMarker(0x0E)));
        assert_eq!(decode_amf0(&[0x09]), Err(AmfError::UnexpectedObjectEnd));
        assert_eq!(decode_amf0(&[0x12]), Err(AmfError::UnknownMarker(0x12)));
        assert_eq!(decode_amf0(&[0xFF]), Err(AmfError::UnknownMarker(0xFF)));
        assert_eq!(decode_amf0_value(&[]), Err(AmfError::Truncated));
        assert_eq!(decode_amf0(&[]), Ok(vec![]));
        // Object-end inside a strict array is out of place too.
        let in_array = b"\x0a\x00\x00\x00\x01\x09";
        assert_eq!(decode_amf0(in_array), Err(AmfError::UnexpectedObjectEnd));
    }

    #[test]
    fn amf0_value_reports_bytes_consumed() {
        let wire = cat(&[FOO_BAR, &[0x05]]);
        let (value, used) = decode_amf0_value(&wire).unwrap();
        assert_eq!(value, Value::object([("foo", s("bar"))]));
        assert_eq!(used, FOO_BAR.len());
    }

    // --- AMF0 references --------------------------------------------------------------------

    #[test]
    fn amf0_reference_clones_earlier_value() {
        let obj_a = b"\x03\x00\x01a\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x00\x00\x09";
        let a = Value::object([("a", Value::Number(1.0))]);
        let top_level = cat(&[obj_a, b"\x07\x00\x00"]);
        assert_eq!(decode_amf0(&top_level).unwrap(), vec![a.clone(), a.clone()]);

        // {x: ref 0} then {y: ref 1, z: {}} then ref 2: nested replays must not shift indices.
        let wire = cat(&[
            obj_a,
            b"\x03\x00\x01x\x07\x00\x00\x00\x00\x09",
            b"\x03\x00\x01y\x07\x00\x01\x00\x01z\x03\x00\x00\x09\x00\x00\x09",
            b"\x07\x00\x02",
            b"\x07\x00\x03",
        ]);
        let x = Value::object([("x", a.clone())]);
        let y = Value::object([("y", x.clone()), ("z", Value::object::<&str>([]))]);
        let values = decode_amf0(&wire).unwrap();
        assert_eq!(values, vec![a, x, y.clone(), y, Value::object::<&str>([])]);
    }

    #[test]
    fn amf0_reference_counts_arrays_and_typed_objects() {
        let wire = cat(&[
            b"\x0a\x00\x00\x00\x00",
            b"\x08\x00\x00\x00\x00\x00\x00\x09",
            b"\x10\x00\x01T\x00\x00\x09",
            b"\x07\x00\x02\x07\x00\x01\x07\x00\x00",
        ]);
        let typed = Value::TypedObject {
            class: "T".into(),
            props: vec![],
        };
        let values = decode_amf0(&wire).unwrap();
        assert_eq!(values[3], typed);
        assert_eq!(values[4], Value::EcmaArray(vec![]));
        assert_eq!(values[5], Value::StrictArray(vec![]));
    }

    #[test]
    fn amf0_bad_references() {
        // livego's commented-out test: an object referring to itself is a cycle.
        let cycle = b"\x03\x00\x03foo\x07\x00\x00\x00\x00\x09";
        assert_eq!(decode_amf0(cycle), Err(AmfError::BadReference));
        assert_eq!(decode_amf0(b"\x07\x00\x00"), Err(AmfError::BadReference));
        let beyond = cat(&[FOO_BAR, b"\x07\x00\x01"]);
        assert_eq!(decode_amf0(&beyond), Err(AmfError::BadReference));
        assert_eq!(decode_amf0(b"\x07\x00"), Err(AmfError::Truncated));
    }

    #[test]
    fn amf0_reference_bomb_hits_expansion_limit() {
        // obj_k = {a: obj_(k-1), b: obj_(k-1)} by reference: 2^k nodes from ~20 bytes each.
        let mut wire = b"\x03\x00\x00\x09".to_vec();
        for k in 1u8..40 {
            let prev = k - 1;
            wire.extend(b"\x03\x00\x01a\x07\x00");
            wire.push(prev);
            wire.extend(b"\x00\x01b\x07\x00");
            wire.push(prev);
            wire.extend(b"\x00\x00\x09");
        }
        assert_eq!(decode_amf0(&wire), Err(AmfError::ExpansionLimit));
    }

    // --- AMF0 avmplus switch ----------------------------------------------------------------

    #[test]
    fn amf0_avmplus_switches_for_one_value() {
        let wire = cat(&[b"\x11\x04\x05", b"\x11\x06\x07foo", b"\x02\x00\x01x"]);
        let values = decode_amf0(&wire).unwrap();
        assert_eq!(values, vec![Value::Integer(5), s("foo"), s("x")]);
        // Inside an AMF0 object, and each switch gets fresh AMF3 tables.
        let nested = b"\x03\x00\x01a\x11\x06\x07foo\x00\x01b\x11\x06\x00\x00\x00\x09";
        assert_eq!(decode_amf0(nested), Err(AmfError::BadReference));
        let nested = b"\x03\x00\x01a\x11\x06\x07foo\x00\x01b\x11\x0a\x0b\x01\x01\x00\x00\x09";
        let expected = Value::object([("a", s("foo")), ("b", Value::object::<&str>([]))]);
        assert_eq!(one0(nested), expected);
    }

    #[test]
    fn amf0_byte_array_goes_through_avmplus() {
        let value = Value::ByteArray(vec![1, 2, 3]);
        assert_eq!(amf0(&value), [0x11, 0x0C, 0x07, 1, 2, 3]);
        assert_eq!(one0(&amf0(&value)), value);
    }

    // --- AMF3 vectors -----------------------------------------------------------------------

    /// livego's U29 table plus the 4-byte maximum.
    const U29_CASES: &[(u32, &[u8])] = &[
        (0, &[0x00]),
        (1, &[0x01]),
        (127, &[0x7F]),
        (128, &[0x81, 0x00]),
        (255, &[0x81, 0x7F]),
        (256, &[0x82, 0x00]),
        (0x3FFF, &[0xFF, 0x7F]),
        (0x4000, &[0x81, 0x80, 0x00]),
        (0x7FFF, &[0x81, 0xFF, 0x7F]),
        (0x8000, &[0x82, 0x80, 0x00]),
        (0x1FFFFF, &[0xFF, 0xFF, 0x7F]),
        (0x200000, &[0x80, 0xC0, 0x80, 0x00]),
        (0x3FFFFF, &[0x80, 0xFF, 0xFF, 0xFF]),
        (0x400000, &[0x81, 0x80, 0x80, 0x00]),
        (0x0FFFFFFF, &[0xBF, 0xFF, 0xFF, 0xFF]),
        (0x1FFFFFFF, &[0xFF, 0xFF, 0xFF, 0xFF]),
    ];

    #[test]
    fn u29_vectors() {
        for &(n, bytes) in U29_CASES {
            let mut dec = Decoder::new(bytes);
            assert_eq!(dec.u29(), Ok(n), "{bytes:02x?}");
            assert_eq!(dec.pos, bytes.len());
            let mut out = Vec::new();
            put_u29(n, &mut out);
            assert_eq!(out, bytes, "{n:#x}");
        }
    }

    #[test]
    fn amf3_integers_are_sign_extended() {
        assert_eq!(one3(&[0x04, 0x00]), Value::Integer(0));
        assert_eq!(one3(&[0x04, 0x7F]), Value::Integer(127));
        assert_eq!(one3(&[0x04, 0x81, 0x00]), Value::Integer(128));
        assert_eq!(one3(&[0x04, 0xFF, 0xFF, 0x7F]), Value::Integer(2_097_151));
        assert_eq!(one3(&[0x04, 0xFF, 0xFF, 0xFF, 0xFF]), Value::Integer(-1));
        assert_eq!(
            one3(&[0x04, 0xC0, 0x80, 0x80, 0x00]),
            Value::Integer(-(1 << 28))
        );
        assert_eq!(
            one3(&[0x04, 0xBF, 0xFF, 0xFF, 0xFF]),
            Value::Integer((1 << 28) - 1)
        );
        assert_eq!(amf3(&Value::Integer(-1)), [0x04, 0xFF, 0xFF, 0xFF, 0xFF]);
        // Outside 29 bits an integer travels as a double.
        let big = amf3(&Value::Integer(1 << 28));
        assert_eq!(big[0], 0x05);
        assert_eq!(one3(&big), Value::Number(f64::from(1 << 28)));
    }

    #[test]
    fn amf3_scalars() {
        assert_eq!(
            decode_amf3(&[0x00, 0x01, 0x02, 0x03]).unwrap(),
            [
                Value::Undefined,
                Value::Null,
                Value::Boolean(false),
                Value::Boolean(true)
            ]
        );
        let double = [0x05, 0x3f, 0xf3, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33];
        assert_eq!(one3(&double), Value::Number(1.2));
        assert_eq!(amf3(&Value::Number(1.2)), double);
        assert_eq!(one3(b"\x06\x07foo"), s("foo"));
        assert_eq!(amf3(&s("foo")), b"\x06\x07foo");
        assert_eq!(one3(b"\x06\x01"), s(""));
        assert_eq!(one3(b"\x06\x05\xff\xfe"), s("\u{fffd}\u{fffd}"));
        assert_eq!(one3(b"\x0b\x09<a/>"), Value::Xml("<a/>".into()));
        assert_eq!(one3(b"\x07\x09<a/>"), Value::Xml("<a/>".into()));
        assert_eq!(amf3(&Value::Xml("<a/>".into())), b"\x07\x09<a/>");
    }

    #[test]
    fn amf3_date_and_byte_array() {
        let date = [0x08, 0x01, 0x42, 0x6D, 0x1A, 0x94, 0xA2, 0x00, 0x00, 0x00];
        let value = Value::Date {
            millis: 1e12,
            tz: 0,
        };
        assert_eq!(one3(&date), value);
        assert_eq!(amf3(&value), date);
        let bytes = [0x0C, 0x07, 0xAA, 0xBB, 0xCC];
        assert_eq!(one3(&bytes), Value::ByteArray(vec![0xAA, 0xBB, 0xCC]));
        assert_eq!(amf3(&Value::ByteArray(vec![0xAA, 0xBB, 0xCC])), bytes);
        assert_eq!(decode_amf3(&[0x0C, 0x09, 0xAA]), Err(AmfError::Truncated));
    }

    #[test]
    fn amf3_string_references() {
        let wire = b"\x06\x07foo\x06\x07bar\x06\x00\x06\x02\x06\x01";
        let values = decode_amf3(wire).unwrap();
        assert_eq!(values, [s("foo"), s("bar"), s("foo"), s("bar"), s("")]);
        // The empty string never enters the table, so index 1 does not exist here.
        assert_eq!(
            decode_amf3(b"\x06\x01\x06\x07foo\x06\x02"),
            Err(AmfError::BadReference)
        );
    }

    #[test]
    fn amf3_sealed_object_livego_vector() {
        let wire = b"\x0a\x23\x1forg.amf.ASClass\x07baz\x07foo\x01\x06\x07bar";
        let value = Value::TypedObject {
            class: "org.amf.ASClass".into(),
            props: vec![("baz".into(), Value::Null), ("foo".into(), s("bar"))],
        };
        assert_eq!(one3(wire), value);
    }

    /// An array of 8: a sealed typed object, one reusing its traits (and a string by
    /// reference), an object reference, a dynamic object, a date, bytes, XML, `Vector.<int>`.
    const AMF3_BLOB: &[u8] = b"\x09\x11\x01\
        \x0a\x13\x07Foo\x03a\x06\x07bar\
        \x0a\x01\x06\x04\
        \x0a\x02\
        \x0a\x0b\x01\x02\x04\x7f\x01\
        \x08\x01\x42\x6d\x1a\x94\xa2\x00\x00\x00\
        \x0c\x03\xaa\
        \x0b\x09<a/>\
        \x0d\x05\x00\x00\x00\x00\x01\xff\xff\xff\xff";

    fn amf3_blob_value() -> Value {
        let foo = Value::TypedObject {
            class: "Foo".into(),
            props: vec![("a".into(), s("bar"))],
        };
        Value::StrictArray(vec![
            foo.clone(),
            foo.clone(),
            foo,
            Value::object([("a", Value::Integer(127))]),
            Value::Date {
                millis: 1e12,
                tz: 0,
            },
            Value::ByteArray(vec![0xAA]),
            Value::Xml("<a/>".into()),
            Value::StrictArray(vec![Value::Integer(1), Value::Integer(-1)]),
        ])
    }

    #[test]
    fn amf3_traits_and_object_references() {
        assert_eq!(one3(AMF3_BLOB), amf3_blob_value());
        // Through the AMF0 avmplus switch too.
        assert_eq!(one0(&cat(&[&[0x11], AMF3_BLOB])), amf3_blob_value());
    }

    #[test]
    fn amf3_bad_references() {
        // Object index 0 is the array being decoded: a cycle.
        assert_eq!(
            decode_amf3(b"\x09\x03\x01\x09\x00"),
            Err(AmfError::BadReference)
        );
        assert_eq!(decode_amf3(b"\x0a\x02"), Err(AmfError::BadReference));
        // Traits reference with no traits defined.
        assert_eq!(decode_amf3(b"\x0a\x01"), Err(AmfError::BadReference));
        assert_eq!(decode_amf3(b"\x06\x00"), Err(AmfError::BadReference));
        assert_eq!(decode_amf3(b"\x08\x00"), Err(AmfError::BadReference));
    }

    #[test]
    fn amf3_dynamic_object() {
        let wire = b"\x0a\x0b\x01\x03a\x06\x03x\x03b\x04\x01\x01";
        let value = Value::object([("a", s("x")), ("b", Value::Integer(1))]);
        assert_eq!(one3(wire), value);
        assert_eq!(amf3(&value), wire);
        // Sealed members followed by dynamic ones (header 0x1b: dynamic, one sealed member).
        let mixed = b"\x0a\x1b\x07Foo\x03a\x01\x03b\x01\x01";
        let expected = Value::TypedObject {
            class: "Foo".into(),
            props: vec![("a".into(), Value::Null), ("b".into(), Value::Null)],
        };
        assert_eq!(one3(mixed), expected);
        assert_eq!(one3(&amf3(&expected)), expected);
    }

    #[test]
    fn amf3_arrays() {
        let mut dense = b"\x09\x13\x01".to_vec();
        for digit in b'1'..=b'9' {
            dense.extend([0x06, 0x03, digit]);
        }
        let digits = (1..=9).map(|d| s(&d.to_string())).collect::<Vec<_>>();
        assert_eq!(one3(&dense), Value::StrictArray(digits.clone()));
        assert_eq!(amf3(&Value::StrictArray(digits)), dense);

        let assoc = b"\x09\x01\x03k\x04\x02\x01";
        let value = Value::EcmaArray(vec![("k".into(), Value::Integer(2))]);
        assert_eq!(one3(assoc), value);
        assert_eq!(amf3(&value), assoc);

        let mixed = b"\x09\x05\x03k\x04\x02\x01\x02\x03";
        let expected = Value::EcmaArray(vec![
            ("0".into(), Value::Boolean(false)),
            ("1".into(), Value::Boolean(true)),
            ("k".into(), Value::Integer(2)),
        ]);
        assert_eq!(one3(mixed), expected);
    }

    #[test]
    fn amf3_vectors_and_unsupported() {
        let uint = b"\x0e\x03\x00\xff\xff\xff\xff";
        let expected = vec![Value::Number(f64::from(u32::MAX))];
        assert_eq!(one3(uint), Value::StrictArray(expected));
        let double = b"\x0f\x03\x01\x3f\xf0\x00\x00\x00\x00\x00\x00";
        assert_eq!(one3(double), Value::StrictArray(vec![Value::Number(1.0)]));
        let objects = b"\x10\x05\x00\x07Foo\x01\x06\x03x";
        assert_eq!(one3(objects), Value::StrictArray(vec![Value::Null, s("x")]));
        // A count far beyond the input is rejected before allocating.
        assert_eq!(
            decode_amf3(b"\x0d\xbf\xff\xff\xff\x00"),
            Err(AmfError::Truncated)
        );
        assert_eq!(
            decode_amf3(b"\x11\x01"),
            Err(AmfError::UnsupportedMarker(0x11))
        );
        assert_eq!(decode_amf3(b"\x12"), Err(AmfError::UnknownMarker(0x12)));
        let external = b"\x0a\x07\x07Foo\x00";
        assert_eq!(
            decode_amf3(external),
            Err(AmfError::Externalizable("Foo".into()))
        );
    }

    #[test]
    fn amf3_reference_bombs_hit_expansion_limit() {
        // arr_k = [arr_(k-1), arr_(k-1)] by object reference.
        let mut wire = b"\x09\x01\x01".to_vec();
        for k in 1u8..40 {
            let reference = (k - 1) << 1;
            wire.extend([0x09, 0x05, 0x01, 0x09, reference, 0x09, reference]);
        }
        assert_eq!(decode_amf3(&wire), Err(AmfError::ExpansionLimit));
        // One 1000-byte string referenced 2000 times.
        let mut wire = vec![0x06, 0x8F, 0x51];
        wire.extend([b'x'; 1000]);
        for _ in 0..2000 {
            wire.extend([0x06, 0x00]);
        }
        assert_eq!(decode_amf3(&wire), Err(AmfError::ExpansionLimit));
    }

    // --- Depth ------------------------------------------------------------------------------

    fn nest(levels: usize) -> Value {
        (0..levels).fold(Value::Null, |inner, _| Value::object([("a", inner)]))
    }

    #[test]
    fn depth_limit_is_exact() {
        assert_eq!(one0(&amf0(&nest(MAX_DEPTH))), nest(MAX_DEPTH));
        assert_eq!(
            decode_amf0(&amf0(&nest(MAX_DEPTH + 1))),
            Err(AmfError::TooDeep)
        );
        assert_eq!(one3(&amf3(&nest(MAX_DEPTH))), nest(MAX_DEPTH));
        assert_eq!(
            decode_amf3(&amf3(&nest(MAX_DEPTH + 1))),
            Err(AmfError::TooDeep)
        );
    }

    #[test]
    fn ten_thousand_deep_nesting_fails_cleanly() {
        let objects = b"\x03\x00\x01a".repeat(10_000);
        assert_eq!(decode_amf0(&objects), Err(AmfError::TooDeep));
        let strict_arrays = b"\x0a\x00\x00\x00\x01".repeat(10_000);
        assert_eq!(decode_amf0(&strict_arrays), Err(AmfError::TooDeep));
        let arrays = b"\x09\x03\x01".repeat(10_000);
        assert_eq!(decode_amf3(&arrays), Err(AmfError::TooDeep));
        assert_eq!(
            decode_amf0(&cat(&[&[0x11], &arrays])),
            Err(AmfError::TooDeep)
        );
        let amf3_objects = b"\x0a\x0b\x01\x03a".repeat(10_000);
        assert_eq!(decode_amf3(&amf3_objects), Err(AmfError::TooDeep));
    }

    #[test]
    fn references_cannot_exceed_depth() {
        // 40 levels, referenced from inside 40 more levels of nesting.
        let deep = amf0(&nest(40));
        let mut wire = deep.clone();
        wire.extend(b"\x03\x00\x01a".repeat(40));
        wire.extend(b"\x07\x00\x00");
        assert_eq!(decode_amf0(&wire), Err(AmfError::TooDeep));
    }

    // --- Robustness -------------------------------------------------------------------------

    fn kitchen_sink() -> Value {
        Value::object([
            ("n", Value::Number(1.5)),
            ("b", Value::Boolean(true)),
            ("s", s("str")),
            ("null", Value::Null),
            ("undefined", Value::Undefined),
            (
                "date",
                Value::Date {
                    millis: 1e12,
                    tz: 0,
                },
            ),
            ("xml", Value::Xml("<a/>".into())),
            ("ecma", Value::EcmaArray(vec![("k".into(), s("v"))])),
            (
                "arr",
                Value::StrictArray(vec![Value::Number(1.0), s("x"), Value::object::<&str>([])]),
            ),
            (
                "typed",
                Value::TypedObject {
                    class: "T".into(),
                    props: vec![("p".into(), Value::Null)],
                },
            ),
            ("bytes", Value::ByteArray(vec![1, 2, 3])),
            ("unsupported", Value::Unsupported),
            ("empty", s("")),
        ])
    }

    #[test]
    fn round_trips() {
        let sink = kitchen_sink();
        assert_eq!(one0(&amf0(&sink)), sink);
        let values = [sink, s("é"), Value::Number(-0.5), Value::Integer(-5)];
        for value in &values[..3] {
            assert_eq!(one0(&amf0(value)), *value);
        }
        // AMF3 loses only what it cannot say: Unsupported and AMF0 date time zones.
        let amf3_sink = Value::object([
            ("n", Value::Number(1.5)),
            ("i", Value::Integer(-5)),
            ("s", s("é")),
            ("ecma", Value::EcmaArray(vec![("k".into(), s("v"))])),
            (
                "arr",
                Value::StrictArray(vec![Value::Null, Value::Undefined]),
            ),
            (
                "typed",
                Value::TypedObject {
                    class: "T".into(),
                    props: vec![],
                },
            ),
            ("bytes", Value::ByteArray(vec![9])),
            ("xml", Value::Xml("<x/>".into())),
            (
                "date",
                Value::Date {
                    millis: -1.0,
                    tz: 0,
                },
            ),
        ]);
        assert_eq!(one3(&amf3(&amf3_sink)), amf3_sink);
        assert_eq!(one3(&amf3(&Value::Unsupported)), Value::Undefined);
        let dated = Value::Date {
            millis: 2.0,
            tz: 60,
        };
        assert_eq!(one3(&amf3(&dated)), Value::Date { millis: 2.0, tz: 0 });
        // Members named "" cannot be written in AMF3 and are skipped.
        let unnamed = Value::object([("", Value::Null), ("a", Value::Null)]);
        assert_eq!(one3(&amf3(&unnamed)), Value::object([("a", Value::Null)]));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let sink = amf0(&kitchen_sink());
        for cut in 0..sink.len() {
            assert!(
                decode_amf0_value(&sink[..cut]).is_err(),
                "AMF0 cut at {cut}"
            );
        }
        for cut in 1..AMF3_BLOB.len() {
            assert!(decode_amf3(&AMF3_BLOB[..cut]).is_err(), "AMF3 cut at {cut}");
        }
        let avmplus = cat(&[&[0x11], AMF3_BLOB]);
        for cut in 0..avmplus.len() {
            assert!(
                decode_amf0_value(&avmplus[..cut]).is_err(),
                "avmplus cut at {cut}"
            );
        }
    }

    /// Deterministic xorshift64 generator.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Mostly small bytes, so markers, lengths and U29 headers hit interesting cases.
        fn byte(&mut self) -> u8 {
            match self.below(4) {
                0 => self.below(256) as u8,
                _ => self.below(0x14) as u8,
            }
        }
    }

    fn decode_everything(buf: &[u8]) {
        let _ = decode_amf0(buf);
        let _ = decode_amf0_value(buf);
        let _ = decode_amf3(buf);
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..10_000 {
            let len = rng.below(64);
            let buf: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            decode_everything(&buf);
        }
    }

    #[test]
    fn mutated_encodings_never_panic() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let seeds = [
            amf0(&kitchen_sink()),
            AMF3_BLOB.to_vec(),
            cat(&[&[0x11], AMF3_BLOB]),
        ];
        for i in 0..10_000 {
            let mut buf = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(buf.len());
                buf[at] = rng.byte();
            }
            decode_everything(&buf);
        }
    }

    // --- Value helpers and errors ------------------------------------------------------------

    #[test]
    fn value_accessors() {
        assert_eq!(s("x").as_str(), Some("x"));
        assert_eq!(Value::Null.as_str(), None);
        assert_eq!(Value::Integer(3).as_f64(), Some(3.0));
        assert_eq!(Value::Number(2.5).as_f64(), Some(2.5));
        assert_eq!(s("1").as_f64(), None);
        assert_eq!(Value::Boolean(true).as_bool(), Some(true));
        assert_eq!(Value::Null.as_bool(), None);
        let ecma = Value::EcmaArray(vec![("k".into(), Value::Null)]);
        assert_eq!(ecma.get("k"), Some(&Value::Null));
        assert_eq!(ecma.get("missing"), None);
        assert_eq!(Value::StrictArray(vec![]).get("k"), None);
        assert_eq!(Value::from("a"), s("a"));
        assert_eq!(Value::from(1.0), Value::Number(1.0));
        assert_eq!(Value::from(false), Value::Boolean(false));
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            AmfError::UnknownMarker(0x12).to_string(),
            "unknown AMF type marker 0x12"
        );
        assert!(AmfError::TooDeep.to_string().contains("64"));
        let boxed: Box<dyn std::error::Error> = Box::new(AmfError::Truncated);
        assert!(!boxed.to_string().is_empty());
    }
}

/// Round trips on generated values: encode then decode gives the value back (for the values
/// each format represents one-to-one; see the module docs for the mapping).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn text(max: usize) -> impl Strategy<Value = String> {
        vec(any::<char>(), 0..max).prop_map(String::from_iter)
    }

    /// Member names: never empty (the empty name ends a member list in both formats).
    fn name() -> impl Strategy<Value = String> {
        vec(any::<char>(), 1..6).prop_map(String::from_iter)
    }

    fn members(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<(String, Value)>> {
        vec((name(), inner), 0..4)
    }

    fn finite() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("NaN is not equal to itself", |n| !n.is_nan())
    }

    fn amf0_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            finite().prop_map(Value::Number),
            any::<bool>().prop_map(Value::Boolean),
            text(12).prop_map(Value::String),
            text(12).prop_map(Value::Xml),
            (finite(), any::<i16>()).prop_map(|(millis, tz)| Value::Date { millis, tz }),
            vec(any::<u8>(), 0..16).prop_map(Value::ByteArray),
            Just(Value::Null),
            Just(Value::Undefined),
            Just(Value::Unsupported),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                members(inner.clone()).prop_map(Value::Object),
                members(inner.clone()).prop_map(Value::EcmaArray),
                vec(inner.clone(), 0..4).prop_map(Value::StrictArray),
                (name(), members(inner))
                    .prop_map(|(class, props)| Value::TypedObject { class, props }),
            ]
        })
    }

    fn amf3_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            finite().prop_map(Value::Number),
            AMF3_INT_RANGE.prop_map(Value::Integer),
            any::<bool>().prop_map(Value::Boolean),
            text(12).prop_map(Value::String),
            text(12).prop_map(Value::Xml),
            finite().prop_map(|millis| Value::Date { millis, tz: 0 }),
            vec(any::<u8>(), 0..16).prop_map(Value::ByteArray),
            Just(Value::Null),
            Just(Value::Undefined),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                members(inner.clone()).prop_map(Value::Object),
                // An empty associative part would come back as a dense (strict) array.
                vec((name(), inner.clone()), 1..4).prop_map(Value::EcmaArray),
                vec(inner.clone(), 0..4).prop_map(Value::StrictArray),
                (name(), members(inner))
                    .prop_map(|(class, props)| Value::TypedObject { class, props }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn amf0_encode_decode(values in vec(amf0_value(), 0..4)) {
            let mut bytes = Vec::new();
            encode_amf0(&values, &mut bytes);
            prop_assert_eq!(decode_amf0(&bytes).unwrap(), values);
        }

        #[test]
        fn amf3_encode_decode(values in vec(amf3_value(), 0..4)) {
            let mut bytes = Vec::new();
            values.iter().for_each(|v| encode_amf3_value(v, &mut bytes));
            prop_assert_eq!(decode_amf3(&bytes).unwrap(), values);
        }
    }
}
