//! The types the CLI converts between JSON and postcard, parsed from the type
//! names of a module's task signatures.
//!
//! Signatures hold names as `wask_proto::signature::normalize_type_name`
//! leaves them: no paths, no spaces (`Vec<i64>`, `(i64,String)`,
//! `Option<u8>`, `[u8;4]`). [`Type::parse`] reads such a name, and refuses
//! anything else (structs, maps, references) with an [`UnsupportedType`], for
//! which the user passes postcard bytes directly.

use std::fmt;
use wask_proto::signature::normalize_type_name;

/// An integer type. `usize` and `isize` are 32 bits wide: guests are built
/// for `wasm32-wasip1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int {
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `i128`
    I128,
    /// `isize`
    Isize,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `u128`
    U128,
    /// `usize`
    Usize,
}

impl Int {
    const ALL: [Int; 12] = [
        Int::I8,
        Int::I16,
        Int::I32,
        Int::I64,
        Int::I128,
        Int::Isize,
        Int::U8,
        Int::U16,
        Int::U32,
        Int::U64,
        Int::U128,
        Int::Usize,
    ];

    /// The Rust name.
    pub fn name(self) -> &'static str {
        match self {
            Int::I8 => "i8",
            Int::I16 => "i16",
            Int::I32 => "i32",
            Int::I64 => "i64",
            Int::I128 => "i128",
            Int::Isize => "isize",
            Int::U8 => "u8",
            Int::U16 => "u16",
            Int::U32 => "u32",
            Int::U64 => "u64",
            Int::U128 => "u128",
            Int::Usize => "usize",
        }
    }

    /// Whether negative values exist.
    pub fn signed(self) -> bool {
        matches!(
            self,
            Int::I8 | Int::I16 | Int::I32 | Int::I64 | Int::I128 | Int::Isize
        )
    }

    /// The smallest value (the guest's, so `isize` is `i32`).
    pub fn min(self) -> i128 {
        match self {
            Int::I8 => i8::MIN.into(),
            Int::I16 => i16::MIN.into(),
            Int::I32 | Int::Isize => i32::MIN.into(),
            Int::I64 => i64::MIN.into(),
            Int::I128 => i128::MIN,
            _ => 0,
        }
    }

    /// The largest value (the guest's, so `usize` is `u32`).
    pub fn max(self) -> u128 {
        match self {
            Int::I8 => i8::MAX as u128,
            Int::I16 => i16::MAX as u128,
            Int::I32 | Int::Isize => i32::MAX as u128,
            Int::I64 => i64::MAX as u128,
            Int::I128 => i128::MAX as u128,
            Int::U8 => u8::MAX.into(),
            Int::U16 => u16::MAX.into(),
            Int::U32 | Int::Usize => u32::MAX.into(),
            Int::U64 => u64::MAX.into(),
            Int::U128 => u128::MAX,
        }
    }

    /// The most bytes postcard reads for its varint: the wire width is that
    /// of the type, except that `usize`/`isize` travel as 64-bit values.
    pub fn max_varint_len(self) -> usize {
        match self {
            Int::I8 | Int::U8 => 1, // not varints: one plain byte
            Int::I16 | Int::U16 => 3,
            Int::I32 | Int::U32 => 5,
            Int::I64 | Int::U64 | Int::Isize | Int::Usize => 10,
            Int::I128 | Int::U128 => 19,
        }
    }

    /// Whether values may lie beyond 64 bits (and so are written as JSON
    /// strings when they do).
    pub fn is_wide(self) -> bool {
        matches!(self, Int::I128 | Int::U128)
    }
}

/// A type the CLI can encode and decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// An integer.
    Int(Int),
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `bool`
    Bool,
    /// `char`
    Char,
    /// `String`
    String,
    /// `()`
    Unit,
    /// `Vec<T>`
    Vec(Box<Type>),
    /// `Option<T>`
    Option(Box<Type>),
    /// `(A,B,..)`, with at least one element.
    Tuple(Vec<Type>),
    /// `[T;N]`
    Array(Box<Type>, usize),
}

