//! Argument templates.
//!
//! postcard is concatenative: a tuple is its fields one after another and a
//! `Vec<T>` is a varint length followed by the items. So a call whose
//! arguments include other tasks' results is sent as literal postcard bytes
//! with *holes*: at byte offset `at`, splice in the result bytes of
//! dependency `dep`. The worker fills the holes and hands the guest one
//! buffer; no host ever decodes the guest's types.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A hole in a template: the result of dependency `dep` goes at `at`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hole {
    /// Byte offset into [`ArgTemplate::bytes`]; holes are sorted by it.
    pub at: u32,
    /// Index into the task's dependency list.
    pub dep: u32,
}

/// Literal postcard bytes with holes for dependency results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ArgTemplate {
    /// The literal bytes.
    pub bytes: Bytes,
    /// Where dependency results go, sorted by offset.
    pub holes: Vec<Hole>,
}

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// A hole points past the end of the literal bytes.
    #[error("hole at byte {at} is past the end of the {len} literal bytes")]
    HoleOutOfRange {
        /// The hole's offset.
        at: u32,
        /// Length of the literal bytes.
        len: usize,
    },
    /// Holes are not sorted by offset.
    #[error("holes are not sorted by offset")]
    Unsorted,
    /// A hole names a dependency the task does not have.
    #[error("hole refers to dependency {dep} of {deps}")]
    NoSuchDependency {
        /// The index named.
        dep: u32,
        /// How many dependencies the task has.
        deps: usize,
    },
    /// The spliced buffer would exceed the argument size limit.
    #[error("arguments of {size} bytes exceed the limit of {limit}")]
    TooLarge {
        /// Size the splice would have.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl ArgTemplate {
    /// A template without holes.
    pub fn literal(bytes: impl Into<Bytes>) -> ArgTemplate {
        ArgTemplate {
            bytes: bytes.into(),
            holes: Vec::new(),
        }
    }

    /// Checks the holes against the literal length and the number of
    /// dependencies. Run on every template that comes from the network.
    pub fn validate(&self, deps: usize) -> Result<(), TemplateError> {
        let mut last = 0u32;
        for h in &self.holes {
            if h.at as usize > self.bytes.len() {
                return Err(TemplateError::HoleOutOfRange {
                    at: h.at,
                    len: self.bytes.len(),
                });
            }
            if h.at < last {
                return Err(TemplateError::Unsorted);
            }
            if h.dep as usize >= deps {
                return Err(TemplateError::NoSuchDependency { dep: h.dep, deps });
            }
            last = h.at;
        }
        Ok(())
    }

    /// Fills the holes with `dep_bytes(i)` into `out` (cleared first), within
    /// `limit` bytes in total. The template must have passed [`validate`].
    ///
    /// [`validate`]: ArgTemplate::validate
    pub fn splice_into<'a>(
        &self,
        dep_bytes: impl Fn(usize) -> &'a [u8],
        limit: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), TemplateError> {
        out.clear();
        let mut size = self.bytes.len() as u64;
        for h in &self.holes {
            size += dep_bytes(h.dep as usize).len() as u64;
        }
        if size > limit {
            return Err(TemplateError::TooLarge { size, limit });
        }
        out.reserve(size as usize);
        let mut pos = 0usize;
        for h in &self.holes {
            let at = h.at as usize;
            out.extend_from_slice(&self.bytes[pos..at]);
            out.extend_from_slice(dep_bytes(h.dep as usize));
            pos = at;
        }
        out.extend_from_slice(&self.bytes[pos..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_fills_holes_in_order() {
        let t = ArgTemplate {
            bytes: Bytes::from_static(&[2, 9]),
            holes: vec![
                Hole { at: 1, dep: 0 },
                Hole { at: 1, dep: 1 },
                Hole { at: 2, dep: 0 },
            ],
        };
        t.validate(2).unwrap();
        let deps: [&[u8]; 2] = [&[0xa], &[0xb, 0xc]];
        let mut out = Vec::new();
        t.splice_into(|i| deps[i], 100, &mut out).unwrap();
        assert_eq!(out, vec![2, 0xa, 0xb, 0xc, 9, 0xa]);
        assert!(matches!(
            t.splice_into(|i| deps[i], 3, &mut out),
            Err(TemplateError::TooLarge { .. })
        ));
    }

    #[test]
    fn postcard_concatenation_matches_splice() {
        // (5i64, vec![1i64, 2]) where the vec items are dependency results.
        let a = postcard::to_allocvec(&1i64).unwrap();
        let b = postcard::to_allocvec(&2i64).unwrap();
        let mut lit = postcard::to_allocvec(&5i64).unwrap();
        let at = lit.len() as u32 + 1;
        lit.push(2); // varint length of the vec
        let t = ArgTemplate {
            bytes: lit.into(),
            holes: vec![Hole { at, dep: 0 }, Hole { at, dep: 1 }],
        };
        let mut out = Vec::new();
        let deps = [a, b];
        t.splice_into(|i| &deps[i], 1 << 20, &mut out).unwrap();
        let v: (i64, Vec<i64>) = postcard::from_bytes(&out).unwrap();
        assert_eq!(v, (5, vec![1, 2]));
    }

    #[test]
    fn validate_rejects_bad_holes() {
        let t = ArgTemplate {
            bytes: Bytes::from_static(&[1]),
            holes: vec![Hole { at: 2, dep: 0 }],
        };
        assert!(matches!(
            t.validate(1),
            Err(TemplateError::HoleOutOfRange { .. })
        ));
        let t = ArgTemplate {
            bytes: Bytes::from_static(&[1, 2]),
            holes: vec![Hole { at: 2, dep: 0 }, Hole { at: 1, dep: 0 }],
        };
        assert_eq!(t.validate(1), Err(TemplateError::Unsorted));
        let t = ArgTemplate {
            bytes: Bytes::from_static(&[1]),
            holes: vec![Hole { at: 0, dep: 3 }],
        };
        assert!(matches!(
            t.validate(1),
            Err(TemplateError::NoSuchDependency { .. })
        ));
    }
}
