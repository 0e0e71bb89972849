//! `TaskState`: what a task is doing, tracked on every poll, and the
//! `Condition` a report reads from it ("can never finish", "waiting", ...).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;

use crate::kind::Kind;

/// Live state of one task. Written by the thread that polls the task (and
/// by whoever wakes it), read by reports from any thread; every field is a
/// plain atomic, so neither side takes a lock (but for the tokio ids, set
/// once and read only by checks).
pub(crate) struct TaskState {
    /// Completed and ongoing polls (for blocking tasks and threads: 1 once
    /// their closure started).
    polls: AtomicU64,
    /// When the current poll started (ns since [`epoch`], plus one), or 0
    /// when not inside `poll`.
    poll_started: AtomicU64,
    /// When the last poll started (same encoding); 0 if never polled.
    last_poll: AtomicU64,
    /// Set by our waker, cleared when a poll starts: woken, not yet polled.
    pub(crate) woken: AtomicBool,
    /// Live clones of our waker that the future (or resources it registered
    /// with) hold.
    pub(crate) wakers: AtomicUsize,
    /// The runtime's waker for this task, which ours forwards to.
    pub(crate) runtime_waker: AtomicWaker,
    /// The OS thread running a blocking task or thread (Linux), 0 if unknown.
    tid: AtomicU32,
    /// The task's kind. It never changes; it sits here rather than in
    /// `TaskRecord` because it fits in the word the two fields above leave
    /// half empty, which keeps the record 8 bytes smaller.
    kind: Kind,
    /// The tokio ids, each set at most once. One lock for both is 8 bytes
    /// smaller than two `OnceLock`s, and it is only taken on a first poll
    /// that needs them and by checks.
    ids: Mutex<TokioIds>,
}

/// What tokio calls a task and its runtime.
#[derive(Clone, Copy, Default)]
struct TokioIds {
    /// The tokio task that first polled this future, to match task dumps.
    task: Option<tokio::task::Id>,
    /// The runtime of that task, once known; only looked up while some
    /// runtime is instrumented (`crate::runtime`), whose checks count it.
    runtime: Option<tokio::runtime::Id>,
}

/// A fixed point that timestamps count from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn stamp(at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(epoch()).as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
}

fn unstamp(stamp: u64) -> Option<Instant> {
    (stamp != 0).then(|| epoch() + Duration::from_nanos(stamp - 1))
}

impl TaskState {
    /// The state of a task of `kind` that hasn't started yet.
    pub(crate) fn new(kind: Kind) -> TaskState {
        TaskState {
            polls: AtomicU64::new(0),
            poll_started: AtomicU64::new(0),
            last_poll: AtomicU64::new(0),
            woken: AtomicBool::new(false),
            wakers: AtomicUsize::new(0),
            runtime_waker: AtomicWaker::new(),
            tid: AtomicU32::new(0),
            kind,
            ids: Mutex::new(TokioIds::default()),
        }
    }

    /// The task's kind.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The tokio ids, ignoring poison: nothing can panic while the lock is
    /// held, so the ids are always consistent.
    fn ids(&self) -> std::sync::MutexGuard<'_, TokioIds> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the tokio task (and its runtime, if given) unless already
    /// known: the first value of each wins.
    fn set_ids(&self, task: tokio::task::Id, runtime: Option<tokio::runtime::Id>) {
        let mut ids = self.ids();
        ids.task.get_or_insert(task);
        if let Some(runtime) = runtime {
            ids.runtime.get_or_insert(runtime);
        }
    }

    /// On a first poll: records the tokio task (and, while some runtime is
    /// instrumented, its runtime). Out of line, so that the lock's code
    /// doesn't weigh on every poll.
    #[cold]
    #[inline(never)]
    fn note_ids(&self) {
        if let Some(id) = tokio::task::try_id() {
            let runtime = crate::runtime::any_instrumented()
                .then(|| tokio::runtime::Handle::try_current().ok())
                .flatten()
                .map(|handle| handle.id());
            self.set_ids(id, runtime);
        }
    }

