//! The check itself: which scope to look at, waiting for it to settle, and
//! turning the survivors into a [`Report`]. The blocking and async entry
//! points share all of it; the async one only moves the wait onto tokio's
//! blocking pool. The whole-binary check ([`check_test_binary`]) settles
//! every scope the same way, one after another.
//!
//! - [`Target::current`] finds the scope the same way a spawn made here
//!   would, and lists the calling task and its ancestors, which the check
//!   skips (a check inside a task can't wait for itself).
//! - The blocking form, called on a thread that drives a current-thread
//!   runtime, panics at once naming the async form, instead of stalling the
//!   tasks it waits for.
//! - The whole-binary check holds every scope to one shared deadline: an
//!   empty scope costs a lock of each of its shards, and once the deadline
//!   has passed the rest are read once. It then lists the scopes again, in
//!   case a survivor made new ones while it waited.

use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::registry::clock::Stamp;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::check::options::Options;
use crate::check::stray_threads::runs_alone;
use crate::registry::kind::Kind;
use crate::registry::loom_shim::Arc;
use crate::registry::owner;
use crate::registry::record::{Owner, TaskRecord};
use crate::registry::scope::{Listing, Scope};
use crate::registry::Registry;
use crate::report::{Checked, Leak, Report};
use crate::runtime::Probe;

/// The terminal methods of [`Options`]: each runs a check.
impl Options {
    /// Waits for this scope's tasks and threads to end and panics with the
    /// report if some outlive the settle period.
    ///
    /// Blocks the calling thread. In async code use
    /// [`verify_none_async`](Options::verify_none_async).
    ///
    /// # Panics
    ///
    /// With the [`Report`] when something leaked; at once, with a message
    /// naming the async form, when called on a thread that drives a
    /// current-thread tokio runtime (blocking there would stall the very
    /// tasks it waits for). leakcheck tells that from the runtime context,
    /// so a thread that only entered such a runtime with `Handle::enter`
    /// counts as driving it too; tracked blocking tasks and threads don't.
    ///
    /// ```
    /// let worker = leakcheck::thread::spawn(|| ());
    /// worker.join().unwrap();
    /// leakcheck::Options::new().verify_none();
    /// ```
    #[track_caller]
    pub fn verify_none(&self) {
        if let Err(report) = self.find_named("verify_none", "verify_none_async") {
            panic!("{}", report.failure_message_here());
        }
    }

    /// Like [`verify_none`](Options::verify_none), but yields to the runtime
    /// while it waits. Use it in `#[tokio::test]` bodies of either flavor.
    ///
    /// # Panics
    ///
    /// With the [`Report`] when something leaked. The panic names the line
    /// that called `verify_none_async`, as a panic in sync code would:
    /// an `async fn` can't be `#[track_caller]`, so this one is a plain
    /// function that notes its caller and returns the future. The message
    /// (`thread '...' panicked at tests/api.rs:12:5:` and the report) is
    /// written to stderr, which the test harness captures, and the panic is
    /// raised with [`std::panic::resume_unwind`] so the standard hook
    /// doesn't print a second location inside leakcheck. The payload is
    /// the report as a `String`, so `#[should_panic(expected = "...")]`
    /// works as usual.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// leakcheck::spawn(async {}).await.unwrap();
    /// leakcheck::Options::new().verify_none_async().await;
    /// # }
    /// ```
    #[track_caller]
    pub fn verify_none_async(&self) -> impl Future<Output = ()> + '_ {
        self.verify_none_async_at(Location::caller())
    }

    /// [`verify_none_async`](Options::verify_none_async), failing at `at`.
    pub(crate) async fn verify_none_async_at(&self, at: &'static Location<'static>) {
        if let Err(report) = self.find_async().await {
            fail_at(at, &report);
        }
    }

    /// Like [`verify_none`](Options::verify_none) but returns the report
    /// instead of panicking.
    ///
    /// # Errors
    ///
    /// The [`Report`] of the survivors, when something outlived the settle
    /// period.
    ///
    /// # Panics
    ///
    /// When called on a thread that drives a current-thread tokio runtime;
    /// use [`find_async`](Options::find_async) there.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let _waiter = leakcheck::thread::spawn(move || rx.recv());
    /// let options = leakcheck::Options::new().settle(Duration::from_millis(20));
    /// assert_eq!(options.find().unwrap_err().leaks().len(), 1);
    /// drop(tx); // the thread's recv() fails and it ends
    /// assert!(options.find().is_ok());
    /// ```
    #[track_caller]
    pub fn find(&self) -> Result<(), Report> {
        self.find_named("find", "find_async")
    }

    /// Like [`find`](Options::find), but yields to the runtime while it
    /// waits.
    ///
    /// The wait runs on tokio's blocking pool, which also keeps a paused
    /// clock (`start_paused`, `tokio::time::pause`) from auto-advancing
    /// while the check waits: an interval that leaks is not spun through
    /// thousands of ticks.
    ///
    /// # Errors
    ///
    /// The [`Report`] of the survivors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let options = leakcheck::Options::new();
    /// assert!(options.find_async().await.is_ok());
    /// # }
    /// ```
    pub async fn find_async(&self) -> Result<(), Report> {
        check_async(self).await
    }

    #[track_caller]
    fn find_named(&self, name: &str, async_name: &str) -> Result<(), Report> {
        check_blocking(self, name, async_name)
    }
}

