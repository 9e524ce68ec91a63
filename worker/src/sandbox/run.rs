//! One call of a task: a fresh store and instance, the arguments copied in
//! through `wask:alloc`, the task export called, its output read back, and
//! every way this can go wrong mapped to a [`TaskError`].
//!
//! When a call fails, the most specific cause wins, in this order:
//! 1. what a host function recorded when it stopped the guest (output
//!    limit, a sleep past the time limit, `proc_exit`);
//! 2. an epoch interrupt: [`TaskError::Timeout`];
//! 3. memory refused by the limiter: [`TaskError::MemoryLimit`] (the guest's
//!    allocator aborts when it cannot grow, so the trap is only a symptom),
//!    then a refused `table.grow` ([`Limit::TableElements`]);
//! 4. stack exhaustion: [`TaskError::StackOverflow`], for wasmtime's
//!    native stack and for the shadow stack rustc keeps in linear memory
//!    (see [`super::stack`]);
//! 5. a panic message reported through `wask.panic`: [`TaskError::Panic`];
//! 6. anything else: [`TaskError::Trap`] with wasmtime's description.

use super::call::Call;
use super::limits::CallLimiter;
use super::{CompiledInner, Linked, RunOutput, RunRequest, Sandbox, engine, stack, ticker, tiers};
use std::time::Instant;
use wask_proto::TaskError;
use wask_proto::error::Limit;
use wasmtime::{Extern, Instance, Memory, ModuleExport, Store, Trap, Val, WasmBacktrace};

/// Status byte of a task's output: the postcard result follows.
const STATUS_OK: u8 = 0;
/// Status byte: the task returned `Err`; its UTF-8 text follows.
const STATUS_FAILED: u8 = 1;
/// Status byte: the arguments did not decode; the decoder's text follows.
const STATUS_BAD_ARGS: u8 = 2;

/// Why a call ended without a result.
enum Stop {
    /// wasmtime reported an error: a trap, a host function's error, or a
    /// failed instantiation. Classified against the call's state.
    Wasm(wasmtime::Error),
    /// The outcome is already known.
    Task(TaskError),
}

impl From<wasmtime::Error> for Stop {
    fn from(e: wasmtime::Error) -> Self {
        Stop::Wasm(e)
    }
}

fn abi(message: String) -> Stop {
    Stop::Task(TaskError::Abi { message })
}

