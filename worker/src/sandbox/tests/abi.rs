//! The ABI between host and guest: results, arguments, status bytes,
//! which modules compile, and isolation between calls.

use super::*;

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
        cancel: None,
        on_check: None,
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
                cancel: None,
                on_check: None,
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
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Sandbox>();
    send_sync::<Compiled>();
    send_sync::<RunOutput>();
}
