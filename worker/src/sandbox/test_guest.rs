//! Test guests: hand-written modules in the wat text format, following the
//! wask ABI, with a `wask:tasks` section appended as raw bytes.

use wask_proto::signature::{SECTION, TaskSignature, encode_record};

/// A bump allocator exported as `wask:alloc` (callable as `$alloc`); it
/// hands out memory from 4096 up.
const ALLOC: &str = r#"
  (global $bump (mut i32) (i32.const 4096))
  (func $alloc (export "wask:alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $n)))
    (local.get $p))
"#;

/// A module with `imports`, a memory of `pages` pages exported as `memory`,
/// the bump allocator, `body` (which defines the `wask:task:<name>`
/// exports) and a task section listing `tasks`.
pub(crate) fn module(imports: &str, pages: u32, body: &str, tasks: &[&str]) -> Vec<u8> {
    let text = format!(r#"(module {imports} (memory (export "memory") {pages}) {ALLOC} {body})"#);
    let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("bad test wat: {e}\n{text}"));
    with_tasks(wasm, tasks)
}

/// Appends a `wask:tasks` custom section listing `tasks` (no parameters,
/// result `u8`).
pub(crate) fn with_tasks(mut wasm: Vec<u8>, tasks: &[&str]) -> Vec<u8> {
    let mut data = Vec::new();
    for name in tasks {
        data.extend(encode_record(&TaskSignature {
            name: (*name).into(),
            params: vec![],
            result: "u8".into(),
        }));
    }
    let mut body = leb128(SECTION.len());
    body.extend_from_slice(SECTION.as_bytes());
    body.extend(data);
    wasm.push(0); // custom section id
    wasm.extend(leb128(body.len()));
    wasm.extend(body);
    wasm
}

fn leb128(mut n: usize) -> Vec<u8> {
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

/// A task's return value: the output at `[ptr, ptr + len)`.
pub(crate) fn packed(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}
