//! `TaskState`: what a task is doing, tracked on every poll, and the
//! `Condition` a report reads from it ("can never finish", "waiting", ...).
//!
//! # One word for the proof
//!
//! "Can never finish" claims that nothing can ever wake the task: it has
//! been polled, it is not inside a poll, no wake is pending, and no clone of
//! its waker exists. The four facts live in one atomic word
//! ([`Activity`]), so a report reads them at one instant. Kept apart, a
//! report could read "not woken" just before a wake by value and "no
//! waker" just after the same wake gave its clone back, and call a woken
//! task stuck; or read "not busy" from the end of a poll and a waker count
//! from before that poll cloned its waker. In one word every change is a
//! single step in that word's order: a wake by value sets `WOKEN` before it
//! gives back its clone, and a poll sets `BUSY` before it clears `WOKEN`, so
//! no read can fall between them. `loom_model` below checks it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::loom_shim::AtomicU32;
use std::task::Waker;
use std::time::Duration;

use crate::registry::clock::Stamp;
use crate::registry::runtime_waker::RuntimeWaker;
use crate::registry::slot::Slot;

/// Live state of one task. Written by the thread that polls the task (and
/// by whoever wakes it), read by reports from any thread; every field is a
/// plain atomic, so neither side takes a lock.
///
/// It is part of every live record, so every byte counts: counts are 32
/// bits, "inside a poll" is a flag next to the last poll's stamp rather than
/// a stamp of its own, and the tokio ids, which only task dumps and
/// instrumented runtimes ask for, live in a side table (`tokio_ids`). The
/// 32-bit words sit side by side with no padding (the runtime waker's state
/// word is here, not in the `RuntimeWaker`; a future's poll count and a
/// blocking task's thread id share one word; the "has ids" flag is a bit of
/// the waker's word): 40 bytes, which makes a record 88.
pub(super) struct TaskState {
    /// When the last poll started, as a [`Stamp`] word; 0 if never polled.
    /// For blocking tasks and threads: when their closure started.
    last_poll: AtomicU64,
    /// The runtime's waker for this task, which ours forwards to. It is
    /// kept until the record drops, not taken out when the task ends: a
    /// clone of our waker that outlives the task then keeps the runtime's
    /// task allocation alive, exactly as a clone of the runtime's own waker
    /// would, and the end of every task saves two atomic operations.
    pub(crate) runtime_waker: RuntimeWaker,
    /// `runtime_waker`'s state word, and (a bit it leaves alone) whether
    /// the side table holds this task's tokio ids.
    waker_state: AtomicU32,
    /// For a future: completed and ongoing polls, saturating. For a
    /// blocking task or thread: the OS thread running it (Linux), 0 until
    /// it starts or if unknown. One word, since a record is one or the
    /// other.
    progress: AtomicU32,
    /// Polled yet, inside a poll, woken, and live waker clones: one word.
    pub(crate) activity: Activity,
    /// Where the record sits in its scope (`scope.rs`): here, so that its
    /// 4 bytes pack with the words above.
    pub(super) slot: Slot,
}

/// `waker_state`'s bit for "the tokio id table has an entry".
const HAS_IDS: u32 = crate::registry::runtime_waker::KEPT;

impl TaskState {
    /// The state of a task that hasn't started yet, to be stored in `slot`.
    pub(super) fn new(slot: Slot) -> TaskState {
        TaskState {
            last_poll: AtomicU64::new(0),
            runtime_waker: RuntimeWaker::new(),
            waker_state: AtomicU32::new(0),
            progress: AtomicU32::new(0),
            activity: Activity::new(),
            slot,
        }
    }

    /// A poll starts: remember the runtime's waker and the time. Returns
    /// whether it is the first.
    ///
    /// # Safety
    ///
    /// Only from the poll of the future that owns this task, which runs on
    /// one thread at a time (see [`RuntimeWaker::register`]).
    #[inline]
    #[allow(unsafe_code)]
    pub(super) unsafe fn poll_begin(&self, runtime_waker: &Waker) -> bool {
        // Only the polling thread writes the count (a future is polled by
        // one thread at a time), so a load and a store do: no RMW.
        let polls = self.progress.load(Ordering::Relaxed);
        // SAFETY: the caller's contract is `register`'s; before the first
        // poll no waker of this task exists, so no wake reads the slot
        // (`register_first`'s).
        unsafe {
            if polls == 0 {
                self.runtime_waker
                    .register_first(&self.waker_state, runtime_waker);
            } else {
                self.runtime_waker
                    .register(&self.waker_state, runtime_waker);
            }
        }
        self.progress
            .store(polls.saturating_add(1), Ordering::Relaxed);
        self.started(polls == 0);
        polls == 0
    }

