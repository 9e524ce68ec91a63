//! WASI preview 1, written by hand: deny by default, deterministic, and with
//! no per-call context to set up.
//!
//! Every name in [`WASI_FUNCTIONS`](wask_proto::module::WASI_FUNCTIONS) is
//! defined with its `wasi_snapshot_preview1` signature, so any module the
//! inspector accepts links. Only a few do something:
//!
//! - `fd_write` to fd 1 and 2 appends to the call's bounded stdout/stderr;
//!   `fd_read` on fd 0 is at end of file; `fd_fdstat_get` describes fds 0-2
//!   as character devices.
//! - There are no preopened directories (`fd_prestat_get` is `EBADF`), so
//!   `std::fs` fails cleanly; no arguments and no environment.
//! - The clocks are virtual: realtime starts at 2020-01-01T00:00:00Z,
//!   monotonic at 0, and both advance only when the guest sleeps.
//! - `random_get` is the blake3 XOF keyed by the task's seed.
//! - `poll_oneoff` really sleeps on clock subscriptions (it is our own
//!   thread), unless the sleep would end past the time limit: then the task
//!   times out at once.
//! - `proc_exit` stops the task with a trap.
//!
//! Everything else returns an errno. Every guest pointer is bounds-checked
//! (see [`super::memory`]); a bad one is `EFAULT`.
//!
//! `wask.panic` (the guest SDK's panic hook) lives here too: it records the
//! message of the panic that is about to abort the guest.

use super::call::{Call, PANIC_MESSAGE_MAX};
use super::memory;
use std::time::Duration;
use wask_proto::TaskError;
use wask_proto::error::Limit;
use wask_proto::module::{WASI_MODULE, WASK_MODULE};
use wasmtime::{Caller, Extern, Linker};

/// WASI errno values (`wasi_snapshot_preview1` `errno`).
pub(super) mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const NOSYS: i32 = 52;
    pub const NOTSUP: i32 = 58;
    pub const NOTCAPABLE: i32 = 76;
}
use errno::*;

/// Realtime clock reading at virtual time 0: 2020-01-01T00:00:00Z in
/// nanoseconds since the Unix epoch.
pub(super) const REALTIME_START_NS: u64 = 1_577_836_800 * 1_000_000_000;

/// `filetype::character_device`.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// `rights::fd_read`.
const RIGHT_FD_READ: u64 = 1 << 1;
/// `rights::fd_write`.
const RIGHT_FD_WRITE: u64 = 1 << 6;
/// `rights::poll_fd_readwrite`.
const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;

/// Size of a `subscription`.
const SUBSCRIPTION_SIZE: usize = 48;
/// Size of an `event`.
const EVENT_SIZE: usize = 32;
/// `eventtype::clock`.
const EVENTTYPE_CLOCK: u8 = 0;
/// `eventtype::fd_read`.
const EVENTTYPE_FD_READ: u8 = 1;
/// `eventtype::fd_write`.
const EVENTTYPE_FD_WRITE: u8 = 2;
/// `subclockflags::subscription_clock_abstime`.
const SUBCLOCK_ABSTIME: u16 = 1;

