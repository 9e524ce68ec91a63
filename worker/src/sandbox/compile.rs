//! Compiling a module to machine code, bounded when the code is untrusted.
//!
//! Cranelift's time and memory grow faster than linearly on some inputs (a
//! few kilobytes of wasm with thousands of loops in one function take
//! seconds), and no compiler can be stopped halfway. So a worker process
//! compiles in a child process of its own binary ([`Compiler::Subprocess`]):
//! the wasm goes in on stdin, the artifact comes back on stdout, the child
//! runs under an address-space and CPU-time rlimit and is killed at its
//! deadline. The artifact is only ever loaded by the worker that made it:
//! nothing compiled comes from the network.
//!
//! An embedded cluster compiles in its own process ([`Compiler::InProcess`]),
//! which bounds nothing: it runs its own user's code.

use super::engine;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// How a sandbox compiles modules.
#[derive(Clone, Debug, Default)]
pub enum Compiler {
    /// On the calling thread, without a time or memory bound.
    #[default]
    InProcess,
    /// In a child process: `program args...` must call [`serve`].
    Subprocess {
        /// The program, usually the worker's own binary.
        program: PathBuf,
        /// Its arguments, e.g. `["--compile-module"]`.
        args: Vec<OsString>,
        /// Wall time the child may take; it is killed after.
        time_limit: Duration,
        /// Address space the child may map, in bytes.
        memory_limit: u64,
    },
}

/// Largest artifact accepted from the child: machine code is a few times
/// the size of the wasm at most.
const MAX_ARTIFACT: u64 = 16 * wask_proto::limits::MAX_MODULE as u64;
/// Most bytes of the child's stderr kept for the error message.
const MAX_STDERR: u64 = 16 << 10;
/// Exit code of a child that refused the module (its reason on stderr).
const EXIT_REFUSED: u8 = 2;

/// Compiles `wasm` in this process with the settings every tier shares.
pub(super) fn in_process(engine: &wasmtime::Engine, wasm: &[u8]) -> Result<Vec<u8>, String> {
    engine
        .precompile_module(wasm)
        .map_err(|e| format!("compilation failed: {e:#}"))
}

/// An engine that compiles and never instantiates.
pub(super) fn compile_engine() -> Result<wasmtime::Engine, String> {
    wasmtime::Engine::new(&engine::code_config()).map_err(|e| format!("{e:#}"))
}

/// The child's side: reads a module from stdin, writes its artifact to
/// stdout. Exit code 0 on success, 2 with the reason on stderr when the
/// module does not compile, 1 on an I/O error.
pub fn serve() -> ExitCode {
    let mut wasm = Vec::new();
    let limit = wask_proto::limits::MAX_MODULE as u64 + (1 << 20);
    if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut wasm) {
        eprintln!("reading the module: {e}");
        return ExitCode::FAILURE;
    }
    let artifact = compile_engine().and_then(|engine| in_process(&engine, &wasm));
    match artifact {
        Ok(bytes) => match std::io::stdout().lock().write_all(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writing the artifact: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

/// Compiles `wasm` in a child process (see the module docs).
pub(super) fn in_subprocess(
    program: &PathBuf,
    args: &[OsString],
    time_limit: Duration,
    memory_limit: u64,
    wasm: &[u8],
) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu_secs = time_limit.as_secs() + 1;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure only calls setrlimit (reading the struct we
        // pass), which is async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let limit = |resource, value: u64| {
                    let rlim = libc::rlimit {
                        rlim_cur: value as libc::rlim_t,
                        rlim_max: value as libc::rlim_t,
                    };
                    match libc::setrlimit(resource, &rlim) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                };
                limit(libc::RLIMIT_AS, memory_limit)?;
                limit(libc::RLIMIT_CPU, cpu_secs)?;
                limit(libc::RLIMIT_CORE, 0)
            });
        }
    }
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start the compiler process {}: {e}",
            program.display()
        )
    })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the compiler process has no pipes".into());
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (artifact, stderr_text, timed_out) = std::thread::scope(|s| {
        // A child that dies early closes its stdin: the write fails, which
        // the exit status explains.
        s.spawn(move || {
            let _ = stdin.write_all(wasm);
        });
        let reader = s.spawn(move || {
            let mut out = Vec::new();
            let read = stdout.take(MAX_ARTIFACT + 1).read_to_end(&mut out);
            let _ = done_tx.send(());
            read.map(|_| out)
        });
        let errors = s.spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.take(MAX_STDERR).read_to_end(&mut text);
            String::from_utf8_lossy(&text).trim().to_string()
        });
        let timed_out = match done_rx.recv_timeout(time_limit) {
            Ok(()) => false,
            Err(_) => {
                // Closes the pipes, which ends the reader threads.
                let _ = child.kill();
                true
            }
        };
        let artifact = reader.join().unwrap_or_else(|_| Ok(Vec::new()));
        (artifact, errors.join().unwrap_or_default(), timed_out)
    });
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the compiler process: {e}"))?;
    if timed_out {
        return Err(format!(
            "compilation took longer than the worker's limit of {:.1} s",
            time_limit.as_secs_f64()
        ));
    }
    let artifact = artifact.map_err(|e| format!("reading from the compiler process: {e}"))?;
    if status.success() {
        if artifact.len() as u64 > MAX_ARTIFACT {
            return Err(format!("the compiled code exceeds {MAX_ARTIFACT} bytes"));
        }
        return Ok(artifact);
    }
    if status.code() == Some(EXIT_REFUSED.into()) {
        return Err(stderr_text);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if status.signal() == Some(libc::SIGXCPU) {
            return Err(format!(
                "compilation took more than the worker's limit of {cpu_secs} s of CPU"
            ));
        }
    }
    if stderr_text.contains("memory allocation") || stderr_text.contains("out of memory") {
        return Err(format!(
            "compilation needed more than the worker's limit of {} MiB of memory",
            memory_limit >> 20
        ));
    }
    Err(format!(
        "the compiler process failed ({status}): {stderr_text}"
    ))
}