/// A type name the CLI does not understand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("type {name} is not understood by the CLI (near {near:?})")]
pub struct UnsupportedType {
    /// The whole name.
    pub name: String,
    /// The rest of the name from where parsing stopped.
    pub near: String,
}

impl Type {
    /// Parses a type name (normalized first, so `alloc::vec::Vec < i64 >`
    /// is read as `Vec<i64>`). The whole name must be consumed.
    pub fn parse(name: &str) -> Result<Type, UnsupportedType> {
        let normalized = normalize_type_name(name);
        let mut p = Parser {
            s: &normalized,
            pos: 0,
        };
        let ty = p.ty().and_then(|t| p.finish().map(|()| t));
        ty.ok_or_else(|| UnsupportedType {
            name: normalized.clone(),
            near: normalized[p.pos..].to_string(),
        })
    }

    /// The fewest bytes any value's encoding takes: decoding a `Vec` checks
    /// its length against the bytes left with it.
    pub fn min_encoded_len(&self) -> usize {
        match self {
            Type::Int(_) | Type::Bool | Type::Char | Type::String => 1,
            Type::Vec(_) | Type::Option(_) => 1,
            Type::F32 => 4,
            Type::F64 => 8,
            Type::Unit => 0,
            Type::Tuple(items) => items.iter().map(Type::min_encoded_len).sum(),
            Type::Array(item, n) => item.min_encoded_len().saturating_mul(*n),
        }
    }
}

impl fmt::Display for Type {
    /// The normalized name, as signatures spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Int(i) => f.write_str(i.name()),
            Type::F32 => f.write_str("f32"),
            Type::F64 => f.write_str("f64"),
            Type::Bool => f.write_str("bool"),
            Type::Char => f.write_str("char"),
            Type::String => f.write_str("String"),
            Type::Unit => f.write_str("()"),
            Type::Vec(t) => write!(f, "Vec<{t}>"),
            Type::Option(t) => write!(f, "Option<{t}>"),
            Type::Tuple(items) => {
                f.write_str("(")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{t}")?;
                }
                if items.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Type::Array(t, n) => write!(f, "[{t};{n}]"),
        }
    }
}

