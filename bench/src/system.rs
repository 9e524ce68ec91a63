//! What the `meta` line and the `cpu_s_*` fields report about this machine
//! and process: CPU time (getrusage), load average, CPU count, kernel.

use crate::report::{Line, round};
use std::path::Path;
use std::time::Duration;

/// User + system CPU time this process has used so far (all its threads:
/// the client and, with the embedded cluster, the scheduler and workers).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time used since a snapshot, as the peers' `cpu_delta`.
#[derive(Clone, Copy, Debug)]
pub struct CpuSnapshot(Duration);

impl CpuSnapshot {
    /// Now.
    pub fn take() -> CpuSnapshot {
        CpuSnapshot(process_cpu())
    }

    /// CPU time used since the snapshot.
    pub fn used(&self) -> CpuUsed {
        CpuUsed(process_cpu().saturating_sub(self.0))
    }
}

/// CPU time used during a case.
#[derive(Clone, Copy, Debug)]
pub struct CpuUsed(Duration);

impl CpuUsed {
    /// Adds `cpu_s_main` and `cpu_s_children` to a case's line. An embedded
    /// cluster runs in this process, so all of it is `main` and `children`
    /// is 0; with `--scheduler-file` the cluster's CPU is not seen at all.
    pub fn add_to(self, line: &mut Line) {
        line.set("cpu_s_main", round(self.0.as_secs_f64(), 3));
        line.set("cpu_s_children", 0.0);
    }
}

/// Scheduler time of a set of threads, from `/proc/self/task/N/schedstat`
/// (nanoseconds, unlike the clock-tick sampled `stat`: at 250 Hz a thread
/// woken by a timer can run between ticks and be charged nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SchedTime {
    /// Time on a CPU.
    pub run: Duration,
    /// Time runnable but waiting for a CPU.
    pub wait: Duration,
}

impl SchedTime {
    /// What was used since `before`.
    pub fn since(self, before: SchedTime) -> SchedTime {
        SchedTime {
            run: self.run.saturating_sub(before.run),
            wait: self.wait.saturating_sub(before.wait),
        }
    }

    fn add(&mut self, other: SchedTime) {
        self.run += other.run;
        self.wait += other.wait;
    }
}

/// [`SchedTime`] of this process's threads whose name starts with
/// `prefix`, e.g. the embedded workers' `wask-wasm-` threads.
pub fn threads_sched(prefix: &str) -> SchedTime {
    let mut total = SchedTime::default();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return total;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            total.add(task_sched(&t.path()));
        }
    }
    total
}

/// [`SchedTime`] of the process's main thread, which runs the bench's
/// tokio runtime: the client, and for an embedded cluster the scheduler
/// and the workers' async side.
pub fn main_thread_sched() -> SchedTime {
    task_sched(Path::new(&format!(
        "/proc/self/task/{}",
        std::process::id()
    )))
}

/// The thread at `task` (a `/proc/self/task/N` directory); zero if
/// unreadable.
fn task_sched(task: &Path) -> SchedTime {
    let text = std::fs::read_to_string(task.join("schedstat")).unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|f| Duration::from_nanos(f.parse().unwrap_or(0)));
    SchedTime {
        run: fields.next().unwrap_or_default(),
        wait: fields.next().unwrap_or_default(),
    }
}

/// The 1, 5 and 15 minute load averages (zeros if unknown).
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|s| s.parse::<f64>().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `Linux-<release>-<arch>`, close to Python's `platform.platform()`.
pub fn platform() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{}-{}-{}",
        std::env::consts::OS,
        release.trim(),
        std::env::consts::ARCH
    )
}