/// Runs `req` against `module` in a fresh store.
pub(super) fn run(sandbox: &Sandbox, module: &CompiledInner, req: RunRequest<'_>) -> RunOutput {
    let started = Instant::now();
    let failed = |result: TaskError| RunOutput {
        result: Err(result),
        stdout: Vec::new(),
        stderr: Vec::new(),
        elapsed: started.elapsed(),
    };
    let module = match module.linked(&sandbox.tiers, tiers::tier_of(req.limits.stack_bytes)) {
        Ok(linked) => linked,
        Err(e) => return failed(e),
    };
    let Some(&task) = module.tasks.get(req.func as usize) else {
        let message = format!(
            "task number {} does not exist; the module has {} tasks",
            req.func,
            module.tasks.len()
        );
        return failed(TaskError::Abi { message });
    };
    let memory_limit = req.limits.memory_bytes.min(sandbox.memory_ceiling);
    let limiter = CallLimiter::new(
        memory_limit,
        engine::max_table_elements(),
        engine::max_tables() as usize,
    );
    let call = Call::new(limiter, module.memory, req.limits, req.seed, started);
    let mut store = Store::new(module.pre.module().engine(), call);
    store.limiter(|call| &mut call.limiter);
    // Before instantiation, so that a start function that loops stops too.
    // The time limit is granted in steps of at most CANCEL_CHECK and
    // checked against the wall clock at each step (the ticker's ticks can
    // run slow on a loaded machine), and a cancelled call stops within a step.
    let tick = sandbox.epoch_tick;
    let total = ticker::deadline_ticks(req.limits.time_ms, tick);
    store.data_mut().cancel = req.cancel.cloned();
    store.data_mut().on_check = req.on_check.cloned();
    let step = cancel_check_ticks(tick);
    store.set_epoch_deadline(total.min(step));
    store.epoch_deadline_callback(move |mut ctx| {
        let call = ctx.data_mut();
        if let Some(hook) = &call.on_check {
            hook();
        }
        if call
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            call.fault.get_or_insert(TaskError::Cancelled);
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        let limit = std::time::Duration::from_millis(call.limits.time_ms);
        let elapsed = call.started.elapsed();
        if elapsed >= limit {
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        let left = ticker::deadline_ticks((limit - elapsed).as_millis() as u64, tick);
        Ok(wasmtime::UpdateDeadline::Continue(left.clamp(1, step)))
    });

    let outcome = call_task(&mut store, module, task, req.args, req.limits.result_bytes);
    let elapsed = started.elapsed();
    let mut call = store.into_data();
    let result =
        outcome.map_err(|stop| classify(stop, &mut call, req.limits.time_ms, memory_limit));
    RunOutput {
        result,
        stdout: call.stdout,
        stderr: call.stderr,
        elapsed,
    }
}

/// How often a running call checks its cancel flag and the wall clock.
const CANCEL_CHECK: std::time::Duration = std::time::Duration::from_millis(10);

/// [`CANCEL_CHECK`] in epoch ticks of `tick` (at least one).
fn cancel_check_ticks(tick: std::time::Duration) -> u64 {
    (CANCEL_CHECK.as_nanos() / tick.as_nanos().max(1)).clamp(1, 1 << 20) as u64
}

/// Instantiates, passes `args`, calls `task` and reads its output.
fn call_task(
    store: &mut Store<Call>,
    module: &Linked,
    task: ModuleExport,
    args: &[u8],
    result_max: u64,
) -> Result<Vec<u8>, Stop> {
    let instance = module.pre.instantiate(&mut *store)?;
    let result = call_instance(store, module, instance, task, args, result_max);
    if let Err(Stop::Wasm(error)) = &result
        && error.downcast_ref::<Trap>() == Some(&Trap::MemoryOutOfBounds)
    {
        store.data_mut().stack_ran_out = shadow_stack_ran_out(store, module, instance);
    }
    result
}

/// Whether the instance's shadow stack pointer wrapped (see
/// [`super::stack`]).
fn shadow_stack_ran_out(store: &mut Store<Call>, module: &Linked, instance: Instance) -> bool {
    let Some(export) = &module.stack_pointer else {
        return false;
    };
    let (Some(Extern::Global(sp)), Some(Extern::Memory(memory))) = (
        instance.get_module_export(&mut *store, export),
        instance.get_module_export(&mut *store, &module.memory),
    ) else {
        return false;
    };
    match sp.get(&mut *store) {
        Val::I32(sp) => stack::wrapped(sp as u32, memory.data_size(&*store)),
        _ => false,
    }
}

/// Passes `args` to `task` of `instance`, calls it and reads its output.
fn call_instance(
    store: &mut Store<Call>,
    module: &Linked,
    instance: Instance,
    task: ModuleExport,
    args: &[u8],
    result_max: u64,
) -> Result<Vec<u8>, Stop> {
    let (Some(Extern::Memory(memory)), Some(Extern::Func(alloc)), Some(Extern::Func(task))) = (
        instance.get_module_export(&mut *store, &module.memory),
        instance.get_module_export(&mut *store, &module.alloc),
        instance.get_module_export(&mut *store, &task),
    ) else {
        // The inspector checked these exports; this cannot happen.
        return Err(abi(
            "the module's exports are not what inspection found".into()
        ));
    };
    // SAFETY: `inspect` checked that `wask:alloc` has type (i32) -> i32 and
    // every task export (i32, i32) -> i64, on the bytes this module was
    // compiled from (give or take the stack pointer export); `typed` would
    // only repeat that check on every call.
    let alloc = alloc.typed::<i32, i32>(&*store)?;
    let task = task.typed::<(i32, i32), i64>(&*store)?;

    let len = i32::try_from(args.len()).map_err(|_| {
        abi(format!(
            "{} bytes of arguments do not fit in wasm32",
            args.len()
        ))
    })?;
    let ptr = alloc.call(&mut *store, len)?;
    write_args(memory, store, ptr as u32, args)?;
    let packed = task.call(&mut *store, (ptr, len))? as u64;
    read_output(
        memory,
        store,
        (packed >> 32) as u32,
        packed as u32,
        result_max,
    )
}

/// Copies the arguments to where `wask:alloc` said.
fn write_args(memory: Memory, store: &mut Store<Call>, ptr: u32, args: &[u8]) -> Result<(), Stop> {
    if args.is_empty() {
        // The guest's allocator may return a dangling pointer for zero bytes.
        return Ok(());
    }
    let mem = memory.data_mut(&mut *store);
    let size = mem.len();
    let Some(dest) = super::memory::bytes_mut(mem, ptr, args.len()) else {
        return Err(abi(format!(
            "wask:alloc returned {ptr:#x} for {} bytes, outside memory of {size} bytes",
            args.len()
        )));
    };
    dest.copy_from_slice(args);
    Ok(())
}

/// Reads the task's output at `[ptr, ptr + len)`: a status byte and a
/// payload.
fn read_output(
    memory: Memory,
    store: &Store<Call>,
    ptr: u32,
    len: u32,
    result_max: u64,
) -> Result<Vec<u8>, Stop> {
    let mem = memory.data(store);
    let Some(output) = super::memory::bytes(mem, ptr, len as usize) else {
        return Err(abi(format!(
            "the task's output at {ptr:#x} ({len} bytes) is outside memory of {} bytes",
            mem.len()
        )));
    };
    let Some((&status, payload)) = output.split_first() else {
        return Err(abi("the task's output is empty (no status byte)".into()));
    };
    if payload.len() as u64 > result_max {
        return Err(Stop::Task(TaskError::LimitExceeded {
            limit: Limit::ResultSize,
            size: payload.len() as u64,
            max: result_max,
        }));
    }
    let text = || String::from_utf8_lossy(payload).into_owned();
    match status {
        STATUS_OK => Ok(payload.to_vec()),
        STATUS_FAILED => Err(Stop::Task(TaskError::Failed { message: text() })),
        STATUS_BAD_ARGS => Err(abi(format!("the arguments did not decode: {}", text()))),
        other => Err(abi(format!(
            "the task's output has an unknown status byte {other}"
        ))),
    }
}

/// Maps a failed call to its `TaskError`, most specific cause first (see
/// the module docs).
fn classify(stop: Stop, call: &mut Call, limit_ms: u64, memory_limit: u64) -> TaskError {
    let error = match stop {
        Stop::Task(e) => return e,
        Stop::Wasm(error) => error,
    };
    if let Some(fault) = call.fault.take() {
        return fault;
    }
    let trap = error.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::Interrupt) {
        return TaskError::Timeout { limit_ms };
    }
    if call.limiter.memory_refused {
        return TaskError::MemoryLimit {
            limit_bytes: memory_limit,
        };
    }
    if let Some(size) = call.limiter.table_refused {
        return TaskError::LimitExceeded {
            limit: Limit::TableElements,
            size: size as u64,
            max: engine::max_table_elements() as u64,
        };
    }
    if trap == Some(Trap::StackOverflow) || call.stack_ran_out {
        return TaskError::StackOverflow;
    }
    if let Some(message) = call.panic.take() {
        return TaskError::Panic { message };
    }
    let mut message = match trap {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if let Some((address, memory_size)) = fault_address(&error) {
        message.push_str(&format!(
            " at wasm address {address:#x} (memory is {memory_size:#x} bytes)"
        ));
    }
    if let (Some(_), Some(backtrace)) = (trap, error.downcast_ref::<WasmBacktrace>()) {
        message.push_str(&format!("\n{backtrace}"));
    }
    TaskError::Trap { message }
}

/// The wasm address and the memory size of a memory fault, for the trap's
/// message. wasmtime adds them to a trap caught by its signal handler as a
/// context whose text is `memory fault at wasm address 0x… in linear memory
/// of size 0x…` (the type itself is private; a test pins the format).
fn fault_address(error: &wasmtime::Error) -> Option<(u64, u64)> {
    error.chain().find_map(|cause| {
        let text = cause.to_string();
        let rest = text.strip_prefix("memory fault at wasm address 0x")?;
        let (address, rest) = rest.split_once(' ')?;
        let size = rest.strip_prefix("in linear memory of size 0x")?;
        Some((
            u64::from_str_radix(address, 16).ok()?,
            u64::from_str_radix(size, 16).ok()?,
        ))
    })
}
