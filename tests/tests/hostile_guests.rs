//! Hostile guests, end to end: modules that loop, hoard memory, recurse,
//! flood their output, trap, break the ABI, import what they may not, or are
//! not wasm at all. Each gets its exact typed error, and after each one the
//! same worker still runs a well-behaved task.
//!
//! The misbehaving Rust tasks live in the `faulty` guest; the modules no
//! Rust compiler would emit are hand-written in `tests/fixtures/*.wat`. A
//! fixture follows the wask ABI (a `memory` export, `wask:alloc`,
//! `wask:task:<name>` returning `ptr << 32 | len` of a status byte and a
//! payload) where it needs to get past inspection; the test appends its
//! `wask:tasks` custom section.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use wask::{Client, Error, Future, LocalCluster, Module, Options, Task, TaskError};
use wask_proto::error::Limit;
use wask_tests::wasm::{fixture, noise, sig, with_custom_section, with_tasks};
use wask_tests::{FAULTY, eventually};

/// A cluster of one worker (one wasm thread), a client and the `faulty`
/// guest: every task of a test runs on that worker.
struct Harness {
    cluster: LocalCluster,
    client: Client,
    faulty: Module,
    inc: Task<(i64,), i64>,
    worker: wask_proto::WorkerId,
    next: AtomicI64,
}

impl Harness {
    async fn start() -> Harness {
        // Modules compile in a child process, as in a `wask-worker`.
        let cluster = LocalCluster::builder()
            .workers(1)
            .compiler(wask::Compiler::Subprocess {
                program: wask_tests::procs::bin("wask-worker"),
                args: vec!["--compile-module".into()],
                time_limit: std::time::Duration::from_secs(120),
                memory_limit: 2 << 30,
            })
            .start()
            .await
            .unwrap();
        let client = Client::connect(cluster.address()).await.unwrap();
        let faulty = client.load_module(FAULTY).await.unwrap();
        let inc = faulty.task::<(i64,), i64>("inc").unwrap();
        let info = client.info().await.unwrap();
        assert_eq!(info.workers.len(), 1, "{info:?}");
        let h = Harness {
            worker: info.workers[0].id,
            cluster,
            client,
            faulty,
            inc,
            next: AtomicI64::new(0),
        };
        h.still_serving().await;
        h
    }

    /// A typed handle on a task of the `faulty` guest.
    fn faulty<P: wask::args::Params, R>(&self, name: &str) -> Task<P, R> {
        self.faulty.task(name).unwrap()
    }

    /// The one worker is still there and computes `inc` correctly (with a
    /// fresh key each time, so that it really runs).
    async fn still_serving(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let f = self
            .client
            .submit_with(&self.inc, (n,), &Options::new().pure(false))
            .unwrap();
        assert_eq!(f.result().await.unwrap(), n + 1);
        let info = self.client.info().await.unwrap();
        let ids: Vec<_> = info.workers.iter().map(|w| w.id).collect();
        assert_eq!(ids, [self.worker], "the worker was replaced: {info:?}");
    }

    /// Loads a module that must be accepted.
    async fn load(&self, wasm: Vec<u8>) -> Module {
        self.client.load_module_bytes(wasm).await.unwrap()
    }

    /// Loads a module that must be refused; the reason.
    async fn refused(&self, wasm: Vec<u8>) -> String {
        match self.client.load_module_bytes(wasm).await {
            Err(Error::ModuleRefused(reason)) => reason,
            other => panic!("expected ModuleRefused, got {other:?}"),
        }
    }
}

/// The task error `f` ends with (checked to name `f`'s key).
async fn task_error<T>(f: Future<T>) -> TaskError {
    match f.wait().await {
        Err(Error::Task { key, error }) => {
            assert_eq!(key, f.key());
            error
        }
        other => panic!("expected a task error, got {other:?}"),
    }
}

