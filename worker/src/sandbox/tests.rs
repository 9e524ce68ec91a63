//! Sandbox tests with hand-written guests: results, every failure mode, the
//! WASI subset, and isolation between calls.

use super::test_guest::{module, packed, with_tasks};
use super::wasi::REALTIME_START_NS;
use super::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wask_proto::error::Limit;
use wask_proto::module::{WASI_FUNCTIONS, WASI_MODULE};

/// One sandbox shared by the tests (tests run in parallel on it, as the
/// worker's threads do).
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            max_instances: 16,
            memory_ceiling: 64 << 20,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(1),
        })
        .expect("sandbox")
    })
}

fn limits() -> ResolvedLimits {
    ResolvedLimits {
        time_ms: 10_000,
        memory_bytes: 16 << 20,
        result_bytes: 1 << 20,
        output_bytes: 1 << 20,
    }
}

/// Runs task 0 of `wasm` with `args` under `limits`.
fn run_with(wasm: &[u8], args: &[u8], limits: ResolvedLimits, seed: [u8; 32]) -> RunOutput {
    let compiled = sandbox().compile(wasm).expect("module compiles");
    sandbox().run(
        &compiled,
        RunRequest {
            func: 0,
            args,
            limits,
            seed,
        },
    )
}

fn run(wasm: &[u8]) -> RunOutput {
    run_with(wasm, &[], limits(), [0; 32])
}

/// A module with one task `t` whose body is `body` (it must leave an i64).
fn task(imports: &str, body: &str) -> Vec<u8> {
    task_with(imports, body, "")
}

/// [`task`], with module-level `items` (data segments) after the function.
fn task_with(imports: &str, body: &str, items: &str) -> Vec<u8> {
    let func = format!(
        r#"(func (export "wask:task:t") (param $p i32) (param $n i32) (result i64) {body}) {items}"#
    );
    module(imports, 1, &func, &["t"])
}

