//! `RuntimeWaker`: where a task keeps the runtime's waker that its counting
//! waker forwards to.
//!
//! It replaces an `AtomicWaker`, which cost every poll two compare-and-swaps
//! (to register a waker it then found unchanged) and a clone of the
//! runtime's waker after every wake (a wake took the waker out). A tokio
//! task's waker never changes, so here the waker stays until a poll brings
//! a different one:
//!
//! - a poll compares the stored waker with its own (`Waker::will_wake`) and,
//!   the same, touches no atomic at all; only the polling thread ever
//!   writes the slot, so its own read of it races with nothing;
//! - a wake wakes the stored waker by reference, counted in as a reader for
//!   the length of that call;
//! - a poll that brings a different waker takes the slot for writing, waits
//!   for the readers already in it to leave (they are inside a runtime's
//!   `wake_by_ref`: short), and swaps the waker. A wake that arrives while
//!   it writes leaves itself as `PENDING` for the writer, which wakes the
//!   new waker with it: no wake is lost, none waits for the writer.
//!
//! `loom_model` below checks the protocol: no wake is lost, and no waker is
//! dropped or replaced while a wake reads it.
#![allow(unsafe_code)]

use std::task::Waker;

use crate::registry::loom_shim::{spin_wait, AtomicU32, Ordering, UnsafeCell};

/// A poll is writing the slot.
const WRITING: u32 = 1 << 31;
/// A wake came while the slot was written: the writer wakes for it.
const PENDING: u32 = 1 << 30;
/// Bits of the state word that the owner keeps for itself (a task's
/// "has tokio ids" flag): the protocol below never changes them.
pub(crate) const KEPT: u32 = 1 << 29;
/// One wake reading the slot.
const READER: u32 = 1;
const READERS: u32 = KEPT - 1;

