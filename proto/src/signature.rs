//! Task signatures, as `#[wask_guest::task]` records them.
//!
//! Each task adds one record to the wasm custom section [`SECTION`]; the
//! linker concatenates them. A record is a varint length followed by the
//! postcard encoding of a [`TaskSignature`]. Type names are written as the
//! source spelled them; [`normalize_type_name`] makes them comparable with
//! `std::any::type_name` on the client (paths dropped, spaces removed).

use serde::{Deserialize, Serialize};

/// Name of the custom section holding the task records.
pub const SECTION: &str = "wask:tasks";

/// Prefix of the export of each task: `wask:task:<name>`.
pub const TASK_EXPORT_PREFIX: &str = "wask:task:";

/// The guest allocator export: `(len: i32) -> i32`.
pub const ALLOC_EXPORT: &str = "wask:alloc";

/// One task of a module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSignature {
    /// The task's name (the Rust function name).
    pub name: String,
    /// The parameter types, normalized.
    pub params: Vec<String>,
    /// The result type (the `T` of a `Result<T, E>`), normalized.
    pub result: String,
}

impl TaskSignature {
    /// `name(a, b) -> r`, for listings and error messages.
    pub fn display(&self) -> String {
        format!(
            "{}({}) -> {}",
            self.name,
            self.params.join(", "),
            self.result
        )
    }
}

/// Why a signature section cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// A record is cut short or does not decode.
    #[error("malformed task record at byte {offset}")]
    Malformed {
        /// Where in the section.
        offset: usize,
    },
    /// Two records have the same name.
    #[error("task {0} is declared twice")]
    Duplicate(String),
    /// More records than allowed.
    #[error("module declares more than {0} tasks")]
    TooMany(usize),
}

/// Decodes every record of a section body.
pub fn parse_section(
    mut data: &[u8],
    max_tasks: usize,
) -> Result<Vec<TaskSignature>, SignatureError> {
    let total = data.len();
    let mut out: Vec<TaskSignature> = Vec::new();
    while !data.is_empty() {
        let offset = total - data.len();
        let bad = || SignatureError::Malformed { offset };
        let (len, rest) = postcard::take_from_bytes::<u32>(data).map_err(|_| bad())?;
        let len = len as usize;
        if rest.len() < len {
            return Err(bad());
        }
        let sig: TaskSignature = crate::frame::decode_body(&rest[..len]).map_err(|_| bad())?;
        if out.len() >= max_tasks {
            return Err(SignatureError::TooMany(max_tasks));
        }
        if out.iter().any(|s| s.name == sig.name) {
            return Err(SignatureError::Duplicate(sig.name));
        }
        out.push(TaskSignature {
            params: sig.params.iter().map(|p| normalize_type_name(p)).collect(),
            result: normalize_type_name(&sig.result),
            name: sig.name,
        });
        data = &rest[len..];
    }
    Ok(out)
}

/// Encodes one record (what the proc macro emits, byte for byte).
pub fn encode_record(sig: &TaskSignature) -> Vec<u8> {
    let body = postcard::to_allocvec(sig).expect("encoding into a Vec");
    let mut out = postcard::to_allocvec(&(body.len() as u32)).expect("encoding into a Vec");
    out.extend_from_slice(&body);
    out
}

/// Makes a type name comparable across crates: drops whitespace and module
/// paths, so `alloc::vec::Vec<i64>` and `Vec < i64 >` both become
/// `Vec<i64>`.
pub fn normalize_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut segment_start = 0usize; // index in `out` where the current path begins
    let mut chars = name.chars().filter(|c| !c.is_whitespace()).peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(segment_start);
            continue;
        }
        if !(c.is_alphanumeric() || c == '_') {
            out.push(c);
            segment_start = out.len();
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths_and_spaces() {
        assert_eq!(normalize_type_name("alloc::vec::Vec<i64>"), "Vec<i64>");
        assert_eq!(normalize_type_name("Vec < i64 >"), "Vec<i64>");
        assert_eq!(
            normalize_type_name("(i64, alloc::string::String)"),
            "(i64,String)"
        );
        assert_eq!(
            normalize_type_name(
                "std::collections::HashMap<alloc::string::String, ::core::option::Option<u8>>"
            ),
            "HashMap<String,Option<u8>>"
        );
        assert_eq!(normalize_type_name("[u8; 4]"), "[u8;4]");
        assert_eq!(normalize_type_name("()"), "()");
        assert_eq!(
            normalize_type_name(std::any::type_name::<Vec<Option<String>>>()),
            "Vec<Option<String>>"
        );
    }

    #[test]
    fn records_round_trip() {
        let a = TaskSignature {
            name: "inc".into(),
            params: vec!["i64".into()],
            result: "i64".into(),
        };
        let b = TaskSignature {
            name: "sum".into(),
            params: vec!["Vec < i64 >".into()],
            result: "i64".into(),
        };
        let mut section = encode_record(&a);
        section.extend(encode_record(&b));
        let got = parse_section(&section, 10).unwrap();
        assert_eq!(got[0], a);
        assert_eq!(got[1].params, vec!["Vec<i64>".to_string()]);
        assert_eq!(got[1].display(), "sum(Vec<i64>) -> i64");
        assert_eq!(parse_section(&section, 1), Err(SignatureError::TooMany(1)));
        let mut dup = encode_record(&a);
        dup.extend(encode_record(&a));
        assert_eq!(
            parse_section(&dup, 10),
            Err(SignatureError::Duplicate("inc".into()))
        );
        assert!(parse_section(&section[..section.len() - 1], 10).is_err());
    }
}