/// A task returning the bytes `output` (status byte included), placed at 100.
fn returning(output: &str) -> Vec<u8> {
    let len = output.len() as u32;
    let escaped: String = output.bytes().map(|b| format!("\\{b:02x}")).collect();
    task_with(
        "",
        &format!("(i64.const {})", packed(100, len)),
        &format!(r#"(data (i32.const 100) "{escaped}")"#),
    )
}

/// Import declarations of WASI functions, all returning an errno.
fn wasi_imports(funcs: &[(&str, &str)]) -> String {
    funcs
        .iter()
        .map(|(name, params)| {
            format!(r#"(import "wasi_snapshot_preview1" "{name}" (func ${name} (param {params}) (result i32)))"#)
        })
        .collect()
}

#[test]
fn a_task_returns_its_value() {
    let wasm = module(
        "",
        1,
        &format!(
            r#"(data (i32.const 100) "\00\2a\2b")
               (func (export "wask:task:answer") (param i32 i32) (result i64) (i64.const {}))
               (func (export "wask:task:other") (param i32 i32) (result i64) (i64.const {}))"#,
            packed(100, 3),
            packed(101, 2),
        ),
        &["answer", "other"],
    );
    let compiled = sandbox().compile(&wasm).unwrap();
    assert_eq!(compiled.info().tasks[0].name, "answer");
    let req = |func| RunRequest {
        func,
        args: &[],
        limits: limits(),
        seed: [0; 32],
    };
    let out = sandbox().run(&compiled, req(0));
    assert_eq!(out.result, Ok(vec![0x2a, 0x2b]));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(
        sandbox().run(&compiled, req(1)).result,
        Err(TaskError::Abi {
            message: "the task's output has an unknown status byte 42".into()
        })
    );
    let missing = sandbox().run(&compiled, req(2)).result;
    assert!(
        matches!(missing, Err(TaskError::Abi { message }) if message.contains("task number 2"))
    );
}

#[test]
fn arguments_reach_the_task() {
    let wasm = task(
        "",
        r#"(local $out i32)
           (local.set $out (call $alloc (i32.add (local.get $n) (i32.const 1))))
           (i32.store8 (local.get $out) (i32.const 0))
           (memory.copy (i32.add (local.get $out) (i32.const 1)) (local.get $p) (local.get $n))
           (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
                   (i64.extend_i32_u (i32.add (local.get $n) (i32.const 1))))"#,
    );
    assert_eq!(
        run_with(&wasm, b"hello", limits(), [0; 32]).result,
        Ok(b"hello".to_vec())
    );
    assert_eq!(run_with(&wasm, b"", limits(), [0; 32]).result, Ok(vec![]));
}

#[test]
fn status_bytes_map_to_errors() {
    assert_eq!(
        run(&returning("\x01oops")).result,
        Err(TaskError::Failed {
            message: "oops".into()
        })
    );
    let bad_args = run(&returning("\x02expected i64")).result;
    assert!(
        matches!(&bad_args, Err(TaskError::Abi { message }) if message.contains("expected i64")),
        "{bad_args:?}"
    );
    let empty = task("", &format!("(i64.const {})", packed(100, 0)));
    assert!(matches!(run(&empty).result, Err(TaskError::Abi { .. })));
}

#[test]
fn out_of_bounds_output_is_an_abi_error() {
    let wasm = task("", &format!("(i64.const {})", packed(0xffff_0000, 10)));
    let out = run(&wasm).result;
    assert!(
        matches!(&out, Err(TaskError::Abi { message }) if message.contains("outside memory")),
        "{out:?}"
    );
    let straddling = task("", &format!("(i64.const {})", packed(65530, 10)));
    assert!(matches!(
        run(&straddling).result,
        Err(TaskError::Abi { .. })
    ));
}

#[test]
fn a_result_over_its_limit_is_refused() {
    let wasm = task("", &format!("(i64.const {})", packed(100, 101)));
    let limits = ResolvedLimits {
        result_bytes: 10,
        ..limits()
    };
    assert_eq!(
        run_with(&wasm, &[], limits, [0; 32]).result,
        Err(TaskError::LimitExceeded {
            limit: Limit::ResultSize,
            size: 100,
            max: 10
        })
    );
    let limits = ResolvedLimits {
        result_bytes: 100,
        ..limits
    };
    assert_eq!(
        run_with(&wasm, &[], limits, [0; 32]).result,
        Ok(vec![0; 100])
    );
}

#[test]
fn an_infinite_loop_times_out_and_the_sandbox_carries_on() {
    let wasm = task("", "(loop $spin (br $spin)) (unreachable)");
    let started = Instant::now();
    let out = run_with(
        &wasm,
        &[],
        ResolvedLimits {
            time_ms: 50,
            ..limits()
        },
        [0; 32],
    );
    assert_eq!(out.result, Err(TaskError::Timeout { limit_ms: 50 }));
    assert!(
        out.elapsed >= Duration::from_millis(50),
        "{:?}",
        out.elapsed
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(run(&returning("\x00ok")).result, Ok(b"ok".to_vec()));
}

#[test]
fn a_start_function_that_loops_times_out() {
    let wasm = module(
        "",
        1,
        r#"(func $spin (loop $l (br $l)))
           (start $spin)
           (func (export "wask:task:t") (param i32 i32) (result i64) (i64.const 0))"#,
        &["t"],
    );
    let out = run_with(
        &wasm,
        &[],
        ResolvedLimits {
            time_ms: 20,
            ..limits()
        },
        [0; 32],
    );
    assert_eq!(out.result, Err(TaskError::Timeout { limit_ms: 20 }));
}

#[test]
fn growing_memory_past_the_limit_is_a_memory_error() {
    let grow = |pages: u32| {
        task(
            "",
            &format!(
                r#"(if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1)) (then unreachable))
                   (i64.const {})"#,
                packed(100, 1)
            ),
        )
    };
    let limits = ResolvedLimits {
        memory_bytes: 4 << 16,
        ..limits()
    };
    assert_eq!(run_with(&grow(3), &[], limits, [0; 32]).result, Ok(vec![]));
    assert_eq!(
        run_with(&grow(4), &[], limits, [0; 32]).result,
        Err(TaskError::MemoryLimit {
            limit_bytes: 4 << 16
        })
    );

    // A guest may cope with the refusal (memory.grow returns -1 as the spec
    // allows); then it is not an error.
    let coping = task(
        "",
        &format!(
            "(drop (memory.grow (i32.const 100))) (i64.const {})",
            packed(100, 1)
        ),
    );
    assert_eq!(run_with(&coping, &[], limits, [0; 32]).result, Ok(vec![]));
}

#[test]
fn initial_memory_over_the_limit_is_a_memory_error() {
    let wasm = module(
        "",
        4,
        &format!(
            r#"(func (export "wask:task:t") (param i32 i32) (result i64) (i64.const {}))"#,
            packed(100, 1)
        ),
        &["t"],
    );
    let limits = ResolvedLimits {
        memory_bytes: 1 << 16,
        ..limits()
    };
    assert_eq!(
        run_with(&wasm, &[], limits, [0; 32]).result,
        Err(TaskError::MemoryLimit {
            limit_bytes: 1 << 16
        })
    );
    // The limit is capped at the sandbox's memory ceiling.
    let huge = task("", "(drop (memory.grow (i32.const 1025))) (unreachable)");
    let limits = ResolvedLimits {
        memory_bytes: 1 << 40,
        ..limits
    };
    assert_eq!(
        run_with(&huge, &[], limits, [0; 32]).result,
        Err(TaskError::MemoryLimit {
            limit_bytes: 64 << 20
        })
    );
}

#[test]
fn unbounded_recursion_overflows_the_stack() {
    let wasm = module(
        "",
        1,
        r#"(func $down (export "wask:task:t") (param i32 i32) (result i64)
             (call $down (local.get 0) (local.get 1)))"#,
        &["t"],
    );
    assert_eq!(run(&wasm).result, Err(TaskError::StackOverflow));
}

#[test]
fn running_out_of_shadow_stack_overflows_the_stack() {
    // As rustc lays it out: global 0 is the stack pointer, starting at 1024
    // (the stack comes first in memory); each frame stores below it,
    // unchecked. The frame is written with memory.fill, as rustc does for
    // arrays: that traps without a fault address.
    let frames = |write: &str| {
        with_tasks(
            wat::parse_str(format!(
                r#"(module
                     (global $__stack_pointer (mut i32) (i32.const 1024))
                     (memory (export "memory") 1)
                     (func (export "wask:alloc") (param i32) (result i32) (i32.const 2048))
                     (func $down (export "wask:task:t") (param i32 i32) (result i64)
                       (global.set $__stack_pointer (i32.sub (global.get $__stack_pointer) (i32.const 256)))
                       {write}
                       (call $down (local.get 0) (local.get 1))))"#
            ))
            .unwrap(),
            &["t"],
        )
    };
    let fill = frames("(memory.fill (global.get $__stack_pointer) (i32.const 1) (i32.const 256))");
    assert_eq!(run(&fill).result, Err(TaskError::StackOverflow));
    let store = frames("(i64.store offset=8 (global.get $__stack_pointer) (i64.const 1))");
    assert_eq!(run(&store).result, Err(TaskError::StackOverflow));
    // A wild access elsewhere is an ordinary trap, with its address.
    let wild = task(
        "",
        "(i32.store (i32.const 0x20000) (i32.const 1)) (i64.const 0)",
    );
    let out = run(&wild).result;
    assert!(
        matches!(&out, Err(TaskError::Trap { message }) if message.contains("out of bounds memory access at wasm address 0x20000 (memory is 0x10000 bytes)")),
        "{out:?}"
    );
}

#[test]
fn a_reported_panic_is_a_panic() {
    let wasm = task_with(
        r#"(import "wask" "panic" (func $panic (param i32 i32)))"#,
        "(call $panic (i32.const 100) (i32.const 4)) (unreachable)",
        r#"(data (i32.const 100) "boom")"#,
    );
    assert_eq!(
        run(&wasm).result,
        Err(TaskError::Panic {
            message: "boom".into()
        })
    );
    // A message past the end of memory is replaced, not a host fault.
    let wild = task(
        r#"(import "wask" "panic" (func $panic (param i32 i32)))"#,
        r#"(call $panic (i32.const -8) (i32.const 100)) (unreachable)"#,
    );
    assert!(
        matches!(run(&wild).result, Err(TaskError::Panic { message }) if message.contains("outside"))
    );
}

#[test]
fn a_bare_trap_is_a_trap() {
    let out = run(&task("", "(unreachable)")).result;
    assert!(
        matches!(&out, Err(TaskError::Trap { message }) if message.contains("unreachable")),
        "{out:?}"
    );
    let out = run(&task(
        "",
        "(i64.extend_i32_s (i32.div_u (i32.const 1) (i32.const 0)))",
    ))
    .result;
    assert!(
        matches!(&out, Err(TaskError::Trap { message }) if message.contains("divide by zero")),
        "{out:?}"
    );
}

#[test]
fn output_is_captured_and_bounded() {
    let imports = wasi_imports(&[("fd_write", "i32 i32 i32 i32")]);
    // iovec at 0: (buf 100, len 5); at 8: (buf 105, len 3)
    let wasm = task_with(
        &imports,
        &format!(
            r#"(i64.store (i32.const 0) (i64.const 0x0000000500000064))
               (i64.store (i32.const 8) (i64.const 0x0000000300000069))
               (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
               (drop (call $fd_write (i32.const 2) (i32.const 8) (i32.const 1) (i32.const 16)))
               (i64.const {})"#,
            packed(200, 1)
        ),
        r#"(data (i32.const 100) "\00ellobad")"#,
    );
    let out = run(&wasm);
    assert_eq!(out.result, Ok(vec![]));
    assert_eq!(out.stdout, b"\0ello");
    assert_eq!(out.stderr, b"bad");

    let flood = task(
        &imports,
        r#"(i64.store (i32.const 0) (i64.const 0x0000006400000064))
           (loop $again
             (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
             (br $again))
           (unreachable)"#,
    );
    let out = run_with(
        &flood,
        &[],
        ResolvedLimits {
            output_bytes: 1000,
            ..limits()
        },
        [0; 32],
    );
    assert_eq!(
        out.result,
        Err(TaskError::LimitExceeded {
            limit: Limit::Output,
            size: 1100,
            max: 1000
        })
    );
    assert_eq!(out.stdout.len(), 1000);
}

#[test]
fn random_is_the_seeded_blake3_stream() {
    let imports = wasi_imports(&[("random_get", "i32 i32")]);
    let wasm = task(
        &imports,
        &format!(
            r#"(drop (call $random_get (i32.const 101) (i32.const 16)))
               (drop (call $random_get (i32.const 117) (i32.const 16)))
               (i64.const {})"#,
            packed(100, 33)
        ),
    );
    let seed = [7u8; 32];
    let first = run_with(&wasm, &[], limits(), seed).result.unwrap();
    let mut expected = [0u8; 32];
    blake3::Hasher::new_keyed(&seed)
        .finalize_xof()
        .fill(&mut expected);
    assert_eq!(first, expected);
    assert_eq!(run_with(&wasm, &[], limits(), seed).result.unwrap(), first);
    assert_ne!(
        run_with(&wasm, &[], limits(), [8u8; 32]).result.unwrap(),
        first
    );
}

#[test]
fn clocks_are_virtual_and_advance_only_by_sleeping() {
    let imports = wasi_imports(&[
        ("clock_time_get", "i32 i64 i32"),
        ("poll_oneoff", "i32 i32 i32 i32"),
    ]);
    // Subscription at 200: userdata 7, clock (tag 0), monotonic (id 1),
    // relative timeout 1 ms. Event at 300, count at 340.
    let wasm = task(
        &imports,
        &format!(
            r#"(drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 101)))
               (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 109)))
               (i64.store (i32.const 200) (i64.const 7))
               (i64.store (i32.const 216) (i64.const 1))
               (i64.store (i32.const 224) (i64.const 1000000))
               (i32.store8 (i32.const 181) (call $poll_oneoff (i32.const 200) (i32.const 300) (i32.const 1) (i32.const 340)))
               (drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 117)))
               (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 125)))
               (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 133)))
               (i64.const {})"#,
            packed(100, 244)
        ),
    );
    let out = run(&wasm).result.unwrap();
    let at = |addr: usize| &out[addr - 101..];
    let u64_at = |addr: usize| u64::from_le_bytes(at(addr)[..8].try_into().unwrap());
    assert_eq!(u64_at(101), REALTIME_START_NS);
    assert_eq!(u64_at(109), 0);
    assert_eq!(at(181)[0], 0, "poll_oneoff errno");
    assert_eq!(u64_at(117), REALTIME_START_NS + 1_000_000);
    assert_eq!(u64_at(125), 1_000_000);
    assert_eq!(
        u64_at(133),
        1_000_000,
        "reading the clock does not advance it"
    );
    assert_eq!(u64_at(300), 7, "event userdata");
    assert_eq!(&at(308)[..3], &[0, 0, 0], "no error, clock event");
    assert_eq!(u32::from_le_bytes(at(340)[..4].try_into().unwrap()), 1);
    // The same bytes every time.
    assert_eq!(run(&wasm).result.unwrap(), out);
}

