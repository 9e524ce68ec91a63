//! Engines by stack limit. wasmtime fixes the wasm stack limit per engine,
//! so a sandbox keeps one engine per power of two between
//! [`MIN_STACK`] and [`MAX_STACK`], made on first use; a task runs in the
//! engine of the largest tier not above its limit. A compiled module is
//! loaded into each tier it runs in from one artifact (the stack limit is
//! not part of the code, so the artifact fits every tier).

use super::call::Call;
use super::{SandboxConfig, SandboxError, engine, wasi};
use std::sync::OnceLock;
use wask_proto::limits::{MAX_STACK, MIN_STACK};
use wasmtime::{Engine, Linker};

/// Number of tiers: 64 KiB, 128 KiB, ..., 8 MiB.
pub(super) const TIERS: usize = (MAX_STACK / MIN_STACK).ilog2() as usize + 1;

/// The tier of a stack limit: the largest tier not above it (clamped to
/// the range).
pub(super) fn tier_of(stack_bytes: u64) -> usize {
    (stack_bytes.clamp(MIN_STACK, MAX_STACK) / MIN_STACK).ilog2() as usize
}

/// Bytes of stack of tier `i`.
pub(super) fn stack_of(tier: usize) -> usize {
    (MIN_STACK as usize) << tier
}

/// An engine with its host functions.
pub(super) struct Tier {
    pub(super) engine: Engine,
    pub(super) linker: Linker<Call>,
}

/// The engines of one sandbox, each made on first use.
pub(super) struct Tiers {
    cfg: SandboxConfig,
    tiers: [OnceLock<Result<Tier, String>>; TIERS],
}

impl Tiers {
    /// No engine yet; [`Tiers::get`] makes them.
    pub(super) fn new(cfg: SandboxConfig) -> Tiers {
        Tiers {
            cfg,
            tiers: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// The engine of tier `i`, made now if it is the first use. Fails only
    /// if wasmtime cannot reserve another instance pool.
    pub(super) fn get(&self, i: usize) -> Result<&Tier, SandboxError> {
        self.tiers[i]
            .get_or_init(|| make(&self.cfg, stack_of(i)).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| SandboxError::Engine(e.clone()))
    }

    /// Advances the epoch of every engine made so far (the ticker's job).
    pub(super) fn increment_epochs(&self) {
        for tier in &self.tiers {
            if let Some(Ok(t)) = tier.get() {
                t.engine.increment_epoch();
            }
        }
    }
}

fn make(cfg: &SandboxConfig, stack: usize) -> Result<Tier, SandboxError> {
    let engine = engine::build(cfg, stack)?;
    let mut linker = Linker::new(&engine);
    wasi::add_to_linker(&mut linker).map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
    Ok(Tier { engine, linker })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_round_down_to_a_tier_within_range() {
        assert_eq!(TIERS, 8);
        assert_eq!(tier_of(0), 0);
        assert_eq!(tier_of(MIN_STACK), 0);
        assert_eq!(tier_of(MIN_STACK * 2 - 1), 0);
        assert_eq!(tier_of(512 << 10), 3);
        assert_eq!(stack_of(3), 512 << 10);
        assert_eq!(tier_of(MAX_STACK), TIERS - 1);
        assert_eq!(tier_of(u64::MAX), TIERS - 1);
        assert_eq!(stack_of(TIERS - 1) as u64, MAX_STACK);
    }
}
