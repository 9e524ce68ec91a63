//! build_guests reports what went wrong: compiler errors, and workspaces
//! with no cdylib.

use std::path::{Path, PathBuf};
use wask_guest_build::{BuildError, build_guests};

/// A one-crate guest workspace under the system temp dir.
fn workspace(name: &str, crate_type: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wask-guest-build-{}-{name}", std::process::id()));
    std::fs::create_dir_all(dir.join("guest/src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"guest\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("guest/Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"{crate_type}\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("guest/src/lib.rs"), source).unwrap();
    dir
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm-guests")
}

#[test]
fn compiler_errors_are_in_the_error() {
    let dir = workspace(
        "broken-guest",
        "cdylib",
        "pub fn answer() -> i32 { \"forty-two\" }\n",
    );
    let err = build_guests(&dir, &target_dir()).unwrap_err();
    let BuildError::Failed { output, .. } = &err else {
        panic!("{err}")
    };
    assert!(output.contains("mismatched types"), "{output}");
    assert!(err.to_string().contains("guest/src/lib.rs"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_workspace_without_cdylib_has_no_modules() {
    let dir = workspace("rlib-guest", "rlib", "pub fn answer() -> i32 { 42 }\n");
    let err = build_guests(&dir, &target_dir()).unwrap_err();
    assert!(matches!(err, BuildError::NoModules { .. }), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_cdylib_gives_its_wasm() {
    let dir = workspace(
        "tiny-guest",
        "cdylib",
        "#[unsafe(no_mangle)]\npub extern \"C\" fn answer() -> i32 { 42 }\n",
    );
    let modules = build_guests(&dir, &target_dir()).unwrap();
    assert_eq!(modules.len(), 1);
    assert!(
        modules[0].ends_with("wasm32-wasip1/release/tiny_guest.wasm"),
        "{}",
        modules[0].display()
    );
    assert!(std::fs::read(&modules[0]).unwrap().starts_with(b"\0asm"));
    std::fs::remove_dir_all(dir).unwrap();
}