#[test]
fn a_sleep_past_the_time_limit_times_out_at_once() {
    let imports = wasi_imports(&[("poll_oneoff", "i32 i32 i32 i32")]);
    let wasm = task(
        &imports,
        r#"(i64.store (i32.const 216) (i64.const 1))
           (i64.store (i32.const 224) (i64.const 10000000000))
           (drop (call $poll_oneoff (i32.const 200) (i32.const 300) (i32.const 1) (i32.const 340)))
           (i64.const 0)"#,
    );
    let started = Instant::now();
    let out = run_with(
        &wasm,
        &[],
        ResolvedLimits {
            time_ms: 100,
            ..limits()
        },
        [0; 32],
    );
    assert_eq!(out.result, Err(TaskError::Timeout { limit_ms: 100 }));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn polling_an_fd_does_not_sleep() {
    let imports = wasi_imports(&[("poll_oneoff", "i32 i32 i32 i32")]);
    // A 10 s clock and a read on fd 0 (userdata 9): the fd fires at once with EBADF.
    let wasm = task(
        &imports,
        &format!(
            r#"(i64.store (i32.const 216) (i64.const 1))
               (i64.store (i32.const 224) (i64.const 10000000000))
               (i64.store (i32.const 248) (i64.const 9))
               (i32.store8 (i32.const 256) (i32.const 1))
               (i32.store8 (i32.const 181) (call $poll_oneoff (i32.const 200) (i32.const 300) (i32.const 2) (i32.const 364)))
               (i64.const {})"#,
            packed(100, 268)
        ),
    );
    let started = Instant::now();
    let out = run(&wasm).result.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let at = |addr: usize| &out[addr - 101..];
    assert_eq!(at(181)[0], 0);
    assert_eq!(
        u32::from_le_bytes(at(364)[..4].try_into().unwrap()),
        1,
        "one event"
    );
    assert_eq!(at(300)[0], 9, "userdata");
    assert_eq!(&at(308)[..3], &[8, 0, 1], "EBADF, fd_read");
}

#[test]
fn refused_wasi_calls_return_errnos() {
    let checks: &[(&str, &str, &str, u8)] = &[
        (
            "fd_prestat_get",
            "i32 i32",
            "(i32.const 3) (i32.const 400)",
            8,
        ),
        (
            "path_open",
            "i32 i32 i32 i32 i32 i64 i64 i32 i32",
            "(i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 400)",
            76,
        ),
        (
            "sock_send",
            "i32 i32 i32 i32 i32",
            "(i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 400)",
            58,
        ),
        ("proc_raise", "i32", "(i32.const 9)", 52),
        (
            "random_get",
            "i32 i32",
            "(i32.const -16) (i32.const 100)",
            21,
        ),
        (
            "fd_write",
            "i32 i32 i32 i32",
            "(i32.const 5) (i32.const 0) (i32.const 0) (i32.const 400)",
            8,
        ),
        (
            "fd_read",
            "i32 i32 i32 i32",
            "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 408)",
            0,
        ),
        (
            "args_sizes_get",
            "i32 i32",
            "(i32.const 400) (i32.const 404)",
            0,
        ),
        (
            "environ_sizes_get",
            "i32 i32",
            "(i32.const -2) (i32.const 404)",
            21,
        ),
        (
            "clock_time_get",
            "i32 i64 i32",
            "(i32.const 99) (i64.const 0) (i32.const 400)",
            28,
        ),
        (
            "fd_fdstat_get",
            "i32 i32",
            "(i32.const 1) (i32.const 416)",
            0,
        ),
        ("fd_close", "i32", "(i32.const 1)", 8),
        (
            "poll_oneoff",
            "i32 i32 i32 i32",
            "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
            28,
        ),
        ("sched_yield", "", "", 0),
    ];
    let imports = wasi_imports(
        &checks
            .iter()
            .map(|(name, params, _, _)| (*name, *params))
            .collect::<Vec<_>>(),
    );
    let calls: String = checks
        .iter()
        .enumerate()
        .map(|(i, (name, _, args, _))| {
            format!(
                "(i32.store8 (i32.const {}) (call ${name} {args}))\n",
                101 + i
            )
        })
        .collect();
    // The fd_fdstat_get result lands at 416 (filetype), within the output.
    let wasm = task(
        &imports,
        &format!("{calls} (i64.const {})", packed(100, 320)),
    );
    let out = run(&wasm).result.unwrap();
    for (i, (name, _, _, errno)) in checks.iter().enumerate() {
        assert_eq!(out[i], *errno, "{name}");
    }
    assert_eq!(out[416 - 101], 2, "stdout is a character device");
}

#[test]
fn proc_exit_ends_the_task_with_a_trap() {
    let wasm = task(
        r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#,
        "(call $exit (i32.const 3)) (unreachable)",
    );
    assert_eq!(
        run(&wasm).result,
        Err(TaskError::Trap {
            message: "guest called proc_exit(3)".into()
        })
    );
}

#[test]
fn each_call_starts_from_a_fresh_instance() {
    let wasm = module(
        "",
        1,
        &format!(
            r#"(global $calls (mut i32) (i32.const 0))
               (func (export "wask:task:t") (param i32 i32) (result i64)
                 (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
                 (i32.store (i32.const 201) (i32.add (i32.load (i32.const 201)) (i32.const 1)))
                 (i32.store (i32.const 205) (global.get $calls))
                 (i64.const {}))"#,
            packed(200, 9)
        ),
        &["t"],
    );
    let compiled = sandbox().compile(&wasm).unwrap();
    for _ in 0..3 {
        let out = sandbox().run(
            &compiled,
            RunRequest {
                func: 0,
                args: &[],
                limits: limits(),
                seed: [0; 32],
            },
        );
        assert_eq!(out.result, Ok(vec![1, 0, 0, 0, 1, 0, 0, 0]));
    }
}

#[test]
fn modules_importing_anything_else_are_rejected() {
    let wasm = task(r#"(import "env" "foo" (func $foo))"#, "(i64.const 0)");
    let err = sandbox().compile(&wasm).unwrap_err();
    assert!(
        matches!(&err, TaskError::ModuleRejected { reason } if reason.contains("env.foo")),
        "{err:?}"
    );

    // A WASI name with the wrong signature fails to link.
    let wasm = task(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func $w (param i32) (result i32)))"#,
        "(i64.const 0)",
    );
    let err = sandbox().compile(&wasm).unwrap_err();
    assert!(
        matches!(&err, TaskError::ModuleRejected { reason } if reason.contains("fd_write")),
        "{err:?}"
    );
}

#[test]
fn malformed_modules_are_rejected() {
    assert!(matches!(
        sandbox().compile(b"\0asm\x01\0\0\0garbage"),
        Err(TaskError::ModuleRejected { .. })
    ));
    assert!(matches!(
        sandbox().compile(b""),
        Err(TaskError::ModuleRejected { .. })
    ));
    // Valid wasm past WebAssembly 2.0 (a tail call) is refused too.
    let wasm = with_tasks(
        wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "wask:alloc") (param i32) (result i32) (i32.const 0))
                 (func $t (export "wask:task:t") (param i32 i32) (result i64) (return_call $t (i32.const 0) (i32.const 0))))"#,
        )
        .unwrap(),
        &["t"],
    );
    assert!(matches!(
        sandbox().compile(&wasm),
        Err(TaskError::ModuleRejected { .. })
    ));
}