/// Defines every WASI p1 function and `wask.panic` in `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<Call>) -> wasmtime::Result<()> {
    /// Defines functions that only return an errno, with their signatures.
    macro_rules! refuse {
        ($errno:expr => $($name:literal ($($ty:ty),*);)*) => {
            $(linker.func_wrap(WASI_MODULE, $name, |$(_: $ty),*| -> i32 { $errno })?;)*
        };
    }

    linker.func_wrap(WASK_MODULE, "panic", wask_panic)?;

    linker.func_wrap(WASI_MODULE, "args_get", |_: i32, _: i32| SUCCESS)?;
    linker.func_wrap(WASI_MODULE, "args_sizes_get", zero_sizes)?;
    linker.func_wrap(WASI_MODULE, "environ_get", |_: i32, _: i32| SUCCESS)?;
    linker.func_wrap(WASI_MODULE, "environ_sizes_get", zero_sizes)?;
    linker.func_wrap(WASI_MODULE, "clock_res_get", clock_res_get)?;
    linker.func_wrap(WASI_MODULE, "clock_time_get", clock_time_get)?;
    linker.func_wrap(WASI_MODULE, "fd_fdstat_get", fd_fdstat_get)?;
    linker.func_wrap(WASI_MODULE, "fd_read", fd_read)?;
    linker.func_wrap(WASI_MODULE, "fd_write", fd_write)?;
    linker.func_wrap(WASI_MODULE, "poll_oneoff", poll_oneoff)?;
    linker.func_wrap(WASI_MODULE, "proc_exit", proc_exit)?;
    linker.func_wrap(WASI_MODULE, "random_get", random_get)?;
    linker.func_wrap(WASI_MODULE, "sched_yield", || SUCCESS)?;

    refuse!(BADF =>
        "fd_advise"(i32, i64, i64, i32);
        "fd_allocate"(i32, i64, i64);
        "fd_close"(i32);
        "fd_datasync"(i32);
        "fd_fdstat_set_flags"(i32, i32);
        "fd_fdstat_set_rights"(i32, i64, i64);
        "fd_filestat_get"(i32, i32);
        "fd_filestat_set_size"(i32, i64);
        "fd_filestat_set_times"(i32, i64, i64, i32);
        "fd_pread"(i32, i32, i32, i64, i32);
        "fd_prestat_get"(i32, i32);
        "fd_prestat_dir_name"(i32, i32, i32);
        "fd_pwrite"(i32, i32, i32, i64, i32);
        "fd_readdir"(i32, i32, i32, i64, i32);
        "fd_renumber"(i32, i32);
        "fd_seek"(i32, i64, i32, i32);
        "fd_sync"(i32);
        "fd_tell"(i32, i32);
    );
    refuse!(NOTCAPABLE =>
        "path_create_directory"(i32, i32, i32);
        "path_filestat_get"(i32, i32, i32, i32, i32);
        "path_filestat_set_times"(i32, i32, i32, i32, i64, i64, i32);
        "path_link"(i32, i32, i32, i32, i32, i32, i32);
        "path_open"(i32, i32, i32, i32, i32, i64, i64, i32, i32);
        "path_readlink"(i32, i32, i32, i32, i32, i32);
        "path_remove_directory"(i32, i32, i32);
        "path_rename"(i32, i32, i32, i32, i32, i32);
        "path_symlink"(i32, i32, i32, i32, i32);
        "path_unlink_file"(i32, i32, i32);
    );
    refuse!(NOTSUP =>
        "sock_accept"(i32, i32, i32);
        "sock_recv"(i32, i32, i32, i32, i32, i32);
        "sock_send"(i32, i32, i32, i32, i32);
        "sock_shutdown"(i32, i32);
    );
    refuse!(NOSYS =>
        "proc_raise"(i32);
    );
    Ok(())
}

/// The guest's memory and the call state, borrowed together.
fn guest<'a>(caller: &'a mut Caller<'_, Call>) -> wasmtime::Result<(&'a mut [u8], &'a mut Call)> {
    let export = caller.data().memory;
    match caller.get_module_export(&export) {
        Some(Extern::Memory(memory)) => Ok(memory.data_and_store_mut(caller)),
        // The inspector requires a `memory` export, so this cannot happen.
        _ => {
            let why = TaskError::Abi {
                message: "the module has no memory export".into(),
            };
            Err(caller.data_mut().stop(why))
        }
    }
}

/// The errno of an outcome.
fn errno(outcome: Result<(), i32>) -> i32 {
    match outcome {
        Ok(()) => SUCCESS,
        Err(e) => e,
    }
}

/// `wask.panic(ptr, len)`: records the panic message.
fn wask_panic(mut caller: Caller<'_, Call>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let (mem, call) = guest(&mut caller)?;
    let len = (len as u32 as usize).min(PANIC_MESSAGE_MAX);
    match memory::bytes(mem, ptr as u32, len) {
        Some(message) => call.record_panic(message),
        None => call.record_panic(b"(the panic message is outside the guest's memory)"),
    }
    Ok(())
}

/// `args_sizes_get` and `environ_sizes_get`: none of either.
fn zero_sizes(mut caller: Caller<'_, Call>, count: i32, buf_size: i32) -> wasmtime::Result<i32> {
    let (mem, _) = guest(&mut caller)?;
    Ok(errno((|| {
        memory::write_u32(mem, count as u32, 0).ok_or(FAULT)?;
        memory::write_u32(mem, buf_size as u32, 0).ok_or(FAULT)
    })()))
}

/// The virtual clock `id` at virtual time `clock_ns`, or `None` for an
/// unknown clock.
fn clock_now(id: u32, clock_ns: u64) -> Option<u64> {
    match id {
        0 => Some(REALTIME_START_NS + clock_ns),
        // monotonic, process and thread CPU time
        1..=3 => Some(clock_ns),
        _ => None,
    }
}

fn clock_res_get(mut caller: Caller<'_, Call>, id: i32, out: i32) -> wasmtime::Result<i32> {
    let (mem, _) = guest(&mut caller)?;
    if clock_now(id as u32, 0).is_none() {
        return Ok(INVAL);
    }
    Ok(errno(memory::write_u64(mem, out as u32, 1).ok_or(FAULT)))
}

