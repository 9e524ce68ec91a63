//! The wasmtime sandbox: one [`Sandbox`] per worker compiles modules into
//! [`Compiled`] handles and runs each task call in a fresh instance.
//!
//! # Layout
//! - `engine`: the `Engine`: pooling allocator, epoch interruption, the
//!   wasm stack limit and exactly the WebAssembly 2.0 features.
//! - `ticker`: the thread that advances the epoch (the time limit).
//! - `call`: the host state of one call (the `T` of `Store<T>`).
//! - `limits`: the `ResourceLimiter` enforcing the memory limit.
//! - `memory`: bounds-checked access to guest memory.
//! - `stack`: finding the guest's shadow stack pointer, to tell a stack
//!   that ran out from other out-of-bounds accesses.
//! - `wasi`: the hand-written, deny-by-default WASI preview 1.
//! - `run`: one call: instantiate, pass the arguments, call, read the
//!   result, and map every way it can fail to a `TaskError`.
//!
//! A call shares nothing with the previous one: a new `Store`, a new
//! instance (its memory reset by the pooling allocator), new output buffers,
//! a virtual clock at zero and a random stream keyed by the task's seed.

mod call;
mod engine;
mod limits;
mod memory;
mod run;
mod stack;
mod ticker;
mod wasi;

#[cfg(test)]
pub(crate) mod test_guest;
#[cfg(test)]
mod tests;

use call::Call;
use std::sync::Arc;
use std::time::Duration;
use wask_proto::TaskError;
use wask_proto::limits::ResolvedLimits;
use wask_proto::module::{ModuleInfo, ModulePolicy};
use wask_proto::signature::{ALLOC_EXPORT, TASK_EXPORT_PREFIX};
use wasmtime::{Engine, InstancePre, Linker, Module, ModuleExport};

/// How a worker's sandbox is sized.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Instances alive at once (the pool size); at least the number of
    /// threads that call [`Sandbox::run`].
    pub max_instances: u32,
    /// The largest linear memory any task may be granted (the pool's slot
    /// size), at most 4 GiB. A task's memory limit is capped at this.
    pub memory_ceiling: u64,
    /// Bytes of native stack wasm may use.
    pub max_wasm_stack: usize,
    /// How often the epoch advances: the granularity of time limits.
    pub epoch_tick: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            max_instances: std::thread::available_parallelism().map_or(4, |n| n.get() as u32),
            memory_ceiling: 4 << 30,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(1),
        }
    }
}

/// Why a [`Sandbox`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The configuration is out of range.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// wasmtime refused the engine configuration (or could not reserve the
    /// pool's memory).
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The host functions could not be defined.
    #[error("cannot define the host functions: {0}")]
    Linker(String),
    /// The epoch ticker thread could not be started.
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// A worker's wasm runtime: the engine, the host functions and the epoch
/// ticker (stopped when the sandbox drops).
pub struct Sandbox {
    engine: Engine,
    linker: Linker<Call>,
    memory_ceiling: u64,
    epoch_tick: Duration,
    // Declared last so the ticker stops after nothing else needs it.
    _ticker: ticker::Ticker,
}

/// A module compiled and linked, ready to run any of its tasks. Cheap to
/// clone (an `Arc` inside).
#[derive(Clone)]
pub struct Compiled {
    inner: Arc<CompiledInner>,
}

struct CompiledInner {
    info: ModuleInfo,
    pre: InstancePre<Call>,
    /// The `memory` export.
    memory: ModuleExport,
    /// The `wask:alloc` export.
    alloc: ModuleExport,
    /// The export of each task, by task number.
    tasks: Vec<ModuleExport>,
    /// The export added for the shadow stack pointer, if the module has one.
    stack_pointer: Option<ModuleExport>,
}

impl Compiled {
    /// What the module inspector learned: hash, size, tasks.
    pub fn info(&self) -> &ModuleInfo {
        &self.inner.info
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("hash", &self.inner.info.hash)
            .field("tasks", &self.inner.info.tasks.len())
            .finish()
    }
}

/// One call of a task.
#[derive(Clone, Copy, Debug)]
pub struct RunRequest<'a> {
    /// The task number (its index in [`ModuleInfo::tasks`]).
    pub func: u32,
    /// The postcard-encoded arguments.
    pub args: &'a [u8],
    /// The limits to enforce.
    pub limits: ResolvedLimits,
    /// Key of the task's random stream (`random_get`).
    pub seed: [u8; 32],
    /// When set, the call stops (within a few epoch ticks) with
    /// [`TaskError::Cancelled`].
    pub cancel: Option<&'a std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// What a call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// The task's postcard-encoded result, or why there is none.
    pub result: Result<Vec<u8>, TaskError>,
    /// What the guest wrote to stdout.
    pub stdout: Vec<u8>,
    /// What the guest wrote to stderr.
    pub stderr: Vec<u8>,
    /// Wall time from the start of instantiation to the end of the call.
    pub elapsed: Duration,
}

impl Sandbox {
    /// Creates the engine (reserving the instance pool), defines the host
    /// functions and starts the epoch ticker.
    pub fn new(cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let engine = engine::build(&cfg)?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
        let ticker =
            ticker::Ticker::start(engine.clone(), cfg.epoch_tick).map_err(SandboxError::Ticker)?;
        Ok(Sandbox {
            engine,
            linker,
            memory_ceiling: cfg.memory_ceiling,
            epoch_tick: cfg.epoch_tick,
            _ticker: ticker,
        })
    }

    /// Inspects, compiles and links a module. Any refusal (policy, invalid
    /// wasm, an import the sandbox does not provide, a wrong import
    /// signature) is [`TaskError::ModuleRejected`].
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled, TaskError> {
        let rejected = |reason: String| TaskError::ModuleRejected { reason };
        let info = wask_proto::module::inspect(wasm, &ModulePolicy::default())
            .map_err(|e| rejected(e.to_string()))?;
        let with_stack_pointer = stack::export_stack_pointer(wasm);
        let bytes = with_stack_pointer.as_deref().unwrap_or(wasm);
        let module = Module::new(&self.engine, bytes)
            .map_err(|e| rejected(format!("compilation failed: {e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| rejected(format!("linking failed: {e:#}")))?;
        let export = |name: &str| {
            module
                .get_export_index(name)
                .ok_or_else(|| rejected(format!("export {name} is missing")))
        };
        let memory = export("memory")?;
        let alloc = export(ALLOC_EXPORT)?;
        let tasks = info
            .tasks
            .iter()
            .map(|t| export(&format!("{TASK_EXPORT_PREFIX}{}", t.name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Compiled {
            inner: Arc::new(CompiledInner {
                info,
                pre,
                memory,
                alloc,
                tasks,
                stack_pointer: module.get_export_index(stack::STACK_POINTER_EXPORT),
            }),
        })
    }

    /// Runs one task call in a fresh instance. Whatever the guest does, this
    /// returns (within the time limit plus a tick) and does not panic.
    pub fn run(&self, module: &Compiled, req: RunRequest<'_>) -> RunOutput {
        run::run(self, &module.inner, req)
    }
}