/// Fails the calling test with `report`, at `at` rather than here: what the
/// standard panic hook would print for a panic at `at`, then an unwind that
/// skips the hook.
fn fail_at(at: &Location<'_>, report: &Report) -> ! {
    let message = report.failure_message_here();
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    eprintln!("\nthread '{name}' panicked at {at}:\n{message}");
    std::panic::resume_unwind(Box::new(message))
}

/// What one check looks at: a scope, minus the caller itself.
pub(crate) struct Target {
    scope: Arc<Scope>,
    /// The calling task and its ancestors: none of them can end before the
    /// check returns, so waiting for them would only ever fail.
    callers: Vec<u64>,
    /// The caller's runtime, when it is one test's own (built by
    /// `runtime::build`): its tasks spawned outside leakcheck count too.
    runtime: Option<Probe>,
    /// The OS thread that asked for the check (0 if unknown), never a stray
    /// thread even when the wait happens on another one.
    thread: u32,
}

impl Target {
    /// The scope that a spawn made here would belong to.
    pub(crate) fn current() -> Target {
        let owner = owner::owner();
        let callers = match &owner {
            Owner::Task(record) => record.lineage().map(|r| r.id()).collect(),
            Owner::Scope(_) => Vec::new(),
        };
        let in_task = matches!(owner, Owner::Task(_));
        Target {
            runtime: Probe::current(owner.scope(), in_task),
            scope: owner.scope().clone(),
            callers,
            thread: if runs_alone() {
                crate::registry::os_thread::current_tid()
            } else {
                0
            },
        }
    }

    /// True when a check can pass without looking further, with no wait
    /// and no trip to the blocking pool: nothing is live in the scope, no
    /// task leakcheck didn't spawn is alive on the runtime it counts (one
    /// read: tokio counts a task from its spawn, so a zero is never early),
    /// and the process's threads needn't be listed (they must, when it runs
    /// this one test).
    fn nothing_live(&self) -> bool {
        self.scope.live() == 0
            && !runs_alone()
            && self
                .runtime
                .as_ref()
                .is_none_or(|probe| probe.untracked_now() == 0)
    }
}

/// Runs the check on this thread, blocking it for up to the settle period.
#[track_caller]
pub(crate) fn check_blocking(
    options: &Options,
    name: &str,
    async_name: &str,
) -> Result<(), Report> {
    if !cfg!(feature = "track") {
        return Err(Report::tracking_off());
    }
    if would_stall_runtime() {
        panic!(
            "leakcheck::{name}() was called on a thread that drives a current-thread tokio \
             runtime (as in a default #[tokio::test]); blocking it would stall the very tasks \
             the check waits for. Use `leakcheck::{async_name}().await` instead."
        );
    }
    settle(options, &Target::current()).map_err(|mut report| {
        if crate::report::taskdump::ENABLED {
            report.attach_traces(crate::report::taskdump::capture_blocking());
        }
        report
    })
}

/// Runs the check without blocking the runtime.
pub(crate) async fn check_async(options: &Options) -> Result<(), Report> {
    if !cfg!(feature = "track") {
        return Err(Report::tracking_off());
    }
    let target = Target::current();
    if target.nothing_live() {
        return Ok(());
    }
    // Boxed: the wait's state (the blocking task's handle, the trace
    // capture) is a few hundred bytes that a check which passes at once
    // would otherwise carry too, in every test's future, copied each time
    // the future moves.
    Box::pin(wait_async(options, target)).await
}

