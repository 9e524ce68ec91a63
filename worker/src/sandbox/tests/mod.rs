//! Sandbox tests with hand-written guests (see [`super::test_guest`]), and
//! the helpers they share.
//!
//! - [`abi`]: results, arguments, status bytes, compiling, isolation.
//! - [`failures`]: every limit and trap, and the error it gets.
//! - [`wasi`]: the WASI subset.

mod abi;
mod failures;
mod tiers;
mod wasi;

use super::test_guest::{module, packed, with_tasks};
use super::wasi::REALTIME_START_NS;
use super::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wask_proto::error::Limit;
use wask_proto::module::{WASI_FUNCTIONS, WASI_MODULE};

/// One sandbox shared by the tests (tests run in parallel on it, as the
/// worker's threads do).
pub(super) fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            max_instances: 16,
            memory_ceiling: 64 << 20,
            epoch_tick: Duration::from_millis(1),
            compiler: Default::default(),
        })
        .expect("sandbox")
    })
}

pub(super) fn limits() -> ResolvedLimits {
    ResolvedLimits {
        time_ms: 10_000,
        memory_bytes: 16 << 20,
        result_bytes: 1 << 20,
        output_bytes: 1 << 20,
        stack_bytes: 512 << 10,
    }
}

/// Runs task 0 of `wasm` with `args` under `limits`.
pub(super) fn run_with(
    wasm: &[u8],
    args: &[u8],
    limits: ResolvedLimits,
    seed: [u8; 32],
) -> RunOutput {
    let compiled = sandbox().compile(wasm).expect("module compiles");
    sandbox().run(
        &compiled,
        RunRequest {
            func: 0,
            args,
            limits,
            seed,
            cancel: None,
            on_check: None,
        },
    )
}

pub(super) fn run(wasm: &[u8]) -> RunOutput {
    run_with(wasm, &[], limits(), [0; 32])
}

/// A module with one task `t` whose body is `body` (it must leave an i64).
pub(super) fn task(imports: &str, body: &str) -> Vec<u8> {
    task_with(imports, body, "")
}

/// [`task`], with module-level `items` (data segments) after the function.
pub(super) fn task_with(imports: &str, body: &str, items: &str) -> Vec<u8> {
    let func = format!(
        r#"(func (export "wask:task:t") (param $p i32) (param $n i32) (result i64) {body}) {items}"#
    );
    module(imports, 1, &func, &["t"])
}

/// A task returning the bytes `output` (status byte included), placed at 100.
pub(super) fn returning(output: &str) -> Vec<u8> {
    let len = output.len() as u32;
    let escaped: String = output.bytes().map(|b| format!("\\{b:02x}")).collect();
    task_with(
        "",
        &format!("(i64.const {})", packed(100, len)),
        &format!(r#"(data (i32.const 100) "{escaped}")"#),
    )
}

/// Import declarations of WASI functions, all returning an errno.
pub(super) fn wasi_imports(funcs: &[(&str, &str)]) -> String {
    funcs
        .iter()
        .map(|(name, params)| {
            format!(r#"(import "wasi_snapshot_preview1" "{name}" (func ${name} (param {params}) (result i32)))"#)
        })
        .collect()
}
