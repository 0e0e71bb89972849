//! `Scope`: the set of live tasks that one test (or thread, or the process)
//! owns, with the per-shard lengths that make a passing check cheap (a few
//! locks, never a scan of tasks) and the wake-up that makes settling
//! event-driven.

use std::time::{Duration, Instant};

use crate::registry::loom_shim::{fence, lock, Arc, AtomicUsize, Condvar, Mutex, Ordering};
use crate::registry::record::TaskRecord;
use crate::registry::shelf::Shelf;
use crate::registry::slot::shard_count;

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

/// One shard of a scope's live records, keyed by shelf slot.
type Shard = Padded<Mutex<Shelf>>;

/// A cache line of its own, so that shards locked from different cores
/// don't bounce one line between them.
#[repr(align(128))]
struct Padded<T>(T);

/// The live tasks of one owner.
///
/// Storage is sharded by the spawning thread, so concurrent spawns in one
/// scope rarely meet on a lock, and no word is shared by every spawn: the
/// live count a passing check reads is the sum of the shards' lengths,
/// a handful of uncontended locks however many tasks other scopes hold.
pub(crate) struct Scope {
    name: ScopeName,
    /// The OS thread it was made on (see [`Scope::home_thread`]).
    home_thread: u32,
    shards: Box<[Shard]>,
    /// Number of threads currently waiting in [`Scope::wait_for_change`].
    waiters: AtomicUsize,
    /// Bumped (under its lock) whenever a record ends while someone waits.
    epoch: Mutex<u64>,
    changed: Condvar,
}

impl Scope {
    /// A new scope made on this thread. Only `Registry::new_scope` makes
    /// the scopes spawns go to, so that the registry lists each.
    pub(super) fn new(name: ScopeName) -> Arc<Scope> {
        let mut scope = Scope::standalone(name, shard_count());
        if let Some(fresh) = Arc::get_mut(&mut scope) {
            fresh.home_thread = crate::registry::os_thread::current_tid();
        }
        scope
    }

    /// A scope that no registry lists. The loom model builds its scopes this
    /// way: the registry is a static, which loom can't reset between runs.
    fn standalone(name: ScopeName, shards: usize) -> Arc<Scope> {
        let shards = spare_shards::take(shards).unwrap_or_else(|| {
            (0..shards)
                .map(|_| Padded(Mutex::new(Shelf::default())))
                .collect()
        });
        Arc::new(Scope {
            name,
            home_thread: 0,
            shards,
            waiters: AtomicUsize::new(0),
            epoch: Mutex::new(0),
            changed: Condvar::new(),
        })
    }

    pub(crate) fn name(&self) -> &ScopeName {
        &self.name
    }

    /// The OS thread the scope was made on (a test's own thread, for a
    /// test's scope), or 0 if unknown.
    pub(crate) fn home_thread(&self) -> u32 {
        self.home_thread
    }

    /// How many records are live in this scope right now.
    pub(crate) fn live(&self) -> usize {
        self.shards.iter().map(|shard| lock(&shard.0).len()).sum()
    }

    /// Stores a record of this scope in the shard its slot names.
    ///
    /// The record is built (and allocated) before, outside the lock: the
    /// lock covers the shelf alone.
    pub(super) fn insert(&self, record: &Arc<TaskRecord>) {
        debug_assert!(std::ptr::eq(&*record.scope, self));
        let mut shelf = lock(&self.shards[record.state.slot.shard()].0);
        let key = shelf.insert(record.clone());
        record.state.slot.set_key(key);
    }