/// Says hello as a client on a raw connection, uploads a module of
/// `MAX_MODULE + 1` bytes and checks that the scheduler closes the
/// connection with `TOO_LARGE`.
async fn upload_past_the_limit(cluster: &LocalCluster) {
    use wask_net::codes;
    use wask_proto::msg::StreamHeader;

    let raw = wask_tests::raw::RawClient::connect(&cluster.address(), None).await;
    let conn = raw.conn.clone();
    let payload = bytes::Bytes::from(vec![0u8; wask_proto::limits::MAX_MODULE + 1]);
    let header = StreamHeader::Module {
        hash: wask_proto::ModuleHash::of(&payload),
    };
    // The scheduler stops the stream and closes the connection: sending
    // may fail.
    let _ = wask_net::data::send(&conn, &header, payload).await;
    let closed = tokio::time::timeout(Duration::from_secs(30), conn.closed())
        .await
        .expect("the scheduler closes the connection");
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, codes::TOO_LARGE, "{close:?}")
        }
        other => panic!("expected an application close, got {other}"),
    }
}

fn wall_ms(ms: u64) -> Options {
    Options::new().timeout(Duration::from_millis(ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_tasks_stop_at_their_limits() {
    let h = Harness::start().await;
    let c = &h.client;

    // 1. An infinite loop.
    let spin = h.faulty::<(), u64>("spin");
    let f = c.submit_with(&spin, (), &wall_ms(200)).unwrap();
    assert_eq!(task_error(f).await, TaskError::Timeout { limit_ms: 200 });
    h.still_serving().await;

    // 2. A start function that loops: the time limit covers instantiation.
    let start_loop = h
        .load(fixture("start_loop", &[sig("never", &[], "u8")]))
        .await;
    let never = start_loop.task::<(), u8>("never").unwrap();
    let f = c.submit_with(&never, (), &wall_ms(200)).unwrap();
    assert_eq!(task_error(f).await, TaskError::Timeout { limit_ms: 200 });
    h.still_serving().await;

    // 20. A sleep of an hour under a 300 ms limit times out at once instead
    // of holding the thread (a generous bound, not a timing test).
    let sleep = h.faulty::<(u64,), u64>("sleep_ms");
    let started = Instant::now();
    let f = c.submit_with(&sleep, (3_600_000,), &wall_ms(300)).unwrap();
    assert_eq!(task_error(f).await, TaskError::Timeout { limit_ms: 300 });
    assert!(started.elapsed() < Duration::from_secs(30));
    h.still_serving().await;

    // 3. A memory bomb: allocates 1 MiB at a time until refused.
    let grow = h.faulty::<(u64,), u64>("grow");
    let f = c
        .submit_with(&grow, (1 << 20,), &Options::new().memory_limit(32 << 20))
        .unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::MemoryLimit {
            limit_bytes: 32 << 20
        }
    );
    h.still_serving().await;

    // 4b. Initial memory the policy allows (64 MiB) but over the task's
    // limit: refused when the instance is made. Under the default limit
    // (256 MiB) the same task runs.
    let large = h
        .load(fixture("large_memory", &[sig("answer", &[], "u8")]))
        .await;
    let answer = large.task::<(), u8>("answer").unwrap();
    let f = c
        .submit_with(&answer, (), &Options::new().memory_limit(16 << 20))
        .unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::MemoryLimit {
            limit_bytes: 16 << 20
        }
    );
    // Limits are not part of a pure key: a new key makes sure it runs again.
    let f = c
        .submit_with(&answer, (), &Options::new().pure(false))
        .unwrap();
    assert_eq!(f.result().await.unwrap(), 42);
    h.still_serving().await;

    // 5b. A table bomb: table.grow fails (returns -1) at the policy's
    // 100,000 elements; the guest sees the refusal and reports its size.
    let tables = h
        .load(fixture("table_bomb", &[sig("table_bomb", &[], "[u8;4]")]))
        .await;
    let bomb = tables.task::<(), [u8; 4]>("table_bomb").unwrap();
    let size = c.submit(&bomb, ()).unwrap().result().await.unwrap();
    assert_eq!(u32::from_le_bytes(size), 100_000);
    h.still_serving().await;

    // 6. Unbounded recursion, on the wasm stack and on Rust's shadow stack.
    for name in ["recurse", "recurse_big"] {
        let recurse = h.faulty::<(u64,), u64>(name);
        let f = c.submit(&recurse, (0,)).unwrap();
        assert_eq!(task_error(f).await, TaskError::StackOverflow, "{name}");
        h.still_serving().await;
    }

    // 7. A result over the result limit: 1000 bytes and their length (2).
    let big = h.faulty::<(u64,), Vec<u8>>("big");
    let f = c
        .submit_with(&big, (1000,), &Options::new().result_limit(100))
        .unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::LimitExceeded {
            limit: Limit::ResultSize,
            size: 1002,
            max: 100
        }
    );
    h.still_serving().await;

    // 8. Flooding stdout, then stderr, a line of 64 bytes per write: the
    // 16th write passes the limit and stops the task.
    for name in ["print", "eprint"] {
        let flood = h.faulty::<(u64,), u64>(name);
        let f = c
            .submit_with(&flood, (1 << 20,), &Options::new().output_limit(1000))
            .unwrap();
        assert_eq!(
            task_error(f).await,
            TaskError::LimitExceeded {
                limit: Limit::Output,
                size: 1024,
                max: 1000
            },
            "{name}"
        );
        h.still_serving().await;
    }
    h.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_and_abi_violations_are_typed() {
    let h = Harness::start().await;
    let c = &h.client;

    // 9. A panic: its payload and where it happened.
    let boom = h.faulty::<(String,), i64>("boom");
    let f = c.submit(&boom, ("kaboom".to_string(),)).unwrap();
    match task_error(f).await {
        TaskError::Panic { message } => {
            assert!(message.starts_with("kaboom (at "), "{message}");
            assert!(message.contains("lib.rs"), "{message}");
        }
        e => panic!("expected a panic, got {e:?}"),
    }
    h.still_serving().await;

    // 10. A trap after printing and after starting to write its output.
    let half = h
        .load(fixture(
            "trap_mid_write",
            &[sig("half_written", &[], "String")],
        ))
        .await;
    let f = c
        .submit(&half.task::<(), String>("half_written").unwrap(), ())
        .unwrap();
    let trap = task_error(f).await;
    assert!(
        matches!(&trap, TaskError::Trap { message } if message.starts_with("wasm trap: wasm `unreachable` instruction executed")),
        "{trap:?}"
    );
    h.still_serving().await;

    // A start function that traps: instantiation fails with the trap.
    let start_trap = h
        .load(fixture("start_trap", &[sig("never", &[], "u8")]))
        .await;
    let f = c
        .submit(&start_trap.task::<(), u8>("never").unwrap(), ())
        .unwrap();
    let trap = task_error(f).await;
    assert!(
        matches!(&trap, TaskError::Trap { message } if message.starts_with("wasm trap: wasm `unreachable` instruction executed")),
        "{trap:?}"
    );
    h.still_serving().await;

    // 21. proc_exit ends the task with a trap naming it.
    let quit = h
        .load(fixture("proc_exit", &[sig("quit", &[], "u8")]))
        .await;
    let f = c.submit(&quit.task::<(), u8>("quit").unwrap(), ()).unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::Trap {
            message: "guest called proc_exit(3)".into()
        }
    );
    h.still_serving().await;

    // 23. Integer division by zero in wasm (not Rust's checked panic).
    let div = h
        .load(fixture("divide_by_zero", &[sig("div", &[], "u8")]))
        .await;
    let f = c.submit(&div.task::<(), u8>("div").unwrap(), ()).unwrap();
    let trap = task_error(f).await;
    assert!(
        matches!(&trap, TaskError::Trap { message } if message.starts_with("wasm trap: integer divide by zero")),
        "{trap:?}"
    );
    h.still_serving().await;

    // 22. wask:alloc hands out a pointer outside memory for the arguments.
    let bad_alloc = h
        .load(fixture("bad_alloc", &[sig("t", &["u64"], "u8")]))
        .await;
    let f = c
        .submit(&bad_alloc.task::<(u64,), u8>("t").unwrap(), (5,))
        .unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::Abi {
            message: "wask:alloc returned 0xfffffff0 for 1 bytes, outside memory of 65536 bytes"
                .into()
        }
    );
    h.still_serving().await;

    // 24. An output whose status byte is 7.
    let seven = h
        .load(fixture("status_seven", &[sig("seven", &[], "u8")]))
        .await;
    let f = c
        .submit(&seven.task::<(), u8>("seven").unwrap(), ())
        .unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::Abi {
            message: "the task's output has an unknown status byte 7".into()
        }
    );
    h.still_serving().await;

    // An output pointer past the end of memory.
    let far = h
        .load(fixture("output_out_of_bounds", &[sig("far", &[], "u8")]))
        .await;
    let f = c.submit(&far.task::<(), u8>("far").unwrap(), ()).unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::Abi {
            message: "the task's output at 0xffff0000 (10 bytes) is outside memory of 65536 bytes"
                .into()
        }
    );
    h.still_serving().await;

    // 19. Result bytes that are not a String: the task succeeds on the
    // cluster, and the client's decoding fails.
    let garbage = h
        .load(fixture("bad_result", &[sig("garbage", &[], "String")]))
        .await;
    let f = c
        .submit(&garbage.task::<(), String>("garbage").unwrap(), ())
        .unwrap();
    match f.result().await {
        Err(Error::Decode { key, message }) => {
            assert_eq!(key, f.key());
            assert_eq!(message, "Hit the end of buffer, expected more data");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(&f.result_bytes().await.unwrap()[..], [0xff, 0xff, 0xff]);
    h.still_serving().await;

    // Arguments that do not decode as the task's parameters (only possible
    // through the untyped submit): the guest reports them, an ABI error.
    let f = c
        .submit_encoded(&h.faulty, "inc", vec![0xff, 0xff, 0xff], &Options::new())
        .unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::Abi {
            message:
                "the arguments did not decode: the arguments of task inc(i64) did not decode: \
                      Hit the end of buffer, expected more data"
                    .into()
        }
    );
    h.still_serving().await;
    h.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_modules_are_refused() {
    let h = Harness::start().await;
    let c = &h.client;
    let t = || [sig("t", &[], "u8")];

    // 11. A task export of the wrong type, named.
    let reason = h
        .refused(fixture("wrong_export_type", &[sig("x", &[], "u8")]))
        .await;
    assert_eq!(
        reason,
        "export wask:task:x: has type [I32] -> [I32], the wask ABI needs [I32, I32] -> [I64]"
    );
    h.still_serving().await;

    // 12. An import wask does not provide, named.
    assert_eq!(
        h.refused(fixture("evil_import", &t())).await,
        "import env.evil is not provided by wask (only wasi_snapshot_preview1 and wask functions are)"
    );
    // A memory imported under a WASI function's name.
    assert_eq!(
        h.refused(fixture("memory_import", &t())).await,
        "import wasi_snapshot_preview1.fd_write is not a function; modules may import only functions"
    );
    h.still_serving().await;

    // 13. Not wasm: noise, an empty file, the faulty guest cut in half.
    let faulty = std::fs::read(FAULTY).unwrap();
    for (what, bytes) in [
        ("noise", noise(4096)),
        ("empty", Vec::new()),
        ("truncated", faulty[..faulty.len() / 2].to_vec()),
    ] {
        let reason = h.refused(bytes).await;
        assert!(reason.starts_with("invalid wasm: "), "{what}: {reason}");
    }
    h.still_serving().await;

    // 14. 100 MB: a valid header and a huge custom section. The client's
    // own inspection refuses it before anything is sent: the reason is the
    // inspector's, and the connection is intact (the scheduler closes a
    // connection that uploads more than the module limit).
    let huge = with_custom_section(b"\0asm\x01\0\0\0".to_vec(), "junk", &vec![0; 100 << 20]);
    let size = huge.len();
    assert_eq!(
        h.refused(huge).await,
        format!(
            "module is {size} bytes, over the limit of {}",
            wask_proto::limits::MAX_MODULE
        )
    );
    h.still_serving().await;
    // The scheduler does not rely on the client's check: a client that
    // uploads more than the limit anyway is disconnected as the limit passes.
    upload_past_the_limit(&h.cluster).await;
    h.still_serving().await;

    // 4. 60,000 pages of initial memory.
    assert_eq!(
        h.refused(fixture("huge_memory", &t())).await,
        "module has 3932160000 initial bytes of memory, over the limit of 268435456"
    );
    // 5. A table of a million elements.
    assert_eq!(
        h.refused(fixture("huge_table", &t())).await,
        "module has 1000000 initial table elements, over the limit of 100000"
    );
    h.still_serving().await;

    // Past WebAssembly 2.0 (a tail call), and no task section.
    let reason = h.refused(fixture("tail_call", &t())).await;
    assert!(
        reason.starts_with("invalid wasm: ") && reason.contains("tail call"),
        "{reason}"
    );
    assert_eq!(
        h.refused(fixture("no_tasks", &[])).await,
        "module declares no tasks (no wask:tasks section; build it with #[wask_guest::task])"
    );
    h.still_serving().await;

    // 25. A WASI import with the wrong signature: the names are allowed, so
    // the client and the scheduler accept the module; linking on the worker
    // refuses it, and the task's future gets ModuleRejected naming it.
    let wrong = h.load(fixture("wasi_wrong_signature", &t())).await;
    let f = c.submit(&wrong.task::<(), u8>("t").unwrap(), ()).unwrap();
    let rejected = task_error(f).await;
    assert!(
        matches!(&rejected, TaskError::ModuleRejected { reason }
            if reason.starts_with("linking failed") && reason.contains("wasi_snapshot_preview1::fd_write")),
        "{rejected:?}"
    );
    h.still_serving().await;

    // 15. 100,000 nested blocks: valid wasm within every limit, so it is
    // accepted, compiled and run without harming the worker. Compiling it
    // is the slow part of this file (seconds: cranelift's time grows faster
    // than linearly with the blocks of one function); the worker does it in
    // its compile process, within the time limit.
    let depth = 100_000;
    let wat = format!(
        r#"(module
             (memory (export "memory") 1)
             (data (i32.const 2048) "\00\2a")
             (func (export "wask:alloc") (param i32) (result i32) (i32.const 1024))
             (func (export "wask:task:nested") (param i32 i32) (result i64)
               {}{}
               (i64.const 0x0000080000000002)))"#,
        "block\n".repeat(depth),
        "end\n".repeat(depth),
    );
    let nested = h.load(with_tasks(&wat, &[sig("nested", &[], "u8")])).await;
    let f = c
        .submit(&nested.task::<(), u8>("nested").unwrap(), ())
        .unwrap();
    assert_eq!(f.result().await.unwrap(), 42);
    h.still_serving().await;
    h.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_hides_the_host() {
    let h = Harness::start().await;
    let c = &h.client;

    // 16. No files: the task's own error says so.
    let read_file = h.faulty::<(String,), String>("read_file");
    let f = c.submit(&read_file, ("/etc/passwd".to_string(),)).unwrap();
    assert_eq!(
        task_error(f).await,
        TaskError::Failed {
            message: "/etc/passwd: No such file or directory (os error 44)".into()
        }
    );
    h.still_serving().await;

    // 17. No environment, no arguments.
    let env = h.faulty::<(), (Vec<String>, Vec<String>)>("env_and_args");
    let nothing = c
        .submit_with(&env, (), &Options::new().pure(false))
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(nothing, (vec![], vec![]));
    h.still_serving().await;

    // 18. The clock is fixed at 2020-01-01T00:00:00Z. Random numbers come
    // from a stream keyed by the task's key: two impure calls (two fresh
    // uuid keys) differ, and the same pure call computed again after the
    // cluster forgot it gives the same number.
    const JAN_1_2020_NS: u64 = 1_577_836_800_000_000_000;
    let now_and_random = h.faulty::<(), (u64, u64)>("now_and_random");
    let impure = Options::new().pure(false);
    let (now1, random1) = c
        .submit_with(&now_and_random, (), &impure)
        .unwrap()
        .result()
        .await
        .unwrap();
    let (now2, random2) = c
        .submit_with(&now_and_random, (), &impure)
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!((now1, now2), (JAN_1_2020_NS, JAN_1_2020_NS));
    assert_ne!(random1, random2);

    let executed = |info: wask::ClusterInfo| info.workers[0].executed;
    let before = executed(c.info().await.unwrap());
    let first = c.submit(&now_and_random, ()).unwrap();
    let key = first.key();
    let first_value = first.result().await.unwrap();
    drop(first);
    // Once released, the same pure call is computed again.
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.info().await.unwrap().tasks == 0
        })
        .await
    );
    let again = c.submit(&now_and_random, ()).unwrap();
    assert_eq!(again.key(), key);
    assert_eq!(again.result().await.unwrap(), first_value);
    assert_eq!(first_value.0, JAN_1_2020_NS);
    assert_eq!(executed(c.info().await.unwrap()), before + 2);
    h.still_serving().await;
    h.cluster.shutdown().await;
}
