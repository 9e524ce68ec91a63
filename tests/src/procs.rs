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

/// Runs the quickstart example on `host`, against `scheduler_file` or (with
/// `None`) its own embedded LocalCluster, to its end.
pub fn run_quickstart(host: Host<'_>, scheduler_file: Option<&Path>) -> Run {
    let mut cmd = host.command(&example("quickstart"));
    if let Some(f) = scheduler_file {
        cmd.arg("--scheduler-file").arg(f);
    }
    let mut proc = Proc::spawn("quickstart", cmd);
    let status = proc.wait(QUICKSTART_TIMEOUT);
    Run {
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

/// What the quickstart printed, step by step, each step checked against
/// the dask Client page as it is parsed.
#[derive(Debug)]
pub struct Quickstart {
    /// Workers the client saw (`… with N workers`).
    pub workers: usize,
    /// The key of `x = submit(inc, 10)`.
    pub x: String,
    /// The keys of `L[0]` and `L[1]` (`inc(0)`, `inc(1)`).
    pub l01: (String, String),
    /// The one key of the two identical pure calls `inc(5000)`.
    pub a: String,
    /// The two keys of the `pure(false)` calls.
    pub r: (String, String),
}

/// Whether `key` is `inc-<32 lower-case hex>`.
pub fn is_pure_inc_key(key: &str) -> bool {
    key.strip_prefix("inc-").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// Whether `key` is `inc-<uuid4>`, hyphenated lower-case.
pub fn is_uuid_inc_key(key: &str) -> bool {
    let Some(uuid) = key.strip_prefix("inc-") else {
        return false;
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

impl Quickstart {
    /// Parses and checks `stdout`; panics naming the first step that is
    /// missing or wrong, with the whole output.
    pub fn parse(stdout: &str) -> Quickstart {
        let lines: Vec<&str> = stdout.lines().collect();
        let fail = |what: &str| -> ! { panic!("quickstart: {what}\n{stdout}") };
        // The line right after the prompt `>>> <step>`.
        let answer = |step: &str| -> &str {
            let at = lines
                .iter()
                .position(|l| l.strip_prefix(">>> ") == Some(step))
                .unwrap_or_else(|| fail(&format!("no step {step:?}")));
            lines
                .get(at + 1)
                .unwrap_or_else(|| fail(&format!("no answer to {step:?}")))
        };
        let value = |prefix: &str| -> &str {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| fail(&format!("no {prefix:?} line")))
        };
        // `<Future: pending, key: K>` (finished if it was that quick).
        let future_key = |text: &str| -> String {
            let key = text
                .strip_prefix("<Future: pending, key: ")
                .or_else(|| text.strip_prefix("<Future: finished, key: "))
                .and_then(|k| k.strip_suffix('>'))
                .unwrap_or_else(|| fail(&format!("not a future: {text:?}")));
            if !is_pure_inc_key(key) {
                fail(&format!("not a pure inc key: {key:?}"));
            }
            key.to_string()
        };

        let workers = lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("<Client ")?
                    .split(" with ")
                    .nth(1)?
                    .strip_suffix(" workers")?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| fail("no `<Client …> with N workers` line"));
        let x = future_key(answer("x = client.submit(inc, 10)"));
        if answer("x.result()") != "11" {
            fail("x.result() is not 11");
        }
        let futures = answer("L = client.map(inc, range(1000))");
        let l = futures
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(", ... 1000 futures]"))
            .unwrap_or_else(|| fail("no list of 1000 futures"));
        let (l0, l1) = l
            .split_once(">, ")
            .unwrap_or_else(|| fail("not two futures before the count"));
        let l01 = (future_key(&format!("{l0}>")), future_key(l1));
        if answer("y.result()") != "12" {
            fail("y.result() is not 12");
        }
        if answer("total.result()") != "500500" {
            fail("total.result() is not 500500");
        }
        if answer("client.gather(L)") != "[1, 2, 3, ..., 1000] (1000 results)" {
            fail("gather(L) is not 1..=1000");
        }
        let (a, b) = (value("a.key = "), value("b.key = "));
        if a != b || !is_pure_inc_key(a) {
            fail("the identical pure calls do not share one pure key");
        }
        if !lines.contains(&"keys equal: true, results: 5001 5001, executions: 1") {
            fail("the identical pure calls were not computed once");
        }
        let (r1, r2) = (value("r1.key = "), value("r2.key = "));
        if r1 == r2 || !is_uuid_inc_key(r1) || !is_uuid_inc_key(r2) {
            fail("the pure(false) calls do not have two uuid4 keys");
        }
        if !lines.contains(&"keys differ: true, results: 2 2") {
            fail("the pure(false) calls did not both give 2");
        }
        if lines.last() != Some(&"quickstart: all steps OK") {
            fail("it does not end with `quickstart: all steps OK`");
        }
        let mut keys = [&x, &l01.0, &l01.1, &a.to_string()].map(|k| k.to_string());
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            fail("distinct calls share a key");
        }
        Quickstart {
            workers,
            x,
            l01,
            a: a.to_string(),
            r: (r1.to_string(), r2.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
>>> cluster = LocalCluster(n_workers=2)
<Client 3 to 127.0.0.1:56202> with 2 workers
>>> math = client.load_module(\"math.wasm\")
    inc(i64) -> i64

>>> x = client.submit(inc, 10)
<Future: pending, key: inc-ea3d2f53a79a26b94daa3070edbab259>
>>> x.result()
11

>>> L = client.map(inc, range(1000))
[<Future: pending, key: inc-ad221bf24f10af41d98e3f73d5503a98>, <Future: finished, key: inc-a03130b63599976a70a7ed853ea11cc3>, ... 1000 futures]

>>> y = client.submit(inc, x)
>>> y.result()
12

>>> total = client.submit(sum, L)
>>> total.result()
500500

>>> client.gather(L)
[1, 2, 3, ..., 1000] (1000 results)

>>> a = client.submit(inc, 5000); b = client.submit(inc, 5000)   # pure: same key, computed once
a.key = inc-e5ad793fcea4c9ecb9f4136a53171021
b.key = inc-e5ad793fcea4c9ecb9f4136a53171021
keys equal: true, results: 5001 5001, executions: 1

>>> r1 = client.submit(inc, 1, pure=False); r2 = client.submit(inc, 1, pure=False)
r1.key = inc-36e46d21-bae6-42e4-80f5-385d5b8ed4be
r2.key = inc-3f6a0519-b5bf-4bbf-94f2-edb42b6c9450
keys differ: true, results: 2 2

quickstart: all steps OK
";

    #[test]
    fn parses_the_quickstart() {
        let q = Quickstart::parse(OUTPUT);
        assert_eq!(q.workers, 2);
        assert_eq!(q.x, "inc-ea3d2f53a79a26b94daa3070edbab259");
        assert_eq!(q.l01.1, "inc-a03130b63599976a70a7ed853ea11cc3");
        assert_eq!(q.a, "inc-e5ad793fcea4c9ecb9f4136a53171021");
        assert_eq!(q.r.1, "inc-3f6a0519-b5bf-4bbf-94f2-edb42b6c9450");
    }

    #[test]
    fn refuses_a_wrong_step() {
        for (right, wrong) in [
            ("\n11\n", "\n111\n"),
            ("500500", "500501"),
            ("executions: 1", "executions: 2"),
            ("b.key = inc-e5ad", "b.key = inc-f5ad"),
            ("inc-ea3d2f53a79a26b94daa3070edbab259", "inc-ea3d2f53"),
            (
                "r2.key = inc-3f6a0519-b5bf-4",
                "r2.key = inc-3f6a0519-b5bf-1",
            ),
            ("..., 1000]", "..., 999]"),
            ("all steps OK\n", "all steps OK\nmore\n"),
        ] {
            assert!(OUTPUT.contains(right), "{right}");
            let broken = OUTPUT.replacen(right, wrong, 1);
            let parsed = std::panic::catch_unwind(|| Quickstart::parse(&broken));
            assert!(parsed.is_err(), "accepted {wrong:?} for {right:?}");
        }
    }
}
