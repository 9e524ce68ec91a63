//! Compilation is bounded: a worker process compiles each module in a child
//! process of its own binary, under a deadline and an address-space limit.
//! A module that would take cranelift seconds is refused with an error
//! naming the limit, and the worker goes on serving.
//!
//! Needs the binaries built: `cargo test --workspace` does it.

use std::time::Duration;
use wask::{Client, Error};
use wask_proto::TaskError;
use wask_proto::limits::ResolvedLimits;
use wask_tests::MATH;
use wask_tests::procs::{Host, Proc, START_TIMEOUT, TempDir, bin, start_scheduler, worker_command};
use wask_tests::wasm::{sig, with_tasks};
use wask_worker::sandbox::{Compiler, RunRequest, Sandbox, SandboxConfig};

/// A task whose one function has `n` locals, each live across its own loop:
/// a few hundred kilobytes of valid wasm that takes cranelift's register
/// allocator seconds (superlinear in `n`: 2000 take 0.35 s, 5000 take 3.2 s
/// on the machine this was written on).
fn slow_to_compile(n: usize) -> Vec<u8> {
    let locals: String = (0..n).map(|i| format!("(local $x{i} i32)")).collect();
    let sets: String = (0..n)
        .map(|i| format!("(local.set $x{i} (i32.add (local.get 0) (i32.const {i})))"))
        .collect();
    let loops: String = (0..n)
        .map(|i| {
            format!(
                "(loop $l (local.set 0 (i32.add (local.get 0) (local.get $x{i}))) \
                 (br_if $l (i32.lt_u (local.get 0) (i32.const 10))))"
            )
        })
        .collect();
    let uses: String = (0..n)
        .map(|i| format!("(local.set 0 (i32.add (local.get 0) (local.get $x{i})))"))
        .collect();
    let wat = format!(
        r#"(module
             (memory (export "memory") 1)
             (data (i32.const 2048) "\00\2a")
             (func (export "wask:alloc") (param i32) (result i32) (i32.const 1024))
             (func (export "wask:task:slow") (param i32 i32) (result i64) {locals}
               {sets} {loops} {uses}
               (i64.const 0x0000080000000002)))"#
    );
    with_tasks(&wat, &[sig("slow", &[], "u8")])
}

/// An address-space limit that compiles ordinary modules and not
/// `slow_to_compile(MEMORY_HUNGRY)`.
const TIGHT_MEMORY: u64 = 64 << 20;
/// Locals of a module whose compilation needs more than [`TIGHT_MEMORY`].
const MEMORY_HUNGRY: usize = 3000;
/// The refusal of a module that needs more than [`TIGHT_MEMORY`].
const TIGHT_MEMORY_REFUSAL: &str =
    "compilation needed more than the worker's limit of 64 MiB of memory";

fn sandbox(time_limit: Duration, memory_limit: u64) -> Sandbox {
    Sandbox::new(SandboxConfig {
        max_instances: 2,
        compiler: Compiler::Subprocess {
            program: bin("wask-worker"),
            args: vec!["--compile-module".into()],
            time_limit,
            memory_limit,
        },
        ..SandboxConfig::default()
    })
    .expect("a sandbox")
}

fn rejection(result: Result<impl std::fmt::Debug, TaskError>) -> String {
    match result {
        Err(TaskError::ModuleRejected { reason }) => reason,
        other => panic!("expected a rejected module, got {other:?}"),
    }
}

#[test]
fn the_compile_process_compiles_and_is_bounded() {
    let sandbox = sandbox(Duration::from_secs(1), 2 << 30);
    let math = std::fs::read(MATH).expect("math.wasm");
    let run_inc = |sandbox: &Sandbox| {
        let compiled = sandbox.compile(&math).expect("math.wasm compiles");
        let inc = compiled
            .info()
            .tasks
            .iter()
            .position(|t| t.name == "inc")
            .expect("inc") as u32;
        let out = sandbox.run(
            &compiled,
            RunRequest {
                func: inc,
                args: &[20], // postcard of 10i64 (zigzag)
                limits: ResolvedLimits::default(),
                seed: [0; 32],
                cancel: None,
                on_check: None,
            },
        );
        assert_eq!(out.result, Ok(vec![22])); // 11
    };
    // A real module compiles in the child and runs here.
    run_inc(&sandbox);

    // Past the deadline, the child is killed and the module refused.
    let reason = rejection(sandbox.compile(&slow_to_compile(6000)));
    assert!(
        reason.contains("compilation took longer than the worker's limit of 1.0 s"),
        "{reason}"
    );
    run_inc(&sandbox);

    // Under too small an address space, the child cannot compile.
    let tight = self::sandbox(Duration::from_secs(60), TIGHT_MEMORY);
    let reason = rejection(tight.compile(&slow_to_compile(MEMORY_HUNGRY)));
    assert_eq!(reason, TIGHT_MEMORY_REFUSAL);

    // wasm the inspector accepts and cranelift refuses (`externref`: the
    // engine has no collector) comes back as the compiler's own reason.
    let externref = with_tasks(
        r#"(module
             (memory (export "memory") 1)
             (func (export "wask:alloc") (param i32) (result i32) (i32.const 1024))
             (func (export "wask:task:t") (param i32 i32) (result i64)
               (drop (ref.null extern)) (i64.const 0)))"#,
        &[sig("t", &[], "u8")],
    );
    let reason = rejection(sandbox.compile(&externref));
    assert!(reason.starts_with("compilation failed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_refuses_a_module_too_slow_to_compile() {
    let reason = refused_by_a_worker_process(
        "compile-bounds",
        ["--compile-timeout", "1"],
        slow_to_compile(6000),
    )
    .await;
    assert!(
        reason.contains("compilation took longer than the worker's limit of 1.0 s"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_refuses_a_module_too_big_to_compile() {
    let reason = refused_by_a_worker_process(
        "compile-memory",
        ["--compile-memory", "64MiB"],
        slow_to_compile(MEMORY_HUNGRY),
    )
    .await;
    assert_eq!(reason, TIGHT_MEMORY_REFUSAL);
}

/// Why a `wask-worker` process started with `bound` refuses `module`'s
/// task `slow`; checks that the same worker then compiles (within the
/// bound) and runs a normal module.
async fn refused_by_a_worker_process(tag: &str, bound: [&str; 2], module: Vec<u8>) -> String {
    let dir = TempDir::new(tag);
    let scheduler = start_scheduler(Host::Here, dir.path(), &["--host", "127.0.0.1"]);
    let mut cmd = worker_command(Host::Here, &scheduler.file, "w1");
    cmd.args(["--host", "127.0.0.1"]).args(bound);
    let mut worker = Proc::spawn("wask-worker w1", cmd);
    worker.wait_for_line("wask-worker ", START_TIMEOUT);

    let client = Client::connect(scheduler.file.as_path()).await.unwrap();
    let refused = client.load_module_bytes(module).await.unwrap();
    let f = client
        .submit(&refused.task::<(), u8>("slow").unwrap(), ())
        .unwrap();
    let reason = match f.result().await {
        Err(Error::Task {
            error: TaskError::ModuleRejected { reason },
            ..
        }) => reason,
        other => panic!("expected a rejected module, got {other:?}"),
    };

    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    assert_eq!(
        client.submit(&inc, (41,)).unwrap().result().await.unwrap(),
        42
    );
    assert_eq!(client.info().await.unwrap().workers.len(), 1);
    reason
}
