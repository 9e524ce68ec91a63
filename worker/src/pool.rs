//! The worker's wasm threads: `nthreads` OS threads that take [`Job`]s from
//! a channel, run each in the [`Sandbox`], and hand the outputs to a `done`
//! callback.
//!
//! Wasm never runs on tokio's threads: a task may compute (or sleep) for its
//! whole time limit, which would stall every connection sharing a runtime
//! thread. The async shell submits jobs and learns of their end through
//! `done` (which typically sends on a channel the shell awaits).
//!
//! A thread that has more jobs queued holds back the outputs of jobs that
//! took a while (see [`REPORT_HOLD`]) and hands them over together: each
//! hand-over wakes the async shell, which then sends a report, and on a
//! virtual machine a wake-up with what follows costs as much CPU as a
//! tenth of a millisecond of the task itself.

use crate::sandbox::{CheckHook, Compiled, RunOutput, RunRequest, Sandbox};
use crossbeam_channel::{Receiver, Sender};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wask_proto::TaskError;
use wask_proto::limits::ResolvedLimits;

/// Native stack of a wasm thread: wasm may use up to its task's stack limit
/// (at most `MAX_STACK`), the host functions and wasmtime's frames the rest.
const THREAD_STACK: usize = wask_proto::limits::MAX_STACK as usize + (4 << 20);

/// How long a wasm thread may hold finished jobs' outputs back after it
/// last handed some over, while it has more jobs queued (dask's workers
/// batch their reports for 2 ms the same way, queued work or not). The
/// last queued job's output takes the held ones along at once, and so does
/// the [`HOLD_MAX_JOBS`]th; a running job's check hook (every 10 ms of a
/// call) hands over what has been held for longer.
pub const REPORT_HOLD: Duration = Duration::from_micros(wask_proto::limits::REPORT_HOLD_US);

/// Most outputs held at once: tiny tasks go in batches of this many.
const HOLD_MAX_JOBS: usize = wask_proto::limits::REPORT_HOLD_MAX as usize;

/// What `done` is handed: one job's output, or several that were held
/// back and go together.
#[derive(Debug)]
pub enum Ended {
    /// One job, by id.
    One(u64, RunOutput),
    /// Several jobs, in the order they ended.
    Many(Vec<(u64, RunOutput)>),
}

impl IntoIterator for Ended {
    type Item = (u64, RunOutput);
    type IntoIter = std::iter::Chain<
        std::option::IntoIter<(u64, RunOutput)>,
        std::vec::IntoIter<(u64, RunOutput)>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        match self {
            Ended::One(id, output) => Some((id, output)).into_iter().chain(Vec::new()),
            Ended::Many(list) => None.into_iter().chain(list),
        }
    }
}

/// The `done` callback.
type Done = Arc<dyn Fn(Ended) + Send + Sync>;

/// One task call to run.
pub struct Job {
    /// The caller's identifier for this job, handed back to `done`.
    pub id: u64,
    /// The compiled module.
    pub module: Compiled,
    /// The task number within the module.
    pub func: u32,
    /// The postcard-encoded arguments.
    pub args: Vec<u8>,
    /// The limits to enforce.
    pub limits: ResolvedLimits,
    /// Set to stop the job: before it starts, or while it runs.
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Key of the task's random stream.
    pub seed: [u8; 32],
}

/// A fixed set of threads running jobs; dropping it lets queued jobs finish
/// and joins the threads.
pub struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `nthreads` threads (at least one) named `wask-wasm-N`. The
    /// sandbox's `max_instances` must be at least `nthreads`.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread.
    pub fn new(
        nthreads: usize,
        sandbox: Arc<Sandbox>,
        done: impl Fn(Ended) + Send + Sync + 'static,
    ) -> Pool {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let done: Done = Arc::new(done);
        let threads = (0..nthreads.max(1))
            .map(|n| {
                let (queue, sandbox, done) = (queue.clone(), sandbox.clone(), done.clone());
                std::thread::Builder::new()
                    .name(format!("wask-wasm-{n}"))
                    .stack_size(THREAD_STACK)
                    .spawn(move || work(&queue, &sandbox, done))
                    .expect("cannot start a wasm thread")
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            threads,
        }
    }

    /// Queues a job; one of the threads runs it and hands its output to
    /// `done` under its id.
    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The threads only stop when `jobs` is dropped, in `Drop`, so the
            // channel is open here.
            let _ = jobs.send(job);
        }
    }

    /// Jobs waiting for a thread.
    pub fn queued(&self) -> usize {
        self.jobs.as_ref().map_or(0, Sender::len)
    }

    /// Number of threads.
    pub fn nthreads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// How long a wasm thread that ran out of jobs keeps looking for the next
