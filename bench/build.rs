//! Builds the guests in examples/guests to wasm32-wasip1, so the benchmarks can
//! `std::fs::read(env!("WASK_GUEST_MATH"))`, and records the versions the
//! `meta` line reports (rustc, and wasmtime/quinn/tokio from Cargo.lock).

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir)
        .parent()
        .expect("bench/ is inside the workspace");
    // Not the outer build's target dir: the nested cargo would wait on its lock.
    let target = root.join("target/wasm-guests");
    wask_guest_build::emit_for_build_script(&root.join("examples/guests"), &target);

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=WASK_BENCH_RUSTC={version}");

    let lock_path = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    for (krate, var) in [
        ("wasmtime", "WASK_BENCH_WASMTIME"),
        ("quinn", "WASK_BENCH_QUINN"),
        ("tokio", "WASK_BENCH_TOKIO"),
    ] {
        println!("cargo:rustc-env={var}={}", locked_version(&lock, krate));
    }
}

/// The version of `krate` in Cargo.lock (the first entry), or "".
fn locked_version(lock: &str, krate: &str) -> String {
    let needle = format!("name = \"{krate}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|at| {
            let rest = &lock[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .unwrap_or_default()
}