    /// A poll (or a blocking closure) starts now.
    #[inline]
    fn started(&self, first: bool) {
        self.last_poll
            .store(Stamp::now().encode(), Ordering::Relaxed);
        if first {
            self.activity.first_poll_begin();
        } else {
            self.activity.poll_begin();
        }
    }

    /// Wakes the runtime's waker (the counting waker was woken).
    #[inline]
    pub(super) fn wake_runtime(&self) {
        self.runtime_waker.wake(&self.waker_state);
    }

    /// The poll returned; true when the task can never finish now.
    #[inline]
    #[must_use]
    pub(super) fn poll_end(&self) -> bool {
        self.activity.poll_end()
    }

    /// A blocking task's or thread's closure starts on this thread.
    pub(super) fn run_begin(&self) {
        self.progress
            .store(crate::registry::os_thread::current_tid(), Ordering::Relaxed);
        self.started(true);
    }

    /// The OS thread running this blocking task or thread, 0 if unknown.
    /// Only for blocking tasks and threads (a future's word is its polls).
    pub(super) fn tid(&self) -> u32 {
        self.progress.load(Ordering::Relaxed)
    }

    /// A poll of a task that leakcheck doesn't wrap starts (tokio's
    /// before-poll hook): no waker to count, only the time.
    #[cfg(tokio_unstable)]
    pub(super) fn hook_poll_begin(&self) {
        let polls = self.progress.load(Ordering::Relaxed);
        self.progress
            .store(polls.saturating_add(1), Ordering::Relaxed);
        self.started(polls == 0);
    }

    /// Whether the tokio id table has an entry for this task.
    pub(super) fn has_ids(&self) -> bool {
        self.waker_state.load(Ordering::Acquire) & HAS_IDS != 0
    }

    /// The tokio id table has an entry for this task now.
    pub(super) fn mark_ids(&self) {
        self.waker_state.fetch_or(HAS_IDS, Ordering::Release);
    }

    /// Whether the table had an entry; from now on it hasn't.
    pub(super) fn take_ids_mark(&mut self) -> bool {
        // Exclusive access: nothing else writes the word now, so a load
        // tells, and only a record that had ids pays for the clearing.
        let had = self.waker_state.load(Ordering::Relaxed) & HAS_IDS != 0;
        if had {
            self.waker_state.fetch_and(!HAS_IDS, Ordering::Relaxed);
        }
        had
    }

    /// Lets go of the runtime's waker once the task has ended, while the
    /// record is kept for reuse (never under loom, which reuses nothing).
    #[cfg(not(loom))]
    pub(super) fn clear(&mut self) {
        self.runtime_waker.clear();
    }

    /// What the task is doing at `now`, for an async task.
    pub(super) fn condition(&self, now: Stamp) -> Condition {
        // The verdict comes from one read of one word; the counts and times
        // beside it only describe it.
        let seen = self.activity.read();
        let polls = u64::from(self.progress.load(Ordering::Relaxed)).max(1);
        let last = Stamp::decode(self.last_poll.load(Ordering::Relaxed));
        let since = |at: Option<Stamp>| at.map_or(Duration::ZERO, |at| now.since(at));
        if seen.busy {
            return Condition::Busy { for_: since(last) };
        }
        if !seen.polled {
            return Condition::NotYetPolled;
        }
        let last = since(last);
        if seen.woken {
            return Condition::Runnable { polls, last };
        }
        if seen.can_never_finish() {
            return Condition::CanNeverFinish { polls, last };
        }
        Condition::Waiting {
            wakers: seen.wakers as usize,
            polls,
            last,
        }
    }

    /// What a task seen only through tokio's hooks is doing at `now`: no
    /// waker was counted, so "pending" is all that can be said of a task
    /// that is not inside `poll`.
    pub(super) fn hooked_condition(&self, now: Stamp) -> Condition {
        match self.condition(now) {
            Condition::CanNeverFinish { polls, last }
            | Condition::Waiting { polls, last, .. }
            | Condition::Runnable { polls, last } => Condition::Pending { polls, last },
            other => other,
        }
    }

    /// What a blocking task or thread is doing at `now`.
    pub(super) fn running(&self, now: Stamp) -> Condition {
        match Stamp::decode(self.last_poll.load(Ordering::Relaxed)) {
            None => Condition::NotStarted,
            Some(started) => Condition::Running {
                for_: now.since(started),
                kernel: crate::registry::os_thread::kernel_state(self.tid()),
            },
        }
    }
}

/// Whether a task has been polled, is inside a poll, has a wake pending,
/// and how many clones of its waker are alive, in one atomic word (see the
/// [module docs](self)).
///
/// Only the polling thread sets and clears `BUSY`, sets `POLLED` and clears
/// `WOKEN`; any thread may set `WOKEN` and move the count. So the poller
/// knows the bits it owns without a compare-and-swap, and every change is
/// one read-modify-write.
pub(super) struct Activity(AtomicU32);

