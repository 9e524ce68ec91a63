//! The resource limiter of one call: memory up to the task's limit, tables
//! up to the module policy, one instance and one memory.
//!
//! Growth past the memory limit is refused the way the spec allows
//! (`memory.grow` returns -1), so a guest that can cope with it may; the
//! refusal is recorded so that, if the call then fails, the error names the
//! memory limit rather than the abort that followed. A refused `table.grow`
//! is recorded the same way.

use wasmtime::ResourceLimiter;

/// Limits one store; see the module docs.
pub(super) struct CallLimiter {
    /// The most bytes the linear memory may have.
    memory_bytes: u64,
    /// The most elements a table may have.
    table_elements: usize,
    /// The most tables the instance may define.
    tables: usize,
    /// Whether a memory (initial or grown) was refused for being over
    /// `memory_bytes`.
    pub(super) memory_refused: bool,
    /// The largest table size refused, if any.
    pub(super) table_refused: Option<usize>,
}

impl CallLimiter {
    /// A limiter allowing `memory_bytes` of linear memory.
    pub(super) fn new(memory_bytes: u64, table_elements: usize, tables: usize) -> CallLimiter {
        CallLimiter {
            memory_bytes,
            table_elements,
            tables,
            memory_refused: false,
            table_refused: None,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.table_refused = Some(self.table_refused.map_or(desired, |d| d.max(desired)));
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_and_remembers_memory_past_the_limit() {
        let mut l = CallLimiter::new(2 << 16, 10, 1);
        assert!(l.memory_growing(0, 2 << 16, None).unwrap());
        assert!(!l.memory_refused);
        assert!(!l.memory_growing(2 << 16, 3 << 16, None).unwrap());
        assert!(l.memory_refused);
        assert!(l.table_growing(0, 10, None).unwrap());
        assert_eq!(l.table_refused, None);
        assert!(!l.table_growing(10, 11, None).unwrap());
        assert_eq!(l.table_refused, Some(11));
    }
}
