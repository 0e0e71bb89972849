//! The registry core: what leakcheck knows about each live tracked task and
//! thread, and the only code that changes it. Spawners, the runtime hooks,
//! checks, reports and the profile use it; it uses none of them.
//!
//! # A record's lifecycle
//!
//! 1. **Register.** A spawner asks [`owner::owner`] who owns a spawn made
//!    now on this thread (the task being polled, an explicit test scope, or
//!    the thread's own scope), and [`Registration::new`] builds the
//!    [`TaskRecord`]: an id from a per-thread block, its kind, name, spawn
//!    site, birth [`Stamp`](clock::Stamp), parent record and
//!    [`Scope`]. The record is allocated (or one of this thread's spare
//!    records reused) before any lock is taken; then it goes into the
//!    scope's shard of the spawning thread, under that shard's lock.
//! 2. **Lend, per poll.** For each poll of a tracked future, [`owner::Lend`]
//!    moves the record into this thread's owner slot, so a spawn inside the
//!    poll finds its parent. The record's [`TaskState`](task_state::TaskState)
//!    notes the poll's start and end in one atomic word, and the future
//!    gets the counting [`waker`], whose live clones the same word counts;
//!    a wake forwards to the runtime's waker, which the task keeps in a
//!    slot only its poll writes ([`runtime_waker`]).
//!    A blocking closure or a thread body is the owner for its whole run
//!    ([`owner::run_registered`]).
//! 3. **End.** However the task ends (returns, panics, is aborted, or is
//!    dropped with its runtime), its [`Registration`] ends: the record
//!    leaves its shard, and a check waiting on the scope is woken.
//! 4. **Recycle.** An ended record that nothing else holds (no waker clone,
//!    no child's parent link) is emptied and kept, up to 256 per thread, for
//!    that thread's next spawn, so a steady spawn rate doesn't reach the
//!    allocator; a thread keeps none until it has ended a few (a test's
//!    thread ends one or two, then exits). Its [`tokio_ids`] entry goes
//!    with it. A dropped scope's shards are kept too, for the process's
//!    next scopes.
//! 5. **Settle wake-up.** A check waits on its scope's condvar
//!    ([`Scope::settle`]), never on a polling timer: the scope hears of each
//!    end while a check waits, and of each poll after which its task can
//!    never finish (`Scope::nudge`), so a check whose survivors are all
//!    stuck fails at once instead of waiting out the settle period.
//!
//! # Reading it
//!
//! Checks, reports and the profile read through a few calls:
//! [`Registry::scopes`] and [`Registry::process_scope`], a scope's
//! [`Scope::live`] count, [`Scope::snapshot`], [`Scope::visit_in_batches`]
//! and [`Scope::settle`], and a record's accessors, chiefly
//! [`TaskRecord::condition`]. A record's fields are private to this folder.
//!
//! # Its one cycle
//!
//! Dependencies inside the core run one way but for one pair, which its
//! data structure needs: a record points at its scope (an ending record
//! finds its shard through it), and a scope's shards ([`shelf`]) hold
//! records. The rest: [`owner`] uses `record` and `scope`; `record` uses
//! `task_state`, `clock`, `tokio_ids` and `kind`; `task_state` uses
//! `runtime_waker` and `slot` (a record's place in its scope's shards,
//! which `scope` reads too); [`waker`] uses `record`;
//! this module's [`Registry`] lists scopes. [`loom_shim`] is how a `--cfg
//! loom` build swaps in model-checked locks and atomics.

// Without the `track` feature nothing registers: the spawners are tokio's
// and std's own, so the core's writing half (registration, the per-poll
// lend, the counting waker) is compiled, and type-checked with the rest,
// but never called. The reading half still serves checks and reports.
#![cfg_attr(not(feature = "track"), allow(dead_code))]