/// Inside `poll` (or running its closure) right now.
const BUSY: u32 = 1 << 31;
/// Woken since its last poll started.
const WOKEN: u32 = 1 << 30;
/// Polled (or started) at least once.
const POLLED: u32 = 1 << 29;
/// The low bits: live waker clones.
const WAKERS: u32 = POLLED - 1;

/// One read of an [`Activity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seen {
    pub(crate) busy: bool,
    pub(crate) woken: bool,
    pub(crate) polled: bool,
    pub(crate) wakers: u32,
}

impl Seen {
    /// Nothing can ever wake the task: polled, not polling, not woken, no
    /// waker alive.
    pub(super) fn can_never_finish(self) -> bool {
        self.polled && !self.busy && !self.woken && self.wakers == 0
    }
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity(AtomicU32::new(0))
    }

    /// A poll starts: busy, polled, and any wake so far is consumed.
    ///
    /// `BUSY` and `POLLED` are the poller's, so it knows whether to add
    /// them; `WOKEN` can only be cleared here, so if it was seen set it is
    /// still set and subtracting it is exact. A wake that lands between the
    /// read and the add is kept: the runtime was woken too and polls again.
    #[inline]
    pub(super) fn poll_begin(&self) {
        let before = self.0.load(Ordering::Relaxed);
        let mut delta = BUSY.wrapping_sub(if before & WOKEN != 0 { WOKEN } else { 0 });
        if before & POLLED == 0 {
            delta = delta.wrapping_add(POLLED);
        }
        // Release: a report that reads the result also sees the poll's
        // stamps written before it.
        self.0.fetch_add(delta, Ordering::Release);
    }

    /// The first poll (or closure) starts: as [`Activity::poll_begin`], with
    /// a plain store. Until then nothing else writes the word: only a poll
    /// hands out the task's waker, so no clone or wake can exist yet.
    #[inline]
    pub(crate) fn first_poll_begin(&self) {
        debug_assert_eq!(self.0.load(Ordering::Relaxed), 0);
        // Release, as for `poll_begin`.
        self.0.store(BUSY | POLLED, Ordering::Release);
    }

    /// The poll returned. True when that left the task unable to ever
    /// finish (see [`Seen::can_never_finish`]), which a settling check
    /// wants to hear of.
    #[inline]
    #[must_use]
    pub(super) fn poll_end(&self) -> bool {
        let before = self.0.fetch_sub(BUSY, Ordering::Release);
        before.wrapping_sub(BUSY) == POLLED
    }

    /// A clone of the waker was made.
    pub(super) fn cloned(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// A clone of the waker was dropped (or consumed by a wake, after
    /// [`Activity::woken`]). True when it was the last thing that could
    /// wake the task, as for [`Activity::poll_end`].
    #[must_use]
    pub(super) fn dropped(&self) -> bool {
        let before = self.0.fetch_sub(1, Ordering::Release);
        before.wrapping_sub(1) == POLLED
    }

    /// The waker was woken.
    pub(super) fn woken(&self) {
        self.0.fetch_or(WOKEN, Ordering::Release);
    }

    /// The four facts, at one instant.
    pub(super) fn read(&self) -> Seen {
        let word = self.0.load(Ordering::Acquire);
        Seen {
            busy: word & BUSY != 0,
            woken: word & WOKEN != 0,
            polled: word & POLLED != 0,
            wakers: word & WAKERS,
        }
    }
}

/// How a surviving task stands, in the words a report uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Condition {
    /// Pending, not polling, not woken, and no clone of its waker exists:
    /// nothing can ever wake it.
    CanNeverFinish { polls: u64, last: Duration },
    /// Pending with wakers held by whatever it waits on.
    Waiting {
        wakers: usize,
        polls: u64,
        last: Duration,
    },
    /// Woken and waiting for a worker to poll it.
    Runnable { polls: u64, last: Duration },
    /// Pending, for a task whose wakers leakcheck can't see (one spawned
    /// outside leakcheck, seen through tokio's hooks).
    Pending { polls: u64, last: Duration },
    /// Inside `poll` right now.
    Busy { for_: Duration },
    /// Spawned but never polled yet.
    NotYetPolled,
    /// A blocking task or thread whose closure is running.
    Running {
        for_: Duration,
        kernel: Option<char>,
    },
    /// A blocking task still queued for a pool thread.
    NotStarted,
}

