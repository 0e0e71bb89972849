//! The synchronization primitives the registry is built from.
//!
//! Everything that the registry shares between threads goes through this
//! module, so that a `--cfg loom` build can swap in loom's model-checked
//! versions without touching the registry's logic.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, Weak,
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, Weak,
};

/// Locks `mutex`, ignoring poisoning.
///
/// The registry never panics while holding one of its locks, and a user's
/// panic can't happen under them either, so a poisoned lock still guards
/// consistent data. Treating poison as fatal would turn one failing test into
/// a cascade of unrelated failures.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