fn clock_time_get(
    mut caller: Caller<'_, Call>,
    id: i32,
    _precision: i64,
    out: i32,
) -> wasmtime::Result<i32> {
    let (mem, call) = guest(&mut caller)?;
    let Some(now) = clock_now(id as u32, call.clock_ns) else {
        return Ok(INVAL);
    };
    Ok(errno(memory::write_u64(mem, out as u32, now).ok_or(FAULT)))
}

fn fd_fdstat_get(mut caller: Caller<'_, Call>, fd: i32, out: i32) -> wasmtime::Result<i32> {
    let rights = match fd {
        0 => RIGHT_FD_READ | RIGHT_POLL_FD_READWRITE,
        1 | 2 => RIGHT_FD_WRITE | RIGHT_POLL_FD_READWRITE,
        _ => return Ok(BADF),
    };
    let (mem, _) = guest(&mut caller)?;
    // fdstat: filetype u8 @0, flags u16 @2, rights_base u64 @8,
    // rights_inheriting u64 @16.
    let mut stat = [0u8; 24];
    stat[0] = FILETYPE_CHARACTER_DEVICE;
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    Ok(errno(memory::write(mem, out as u32, &stat).ok_or(FAULT)))
}

/// `fd_read`: stdin is at end of file; there is nothing else to read.
fn fd_read(
    mut caller: Caller<'_, Call>,
    fd: i32,
    _iovs: i32,
    _iovs_len: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    if fd != 0 {
        return Ok(BADF);
    }
    let (mem, _) = guest(&mut caller)?;
    Ok(errno(memory::write_u32(mem, nread as u32, 0).ok_or(FAULT)))
}

/// `fd_write`: fd 1 and 2 append to the call's output, which together may
/// not pass the task's output limit.
fn fd_write(
    mut caller: Caller<'_, Call>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return Ok(BADF);
    }
    let (mem, call) = guest(&mut caller)?;
    // An iovec is (buf: u32, buf_len: u32).
    let Some(iovecs) = memory::bytes(mem, iovs as u32, iovs_len as u32 as usize * 8) else {
        return Ok(FAULT);
    };
    let iovec = |raw: &[u8]| {
        memory::bytes(
            mem,
            memory::read_u32(raw, 0)?,
            memory::read_u32(raw, 4)? as usize,
        )
    };
    let mut total = 0u64;
    for raw in iovecs.chunks_exact(8) {
        match iovec(raw) {
            Some(buf) => total += buf.len() as u64,
            None => return Ok(FAULT),
        }
    }
    let used = call.output_len();
    let max = call.limits.output_bytes;
    let mut room = max.saturating_sub(used);
    let out = if fd == 1 {
        &mut call.stdout
    } else {
        &mut call.stderr
    };
    for raw in iovecs.chunks_exact(8) {
        let buf = iovec(raw).expect("checked above");
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        out.extend_from_slice(&buf[..take]);
        room -= take as u64;
    }
    if used + total > max {
        return Err(call.stop(TaskError::LimitExceeded {
            limit: Limit::Output,
            size: used + total,
            max,
        }));
    }
    // Iovecs may name one buffer many times: saturate rather than wrap.
    let written = u32::try_from(total).unwrap_or(u32::MAX);
    Ok(errno(
        memory::write_u32(mem, nwritten as u32, written).ok_or(FAULT),
    ))
}

/// `proc_exit(code)`: the task ends with a trap (it has no result).
fn proc_exit(mut caller: Caller<'_, Call>, code: i32) -> wasmtime::Result<()> {
    Err(caller.data_mut().stop(TaskError::Trap {
        message: format!("guest called proc_exit({code})"),
    }))
}

fn random_get(mut caller: Caller<'_, Call>, buf: i32, len: i32) -> wasmtime::Result<i32> {
    let (mem, call) = guest(&mut caller)?;
    match memory::bytes_mut(mem, buf as u32, len as u32 as usize) {
        Some(buf) => {
            call.fill_random(buf);
            Ok(SUCCESS)
        }
        None => Ok(FAULT),
    }
}

/// What one subscription asks for.
enum Subscription {
    /// A clock that fires `after_ns` from now.
    Clock { after_ns: u64 },
    /// A clock subscription naming an unknown clock: an `EINVAL` event.
    BadClock,
    /// Readiness of an fd: an `EBADF` event (there are no pollable fds).
    Fd { eventtype: u8 },
}

