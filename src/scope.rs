//! `Scope`: the set of live tasks that one test (or thread, or the process)
//! owns, with the live count that makes a passing check O(1) and the
//! wake-up that makes settling event-driven.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

use slab::Slab;

use crate::record::TaskRecord;
use crate::sync::{lock, Arc, AtomicUsize, Condvar, Mutex, Ordering};

/// Where a record sits in its scope's storage: shard and slab key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    shard: u32,
    key: u32,
}

/// What a scope stands for, which decides how reports name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScopeName {
    /// A test, named after libtest's thread or by `#[leak_check]`.
    Test(Arc<str>),
    /// A thread that is not a test: unnamed, or the main thread.
    Thread(Option<Arc<str>>),
    /// Spawns that belong to no test.
    Process,
}

/// One shard of a scope's live records, keyed by slab index.
type Shard = Padded<Mutex<Slab<Arc<TaskRecord>>>>;

/// A cache line of its own, so that shards locked from different cores
/// don't bounce one line between them.
#[repr(align(128))]
struct Padded<T>(T);

/// The live tasks of one owner.
///
/// Storage is sharded by the spawning thread, so concurrent spawns in one
/// scope rarely meet on a lock; `live` is the one shared word every spawn
/// and end touches, and it is all a passing check needs to read.
pub(crate) struct Scope {
    name: ScopeName,
    live: AtomicUsize,
    shards: Box<[Shard]>,
    /// Number of threads currently waiting in [`Scope::wait_for_change`].
    waiters: AtomicUsize,
    /// Bumped (under its lock) whenever a record ends while someone waits.
    epoch: Mutex<u64>,
    changed: Condvar,
}

fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        cores.clamp(2, 16).next_power_of_two()
    })
}

/// The shard this thread inserts into: threads are dealt out round-robin.
fn home_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    let pick = || NEXT.fetch_add(1, Ordering::Relaxed);
    let index = HOME
        .try_with(|home| {
            if home.get() == usize::MAX {
                home.set(pick());
            }
            home.get()
        })
        .unwrap_or_else(|_| pick());
    index & (shard_count() - 1)
}

impl Scope {
    pub(crate) fn new(name: ScopeName) -> Arc<Scope> {
        let shards = (0..shard_count())
            .map(|_| Padded(Mutex::new(Slab::new())))
            .collect();
        let scope = Arc::new(Scope {
            name,
            live: AtomicUsize::new(0),
            shards,
            waiters: AtomicUsize::new(0),
            epoch: Mutex::new(0),
            changed: Condvar::new(),
        });
        crate::registry::Registry::global().add(&scope);
        scope
    }

    pub(crate) fn name(&self) -> &ScopeName {
        &self.name
    }

    /// How many records are live in this scope right now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Builds a record for its slot and stores it.
    pub(crate) fn insert(
        this: &Arc<Scope>,
        build: impl FnOnce(Slot) -> TaskRecord,
    ) -> Arc<TaskRecord> {
        let shard = home_shard();
        // Counted before it is visible, so `live` never under-counts what a
        // snapshot can see, and the decrement in `remove` can't underflow.
        this.live.fetch_add(1, Ordering::Relaxed);
        let mut slab = lock(&this.shards[shard].0);
        let entry = slab.vacant_entry();
        let key = u32::try_from(entry.key()).expect("more than 4 billion live tasks in one scope");
        let record = Arc::new(build(Slot {
            shard: shard as u32,
            key,
        }));
        entry.insert(record.clone());
        record
    }

    /// Ends a record: removes it, then wakes anyone settling on this scope.
    pub(crate) fn remove(&self, record: &TaskRecord) {
        let removed = {
            let mut slab = lock(&self.shards[record.slot.shard as usize].0);
            slab.try_remove(record.slot.key as usize)
        };
        debug_assert!(removed.is_some_and(|r| r.id == record.id));
        // Dropping `removed` (the registry's reference) happened above, outside
        // the shard lock. SeqCst pairs with `wait_for_change`: either this
        // thread sees the waiter, or the waiter sees this decrement.
        self.live.fetch_sub(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            *lock(&self.epoch) += 1;
            self.changed.notify_all();
        }
    }

    /// The live records for which `keep` is true.
    ///
    /// Each shard is read under its lock, so a record shows up at most once
    /// and only fully built.
    pub(crate) fn snapshot(
        &self,
        mut keep: impl FnMut(&Arc<TaskRecord>) -> bool,
    ) -> Vec<Arc<TaskRecord>> {
        let mut out = Vec::new();
        if self.live() == 0 {
            return out;
        }
        for shard in self.shards.iter() {
            let slab = lock(&shard.0);
            out.extend(slab.iter().map(|(_, r)| r).filter(|r| keep(r)).cloned());
        }
        out
    }

    /// Waits until `deadline` for the set of survivors that `survivors`
    /// computes to become empty; returns what is left.
    ///
    /// Event-driven: re-evaluates only when a record of this scope ends (or
    /// at the deadline), never on a polling interval. `None` waits forever.
    pub(crate) fn settle(
        &self,
        deadline: Option<Instant>,
        mut survivors: impl FnMut(&Scope) -> Vec<Arc<TaskRecord>>,
    ) -> Vec<Arc<TaskRecord>> {
        // Announce the waiter before reading any state (see `remove`).
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _done = DecrementOnDrop(&self.waiters);
        loop {
            let seen = *lock(&self.epoch);
            let left = survivors(self);
            if left.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return left;
            }
            drop(left);
            self.wait_for_change(seen, deadline);
        }
    }

    /// Blocks until `epoch` moves past `seen` or the deadline passes.
    fn wait_for_change(&self, seen: u64, deadline: Option<Instant>) {
        let mut epoch = lock(&self.epoch);
        while *epoch == seen {
            match deadline {
                None => {
                    epoch = self.changed.wait(epoch).unwrap_or_else(|p| p.into_inner());
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return;
                    }
                    epoch = self
                        .changed
                        .wait_timeout(epoch, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}

struct DecrementOnDrop<'a>(&'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
