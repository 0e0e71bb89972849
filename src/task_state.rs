//! `TaskState`: what a task is doing, tracked on every poll, and the
//! `Condition` a report reads from it ("can never finish", "waiting", ...).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use atomic_waker::AtomicWaker;

use crate::clock::Stamp;
use crate::kind::Kind;

/// Live state of one task. Written by the thread that polls the task (and
/// by whoever wakes it), read by reports from any thread; every field is a
/// plain atomic, so neither side takes a lock.
///
/// It is part of every live record, so every byte counts: counts are 32
/// bits, "inside a poll" is a flag next to the last poll's stamp rather than
/// a stamp of its own, and the tokio ids, which only task dumps and
/// instrumented runtimes ask for, live in a side table (`tokio_ids.rs`).
pub(crate) struct TaskState {
    /// When the last poll started, as a [`Stamp`] word; 0 if never polled.
    /// For blocking tasks and threads: when their closure started.
    last_poll: AtomicU64,
    /// Completed and ongoing polls, saturating (for blocking tasks and
    /// threads: 1 once their closure started).
    polls: AtomicU32,
    /// The OS thread running a blocking task or thread (Linux), 0 if unknown.
    tid: AtomicU32,
    /// Live clones of our waker that the future (or resources it registered
    /// with) hold.
    pub(crate) wakers: AtomicU32,
    /// Set by our waker, cleared when a poll starts: woken, not yet polled.
    pub(crate) woken: AtomicBool,
    /// Inside `poll` (or running its closure) right now.
    busy: AtomicBool,
    /// Whether the side table holds this task's tokio ids.
    has_ids: AtomicBool,
    /// The task's kind. It never changes.
    kind: Kind,
    /// The runtime's waker for this task, which ours forwards to. It is
    /// kept until the record drops, not taken out when the task ends: a
    /// clone of our waker that outlives the task then keeps the runtime's
    /// task allocation alive, exactly as a clone of the runtime's own waker
    /// would, and the end of every task saves two atomic operations.
    pub(crate) runtime_waker: AtomicWaker,
}

impl TaskState {
    /// The state of a task of `kind` that hasn't started yet.
    pub(crate) fn new(kind: Kind) -> TaskState {
        TaskState {
            last_poll: AtomicU64::new(0),
            polls: AtomicU32::new(0),
            tid: AtomicU32::new(0),
            wakers: AtomicU32::new(0),
            woken: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            has_ids: AtomicBool::new(false),
            kind,
            runtime_waker: AtomicWaker::new(),
        }
    }

    /// The task's kind.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// A poll starts: remember the runtime's waker and the time. Returns
    /// whether it is the first.
    #[inline]
    pub(crate) fn poll_begin(&self, runtime_waker: &Waker) -> bool {
        // Only the polling thread writes the count (a future is polled by
        // one thread at a time), so a load and a store do: no RMW.
        let polls = self.polls.load(Ordering::Relaxed);
        self.runtime_waker.register(runtime_waker);
        self.woken.store(false, Ordering::Relaxed);
        self.started(polls);
        polls == 0
    }

    /// A poll (or a blocking closure) starts now; `polls` came before it.
    #[inline]
    fn started(&self, polls: u32) {
        self.last_poll
            .store(Stamp::now().encode(), Ordering::Relaxed);
        self.busy.store(true, Ordering::Relaxed);
        self.polls.store(polls.saturating_add(1), Ordering::Relaxed);
    }

    /// The poll returned.
    #[inline]
    pub(crate) fn poll_end(&self) {
        self.busy.store(false, Ordering::Relaxed);
    }

    /// A blocking task's or thread's closure starts on this thread.
    pub(crate) fn run_begin(&self) {
        self.tid
            .store(crate::os_thread::current_tid(), Ordering::Relaxed);
        self.started(0);
    }

    /// The OS thread running this blocking task or thread, 0 if unknown.
    pub(crate) fn tid(&self) -> u32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// A poll of a task that leakcheck doesn't wrap starts (tokio's
    /// before-poll hook): no waker to count, only the time.
    #[cfg(tokio_unstable)]
    pub(crate) fn hook_poll_begin(&self) {
        self.started(self.polls.load(Ordering::Relaxed));
    }

    /// Whether the tokio id table has an entry for this task.
    pub(crate) fn has_ids(&self) -> bool {
        self.has_ids.load(Ordering::Acquire)
    }

    /// The tokio id table has an entry for this task now.
    pub(crate) fn mark_ids(&self) {
        self.has_ids.store(true, Ordering::Release);
    }

    /// Whether the table had an entry; from now on it hasn't.
    pub(crate) fn take_ids_mark(&mut self) -> bool {
        std::mem::take(self.has_ids.get_mut())
    }

    /// Lets go of the runtime's waker once the task has ended, while the
    /// record is kept for reuse.
    pub(crate) fn clear(&mut self) {
        self.runtime_waker = AtomicWaker::new();
    }

    /// What the task is doing at `now`, for an async task.
    pub(crate) fn condition(&self, now: Stamp) -> Condition {
        let polls = u64::from(self.polls.load(Ordering::Relaxed));
        let last = Stamp::decode(self.last_poll.load(Ordering::Relaxed));
        let since = |at: Option<Stamp>| at.map_or(Duration::ZERO, |at| now.since(at));
        if self.busy.load(Ordering::Relaxed) {
            return Condition::Busy { for_: since(last) };
        }
        if polls == 0 {
            return Condition::NotYetPolled;
        }
        let last = since(last);
        if self.woken.load(Ordering::Relaxed) {
            return Condition::Runnable { polls, last };
        }
        match self.wakers.load(Ordering::Relaxed) {
            0 => Condition::CanNeverFinish { polls, last },
            wakers => Condition::Waiting {
                wakers: wakers as usize,
                polls,
                last,
            },
        }
    }

    /// What a task seen only through tokio's hooks is doing at `now`: no
    /// waker was counted, so "pending" is all that can be said of a task
    /// that is not inside `poll`.
    pub(crate) fn hooked_condition(&self, now: Stamp) -> Condition {
        match self.condition(now) {
            Condition::CanNeverFinish { polls, last }
            | Condition::Waiting { polls, last, .. }
            | Condition::Runnable { polls, last } => Condition::Pending { polls, last },
            other => other,
        }
    }

    /// What a blocking task or thread is doing at `now`.
    pub(crate) fn running(&self, now: Stamp) -> Condition {
        match Stamp::decode(self.last_poll.load(Ordering::Relaxed)) {
            None => Condition::NotStarted,
            Some(started) => Condition::Running {
                for_: now.since(started),
                kernel: crate::os_thread::kernel_state(self.tid.load(Ordering::Relaxed)),
            },
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