impl Condition {
    /// A short word for grouping survivors by condition.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Condition::CanNeverFinish { .. } => "can never finish",
            Condition::Waiting { .. } => "waiting",
            Condition::Runnable { .. } => "runnable",
            Condition::Pending { .. } => "pending",
            Condition::Busy { .. } => "busy",
            Condition::NotYetPolled => "not yet polled",
            Condition::Running { .. } => "running",
            Condition::NotStarted => "not started",
        }
    }
}

/// Every interleaving of a wake, or a poll, against a report's read, with
/// loom (`.ci/run` runs it): none reads "can never finish" while a wake is
/// pending or a waker is alive.
#[cfg(all(test, loom))]
mod loom_model {
    use super::Activity;
    use loom::thread;
    use std::sync::Arc;

    /// Polled once, parked, its one waker clone held by another thread.
    fn parked_with_one_waker() -> Arc<Activity> {
        let activity = Arc::new(Activity::new());
        activity.first_poll_begin(); // as a task's first poll does
        activity.cloned();
        let _ = activity.poll_end();
        activity
    }

    #[test]
    fn a_wake_by_value_is_never_read_as_can_never_finish() {
        loom::model(|| {
            let activity = parked_with_one_waker();
            let held = activity.clone();
            // What `wake` does: wake by reference, then give the clone back.
            let waker = thread::spawn(move || {
                held.woken();
                let _ = held.dropped();
            });
            assert!(!activity.read().can_never_finish());
            waker.join().unwrap();
            assert!(!activity.read().can_never_finish(), "woken: runnable");
        });
    }

    #[test]
    fn a_poll_that_keeps_its_waker_is_never_read_as_can_never_finish() {
        loom::model(|| {
            // Woken, with no clone left: a worker is about to poll it.
            let activity = parked_with_one_waker();
            activity.woken();
            let _ = activity.dropped();
            let polled = activity.clone();
            let worker = thread::spawn(move || {
                polled.poll_begin();
                polled.cloned(); // the future registers its waker again
                let _ = polled.poll_end();
            });
            assert!(!activity.read().can_never_finish());
            worker.join().unwrap();
            assert!(!activity.read().can_never_finish(), "one waker: waiting");
        });
    }

    #[test]
    fn a_dropped_last_waker_is_read_as_can_never_finish() {
        // The other side: the proof is made when it holds.
        loom::model(|| {
            let activity = parked_with_one_waker();
            let held = activity.clone();
            let stuck = thread::spawn(move || held.dropped()).join().unwrap();
            assert!(stuck, "the drop says so, for a waiting check");
            assert!(activity.read().can_never_finish());
        });
    }
}

#[cfg(all(test, feature = "track", not(loom)))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    use super::Condition;
    use crate::registry::clock::Stamp;

    /// Pending forever, leaving its waker in `slot` on every poll.
    struct Parks(Arc<Mutex<Option<Waker>>>);

    impl Future for Parks {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            *self.0.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// A task that is woken by value over and over, from another thread,
    /// on a multi-thread runtime, while this thread reads its condition as
    /// fast as it can: at every instant it holds a waker or has a wake
    /// pending, so no read may say it can never finish. Only reads made
    /// once the wakes have begun count (before its first poll a task reads
    /// as not yet polled, which proves nothing), so a loaded machine that
    /// is slow to poll the task makes the test longer, not vacuous.
    #[test]
    fn a_task_woken_during_the_check_is_never_called_stuck() {
        const READS: u64 = 200_000;
        const WAKES: u64 = 1_000;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let tracked = crate::track(Parks(slot.clone()));
        let record = tracked.record().expect("tracked").clone();
        let task = runtime.spawn(tracked);
        let stop = Arc::new(AtomicBool::new(false));
        let wakes = Arc::new(AtomicU64::new(0));
        let (waker_stop, waker_slot, waker_count) = (stop.clone(), slot.clone(), wakes.clone());
        let waking = std::thread::spawn(move || {
            while !waker_stop.load(Ordering::Relaxed) {
                let taken = waker_slot.lock().unwrap().take();
                if let Some(waker) = taken {
                    waker.wake(); // by value: the clone goes as the wake lands
                    waker_count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // Until both counts are reached: on a loaded machine the task may
        // be slow to be polled again, and the reads must span many wakes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut reads = 0u64;
        while reads < READS || wakes.load(Ordering::Relaxed) < WAKES {
            let waking_now = wakes.load(Ordering::Relaxed) > 0;
            let condition = record.state.condition(Stamp::now());
            assert!(
                !matches!(condition, Condition::CanNeverFinish { .. }),
                "read {reads}: a task with a wake in flight was called stuck"
            );
            reads += u64::from(waking_now);
            if reads % 1024 == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} wakes in 60 s: the test proved too little",
                    wakes.load(Ordering::Relaxed)
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
        waking.join().unwrap();
        task.abort();
        drop(runtime);
    }
}
