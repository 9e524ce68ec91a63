//! Task keys.
//!
//! A key names one result. Its string form is `<task name>-<32 hex>` for a
//! pure call, where the hex is the first 16 bytes of a blake3 hash over what
//! the call computes, and `<task name>-<uuid4>` for a call made with
//! `pure(false)`. On the wire and in every map only the 16-byte [`KeyId`]
//! travels; the name is kept beside it for people.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The 16 bytes that identify a key within a tenant.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// A fresh random id (a version-4 UUID), for impure calls and scatters.
    pub fn random() -> KeyId {
        KeyId(*uuid::Uuid::new_v4().as_bytes())
    }

    /// Lower-case hex of the 16 bytes.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.0 {
            use fmt::Write;
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.hex())
    }
}

/// blake3 hash of a module's wasm bytes: its identity everywhere.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModuleHash(pub [u8; 32]);

impl ModuleHash {
    /// Hash of the given wasm bytes.
    pub fn of(wasm: &[u8]) -> ModuleHash {
        ModuleHash(*blake3::hash(wasm).as_bytes())
    }
}

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ModuleHash({})",
            blake3::Hash::from_bytes(self.0).to_hex()
        )
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(blake3::Hash::from_bytes(self.0).to_hex().as_str())
    }
}

/// A key with its human-readable name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TaskKey {
    /// The task (or data) name, such as `inc`.
    pub name: Arc<str>,
    /// The identity of the key.
    pub id: KeyId,
    /// `true` for a deterministic key, `false` for a random (uuid4) one.
    pub pure: bool,
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pure {
            write!(f, "{}-{}", self.name, self.id.hex())
        } else {
            write!(
                f,
                "{}-{}",
                self.name,
                uuid::Uuid::from_bytes(self.id.0).hyphenated()
            )
        }
    }
}

impl fmt::Debug for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskKey({self})")
    }
}

/// Renders a key string from its parts; the same as `TaskKey`'s `Display`.
pub fn render_key(name: &str, id: KeyId, pure: bool) -> String {
    TaskKey {
        name: name.into(),
        id,
        pure,
    }
    .to_string()
}

/// Domain separation for key hashing: bump it if the derivation changes.
const KEY_CONTEXT: &[u8] = b"wask key v1";

/// The pure key of a call: blake3 over the module hash, the task name, the
/// argument template (literal bytes and where each dependency goes) and the
/// keys of the dependencies. Equal calls give equal keys in every process.
pub fn pure_key_id(
    module: &ModuleHash,
    task: &str,
    template: &crate::ArgTemplate,
    deps: &[KeyId],
) -> KeyId {
    let mut h = blake3::Hasher::new();
    h.update(KEY_CONTEXT);
    h.update(&module.0);
    h.update(&(task.len() as u64).to_le_bytes());
    h.update(task.as_bytes());
    h.update(&(template.bytes.len() as u64).to_le_bytes());
    h.update(&template.bytes);
    h.update(&(template.holes.len() as u64).to_le_bytes());
    for hole in &template.holes {
        h.update(&hole.at.to_le_bytes());
        h.update(&hole.dep.to_le_bytes());
    }
    h.update(&(deps.len() as u64).to_le_bytes());
    for d in deps {
        h.update(&d.0);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    KeyId(id)
}

/// The name part of a scattered key, `data-<32 hex>`. It is hashed into
/// [`data_key_id`] too (domain separation from calls), so renaming it
/// changes every data key: the pinned keys below would fail.
pub const DATA_NAME: &str = "data";

/// The key of scattered data: blake3 over the bytes, so equal data gets the
/// same key (like dask's tokenize).
pub fn data_key_id(bytes: &[u8]) -> KeyId {
    let mut h = blake3::Hasher::new();
    h.update(KEY_CONTEXT);
    h.update(DATA_NAME.as_bytes());
    h.update(bytes);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    KeyId(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{ArgTemplate, Hole};

    #[test]
    fn pure_keys_are_stable_and_distinct() {
        let m = ModuleHash::of(b"module");
        let t = ArgTemplate::literal(vec![10]);
        let a = pure_key_id(&m, "inc", &t, &[]);
        assert_eq!(a, pure_key_id(&m, "inc", &t, &[]));
        assert_ne!(a, pure_key_id(&m, "dec", &t, &[]));
        assert_ne!(a, pure_key_id(&ModuleHash::of(b"other"), "inc", &t, &[]));
        assert_ne!(
            a,
            pure_key_id(&m, "inc", &ArgTemplate::literal(vec![11]), &[])
        );
        let dep = KeyId([7; 16]);
        let holed = ArgTemplate {
            bytes: vec![].into(),
            holes: vec![Hole { at: 0, dep: 0 }],
        };
        assert_ne!(
            pure_key_id(&m, "inc", &holed, &[dep]),
            pure_key_id(&m, "inc", &holed, &[KeyId([8; 16])])
        );
    }

    /// Keys must be equal across machines and releases: these values were
    /// computed once and written down, so any change to the derivation (the
    /// context string, the order or framing of the hashed fields, the
    /// truncation) fails here. Bump `KEY_CONTEXT` and these values together.
    #[test]
    fn pure_keys_are_pinned() {
        let module = ModuleHash([0x42; 32]);
        // inc(10): postcard of (10i64,) is the zigzag varint 20.
        let literal = ArgTemplate::literal(vec![20]);
        assert_eq!(
            render_key("inc", pure_key_id(&module, "inc", &literal, &[]), true),
            "inc-bcf476aac8f4c151edcedb41d35759d0"
        );
        // add(1, <dep>): a literal 1 (zigzag 2) and a hole for dependency 0.
        let holed = ArgTemplate {
            bytes: vec![2].into(),
            holes: vec![Hole { at: 1, dep: 0 }],
        };
        let dep = KeyId(*b"0123456789abcdef");
        assert_eq!(
            render_key("add", pure_key_id(&module, "add", &holed, &[dep]), true),
            "add-0344006dc1078a8542e74c3d4e948e2a"
        );
        // Scattered data.
        assert_eq!(
            data_key_id(b"data").hex(),
            "b579f1efe80e335a62a63f8bf577215f"
        );
    }

    #[test]
    fn key_strings() {
        let k = TaskKey {
            name: "inc".into(),
            id: KeyId([0xab; 16]),
            pure: true,
        };
        assert_eq!(k.to_string(), format!("inc-{}", "ab".repeat(16)));
        let r = TaskKey {
            name: "rand".into(),
            id: KeyId::random(),
            pure: false,
        };
        let s = r.to_string();
        assert!(s.starts_with("rand-"));
        let u = uuid::Uuid::parse_str(&s[5..]).unwrap();
        assert_eq!(u.get_version_num(), 4);
    }
}
