//! The Rust side of "sclone", the binary structured-clone format that worker messages travel
//! in (docs/PROTOCOL.md, "Worker data"). The JavaScript codec (`extension/src/clone-codec.js`)
//! is the one that encodes and decodes real page and worker values; the broker only relays
//! the bytes. This module exists for the places where Rust must look inside:
//!
//! * [`encode_json`] turns a JSON value into sclone bytes, for clients that still send
//!   `worker_message` with JSON `data` (protocol version 1 without the `structured_clone`
//!   feature);
//! * [`decode`] checks bytes and builds a [`CloneValue`] tree (tests, diagnostics), and
//!   [`CloneValue::to_json`] renders it the way `JSON.stringify` would, for those same
//!   JSON-only clients and for the broker's event log.
//!
//! The decoder treats its input as hostile: lengths are checked against what is left before
//! anything is allocated, nesting is bounded by [`MAX_DEPTH`], back-references must point
//! backwards.

use serde_json::{Map as JsonMap, Number, Value};

/// The format version, the first byte of every encoded message.
pub const FORMAT_VERSION: u8 = 1;

/// Deepest nesting the JavaScript codec encodes or decodes.
pub const MAX_DEPTH: usize = 1000;

/// Deepest nesting [`decode`] follows. Lower than [`MAX_DEPTH`] because this decoder recurses
/// on the caller's stack (a broker task's, 2 MiB, and a debug build's frames are large); it
/// only serves JSON clients, tests and logs, never the worker itself.
pub const DECODE_MAX_DEPTH: usize = 128;

/// Wire tags (docs/PROTOCOL.md lists them with their payloads).
pub mod tag {
    pub const UNDEFINED: u8 = 0x00;
    pub const NULL: u8 = 0x01;
    pub const FALSE: u8 = 0x02;
    pub const TRUE: u8 = 0x03;
    pub const INT: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const BIGINT: u8 = 0x06;
    pub const UTF8: u8 = 0x07;
    pub const UTF16: u8 = 0x08;
    pub const HOLE: u8 = 0x09;
    pub const OBJECT: u8 = 0x10;
    pub const ARRAY: u8 = 0x11;
    pub const DATE: u8 = 0x13;
    pub const REGEXP: u8 = 0x14;
    pub const MAP: u8 = 0x15;
    pub const SET: u8 = 0x16;
    pub const ARRAY_BUFFER: u8 = 0x17;
    pub const VIEW: u8 = 0x18;
    pub const BOOLEAN_OBJECT: u8 = 0x19;
    pub const NUMBER_OBJECT: u8 = 0x1a;
    pub const STRING_OBJECT: u8 = 0x1b;
    pub const BIGINT_OBJECT: u8 = 0x1c;
    pub const ERROR: u8 = 0x1d;
    pub const BACKREF: u8 = 0x1f;
}

/// Typed-array and DataView kinds, in wire order.
pub const VIEW_KINDS: [&str; 13] = [
    "Int8Array",
    "Uint8Array",
    "Uint8ClampedArray",
    "Int16Array",
    "Uint16Array",
    "Int32Array",
    "Uint32Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
    "DataView",
    "Float16Array",
];

/// A decoded message. Objects are numbered in the order their tags appear; [`CloneValue::Ref`]
/// points back to one of them (shared or cyclic references).
#[derive(Debug, Clone, PartialEq)]
pub enum CloneValue {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    BigInt {
        negative: bool,
        magnitude_le: Vec<u8>,
    },
    /// UTF-16 strings with lone surrogates are rendered lossily here.
    String(String),
    Object(Vec<(String, CloneValue)>),
    /// `None` is a hole.
    Array(Vec<Option<CloneValue>>),
    Date(f64),
    RegExp {
        source: String,
        flags: String,
    },
    Map(Vec<(CloneValue, CloneValue)>),
    Set(Vec<CloneValue>),
    ArrayBuffer(Vec<u8>),
    View {
        kind: &'static str,
        byte_offset: u64,
        length: u64,
        buffer: Box<CloneValue>,
    },
    BooleanObject(bool),
    NumberObject(f64),
    StringObject(String),
    BigIntObject {
        negative: bool,
        magnitude_le: Vec<u8>,
    },
    Error {
        name: String,
        message: Option<String>,
        stack: Option<String>,
    },
    Ref(u64),
}

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable message at byte {at}: {what}")]
pub struct CloneError {
    pub at: usize,
    pub what: String,
}