#[test]
fn every_wasi_function_is_defined() {
    let compiled = sandbox().compile(&returning("\x00")).unwrap();
    let limiter = limits::CallLimiter::new(1 << 16, 1, 1);
    let call = Call::new(
        limiter,
        compiled.inner.memory,
        limits(),
        [0; 32],
        Instant::now(),
    );
    let mut store = wasmtime::Store::new(&sandbox().engine, call);
    for name in WASI_FUNCTIONS {
        assert!(
            sandbox().linker.get(&mut store, WASI_MODULE, name).is_ok(),
            "{name} is not defined"
        );
    }
    let defined: Vec<String> = sandbox()
        .linker
        .iter(&mut store)
        .map(|(module, name, _)| format!("{module}.{name}"))
        .collect();
    assert_eq!(defined.len(), WASI_FUNCTIONS.len() + 1, "{defined:?}");
    assert!(defined.contains(&"wask.panic".to_string()));
}

#[test]
fn invalid_configurations_are_refused() {
    let bad = |cfg: SandboxConfig| Sandbox::new(cfg).err().map(|e| e.to_string());
    assert!(
        bad(SandboxConfig {
            max_instances: 0,
            ..SandboxConfig::default()
        })
        .is_some()
    );
    assert!(
        bad(SandboxConfig {
            epoch_tick: Duration::ZERO,
            ..SandboxConfig::default()
        })
        .is_some()
    );
    assert!(
        bad(SandboxConfig {
            memory_ceiling: 8 << 30,
            ..SandboxConfig::default()
        })
        .is_some()
    );
}

