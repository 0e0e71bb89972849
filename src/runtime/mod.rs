//! Runtimes that leakcheck knows about: built by `#[leak_check]` for an
//! async test, or by a user through [`build`].
//!
//! A check that runs on such a runtime also counts the tasks on it that were
//! not spawned through leakcheck (a plain `tokio::spawn`, often inside a
//! library): the runtime belongs to one test, so every task still alive on it
//! after the settle period is that test's leak. A runtime shared by many
//! tests (one `static` runtime, say) must not be built this way, since its
//! count would include every other test's tasks.
//!
//! # Which runtime belongs to a test
//!
//! A check counts the tasks that leakcheck didn't spawn on one runtime at
//! most, the one it runs on, and only when that runtime is the test's:
//!
//! 1. **leakcheck built it**: `#[leak_check]` builds the runtime of every
//!    async test it takes over this way, and [`build`] / [`build_local`]
//!    do it for a runtime a test builds itself;
//! 2. **or the check runs directly in the runtime's `block_on` body on the
//!    test's own thread** (not inside a task), the shape of every plain
//!    `#[tokio::test]` body and of `rt.block_on(...)` in a `#[test]`: that
//!    runtime is taken to be the test's, until a check from a second test
//!    has run on it.
//!
//! Never counted: a runtime that checks from two different tests have run
//! on, or one passed to [`mark_shared`]; any runtime when the check runs
//! inside a task (a worker thread says nothing about which test is
//! running), on a thread that is not a test's, or in the whole-binary check.
//!
//! A `static` runtime shared by many tests is the case rule 2 can get
//! wrong: its first test to check counts what the runtime keeps for the
//! whole process (a task spawned when it was built, say), and until a
//! second test has checked on it, other tests' tasks too. Call
//! [`mark_shared`] where such a runtime is built; the report of a count on
//! a runtime taken by rule 2 says so.
//!
//! # What the check sees
//!
//! - **On stable Rust**: how many tasks spawned outside leakcheck survived,
//!   from tokio's [`RuntimeMetrics::num_alive_tasks`]. The report says how
//!   many, not where they were spawned. Blocking tasks (`spawn_blocking`)
//!   are not in that count, nor are tasks on a `LocalSet`.
//! - **With `RUSTFLAGS="--cfg tokio_unstable"`**: [`build`] also installs
//!   tokio's task hooks, so every task on the runtime is registered with its
//!   spawn site (as tokio's `TaskMeta::spawned_at` gives it), attributed to
//!   the test that spawned it, and reported like a tracked task, as
//!   [`Kind::Untracked`]. Tasks on a `LocalSet` are
//!   still not covered: tokio's hooks don't see them. The README's "See
//!   where a plain tokio::spawn came from" gives a `cargo leakcheck` alias
//!   that runs tests this way (with await traces, too) in a target
//!   directory of their own, and a failing report prints that command for
//!   its test.
//!
//! # Task hooks are replaced, not added
//!
//! tokio's `Builder` keeps one callback per hook and has no getter for it,
//! so under `tokio_unstable` [`build`] replaces any `on_task_spawn`,
//! `on_task_terminate`, `on_before_task_poll` or `on_after_task_poll`
//! already set on the builder. To keep yours, hand them to
//! `build_with(builder, Hooks::new().on_task_spawn(...))` instead: leakcheck
//! calls them after its own. Other builder settings (thread names, thread
//! start/stop and park callbacks, ...) are left alone.
//!
//! [`RuntimeMetrics::num_alive_tasks`]: tokio::runtime::RuntimeMetrics::num_alive_tasks

#[cfg(tokio_unstable)]
pub(crate) mod hooks;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, LocalOptions, LocalRuntime, Runtime};

use crate::registry::kind::Kind;
use crate::registry::loom_shim::Arc;
use crate::registry::loom_shim::{lock, Mutex};
use crate::registry::record::TaskRecord;
use crate::registry::scope::{Scope, ScopeName};
use crate::registry::tokio_ids;
use crate::registry::tokio_ids::IdHash;
use crate::registry::Registry;

