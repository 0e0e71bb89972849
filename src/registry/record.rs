//! `TaskRecord`: what the registry remembers about one live task or thread,
//! and `Registration`, the handle that keeps it registered.

use std::cell::Cell;
use std::panic::Location;

use crate::registry::clock::Stamp;
use crate::registry::kind::Kind;
use crate::registry::scope::Scope;
use crate::registry::slot::Slot;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::loom_shim::Arc;
use crate::registry::task_state::TaskState;

/// One live task or thread, as the registry sees it.
///
/// Records are immutable once registered, so a report can read them without
/// any lock. The parent link forms the chain "spawned by task at ...".
pub(crate) struct TaskRecord {
    /// The id, with the kind in the top byte (ids stay far below 2^56):
    /// both are fixed at birth, and every live record holds them.
    id_and_kind: u64,
    /// Boxed twice so that an unnamed task (most are) pays one pointer for
    /// it, not the two of a `Box<str>`.
    #[allow(clippy::redundant_allocation)]
    name: Option<Box<Box<str>>>,
    pub(super) spawned_at: &'static Location<'static>,
    pub(super) born: Stamp,
    pub(super) parent: Option<Arc<TaskRecord>>,
    pub(super) scope: Arc<Scope>,
    /// What the task is doing, updated on every poll, and where it sits in
    /// its scope.
    pub(super) state: TaskState,
}

/// What a new record is made of, besides what it is given fresh (its id,
/// its birth and its state).
pub(crate) struct Parts {
    kind: Kind,
    name: Option<Box<str>>,
    spawned_at: &'static Location<'static>,
    parent: Option<Arc<TaskRecord>>,
    scope: Arc<Scope>,
    slot: Slot,
}

impl TaskRecord {
    /// A record of `parts.scope`, to be stored in `parts.slot`'s shard.
    fn new(parts: Parts) -> TaskRecord {
        TaskRecord {
            id_and_kind: id_and_kind(parts.kind),
            name: parts.name.map(Box::new),
            spawned_at: parts.spawned_at,
            born: Stamp::now(),
            parent: parts.parent,
            scope: parts.scope,
            state: TaskState::new(parts.slot),
        }
    }

    /// Makes an emptied record (see `spare::recycle`) a new one, field by
    /// field: the fields `recycle` emptied have nothing to drop, and the
    /// record's own `Drop` (which unlinks a parent chain) has nothing to do,
    /// so neither runs; only the old scope reference is let go.
    #[cfg(not(loom))]
    fn renew(&mut self, parts: Parts) {
        debug_assert!(self.parent.is_none() && self.name.is_none() && !self.state.has_ids());
        self.id_and_kind = id_and_kind(parts.kind);
        self.name = parts.name.map(Box::new);
        self.spawned_at = parts.spawned_at;
        self.born = Stamp::now();
        self.parent = parts.parent;
        self.scope = parts.scope;
        self.state = TaskState::new(parts.slot);
    }

