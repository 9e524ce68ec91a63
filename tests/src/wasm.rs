//! Building test modules: `.wat` text or fixtures with a `wask:tasks`
//! section appended, and deterministic noise bytes.

use wask_proto::signature::{SECTION, TaskSignature, encode_record};

/// A task signature for a `wask:tasks` record.
pub fn sig(name: &str, params: &[&str], result: &str) -> TaskSignature {
    TaskSignature {
        name: name.into(),
        params: params.iter().map(|p| p.to_string()).collect(),
        result: result.into(),
    }
}

/// `wasm` with a custom section `name` holding `data` appended: id 0, the
/// LEB128 size, the LEB128 name length, the name, the data.
pub fn with_custom_section(mut wasm: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = leb128(name.len());
    header.extend_from_slice(name.as_bytes());
    wasm.push(0);
    wasm.extend(leb128(header.len() + data.len()));
    wasm.extend(header);
    wasm.extend_from_slice(data);
    wasm
}

pub fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `wat` text compiled, with a `wask:tasks` section declaring `tasks`.
pub fn with_tasks(wat: &str, tasks: &[TaskSignature]) -> Vec<u8> {
    let wasm = wat::parse_str(wat).unwrap_or_else(|e| panic!("bad test wat: {e}"));
    let records: Vec<u8> = tasks.iter().flat_map(encode_record).collect();
    with_custom_section(wasm, SECTION, &records)
}

/// The fixture `tests/fixtures/<name>.wat`, with `tasks` declared.
pub fn fixture(name: &str, tasks: &[TaskSignature]) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    with_tasks(&text, tasks)
}

/// Bytes from a fixed xorshift stream: "random", the same on every run.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