/// Builds `builder`'s runtime as one that leakcheck checks whole: a check
/// that runs on it (inside its `block_on` or one of its tasks) also fails
/// when tasks spawned outside leakcheck outlive the settle period.
///
/// `#[leak_check]` builds the runtime of every async test this way; call it
/// yourself when a test builds its own runtime. Use it only for a runtime
/// that belongs to one test (see the [module docs](self)).
///
/// # Errors
///
/// Whatever [`Builder::build`] returns.
///
/// ```
/// use std::time::Duration;
///
/// let runtime = leakcheck::runtime::build(
///     tokio::runtime::Builder::new_current_thread().enable_all(),
/// )
/// .unwrap();
/// runtime.block_on(async {
///     // A plain tokio::spawn, as a library might do, that never ends.
///     let stuck = tokio::spawn(std::future::pending::<()>());
///     let options = leakcheck::Options::new().settle(Duration::from_millis(50));
///     let report = options.find_async().await.unwrap_err();
///     assert_eq!(report.untracked_tasks(), 1);
///
///     stuck.abort(); // the fix: stop it
///     let _ = stuck.await;
///     options.verify_none_async().await;
/// });
/// ```
pub fn build(builder: &mut Builder) -> io::Result<Runtime> {
    // Without the `track` feature nothing is registered, hooks included:
    // the runtime is tokio's, untouched.
    #[cfg(all(tokio_unstable, feature = "track"))]
    {
        build_hooked(builder, Hooks::new())
    }
    #[cfg(not(all(tokio_unstable, feature = "track")))]
    {
        let runtime = builder.build()?;
        if cfg!(feature = "track") {
            register(runtime.handle());
        }
        Ok(runtime)
    }
}

/// Like [`build`], for tokio's `LocalRuntime` (what
/// `#[tokio::test(flavor = "local")]` builds): a current-thread runtime on
/// which `tokio::task::spawn_local` works without a `LocalSet`.
///
/// # Errors
///
/// Whatever [`Builder::build_local`] returns.
///
/// ```
/// use std::time::Duration;
///
/// let runtime =
///     leakcheck::runtime::build_local(tokio::runtime::Builder::new_current_thread().enable_all())
///         .unwrap();
/// runtime.block_on(async {
///     let stuck = tokio::task::spawn_local(std::future::pending::<()>());
///     let options = leakcheck::Options::new().settle(Duration::from_millis(50));
///     assert_eq!(options.find_async().await.unwrap_err().untracked_tasks(), 1);
///     stuck.abort();
///     let _ = stuck.await;
///     options.verify_none_async().await;
/// });
/// ```
pub fn build_local(builder: &mut Builder) -> io::Result<LocalRuntime> {
    #[cfg(all(tokio_unstable, feature = "track"))]
    {
        build_hooked_with(builder, Hooks::new(), |b| {
            b.build_local(LocalOptions::default())
        })
    }
    #[cfg(not(all(tokio_unstable, feature = "track")))]
    {
        let runtime = builder.build_local(LocalOptions::default())?;
        if cfg!(feature = "track") {
            register(runtime.handle());
        }
        Ok(runtime)
    }
}

#[cfg(tokio_unstable)]
fn build_hooked(builder: &mut Builder, hooks: Hooks) -> io::Result<Runtime> {
    build_hooked_with(builder, hooks, Builder::build)
}

/// Installs leakcheck's hooks on `builder`, builds it with `build`, and
/// registers the runtime as one test's.
#[cfg(tokio_unstable)]
fn build_hooked_with<R: HasHandle>(
    builder: &mut Builder,
    hooks: Hooks,
    build: impl FnOnce(&mut Builder) -> io::Result<R>,
) -> io::Result<R> {
    let slot = Arc::new(OnceLock::new());
    crate::runtime::hooks::install(builder, hooks, slot.clone());
    let runtime = build(builder)?;
    let id = register(runtime.handle());
    let _ = slot.set(id);
    Ok(runtime)
}

/// Both kinds of runtime leakcheck builds.
#[cfg(tokio_unstable)]
trait HasHandle {
    fn handle(&self) -> &Handle;
}

#[cfg(tokio_unstable)]
impl HasHandle for Runtime {
    fn handle(&self) -> &Handle {
        Runtime::handle(self)
    }
}

#[cfg(tokio_unstable)]
impl HasHandle for LocalRuntime {
    fn handle(&self) -> &Handle {
        LocalRuntime::handle(self)
    }
}