    /// Its id: unique in the process, never reused.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id_and_kind & ID_BITS
    }

    /// Where it was spawned.
    pub(crate) fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// When it was registered.
    pub(crate) fn born(&self) -> Stamp {
        self.born
    }

    /// The tracked task it was spawned from, if any.
    pub(crate) fn parent(&self) -> Option<&Arc<TaskRecord>> {
        self.parent.as_ref()
    }

    /// The scope it belongs to.
    pub(crate) fn scope(&self) -> &Arc<Scope> {
        &self.scope
    }

    /// The OS thread running it, for a blocking task or thread that has
    /// started (0 otherwise).
    pub(crate) fn tid(&self) -> u32 {
        // A future's word holds its poll count instead.
        if self.kind().is_async() {
            0
        } else {
            self.state.tid()
        }
    }

    /// Whether the tokio id table has an entry for it.
    #[cfg(tokio_unstable)]
    pub(crate) fn has_ids(&self) -> bool {
        self.state.has_ids()
    }

    /// What spawned it: task, blocking task, thread, ...
    pub(crate) fn kind(&self) -> Kind {
        Kind::from_bits((self.id_and_kind >> ID_SHIFT) as u8)
    }

    /// The name the task was spawned with, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|name| &**name)
    }

    /// A poll of this task starts.
    ///
    /// # Safety
    ///
    /// Only from the poll of the future that owns this record (see
    /// [`TaskState::poll_begin`]).
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn poll_begin(&self, runtime_waker: &std::task::Waker) {
        // SAFETY: the caller's contract is `poll_begin`'s.
        let first = unsafe { self.state.poll_begin(runtime_waker) };
        // Only task dumps and instrumented runtimes (which count their
        // untracked tasks by id) need the id; otherwise skip the lookup.
        if first && crate::registry::tokio_ids::wanted() {
            self.note_ids();
        }
    }

    /// The poll that [`TaskRecord::poll_begin`] started returned. If the
    /// task can never finish now, a check waiting on its scope hears of it
    /// at once (see `Scope::nudge`). A poll that `finished` the task reads
    /// as one that can never finish, but needs no nudge: ending the record,
    /// next, wakes a settling check anyway (and a `SeqCst` fence per task
    /// is saved).
    #[inline]
    pub(crate) fn poll_end(&self, finished: bool) {
        if self.state.poll_end() && !finished {
            self.scope.nudge();
        }
    }

    /// A poll of a task seen only through tokio's hooks starts: no waker to
    /// count, only the time.
    #[cfg(tokio_unstable)]
    pub(crate) fn hook_poll_begin(&self) {
        self.state.hook_poll_begin();
    }

    /// That poll returned. Its wakers aren't counted, so it never reads as
    /// can never finish, and no check needs to hear of it.
    #[cfg(tokio_unstable)]
    pub(crate) fn hook_poll_end(&self) {
        let _ = self.state.poll_end();
    }

    /// On a first poll: records the tokio task (and, while some runtime is
    /// instrumented, its runtime). Out of line, so that the lookup's code
    /// doesn't weigh on every poll.
    #[cold]
    #[inline(never)]
    fn note_ids(&self) {
        if let Some(id) = tokio::task::try_id() {
            let runtime = crate::registry::tokio_ids::runtime_wants_ids()
                .then(|| tokio::runtime::Handle::try_current().ok())
                .flatten()
                .map(|handle| handle.id());
            self.spawned_as(id, runtime);
        }
    }

    /// Names the tokio task (and runtime) this record's future runs in; the
    /// first value of each wins.
    pub(crate) fn spawned_as(&self, task: tokio::task::Id, runtime: Option<tokio::runtime::Id>) {
        crate::registry::tokio_ids::note(self.id(), task, runtime);
        self.state.mark_ids();
    }

    /// The tokio task this future runs in, once polled inside one (or seen
    /// by an instrumented runtime's spawn hook).
    pub(crate) fn tokio_id(&self) -> Option<tokio::task::Id> {
        self.tokio_ids().task
    }

    /// The runtime of [`TaskRecord::tokio_id`]'s task, when known.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Id> {
        self.tokio_ids().runtime
    }

    fn tokio_ids(&self) -> crate::registry::tokio_ids::TokioIds {
        if self.state.has_ids() {
            crate::registry::tokio_ids::get(self.id())
        } else {
            crate::registry::tokio_ids::TokioIds::default()
        }
    }

    /// Removes this record's tokio ids, if it has any.
    fn forget_ids(&mut self) {
        if self.state.take_ids_mark() {
            crate::registry::tokio_ids::forget(self.id());
        }
    }

    /// This record and its ancestors, nearest first.
    /// What the task is doing at `now`, as its kind lets leakcheck tell:
    /// a future it wraps by its counted wakers, one seen only through
    /// tokio's hooks as merely pending, a blocking task or thread as running.
    pub(crate) fn condition(&self, now: Stamp) -> crate::registry::task_state::Condition {
        let kind = self.kind();
        if kind == Kind::Untracked {
            self.state.hooked_condition(now)
        } else if kind.is_async() {
            self.state.condition(now)
        } else {
            self.state.running(now)
        }
    }

    /// Whether this task provably can never finish: a future leakcheck
    /// wraps (so its wakers are counted) that nothing can wake again
    /// (`task_state`'s module docs).
    pub(crate) fn can_never_finish(&self) -> bool {
        let kind = self.kind();
        kind.is_async() && kind != Kind::Untracked && self.state.activity.read().can_never_finish()
    }

    pub(crate) fn lineage(&self) -> impl Iterator<Item = &TaskRecord> {
        std::iter::successors(Some(self), |r| r.parent.as_deref())
    }
}

impl Drop for TaskRecord {
    // A crawler that spawns recursively builds a parent chain as deep as its
    // recursion; dropping it recursively could overflow the stack. Unlink the
    // chain iteratively instead, each record dropped where it lies.
    fn drop(&mut self) {
        self.forget_ids();
        let mut next = self.parent.take();
        while let Some(mut parent) = next {
            next = Arc::get_mut(&mut parent).and_then(|only_owner| only_owner.parent.take());
            // `parent` drops here with its own parent link already taken.
        }
    }
}

