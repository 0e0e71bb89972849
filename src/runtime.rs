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

use std::collections::HashSet;
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::Instant;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::kind::Kind;
use crate::registry::Registry;
#[cfg(tokio_unstable)]
use crate::sync::Arc;
use crate::sync::{lock, Mutex, Ordering};

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

#[cfg(tokio_unstable)]
fn build_hooked(builder: &mut Builder, hooks: Hooks) -> io::Result<Runtime> {
    let slot = Arc::new(OnceLock::new());
    crate::hooks::install(builder, hooks, slot.clone());
    let runtime = builder.build()?;
    let id = register(runtime.handle());
    let _ = slot.set(id);
    Ok(runtime)
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
pub fn build_with(builder: &mut Builder, hooks: Hooks) -> io::Result<Runtime> {
    build_hooked(builder, hooks)
}

#[cfg(tokio_unstable)]
pub use crate::hooks::Hooks;

/// The ids of the runtimes built by [`build`]. Entries are never removed:
/// tokio takes runtime ids from a process-wide counter, so a dropped
/// runtime's id is not handed out again, and an entry is a few bytes.
fn instrumented() -> &'static Mutex<HashSet<tokio::runtime::Id>> {
    static IDS: OnceLock<Mutex<HashSet<tokio::runtime::Id>>> = OnceLock::new();
    IDS.get_or_init(Mutex::default)
}

/// Set once any runtime is instrumented: until then, a task's first poll
/// doesn't look up which runtime it runs on.
static ANY: AtomicBool = AtomicBool::new(false);

fn register(handle: &Handle) -> tokio::runtime::Id {
    let id = handle.id();
    lock(instrumented()).insert(id);
    ANY.store(true, Ordering::SeqCst);
    id
}

/// Whether some runtime was built by [`build`] in this process.
pub(crate) fn any_instrumented() -> bool {
    ANY.load(Ordering::Relaxed)
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

/// The runtime a check counts tasks on, and the task that runs the check
/// (alive, and not a leak).
pub(crate) struct Probe {
    handle: Handle,
    caller: Option<tokio::task::Id>,
}

impl Probe {
    /// A probe of this thread's runtime, if it is instrumented.
    pub(crate) fn current() -> Option<Probe> {
        current_instrumented().map(|handle| Probe {
            handle,
            caller: tokio::task::try_id(),
        })
    }

    /// How many tasks alive on the runtime leakcheck knows nothing about.
    ///
    /// Known are the tokio tasks that run a live leakcheck record (tracked
    /// futures and, under `tokio_unstable`, the hooks' records) and the
    /// caller's own task. Blocking tasks, the check's own included, are not
    /// in tokio's count: `spawn_blocking` makes tasks that the runtime's
    /// owned-task list never holds.
    fn untracked_now(&self) -> usize {
        let alive = self.handle.metrics().num_alive_tasks();
        if alive == 0 {
            return 0;
        }
        let runtime = self.handle.id();
        let mut known: HashSet<tokio::task::Id> = Registry::global()
            .all_records()
            .iter()
            // A `LocalSet`'s tasks are not the runtime's.
            .filter(|r| r.kind().is_async() && r.kind() != Kind::Local)
            .filter(|r| r.runtime() == Some(runtime))
            .filter_map(|r| r.tokio_id())
            .collect();
        known.extend(self.caller);
        alive.saturating_sub(known.len())
    }

    /// The untracked count once it is zero, or at `deadline`, whichever
    /// comes first. tokio's count is not strongly consistent on the
    /// multi-thread runtime (it can lag a task that just ended), and stable
    /// tokio says nothing when a task ends, so it is re-read
    /// ([`crate::settle::reread`]) rather than concluded from one read.
    pub(crate) fn settle(&self, deadline: Option<Instant>) -> usize {
        crate::settle::reread(deadline, || self.untracked_now(), |n| *n == 0)
    }
}
