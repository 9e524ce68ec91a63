//! Every limit and trap a task can run into, and the error it gets.

use super::*;

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