/// Where a record's word keeps its kind, above the id.
const ID_SHIFT: u32 = 56;
const ID_BITS: u64 = (1 << ID_SHIFT) - 1;

/// A new id with `kind` in the top byte.
fn id_and_kind(kind: Kind) -> u64 {
    let id = next_id();
    // 2^56 ids at a billion a second take over two years.
    assert!(id <= ID_BITS, "record ids ran out");
    id | (u64::from(kind.bits()) << ID_SHIFT)
}

/// Hands out record ids without a shared counter on the spawn path: each
/// thread reserves a block of ids at a time.
pub(super) fn next_id() -> u64 {
    const BLOCK: u64 = 1024;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    let reserve = || NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
    RANGE
        .try_with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = reserve();
                end = next + BLOCK;
            }
            range.set((next + 1, end));
            next
        })
        // During thread-local destruction: take a whole block for one id.
        .unwrap_or_else(|_| reserve())
}

/// Finished records kept for this thread's next spawns.
///
/// A record is one allocation per task, and glibc's allocator turned out to
/// be the largest single cost of a spawn: a task that is spawned, awaited
/// and gone spends about 350 instructions in `malloc` and `free` for its
/// record, whatever its size. A record that nothing else refers to when its
/// task ends (no waker clone, no child, no report holds it; the usual case)
/// is emptied and kept in a small per-thread list instead, and the next
/// spawn on this thread reuses its allocation. The list is short, so a
/// burst of ended tasks still goes back to the allocator. A thread starts
/// its list only once it has ended [`WARM`](spare::WARM) records: libtest
/// runs each test on a thread of its own, which ends a task or two and
/// exits, and a list there only costs its thread-local's registration and
/// the frees at exit.
#[cfg(not(loom))]
mod spare {
    use std::cell::{Cell, RefCell};

    use super::{Parts, TaskRecord};
    use crate::registry::kind::Kind;
    use crate::registry::loom_shim::Arc;

    /// How many emptied records a thread keeps: 28 KiB of 112-byte chunks.
    const KEEP: usize = 256;

    /// How many records a thread ends before it keeps any.
    pub(super) const WARM: u32 = 16;

    thread_local! {
        static SPARE: RefCell<Vec<Arc<TaskRecord>>> = const { RefCell::new(Vec::new()) };
        /// Records this thread has ended, up to [`WARM`]. No destructor, so
        /// counting registers nothing.
        static ENDED: Cell<u32> = const { Cell::new(0) };
    }

    /// A record of `parts` in an allocation of its own: a spare one if this
    /// thread has any.
    pub(super) fn allocate(parts: Parts) -> Arc<TaskRecord> {
        // A thread that keeps nothing yet leaves the list untouched: the
        // first touch registers its destructor, a few hundred instructions.
        if !ENDED.try_with(|ended| ended.get() >= WARM).unwrap_or(false) {
            return Arc::new(TaskRecord::new(parts));
        }
        let spare = SPARE.try_with(|spare| spare.borrow_mut().pop());
        match spare {
            Ok(Some(mut spare)) => match Arc::get_mut(&mut spare) {
                Some(slot) => {
                    slot.renew(parts);
                    spare
                }
                None => Arc::new(TaskRecord::new(parts)),
            },
            _ => Arc::new(TaskRecord::new(parts)),
        }
    }

    /// How many records this thread keeps now.
    #[cfg(test)]
    pub(super) fn kept() -> usize {
        SPARE.with(|spare| spare.borrow().len())
    }

    /// Keeps an ended record's allocation if nothing else refers to it
    /// and this thread's list has room; otherwise drops it.
    pub(super) fn recycle(mut record: Arc<TaskRecord>) {
        if record.kind() == Kind::Thread {
            // A thread's record ends on that thread, as it exits: a list
            // kept there would be freed straight away.
            return;
        }
        let warm = ENDED.try_with(|ended| {
            let now = ended.get();
            if now < WARM {
                ended.set(now + 1);
            }
            now >= WARM
        });
        if warm != Ok(true) {
            return;
        }
        let _ = SPARE.try_with(move |spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() >= KEEP {
                return;
            }
            // No room reserved up front: a test's thread lives for a task
            // or two, and 2 KiB reserved on each of them cost a suite more
            // than growing once through the powers of two costs a worker.
            let Some(ended) = Arc::get_mut(&mut record) else {
                return; // a waker, child or report still holds it
            };
            // Let go now of what the record refers to (its parent chain,
            // its name, the runtime's waker and any tokio ids): a kept
            // record must not keep anything else alive. Its scope stays
            // until reuse, since a record can't be without one.
            ended.parent = None;
            ended.name = None;
            ended.forget_ids();
            ended.state.clear();
            spare.push(record);
        });
    }
}

