//! The thread-local context that decides who owns a new spawn.
//!
//! The rules, in order:
//! 1. Inside a tracked task, blocking closure or thread: the spawner's scope,
//!    with the spawner as parent.
//! 2. Inside a tokio task that leakcheck did not spawn: the process scope. On
//!    a runtime worker the thread says nothing about which test is running.
//! 3. Inside an explicit scope ([`enter_scope`], used by `#[leak_check]`).
//! 4. Otherwise: the OS thread's own scope. libtest runs each test on a fresh
//!    thread named after it, so this is the test's scope.

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::panic::Location;

use crate::registry::kind::Kind;
use crate::registry::loom_shim::Arc;
use crate::registry::record::{Owner, Registration, TaskRecord};
use crate::registry::scope::{Scope, ScopeName};
use crate::registry::Registry;

thread_local! {
    /// The tracked task, blocking closure or thread running on this thread.
    ///
    /// Every poll swaps this slot twice, so it is kept free of drop glue
    /// (`ManuallyDrop`): a thread-local without a destructor is a plain
    /// load and store, with no registration check. Only [`swap_current`]
    /// touches it, and it hands every displaced record back to its caller,
    /// so nothing is leaked; the guards that fill it ([`Lend`],
    /// [`Restore`]) empty it before their thread can end.
    static CURRENT: Cell<Option<ManuallyDrop<Arc<TaskRecord>>>> = const { Cell::new(None) };
    /// A scope entered explicitly on this thread (by `#[leak_check]`).
    /// Without drop glue, as `CURRENT`: only [`enter_scope`] and
    /// [`ExplicitScope`]'s drop write it, and the guard puts back what it
    /// replaced. A thread-local with a destructor costs each thread a
    /// registration and a run at exit, and libtest runs each test on a
    /// thread of its own.
    static EXPLICIT: Cell<Option<ManuallyDrop<Arc<Scope>>>> = const { Cell::new(None) };
    /// This thread's own scope, made on first use and dropped with the
    /// thread: the one thread-local here with a destructor, registered
    /// only by a thread that spawns outside any task and explicit scope.
    static THREAD_SCOPE: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

/// Makes `scope` the explicit one and returns the one it replaces.
fn swap_explicit(scope: Option<Arc<Scope>>) -> Option<Arc<Scope>> {
    EXPLICIT
        .with(|cell| cell.replace(scope.map(ManuallyDrop::new)))
        .map(ManuallyDrop::into_inner)
}

/// Makes `record` the current one and returns the one it replaces.
#[inline]
fn swap_current(record: Option<Arc<TaskRecord>>) -> Option<Arc<TaskRecord>> {
    CURRENT
        .with(|cell| cell.replace(record.map(ManuallyDrop::new)))
        .map(ManuallyDrop::into_inner)
}

/// The tracked record running on this thread, if any.
pub(crate) fn current_record() -> Option<Arc<TaskRecord>> {
    let current = swap_current(None);
    let copy = current.clone();
    swap_current(current);
    copy
}

/// Registers a new record owned by whatever runs on this thread ([`owner`]).
#[inline]
pub(crate) fn register(
    kind: Kind,
    name: Option<Box<str>>,
    spawned_at: &'static Location<'static>,
) -> Registration {
    Registration::new(owner(), kind, name, spawned_at)
}

/// Who owns a spawn made now on this thread, by the rules above.
pub(crate) fn owner() -> Owner {
    if let Some(record) = current_record() {
        return Owner::Task(record);
    }
    if tokio::task::try_id().is_some() {
        return Owner::Scope(Registry::process_scope().clone());
    }
    let explicit = swap_explicit(None);
    let copy = explicit.clone();
    swap_explicit(explicit);
    if let Some(scope) = copy {
        return Owner::Scope(scope);
    }
    THREAD_SCOPE
        .try_with(|scope| {
            scope
                .borrow_mut()
                .get_or_insert_with(|| Registry::global().new_scope(thread_scope_name()))
                .clone()
        })
        .map(Owner::Scope)
        // Thread-local destructors are running: this thread is ending.
        .unwrap_or_else(|_| Owner::Scope(Registry::process_scope().clone()))
}

fn thread_scope_name() -> ScopeName {
    match std::thread::current().name() {
        Some("main") | None => ScopeName::Thread(std::thread::current().name().map(Arc::from)),
        Some(test) => ScopeName::Test(Arc::from(test)),
    }
}

/// Makes `record` the current one until the guard drops. Used by blocking
/// closures and threads, which run once; futures use [`Lend`] instead.
pub(crate) fn enter(record: Arc<TaskRecord>) -> Restore {
    Restore(swap_current(Some(record)))
}

/// Runs a blocking closure or thread body as the current owner; its record
/// ends when `f` returns or unwinds, as `registration` drops.
#[cfg_attr(not(feature = "track"), allow(dead_code))]
pub(crate) fn run_registered<R>(registration: Registration, f: impl FnOnce() -> R) -> R {
    registration.record().state.run_begin();
    let _current = enter(registration.record().clone());
    f()
}

/// Puts back the previous current record on drop, even when unwinding.
pub(crate) struct Restore(Option<Arc<TaskRecord>>);

impl Drop for Restore {
    fn drop(&mut self) {
        drop(swap_current(self.0.take()));
    }
}

/// Moves a record into the context for one poll and hands it back after.
pub(crate) struct Lend<'a> {
    slot: &'a mut crate::registry::record::Registration,
    previous: Option<Arc<TaskRecord>>,
}

