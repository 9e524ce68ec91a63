//! JSON ⇄ postcard, driven by a [`Type`]: how the CLI turns command-line
//! arguments into a call's bytes and a result's bytes back into JSON.
//!
//! The rules are postcard's (v1 wire format), so the bytes equal what
//! `postcard::to_allocvec` gives for the Rust value and a call submitted
//! here gets the same key as one from `wask::Client`:
//!
//! - `u8`/`i8`: one byte (`i8` in two's complement, not zigzag);
//! - other unsigned integers: LEB128 varint; other signed ones: zigzag, then
//!   varint; `usize`/`isize` as 64-bit values on the wire;
//! - `f32`/`f64`: little-endian IEEE 754; `bool`: one byte, 0 or 1;
//! - `char` and `String`: varint byte length, then UTF-8;
//! - `Option`: byte 0 (`None`) or 1 then the value; `Vec`: varint length,
//!   then the items; tuples and arrays: the items back to back; `()`: nothing.
//!
//! JSON spellings: integers are numbers, except that `i128`/`u128` values
//! beyond 64 bits are decimal strings (serde_json's numbers stop at 64 bits);
//! non-finite floats are the strings `"NaN"`, `"inf"` and `"-inf"`; `()` and
//! `None` are `null`; tuples, arrays and `Vec`s are JSON arrays. A nested
//! `Some(None)` cannot be written and reads back as `null`.
//!
//! Decoding is strict: every byte must be consumed.

use crate::types::{Int, Type};
use serde_json::Value;
use std::fmt;

/// Why a value could not be converted, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    /// Indices from the outermost value to the one at fault (array items,
    /// tuple fields, `Vec` items).
    pub path: Vec<usize>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            f.write_str("at ")?;
            for i in &self.path {
                write!(f, "[{i}]")?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for CodecError {}

/// What went wrong converting one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The JSON value has the wrong shape for the type.
    #[error("expected {expected} for {ty}, found {found}")]
    Expected {
        /// The type.
        ty: String,
        /// What JSON it takes.
        expected: &'static str,
        /// The JSON given (shortened).
        found: String,
    },
    /// A number outside the type's range.
    #[error("{value} does not fit in {ty} ({range})")]
    OutOfRange {
        /// The type.
        ty: String,
        /// The value given.
        value: String,
        /// The values the type holds.
        range: String,
    },
    /// A tuple or array with the wrong number of items.
    #[error("{ty} takes {expected} items, found {found}")]
    WrongLength {
        /// The type.
        ty: String,
        /// Items it takes.
        expected: usize,
        /// Items given.
        found: usize,
    },
    /// The bytes end inside a value.
    #[error("the bytes end inside a {ty}")]
    Truncated {
        /// The type being read.
        ty: String,
    },
    /// Bytes are left after the value.
    #[error("{extra} bytes left over after the {ty}")]
    TrailingBytes {
        /// The type read.
        ty: String,
        /// How many bytes are left.
        extra: usize,
    },
    /// Bytes that no value of the type encodes to.
    #[error("invalid {ty}: {problem}")]
    Invalid {
        /// The type being read.
        ty: String,
        /// What is wrong.
        problem: String,
    },
}

impl CodecError {
    fn new(kind: ErrorKind) -> CodecError {
        CodecError {
            path: Vec::new(),
            kind,
        }
    }

    /// Puts `index` in front of the path, on the way out of a container.
    fn inside(mut self, index: usize) -> CodecError {
        self.path.insert(0, index);
        self
    }
}

type Result<T> = std::result::Result<T, CodecError>;