/// Like [`build`], and keeps the task hooks you would have set on the
/// builder: leakcheck's run first, then yours. Only with
/// `--cfg tokio_unstable`, where tokio has task hooks.
///
/// # Errors
///
/// Whatever [`Builder::build`] returns.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let spawned = Arc::new(AtomicUsize::new(0));
/// let counter = spawned.clone();
/// let hooks = leakcheck::runtime::Hooks::new().on_task_spawn(move |_meta| {
///     counter.fetch_add(1, Ordering::Relaxed);
/// });
/// let runtime =
///     leakcheck::runtime::build_with(&mut tokio::runtime::Builder::new_current_thread(), hooks)
///         .unwrap();
/// runtime.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// assert_eq!(spawned.load(Ordering::Relaxed), 1);
/// ```
#[cfg(tokio_unstable)]
#[cfg_attr(docsrs, doc(cfg(tokio_unstable)))]
pub fn build_with(builder: &mut Builder, hooks: Hooks) -> io::Result<Runtime> {
    // Without the `track` feature nothing is registered: the user's hooks
    // are set, and the runtime is otherwise tokio's.
    if cfg!(feature = "track") {
        build_hooked(builder, hooks)
    } else {
        crate::runtime::hooks::install_users_only(builder, hooks);
        builder.build()
    }
}

#[cfg(tokio_unstable)]
#[cfg_attr(docsrs, doc(cfg(tokio_unstable)))]
pub use crate::runtime::hooks::Hooks;

/// The ids of the runtimes built by [`build`]. Entries are never removed:
/// tokio takes runtime ids from a process-wide counter, so a dropped
/// runtime's id is not handed out again, and an entry is a few bytes.
fn instrumented() -> &'static Mutex<HashSet<tokio::runtime::Id, IdHash>> {
    static IDS: OnceLock<Mutex<HashSet<tokio::runtime::Id, IdHash>>> = OnceLock::new();
    IDS.get_or_init(Mutex::default)
}

fn register(handle: &Handle) -> tokio::runtime::Id {
    let id = handle.id();
    lock(instrumented()).insert(id);
    tokio_ids::runtimes_want_ids();
    id
}

/// Whether some runtime was built by [`build`] in this process.
pub(crate) fn any_instrumented() -> bool {
    tokio_ids::runtime_wants_ids()
}

/// The runtime this thread is in, if [`build`] built it.
pub(crate) fn current_instrumented() -> Option<Handle> {
    if !any_instrumented() {
        return None;
    }
    let handle = Handle::try_current().ok()?;
    lock(instrumented())
        .contains(&handle.id())
        .then_some(handle)
}

/// Marks a runtime as shared by many tests (a `static` one, say): no
/// check counts its tasks, whichever thread the check runs on.
///
/// A check already leaves a runtime alone once it has seen checks from two
/// tests on it (see [the rule](self#which-runtime-belongs-to-a-test)); this
/// says so up front, for a shared runtime whose first test would otherwise
/// count the tasks that the runtime keeps for the whole process.
///
/// ```
/// use std::sync::LazyLock;
/// use std::time::Duration;
///
/// static SHARED: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
///     let runtime = tokio::runtime::Runtime::new().unwrap();
///     leakcheck::runtime::mark_shared(runtime.handle());
///     // Meant to live as long as the process.
///     runtime.spawn(std::future::pending::<()>());
///     runtime
/// });
///
/// SHARED.block_on(async {
///     let options = leakcheck::Options::new().settle(Duration::from_millis(50));
///     options.verify_none_async().await; // the process-long task is not counted
/// });
/// ```
pub fn mark_shared(handle: &Handle) {
    lock(adopted()).insert(handle.id(), User::Shared);
}

/// Who checks on a runtime that leakcheck did not build: the one test that
/// has so far, or many.
#[derive(Clone, PartialEq, Eq)]
enum User {
    Test(Arc<str>),
    Shared,
}

/// The runtimes, not built by leakcheck, that checks ran on.
fn adopted() -> &'static Mutex<HashMap<tokio::runtime::Id, User, IdHash>> {
    static USERS: OnceLock<Mutex<HashMap<tokio::runtime::Id, User, IdHash>>> = OnceLock::new();
    USERS.get_or_init(Mutex::default)
}