/// The rest of [`check_async`]: wait off the runtime, up to the settle
/// period, and trace the survivors of a failing check.
async fn wait_async(options: &Options, target: Target) -> Result<(), Report> {
    let Ok(runtime) = Handle::try_current() else {
        // No tokio runtime here, so none of the tasks we wait for can be
        // running on this thread: blocking it stalls nothing.
        return settle(options, &target);
    };
    let options = options.clone();
    // The blocking pool also inhibits tokio's auto-advance of a paused clock
    // while the check waits.
    let outcome = match runtime
        .spawn_blocking(move || settle(&options, &target))
        .await
    {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("leakcheck: the runtime shut down during the check ({error})"),
    };
    match outcome {
        Err(mut report) if crate::report::taskdump::ENABLED => {
            // At most one dump per failing check, bounded in time.
            report.attach_traces(crate::report::taskdump::capture().await);
            Err(report)
        }
        other => other,
    }
}

/// Whether blocking this thread would stop tasks from running: it drives a
/// current-thread runtime and is not one of its blocking-pool threads.
fn would_stall_runtime() -> bool {
    let Ok(handle) = Handle::try_current() else {
        return false;
    };
    if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
        return false;
    }
    let on_blocking_thread =
        owner::current_record().is_some_and(|r| matches!(r.kind(), Kind::Blocking | Kind::Thread));
    !on_blocking_thread
}

/// Waits for the target's survivors to end, up to the settle period.
fn settle(options: &Options, target: &Target) -> Result<(), Report> {
    let start = Instant::now();
    let deadline = start.checked_add(options.settle_period());
    let Listing {
        left: survivors,
        hopeless: at_once,
    } = survivors(
        &target.scope,
        deadline,
        options,
        &target.callers,
        target.runtime.as_ref(),
    );
    // Read after the scope settled: tracked survivors are known tasks, so
    // only what leakcheck never saw is left in the count.
    let untracked = target
        .runtime
        .as_ref()
        // tokio's count is not strongly consistent on the multi-thread
        // runtime (it can lag a task that just ended), and stable tokio says
        // nothing when a task ends: re-read, never concluded from one read.
        .map_or(0, |probe| {
            crate::check::settle::reread(deadline, || probe.untracked_now(), |n| *n == 0)
        });
    let adopted = target.runtime.as_ref().is_some_and(|probe| probe.adopted);
    // In a process that runs this one test (cargo-nextest), every other
    // thread is this test's, so threads nobody tracked can be listed too.
    let stray = if runs_alone() {
        let owners = [target.thread, target.scope.home_thread()];
        crate::check::stray_threads::settle(deadline, &owners, options)
    } else {
        Vec::new()
    };
    let checked = Checked::Scope(target.scope.name().clone());
    // Threads nobody tracked were waited for all the same.
    let at_once = at_once && stray.is_empty();
    verdict(checked, start, survivors, (untracked, adopted), stray)
        .map_err(|report| report.final_at_once(at_once))
}

/// Checks every scope in the process (every test's, every thread's and the
/// process-wide one) against one deadline, as the end of a test binary.
///
/// Each scope settles in turn; once the deadline has passed, the scopes
/// still to go are read once without waiting, and a scope that is already
/// empty costs a lock of each of its shards. Scopes created while the check waits (a
/// survivor starting a thread that spawns, say) are checked on another pass.
pub(crate) fn check_test_binary(options: &Options) -> Result<(), Report> {
    if !cfg!(feature = "track") {
        return Err(Report::tracking_off());
    }
    let start = Instant::now();
    let deadline = start.checked_add(options.settle_period());
    // Called from inside a tracked task or thread, skip it and its spawners,
    // as a per-test check does.
    let callers: Vec<u64> = owner::current_record()
        .map(|record| record.lineage().map(|r| r.id()).collect())
        .unwrap_or_default();
    let mut checked: Vec<Arc<Scope>> = Vec::new();
    let mut left = Vec::new();
    loop {
        let unchecked: Vec<Arc<Scope>> = Registry::global()
            .scopes()
            .into_iter()
            .filter(|scope| !checked.iter().any(|seen| Arc::ptr_eq(seen, scope)))
            .collect();
        if unchecked.is_empty() {
            break;
        }
        for scope in &unchecked {
            left.extend(survivors(scope, deadline, options, &callers, None).left);
        }
        checked.extend(unchecked);
    }
    // OS threads nobody tracked, once every scope had its chance to end;
    // only on the main thread (the at-exit hook, or a `harness = false`
    // runner), where no test harness has threads of its own running.
    let on_main = crate::registry::os_thread::current_tid() == std::process::id();
    let stray = if on_main {
        crate::check::stray_threads::settle(deadline, &[], options)
    } else {
        Vec::new()
    };
    verdict(Checked::TestBinary, start, left, (0, false), stray)
}