/// Appends the postcard encoding of `value`, read as `ty`, to `out`.
pub fn encode(ty: &Type, value: &Value, out: &mut Vec<u8>) -> Result<()> {
    let expected = |what: &'static str| {
        CodecError::new(ErrorKind::Expected {
            ty: ty.to_string(),
            expected: what,
            found: short(value),
        })
    };
    match ty {
        Type::Int(int) => encode_int(*int, value, out)?,
        Type::F32 => {
            let x = json_float(ty, value)?;
            let narrow = x as f32;
            if x.is_finite() && !narrow.is_finite() {
                return Err(CodecError::new(ErrorKind::OutOfRange {
                    ty: ty.to_string(),
                    value: short(value),
                    range: format!("±{:e}", f32::MAX),
                }));
            }
            out.extend_from_slice(&narrow.to_le_bytes());
        }
        Type::F64 => out.extend_from_slice(&json_float(ty, value)?.to_le_bytes()),
        Type::Bool => match value {
            Value::Bool(b) => out.push(u8::from(*b)),
            _ => return Err(expected("true or false")),
        },
        Type::Char => match value {
            Value::String(s) if s.chars().count() == 1 => put_str(s, out),
            _ => return Err(expected("a string of one character")),
        },
        Type::String => match value {
            Value::String(s) => put_str(s, out),
            _ => return Err(expected("a string")),
        },
        Type::Unit => match value {
            Value::Null => {}
            _ => return Err(expected("null")),
        },
        Type::Option(item) => match value {
            Value::Null => out.push(0),
            v => {
                out.push(1);
                encode(item, v, out)?;
            }
        },
        Type::Vec(item) => match value {
            Value::Array(items) => {
                put_varint(items.len() as u128, out);
                for (i, v) in items.iter().enumerate() {
                    encode(item, v, out).map_err(|e| e.inside(i))?;
                }
            }
            _ => return Err(expected("an array")),
        },
        Type::Tuple(types) => encode_fixed(ty, types.iter(), types.len(), value, out)?,
        Type::Array(item, n) => encode_fixed(ty, std::iter::repeat_n(&**item, *n), *n, value, out)?,
    }
    Ok(())
}

/// Tuples and arrays: a JSON array of exactly `n` items, back to back.
fn encode_fixed<'t>(
    ty: &Type,
    types: impl Iterator<Item = &'t Type>,
    n: usize,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<()> {
    let Value::Array(items) = value else {
        return Err(CodecError::new(ErrorKind::Expected {
            ty: ty.to_string(),
            expected: "an array",
            found: short(value),
        }));
    };
    if items.len() != n {
        return Err(CodecError::new(ErrorKind::WrongLength {
            ty: ty.to_string(),
            expected: n,
            found: items.len(),
        }));
    }
    for (i, (t, v)) in types.zip(items).enumerate() {
        encode(t, v, out).map_err(|e| e.inside(i))?;
    }
    Ok(())
}

/// An integer value of any supported width: negative ones as `i128`,
/// the others as `u128` (so all of `u128` fits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wide {
    Neg(i128),
    Pos(u128),
}

impl fmt::Display for Wide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wide::Neg(i) => write!(f, "{i}"),
            Wide::Pos(u) => write!(f, "{u}"),
        }
    }
}

impl Wide {
    fn fits(self, int: Int) -> bool {
        match self {
            Wide::Pos(u) => u <= int.max(),
            Wide::Neg(i) => i >= int.min(),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Wide::Pos(u) => match u64::try_from(u) {
                Ok(u) => Value::from(u),
                Err(_) => Value::String(u.to_string()),
            },
            Wide::Neg(i) => match i64::try_from(i) {
                Ok(i) => Value::from(i),
                Err(_) => Value::String(i.to_string()),
            },
        }
    }
}

fn range(int: Int) -> String {
    format!("{}..={}", int.min(), int.max())
}