    /// Ends a record: removes it, then wakes anyone settling on this scope.
    pub(super) fn remove(&self, record: &TaskRecord) {
        let removed = {
            let mut shelf = lock(&self.shards[record.state.slot.shard()].0);
            shelf.remove(record.state.slot.key())
        };
        debug_assert!(removed.is_some_and(|r| r.id() == record.id()));
        // Dropping `removed` (the registry's reference) happened above, outside
        // the shard lock. Either this thread sees the waiter, or the waiter
        // sees the removal: a settler announces itself before it locks the
        // shards to list survivors, so if that listing still held this
        // record, its lock came before ours, and the announcement with it.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            *lock(&self.epoch) += 1;
            self.changed.notify_all();
        }
    }

    /// A task of this scope can never finish now (its last waker went, or
    /// its poll ended with none): a settling check re-reads, since its
    /// verdict may be final. The fence pairs with the one in
    /// [`Scope::settle`]: either this sees the waiter, or the waiter's
    /// listing sees the task stuck.
    pub(super) fn nudge(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            *lock(&self.epoch) += 1;
            self.changed.notify_all();
        }
    }

    /// The live records for which `keep` is true.
    ///
    /// Each shard is read under its lock, so a record shows up at most once
    /// and only fully built. `keep` runs after the locks are released: it
    /// calls the user's ignore predicates, which may end or spawn tasks of
    /// this very scope, and that would deadlock on the shard lock.
    pub(crate) fn snapshot(
        &self,
        mut keep: impl FnMut(&Arc<TaskRecord>) -> bool,
    ) -> Vec<Arc<TaskRecord>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shelf = lock(&shard.0);
            // A shelf walks its vacant slots too: as many as this shard
            // ever held at once. An empty shard is skipped outright, so a
            // passing check costs the same after a burst of tasks.
            if !shelf.is_empty() {
                out.extend(shelf.iter().cloned());
            }
        }
        out.retain(|r| keep(r));
        out
    }

    /// Calls `visit` with the live records, a few hundred at a time, each
    /// batch copied out under its shard's lock and visited after it is let
    /// go: a spawn or an end in this scope waits at most for one batch's
    /// copy (microseconds), never for the visit, however many records the
    /// shard holds, and finds the lock free while the batch is visited.
    /// A record alive throughout is visited once; one that comes or goes
    /// meanwhile, at most once.
    pub(crate) fn visit_in_batches(&self, mut visit: impl FnMut(&[Arc<TaskRecord>])) {
        const BATCH: usize = 256;
        let mut batch = Vec::with_capacity(BATCH);
        for shard in self.shards.iter() {
            let mut from = Some(0);
            while let Some(start) = from {
                from = lock(&shard.0).copy_from(start, BATCH, &mut batch);
                if !batch.is_empty() {
                    visit(&batch);
                    batch.clear();
                }
            }
        }
    }

    /// Whether `record` is still registered here (it has not ended).
    pub(crate) fn holds(&self, record: &Arc<TaskRecord>) -> bool {
        let Some(shard) = self.shards.get(record.state.slot.shard()) else {
            return false;
        };
        lock(&shard.0)
            .get(record.state.slot.key())
            .is_some_and(|held| Arc::ptr_eq(held, record))
    }

    /// Waits until `deadline` for the set of survivors that `survivors`
    /// lists to become empty; returns what is left.
    ///
    /// Once a listing is [`Listing::hopeless`], the wait is cut to `grace`
    /// from then: an abort already asked for (by a parent that then ended,
    /// or by the test just before its check) reaches the task only when its
    /// runtime gets to it, and nothing tells leakcheck it is on its way.
    ///
    /// Event-driven: re-evaluates only when a record of this scope ends or
    /// one can never finish any more (or at the deadline), never on a
    /// polling interval. `None` waits forever.
    pub(crate) fn settle(
        &self,
        deadline: Option<Instant>,
        grace: Duration,
        mut survivors: impl FnMut(&Scope) -> Listing,
    ) -> Listing {
        // Announce the waiter before reading any state (see `remove`).
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst); // see `nudge`
        let _done = DecrementOnDrop(&self.waiters);
        let mut hopeless_since = None;
        loop {
            let seen = *lock(&self.epoch);
            let listing = survivors(self);
            let now = Instant::now();
            if listing.left.is_empty() || deadline.is_some_and(|d| now >= d) {
                return listing;
            }
            let until = if listing.hopeless {
                let cut = hopeless_since.get_or_insert(now).checked_add(grace);
                if cut.is_some_and(|cut| now >= cut) {
                    return listing;
                }
                [deadline, cut].into_iter().flatten().min()
            } else {
                hopeless_since = None;
                deadline
            };
            drop(listing);
            self.wait_for_change(seen, until);
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

impl Drop for Scope {
    fn drop(&mut self) {
        spare_shards::keep(std::mem::take(&mut self.shards));
    }
}

/// The shards of dropped scopes, kept for the next scopes made: a scope per
/// test allocated them (cache-line aligned, so through `posix_memalign`)
/// and grew their shelves on its first spawn, about a quarter of what a
/// passing `#[leak_check]` test cost on top of a `#[tokio::test]`. Kept for
/// the whole process, not per thread: libtest runs each test on a thread of
/// its own, which a per-thread list never served twice.
#[cfg(not(loom))]
mod spare_shards {
    use std::sync::{Mutex, PoisonError};

    use super::Shard;

    /// How many scopes' shards are kept (of each count): about as many as
    /// tests run at once.
    const KEEP: usize = 8;

    static SPARE: Mutex<Vec<Box<[Shard]>>> = Mutex::new(Vec::new());

    /// A kept set of `count` shards, if there is one.
    pub(super) fn take(count: usize) -> Option<Box<[Shard]>> {
        let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        // Every listed scope has the same count (one per core, fixed for
        // the process); other counts are the unit tests' standalone scopes.
        let index = spare.iter().rposition(|shards| shards.len() == count)?;
        Some(spare.swap_remove(index))
    }

    /// Keeps a dropped scope's shards, emptied, unless enough are kept.
    pub(super) fn keep(mut shards: Box<[Shard]>) {
        if shards.is_empty() {
            return;
        }
        // A scope drops once no record refers to it, and a shelf's records
        // refer to theirs: its shelves are empty.
        let emptied = shards.iter_mut().all(|shard| {
            shard
                .0
                .get_mut()
                .unwrap_or_else(|poison| poison.into_inner())
                .reset()
        });
        if emptied {
            let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
            if spare
                .iter()
                .filter(|kept| kept.len() == shards.len())
                .count()
                < KEEP
            {
                spare.push(shards);
            }
        }
    }
}

/// Under loom, nothing is kept: a process-wide list would outlive the
/// model's runs.
#[cfg(loom)]
mod spare_shards {
    use super::Shard;

    pub(super) fn take(_count: usize) -> Option<Box<[Shard]>> {
        None
    }

    pub(super) fn keep(_shards: Box<[Shard]>) {}
}

/// One listing of a scope's survivors while it settles.
pub(crate) struct Listing {
    pub(crate) left: Vec<Arc<TaskRecord>>,
    /// Waiting longer can't change the verdict: stop now.
    pub(crate) hopeless: bool,
}

#[cfg(all(test, loom))]
impl Listing {
    /// Survivors that may still end: wait for them.
    pub(super) fn waiting(left: Vec<Arc<TaskRecord>>) -> Listing {
        Listing {
            left,
            hopeless: false,
        }
    }
}

struct DecrementOnDrop<'a>(&'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Model checks of the registry's protocol: `RUSTFLAGS="--cfg loom"
/// LOOM_MAX_PREEMPTIONS=3 cargo test --lib --release loom_model` (as
/// `.ci/run` does). Each model runs every interleaving of its threads up to
/// the preemption bound; a lost wake-up shows as loom's deadlock error,
/// because the settling thread waits without a deadline.
#[cfg(all(test, loom))]
mod loom_model {
    use super::{Listing, Scope, ScopeName};
    use crate::registry::loom_shim::{Arc, Ordering};
    use crate::registry::record::Registration;
    use loom::thread;
    use std::time::Duration;

    fn scope() -> Arc<Scope> {
        Scope::standalone(ScopeName::Process, 2)
    }

    /// `loom::model`, printing how many interleavings it explored.
    fn model(name: &str, f: impl Fn() + Send + Sync + 'static) {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = runs.clone();
        loom::model(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            f();
        });
        eprintln!(
            "loom: {name}: {} interleavings",
            runs.load(Ordering::Relaxed)
        );
    }

    /// Settles with no deadline: returns only once nothing is left.
    fn settle_all(scope: &Scope) {
        let left = scope
            .settle(None, Duration::ZERO, |s| {
                Listing::waiting(s.snapshot(|_| true))
            })
            .left;
        assert!(left.is_empty());
    }

    #[test]
    fn a_waiter_hears_a_task_become_stuck_while_it_waits() {
        // The fail-fast path: a check waits with no deadline and stops only
        // once every task can never finish; the task gets there (its poll
        // ends with no waker) on another thread. A lost nudge deadlocks.
        model("a_waiter_hears_a_task_become_stuck_while_it_waits", || {
            let scope = scope();
            let task = Registration::in_shard(&scope, 0);
            let record = task.record().clone();
            let poller = thread::spawn(move || {
                record.state.activity.poll_begin();
                if record.state.poll_end() {
                    record.scope.nudge();
                }
            });
            let listing = scope.settle(None, Duration::ZERO, |s| {
                let live = s.snapshot(|_| true);
                let hopeless = live.iter().all(|r| r.can_never_finish());
                Listing {
                    left: live,
                    hopeless,
                }
            });
            assert!(listing.hopeless && listing.left.len() == 1);
            poller.join().unwrap();
            drop(task);
        });
    }

    #[test]
    fn a_waiter_sees_the_last_of_two_tasks_end() {
        model("a_waiter_sees_the_last_of_two_tasks_end", || {
            let scope = scope();
            let a = Registration::in_shard(&scope, 0);
            let b = Registration::in_shard(&scope, 1);
            let ends_a = thread::spawn(move || drop(a));
            let ends_b = thread::spawn(move || drop(b));
            settle_all(&scope);
            ends_a.join().unwrap();
            ends_b.join().unwrap();
            assert_eq!(scope.live(), 0);
            assert_eq!(scope.waiters.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn a_waiter_sees_a_task_registered_and_ended_while_it_waits() {
        model(
            "a_waiter_sees_a_task_registered_and_ended_while_it_waits",
            || {
                let scope = scope();
                let first = Registration::in_shard(&scope, 0);
                let worker = {
                    let scope = scope.clone();
                    thread::spawn(move || {
                        let late = Registration::in_shard(&scope, 1);
                        drop(first);
                        drop(late);
                    })
                };
                settle_all(&scope);
                worker.join().unwrap();
                assert_eq!(scope.live(), 0);
            },
        );
    }

    #[test]
    fn a_snapshot_shows_each_record_once_and_only_whole() {
        model("a_snapshot_shows_each_record_once_and_only_whole", || {
            let scope = scope();
            let first = Registration::in_shard(&scope, 0);
            let other = Registration::in_shard(&scope, 1);
            let churn = {
                let scope = scope.clone();
                thread::spawn(move || {
                    // Ends one record and registers two, across both shards.
                    let moved = Registration::in_shard(&scope, 1);
                    drop(first);
                    let kept = Registration::in_shard(&scope, 0);
                    (moved, kept)
                })
            };
            let ends_other = thread::spawn(move || drop(other));
            let seen = scope.snapshot(|_| true);
            let mut ids: Vec<u64> = seen.iter().map(|r| r.id()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), seen.len(), "a record listed twice");
            assert!(seen.len() <= 3, "at most three are ever live at once");
            for record in &seen {
                assert!(Arc::ptr_eq(&record.scope, &scope));
                assert!(record.state.slot.shard() < scope.shards.len());
            }
            drop(seen);
            let still_live = churn.join().unwrap();
            ends_other.join().unwrap();
            assert_eq!(scope.live(), 2);
            drop(still_live);
            settle_all(&scope);
            assert_eq!(scope.live(), 0);
        });
    }
}

#[cfg(all(test, feature = "track", not(loom)))]
mod reuse_tests {
    use super::{Scope, ScopeName};
    use crate::registry::kind::Kind;
    use crate::registry::loom_shim::Arc;
    use crate::registry::record::{Owner, Registration};
    use std::panic::Location;

    /// A thread's registration in `scope`: its record is not kept for
    /// reuse (which would keep its scope alive until the next spawn renews
    /// it).
    fn spawn(scope: &Arc<Scope>) -> Registration {
        let owner = Owner::Scope(scope.clone());
        Registration::new(owner, Kind::Thread, None, Location::caller())
    }

    /// A shard count no listed scope has (they have at most 16), so that
    /// the process-wide spares of this count are this test's alone while
    /// other tests make and drop scopes on other threads.
    const OWN_COUNT: usize = 17;

    #[test]
    fn a_dropped_scopes_shards_serve_the_next_scope_empty() {
        let first = Scope::standalone(ScopeName::Process, OWN_COUNT);
        let shards = first.shards.as_ptr();
        drop(first);
        let second = Scope::standalone(ScopeName::Process, OWN_COUNT);
        assert_eq!(second.shards.as_ptr(), shards, "kept and reused");

        // A scope that held records gives back empty shards.
        let mut tasks: Vec<_> = (0..3).map(|_| spawn(&second)).collect();
        assert_eq!(second.live(), 3);
        tasks.iter_mut().for_each(Registration::end);
        drop(tasks);
        drop(second);

        let third = Scope::standalone(ScopeName::Process, OWN_COUNT);
        assert_eq!(third.shards.as_ptr(), shards);
        assert_eq!(third.live(), 0, "kept shards come back empty");
        let mut task = spawn(&third);
        assert_eq!(third.live(), 1, "only the new record");
        assert_eq!(third.snapshot(|_| true).len(), 1);
        assert!(third.holds(task.record()));
        task.end();
        assert_eq!(third.live(), 0);
    }
}
