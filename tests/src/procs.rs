//! Running the real binaries (`wask-scheduler`, `wask-worker`, the
//! `quickstart` example) as child processes.
//!
//! The binaries are found next to the test executable in cargo's target
//! directory; `cargo test --workspace` builds them before running any test,
//! because the scheduler and worker packages have integration tests of their
//! own (cargo builds a package's binaries for its integration tests). The tests never run cargo
//! themselves: a nested cargo on the same target directory would wait on the
//! lock the outer one holds.
//!
//! Readiness is always a line the child prints on stdout (read by a thread
//! per pipe), bounded by a timeout; never a sleep.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a scheduler or worker may take to print its ready line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one run of the quickstart may take (debug build).
pub const QUICKSTART_TIMEOUT: Duration = Duration::from_secs(180);

/// `target/<profile>`: the directory holding the test executable's `deps/`.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable is in a directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

fn must_exist(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: build every binary first with `cargo test --workspace` \
         (or `cargo build --workspace --bins --examples`)",
        path.display()
    );
    path
}

/// Path of a binary of the workspace, e.g. `wask-scheduler`.
pub fn bin(name: &str) -> PathBuf {
    must_exist(target_profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// Path of an example of the workspace, e.g. `quickstart`.
pub fn example(name: &str) -> PathBuf {
    must_exist(
        target_profile_dir()
            .join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX)),
    )
}

/// A directory of its own for one test, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `<tmp>/wask-<tag>-<pid>-<n>`, fresh.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wask-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Where a process runs: in this network namespace, or inside a named one
/// (through `ip netns exec`, which execs the program in place, so the child
/// we hold is the program itself and signals reach it).
#[derive(Clone, Copy, Debug, Default)]
pub enum Host<'a> {
    /// The test's own network namespace.
    #[default]
    Here,
    /// A namespace made by `ip netns add`.
    Netns(&'a str),
}

impl Host<'_> {
    /// A command running `program` on this host, with a clean environment
    /// for wask (no inherited cluster secret).
    pub fn command(self, program: &Path) -> Command {
        let mut cmd = match self {
            Host::Here => Command::new(program),
            Host::Netns(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
        };
        cmd.env_remove("WASK_CLUSTER_SECRET");
        cmd
    }
}

/// A child process, killed on drop (SIGTERM, then SIGKILL after
/// [`STOP_TIMEOUT`]). Its stdout and stderr are captured by threads.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    lines: mpsc::Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

fn lock(s: &Mutex<String>) -> String {
    s.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Proc {
    /// Spawns `cmd` with piped stdout and stderr; `name` labels messages.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        let out_buf = stdout.clone();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                {
                    let mut b = out_buf.lock().unwrap_or_else(|p| p.into_inner());
                    b.push_str(&line);
                    b.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        let mut err = child.stderr.take().expect("stderr is piped");
        let err_buf = stderr.clone();
        let err_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = err_buf.lock().unwrap_or_else(|p| p.into_inner());
                b.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Proc {
            name: name.to_string(),
            child,
            status: None,
            lines,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        lock(&self.stdout)
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr)
    }

    /// Waits for a stdout line starting with `prefix` and returns it. Panics
    /// (with the process's stderr) if the process closes stdout first or the
    /// line does not come within `timeout`.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{} printed no line starting with {prefix:?} within {timeout:?}\n\
                     stdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait(STOP_TIMEOUT);
                    panic!(
                        "{} ended ({status}) before printing {prefix:?}\n\
                         stdout:\n{}\nstderr:\n{}",
                        self.name,
                        self.stdout(),
                        self.stderr()
                    )
                }
            }
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) unless the process has ended.
    pub fn signal(&mut self, signal: i32) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on the pid of a child we have not reaped yet,
            // so the pid cannot have been reused.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// The exit status, waiting up to `timeout`; panics (with stderr) if the
    /// process is still running then. Polls `try_wait`, so the bound holds.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    self.status = Some(s);
                    // The pipes close at exit; let the readers take the rest.
                    for r in self.readers.drain(..) {
                        let _ = r.join();
                    }
                    return s;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => panic!(
                    "{} still running after {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                ),
                Err(e) => panic!("waiting for {}: {e}", self.name),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        self.terminate();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

/// A running `wask-scheduler` and the scheduler file it wrote.
#[derive(Debug)]
pub struct SchedulerProc {
    /// The process.
    pub proc: Proc,
    /// Its scheduler file (`<dir>/scheduler.json`).
    pub file: PathBuf,
    /// The address it listens on, from its ready line.
    pub listening: String,
}

/// Starts `wask-scheduler --port 0 --scheduler-file <dir>/scheduler.json
/// <extra>` on `host` and waits until it is listening (its scheduler file is
/// written before it prints its ready line).
pub fn start_scheduler(host: Host<'_>, dir: &Path, extra: &[&str]) -> SchedulerProc {
    let file = dir.join("scheduler.json");
    let mut cmd = host.command(&bin("wask-scheduler"));
    cmd.args(["--port", "0", "--scheduler-file"])
        .arg(&file)
        .args(extra);
    let mut proc = Proc::spawn("wask-scheduler", cmd);
    let line = proc.wait_for_line("wask-scheduler listening on ", START_TIMEOUT);
    assert!(file.is_file(), "{line}, but {} is missing", file.display());
    let listening = line
        .trim_start_matches("wask-scheduler listening on ")
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    SchedulerProc {
        proc,
        file,
        listening,
    }
}

/// The command `wask-worker --scheduler-file <file> --nthreads 1 --name
/// <name>` on `host`, to adjust (environment, arguments) before spawning.
pub fn worker_command(host: Host<'_>, file: &Path, name: &str) -> Command {
    let mut cmd = host.command(&bin("wask-worker"));
    cmd.arg("--scheduler-file")
        .arg(file)
        .args(["--nthreads", "1", "--name", name]);
    cmd
}

/// Starts a worker and waits until the scheduler has welcomed it (it
/// prints `wask-worker <id> serving peers on <address>`).
pub fn start_worker(host: Host<'_>, file: &Path, name: &str) -> Proc {
    let mut proc = Proc::spawn(
        &format!("wask-worker {name}"),
        worker_command(host, file, name),
    );
    proc.wait_for_line("wask-worker ", START_TIMEOUT);
    proc
}

/// A finished run of a program.
#[derive(Debug)]
pub struct Run {
    /// How it ended.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the program exited with 0.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}