fn encode_int(int: Int, value: &Value, out: &mut Vec<u8>) -> Result<()> {
    let ty = Type::Int(int).to_string();
    let expected = |what: &'static str| {
        CodecError::new(ErrorKind::Expected {
            ty: ty.clone(),
            expected: what,
            found: short(value),
        })
    };
    let out_of_range = |shown: String| {
        CodecError::new(ErrorKind::OutOfRange {
            ty: ty.clone(),
            value: shown,
            range: range(int),
        })
    };
    let wide = match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Wide::Pos(u.into())
            } else if let Some(i) = n.as_i64() {
                Wide::Neg(i.into())
            } else {
                // serde_json keeps integers past 64 bits only as floats.
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.fract() != 0.0 || !x.is_finite() {
                    return Err(expected("an integer"));
                }
                if x.abs() < 9.0e18 {
                    return Err(expected("an integer (without a fraction or exponent)"));
                }
                if int.is_wide() {
                    return Err(expected(
                        "a decimal string for a value beyond 64 bits, e.g. \"170141183460469231731687303715884105727\"",
                    ));
                }
                return Err(out_of_range(n.to_string()));
            }
        }
        Value::String(s) if int.is_wide() => parse_wide(s.trim())
            .ok_or_else(|| expected("an integer (a number, or a decimal string)"))?,
        _ if int.is_wide() => return Err(expected("an integer (a number, or a decimal string)")),
        _ => return Err(expected("an integer")),
    };
    if !wide.fits(int) {
        return Err(out_of_range(wide.to_string()));
    }
    match (int, wide) {
        (Int::U8, Wide::Pos(u)) => out.push(u as u8),
        (Int::I8, Wide::Pos(u)) => out.push(u as u8),
        (Int::I8, Wide::Neg(i)) => out.push(i as i8 as u8),
        (_, Wide::Pos(u)) if int.signed() => put_varint(u << 1, out), // zigzag of u ≥ 0
        (_, Wide::Pos(u)) => put_varint(u, out),
        // zigzag of i < 0 is -2i-1 = 2(!i)+1, with !i = -i-1 ≥ 0.
        (_, Wide::Neg(i)) => put_varint(((!i) as u128) << 1 | 1, out),
    }
    Ok(())
}

fn parse_wide(s: &str) -> Option<Wide> {
    if s.starts_with('-') {
        s.parse::<i128>().ok().map(|i| {
            if i < 0 {
                Wide::Neg(i)
            } else {
                Wide::Pos(i as u128) // "-0"
            }
        })
    } else {
        s.strip_prefix('+')
            .unwrap_or(s)
            .parse::<u128>()
            .ok()
            .map(Wide::Pos)
    }
}

fn json_float(ty: &Type, value: &Value) -> Result<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| {
        CodecError::new(ErrorKind::Expected {
            ty: ty.to_string(),
            expected: "a number (or \"NaN\", \"inf\", \"-inf\")",
            found: short(value),
        })
    })
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    put_varint(s.len() as u128, out);
    out.extend_from_slice(s.as_bytes());
}

