//! The waker `Tracked` hands to the future it wraps: it forwards to the
//! runtime's waker and counts its own live clones, which is how a report
//! can prove that nothing is left to wake a task.
//!
//! The waker's data pointer is the task's `TaskRecord` (an `Arc`
//! allocation), the same on every poll, so resources that keep a waker and
//! compare it with `Waker::will_wake` don't re-clone it each time.
//!
//! A `RawWaker` vtable has no safe constructor that can observe clones and
//! drops, so this module is `unsafe` code (one of the places `lib.rs`
//! lists).
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;
use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::registry::loom_shim::Arc;
use crate::registry::record::TaskRecord;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// A waker for the length of one poll that borrows `record` (it holds no
/// reference count, and must never be dropped: hence `ManuallyDrop`).
///
/// # Safety
///
/// `record` must come from `Arc::as_ptr` of an `Arc<TaskRecord>` that stays
/// alive for as long as the returned waker (or any reference to it) is
/// used. Clones are independent: each owns a strong count.
pub(crate) unsafe fn borrowed(record: *const TaskRecord) -> ManuallyDrop<Waker> {
    // SAFETY: the vtable's contract holds for `record` as long as the caller
    // keeps its `Arc` alive (this function's own contract), and the
    // `ManuallyDrop` keeps `drop_waker` from releasing a count never taken.
    ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(record.cast(), &VTABLE)) })
}

/// # Safety
///
/// `data` points into a live `Arc<TaskRecord>`: either the one a poll
/// borrows (alive for the poll) or one kept alive by this waker's own
/// strong count.
unsafe fn clone(data: *const ()) -> RawWaker {
    let record: *const TaskRecord = data.cast();
    // SAFETY: `record` is a live `Arc<TaskRecord>` allocation (see above);
    // the new waker owns the count taken here and gives it back in
    // `drop_waker` or `wake`.
    unsafe {
        Arc::increment_strong_count(record);
        (*record).state.activity.cloned();
    }
    RawWaker::new(data, &VTABLE)
}

/// # Safety
///
/// Called on an owned clone (a borrowed waker is never owned), so `data`
/// carries a strong count that this call consumes.
unsafe fn wake(data: *const ()) {
    // SAFETY: as for `wake_by_ref`, then `drop_waker` releases this waker's
    // own count exactly once, since waking by value consumes the waker.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

/// # Safety
///
/// `data` points into a live `Arc<TaskRecord>` (see `clone`).
unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the record is alive for the duration of this call (see above),
    // and only shared access to its atomics is needed.
    let record = unsafe { &*data.cast::<TaskRecord>() };
    // Before a wake by value gives its clone back (`wake`), so no read of
    // the activity word sees the clone gone and the wake not yet made.
    record.state.activity.woken();
    record.state.wake_runtime();
}

/// # Safety
///
/// Called once per owned clone, giving back the strong count `clone` took.
unsafe fn drop_waker(data: *const ()) {
    let record: *const TaskRecord = data.cast();
    // SAFETY: this waker owns one strong count (taken in `clone`); reading
    // the counter happens before the count is released, so the record is
    // still alive for it.
    unsafe {
        if (*record).state.activity.dropped() {
            // Nothing can wake the task now: a check waiting on its scope
            // may be able to give its verdict at once.
            (*record).scope.nudge();
        }
        Arc::decrement_strong_count(record);
    }
}

