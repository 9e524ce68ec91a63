//! Write wask tasks: plain Rust functions, built to `wasm32-wasip1`, that a
//! wask cluster runs each in a fresh wasmtime sandbox.
//!
//! # Tutorial
//!
//! A guest is a `cdylib` crate that depends on `wask-guest` (and `serde` if
//! it defines its own argument types). Keep guests in a cargo workspace of
//! their own, apart from native code (see `examples/guests/`); the
//! `wask-guest-build` crate builds such a workspace from a `build.rs`.
//!
//! ```toml
//! [package]
//! name = "math"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wask-guest = { path = "../../guest-sdk" }   # where wask's guest-sdk/ is
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! Each task is an ordinary function marked with [`task`]. Arguments are
//! any owned [`serde::de::DeserializeOwned`] values, the result any
//! [`serde::Serialize`] value; a task returning `Result<T, E>` (or an
//! anyhow-style `Result<T>`) with `E: Display` reports `Err(e)` as a task
//! error carrying `e.to_string()`:
//!
//! ```
//! use wask_guest::serde::{Deserialize, Serialize};
//!
//! #[wask_guest::task]
//! fn inc(x: i64) -> i64 {
//!     x + 1
//! }
//!
//! #[wask_guest::task]
//! fn sum(xs: Vec<i64>) -> i64 {
//!     xs.iter().sum()
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! # #[serde(crate = "wask_guest::serde")]
//! struct Point {
//!     x: f64,
//!     y: f64,
//! }
//!
//! #[wask_guest::task]
//! fn norm(p: Point) -> Result<f64, String> {
//!     let n = (p.x * p.x + p.y * p.y).sqrt();
//!     if n.is_finite() { Ok(n) } else { Err(format!("overflow at ({}, {})", p.x, p.y)) }
//! }
//!
//! // The functions stay callable as they are, so they can be unit tested natively.
//! assert_eq!(inc(1), 2);
//! assert_eq!(sum(vec![1, 2, 3]), 6);
//! ```
//!
//! Build the module and hand it to a client:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip1   # rustup target add wasm32-wasip1
//! # -> target/wasm32-wasip1/release/math.wasm
//! ```
//!
//! ```ignore
//! let math = client.load_module("target/wasm32-wasip1/release/math.wasm").await?;
//! let inc = math.task::<(i64,), i64>("inc")?;
//! ```
//!
//! A task cannot be `async`, generic, take `self`, destructure its
//! parameters or take or return references: the macro says so at compile
//! time. A task sees no files, environment, arguments or network; its clock
//! and random numbers are fixed by the worker, so a pure task gives the same
//! bytes every time. A panic fails the task with the panic message and its
//! location. The generated code names the crate `::wask_guest`, so do not
//! rename the dependency.
//!
//! # The ABI
//!
//! What the macro generates, for hosts and the curious. For `fn name(a: A,
//! b: B) -> R`:
//!
//! - an export `wask:task:name`, `(ptr: i32, len: i32) -> i64`. The host
//!   writes the postcard encoding of the tuple `(A, B)` (zero parameters:
//!   `()`, no bytes; one: just `A`) into a buffer from `wask:alloc` and calls
//!   it. The export returns `ptr << 32 | len` of an output buffer: one status
//!   byte then a payload. Status [`STATUS_OK`]: the postcard encoding of `R`
//!   (of `T` for `Result<T, E>`). Status [`STATUS_ERR`]: the UTF-8 text of
//!   the `Err` (or of why the result did not encode). Status
//!   [`STATUS_BAD_ARGS`]: UTF-8 text saying the arguments did not decode.
//!   Buffers are leaked: an instance serves one call and is dropped.
//! - a record in the custom section `wask:tasks`: a varint length, then the
//!   postcard encoding of `(name: String, params: Vec<String>, result:
//!   String)`, the types as written in the source (`wask_proto` normalizes
//!   them).
//!
//! The crate itself exports `wask:alloc`, `(len: i32) -> i32` ([`alloc`]).
//! A panic calls the host import `wask.panic(ptr: i32, len: i32)` with the
//! message `"<payload> (at file:line:col)"`; `wasm32-wasip1` aborts on
//! panic, so the call then traps.

#![warn(missing_docs)]

/// Marks a function as a wask task; see the [crate docs](crate).
pub use wask_guest_macros::task;

/// The serde version wask-guest uses, for `#[derive(Serialize, Deserialize)]`
/// without a direct dependency (add `#[serde(crate = "wask_guest::serde")]`).
pub use serde;

