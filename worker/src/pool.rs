//! The worker's wasm threads: `nthreads` OS threads that take [`Job`]s from
//! a channel, run each in the [`Sandbox`], and hand the output to a `done`
//! callback.
//!
//! Wasm never runs on tokio's threads: a task may compute (or sleep) for its
//! whole time limit, which would stall every connection sharing a runtime
//! thread. The async shell submits jobs and learns of their end through
//! `done` (which typically sends on a channel the shell awaits).

use crate::sandbox::{Compiled, RunOutput, RunRequest, Sandbox};
use crossbeam_channel::{Receiver, Sender};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use wask_proto::TaskError;
use wask_proto::limits::ResolvedLimits;

/// Native stack of a wasm thread: wasm may use up to its task's stack limit
/// (at most `MAX_STACK`), the host functions and wasmtime's frames the rest.
const THREAD_STACK: usize = wask_proto::limits::MAX_STACK as usize + (4 << 20);

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
        done: impl Fn(u64, RunOutput) + Send + Sync + 'static,
    ) -> Pool {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let done = Arc::new(done);
        let threads = (0..nthreads.max(1))
            .map(|n| {
                let (queue, sandbox, done) = (queue.clone(), sandbox.clone(), done.clone());
                std::thread::Builder::new()
                    .name(format!("wask-wasm-{n}"))
                    .stack_size(THREAD_STACK)
                    .spawn(move || work(&queue, &sandbox, &*done))
                    .expect("cannot start a wasm thread")
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            threads,
        }
    }

    /// Queues a job; one of the threads runs it and calls `done` with its id.
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
fn next_job(queue: &Receiver<Job>) -> Option<Job> {
    let start = std::time::Instant::now();
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

/// A thread's loop: run jobs until the channel closes.
fn work(queue: &Receiver<Job>, sandbox: &Sandbox, done: &(dyn Fn(u64, RunOutput) + Send + Sync)) {
    while let Some(job) = next_job(queue) {
        if job.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            let output = RunOutput {
                result: Err(TaskError::Cancelled),
                stdout: Vec::new(),
                stderr: Vec::new(),
                elapsed: Duration::ZERO,
            };
            let _ = catch_unwind(AssertUnwindSafe(|| done(job.id, output)));
            continue;
        }
        let req = RunRequest {
            func: job.func,
            args: &job.args,
            limits: job.limits,
            seed: job.seed,
            cancel: Some(&job.cancel),
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
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| done(job.id, output))) {
            tracing::error!(
                job = job.id,
                "the completion callback panicked: {}",
                panic_text(&*panic)
            );
        }
    }
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
        let pool = Pool::new(2, sandbox, move |id, out| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            tx.send((id, out, thread)).unwrap();
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

    #[test]
    fn a_cancelled_job_stops_long_before_its_time_limit() {
        let sandbox = Arc::new(
            Sandbox::new(SandboxConfig {
                max_instances: 2,
                ..SandboxConfig::default()
            })
            .unwrap(),
        );
        let wasm = crate::sandbox::test_guest::module(
            "",
            1,
            r#"(func (export "wask:task:spin") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))"#,
            &["spin"],
        );
        let module = sandbox.compile(&wasm).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let pool = Pool::new(1, sandbox, move |id, out| tx.send((id, out)).unwrap());
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
}