/// The stored waker. Its state word (who reads or writes it) is kept by
/// the owner and passed to every call, so that in a task's state it packs
/// with the other 32-bit words instead of padding this to 24 bytes.
pub(crate) struct RuntimeWaker {
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the slot is written only by `register`, which the caller
// guarantees runs on one thread at a time, and only while `WRITING` is set
// with no reader counted in; readers read it only while counted in with
// `WRITING` clear. `Waker` is `Send + Sync`, so sharing and reading it from
// any thread is sound.
unsafe impl Sync for RuntimeWaker {}
// SAFETY: as for `Sync`; the contents are a `Waker`, which is `Send`.
unsafe impl Send for RuntimeWaker {}

impl RuntimeWaker {
    pub(crate) fn new() -> RuntimeWaker {
        RuntimeWaker {
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` unless the stored one already wakes the same task.
    ///
    /// # Safety
    ///
    /// No other call to `register` on this slot may run at the same time:
    /// it is called by the poll of the one future that owns the task (a
    /// future is polled by one thread at a time, through `Pin<&mut _>`).
    #[inline]
    pub(crate) unsafe fn register(&self, state: &AtomicU32, waker: &Waker) {
        // SAFETY: only `register` writes the slot and none runs alongside
        // this one (the caller's contract), so this read races with no
        // write; wakes only read it too.
        let same = self
            .waker
            .with(|slot| unsafe { (*slot).as_ref().is_some_and(|old| old.will_wake(waker)) });
        if !same {
            // SAFETY: the caller's contract, passed on.
            unsafe { self.replace(state, waker.clone()) };
        }
    }

    /// Stores the waker of a task's first poll.
    ///
    /// # Safety
    ///
    /// As for [`RuntimeWaker::register`], and no wake may run: none can
    /// before a task's first poll, since only a poll hands out its waker
    /// (and a record kept for reuse is taken only once nothing holds it).
    #[inline]
    pub(crate) unsafe fn register_first(&self, state: &AtomicU32, waker: &Waker) {
        debug_assert_eq!(state.load(Ordering::Relaxed) & !KEPT, 0);
        let new = waker.clone();
        // SAFETY: no wake reads the slot and no other poll writes it (the
        // caller's contract).
        let old = self.waker.with_mut(|slot| unsafe { (*slot).replace(new) });
        drop(old);
    }

    /// Writes `new` in, once no wake reads the slot.
    ///
    /// # Safety
    ///
    /// As for [`RuntimeWaker::register`].
    #[cold]
    #[inline(never)]
    unsafe fn replace(&self, state: &AtomicU32, new: Waker) {
        // Acquire: the reads of readers that leave below happen before the
        // write (their Release decrement).
        let mut seen = state.fetch_or(WRITING, Ordering::Acquire);
        while seen & READERS != 0 {
            spin_wait();
            seen = state.load(Ordering::Acquire);
        }
        // SAFETY: `WRITING` is set and no reader is counted in: readers that
        // come now see `WRITING` and leave the slot alone, and only this
        // call writes (the caller's contract).
        let old = self.waker.with_mut(|slot| unsafe { (*slot).replace(new) });
        // Release: a reader that counts itself in after this sees the new
        // waker. A wake that came while writing left `PENDING`.
        let seen = state.fetch_and(!(WRITING | PENDING), Ordering::AcqRel);
        if seen & PENDING != 0 {
            // SAFETY: only this thread writes the slot, and it just did.
            self.waker
                .with(|slot| unsafe { (*slot).as_ref().map(Waker::wake_by_ref) });
        }
        drop(old);
    }

    /// Wakes the stored waker, if any, by reference.
    pub(crate) fn wake(&self, state: &AtomicU32) {
        let mut seen = state.fetch_add(READER, Ordering::Acquire);
        while seen & WRITING != 0 {
            // A poll is writing: leave the wake to it, unless it has just
            // finished, when the slot is ours to read after all.
            let pending = (seen - READER) | PENDING;
            match state.compare_exchange_weak(seen, pending, Ordering::Release, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => seen = now,
            }
        }
        // SAFETY: counted in with `WRITING` clear, so no write happens until
        // this reader leaves (the writer waits for the count to drop).
        self.waker
            .with(|slot| unsafe { (*slot).as_ref().map(Waker::wake_by_ref) });
        state.fetch_sub(READER, Ordering::Release);
    }

    /// Lets go of the stored waker.
    #[cfg_attr(loom, allow(dead_code))] // records aren't kept for reuse under loom
    pub(crate) fn clear(&mut self) {
        *self = RuntimeWaker::new();
    }
}

impl std::fmt::Debug for RuntimeWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeWaker").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::RuntimeWaker;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use crate::registry::loom_shim::AtomicU32;

    /// The slot with its state word beside it, as a task's state has them.
    struct Slot(AtomicU32, RuntimeWaker);

    impl Slot {
        fn new() -> Slot {
            Slot(AtomicU32::new(0), RuntimeWaker::new())
        }

        /// # Safety
        ///
        /// As for [`RuntimeWaker::register`].
        unsafe fn register(&self, waker: &Waker) {
            // SAFETY: the caller's contract.
            unsafe { self.1.register(&self.0, waker) }
        }

        fn wake(&self) {
            self.1.wake(&self.0);
        }
    }

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn wakes_what_was_registered_last_and_keeps_it() {
        let slot = Slot::new();
        slot.wake(); // nothing registered: a no-op
        let (first, first_waker) = counter();
        // SAFETY: one thread, so no other `register` runs alongside.
        unsafe { slot.register(&first_waker) };
        slot.wake();
        slot.wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 2, "kept after a wake");
        // The same waker again: nothing is cloned.
        let before = Arc::strong_count(&first);
        // SAFETY: as above.
        unsafe { slot.register(&first_waker.clone()) };
        assert_eq!(Arc::strong_count(&first), before);
        let (second, second_waker) = counter();
        // SAFETY: as above.
        unsafe { slot.register(&second_waker) };
        assert_eq!(Arc::strong_count(&first), before - 1, "the old one let go");
        slot.wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 2);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        drop(second_waker);
        drop(slot);
        assert_eq!(Arc::strong_count(&second), 1, "dropped with the slot");
    }

    /// Wakes from several threads while the poller keeps changing wakers:
    /// every wake reaches one of them, and none is read while replaced
    /// (Miri or a sanitizer would see that; here, the counts add up).
    #[test]
    fn wakes_race_with_replacement_and_all_arrive() {
        let slot = Arc::new(Slot::new());
        let (count, waker) = counter();
        // SAFETY: only this thread registers.
        unsafe { slot.register(&waker) };
        const WAKES: usize = 20_000;
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let slot = slot.clone();
                std::thread::spawn(move || (0..WAKES).for_each(|_| slot.wake()))
            })
            .collect();
        let mut others = Vec::new();
        while !wakers.iter().all(|w| w.is_finished()) {
            // A distinct waker each time, all counting into `count`.
            let other = Waker::from(count.clone());
            // SAFETY: only this thread registers.
            unsafe { slot.register(&other) };
            others.push(other);
            if others.len() > 64 {
                others.clear();
            }
        }
        wakers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(count.0.load(Ordering::SeqCst), 2 * WAKES);
    }
}

/// Every interleaving of wakes against a poll that replaces the waker, with
/// loom: no wake is lost, and loom's cell checks that the slot is never
/// written while a wake reads it.
#[cfg(all(test, loom))]
mod loom_model {
    use super::RuntimeWaker;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;
    use std::task::{Wake, Waker};

    use crate::registry::loom_shim::AtomicU32;

    /// The slot with its state word beside it, as a task's state has them.
    struct Slot(AtomicU32, RuntimeWaker);

    impl Slot {
        fn new() -> Slot {
            Slot(AtomicU32::new(0), RuntimeWaker::new())
        }

        /// # Safety
        ///
        /// As for [`RuntimeWaker::register`].
        unsafe fn register(&self, waker: &Waker) {
            // SAFETY: the caller's contract.
            unsafe { self.1.register(&self.0, waker) }
        }

        fn wake(&self) {
            self.1.wake(&self.0);
        }
    }

    struct Count(std::sync::Arc<AtomicUsize>);

    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_during_a_replacement_is_never_lost() {
        loom::model(|| {
            let old = std::sync::Arc::new(AtomicUsize::new(0));
            let new = std::sync::Arc::new(AtomicUsize::new(0));
            let slot = Arc::new(Slot::new());
            // SAFETY: only this thread registers.
            unsafe { slot.register(&Waker::from(std::sync::Arc::new(Count(old.clone())))) };
            let waking = slot.clone();
            let waker = thread::spawn(move || waking.wake());
            // SAFETY: only this thread registers.
            unsafe { slot.register(&Waker::from(std::sync::Arc::new(Count(new.clone())))) };
            waker.join().unwrap();
            let woken = old.load(Ordering::SeqCst) + new.load(Ordering::SeqCst);
            assert_eq!(woken, 1, "the wake reached exactly one waker");
        });
    }

    #[test]
    fn two_wakes_during_a_replacement_both_arrive() {
        loom::model(|| {
            let count = std::sync::Arc::new(AtomicUsize::new(0));
            let slot = Arc::new(Slot::new());
            // SAFETY: only this thread registers.
            unsafe { slot.register(&Waker::from(std::sync::Arc::new(Count(count.clone())))) };
            let wakers: Vec<_> = (0..2)
                .map(|_| {
                    let waking = slot.clone();
                    thread::spawn(move || waking.wake())
                })
                .collect();
            // SAFETY: only this thread registers.
            unsafe { slot.register(&Waker::from(std::sync::Arc::new(Count(count.clone())))) };
            wakers.into_iter().for_each(|w| w.join().unwrap());
            // A pending wake is folded into one: at least one arrives after
            // the replacement began, and every wake that read a waker woke it.
            assert!(count.load(Ordering::SeqCst) >= 1);
        });
    }
}
