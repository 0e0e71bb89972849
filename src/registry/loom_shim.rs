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

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// std's `UnsafeCell` with loom's closure API, so code written for one
/// builds with the other.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// One turn of a (rare) spin-wait: gives the thread being waited for the
/// core; loom must be told too, or it explores the loop forever.
pub(crate) fn spin_wait() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// Locks `mutex`, ignoring poisoning.
///
/// The registry never panics while holding one of its locks, and a user's
/// panic can't happen under them either, so a poisoned lock still guards
/// consistent data. Treating poison as fatal would turn one failing test into
/// a cascade of unrelated failures.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
