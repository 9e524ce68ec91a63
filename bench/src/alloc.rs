//! A counting global allocator, for core_scale's bytes per task.
//!
//! It forwards to the system allocator and, only while a [`Meter`] is
//! running, keeps the live and peak count of requested bytes (malloc's own
//! per-block overhead is not included). Outside a measurement it costs one
//! relaxed load per allocation, so the cluster cases are not slowed down.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

/// The allocator; installed with `#[global_allocator]` in main.rs.
pub struct Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes as isize, Relaxed) + bytes as isize;
    PEAK.fetch_max(now, Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes as isize, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && ENABLED.load(Relaxed) {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && ENABLED.load(Relaxed) {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        if ENABLED.load(Relaxed) {
            shrank(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && ENABLED.load(Relaxed) {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

/// A running measurement: bytes allocated and not freed since it started.
/// Frees of blocks allocated before the start count negatively, so measure
/// code that does not free much older memory. One meter at a time.
pub struct Meter(());

impl Meter {
    /// Zeroes the counters and starts counting.
    pub fn start() -> Meter {
        LIVE.store(0, Relaxed);
        PEAK.store(0, Relaxed);
        ENABLED.store(true, Relaxed);
        Meter(())
    }

    /// Bytes live now, relative to the start.
    pub fn live(&self) -> isize {
        LIVE.load(Relaxed)
    }

    /// The most bytes live at any moment since the start.
    pub fn peak(&self) -> isize {
        PEAK.load(Relaxed)
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        ENABLED.store(false, Relaxed);
    }
}