/// Without reuse under loom: its model threads share std's thread-locals.
#[cfg(loom)]
mod spare {
    use super::{Parts, TaskRecord};
    use crate::registry::loom_shim::Arc;

    pub(super) fn allocate(parts: Parts) -> Arc<TaskRecord> {
        Arc::new(TaskRecord::new(parts))
    }

    pub(super) fn recycle(record: Arc<TaskRecord>) {
        drop(record);
    }
}

/// Who a new record belongs to: the task that spawns it (whose scope it
/// joins, with that task as its parent), or a scope directly. `owner::owner`
/// says which, for a spawn made now on this thread.
pub(crate) enum Owner {
    Task(Arc<TaskRecord>),
    Scope(Arc<Scope>),
}

impl Owner {
    pub(crate) fn scope(&self) -> &Arc<Scope> {
        match self {
            Owner::Task(record) => &record.scope,
            Owner::Scope(scope) => scope,
        }
    }
}

/// Keeps one record registered; dropping it ends the record.
///
/// Every spawner owns exactly one of these per task: inside the future
/// wrapper, or moved into the blocking closure or thread body. However the
/// task ends (returns, panics, is aborted or dropped with its runtime), the
/// registration is dropped and the record leaves its scope.
///
/// The record sits in an `Option` so that the future wrapper can lend it to
/// the thread-local context for the length of a poll without touching the
/// reference count (see [`Registration::lend`]).
pub(crate) struct Registration(Option<Arc<TaskRecord>>);