/// Decodes a whole message.
pub fn decode(bytes: &[u8]) -> Result<CloneValue, CloneError> {
    let mut r = Reader {
        src: bytes,
        at: 0,
        objects: 0,
        depth: 0,
    };
    let version = r.byte()?;
    if version != FORMAT_VERSION {
        return Err(r.error(format!(
            "format version {version}; this side reads {FORMAT_VERSION}"
        )));
    }
    let value = r.value()?;
    if r.at != bytes.len() {
        return Err(r.error(format!("{} bytes left over", bytes.len() - r.at)));
    }
    Ok(value)
}

struct Reader<'a> {
    src: &'a [u8],
    at: usize,
    objects: u64,
    depth: usize,
}

impl Reader<'_> {
    fn error(&self, what: impl Into<String>) -> CloneError {
        CloneError {
            at: self.at,
            what: what.into(),
        }
    }

    fn byte(&mut self) -> Result<u8, CloneError> {
        let b = *self
            .src
            .get(self.at)
            .ok_or_else(|| self.error("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }

    fn varint(&mut self) -> Result<u64, CloneError> {
        let mut n: u64 = 0;
        for i in 0..8 {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(self.error("an over-long number"))
    }

    /// A length that must fit in what is left (each unit at least `unit` bytes).
    fn length(&mut self, unit: usize) -> Result<usize, CloneError> {
        let n = self.varint()?;
        let left = (self.src.len() - self.at) as u64;
        if n.saturating_mul(unit as u64) > left {
            return Err(self.error(format!("a length of {n} runs past the end")));
        }
        Ok(n as usize)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CloneError> {
        if n > self.src.len() - self.at {
            return Err(self.error("truncated"));
        }
        let s = &self.src[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn f64(&mut self) -> Result<f64, CloneError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, CloneError> {
        match self.byte()? {
            tag::UTF8 => {
                let n = self.length(1)?;
                let b = self.take(n)?;
                Ok(String::from_utf8_lossy(b).into_owned())
            }
            tag::UTF16 => {
                let n = self.length(2)?;
                let b = self.take(2 * n)?;
                let units: Vec<u16> = b
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                Ok(String::from_utf16_lossy(&units))
            }
            other => Err(self.error(format!("expected a string, found tag {other:#04x}"))),
        }
    }

    fn optional_string(&mut self) -> Result<Option<String>, CloneError> {
        if self.peek() == Some(tag::UNDEFINED) {
            self.at += 1;
            return Ok(None);
        }
        self.string().map(Some)
    }

    fn bigint(&mut self) -> Result<(bool, Vec<u8>), CloneError> {
        let negative = self.byte()? != 0;
        let n = self.length(1)?;
        Ok((negative, self.take(n)?.to_vec()))
    }

    fn next_object(&mut self) {
        self.objects += 1;
    }

    fn value(&mut self) -> Result<CloneValue, CloneError> {
        let t = self.byte()?;
        Ok(match t {
            tag::UNDEFINED => CloneValue::Undefined,
            tag::NULL => CloneValue::Null,
            tag::FALSE => CloneValue::Bool(false),
            tag::TRUE => CloneValue::Bool(true),
            tag::INT => {
                let z = self.varint()?;
                let n = if z % 2 == 0 {
                    (z / 2) as f64
                } else {
                    -(z.div_ceil(2) as f64)
                };
                CloneValue::Number(n)
            }
            tag::DOUBLE => CloneValue::Number(self.f64()?),
            tag::BIGINT => {
                let (negative, magnitude_le) = self.bigint()?;
                CloneValue::BigInt {
                    negative,
                    magnitude_le,
                }
            }
            tag::UTF8 | tag::UTF16 => {
                self.at -= 1;
                CloneValue::String(self.string()?)
            }
            tag::BACKREF => {
                let i = self.varint()?;
                if i >= self.objects {
                    return Err(self.error(format!("a reference to object {i}, not yet seen")));
                }
                CloneValue::Ref(i)
            }
            other => {
                self.depth += 1;
                if self.depth > DECODE_MAX_DEPTH {
                    return Err(self.error(format!(
                        "nested deeper than {DECODE_MAX_DEPTH} levels (the most this decoder follows)"
                    )));
                }
                let v = self.composite(other);
                self.depth -= 1;
                v?
            }
        })
    }

    fn composite(&mut self, t: u8) -> Result<CloneValue, CloneError> {
        self.next_object();
        Ok(match t {
            tag::OBJECT => {
                let n = self.length(2)?;
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.string()?;
                    fields.push((key, self.value()?));
                }
                CloneValue::Object(fields)
            }
            tag::ARRAY => {
                let n = self.length(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    if self.peek() == Some(tag::HOLE) {
                        self.at += 1;
                        items.push(None);
                    } else {
                        items.push(Some(self.value()?));
                    }
                }
                CloneValue::Array(items)
            }
            tag::DATE => CloneValue::Date(self.f64()?),
            tag::REGEXP => CloneValue::RegExp {
                source: self.string()?,
                flags: self.string()?,
            },
            tag::MAP => {
                let n = self.length(2)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.value()?;
                    entries.push((k, self.value()?));
                }
                CloneValue::Map(entries)
            }
            tag::SET => {
                let n = self.length(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value()?);
                }
                CloneValue::Set(items)
            }
            tag::ARRAY_BUFFER => {
                let n = self.length(1)?;
                CloneValue::ArrayBuffer(self.take(n)?.to_vec())
            }
            tag::VIEW => {
                let kind = self.byte()?;
                let kind = *VIEW_KINDS
                    .get(usize::from(kind))
                    .ok_or_else(|| self.error(format!("unknown view kind {kind}")))?;
                let byte_offset = self.varint()?;
                let length = self.varint()?;
                let buffer = self.value()?;
                if !matches!(buffer, CloneValue::ArrayBuffer(_) | CloneValue::Ref(_)) {
                    return Err(self.error("a view without an ArrayBuffer"));
                }
                CloneValue::View {
                    kind,
                    byte_offset,
                    length,
                    buffer: Box::new(buffer),
                }
            }
            tag::BOOLEAN_OBJECT => CloneValue::BooleanObject(self.byte()? != 0),
            tag::NUMBER_OBJECT => CloneValue::NumberObject(self.f64()?),
            tag::STRING_OBJECT => CloneValue::StringObject(self.string()?),
            tag::BIGINT_OBJECT => {
                let (negative, magnitude_le) = self.bigint()?;
                CloneValue::BigIntObject {
                    negative,
                    magnitude_le,
                }
            }
            tag::ERROR => CloneValue::Error {
                name: self.string()?,
                message: self.optional_string()?,
                stack: self.optional_string()?,
            },
            other => {
                self.at -= 1;
                return Err(self.error(format!("unknown tag {other:#04x}")));
            }
        })
    }
}

// --- Encoding JSON ---------------------------------------------------------------------------

/// Encodes a JSON value as the message `JSON.parse` of its text would give.
pub fn encode_json(value: &Value) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    write_json(&mut out, value);
    out
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(tag::UTF8);
    write_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    let small = n
        .as_i64()
        .filter(|i| i32::try_from(*i).is_ok())
        .map(|i| i as i32);
    match small {
        Some(i) => {
            out.push(tag::INT);
            let z = if i >= 0 {
                u64::from(i as u32) * 2
            } else {
                u64::from(i.unsigned_abs()) * 2 - 1
            };
            write_varint(out, z);
        }
        None => {
            out.push(tag::DOUBLE);
            out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
        }
    }
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(tag::NULL),
        Value::Bool(b) => out.push(if *b { tag::TRUE } else { tag::FALSE }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(tag::ARRAY);
            write_varint(out, items.len() as u64);
            for item in items {
                write_json(out, item);
            }
        }
        Value::Object(fields) => {
            out.push(tag::OBJECT);
            write_varint(out, fields.len() as u64);
            for (k, v) in fields {
                write_str(out, k);
                write_json(out, v);
            }
        }
    }
}

// --- Rendering as JSON -----------------------------------------------------------------------

/// Why a message has no JSON rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the message cannot be rendered as JSON: {0}")]
pub struct NotJson(pub String);

impl CloneValue {
    /// The value `JSON.parse(JSON.stringify(value))` would give: `undefined` and NaN become
    /// `null` (or vanish from objects), Dates become ISO-like strings, Maps, Sets and
    /// ArrayBuffers become `{}`. BigInts, cycles and shared references have no rendering, as
    /// `JSON.stringify` throws on them; typed arrays are refused too (their element rendering
    /// needs the structured-clone feature, not JSON).
    pub fn to_json(&self) -> Result<Value, NotJson> {
        Ok(self.json_inner()?.unwrap_or(Value::Null))
    }

    /// `None` where `JSON.stringify` leaves a property out.
    fn json_inner(&self) -> Result<Option<Value>, NotJson> {
        Ok(Some(match self {
            CloneValue::Undefined => return Ok(None),
            CloneValue::Null => Value::Null,
            CloneValue::Bool(b) | CloneValue::BooleanObject(b) => Value::Bool(*b),
            CloneValue::Number(n) | CloneValue::NumberObject(n) => json_number(*n),
            CloneValue::String(s) | CloneValue::StringObject(s) => Value::String(s.clone()),
            CloneValue::BigInt { .. } | CloneValue::BigIntObject { .. } => {
                return Err(NotJson("a BigInt".into()));
            }
            CloneValue::Object(fields) => {
                let mut map = JsonMap::new();
                for (k, v) in fields {
                    if let Some(v) = v.json_inner()? {
                        map.insert(k.clone(), v);
                    }
                }
                Value::Object(map)
            }
            CloneValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| match i {
                        Some(v) => v.json_inner().map(|v| v.unwrap_or(Value::Null)),
                        None => Ok(Value::Null),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            CloneValue::Date(ms) => {
                if ms.is_finite() && ms.abs() <= 8.64e15 {
                    Value::String(iso_date(*ms))
                } else {
                    Value::Null
                }
            }
            CloneValue::RegExp { .. }
            | CloneValue::Map(_)
            | CloneValue::Set(_)
            | CloneValue::ArrayBuffer(_)
            | CloneValue::Error { .. } => Value::Object(JsonMap::new()),
            CloneValue::View { kind, .. } => return Err(NotJson(format!("a {kind}"))),
            CloneValue::Ref(_) => return Err(NotJson("a shared or cyclic reference".into())),
        }))
    }
}

/// `Date.prototype.toISOString` for a valid time value (years 0-9999 as four digits, others
/// with a sign and six digits).
fn iso_date(ms: f64) -> String {
    let ms = ms as i64;
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{}{:06}", if year < 0 { '-' } else { '+' }, year.abs())
    };
    format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

fn json_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        // -0 renders as 0, as JSON.stringify does.
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// For logs and events: the JSON rendering, or a short description of why there is none.
pub fn describe(bytes: &[u8]) -> Value {
    match decode(bytes) {
        Ok(v) => v
            .to_json()
            .unwrap_or_else(|e| Value::String(format!("<{e}>"))),
        Err(e) => Value::String(format!("<{e}>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_the_format() {
        let v =
            json!({"a": [1, -2, 3.5, 2147483648u64, -2147483649i64, null, true, "héllo"], "b": {}});
        let bytes = encode_json(&v);
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode(&bytes).unwrap().to_json().unwrap(), v);
    }

    #[test]
    fn known_bytes_decode() {
        // {x: undefined, y: -0, z: [hole, 1n]} as clone-codec.js writes it.
        let bytes = [
            1, 0x10, 3, 0x07, 1, b'x', 0x00, 0x07, 1, b'y', 0x05, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x07,
            1, b'z', 0x11, 2, 0x09, 0x06, 0, 1, 1,
        ];
        let v = decode(&bytes).unwrap();
        let CloneValue::Object(fields) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(fields[0], ("x".into(), CloneValue::Undefined));
        assert!(matches!(fields[1].1, CloneValue::Number(n) if n == 0.0 && n.is_sign_negative()));
        assert_eq!(
            fields[2].1,
            CloneValue::Array(vec![
                None,
                Some(CloneValue::BigInt {
                    negative: false,
                    magnitude_le: vec![1]
                })
            ])
        );
        assert!(v.to_json().is_err(), "BigInt has no JSON rendering");
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            &[],
            &[2, 0x01],
            &[1],
            &[1, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[
                1, 0x11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            &[1, 0x1f, 0],
            &[1, 0x18, 99, 0, 0, 0x17, 0],
            &[1, 0x07, 5, b'a'],
            &[1, 0x01, 0x01],
            &[1, 0x42],
        ];
        for bytes in cases {
            assert!(decode(bytes).is_err(), "{bytes:?} decoded");
        }
        let mut deep = vec![1u8];
        deep.extend(std::iter::repeat_n([0x11u8, 1], DECODE_MAX_DEPTH + 1).flatten());
        deep.push(0x01);
        assert!(decode(&deep).unwrap_err().what.contains("nested"));
        // Far deeper input fails the same way, without exhausting the stack.
        let mut deeper = vec![1u8];
        deeper.extend(std::iter::repeat_n([0x11u8, 1], 100_000).flatten());
        deeper.push(0x01);
        assert!(decode(&deeper).unwrap_err().what.contains("nested"));
    }

    #[test]
    fn dates_render_as_to_iso_string_does() {
        assert_eq!(iso_date(5.0), "1970-01-01T00:00:00.005Z");
        assert_eq!(iso_date(1_796_000_000_000.0), "2026-11-30T00:53:20.000Z");
        assert_eq!(iso_date(-1.0), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn cycles_are_references() {
        // a = {}; a.self = a
        let bytes = [1, 0x10, 1, 0x07, 4, b's', b'e', b'l', b'f', 0x1f, 0];
        let v = decode(&bytes).unwrap();
        assert_eq!(
            v,
            CloneValue::Object(vec![("self".into(), CloneValue::Ref(0))])
        );
        assert!(v.to_json().is_err());
    }
}
