//! The guest's shadow stack, so that running out of it is reported as a
//! stack overflow.
//!
//! rustc's wasm targets keep every local whose address is taken in a stack
//! in linear memory, addressed by the mutable global `__stack_pointer`
//! (global 0). The linker places that stack first in memory, growing down
//! towards address 0, and nothing checks it: when it runs out, the stack
//! pointer wraps below zero to just under 4 GiB and the next write into the
//! frame traps as an out-of-bounds access. wasmtime's own stack limit never
//! sees it.
//!
//! The global is not exported, so [`export_stack_pointer`] adds an export
//! for it before compiling. When a call traps out of bounds, the run reads
//! the global: a pointer past the end of memory and within
//! [`WRAP_WINDOW`] of 4 GiB means the stack ran out. (A guest could set the
//! global there itself; all it would gain is a different error for its own
//! trap.)

use wasmparser::{KnownCustom, Name, Parser, Payload, ValType};

/// Name of the export added for the stack pointer.
pub(super) const STACK_POINTER_EXPORT: &str = "wask:stack-pointer";

/// How far below 4 GiB a wrapped stack pointer can be: the largest stack
/// frame expected, with room to spare.
pub(super) const WRAP_WINDOW: u64 = 16 << 20;

/// Whether a stack pointer value, in a memory of `memory_size` bytes, is one
/// that ran out of stack.
pub(super) fn wrapped(stack_pointer: u32, memory_size: usize) -> bool {
    let sp = u64::from(stack_pointer);
    sp >= memory_size as u64 && sp >= (1u64 << 32) - WRAP_WINDOW
}

/// `wasm` with global 0 also exported as [`STACK_POINTER_EXPORT`], when
/// global 0 looks like rustc's stack pointer: a defined `mut i32`, named
/// `__stack_pointer` if the module names its globals. `None` when it does
/// not (the module is then compiled as it is) or the bytes do not parse.
///
/// The bytes must have passed `wask_proto::module::inspect`, so all imports
/// are functions and global 0 is the first defined global.
pub(super) fn export_stack_pointer(wasm: &[u8]) -> Option<Vec<u8>> {
    let mut export_section = None; // (header start, contents range)
    let mut section_end = 8; // after the magic and version
    let mut first_global_ok = false;
    let mut name_ok = true;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.ok()?;
        match &payload {
            Payload::GlobalSection(reader) => {
                let global = reader.clone().into_iter().next()?.ok()?;
                first_global_ok = global.ty.content_type == ValType::I32
                    && global.ty.mutable
                    && !global.ty.shared;
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export.ok()?;
                    if export.name == STACK_POINTER_EXPORT {
                        return None;
                    }
                }
                export_section = Some((section_end, reader.range()));
            }
            Payload::CustomSection(reader) => {
                if let KnownCustom::Name(names) = reader.as_known() {
                    for name in names.into_iter().flatten() {
                        if let Name::Global(map) = name {
                            for naming in map.into_iter().flatten() {
                                if naming.index == 0 {
                                    name_ok = naming.name == "__stack_pointer";
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        if let Some((_, range)) = payload.as_section() {
            section_end = range.end;
        }
    }
    if !(first_global_ok && name_ok) {
        return None;
    }
    let (header_start, contents) = export_section?;
    Some(with_export(wasm, header_start, contents))
}

/// Rewrites the export section (header at `header_start`, contents in
/// `contents`) with one more export: global 0 as [`STACK_POINTER_EXPORT`].
fn with_export(wasm: &[u8], header_start: usize, contents: std::ops::Range<usize>) -> Vec<u8> {
    let body = &wasm[contents.clone()];
    let (count, count_len) = read_leb_u32(body).expect("the section parsed");
    let mut new_body = Vec::with_capacity(body.len() + 32);
    write_leb(&mut new_body, u64::from(count) + 1);
    new_body.extend_from_slice(&body[count_len..]);
    write_leb(&mut new_body, STACK_POINTER_EXPORT.len() as u64);
    new_body.extend_from_slice(STACK_POINTER_EXPORT.as_bytes());
    new_body.push(0x03); // global
    write_leb(&mut new_body, 0);

    let mut out = Vec::with_capacity(wasm.len() + 32);
    out.extend_from_slice(&wasm[..header_start]);
    out.push(7); // export section id
    write_leb(&mut out, new_body.len() as u64);
    out.extend_from_slice(&new_body);
    out.extend_from_slice(&wasm[contents.end..]);
    out
}

fn read_leb_u32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((u32::try_from(value).ok()?, i + 1));
        }
    }
    None
}

fn write_leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::ExternalKind;

    #[test]
    fn exports_a_rustc_style_stack_pointer() {
        let wasm = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (global $__stack_pointer (mut i32) (i32.const 1024))
                 (func (export "f")))"#,
        )
        .unwrap();
        let rewritten = export_stack_pointer(&wasm).expect("global 0 is a stack pointer");
        let mut exports = Vec::new();
        for payload in Parser::new(0).parse_all(&rewritten) {
            if let Payload::ExportSection(reader) = payload.unwrap() {
                exports.extend(reader.into_iter().map(|e| {
                    let e = e.unwrap();
                    (e.name.to_string(), e.kind, e.index)
                }));
            }
        }
        assert_eq!(
            exports.last(),
            Some(&(STACK_POINTER_EXPORT.to_string(), ExternalKind::Global, 0))
        );
        assert_eq!(exports.len(), 3);
        wasmparser::Validator::new()
            .validate_all(&rewritten)
            .unwrap();
    }

    #[test]
    fn leaves_other_modules_alone() {
        let named_otherwise = wat::parse_str(
            r#"(module (memory (export "memory") 1) (global $counter (mut i32) (i32.const 0)))"#,
        )
        .unwrap();
        assert!(export_stack_pointer(&named_otherwise).is_none());
        let immutable =
            wat::parse_str(r#"(module (memory (export "memory") 1) (global i32 (i32.const 0)))"#)
                .unwrap();
        assert!(export_stack_pointer(&immutable).is_none());
        let no_globals = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
        assert!(export_stack_pointer(&no_globals).is_none());
    }

    #[test]
    fn wrapped_means_just_under_4_gib_and_outside_memory() {
        assert!(wrapped(0xffff_fc00, 17 << 16));
        assert!(!wrapped(1 << 20, 17 << 16));
        assert!(!wrapped(0x8000_0000, 17 << 16));
    }
}