/// The check's verdict: a report if anything at all is left, whether
/// tracked survivors, tasks counted on the runtime, or untracked threads.
fn verdict(
    checked: Checked,
    start: Instant,
    survivors: Vec<Arc<TaskRecord>>,
    (untracked, adopted): (usize, bool),
    stray: Vec<crate::report::StrayThread>,
) -> Result<(), Report> {
    match into_result(checked.clone(), start, survivors) {
        Err(report) => Err(report
            .with_untracked(untracked, adopted)
            .with_stray_threads(stray)),
        Ok(()) if untracked > 0 || !stray.is_empty() => {
            Err(Report::new(checked, start.elapsed(), Vec::new())
                .with_untracked(untracked, adopted)
                .with_stray_threads(stray))
        }
        Ok(()) => Ok(()),
    }
}

/// What is left of `scope` at `deadline`, or as soon as nothing is, or as
/// soon as waiting can't change the verdict: its live records minus the
/// callers and whatever `options` forgives.
///
/// The listing is hopeless when the crate docs' rule for failing fast
/// ("The settle period") holds: every live record but the calling task
/// itself (which waits for this check) can never finish, and no task that
/// leakcheck didn't spawn is alive on the runtime the check counts.
fn survivors(
    scope: &Scope,
    deadline: Option<Instant>,
    options: &Options,
    callers: &[u64],
    runtime: Option<&Probe>,
) -> Listing {
    scope.settle(deadline, grace(options), |scope| {
        let now = Stamp::now();
        let live = scope.snapshot(|record| callers.first() != Some(&record.id()));
        let hopeless = !live.is_empty()
            && live.iter().all(|record| record.can_never_finish())
            && runtime.is_none_or(|probe| probe.untracked_now() == 0);
        let mut left: Vec<_> = live
            .into_iter()
            .filter(|record| {
                !callers.contains(&record.id())
                    && !options.forgives(record, || Leak::new(record.clone(), now))
            })
            .collect();
        drop_twins(&mut left);
        Listing { left, hopeless }
    })
}

/// How long a check still waits once every survivor can never finish: a
/// tenth of the settle period, at most 100 ms. Time for an abort already
/// asked for to reach its task (see [`Scope::settle`]); what is stuck for
/// good is reported that much sooner than after the whole settle period.
fn grace(options: &Options) -> Duration {
    (options.settle_period() / 10).min(Duration::from_millis(100))
}

/// Removes the hooks' records of tasks that a tracked record already
/// stands for: `tokio::spawn(leakcheck::track(f))` is seen by tokio's spawn
/// hook and by `Tracked`, and is one task. They are matched by tokio task
/// id, which a tracked record learns on its first poll.
fn drop_twins(left: &mut Vec<Arc<TaskRecord>>) {
    if !left.iter().any(|r| r.kind() == Kind::Untracked) {
        return;
    }
    let tracked: std::collections::HashSet<tokio::task::Id> = Registry::global()
        .all_records()
        .iter()
        .filter(|r| r.kind() != Kind::Untracked)
        .filter_map(|r| r.tokio_id())
        .collect();
    left.retain(|r| {
        r.kind() != Kind::Untracked || r.tokio_id().is_none_or(|id| !tracked.contains(&id))
    });
}

/// `Ok` when nothing survived, else the report of what did.
fn into_result(
    checked: Checked,
    start: Instant,
    mut survivors: Vec<Arc<TaskRecord>>,
) -> Result<(), Report> {
    // The survivors were listed at the deadline, and the ignore predicates
    // ran since: a task that ended meanwhile is no leak. Whatever ends after
    // this line ended after the check gave its verdict.
    survivors.retain(|record| record.scope().holds(record));
    if survivors.is_empty() {
        return Ok(());
    }
    let stamp = Stamp::now();
    let leaks = survivors.into_iter().map(|r| Leak::new(r, stamp)).collect();
    Err(Report::new(checked, start.elapsed(), leaks))
}