/// one before it sleeps. A job that arrives in that time is taken without
/// a wake-up: on a virtual machine whose idle CPUs halt, waking a sleeping
/// thread costs tens of µs, more than a small task itself. The thread yields
/// its CPU to any other runnable thread while it looks.
pub(crate) const LINGER: Duration = Duration::from_micros(250);

/// The next job: at once if one is queued, else after lingering for one
/// (see [`LINGER`]), else when one arrives. `None` once the pool closes.
/// Held outputs are handed over before the thread waits.
fn next_job(queue: &Receiver<Job>, reports: &Reports) -> Option<Job> {
    if let Ok(job) = queue.try_recv() {
        return Some(job);
    }
    reports.send_held();
    let start = Instant::now();
    loop {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
            Err(crossbeam_channel::TryRecvError::Empty) if start.elapsed() < LINGER => {
                std::thread::yield_now();
            }
            Err(crossbeam_channel::TryRecvError::Empty) => return queue.recv().ok(),
        }
    }
}

/// A thread's finished jobs on their way to `done` (see [`REPORT_HOLD`]).
struct Reports {
    done: Done,
    /// Locked by the thread itself only, between jobs and from its calls'
    /// check hook: never contended.
    held: Mutex<Held>,
}

struct Held {
    outputs: Vec<(u64, RunOutput)>,
    /// When outputs were last handed over.
    sent: Instant,
}

impl Reports {
    fn new(done: Done) -> Reports {
        Reports {
            done,
            held: Mutex::new(Held {
                outputs: Vec::new(),
                sent: Instant::now() - REPORT_HOLD,
            }),
        }
    }

    /// A job ended; `more` says whether another is queued for the thread.
    fn ended(&self, id: u64, output: RunOutput, more: bool) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if more
            && held.outputs.len() + 1 < HOLD_MAX_JOBS
            && now.duration_since(held.sent) < REPORT_HOLD
        {
            held.outputs.push((id, output));
            return;
        }
        held.sent = now;
        let ended = if held.outputs.is_empty() {
            Ended::One(id, output)
        } else {
            let mut outputs = std::mem::take(&mut held.outputs);
            outputs.push((id, output));
            Ended::Many(outputs)
        };
        drop(held);
        self.hand_over(ended);
    }

    /// Hands over whatever is held.
    fn send_held(&self) {
        self.send_held_if(|_| true);
    }

    /// From a running call's check hook: hands over what has been held
    /// for [`REPORT_HOLD`].
    fn check(&self) {
        self.send_held_if(|held| held.sent.elapsed() >= REPORT_HOLD);
    }

    /// Hands over what is held, if anything is and `due` says so.
    fn send_held_if(&self, due: impl FnOnce(&Held) -> bool) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.outputs.is_empty() || !due(&held) {
            return;
        }
        held.sent = Instant::now();
        let outputs = std::mem::take(&mut held.outputs);
        drop(held);
        self.hand_over(Ended::Many(outputs));
    }

    fn hand_over(&self, ended: Ended) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (self.done)(ended))) {
            tracing::error!("the completion callback panicked: {}", panic_text(&*panic));
        }
    }
}

