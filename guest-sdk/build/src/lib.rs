//! Builds wask guest crates to `wasm32-wasip1`, from a build script or a
//! test.
//!
//! Guests live in a cargo workspace of their own (the native workspace
//! excludes it), whose `cdylib` members are the modules. [`build_guests`]
//! runs `cargo build --release --target wasm32-wasip1` on it and returns the
//! `.wasm` files; [`emit_for_build_script`] does that from a `build.rs` and
//! hands the paths to the crate as `WASK_GUEST_<NAME>` environment
//! variables:
//!
//! ```no_run
//! // build.rs
//! use std::path::Path;
//!
//! let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
//! let root = Path::new(&manifest_dir).parent().unwrap();
//! wask_guest_build::emit_for_build_script(&root.join("examples/guests"), &root.join("target/wasm-guests"));
//! // then in the crate: std::fs::read(env!("WASK_GUEST_MATH"))
//! ```
//!
//! The target directory must not be the one of the build running the
//! build script: the nested cargo would wait forever on its lock.

#![warn(missing_docs)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target guests are built for.
pub const TARGET: &str = "wasm32-wasip1";

/// Variables cargo sets for a build script or a test that must not leak
/// into the nested build: they describe the outer build (its target, its
/// flags, its jobserver), not the guests'.
const OUTER_BUILD_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "OPT_LEVEL",
    "PROFILE",
    "DEBUG",
    "NUM_JOBS",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_LINKER",
];

/// Variable prefixes dropped for the same reason.
const OUTER_BUILD_PREFIXES: &[&str] = &["CARGO_FEATURE_", "CARGO_CFG_"];

/// Why the guests were not built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// cargo could not be started.
    #[error("could not run {cargo:?}: {source}")]
    Spawn {
        /// The cargo binary tried.
        cargo: OsString,
        /// The error.
        source: std::io::Error,
    },
    /// cargo ran and failed.
    #[error("building the guests in {} failed ({status}):\n{output}", workspace.display())]
    Failed {
        /// The guest workspace.
        workspace: PathBuf,
        /// cargo's exit status.
        status: std::process::ExitStatus,
        /// What cargo printed: the compiler's diagnostics.
        output: String,
    },
    /// cargo succeeded but produced no `.wasm` for any member.
    #[error("building the guests in {} produced no .wasm (are the members crate-type = [\"cdylib\"]?)", workspace.display())]
    NoModules {
        /// The guest workspace.
        workspace: PathBuf,
    },
}

/// Builds the guest workspace at `workspace` (the directory of its
/// `Cargo.toml`) into `target_dir`, and returns the `.wasm` of each of its
/// `cdylib` members, `<target_dir>/wasm32-wasip1/release/<crate>.wasm`.
///
/// Runs `$CARGO` (else `cargo`) with the environment of the outer build
/// removed, so `RUSTFLAGS` and friends meant for the native crates do not
/// reach the guests. cargo's output is returned in the error on failure.
pub fn build_guests(workspace: &Path, target_dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--release")
        .args(["--target", TARGET])
        // Artifacts as JSON on stdout (to find the .wasm files), diagnostics
        // rendered as text on stderr (to show on failure).
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if OUTER_BUILD_VARS.contains(&key)
            || OUTER_BUILD_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            command.env_remove(key);
        }
    }
    let output = command.output().map_err(|source| BuildError::Spawn {
        cargo: cargo.clone(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        // Messages cargo printed as JSON (there should be none left after
        // rendering, but a failing build script's output arrives that way).
        for message in stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            if let Some(rendered) = message
                .pointer("/message/rendered")
                .and_then(|r| r.as_str())
            {
                text.push_str(rendered);
            }
        }
        return Err(BuildError::Failed {
            workspace: workspace.to_path_buf(),
            status: output.status,
            output: text,
        });
    }
    let members = workspace_dir(workspace);
    let mut modules: Vec<PathBuf> = Vec::new();
    for message in stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        if let Some(wasm) = cdylib_artifact(&message, &members)
            && !modules.contains(&wasm)
        {
            modules.push(wasm);
        }
    }
    if modules.is_empty() {
        return Err(BuildError::NoModules {
            workspace: workspace.to_path_buf(),
        });
    }
    modules.sort();
    Ok(modules)
}

