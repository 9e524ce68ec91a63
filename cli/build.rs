//! Builds the guests in examples/guests to wasm32-wasip1, so the end-to-end
//! test can hand `env!("WASK_GUEST_MATH")` to the `wask` binary.

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir)
        .parent()
        .expect("cli/ is inside the workspace");
    // Not the outer build's target dir: the nested cargo would wait on its lock.
    let target = root.join("target/wasm-guests");
    wask_guest_build::emit_for_build_script(&root.join("examples/guests"), &target);
}