fn put_varint(mut v: u128, out: &mut Vec<u8>) {
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A JSON value for error messages: its JSON text, cut at 40 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// Decodes `bytes` as one value of `ty`; every byte must be used.
pub fn decode(ty: &Type, bytes: &[u8]) -> Result<Value> {
    let mut r = Reader { bytes, pos: 0 };
    let value = r.value(ty)?;
    let extra = bytes.len() - r.pos;
    if extra > 0 {
        return Err(CodecError::new(ErrorKind::TrailingBytes {
            ty: ty.to_string(),
            extra,
        }));
    }
    Ok(value)
}

/// Most items of a `Vec` of a type that encodes to no bytes (`Vec<()>`):
/// its length cannot be checked against the bytes left, and a bad length
/// must not make the CLI build an enormous array.
const MAX_EMPTY_ITEMS: u128 = 1 << 20;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, ty: &Type, n: usize) -> Result<&[u8]> {
        if self.bytes.len() - self.pos < n {
            return Err(CodecError::new(ErrorKind::Truncated { ty: ty.to_string() }));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self, ty: &Type) -> Result<u8> {
        Ok(self.take(ty, 1)?[0])
    }

    /// A varint of at most `max_len` bytes whose value is at most `max`
    /// (postcard's checks: the length, and the range of the type).
    fn varint(&mut self, ty: &Type, max_len: usize, max: u128) -> Result<u128> {
        let invalid = |problem: String| {
            CodecError::new(ErrorKind::Invalid {
                ty: ty.to_string(),
                problem,
            })
        };
        let mut v = 0u128;
        for i in 0..max_len {
            let b = self.byte(ty)?;
            let bits = u128::from(b & 0x7f);
            if i == 18 && bits > 3 {
                return Err(invalid("varint overflows 128 bits".into()));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                if v > max {
                    return Err(invalid(format!("varint {v} is larger than {max}")));
                }
                return Ok(v);
            }
        }
        Err(invalid(format!("varint longer than {max_len} bytes")))
    }

    fn len(&mut self, ty: &Type) -> Result<usize> {
        let n = self.varint(ty, 10, u64::MAX.into())?;
        usize::try_from(n).map_err(|_| CodecError::new(ErrorKind::Truncated { ty: ty.to_string() }))
    }

    fn str(&mut self, ty: &Type) -> Result<&str> {
        let n = self.len(ty)?;
        let bytes = self.take(ty, n)?;
        std::str::from_utf8(bytes).map_err(|e| {
            CodecError::new(ErrorKind::Invalid {
                ty: ty.to_string(),
                problem: e.to_string(),
            })
        })
    }

    fn value(&mut self, ty: &Type) -> Result<Value> {
        let invalid = |problem: String| {
            CodecError::new(ErrorKind::Invalid {
                ty: ty.to_string(),
                problem,
            })
        };
        Ok(match ty {
            Type::Int(int) => self.int(ty, *int)?.to_json(),
            Type::F32 => {
                let b = self.take(ty, 4)?;
                let x = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                // f32's shortest decimal, so 0.1f32 prints as 0.1.
                float_json(
                    x.is_finite()
                        .then(|| x.to_string().parse().expect("a float")),
                    x.into(),
                )
            }
            Type::F64 => {
                let b = self.take(ty, 8)?;
                let x = f64::from_le_bytes(b.try_into().expect("8 bytes"));
                float_json(x.is_finite().then_some(x), x)
            }
            Type::Bool => match self.byte(ty)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(invalid(format!("byte {b} is neither 0 nor 1"))),
            },
            Type::Char => {
                let s = self.str(ty)?;
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(_), None) => Value::String(s.to_string()),
                    _ => return Err(invalid(format!("{s:?} is not one character"))),
                }
            }
            Type::String => Value::String(self.str(ty)?.to_string()),
            Type::Unit => Value::Null,
            Type::Option(item) => match self.byte(ty)? {
                0 => Value::Null,
                1 => self.value(item)?,
                b => return Err(invalid(format!("tag {b} is neither 0 (None) nor 1 (Some)"))),
            },
            Type::Vec(item) => {
                let n = self.len(ty)?;
                let left = self.bytes.len() - self.pos;
                let too_long = match item.min_encoded_len() {
                    0 => n as u128 > MAX_EMPTY_ITEMS,
                    min => n > left / min,
                };
                if too_long {
                    return Err(CodecError::new(ErrorKind::Truncated { ty: ty.to_string() }));
                }
                let mut items = Vec::with_capacity(n);
                for i in 0..n {
                    items.push(self.value(item).map_err(|e| e.inside(i))?);
                }
                Value::Array(items)
            }
            Type::Tuple(types) => {
                let mut items = Vec::with_capacity(types.len());
                for (i, t) in types.iter().enumerate() {
                    items.push(self.value(t).map_err(|e| e.inside(i))?);
                }
                Value::Array(items)
            }
            Type::Array(item, n) => {
                if item.min_encoded_len() == 0 && *n as u128 > MAX_EMPTY_ITEMS {
                    return Err(invalid(format!("{n} items of no bytes each")));
                }
                let mut items = Vec::with_capacity((*n).min(self.bytes.len()));
                for i in 0..*n {
                    items.push(self.value(item).map_err(|e| e.inside(i))?);
                }
                Value::Array(items)
            }
        })
    }

    fn int(&mut self, ty: &Type, int: Int) -> Result<Wide> {
        let wide = match int {
            Int::U8 => Wide::Pos(self.byte(ty)?.into()),
            Int::I8 => match self.byte(ty)? as i8 {
                i if i < 0 => Wide::Neg(i.into()),
                i => Wide::Pos(i as u128),
            },
            _ if int.signed() => {
                // The zigzag of the type's range: 2·max + 1 (the most
                // negative value) is the largest.
                let max_zigzag = int.max().saturating_mul(2).saturating_add(1);
                let z = self.varint(ty, int.max_varint_len(), max_zigzag)?;
                if z & 1 == 0 {
                    Wide::Pos(z >> 1)
                } else {
                    Wide::Neg(-((z >> 1) as i128) - 1)
                }
            }
            _ => Wide::Pos(self.varint(ty, int.max_varint_len(), int.max())?),
        };
        Ok(wide)
    }
}

/// A finite float as a JSON number, the others as `"NaN"`, `"inf"`, `"-inf"`.
fn float_json(finite: Option<f64>, x: f64) -> Value {
    match finite.and_then(serde_json::Number::from_f64) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".into()),
        None if x > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

#[cfg(test)]
mod tests;