impl<'a> Lend<'a> {
    #[inline]
    pub(crate) fn new(slot: &'a mut crate::registry::record::Registration) -> Self {
        let previous = swap_current(slot.lend());
        Lend { slot, previous }
    }
}

impl Drop for Lend<'_> {
    #[inline]
    fn drop(&mut self) {
        let record = swap_current(self.previous.take());
        self.slot.restore(record);
    }
}

/// Enters a fresh scope on this thread until the guard drops.
pub(crate) fn enter_scope(name: ScopeName) -> ExplicitScope {
    let scope = Registry::global().new_scope(name);
    let previous = swap_explicit(Some(scope));
    ExplicitScope { previous }
}

/// Leaves an explicit scope on drop, restoring the one it replaced.
pub(crate) struct ExplicitScope {
    previous: Option<Arc<Scope>>,
}

impl Drop for ExplicitScope {
    fn drop(&mut self) {
        // The scope being left drops here, outside the thread-local.
        if let Some(left) = swap_explicit(self.previous.take()) {
            Registry::global().forget(&left);
        }
    }
}

#[cfg(all(test, feature = "track", not(loom)))]
mod tests {
    use super::{current_record, enter, enter_scope, owner, register, Lend};
    use crate::registry::kind::Kind;
    use crate::registry::loom_shim::Arc;
    use crate::registry::scope::{Scope, ScopeName};
    use crate::registry::Registry;
    use std::panic::Location;

    #[test]
    fn guards_put_back_what_they_took_and_leak_nothing() {
        let mut outer = register(Kind::Thread, None, Location::caller());
        let mut inner = register(Kind::Task, None, Location::caller());
        let outer_weak = Arc::downgrade(outer.record());
        let inner_record = inner.record().clone();
        assert!(current_record().is_none());
        {
            let _entered = enter(outer.record().clone());
            let seen = current_record().expect("entered");
            assert!(Arc::ptr_eq(&seen, outer.record()));
            drop(seen);
            {
                let _lent = Lend::new(&mut inner);
                let seen = current_record().expect("lent");
                assert!(Arc::ptr_eq(&seen, &inner_record));
            }
            let seen = current_record().expect("the outer one is back");
            assert!(Arc::ptr_eq(&seen, outer.record()));
        }
        assert!(current_record().is_none());
        assert!(inner.get().is_some(), "the lent record came back");
        drop(inner);
        // Only the test's own reference is left: nothing stayed behind in
        // the thread-local.
        assert_eq!(Arc::strong_count(&inner_record), 1);
        outer.end();
        assert!(outer_weak.upgrade().is_none(), "the record was freed");
    }

    /// The scope `owner` gives a spawn made here, and whether the registry
    /// lists it.
    fn entered() -> (Arc<Scope>, impl Fn(&Arc<Scope>) -> bool) {
        let listed = |scope: &Arc<Scope>| {
            Registry::global()
                .scopes()
                .iter()
                .any(|s| Arc::ptr_eq(s, scope))
        };
        (owner().scope().clone(), listed)
    }

    #[test]
    fn a_scope_left_with_nothing_in_it_is_unlisted_and_freed() {
        let guard = enter_scope(ScopeName::Test(Arc::from("unlisted")));
        let (scope, listed) = entered();
        assert!(listed(&scope));
        let weak = Arc::downgrade(&scope);
        drop(scope);
        drop(guard);
        assert!(weak.upgrade().is_none(), "the scope was freed");
        assert_eq!(weak.weak_count(), 0, "and the registry let go of it");
    }

    #[test]
    fn a_scope_left_with_a_live_task_stays_listed() {
        let guard = enter_scope(ScopeName::Test(Arc::from("still-listed")));
        let survivor = register(Kind::Task, None, Location::caller());
        let (scope, listed) = entered();
        drop(guard);
        assert!(listed(&scope), "a view of the process still finds its task");
        drop(survivor);
        assert!(
            listed(&scope),
            "unlisted only by the guard, or later by a prune"
        );
    }
}
