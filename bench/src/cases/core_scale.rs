//! core_scale: the scheduler's sans-io core alone (no network, no wasm),
//! driven through a million tasks by simulated workers.
//!
//! The graph: `L = tasks/2 + 1` leaves with no dependencies (`inc`), then
//! `tasks − L` tasks where task `L + j` adds the results of tasks `2j` and
//! `2j + 1` (`add`): a binary reduction tree over the leaves, fed to the
//! core in `Submit` events of 10,000 specs, as a client's `map` would send
//! them. `workers` simulated workers of one thread join first (so
//! `saturation` × `workers` tasks are in flight and the rest wait in the
//! core's queue). After submission the client releases every key except the
//! tree's roots, as a client holding only the final future would; each
//! `Compute` the core emits is answered with a `Finished` (a 1-byte value)
//! from that worker, one event per worker per round with all of its
//! tasks; at the end the roots are released too.
//!
//! Transitions: 4 per task, checked by counting actions: waiting → ready
//! (queued or dispatched), ready → processing (one `Compute` each),
//! processing → memory (one `Finished` report each), memory → forgotten
//! (one `Free` each). `transitions_per_s` divides them by the whole run's
//! wall time (submission, releases and the drive, including building the
//! events).
//!
//! Bytes per task: with the counting allocator, the bytes allocated and not
//! freed from before `Core::new` to the moment every task is submitted and
//! none has finished (so including the 1000 workers' records and the few
//! thousand `Compute` actions not answered yet), divided by the tasks.

use crate::alloc::Meter;
use crate::report::{Line, round};
use anyhow::ensure;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use wask_proto::msg::{Finished, TaskSpec};
use wask_proto::template::{ArgTemplate, Hole};
use wask_proto::{ClientId, KeyId, ModuleId, TaskLimits, TenantId, WorkerId};
use wask_scheduler::state::{Action, Core, CoreConfig, Event};

const CLIENT: ClientId = 1;
const TENANT: TenantId = 0;
const MODULE: ModuleId = 1;
const INC: u32 = 0;
const ADD: u32 = 1;
/// Specs per `Submit` event.
const BATCH: usize = 10_000;
/// The value every simulated task returns.
static VALUE: [u8; 1] = [2];

fn key(i: usize) -> KeyId {
    KeyId((i as u128 + 1).to_le_bytes())
}

/// The spec of task `i` of the graph with `leaves` leaves.
fn spec(i: usize, leaves: usize) -> anyhow::Result<TaskSpec> {
    let (func, args, deps) = if i < leaves {
        let bytes = postcard::to_allocvec(&(i as i64,))?;
        (INC, ArgTemplate::literal(bytes), Vec::new())
    } else {
        let j = i - leaves;
        let holes = vec![Hole { at: 0, dep: 0 }, Hole { at: 0, dep: 1 }];
        let args = ArgTemplate {
            bytes: Bytes::new(),
            holes,
        };
        (ADD, args, vec![key(2 * j), key(2 * j + 1)])
    };
    Ok(TaskSpec {
        key: key(i),
        pure: false,
        module: MODULE,
        func,
        args,
        deps,
        limits: TaskLimits::default(),
    })
}

/// What the core asked for, counted.
#[derive(Default)]
struct Tally {
    /// `Compute` actions not answered yet: (worker, tenant, key).
    pending: Vec<(WorkerId, TenantId, KeyId)>,
    computes: u64,
    frees: u64,
    client_done: u64,
    other: u64,
}

impl Tally {
    fn take(&mut self, out: &mut Vec<Action>) {
        for action in out.drain(..) {
            match action {
                Action::Compute { worker, task } => {
                    self.computes += 1;
                    self.pending.push((worker, task.tenant, task.key));
                }
                Action::Free { .. } => self.frees += 1,
                Action::ClientDone { .. } => self.client_done += 1,
                _ => self.other += 1,
            }
        }
    }
}