#[test]
fn scratch_real_guests() {
    let dir = "/work/main/target/wasm-guests/wasm32-wasip1/release";
    let faulty = sandbox()
        .compile(&std::fs::read(format!("{dir}/faulty.wasm")).unwrap())
        .unwrap();
    let math = sandbox()
        .compile(&std::fs::read(format!("{dir}/math.wasm")).unwrap())
        .unwrap();
    let go = |m: &Compiled, name: &str, args: Vec<u8>, limits: ResolvedLimits| {
        let (func, _) = m.info().task(name).unwrap();
        let out = sandbox().run(
            m,
            RunRequest {
                func,
                args: &args,
                limits,
                seed: [1; 32],
            },
        );
        println!(
            "{name}: {:?} stdout={} stderr={:?} elapsed={:?}",
            out.result.as_ref().map(|v| if v.len() > 40 {
                format!("{} bytes", v.len())
            } else {
                format!("{v:?}")
            }),
            out.stdout.len(),
            String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(300)]),
            out.elapsed
        );
        out
    };
    let l = limits();
    go(
        &faulty,
        "boom",
        postcard::to_allocvec(&"kaboom").unwrap(),
        l,
    );
    go(&faulty, "fail", postcard::to_allocvec(&"nope").unwrap(), l);
    go(&faulty, "spin", vec![], ResolvedLimits { time_ms: 30, ..l });
    go(
        &faulty,
        "grow",
        postcard::to_allocvec(&1_000_000u64).unwrap(),
        ResolvedLimits {
            memory_bytes: 8 << 20,
            ..l
        },
    );
    go(&faulty, "recurse", postcard::to_allocvec(&0u64).unwrap(), l);
    go(
        &faulty,
        "sleep_ms",
        postcard::to_allocvec(&3u64).unwrap(),
        l,
    );
    go(
        &faulty,
        "sleep_ms",
        postcard::to_allocvec(&300u64).unwrap(),
        ResolvedLimits { time_ms: 100, ..l },
    );
    go(
        &faulty,
        "big",
        postcard::to_allocvec(&100_000u64).unwrap(),
        ResolvedLimits {
            result_bytes: 1000,
            ..l
        },
    );
    go(
        &faulty,
        "read_file",
        postcard::to_allocvec(&"/etc/passwd").unwrap(),
        l,
    );
    go(&faulty, "env_and_args", vec![], l);
    go(&faulty, "now_and_random", vec![], l);
    go(&faulty, "print", postcard::to_allocvec(&100u64).unwrap(), l);
    go(
        &faulty,
        "print",
        postcard::to_allocvec(&100_000u64).unwrap(),
        ResolvedLimits {
            output_bytes: 1000,
            ..l
        },
    );
    go(
        &faulty,
        "divide",
        postcard::to_allocvec(&(1i32, 0i32)).unwrap(),
        l,
    );
    go(&faulty, "boom", vec![0xff, 0xff], l);
    go(&math, "inc", postcard::to_allocvec(&41i64).unwrap(), l);
    go(&math, "random_u64", vec![], l);
    go(
        &math,
        "mean",
        postcard::to_allocvec(&vec![1.0f64, 2.0]).unwrap(),
        l,
    );
    for t in &faulty.info().tasks {
        println!("{}", t.display());
    }
    let args = postcard::to_allocvec(&41i64).unwrap();
    let (func, _) = math.info().task("inc").unwrap();
    for round in 0..3 {
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            let out = sandbox().run(
                &math,
                RunRequest {
                    func,
                    args: &args,
                    limits: l,
                    seed: [1; 32],
                },
            );
            assert!(out.result.is_ok());
        }
        println!("round {round}: {:?} per run", t.elapsed() / n);
    }
}
