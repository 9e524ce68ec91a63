//! Per-task stack limits (an engine per tier) and table limits.

use super::*;

/// A task that recurses `depth` calls deep, keeping a value live across
/// each call, then returns the status byte 0 and the `u8` 7.
fn recursing(depth: u32) -> Vec<u8> {
    task_with(
        "",
        &format!(
            "(drop (call $down (i32.const {depth}))) (i64.const {})",
            packed(100, 2)
        ),
        r#"(func $down (param $n i32) (result i32)
             (if (result i32) (i32.eqz (local.get $n))
               (then (i32.const 0))
               (else (i32.add (local.get $n)
                              (call $down (i32.sub (local.get $n) (i32.const 1)))))))
           (data (i32.const 100) "\00\07")"#,
    )
}

fn with_stack(stack_bytes: u64) -> ResolvedLimits {
    ResolvedLimits {
        stack_bytes,
        ..limits()
    }
}

/// Runs on a thread with a stack as large as a worker's wasm threads have.
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(wask_proto::limits::MAX_STACK as usize + (4 << 20))
        .spawn(f)
        .expect("spawning a thread")
        .join()
        .expect("the thread")
}

#[test]
fn each_task_gets_its_own_stack_limit() {
    let wasm = recursing(100_000);
    let outcome = |stack: u64| {
        let wasm = wasm.clone();
        on_big_stack(move || run_with(&wasm, &[], with_stack(stack), [0; 32]).result)
    };
    // The same module, in the same sandbox, at three limits.
    assert_eq!(outcome(64 << 10), Err(TaskError::StackOverflow));
    assert_eq!(outcome(512 << 10), Err(TaskError::StackOverflow));
    assert_eq!(outcome(8 << 20), Ok(vec![7]));
    // A shallow recursion fits the smallest tier.
    let shallow = recursing(100);
    assert_eq!(
        on_big_stack(move || run_with(&shallow, &[], with_stack(0), [0; 32]).result),
        Ok(vec![7])
    );
}

#[test]
fn a_refused_table_grow_is_a_table_limit_error() {
    let max = super::super::engine::max_table_elements() as u64;
    // Grows the table past the limit; a refused grow returns -1, on which
    // the task traps.
    let wasm = task_with(
        "",
        "(if (i32.eq (table.grow $t (ref.null func) (i32.const 100000000)) (i32.const -1))
           (then unreachable))
         (i64.const 0)",
        "(table $t 1 funcref)",
    );
    assert_eq!(
        run(&wasm).result,
        Err(TaskError::LimitExceeded {
            limit: wask_proto::error::Limit::TableElements,
            size: 100_000_001,
            max,
        })
    );
    assert_eq!(
        TaskError::LimitExceeded {
            limit: wask_proto::error::Limit::TableElements,
            size: 100_000_001,
            max: 10_000,
        }
        .to_string(),
        "task exceeded its table size limit (100000001 > 10000 elements)"
    );
}
