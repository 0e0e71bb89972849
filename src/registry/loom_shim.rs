//! The synchronization primitives the registry is built from.
//!
//! Everything that the registry shares between threads goes through this
//! module, so that a `--cfg loom` build can swap in loom's model-checked
//! versions without touching the registry's logic.
//!
//! What loom swaps is what carries the registry's protocol: the shard locks,
//! the waiter count, the epoch lock and its condvar, and a task's activity
//! word (what "can never finish" is read from). `Arc` and
//! `Weak` stay std's in both builds: their reference counts are not part of
//! that protocol, loom's `Arc` has no `Weak` nor the raw-pointer API the
//! counting waker needs, and records must still format and compare their
//! `Arc<str>` names. Process-wide counters in statics (record ids, the shard
//! round-robin) use std atomics directly: loom can't model a static that
//! outlives one model run, and they only hand out distinct numbers.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicU32, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicU32, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};

pub(crate) use std::sync::{Arc, Weak};

/// Locks `mutex`, ignoring poisoning.
///
/// The registry never panics while holding one of its locks, and a user's
/// panic can't happen under them either, so a poisoned lock still guards
/// consistent data. Treating poison as fatal would turn one failing test into
/// a cascade of unrelated failures.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
