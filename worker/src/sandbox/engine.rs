//! The wasmtime `Engine` of a worker: the pooling allocator sized from the
//! [`SandboxConfig`], epoch interruption, a bounded wasm stack, and exactly
//! the wasm features that `wask_proto::module::features()` accepts.
//! [`code_config`] is the part that decides the machine code.

use super::{SandboxConfig, SandboxError};
use wask_proto::module::ModulePolicy;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    WasmBacktraceDetails, WasmFeatures,
};

/// Tables a module may define (the module policy's limit).
pub(super) fn max_tables() -> u32 {
    ModulePolicy::default().max_tables
}

/// Elements any table may hold, initially or after growing (the module
/// policy's limit on initial elements).
pub(super) fn max_table_elements() -> usize {
    ModulePolicy::default().max_table_elements as usize
}

/// The largest linear memory a 32-bit wasm module can address; the pool's
/// slots are at most this large.
const MAX_CEILING: u64 = 4 << 30;

/// Bytes of a linear memory that are reset with `memset` (only the pages
/// that were touched, found with `PAGEMAP_SCAN` where the kernel has it)
/// rather than `madvise` when an instance is dropped. A Rust guest touches
/// its data, the top of its 1 MiB shadow stack and a few heap pages; keeping
/// those resident saves page faults and a syscall on every task.
const KEEP_RESIDENT: usize = 2 << 20;

/// Checks `cfg`.
pub(super) fn check(cfg: &SandboxConfig) -> Result<(), SandboxError> {
    if cfg.max_instances == 0 {
        return Err(SandboxError::Config(
            "max_instances must be at least 1".into(),
        ));
    }
    if cfg.memory_ceiling == 0 || cfg.memory_ceiling > MAX_CEILING {
        return Err(SandboxError::Config(format!(
            "memory_ceiling must be between 1 byte and 4 GiB, not {}",
            cfg.memory_ceiling
        )));
    }
    if cfg.epoch_tick.is_zero() {
        return Err(SandboxError::Config("epoch_tick must not be zero".into()));
    }
    Ok(())
}

/// The settings that decide the machine code: the same in every tier's
/// engine and in the compile subprocess, so that an artifact compiled by
/// one loads into any of them.
pub(super) fn code_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        // The same task gives the same bytes on any machine: NaN bit patterns
        // would otherwise depend on the host CPU.
        .cranelift_nan_canonicalization(true)
        // Backtraces name wasm functions only; DWARF parsing would make a
        // trap's cost depend on the environment (WASMTIME_BACKTRACE_DETAILS).
        .wasm_backtrace_details(WasmBacktraceDetails::Disable)
        // Exactly WebAssembly 2.0: switch off everything wasmtime enables by
        // default (tail calls, multi-memory, threads, ...) and turn on the set
        // the module inspector accepts, less `externref` (wasmparser's
        // GC_TYPES): wasmtime is built without a collector. rustc never emits
        // it; a module that uses it fails to compile, so it is still refused.
        .wasm_features(WasmFeatures::all(), false)
        .wasm_features(
            wask_proto::module::features() - WasmFeatures::GC_TYPES,
            true,
        );
    config
}

/// The engine of one stack tier: `cfg`'s instance pool and a wasm stack of
/// `stack` bytes.
pub(super) fn build(cfg: &SandboxConfig, stack: usize) -> Result<Engine, SandboxError> {
    check(cfg)?;

    let n = cfg.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(n)
        .total_memories(n)
        .total_tables(n.saturating_mul(max_tables()))
        .max_memories_per_module(1)
        .max_tables_per_module(max_tables())
        .table_elements(max_table_elements())
        .max_memory_size(cfg.memory_ceiling as usize)
        // Instance metadata grows with the functions a module exposes through
        // tables; the 1 MiB default is tight for large Rust guests.
        .max_core_instance_size(4 << 20)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = code_config();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(stack)
        // Unused (no async), but wasmtime requires it to exceed the above.
        .async_stack_size(stack + (1 << 20));
    Engine::new(&config).map_err(|e| SandboxError::Engine(format!("{e:#}")))
}
