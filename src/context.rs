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

use crate::record::TaskRecord;
use crate::registry::Registry;
use crate::scope::{Scope, ScopeName};
use crate::sync::Arc;

thread_local! {
    /// The tracked task, blocking closure or thread running on this thread.
    static CURRENT: Cell<Option<Arc<TaskRecord>>> = const { Cell::new(None) };
    /// A scope entered explicitly on this thread (by `#[leak_check]`).
    static EXPLICIT: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
    /// This thread's own scope, made on first use.
    static THREAD_SCOPE: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

/// Who owns a spawn made right now on this thread.
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

/// The tracked record running on this thread, if any.
pub(crate) fn current_record() -> Option<Arc<TaskRecord>> {
    CURRENT
        .try_with(|cell| {
            let current = cell.take();
            let copy = current.clone();
            cell.set(current);
            copy
        })
        .ok()
        .flatten()
}

pub(crate) fn owner() -> Owner {
    if let Some(record) = current_record() {
        return Owner::Task(record);
    }
    if tokio::task::try_id().is_some() {
        return Owner::Scope(Registry::process_scope().clone());
    }
    if let Ok(Some(scope)) = EXPLICIT.try_with(|e| e.borrow().clone()) {
        return Owner::Scope(scope);
    }
    THREAD_SCOPE
        .try_with(|slot| {
            slot.borrow_mut()
                .get_or_insert_with(|| Scope::new(thread_scope_name()))
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
    Restore(CURRENT.try_with(|c| c.replace(Some(record))).ok().flatten())
}

/// Puts back the previous current record on drop, even when unwinding.
pub(crate) struct Restore(Option<Arc<TaskRecord>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = CURRENT.try_with(|c| c.set(previous));
    }
}

/// Moves a record into the context for one poll and hands it back after.
///
/// If the thread-local is already destroyed (a future polled from a
/// thread-local destructor), the record simply stays where it is.
pub(crate) struct Lend<'a> {
    slot: &'a mut crate::record::Registration,
    previous: Option<Arc<TaskRecord>>,
    lent: bool,
}

impl<'a> Lend<'a> {
    pub(crate) fn new(slot: &'a mut crate::record::Registration) -> Self {
        let mut record = slot.lend();
        let swapped = CURRENT.try_with(|c| c.replace(record.take()));
        // `record` is still here only if the thread-local is gone.
        let lent = swapped.is_ok();
        if !lent {
            slot.restore(record);
        }
        Lend {
            slot,
            previous: swapped.ok().flatten(),
            lent,
        }
    }
}

impl Drop for Lend<'_> {
    fn drop(&mut self) {
        if self.lent {
            let previous = self.previous.take();
            let record = CURRENT.with(|c| c.replace(previous));
            self.slot.restore(record);
        }
    }
}

/// Enters a fresh scope on this thread until the guard drops.
pub(crate) fn enter_scope(name: ScopeName) -> ExplicitScope {
    let scope = Scope::new(name);
    let previous = EXPLICIT.with(|e| e.replace(Some(scope)));
    ExplicitScope { previous }
}

/// Leaves an explicit scope on drop, restoring the one it replaced.
pub(crate) struct ExplicitScope {
    previous: Option<Arc<Scope>>,
}

impl Drop for ExplicitScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = EXPLICIT.try_with(|e| *e.borrow_mut() = previous);
    }
}
