//! The wasmtime sandbox: one [`Sandbox`] per worker compiles modules into
//! [`Compiled`] handles and runs each task call in a fresh instance.
//!
//! # Layout
//! - `engine`: an `Engine`: pooling allocator, epoch interruption, the
//!   wasm stack limit and exactly the WebAssembly 2.0 features.
//! - `tiers`: an engine per stack limit (a power of two), made on first use.
//! - `compile`: compiling a module, in a bounded child process or here.
//! - `ticker`: the thread that advances the epochs (the time limit).
//! - `call`: the host state of one call (the `T` of `Store<T>`).
//! - `limits`: the `ResourceLimiter` enforcing the memory and table limits.
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
mod compile;
mod engine;
mod limits;
mod memory;
mod run;
mod stack;
mod ticker;
mod tiers;
mod wasi;

#[cfg(test)]
pub(crate) mod test_guest;
#[cfg(test)]
mod tests;

pub use compile::{Compiler, serve as serve_compile};

use call::Call;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tiers::{TIERS, Tiers, tier_of};
use wask_proto::TaskError;
use wask_proto::limits::ResolvedLimits;
use wask_proto::module::{ModuleInfo, ModulePolicy};
use wask_proto::signature::{ALLOC_EXPORT, TASK_EXPORT_PREFIX};
use wasmtime::{Engine, InstancePre, Module, ModuleExport};

/// How a worker's sandbox is sized.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Instances alive at once (the pool size); at least the number of
    /// threads that call [`Sandbox::run`]. Each stack tier in use has a pool
    /// of this size.
    pub max_instances: u32,
    /// The largest linear memory any task may be granted (the pool's slot
    /// size), at most 4 GiB. A task's memory limit is capped at this.
    pub memory_ceiling: u64,
    /// How often the epoch advances: the granularity of time limits. Each
    /// tick wakes the ticker thread, so finer ticks cost CPU that the
    /// tasks would otherwise get (1 ms ticks were ~2% of a 2-core machine).
    pub epoch_tick: Duration,
    /// Where modules are compiled, and within which bounds.
    pub compiler: Compiler,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            max_instances: std::thread::available_parallelism().map_or(4, |n| n.get() as u32),
            memory_ceiling: 4 << 30,
            epoch_tick: Duration::from_millis(10),
            compiler: Compiler::InProcess,
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

/// A worker's wasm runtime: an engine per stack tier with the host
/// functions, the compiler and the epoch ticker (stopped when the sandbox
/// drops).
pub struct Sandbox {
    tiers: Arc<Tiers>,
    compiler: Compiler,
    /// The engine compiling in this process, with [`Compiler::InProcess`].
    compile_engine: Option<Engine>,
    memory_ceiling: u64,
    epoch_tick: Duration,
    // Declared last so the ticker stops after nothing else needs it.
    _ticker: ticker::Ticker,
}

/// A compiled module, ready to run any of its tasks at any stack limit.
/// Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Compiled {
    inner: Arc<CompiledInner>,
}

struct CompiledInner {
    info: ModuleInfo,
    /// The machine code, as this worker compiled it.
    artifact: Vec<u8>,
    /// The module loaded and linked into each stack tier's engine, on
    /// first use.
    linked: [OnceLock<Result<Linked, TaskError>>; TIERS],
}