pub(crate) mod clock;
pub(crate) mod kind;
pub(crate) mod loom_shim;
pub(crate) mod os_thread;
pub(crate) mod owner;
pub(crate) mod record;
pub(crate) mod runtime_waker;
pub(crate) mod scope;
mod shelf;
mod slot;
pub(crate) mod task_state;
pub(crate) mod tokio_ids;
pub(crate) mod waker;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::registry::loom_shim::{lock, Arc, Mutex, Weak};
use crate::registry::record::TaskRecord;
use crate::registry::scope::{Scope, ScopeName};
use crate::registry::tokio_ids::IdHash;

#[cfg(doc)]
use crate::registry::record::Registration;

/// Every scope in the process, so that process-wide views
/// (`Options::ignore_current`, the whole-binary check, the profile) can find
/// them all. It is off the spawn path: touched when a scope is made and when
/// a test leaves it (twice per test), never per task.
pub(crate) struct Registry {
    scopes: Mutex<Vec<Weak<Scope>>>,
    /// The name of every test scope ever made, with the home thread of the
    /// first scope of that name, kept after the scope is gone: a thread a
    /// test started inherits its kernel name from the test's thread (see
    /// `crate::check::stray_threads`). One entry per name, so per test.
    /// Keyed by name: every test's scope looks its name up here.
    tests: Mutex<HashMap<Arc<str>, u32, IdHash>>,
}

impl Registry {
    pub(crate) fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry {
            scopes: Mutex::new(Vec::new()),
            tests: Mutex::new(HashMap::default()),
        })
    }

    /// The scope of spawns that belong to no test: from inside tasks that
    /// leakcheck did not spawn, and from thread-local destructors.
    pub(super) fn process_scope() -> &'static Arc<Scope> {
        static PROCESS: OnceLock<Arc<Scope>> = OnceLock::new();
        PROCESS.get_or_init(|| Registry::global().new_scope(ScopeName::Process))
    }

    /// A new scope, listed here.
    pub(super) fn new_scope(&self, name: ScopeName) -> Arc<Scope> {
        let scope = Scope::new(name);
        self.add(&scope);
        scope
    }

    /// Unlists `scope` if the caller holds its last reference: no record
    /// refers to it, so no view can miss anything. Its allocation is then
    /// freed as the caller drops it, on the caller's thread, rather than
    /// when a later `add` prunes the list, on whichever thread that is.
    pub(super) fn forget(&self, scope: &Arc<Scope>) {
        let mut scopes = lock(&self.scopes);
        if Arc::strong_count(scope) == 1 {
            let ptr = Arc::as_ptr(scope);
            if let Some(at) = scopes.iter().position(|s| s.as_ptr() == ptr) {
                scopes.swap_remove(at);
            }
        }
    }

    fn add(&self, scope: &Arc<Scope>) {
        let mut scopes = lock(&self.scopes);
        if scopes.len() == scopes.capacity() {
            // Prune before growing, so the list tracks live scopes, not
            // every test that ever ran.
            scopes.retain(|s| s.strong_count() > 0);
        }
        scopes.push(Arc::downgrade(scope));
        drop(scopes);
        if let ScopeName::Test(name) = scope.name() {
            // A lookup, not a scan: a suite of thousands of tests made each
            // new test scope compare its name with every earlier one.
            let mut tests = lock(&self.tests);
            if !tests.contains_key(name) {
                tests.insert(name.clone(), scope.home_thread());
            }
        }
    }

    /// Every test scope name so far with its first home thread, whether or
    /// not the scope is still alive.
    pub(crate) fn tests(&self) -> Vec<(Arc<str>, u32)> {
        lock(&self.tests)
            .iter()
            .map(|(name, &home)| (name.clone(), home))
            .collect()
    }

    /// Every scope that is still alive.
    pub(crate) fn scopes(&self) -> Vec<Arc<Scope>> {
        lock(&self.scopes)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Every live record in the process.
    pub(crate) fn all_records(&self) -> Vec<Arc<TaskRecord>> {
        self.scopes()
            .iter()
            .flat_map(|scope| scope.snapshot(|_| true))
            .collect()
    }
}