    /// A poll starts: remember the runtime's waker and the time.
    pub(crate) fn poll_begin(&self, runtime_waker: &Waker) {
        // Only task dumps and instrumented runtimes (which count their
        // untracked tasks by id) need the id; otherwise skip the lookup.
        if self.polls.load(Ordering::Relaxed) == 0
            && (crate::taskdump::ENABLED || crate::runtime::any_instrumented())
        {
            self.note_ids();
        }
        self.runtime_waker.register(runtime_waker);
        self.woken.store(false, Ordering::Relaxed);
        let now = stamp(Instant::now());
        self.last_poll.store(now, Ordering::Relaxed);
        self.poll_started.store(now, Ordering::Relaxed);
        // Only the polling thread writes the count (a future is polled by
        // one thread at a time), so a load and a store do: no RMW.
        let polls = self.polls.load(Ordering::Relaxed);
        self.polls.store(polls + 1, Ordering::Relaxed);
    }

    /// The poll returned.
    pub(crate) fn poll_end(&self) {
        self.poll_started.store(0, Ordering::Relaxed);
    }

    /// A blocking task's or thread's closure starts on this thread.
    pub(crate) fn run_begin(&self) {
        self.tid
            .store(crate::os_thread::current_tid(), Ordering::Relaxed);
        let now = stamp(Instant::now());
        self.last_poll.store(now, Ordering::Relaxed);
        self.poll_started.store(now, Ordering::Relaxed);
        self.polls.store(1, Ordering::Relaxed);
    }

    /// The OS thread running this blocking task or thread, 0 if unknown.
    pub(crate) fn tid(&self) -> u32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// The tokio task this future runs in, once polled inside one.
    pub(crate) fn tokio_id(&self) -> Option<tokio::task::Id> {
        self.ids().task
    }

    /// The runtime of [`TaskState::tokio_id`]'s task, when known.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Id> {
        self.ids().runtime
    }

    /// Names the task and runtime up front, when the spawn itself is seen
    /// (tokio's spawn hook) rather than the first poll.
    #[cfg(tokio_unstable)]
    pub(crate) fn spawned_as(&self, task: tokio::task::Id, runtime: Option<tokio::runtime::Id>) {
        self.set_ids(task, runtime);
    }

    /// A poll of a task that leakcheck doesn't wrap starts (tokio's
    /// before-poll hook): no waker to count, only the time.
    #[cfg(tokio_unstable)]
    pub(crate) fn hook_poll_begin(&self) {
        let now = stamp(Instant::now());
        self.last_poll.store(now, Ordering::Relaxed);
        self.poll_started.store(now, Ordering::Relaxed);
        self.polls.fetch_add(1, Ordering::Relaxed);
    }

    /// The task ended: let go of the runtime's waker, so that clones of our
    /// waker that outlive the task don't keep the runtime's task alive.
    pub(crate) fn ended(&self) {
        drop(self.runtime_waker.take());
    }

    /// What the task is doing at `now`, for an async task.
    pub(crate) fn condition(&self, now: Instant) -> Condition {
        let polls = self.polls.load(Ordering::Relaxed);
        let started = unstamp(self.poll_started.load(Ordering::Relaxed));
        let last = unstamp(self.last_poll.load(Ordering::Relaxed));
        let since = |at: Instant| now.saturating_duration_since(at);
        if let Some(started) = started {
            return Condition::Busy {
                for_: since(started),
            };
        }
        if polls == 0 {
            return Condition::NotYetPolled;
        }
        let last = last.map_or(Duration::ZERO, since);
        if self.woken.load(Ordering::Relaxed) {
            return Condition::Runnable { polls, last };
        }
        match self.wakers.load(Ordering::Relaxed) {
            0 => Condition::CanNeverFinish { polls, last },
            wakers => Condition::Waiting {
                wakers,
                polls,
                last,
            },
        }
    }

    /// What a task seen only through tokio's hooks is doing at `now`: no
    /// waker was counted, so "pending" is all that can be said of a task
    /// that is not inside `poll`.
    pub(crate) fn hooked_condition(&self, now: Instant) -> Condition {
        match self.condition(now) {
            Condition::CanNeverFinish { polls, last }
            | Condition::Waiting { polls, last, .. }
            | Condition::Runnable { polls, last } => Condition::Pending { polls, last },
            other => other,
        }
    }

    /// What a blocking task or thread is doing at `now`.
    pub(crate) fn running(&self, now: Instant) -> Condition {
        match unstamp(self.poll_started.load(Ordering::Relaxed)) {
            None => Condition::NotStarted,
            Some(started) => Condition::Running {
                for_: now.saturating_duration_since(started),
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