/// A thread's loop: run jobs until the channel closes.
fn work(queue: &Receiver<Job>, sandbox: &Sandbox, done: Done) {
    let reports = Arc::new(Reports::new(done));
    let hook: CheckHook = {
        let reports = reports.clone();
        Arc::new(move || reports.check())
    };
    while let Some(job) = next_job(queue, &reports) {
        if job.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            let output = RunOutput {
                result: Err(TaskError::Cancelled),
                stdout: Vec::new(),
                stderr: Vec::new(),
                elapsed: Duration::ZERO,
            };
            reports.ended(job.id, output, !queue.is_empty());
            continue;
        }
        let req = RunRequest {
            func: job.func,
            args: &job.args,
            limits: job.limits,
            seed: job.seed,
            cancel: Some(&job.cancel),
            on_check: Some(&hook),
        };
        // `run` does not panic on anything a guest does; should a bug make it
        // panic anyway, the job still gets an answer and the thread lives on.
        let output = catch_unwind(AssertUnwindSafe(|| sandbox.run(&job.module, req)))
            .unwrap_or_else(|panic| {
                let what = panic_text(&*panic);
                tracing::error!(job = job.id, "the sandbox panicked: {what}");
                RunOutput {
                    result: Err(TaskError::Trap {
                        message: format!("worker bug: the sandbox panicked: {what}"),
                    }),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    elapsed: Duration::ZERO,
                }
            });
        drop(job.args);
        reports.ended(job.id, output, !queue.is_empty());
    }
    reports.send_held();
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SandboxConfig;

    /// A module whose task `echo` returns its arguments.
    fn echo_module(sandbox: &Sandbox) -> Compiled {
        let wasm = crate::sandbox::test_guest::module(
            "",
            1,
            r#"(func (export "wask:task:echo") (param $p i32) (param $n i32) (result i64)
                (local $out i32)
                (local.set $out (call $alloc (i32.add (local.get $n) (i32.const 1))))
                (i32.store8 (local.get $out) (i32.const 0))
                (memory.copy (i32.add (local.get $out) (i32.const 1)) (local.get $p) (local.get $n))
                (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
                        (i64.extend_i32_u (i32.add (local.get $n) (i32.const 1)))))"#,
            &["echo"],
        );
        sandbox.compile(&wasm).unwrap()
    }

    #[test]
    fn runs_every_job_on_named_threads_and_joins_on_drop() {
        let cfg = SandboxConfig {
            max_instances: 2,
            memory_ceiling: 16 << 20,
            ..SandboxConfig::default()
        };
        let sandbox = Arc::new(Sandbox::new(cfg).unwrap());
        let module = echo_module(&sandbox);
        let (tx, rx) = crossbeam_channel::unbounded();
        let pool = Pool::new(2, sandbox, move |ended| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            for (id, out) in ended {
                tx.send((id, out, thread.clone())).unwrap();
            }
        });
        assert_eq!(pool.nthreads(), 2);
        for id in 0..20u64 {
            let job = Job {
                id,
                module: module.clone(),
                func: 0,
                args: id.to_le_bytes().to_vec(),
                limits: ResolvedLimits::default(),
                seed: [0; 32],
                cancel: Default::default(),
            };
            pool.submit(job);
        }
        drop(pool);
        let mut seen: Vec<u64> = rx
            .try_iter()
            .map(|(id, out, thread)| {
                assert!(thread.starts_with("wask-wasm-"), "{thread}");
                assert_eq!(out.result, Ok(id.to_le_bytes().to_vec()));
                id
            })
            .collect();
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }

    /// A task that loops until cancelled.
    const SPIN: &str = r#"(func (export "wask:task:spin") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))"#;

    /// A sandbox of two instances with `body`'s tasks compiled in it, and a
    /// pool of one thread whose outputs arrive on the receiver.
    fn one_thread(
        body: &str,
        tasks: &[&str],
    ) -> (
        Pool,
        Compiled,
        crossbeam_channel::Receiver<(u64, RunOutput)>,
    ) {
        let sandbox = Arc::new(
            Sandbox::new(SandboxConfig {
                max_instances: 2,
                ..SandboxConfig::default()
            })
            .unwrap(),
        );
        let wasm = crate::sandbox::test_guest::module("", 1, body, tasks);
        let module = sandbox.compile(&wasm).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let pool = Pool::new(1, sandbox, move |ended| {
            for (id, out) in ended {
                tx.send((id, out)).unwrap();
            }
        });
        (pool, module, rx)
    }

    #[test]
    fn a_cancelled_job_stops_long_before_its_time_limit() {
        let (pool, module, rx) = one_thread(SPIN, &["spin"]);
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let limits = ResolvedLimits {
            time_ms: 600_000,
            ..ResolvedLimits::default()
        };
        pool.submit(Job {
            id: 1,
            module,
            func: 0,
            args: Vec::new(),
            limits,
            seed: [0; 32],
            cancel: cancel.clone(),
        });
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        let (id, out) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("cancelled well before the 10 min limit");
        assert_eq!((id, out.result), (1, Err(TaskError::Cancelled)));
    }

    fn output(elapsed: Duration) -> RunOutput {
        RunOutput {
            result: Ok(Vec::new()),
            stdout: Vec::new(),
            stderr: Vec::new(),
            elapsed,
        }
    }

    /// `Reports` handing over to a channel, one message per hand-over.
    fn reports() -> (Reports, crossbeam_channel::Receiver<Vec<u64>>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let done: Done = Arc::new(move |ended: Ended| {
            tx.send(ended.into_iter().map(|(id, _)| id).collect())
                .unwrap();
        });
        (Reports::new(done), rx)
    }

    #[test]
    fn outputs_are_held_only_while_more_jobs_are_queued_and_not_for_long() {
        let ms = Duration::from_millis(1);
        let (reports, rx) = reports();
        // Nothing was handed over for a while: the first goes at once.
        reports.ended(1, output(ms), true);
        assert_eq!(rx.try_recv(), Ok(vec![1]));
        // Within the hold, with more queued: held.
        reports.ended(2, output(ms), true);
        reports.ended(3, output(ms), true);
        assert!(rx.try_recv().is_err());
        // The last queued job takes the held ones with it.
        reports.ended(4, output(ms), false);
        assert_eq!(rx.try_recv(), Ok(vec![2, 3, 4]));
        // However short the job.
        reports.ended(5, output(Duration::from_micros(10)), true);
        assert!(rx.try_recv().is_err());
        // Once the hold has passed, the next job's end hands them over.
        reports.ended(7, output(ms), true);
        reports.held.lock().unwrap().sent -= REPORT_HOLD;
        reports.ended(8, output(ms), true);
        assert_eq!(rx.try_recv(), Ok(vec![5, 7, 8]));
        // A running call's check hands them over once the hold has passed,
        // and not before.
        reports.ended(9, output(ms), true);
        reports.check();
        assert!(rx.try_recv().is_err());
        reports.held.lock().unwrap().sent -= REPORT_HOLD;
        reports.check();
        assert_eq!(rx.try_recv(), Ok(vec![9]));
        // At most `HOLD_MAX_JOBS` at once.
        for id in 0..HOLD_MAX_JOBS as u64 {
            reports.ended(id, output(ms), true);
        }
        assert_eq!(rx.try_recv().map(|v| v.len()), Ok(HOLD_MAX_JOBS));
        reports.send_held();
        assert!(rx.try_recv().is_err(), "nothing was left held");
    }

    #[test]
    fn held_outputs_arrive_while_a_long_job_runs() {
        // `count`: a few ms of a counted loop; `spin`: until cancelled.
        let count = r#"(func (export "wask:task:count") (param i32 i32) (result i64)
                (local $i i32) (local $out i32)
                (local.set $i (i32.const 3000000))
                (loop $l
                    (local.set $i (i32.sub (local.get $i) (i32.const 1)))
                    (br_if $l (local.get $i)))
                (local.set $out (call $alloc (i32.const 1)))
                (i32.store8 (local.get $out) (i32.const 0))
                (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.const 1)))"#;
        let (pool, module, rx) = one_thread(&format!("{count}\n{SPIN}"), &["count", "spin"]);
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let job = |id, func, cancel: Arc<std::sync::atomic::AtomicBool>| Job {
            id,
            module: module.clone(),
            func,
            args: Vec::new(),
            limits: ResolvedLimits {
                time_ms: 600_000,
                ..ResolvedLimits::default()
            },
            seed: [0; 32],
            cancel,
        };
        // The second `count` ends with `spin` queued behind it: its output
        // may be held, but not for as long as `spin` runs.
        pool.submit(job(1, 0, Default::default()));
        pool.submit(job(2, 0, Default::default()));
        pool.submit(job(3, 1, cancel.clone()));
        let first: Vec<_> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(60)))
            .collect();
        // Before asserting: a failed test must not leave `spin` running.
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        for (want, got) in [1, 2].into_iter().zip(first) {
            let (id, out) = got.expect("a held output waited for the long job");
            assert_eq!((id, out.result), (want, Ok(Vec::new())));
        }
        let (id, out) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!((id, out.result), (3, Err(TaskError::Cancelled)));
    }
}