#[cfg(all(test, feature = "track"))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc as StdArc, Mutex};
    use std::task::{Context, Poll, Waker};

    use crate::registry::record::TaskRecord;

    /// Polls a future by hand with a waker that records whether it was woken
    /// since the last poll (what tokio-test's mock task does, without the
    /// dependency).
    mod task {
        use std::future::Future;
        use std::pin::Pin;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use std::task::{Context, Poll, Wake, Waker};

        pub struct Mock<F> {
            future: Pin<Box<F>>,
            woken: Arc<Woken>,
        }

        struct Woken(AtomicBool);

        impl Wake for Woken {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }

        pub fn spawn<F: Future>(future: F) -> Mock<F> {
            Mock {
                future: Box::pin(future),
                woken: Arc::new(Woken(AtomicBool::new(false))),
            }
        }

        impl<F: Future> Mock<F> {
            pub fn poll(&mut self) -> Poll<F::Output> {
                self.woken.0.store(false, Ordering::SeqCst);
                let waker = Waker::from(self.woken.clone());
                self.future.as_mut().poll(&mut Context::from_waker(&waker))
            }

            pub fn is_woken(&self) -> bool {
                self.woken.0.load(Ordering::SeqCst)
            }
        }
    }
    use crate::registry::loom_shim::Arc;

    /// A future that does with its waker whatever the test says.
    struct Probe {
        slot: StdArc<Mutex<Vec<Waker>>>,
        clones: usize,
        finish: StdArc<Mutex<bool>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if *self.finish.lock().unwrap() {
                return Poll::Ready(());
            }
            let mut slot = self.slot.lock().unwrap();
            for _ in 0..self.clones {
                slot.push(cx.waker().clone());
            }
            Poll::Pending
        }
    }

    type Wakers = StdArc<Mutex<Vec<Waker>>>;
    type Flag = StdArc<Mutex<bool>>;

    /// A tracked probe, its record, where it stores waker clones, and the
    /// flag that makes it finish.
    fn probe(clones: usize) -> (crate::Tracked<Probe>, Arc<TaskRecord>, Wakers, Flag) {
        let slot = Wakers::default();
        let finish = Flag::default();
        let tracked = crate::track(Probe {
            slot: slot.clone(),
            clones,
            finish: finish.clone(),
        });
        let record = tracked.record().expect("registered").clone();
        (tracked, record, slot, finish)
    }

    fn wakers(record: &TaskRecord) -> u32 {
        record.state.activity.read().wakers
    }

    #[test]
    fn clones_are_counted_and_drops_uncounted() {
        let (tracked, record, slot, _) = probe(2);
        let mut mock = task::spawn(tracked);
        assert!(mock.poll().is_pending());
        assert_eq!(wakers(&record), 2);
        let extra = slot.lock().unwrap()[0].clone(); // a clone of a clone
        assert_eq!(wakers(&record), 3);
        drop(extra);
        slot.lock().unwrap().pop();
        assert_eq!(wakers(&record), 1);
        slot.lock().unwrap().clear();
        assert_eq!(wakers(&record), 0);
    }

    #[test]
    fn wake_by_ref_marks_woken_and_wakes_the_runtime_task() {
        let (tracked, record, slot, _) = probe(1);
        let mut mock = task::spawn(tracked);
        assert!(mock.poll().is_pending());
        assert!(!mock.is_woken());
        slot.lock().unwrap()[0].wake_by_ref();
        assert!(mock.is_woken());
        assert!(record.state.activity.read().woken);
        assert_eq!(wakers(&record), 1, "wake_by_ref keeps the waker");
        // Polling again clears the flag.
        assert!(mock.poll().is_pending());
        assert!(!record.state.activity.read().woken);
    }

    #[test]
    fn wake_by_value_wakes_and_releases_the_clone() {
        let (tracked, record, slot, _) = probe(1);
        let mut mock = task::spawn(tracked);
        assert!(mock.poll().is_pending());
        let waker = slot.lock().unwrap().pop().unwrap();
        waker.wake();
        assert!(mock.is_woken());
        assert_eq!(wakers(&record), 0);
    }

    #[test]
    fn the_same_waker_is_handed_out_on_every_poll() {
        let (tracked, _record, slot, _) = probe(1);
        let mut mock = task::spawn(tracked);
        assert!(mock.poll().is_pending());
        assert!(mock.poll().is_pending());
        let slot = slot.lock().unwrap();
        assert!(
            slot[0].will_wake(&slot[1]),
            "resources can skip re-cloning it"
        );
    }

    #[test]
    fn wakers_that_outlive_the_task_stay_valid() {
        let (tracked, record, slot, finish) = probe(1);
        let mut mock = task::spawn(tracked);
        assert!(mock.poll().is_pending());
        *finish.lock().unwrap() = true;
        assert!(mock.poll().is_ready());
        drop(mock);
        let weak = Arc::downgrade(&record);
        drop(record);
        // Only the stored clone keeps the record alive now.
        assert!(weak.upgrade().is_some());
        let waker = slot.lock().unwrap().pop().unwrap();
        waker.wake_by_ref(); // the task is gone: a no-op, not a crash
        let again = waker.clone();
        drop(waker);
        again.wake();
        assert!(weak.upgrade().is_none(), "the last waker freed the record");
    }
}
