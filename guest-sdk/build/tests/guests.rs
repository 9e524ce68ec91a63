//! Builds the real guests (examples/guests and tests/guests) to wasm, checks
//! that wask-proto accepts them with the right signatures, and calls a few
//! tasks in wasmtime through the ABI, as a worker would.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasmtime::{Caller, Engine, Linker, Module, Store};

/// The main workspace's root (this crate is guest-sdk/build).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Bytes of `math.wasm` and `faulty.wasm`, built once per test binary. The
/// target dir is not the one of this build (its lock is held by it).
fn wasm(name: &str) -> &'static [u8] {
    static BUILT: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let target = root().join("target/wasm-guests");
        let mut modules = Vec::new();
        for workspace in ["examples/guests", "tests/guests"] {
            let paths = wask_guest_build::build_guests(&root().join(workspace), &target)
                .unwrap_or_else(|e| panic!("{e}"));
            for path in paths {
                assert!(
                    path.starts_with(target.join("wasm32-wasip1/release")),
                    "{}",
                    path.display()
                );
                let name = path.file_stem().unwrap().to_str().unwrap().to_string();
                modules.push((name, std::fs::read(&path).unwrap()));
            }
        }
        modules
    });
    &built
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}.wasm"))
        .1
}

fn tasks(name: &str) -> Vec<String> {
    let info = wask_proto::module::inspect(wasm(name), &Default::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut tasks: Vec<String> = info.tasks.iter().map(|t| t.display()).collect();
    tasks.sort();
    tasks
}

#[test]
fn math_declares_its_tasks() {
    // Other tasks may be added (the benchmark adds some); these must be there.
    let tasks = tasks("math");
    for expected in [
        "add(i64, i64) -> i64",
        "busy(u64, u64) -> u64",
        "concat(Vec<String>) -> String",
        "double(i64) -> i64",
        "inc(i64) -> i64",
        "mean(Vec<f64>) -> f64",
        "random_u64() -> u64",
        "sum(Vec<i64>) -> i64",
    ] {
        assert!(
            tasks.iter().any(|t| t == expected),
            "{expected} missing from {tasks:?}"
        );
    }
}

#[test]
fn faulty_declares_its_tasks() {
    // Tests may add tasks; these must be there.
    let tasks = tasks("faulty");
    for expected in [
        "big(u64) -> Vec<u8>",
        "boom(String) -> i64",
        "divide(i32, i32) -> i32",
        "env_and_args() -> (Vec<String>,Vec<String>)",
        "fail(String) -> i64",
        "grow(u64) -> u64",
        "inc(i64) -> i64",
        "now_and_random() -> (u64,u64)",
        "ok_or_fail(i64) -> i64",
        "print(u64) -> u64",
        "read_file(String) -> String",
        "recurse(u64) -> u64",
        "recurse_big(u64) -> u64",
        "sleep_ms(u64) -> u64",
        "spin() -> u64",
    ] {
        assert!(
            tasks.iter().any(|t| t == expected),
            "{expected} missing from {tasks:?}"
        );
    }
}

/// What a call gave: the status byte and payload, or the trap and the
/// message the guest sent to `wask.panic` before it.
#[derive(Debug, PartialEq)]
enum Outcome {
    Returned(u8, Vec<u8>),
    Trapped { panic: Option<String> },
}

/// Calls `task` of `module` in a fresh instance, the way a worker does:
/// `wask:alloc`, write the arguments, call `wask:task:<name>`, read
/// `ptr << 32 | len`. WASI is left out (every import traps): these tasks
/// do not touch it.
fn call(module: &str, task: &str, args: &[u8]) -> Outcome {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(Engine::default);
    let module = Module::new(engine, wasm(module)).unwrap();
    let mut linker: Linker<Option<String>> = Linker::new(engine);
    linker
        .func_wrap(
            "wask",
            "panic",
            |mut caller: Caller<'_, Option<String>>, ptr: i32, len: i32| {
                let memory = caller.get_export("memory").unwrap().into_memory().unwrap();
                let bytes =
                    memory.data(&caller)[ptr as u32 as usize..][..len as u32 as usize].to_vec();
                *caller.data_mut() = Some(String::from_utf8(bytes).unwrap());
            },
        )
        .unwrap();
    linker.define_unknown_imports_as_traps(&module).unwrap();
    let mut store = Store::new(engine, None);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut store, "wask:alloc")
        .unwrap();
    let run = instance
        .get_typed_func::<(i32, i32), i64>(&mut store, &format!("wask:task:{task}"))
        .unwrap();
    let ptr = alloc.call(&mut store, args.len() as i32).unwrap();
    memory.write(&mut store, ptr as u32 as usize, args).unwrap();
    match run.call(&mut store, (ptr, args.len() as i32)) {
        Ok(packed) => {
            let (ptr, len) = (
                (packed as u64 >> 32) as usize,
                (packed as u64 & 0xffff_ffff) as usize,
            );
            let output = &memory.data(&store)[ptr..ptr + len];
            Outcome::Returned(output[0], output[1..].to_vec())
        }
        Err(_) => Outcome::Trapped {
            panic: store.data().clone(),
        },
    }
}

fn ok<T: serde::Serialize>(value: &T) -> Outcome {
    Outcome::Returned(0, postcard::to_allocvec(value).unwrap())
}

fn args<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap()
}

#[test]
fn tasks_run_through_the_abi() {
    assert_eq!(call("math", "inc", &args(&41i64)), ok(&42i64));
    assert_eq!(call("math", "add", &args(&(40i64, 2i64))), ok(&42i64));
    assert_eq!(call("math", "sum", &args(&vec![1i64, 2, 3])), ok(&6i64));
    assert_eq!(call("math", "busy", &args(&(1u64, 2u64))), ok(&962u64));
    assert_eq!(call("math", "mean", &args(&vec![1.0f64, 2.0])), ok(&1.5f64));
    assert_eq!(call("math", "concat", &args(&vec!["a", "b"])), ok(&"ab"));
    assert_eq!(call("faulty", "ok_or_fail", &args(&5i64)), ok(&5i64));
    assert_eq!(call("faulty", "big", &args(&3u64)), ok(&vec![0u8, 1, 2]));
}

#[test]
fn errors_come_back_as_text() {
    assert_eq!(
        call("faulty", "fail", &args(&"nope")),
        Outcome::Returned(1, b"nope".to_vec())
    );
    assert_eq!(
        call("faulty", "ok_or_fail", &args(&-1i64)),
        Outcome::Returned(1, b"-1 is negative".to_vec())
    );
    let Outcome::Returned(2, text) = call("math", "add", &[1]) else {
        panic!("bad arguments accepted")
    };
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.starts_with("the arguments of task add(i64, i64) did not decode"),
        "{text}"
    );
}

#[test]
fn panics_reach_the_host_with_their_location() {
    let Outcome::Trapped {
        panic: Some(message),
    } = call("faulty", "boom", &args(&"kaboom"))
    else {
        panic!("boom did not trap with a message")
    };
    assert!(message.starts_with("kaboom (at "), "{message}");
    assert!(message.contains("src/lib.rs:"), "{message}");
    let Outcome::Trapped {
        panic: Some(message),
    } = call("faulty", "divide", &args(&(1i32, 0i32)))
    else {
        panic!("divide by zero did not trap with a message")
    };
    assert!(
        message.starts_with("attempt to divide by zero (at "),
        "{message}"
    );
    assert_eq!(call("faulty", "divide", &args(&(7i32, 2i32))), ok(&3i32));
}
