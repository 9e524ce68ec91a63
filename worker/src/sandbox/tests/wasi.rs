//! The WASI subset: output, random, clocks, sleeping, refusals.

use super::*;

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
fn every_wasi_function_is_defined() {
    let compiled = sandbox().compile(&returning("\x00")).unwrap();
    let tier = crate::sandbox::default_tier();
    let linked = compiled.inner.linked(&sandbox().tiers, tier).unwrap();
    let engine_and_linker = sandbox().tiers.get(tier).unwrap();
    let limiter = limits::CallLimiter::new(1 << 16, 1, 1);
    let call = Call::new(limiter, linked.memory, limits(), [0; 32], Instant::now());
    let mut store = wasmtime::Store::new(&engine_and_linker.engine, call);
    for name in WASI_FUNCTIONS {
        assert!(
            engine_and_linker
                .linker
                .get(&mut store, WASI_MODULE, name)
                .is_ok(),
            "{name} is not defined"
        );
    }
    let defined: Vec<String> = engine_and_linker
        .linker
        .iter(&mut store)
        .map(|(module, name, _)| format!("{module}.{name}"))
        .collect();
    assert_eq!(defined.len(), WASI_FUNCTIONS.len() + 1, "{defined:?}");
    assert!(defined.contains(&"wask.panic".to_string()));
}