impl Registration {
    /// Registers a new record that `owner` owns.
    pub(super) fn new(
        owner: Owner,
        kind: Kind,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> Self {
        // The owner's references move into the record: no count is taken
        // and dropped again on the way.
        let (scope, parent) = match owner {
            Owner::Task(parent) => (parent.scope.clone(), Some(parent)),
            Owner::Scope(scope) => (scope, None),
        };
        let slot = Slot::in_home_shard();
        Registration::register(Parts {
            kind,
            name,
            spawned_at,
            parent,
            scope,
            slot,
        })
    }

    /// A task registered in `shard` of `scope`, owned by no one: how the
    /// loom model registers, without the thread-local context.
    #[cfg(loom)]
    #[track_caller]
    pub(super) fn in_shard(scope: &Arc<Scope>, shard: usize) -> Self {
        let slot = Slot::in_shard(shard);
        Registration::register(Parts {
            kind: Kind::Task,
            name: None,
            spawned_at: Location::caller(),
            parent: None,
            scope: scope.clone(),
            slot,
        })
    }

    fn register(parts: Parts) -> Self {
        // Allocated before the shard is locked, so the lock covers the shelf
        // alone.
        let record = spare::allocate(parts);
        record.scope.insert(&record);
        Registration(Some(record))
    }

    /// The record, unless it is lent out or ended.
    #[inline]
    pub(crate) fn get(&self) -> Option<&Arc<TaskRecord>> {
        self.0.as_ref()
    }

    /// The registered record. Only for owners that never lend it.
    pub(crate) fn record(&self) -> &Arc<TaskRecord> {
        self.0.as_ref().expect("registration was lent or ended")
    }

    /// Moves the record out for the length of a poll; [`Registration::restore`]
    /// puts it back. Returns `None` if it is already lent or ended.
    #[inline]
    pub(super) fn lend(&mut self) -> Option<Arc<TaskRecord>> {
        self.0.take()
    }

    #[inline]
    pub(super) fn restore(&mut self, record: Option<Arc<TaskRecord>>) {
        debug_assert!(self.0.is_none());
        self.0 = record;
    }

    /// Ends the record now (the task completed) rather than at drop.
    pub(crate) fn end(&mut self) {
        if let Some(record) = self.0.take() {
            record.scope.remove(&record);
            spare::recycle(record);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::TaskRecord;
    use crate::registry::kind::Kind;
    use std::mem::size_of;

    #[test]
    fn the_kind_and_the_id_share_a_word_and_come_back_apart() {
        for kind in [
            Kind::Task,
            Kind::Blocking,
            Kind::Local,
            Kind::Thread,
            Kind::Untracked,
        ] {
            assert_eq!(Kind::from_bits(kind.bits()), kind);
            let word = super::id_and_kind(kind);
            assert_eq!(Kind::from_bits((word >> super::ID_SHIFT) as u8), kind);
            assert!(word & super::ID_BITS > 0);
        }
    }

    #[test]
    fn the_record_does_not_grow() {
        // Every spawn allocates one `Arc<TaskRecord>` (two counts plus the
        // record): at 88 bytes that is a 104-byte request, which glibc
        // serves from its fast bins as a 112-byte chunk (at 104 bytes it
        // was a 128-byte one). Each field added costs every live task and,
        // past 88, a larger chunk. Shrinking is welcome: lower the pin
        // with it.
        assert_eq!(size_of::<TaskRecord>(), 88);
    }
}

#[cfg(all(test, not(loom)))]
mod reuse_tests {
    use super::{Owner, Registration};
    use crate::registry::kind::Kind;
    use crate::registry::loom_shim::Arc;
    use crate::registry::scope::{Scope, ScopeName};
    use std::panic::Location;

    thread_local! {
        static SCOPE: Arc<Scope> = Scope::new(ScopeName::Thread(None));
    }

    fn register(kind: Kind) -> Registration {
        Registration::new(
            Owner::Scope(SCOPE.with(Arc::clone)),
            kind,
            None,
            Location::caller(),
        )
    }

    fn register_child(parent: &Registration, kind: Kind) -> Registration {
        let owner = Owner::Task(parent.record().clone());
        Registration::new(owner, kind, None, Location::caller())
    }

    /// Ends enough records on this thread that it keeps the next.
    fn warm_up() {
        for _ in 0..super::spare::WARM {
            register(Kind::Task).end();
        }
    }

    #[test]
    fn a_new_thread_keeps_no_record_until_it_has_ended_a_few() {
        register(Kind::Task).end();
        assert_eq!(super::spare::kept(), 0, "a new thread keeps nothing");
        warm_up();
        assert_eq!(super::spare::kept(), 1, "a warm thread keeps what it ends");
    }

    #[test]
    fn an_ended_record_nobody_holds_is_reused_fresh() {
        warm_up();
        let mut first = register(Kind::Task);
        let first_id = first.record().id();
        let child = register_child(&first, Kind::Blocking);
        first.record().state.run_begin();
        drop(child); // the child's parent link goes with it
        let address = Arc::as_ptr(first.record());
        first.end();

        let second = register(Kind::Thread);
        let record = second.record();
        assert_eq!(Arc::as_ptr(record), address, "the allocation was reused");
        assert_ne!(record.id(), first_id, "under a new id");
        assert_eq!(record.kind(), Kind::Thread);
        assert!(record.parent.is_none());
        assert_eq!(record.tid(), 0, "with fresh state");
        assert!(record.scope.holds(record));
    }

    #[test]
    fn a_record_still_held_is_left_alone() {
        warm_up();
        let mut first = register(Kind::Task);
        let held = first.record().clone(); // as a waker clone would
        let first_id = held.id();
        first.end();

        let second = register(Kind::Task);
        assert!(!Arc::ptr_eq(second.record(), &held));
        assert_eq!(held.id(), first_id, "the holder still sees its own record");
        assert!(!held.scope.holds(&held), "ended all the same");
    }

    /// A real tokio task id (tokio has no public constructor).
    fn some_task_id() -> tokio::task::Id {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async { tokio::spawn(async { tokio::task::id() }).await.unwrap() })
    }

    #[test]
    fn tokio_ids_go_with_their_record_and_never_pass_to_the_next() {
        let task = some_task_id();
        let mut parent = register(Kind::Task);
        parent.record().spawned_as(task, None);
        let parent_id = parent.record().id();
        assert_eq!(parent.record().tokio_id(), Some(task));
        let child = register_child(&parent, Kind::Task);
        parent.end(); // the child keeps the parent's record alive
        assert!(crate::registry::tokio_ids::get(parent_id).task.is_some());
        // A weak reference keeps the child from being kept for reuse: it is
        // dropped, and the parent with it, through the chain unlinking.
        let weak = Arc::downgrade(child.record());
        drop(child);
        assert!(weak.upgrade().is_none());
        assert!(
            crate::registry::tokio_ids::get(parent_id).task.is_none(),
            "a record dropped through its child's chain forgets its ids"
        );

        let mut first = register(Kind::Task);
        first.record().spawned_as(task, None);
        let address = Arc::as_ptr(first.record());
        first.end();
        let second = register(Kind::Task);
        assert_eq!(Arc::as_ptr(second.record()), address);
        assert_eq!(
            second.record().tokio_id(),
            None,
            "a reused record starts without ids"
        );
    }
}
