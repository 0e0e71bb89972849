//! `Registry`: every scope in the process, so that process-wide views
//! (`Options::ignore_current`, the whole-binary check) can find them all.
//!
//! The registry is off the spawn path: it is touched once per scope (per
//! test), never per task.

pub(crate) mod clock;
pub(crate) mod kind;
pub(crate) mod loom_shim;
pub(crate) mod os_thread;
pub(crate) mod owner;
pub(crate) mod record;
pub(crate) mod scope;
mod shelf;
pub(crate) mod task_state;
pub(crate) mod tokio_ids;
pub(crate) mod waker;

use std::sync::OnceLock;

use crate::registry::loom_shim::{lock, Arc, Mutex, Weak};
use crate::registry::record::TaskRecord;
use crate::registry::scope::{Scope, ScopeName};

pub(crate) struct Registry {
    scopes: Mutex<Vec<Weak<Scope>>>,
    /// The name of every test scope ever made, with the home thread of the
    /// first scope of that name, kept after the scope is gone: a thread a
    /// test started inherits its kernel name from the test's thread (see
    /// `crate::check::stray_threads`). One entry per name, so per test.
    tests: Mutex<Vec<(Arc<str>, u32)>>,
}

impl Registry {
    pub(crate) fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry {
            scopes: Mutex::new(Vec::new()),
            tests: Mutex::new(Vec::new()),
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
            let mut tests = lock(&self.tests);
            if !tests.iter().any(|(known, _)| known == name) {
                tests.push((name.clone(), scope.home_thread()));
            }
        }
    }

    /// Every test scope name so far with its first home thread, whether or
    /// not the scope is still alive.
    pub(crate) fn tests(&self) -> Vec<(Arc<str>, u32)> {
        lock(&self.tests).clone()
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