/// Status byte: the payload is the postcard-encoded result.
pub const STATUS_OK: u8 = 0;
/// Status byte: the payload is the UTF-8 text of the task's error.
pub const STATUS_ERR: u8 = 1;
/// Status byte: the payload is UTF-8 text saying the arguments did not decode.
pub const STATUS_BAD_ARGS: u8 = 2;

/// The `wask:alloc` export: a buffer of `len` bytes for the host to write
/// a task's arguments into.
///
/// The buffer is never freed: the instance is dropped after one call.
#[cfg_attr(target_family = "wasm", unsafe(export_name = "wask:alloc"))]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(len));
    buffer.as_mut_ptr()
}

#[doc(hidden)]
pub mod __private {
    //! What the code generated by `#[task]` calls. Not a public API.

    use crate::{STATUS_BAD_ARGS, STATUS_ERR, STATUS_OK};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use std::fmt::Display;

    /// Runs a task whose result is serialized as is.
    pub fn run<A: DeserializeOwned, R: Serialize>(
        task: &str,
        input: &[u8],
        f: impl FnOnce(A) -> R,
    ) -> Vec<u8> {
        match decode::<A>(task, input) {
            Ok(args) => encode(task, &f(args)),
            Err(output) => output,
        }
    }

    /// Runs a task returning `Result<T, E>`: `Ok` is serialized, `Err` displayed.
    pub fn run_fallible<A: DeserializeOwned, T: Serialize, E: Display>(
        task: &str,
        input: &[u8],
        f: impl FnOnce(A) -> Result<T, E>,
    ) -> Vec<u8> {
        match decode::<A>(task, input) {
            Ok(args) => match f(args) {
                Ok(value) => encode(task, &value),
                Err(e) => text(STATUS_ERR, &e.to_string()),
            },
            Err(output) => output,
        }
    }

    /// Decodes the whole input as `A`; trailing bytes are refused, not
    /// ignored, since they mean the host and the guest disagree on types.
    fn decode<A: DeserializeOwned>(task: &str, input: &[u8]) -> Result<A, Vec<u8>> {
        match postcard::take_from_bytes::<A>(input) {
            Ok((args, [])) => Ok(args),
            Ok((_, rest)) => Err(text(
                STATUS_BAD_ARGS,
                &format!(
                    "the arguments of task {task} did not decode: {} unexpected bytes after them",
                    rest.len()
                ),
            )),
            Err(e) => Err(text(
                STATUS_BAD_ARGS,
                &format!("the arguments of task {task} did not decode: {e}"),
            )),
        }
    }

    fn encode<R: Serialize + ?Sized>(task: &str, value: &R) -> Vec<u8> {
        match postcard::to_extend(value, vec![STATUS_OK]) {
            Ok(output) => output,
            Err(e) => text(
                STATUS_ERR,
                &format!("the result of task {task} did not encode: {e}"),
            ),
        }
    }

    fn text(status: u8, message: &str) -> Vec<u8> {
        let mut output = Vec::with_capacity(1 + message.len());
        output.push(status);
        output.extend_from_slice(message.as_bytes());
        output
    }

    /// The host's argument buffer as a slice.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` must be readable and not written while the slice lives.
    pub unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if len == 0 {
            // The host may pass any pointer, even null, for no bytes.
            return &[];
        }
        // SAFETY: upheld by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// Leaks `output` and packs it as `ptr << 32 | len` for the host.
    pub fn leak(output: Vec<u8>) -> i64 {
        let output = std::mem::ManuallyDrop::new(output);
        // Pointers and lengths are 32 bits on wasm32; on a native build this
        // is never called by a host, so truncation does not matter there.
        (((output.as_ptr() as usize as u64) << 32) | (output.len() as u64 & 0xffff_ffff)) as i64
    }

    #[cfg(target_family = "wasm")]
    #[link(wasm_import_module = "wask")]
    unsafe extern "C" {
        #[link_name = "panic"]
        fn wask_panic(ptr: *const u8, len: usize);
    }

    /// Sends panic messages to the host (once per instance).
    pub fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| report_panic(&panic_message(info))))
        });
    }

    /// `"<payload> (at file:line:col)"`.
    pub fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
        let payload = info.payload_as_str().unwrap_or("Box<dyn Any>");
        match info.location() {
            Some(at) => format!("{payload} (at {}:{}:{})", at.file(), at.line(), at.column()),
            None => payload.to_string(),
        }
    }

    #[cfg(target_family = "wasm")]
    fn report_panic(message: &str) {
        // SAFETY: the host reads `len` bytes at `ptr` from this instance's memory.
        unsafe { wask_panic(message.as_ptr(), message.len()) }
    }

    #[cfg(not(target_family = "wasm"))]
    fn report_panic(message: &str) {
        eprintln!("wask task panicked: {message}");
    }
}