/// Reads a subscription (48 bytes: userdata u64 @0, tag u8 @8, then the
/// union at @16: clock id u32, timeout u64 @24, precision u64 @32, flags
/// u16 @40; or an fd u32). `None` for an unknown tag.
fn subscription(raw: &[u8], clock_ns: u64) -> Option<(u64, Subscription)> {
    let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
    let userdata = u64_at(0);
    let sub = match raw[8] {
        EVENTTYPE_CLOCK => {
            let id = memory::read_u32(raw, 16)?;
            let timeout = u64_at(24);
            let flags = u16::from_le_bytes(raw[40..42].try_into().expect("2 bytes"));
            match clock_now(id, clock_ns) {
                None => Subscription::BadClock,
                Some(now) if flags & SUBCLOCK_ABSTIME != 0 => Subscription::Clock {
                    after_ns: timeout.saturating_sub(now),
                },
                Some(_) => Subscription::Clock { after_ns: timeout },
            }
        }
        tag @ (EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE) => Subscription::Fd { eventtype: tag },
        _ => return None,
    };
    Some((userdata, sub))
}

/// `poll_oneoff`: waits until the first subscription fires.
///
/// Fd subscriptions (and unknown clocks) fire at once with an error, so
/// there is no wait then. Otherwise this sleeps until the earliest clock,
/// advances the virtual clock by as much, and reports every clock due by
/// then. A sleep that would end past the task's time limit is a timeout
/// right away: sleeping through it would only waste the thread.
fn poll_oneoff(
    mut caller: Caller<'_, Call>,
    subs: i32,
    events: i32,
    nsubs: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let (mem, call) = guest(&mut caller)?;
    let n = nsubs as u32 as usize;
    if n == 0 {
        return Ok(INVAL);
    }
    let (subs, events, nevents) = (subs as u32, events as u32, nevents as u32);
    let Some(raw_subs) = memory::bytes(mem, subs, n * SUBSCRIPTION_SIZE) else {
        return Ok(FAULT);
    };
    if memory::bytes(mem, events, n * EVENT_SIZE).is_none()
        || memory::bytes(mem, nevents, 4).is_none()
    {
        return Ok(FAULT);
    }

    let clock_before = call.clock_ns;
    let mut immediate = false;
    let mut wait_ns: Option<u64> = None;
    for raw in raw_subs.chunks_exact(SUBSCRIPTION_SIZE) {
        match subscription(raw, clock_before) {
            None => return Ok(INVAL),
            Some((_, Subscription::Clock { after_ns })) => {
                wait_ns = Some(wait_ns.map_or(after_ns, |w| w.min(after_ns)))
            }
            Some((_, Subscription::BadClock | Subscription::Fd { .. })) => immediate = true,
        }
    }
    // With something ready at once no clock fires; otherwise the earliest
    // clock and any due at the same time do.
    let slept = match wait_ns {
        Some(wait) if !immediate => {
            let limit_ms = call.limits.time_ms;
            let wake = call
                .started
                .elapsed()
                .saturating_add(Duration::from_nanos(wait));
            if wake > Duration::from_millis(limit_ms) {
                return Err(call.stop(TaskError::Timeout { limit_ms }));
            }
            if wait > 0 {
                std::thread::sleep(Duration::from_nanos(wait));
            }
            call.clock_ns = clock_before.saturating_add(wait);
            Some(wait)
        }
        _ => None,
    };

    let mut count = 0u32;
    for i in 0..n {
        let at = subs as usize + i * SUBSCRIPTION_SIZE;
        let mut raw = [0u8; SUBSCRIPTION_SIZE];
        raw.copy_from_slice(&mem[at..at + SUBSCRIPTION_SIZE]);
        let Some((userdata, sub)) = subscription(&raw, clock_before) else {
            continue;
        };
        let (eventtype, error) = match sub {
            Subscription::Clock { after_ns } if slept.is_some_and(|s| after_ns <= s) => {
                (EVENTTYPE_CLOCK, SUCCESS)
            }
            Subscription::Clock { .. } => continue,
            Subscription::BadClock => (EVENTTYPE_CLOCK, INVAL),
            Subscription::Fd { eventtype } => (eventtype, BADF),
        };
        // event: userdata u64 @0, error u16 @8, type u8 @10, fd_readwrite
        // (nbytes u64 @16, flags u16 @24), zero here.
        let mut event = [0u8; EVENT_SIZE];
        event[..8].copy_from_slice(&userdata.to_le_bytes());
        event[8..10].copy_from_slice(&(error as u16).to_le_bytes());
        event[10] = eventtype;
        let out = events + count * EVENT_SIZE as u32;
        memory::write(mem, out, &event).expect("checked above");
        count += 1;
    }
    memory::write_u32(mem, nevents, count).expect("checked above");
    Ok(SUCCESS)
}