/// Runs the case with `tasks` tasks on `workers` simulated workers.
pub fn run(tasks: usize, workers: u32) -> anyhow::Result<Line> {
    ensure!(
        tasks >= 1 && workers >= 1,
        "core_scale needs tasks and workers"
    );
    let leaves = (tasks / 2 + 1).min(tasks);
    let internal = tasks - leaves;
    // Tasks 0..2*internal feed an `add`; the rest are roots.
    let first_root = 2 * internal;

    let meter = Meter::start();
    let t_all = Instant::now();
    let mut core = Core::new(CoreConfig::default());
    let mut out = Vec::new();
    let mut tally = Tally::default();
    let mut events = 0u64;
    for w in 1..=workers {
        core.handle(
            Event::WorkerJoined {
                worker: w,
                name: format!("sim-{w}"),
                address: format!("10.0.{}.{}:9000", w / 256, w % 256),
                nthreads: 1,
                memory_limit: 1 << 30,
            },
            &mut out,
        );
    }
    core.handle(
        Event::ClientConnected {
            client: CLIENT,
            tenant: TENANT,
        },
        &mut out,
    );
    core.handle(
        Event::ModuleRegistered {
            module: MODULE,
            tenant: TENANT,
            task_names: Arc::from(vec!["inc".to_string(), "add".to_string()]),
        },
        &mut out,
    );
    tally.take(&mut out);

    let t_submit = Instant::now();
    for start in (0..tasks).step_by(BATCH) {
        let batch = (start..(start + BATCH).min(tasks))
            .map(|i| spec(i, leaves))
            .collect::<anyhow::Result<Vec<_>>>()?;
        core.handle(
            Event::Submit {
                client: CLIENT,
                tasks: batch,
            },
            &mut out,
        );
        events += 1;
        tally.take(&mut out);
    }
    let submit_s = t_submit.elapsed().as_secs_f64();
    let live = meter.live();
    let peak = meter.peak();
    drop(meter);
    ensure!(
        tally.other == 0,
        "the core refused or failed tasks at submission"
    );

    let t_drive = Instant::now();
    for start in (0..first_root).step_by(BATCH) {
        let keys = (start..(start + BATCH).min(first_root)).map(key).collect();
        core.handle(
            Event::Release {
                client: CLIENT,
                keys,
            },
            &mut out,
        );
        events += 1;
        tally.take(&mut out);
    }
    let mut per_worker: Vec<Vec<Finished>> = vec![Vec::new(); workers as usize + 1];
    let mut finished = 0u64;
    while !tally.pending.is_empty() {
        let round = std::mem::take(&mut tally.pending);
        for (worker, tenant, key) in round {
            per_worker[worker as usize].push(Finished {
                tenant,
                key,
                nbytes: 1,
                value: Some(Bytes::from_static(&VALUE)),
                duration_us: 1,
            });
        }
        for (worker, reports) in per_worker.iter_mut().enumerate() {
            if reports.is_empty() {
                continue;
            }
            finished += reports.len() as u64;
            core.handle(
                Event::Finished {
                    worker: worker as WorkerId,
                    tasks: std::mem::take(reports),
                },
                &mut out,
            );
            events += 1;
            tally.take(&mut out);
        }
    }
    let roots = (first_root..tasks).map(key).collect();
    core.handle(
        Event::Release {
            client: CLIENT,
            keys: roots,
        },
        &mut out,
    );
    events += 1;
    tally.take(&mut out);
    let drive_s = t_drive.elapsed().as_secs_f64();
    let wall = t_all.elapsed().as_secs_f64();

    let n = tasks as u64;
    ensure!(
        tally.computes == n && finished == n && tally.frees == n && tally.other == 0,
        "expected {n} computes, finishes and frees; got {} computes, {finished} finishes, \
         {} frees, {} other actions",
        tally.computes,
        tally.frees,
        tally.other
    );
    let left = core.info(TENANT).tasks;
    ensure!(left == 0, "{left} tasks are left in the core");
    let transitions = 4 * n;
    Ok(Line::new("core_scale")
        .with("tasks", tasks)
        .with("workers", workers)
        .with("leaves", leaves)
        .with("transitions", transitions)
        .with("transitions_per_task", 4)
        .with("events", events)
        .with("wall_s", round(wall, 4))
        .with("submit_s", round(submit_s, 4))
        .with("drive_s", round(drive_s, 4))
        .with("transitions_per_s", round(transitions as f64 / wall, 1))
        .with("tasks_per_s", round(tasks as f64 / wall, 1))
        .with("bytes_per_task", round(live as f64 / tasks as f64, 1))
        .with("peak_bytes_per_task", round(peak as f64 / tasks as f64, 1))
        .with("client_done", tally.client_done))
}