/// Recursive descent over a normalized name; `None` means "not understood"
/// and `pos` says where.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Option<()> {
        self.eat(token).then_some(())
    }

    fn finish(&self) -> Option<()> {
        self.rest().is_empty().then_some(())
    }

    fn word(&mut self) -> &str {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.s[start..start + len]
    }

    fn ty(&mut self) -> Option<Type> {
        if self.eat("(") {
            return self.tuple();
        }
        if self.eat("[") {
            let item = self.ty()?;
            self.expect(";")?;
            let start = self.pos;
            let len = self.word().to_string();
            let digits = len.strip_suffix("usize").unwrap_or(&len).replace('_', "");
            let n = digits.parse::<usize>().ok().or_else(|| {
                self.pos = start;
                None
            })?;
            self.expect("]")?;
            return Some(Type::Array(Box::new(item), n));
        }
        let start = self.pos;
        let word = self.word().to_string();
        let ty = match word.as_str() {
            "f32" => Type::F32,
            "f64" => Type::F64,
            "bool" => Type::Bool,
            "char" => Type::Char,
            "String" => Type::String,
            "Vec" | "Option" => {
                self.expect("<")?;
                let item = Box::new(self.ty()?);
                self.expect(">")?;
                if word == "Vec" {
                    Type::Vec(item)
                } else {
                    Type::Option(item)
                }
            }
            w => match Int::ALL.iter().find(|i| i.name() == w) {
                Some(i) => Type::Int(*i),
                None => {
                    self.pos = start;
                    return None;
                }
            },
        };
        Some(ty)
    }

    /// After `(`: `()`, `(T)` (just `T`), `(T,)`, `(A,B)`, `(A,B,)`.
    fn tuple(&mut self) -> Option<Type> {
        if self.eat(")") {
            return Some(Type::Unit);
        }
        let mut items = vec![self.ty()?];
        if self.eat(")") {
            return items.pop();
        }
        loop {
            self.expect(",")?;
            if self.eat(")") {
                break;
            }
            items.push(self.ty()?);
            if self.eat(")") {
                break;
            }
        }
        Some(Type::Tuple(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Type {
        Type::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_every_supported_type() {
        for i in Int::ALL {
            assert_eq!(parse(i.name()), Type::Int(i));
        }
        assert_eq!(parse("f32"), Type::F32);
        assert_eq!(parse("f64"), Type::F64);
        assert_eq!(parse("bool"), Type::Bool);
        assert_eq!(parse("char"), Type::Char);
        assert_eq!(parse("String"), Type::String);
        assert_eq!(parse("()"), Type::Unit);
        assert_eq!(parse("Vec<i64>"), Type::Vec(Box::new(Type::Int(Int::I64))));
        assert_eq!(
            parse("Option<u8>"),
            Type::Option(Box::new(Type::Int(Int::U8)))
        );
        assert_eq!(
            parse("(i64,String)"),
            Type::Tuple(vec![Type::Int(Int::I64), Type::String])
        );
        assert_eq!(parse("(bool,)"), Type::Tuple(vec![Type::Bool]));
        assert_eq!(parse("(bool)"), Type::Bool);
        assert_eq!(parse("(u8,u16,)"), parse("(u8,u16)"));
        assert_eq!(
            parse("[u8;4]"),
            Type::Array(Box::new(Type::Int(Int::U8)), 4)
        );
        assert_eq!(parse("[u8;4usize]"), parse("[u8;4]"));
        assert_eq!(parse("[();0]"), Type::Array(Box::new(Type::Unit), 0));
    }

    #[test]
    fn parses_nested_and_unnormalized_names() {
        let t = parse("alloc::vec::Vec<(core::option::Option<[i8; 2]>, alloc::string::String)>");
        assert_eq!(t.to_string(), "Vec<(Option<[i8;2]>,String)>");
        assert_eq!(
            parse(std::any::type_name::<Vec<Option<String>>>()).to_string(),
            "Vec<Option<String>>"
        );
        for name in [
            "Vec<Vec<u128>>",
            "(i64,(u8,),[f32;3])",
            "Option<Option<()>>",
            "(char,)",
        ] {
            assert_eq!(parse(name).to_string(), name, "display round trip");
        }
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for name in [
            "HashMap<String,u8>",
            "Point",
            "&str",
            "Box<i64>",
            "Vec<i64",
            "Vec<i64>>",
            "Vec<>",
            "(i64,,)",
            "(i64",
            "[u8;]",
            "[u8;x]",
            "[u8,4]",
            "i256",
            "",
        ] {
            assert!(Type::parse(name).is_err(), "{name} should be refused");
        }
        let e = Type::parse("Vec<Point>").unwrap_err();
        assert_eq!(e.name, "Vec<Point>");
        assert_eq!(e.near, "Point>");
    }

    #[test]
    fn integer_ranges_are_the_guests() {
        assert_eq!(Int::Usize.max(), u32::MAX as u128);
        assert_eq!(Int::Isize.min(), i32::MIN as i128);
        assert_eq!(Int::U128.max(), u128::MAX);
        assert_eq!(Int::I128.min(), i128::MIN);
        assert!(!Int::U64.signed() && Int::I8.signed());
    }

    #[test]
    fn min_encoded_len() {
        assert_eq!(parse("()").min_encoded_len(), 0);
        assert_eq!(parse("[();5]").min_encoded_len(), 0);
        assert_eq!(parse("(f64,u8)").min_encoded_len(), 9);
        assert_eq!(parse("[f32;3]").min_encoded_len(), 12);
        assert_eq!(parse("Vec<f64>").min_encoded_len(), 1);
    }
}
