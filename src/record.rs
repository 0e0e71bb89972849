//! `TaskRecord`: what the registry remembers about one live task or thread,
//! and `Registration`, the handle that keeps it registered.

use std::cell::Cell;
use std::panic::Location;

use crate::clock::Stamp;
use crate::kind::Kind;
use crate::scope::{Scope, Slot};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::Arc;
use crate::task_state::TaskState;

/// One live task or thread, as the registry sees it.
///
/// Records are immutable once registered, so a report can read them without
/// any lock. The parent link forms the chain "spawned by task at ...".
pub(crate) struct TaskRecord {
    pub(crate) id: u64,
    /// Boxed twice so that an unnamed task (most are) pays one pointer for
    /// it, not the two of a `Box<str>`.
    #[allow(clippy::redundant_allocation)]
    name: Option<Box<Box<str>>>,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) born: Stamp,
    pub(crate) parent: Option<Arc<TaskRecord>>,
    pub(crate) scope: Arc<Scope>,
    pub(crate) slot: Slot,
    /// What the task is doing, updated on every poll.
    pub(crate) state: TaskState,
}

impl TaskRecord {
    /// The record that [`Scope::insert`] stores in the slot it picked.
    fn builder(
        kind: Kind,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
        parent: Option<Arc<TaskRecord>>,
        scope: Arc<Scope>,
    ) -> impl FnOnce(Slot) -> TaskRecord {
        move |slot| TaskRecord {
            id: next_id(),
            name: name.map(Box::new),
            spawned_at,
            born: Stamp::now(),
            parent,
            scope,
            slot,
            state: TaskState::new(kind),
        }
    }

    /// What spawned it: task, blocking task, thread, ...
    pub(crate) fn kind(&self) -> Kind {
        self.state.kind()
    }

    /// The name the task was spawned with, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|name| &**name)
    }

    /// This record and its ancestors, nearest first.
    pub(crate) fn lineage(&self) -> impl Iterator<Item = &TaskRecord> {
        std::iter::successors(Some(self), |r| r.parent.as_deref())
    }
}

impl Drop for TaskRecord {
    // A crawler that spawns recursively builds a parent chain as deep as its
    // recursion; dropping it recursively could overflow the stack. Unlink the
    // chain iteratively instead.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(parent) = next {
            next = match Arc::try_unwrap(parent) {
                Ok(mut only_owner) => only_owner.parent.take(),
                Err(_) => None,
            };
        }
    }
}

/// Hands out record ids without a shared counter on the spawn path: each
/// thread reserves a block of ids at a time.
pub(crate) fn next_id() -> u64 {
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

/// Keeps one record registered; dropping it ends the record.
///
/// Every spawner owns exactly one of these per task: inside the future
/// wrapper, or moved into the blocking closure or thread body. However the
/// task ends (returns, panics, is aborted or dropped with its runtime), the
/// registration is dropped and the scope's live count goes down.
///
/// The record sits in an `Option` so that the future wrapper can lend it to
/// the thread-local context for the length of a poll without touching the
/// reference count (see [`Registration::lend`]).
pub(crate) struct Registration(Option<Arc<TaskRecord>>);

impl Registration {
    /// Registers a new record owned by whatever is running on this thread.
    pub(crate) fn new(
        kind: Kind,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> Self {
        let owner = crate::context::owner();
        let (scope, parent) = match owner {
            crate::context::Owner::Task(parent) => (parent.scope.clone(), Some(parent)),
            crate::context::Owner::Scope(scope) => (scope, None),
        };
        let build = TaskRecord::builder(kind, name, spawned_at, parent, scope.clone());
        Registration(Some(Scope::insert(&scope, build)))
    }

    /// A task registered in `shard` of `scope`, owned by no one: how the
    /// loom model registers, without the thread-local context.
    #[cfg(loom)]
    #[track_caller]
    pub(crate) fn in_shard(scope: &Arc<Scope>, shard: usize) -> Self {
        let build = TaskRecord::builder(Kind::Task, None, Location::caller(), None, scope.clone());
        Registration(Some(Scope::insert_into(scope, shard, build)))
    }

    /// The record, unless it is lent out or ended.
    pub(crate) fn get(&self) -> Option<&Arc<TaskRecord>> {
        self.0.as_ref()
    }

    /// The registered record. Only for owners that never lend it.
    pub(crate) fn record(&self) -> &Arc<TaskRecord> {
        self.0.as_ref().expect("registration was lent or ended")
    }

    /// Moves the record out for the length of a poll; [`Registration::restore`]
    /// puts it back. Returns `None` if it is already lent or ended.
    pub(crate) fn lend(&mut self) -> Option<Arc<TaskRecord>> {
        self.0.take()
    }

    pub(crate) fn restore(&mut self, record: Option<Arc<TaskRecord>>) {
        debug_assert!(self.0.is_none());
        self.0 = record;
    }

    /// Ends the record now (the task completed) rather than at drop.
    pub(crate) fn end(&mut self) {
        if let Some(record) = self.0.take() {
            record.state.ended();
            record.scope.remove(&record);
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
    use std::mem::size_of;

    #[test]
    fn the_record_does_not_grow() {
        // Every spawn allocates one `Arc<TaskRecord>` (two counts plus the
        // record): at 104 bytes that is a 120-byte request, the largest
        // that glibc serves from its fast bins (128-byte chunks). Each field
        // added costs every live task and, past 104, a slower allocator
        // path. Shrinking is welcome: lower the pin with it.
        assert_eq!(size_of::<TaskRecord>(), 104);
    }
}