/// Whether a check by `test`, running in the `block_on` body of the runtime
/// `handle`, may count that runtime's tasks as the test's: yes until a
/// check from a second test has run on it, or it was marked shared.
fn adopt(handle: &Handle, test: &Arc<str>) -> bool {
    let mut users = lock(adopted());
    let user = users
        .entry(handle.id())
        .or_insert_with(|| User::Test(test.clone()));
    match user {
        User::Test(first) if first.as_ref() == test.as_ref() => true,
        User::Test(_) => {
            *user = User::Shared;
            false
        }
        User::Shared => false,
    }
}

/// The runtime a check counts tasks on, and the task that runs the check
/// (alive, and not a leak).
pub(crate) struct Probe {
    handle: Handle,
    caller: Option<tokio::task::Id>,
    /// True when leakcheck didn't build the runtime but takes it to be the
    /// test's by [the rule](self#which-runtime-belongs-to-a-test).
    pub(crate) adopted: bool,
    /// On an adopted runtime, the test's scope, whose tracked tasks may not
    /// know their runtime.
    scope: Option<Arc<Scope>>,
}

impl Probe {
    /// A probe of this thread's runtime, when it belongs to the test whose
    /// scope `scope` is (see the module docs). `in_task` says whether the
    /// check runs inside a task rather than a `block_on` body.
    pub(crate) fn current(scope: &Arc<Scope>, in_task: bool) -> Option<Probe> {
        let caller = tokio::task::try_id();
        if let Some(handle) = current_instrumented() {
            if lock(adopted()).get(&handle.id()) == Some(&User::Shared) {
                return None;
            }
            return Some(Probe {
                handle,
                caller,
                adopted: false,
                scope: None,
            });
        }
        let ScopeName::Test(test) = scope.name() else {
            return None;
        };
        if in_task || caller.is_some() {
            return None;
        }
        let handle = Handle::try_current().ok()?;
        if !adopt(&handle, test) {
            return None;
        }
        // From now on tracked tasks note their runtime on first poll.
        tokio_ids::runtimes_want_ids();
        Some(Probe {
            handle,
            caller,
            adopted: true,
            scope: Some(scope.clone()),
        })
    }

    /// How many tasks alive on the runtime leakcheck knows nothing about.
    ///
    /// Known are the tokio tasks that run a live leakcheck record (tracked
    /// futures and, under `tokio_unstable`, the hooks' records) and the
    /// caller's own task. Blocking tasks, the check's own included, are not
    /// in tokio's count: `spawn_blocking` makes tasks that the runtime's
    /// owned-task list never holds.
    pub(crate) fn untracked_now(&self) -> usize {
        let alive = self.handle.metrics().num_alive_tasks();
        if alive == 0 {
            return 0;
        }
        let runtime = self.handle.id();
        // A `LocalSet`'s tasks are not the runtime's.
        let on_a_runtime = |r: &Arc<TaskRecord>| r.kind().is_async() && r.kind() != Kind::Local;
        let mut known: HashSet<tokio::task::Id> = Registry::global()
            .all_records()
            .iter()
            .filter(|r| on_a_runtime(r))
            .filter(|r| r.runtime() == Some(runtime))
            .filter_map(|r| r.tokio_id())
            .collect();
        known.extend(self.caller);
        // Tracked tasks learn their runtime on their first poll, and only
        // once some runtime was instrumented: on an adopted runtime, the
        // test's own tasks may not know theirs. They are taken to be on this
        // one, which can only undercount.
        let unplaced = self.scope.as_ref().map_or(0, |scope| {
            scope
                .snapshot(|r| on_a_runtime(r) && r.runtime().is_none())
                .len()
        });
        alive.saturating_sub(known.len() + unplaced)
    }
}

#[cfg(all(test, tokio_unstable, not(feature = "track")))]
mod without_tracking {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::registry::Registry;

    #[test]
    fn build_with_keeps_the_users_hooks_and_registers_nothing() {
        let spawned = Arc::new(AtomicUsize::new(0));
        let counter = spawned.clone();
        let hooks = super::Hooks::new().on_task_spawn(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let runtime =
            super::build_with(&mut tokio::runtime::Builder::new_current_thread(), hooks).unwrap();
        let stuck = runtime.spawn(std::future::pending::<()>());
        runtime.block_on(tokio::task::yield_now());
        assert_eq!(spawned.load(Ordering::Relaxed), 1, "the user's hook ran");
        assert!(
            Registry::global().all_records().is_empty(),
            "nothing registered"
        );
        stuck.abort();
    }
}