/// The `.wasm` of a `compiler-artifact` message for a `cdylib` of a crate
/// inside `members` (the guest workspace; path dependencies such as
/// wask-guest live elsewhere).
fn cdylib_artifact(message: &serde_json::Value, members: &Path) -> Option<PathBuf> {
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let kinds = message.pointer("/target/kind")?.as_array()?;
    if !kinds.iter().any(|k| k.as_str() == Some("cdylib")) {
        return None;
    }
    let manifest = Path::new(message.get("manifest_path")?.as_str()?);
    if !workspace_dir(manifest).starts_with(members) {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .map(PathBuf::from)
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}

/// `path` made absolute (and canonical, when it exists).
fn workspace_dir(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// For a `build.rs`: builds the guests, asks cargo to rerun when their
/// sources or wask-guest's (and its macros') change, and sets `WASK_GUEST_<NAME>` (the crate
/// name upper-cased, `-` as `_`) to each module's absolute path, for
/// `env!("WASK_GUEST_MATH")` in the crate.
///
/// # Panics
///
/// When the build fails, with cargo's output: a build script has no
/// better way to report it.
pub fn emit_for_build_script(workspace: &Path, target_dir: &Path) {
    let sdk = guest_sdk_dir();
    let mut inputs = source_files(workspace);
    inputs.extend(source_files(&sdk.join("src")));
    inputs.extend(source_files(&sdk.join("macros/src")));
    inputs.push(sdk.join("Cargo.toml"));
    inputs.push(sdk.join("macros/Cargo.toml"));
    // wask-guest takes its dependency versions from the main workspace.
    if let Some(root) = sdk.parent() {
        inputs.push(root.join("Cargo.toml"));
    }
    for file in inputs {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let modules = match build_guests(workspace, target_dir) {
        Ok(modules) => modules,
        Err(e) => panic!("{e}"),
    };
    for wasm in modules {
        let name = wasm
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        println!(
            "cargo:rustc-env=WASK_GUEST_{name}={}",
            workspace_dir(&wasm).display()
        );
    }
}

/// The `guest-sdk` directory (this crate is `guest-sdk/build`).
fn guest_sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("guest-sdk/build has a parent")
        .to_path_buf()
}

/// The files under `dir` a guest build reads, leaving out `target`
/// directories and hidden ones. Files rather than `dir` itself, so a
/// stray `target/` in there does not make every build rerun the script.
fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if name != "target" {
                        pending.push(path);
                    }
                }
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_member_cdylibs_from_cargo_messages() {
        let members = Path::new("/w/guests");
        let artifact = |manifest: &str, kind: &str, file: &str| {
            serde_json::json!({
                "reason": "compiler-artifact",
                "manifest_path": manifest,
                "target": { "kind": [kind], "name": "x" },
                "filenames": [file],
            })
        };
        assert_eq!(
            cdylib_artifact(
                &artifact("/w/guests/math/Cargo.toml", "cdylib", "/t/math.wasm"),
                members
            ),
            Some(PathBuf::from("/t/math.wasm"))
        );
        assert_eq!(
            cdylib_artifact(
                &artifact("/w/guest-sdk/Cargo.toml", "cdylib", "/t/sdk.wasm"),
                members
            ),
            None
        );
        assert_eq!(
            cdylib_artifact(
                &artifact("/w/guests/math/Cargo.toml", "lib", "/t/libmath.rlib"),
                members
            ),
            None
        );
        assert_eq!(
            cdylib_artifact(&serde_json::json!({ "reason": "build-finished" }), members),
            None
        );
    }

    #[test]
    fn lists_sources_but_not_targets() {
        let files = source_files(&guest_sdk_dir());
        assert!(files.iter().any(|f| f.ends_with("guest-sdk/src/lib.rs")));
        assert!(
            files
                .iter()
                .any(|f| f.ends_with("guest-sdk/macros/Cargo.toml"))
        );
        assert!(
            !files
                .iter()
                .any(|f| f.components().any(|c| c.as_os_str() == "target"))
        );
    }
}