/// A module loaded into one engine and linked with the host functions.
struct Linked {
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

impl CompiledInner {
    /// The module in tier `tier`, loaded and linked now if it is the first
    /// use there.
    fn linked(&self, tiers: &Tiers, tier: usize) -> Result<&Linked, TaskError> {
        self.linked[tier]
            .get_or_init(|| self.link(tiers, tier))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn link(&self, tiers: &Tiers, tier: usize) -> Result<Linked, TaskError> {
        let rejected = |reason: String| TaskError::ModuleRejected { reason };
        let tier = tiers.get(tier).map_err(|e| rejected(e.to_string()))?;
        // SAFETY: the artifact is what this worker's own compiler (this
        // process or its child process) made from the module, with the
        // settings every tier shares; it never comes from elsewhere.
        let module = unsafe { Module::deserialize(&tier.engine, &self.artifact) }
            .map_err(|e| rejected(format!("loading the compiled code failed: {e:#}")))?;
        let pre = tier
            .linker
            .instantiate_pre(&module)
            .map_err(|e| rejected(format!("linking failed: {e:#}")))?;
        let export = |name: &str| {
            module
                .get_export_index(name)
                .ok_or_else(|| rejected(format!("export {name} is missing")))
        };
        Ok(Linked {
            memory: export("memory")?,
            alloc: export(ALLOC_EXPORT)?,
            tasks: self
                .info
                .tasks
                .iter()
                .map(|t| export(&format!("{TASK_EXPORT_PREFIX}{}", t.name)))
                .collect::<Result<Vec<_>, _>>()?,
            stack_pointer: module.get_export_index(stack::STACK_POINTER_EXPORT),
            pre,
        })
    }
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
#[derive(Clone, Copy)]
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
    /// Called on the calling thread every time a running call checks its
    /// cancel flag (every 10 ms of its run), for work the thread must not
    /// put off until the call ends.
    pub on_check: Option<&'a CheckHook>,
}

impl std::fmt::Debug for RunRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRequest")
            .field("func", &self.func)
            .field("args", &self.args.len())
            .field("limits", &self.limits)
            .field("cancel", &self.cancel)
            .field("on_check", &self.on_check.is_some())
            .finish_non_exhaustive()
    }
}

/// See [`RunRequest::on_check`].
pub type CheckHook = std::sync::Arc<dyn Fn() + Send + Sync>;

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
    /// Creates the engine of the default stack tier (reserving its instance
    /// pool), defines the host functions and starts the epoch ticker.
    pub fn new(cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
        engine::check(&cfg)?;
        let compiler = cfg.compiler.clone();
        let compile_engine = match compiler {
            Compiler::InProcess => Some(compile::compile_engine().map_err(SandboxError::Engine)?),
            Compiler::Subprocess { .. } => None,
        };
        let (memory_ceiling, epoch_tick) = (cfg.memory_ceiling, cfg.epoch_tick);
        let tiers = Arc::new(Tiers::new(cfg));
        tiers.get(default_tier())?;
        let ticker =
            ticker::Ticker::start(tiers.clone(), epoch_tick).map_err(SandboxError::Ticker)?;
        Ok(Sandbox {
            tiers,
            compiler,
            compile_engine,
            memory_ceiling,
            epoch_tick,
            _ticker: ticker,
        })
    }

    /// Inspects, compiles and links a module (at the default stack tier;
    /// others on first use). Any refusal (policy, invalid wasm, an import
    /// the sandbox does not provide, a wrong import signature, the compile
    /// bounds) is [`TaskError::ModuleRejected`].
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled, TaskError> {
        let rejected = |reason: String| TaskError::ModuleRejected { reason };
        let info = wask_proto::module::inspect(wasm, &ModulePolicy::default())
            .map_err(|e| rejected(e.to_string()))?;
        let with_stack_pointer = stack::export_stack_pointer(wasm);
        let bytes = with_stack_pointer.as_deref().unwrap_or(wasm);
        let artifact = match (&self.compiler, &self.compile_engine) {
            (
                Compiler::Subprocess {
                    program,
                    args,
                    time_limit,
                    memory_limit,
                },
                _,
            ) => compile::in_subprocess(program, args, *time_limit, *memory_limit, bytes),
            (Compiler::InProcess, Some(engine)) => compile::in_process(engine, bytes),
            (Compiler::InProcess, None) => Err("no compile engine".to_string()),
        }
        .map_err(rejected)?;
        let inner = CompiledInner {
            info,
            artifact,
            linked: std::array::from_fn(|_| OnceLock::new()),
        };
        inner.linked(&self.tiers, default_tier())?;
        Ok(Compiled {
            inner: Arc::new(inner),
        })
    }

    /// Runs one task call in a fresh instance. Whatever the guest does, this
    /// returns (within the time limit plus a tick) and does not panic.
    pub fn run(&self, module: &Compiled, req: RunRequest<'_>) -> RunOutput {
        run::run(self, &module.inner, req)
    }
}

/// The tier of the default stack limit, made when the sandbox is.
fn default_tier() -> usize {
    tier_of(ResolvedLimits::default().stack_bytes)
}
