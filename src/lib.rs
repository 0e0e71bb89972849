//! Make leaked tokio tasks and threads fail your tests.
//!
//! Spawn through leakcheck ([`spawn`](fn@spawn), [`spawn_blocking`], [`spawn_local`],
//! [`track`], [`Builder`], [`thread::spawn`]; the signatures of tokio's and
//! std's) and every task and thread is registered, attributed to the test
//! that spawned it. Then check each test:
//!
//! ```
//! fn start_worker(mut jobs: tokio::sync::mpsc::Receiver<u32>) {
//!     leakcheck::spawn(async move { while jobs.recv().await.is_some() {} });
//! }
//!
//! // Like #[tokio::test] (same arguments), and checks before the runtime
//! // shuts down: fails if the worker outlives the test.
//! #[leakcheck::leak_check]
//! async fn worker_stops_when_the_queue_closes() {
//!     let (tx, rx) = tokio::sync::mpsc::channel(8);
//!     start_worker(rx);
//!     drop(tx); // without this line, the test fails with a report
//! }
//! # fn main() {}
//! ```
//!
//! [`leak_check`] also goes above `#[test]` and `#[tokio::test]`. By hand,
//! [`verify_none`] (or [`verify_none_async`] in async code) at the end of a
//! test waits for that test's tasks to end and panics with a report of the
//! ones that don't; [`find`] and [`Options::find_async`] return the
//! [`Report`] instead:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use tokio::sync::mpsc;
//!
//! let (tx, mut rx) = mpsc::channel::<u32>(8);
//! let worker = leakcheck::spawn(async move { while rx.recv().await.is_some() {} });
//!
//! // Forgot to drop `tx`: the worker waits forever, and the check says so.
//! let options = leakcheck::Options::new().settle(Duration::from_millis(50));
//! let report = options.find_async().await.unwrap_err();
//! assert_eq!(report.leaks().len(), 1);
//!
//! drop(tx); // the fix: the channel closes and the worker ends
//! worker.await.unwrap();
//! options.verify_none_async().await;
//! # }
//! ```
//!
//! And [`verify_test_main!`] checks a whole test binary once its tests have
//! run ([below](#the-whole-test-binary)).
//!
//! # Install
//!
//! When production code spawns through leakcheck, depend on it twice:
//! `cargo add leakcheck --no-default-features` (the build you ship: every
//! spawner is the plain tokio/std call) and `cargo add --dev leakcheck`
//! (`cargo test` unifies the features, so tests track). When only tests use
//! it, `cargo add --dev leakcheck` alone.
//!
//! | feature | default | what it does | needs | costs |
//! |---|---|---|---|---|
//! | `track` | on | registers each task and thread spawned through leakcheck; without it checks fail with "tracking is off" | nothing | a fraction of a microsecond a spawn, about a hundred bytes a live task (the README's "What tracking costs" has the figures); off, nothing |
//! | `taskdump` | off | await traces in reports, from tokio's task dumps | `--cfg tokio_unstable`, Linux on x86, x86_64 or aarch64 (elsewhere tokio refuses to build with it); turns on tokio's `taskdump` | one bounded dump per failing check |
//!
//! The tokio features that [`leak_check`]'s arguments need are in its
//! [arguments table](leak_check#arguments). Rust 1.85 or newer; raising it
//! is a minor release, said in the CHANGELOG.
//!
//! # Who owns a task
//!
//! Every tracked task and thread belongs to exactly one *scope*, and a check
//! looks only at its own scope, so tests running in parallel never see each
//! other's tasks. The scope of a new spawn is decided where it is spawned:
//!
//! 1. **Inside a tracked task, blocking closure or thread**: the spawner's
//!    scope, to any depth and across kinds (task → `spawn_blocking` → thread
//!    → task). Reports show the chain of spawn sites.
//! 2. **Inside a tokio task that leakcheck didn't spawn** (a plain
//!    `tokio::spawn` in a library): the process-wide scope. On a runtime
//!    worker thread nothing tells which test is running, and blaming the
//!    worker's last test would be a lie. Only the
//!    [whole-binary check](#the-whole-test-binary) looks at the
//!    process-wide scope.
//! 3. **On a plain thread, or in a `block_on` body** (which is where a
//!    `#[test]` or `#[tokio::test]` body runs): that OS thread's scope.
//!    libtest runs each test on a fresh thread named after the test, so this
//!    is the test's own scope and reports name the test.
//!
//! A check never waits for itself: called from inside a tracked task, it
//! skips the calling task and the tasks that spawned it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let outer = leakcheck::spawn(async {
//!     // Owned by `outer`'s scope, with `outer` as its parent.
//!     leakcheck::spawn(async {}).await.unwrap();
//!     // Skips `outer` itself: passes.
//!     leakcheck::verify_none_async().await;
//! });
//! outer.await.unwrap();
//! # }
//! ```
//!
//! # The whole test binary
//!
//! Per-test checks see their own test's tasks. To check everything at the
//! end of a test binary, as goleak's `VerifyTestMain` does, including the
//! process-wide scope that no test owns and tests that have no check of
//! their own:
//!
//! - in a libtest target (`#[test]` functions), put
//!   [`verify_test_main!()`](verify_test_main!) once at the top of the
//!   crate: when the process exits, it waits up to the settle period for
//!   every scope to empty, and if something is still running it prints the
//!   report to stderr and exits with code 101, so `cargo test` fails;
//! - in a `harness = false` target, wrap the runner in
//!   [`verify_test_main()`](verify_test_main()), which does the same check
//!   after a passing run and returns the code to exit with.
//!
//! ```
//! // tests/api.rs, a libtest target:
//! leakcheck::verify_test_main!();
//! # fn main() {}
//! ```
//!
//! ```
//! // tests/custom.rs, a `harness = false` target:
//! fn main() -> std::process::ExitCode {
//!     leakcheck::verify_test_main(|| std::process::ExitCode::SUCCESS)
//! }
//! ```
//!
//! Each entry of a whole-binary report names the test its survivors belong
//! to, or says `no test` for the process-wide scope.
//!
//! # The settle period
//!
//! A check waits up to the settle period (1 s by default) for the scope's
//! tasks to end, and returns the moment they have: a passing test pays
//! nothing. Set it per check with [`Options::settle`] or for a whole run
//! with the `LEAKCHECK_SETTLE` environment variable (`"250ms"`, `"2s"`).
//! The deadline is wall-clock time, so a paused tokio clock neither stops
//! it nor is advanced by it.
//!
//! A failing test doesn't wait it out either when waiting can't help:
//! once every task of the scope that could still act provably *can never
//! finish* (each a future leakcheck wraps, polled, not woken, with no clone
//! of its waker left), nothing in the scope can run to its end or abort
//! another, and the check reports after a short grace instead (a tenth of
//! the settle period, at most 100 ms, time for an abort already asked for
//! to land). "Every task" includes forgiven tasks and the caller's
//! ancestors, which may still abort a survivor, and the check keeps waiting
//! while a blocking task or thread runs, a task holds a waker or is woken,
//! a task seen only through tokio's hooks lives, or tasks that leakcheck
//! didn't spawn are alive on the runtime it counts. Such a report says
//! "... can never finish, so the check stopped waiting after ...". Threads outside
//! leakcheck are not considered.
//!
//! # Check before the runtime shuts down
//!
//! A task ends, for leakcheck, when its future completes or is dropped.
//! Dropping a runtime drops every task still on it, so a check that runs
//! after the runtime is gone sees those tasks as ended and passes, though
//! they never finished on their own and, in a service whose runtime lives
//! on, would have leaked. leakcheck can't tell that drop apart from an
//! intended one: tokio drops the future the same way for
//! `JoinHandle::abort`, a dropped `JoinSet` and runtime shutdown, and the
//! first two are the usual fixes for a leak. So there is no "cancelled by
//! shutdown" section; check while the runtime still runs instead:
//!
//! - in `#[tokio::test]` bodies, end the body with
//!   `leakcheck::verify_none_async().await`, or use [`leak_check`], which
//!   checks before its runtime shuts down;
//! - when a test builds and drops its own runtime, check inside its last
//!   `block_on`, before the drop.
//!
//! ```
//! use std::time::Duration;
//!
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! let options = leakcheck::Options::new().settle(Duration::from_millis(20));
//! runtime.block_on(async {
//!     leakcheck::spawn(std::future::pending::<()>());
//!     // Checked while the runtime runs: the stuck task is reported.
//!     assert_eq!(options.find_async().await.unwrap_err().leaks().len(), 1);
//! });
//! drop(runtime); // drops the task with it
//! options.verify_none(); // so this check passes: too late to see it
//! ```

#![deny(missing_docs)]
// On docs.rs (`--cfg docsrs`, nightly rustdoc): "Available on ..." badges on
// the items that need `tokio_unstable`, a feature or a platform.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Denied, not forbidden. `unsafe` is allowed in four places only, each
// with its reason there: the counting waker's RawWaker vtable
// (`registry::waker`), the one poll that lends it to the future
// (`Tracked::poll`, `spawn::tracked`), the slot that keeps the runtime's
// waker, written by that poll only (`registry::runtime_waker`, and the
// `poll_begin`s that pass its contract on), and the two libc calls of
// `verify_test_main!`'s exit-time hook (`check::test_main::exit_time`).
// This list is the one place that says so.
#![deny(unsafe_code)]

/// Compiles the items of its first block only in a build that can take
/// tokio's task dumps (the `taskdump` feature, `--cfg tokio_unstable`, and
/// Linux on x86, x86_64 or aarch64), and those of its `else` block only in
/// any other: the one place that states the condition.
macro_rules! cfg_task_dumps {
    ({ $($yes:item)* } else { $($no:item)* }) => {
        cfg_task_dumps!(@(all(
            feature = "taskdump",
            tokio_unstable,
            target_os = "linux",
            any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")
        )) { $($yes)* } { $($no)* });
    };
    (@($condition:meta) { $($yes:item)* } { $($no:item)* }) => {
        $( #[cfg($condition)] $yes )*
        $( #[cfg(not($condition))] $no )*
    };
}

mod check;
pub mod profile;
mod registry;
mod report;
pub mod runtime;
mod spawn;
pub mod watch;

pub use check::options::Options;
pub use check::test_main::{verify_test_main, ExitCodeLike};
pub use profile::{profile, Growth, Profile, ProfileGroup};
pub use registry::kind::Kind;
pub use report::{Leak, Report};
pub use spawn::thread;
pub use spawn::tracked::Tracked;
pub use spawn::{spawn, spawn_blocking, spawn_local, track, Builder};
pub use watch::{Watch, WatchBuilder};

/// Checks a test for leaks: the body runs in a fresh scope named after the
/// test, and when it returns the check waits for that scope's tasks and
/// threads to end, panicking with the [`Report`] if some don't.
///
/// # Sync tests
///
/// Put it above `#[test]`. On a plain function (no `#[test]`) it checks
/// each call, which is how this example runs:
///
/// ```
/// #[leakcheck::leak_check]
/// // #[test]
/// fn indexer_stops() {
///     leakcheck::thread::spawn(|| ()).join().unwrap();
/// }
/// # indexer_stops();
/// ```
///
/// # Async tests
///
/// On an `async fn` it is a complete test attribute, like `#[tokio::test]`:
/// it builds the runtime, runs the body, and runs the check **before** the
/// runtime shuts down (dropping a runtime cancels its tasks, which would hide
/// every leak).
///
/// ```no_run
/// #[leakcheck::leak_check(flavor = "multi_thread", worker_threads = 2, settle = "500ms")]
/// async fn worker_stops_on_shutdown() {
///     let token = tokio_util::sync::CancellationToken::new();
///     let child = token.child_token();
///     leakcheck::spawn(async move { child.cancelled().await });
///     token.cancel();
/// }
/// ```
///
/// With `#[tokio::test]`, put `#[leak_check]` **above** it; it takes over
/// `#[tokio::test]`'s arguments. The other order is a compile error that
/// says so.
///
/// ```no_run
/// #[leakcheck::leak_check]
/// #[tokio::test(start_paused = true)]
/// async fn interval_is_stopped() {
///     let ticker = leakcheck::spawn(async {
///         let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
///         for _ in 0..3 {
///             every.tick().await;
///         }
///     });
///     ticker.await.unwrap();
/// }
/// ```
///
/// # Arguments
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `settle = "250ms"` | the settle period, in `ms` or `s` (`"0s"` checks once without waiting, as [`Options::settle`] with zero does) | `LEAKCHECK_SETTLE` or 1 s |
/// | `ignore_name = "exporter"` | [`Options::ignore_name`] | |
/// | `ignore_spawned_at = "src/pool.rs"` | [`Options::ignore_spawned_at`] | |
/// | `crate = my_reexport::leakcheck` | where leakcheck is, when re-exported | `::leakcheck` |
/// | `flavor = "multi_thread"` | the runtime of an async test: `"current_thread"`, `"multi_thread"` (tokio's `rt-multi-thread` feature) or `"local"` (tokio's `LocalRuntime`) | `"current_thread"` |
/// | `worker_threads = 4` | worker threads (multi-thread only) | the number of cores |
/// | `start_paused = true` | start with tokio's clock paused (current-thread only; tokio's `test-util` feature) | `false` |
/// | `name = "api"` | the runtime's name (`Handle::name`) | none |
/// | `unhandled_panic = "shutdown_runtime"` | or `"ignore"`: tokio's `Builder::unhandled_panic`, which needs `--cfg tokio_unstable` (current-thread and local only) | tokio's |
///
/// The runtime arguments can also be written on a `#[tokio::test(...)]` or
/// `#[tokio::main(...)]` below, as tokio spells them (`crate = "path"`
/// there is tokio's path). When that attribute has an argument leakcheck
/// doesn't know, leakcheck leaves the attribute to tokio, unchanged, and
/// checks inside the body: the runtime is then tokio's, and counts for the
/// test by the rule in [`runtime`](crate::runtime#which-runtime-belongs-to-a-test).
///
/// Bad arguments are compile errors that point at the offending token and
/// name the attribute they were written in.
///
/// # Outcomes
///
/// - If the body panics, the panic propagates unchanged and no check runs,
///   so a failed assertion is never hidden behind a leak report. This also
///   makes it compose with `#[should_panic]`.
/// - A test returning `Result` is checked after `Ok`; after `Err` the error
///   is the failure.
///
/// # rstest
///
/// Put `#[leak_check]` below `#[rstest]` (or above it: it moves itself below)
/// and every case is checked on its own. (Not compiled here, so that
/// leakcheck's tests don't build rstest; `macros/tests/rstest.rs` runs this
/// shape and the others.)
///
/// ```ignore
/// use rstest::rstest;
///
/// #[rstest]
/// #[case(1)]
/// #[case(2)]
/// #[leakcheck::leak_check]
/// fn workers_stop(#[case] workers: usize) {
///     for _ in 0..workers {
///         leakcheck::thread::spawn(|| ()).join().unwrap();
///     }
/// }
/// ```
pub use leakcheck_macros::leak_check;

/// What `#[leak_check]` and [`verify_test_main!`] expand to, and what the
/// crate's own tests ask of a build; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(unix)]
    pub use crate::check::test_main::{verify_at_exit, verify_at_exit_with};
    pub use crate::check::test_scope::{TestOutcome, TestScope};
    #[cfg(unix)]
    pub use dtor;
    pub use tokio;
    /// Whether this build of leakcheck takes task dumps (reports then carry
    /// await traces).
    pub const TASK_DUMPS: bool = crate::registry::tokio_ids::TASK_DUMPS;
}

/// Waits up to the settle period for this scope's tasks and threads to end,
/// and panics with the [`Report`] if some don't.
///
/// Shorthand for `Options::new().verify_none()`; see [`Options::verify_none`].
///
/// ```
/// // The last line of a #[test]:
/// let worker = leakcheck::thread::spawn(|| ());
/// worker.join().unwrap();
/// leakcheck::verify_none();
/// ```
#[track_caller]
pub fn verify_none() {
    Options::new().verify_none();
}

/// The async form of [`verify_none`], for `#[tokio::test]` bodies.
///
/// Shorthand for `Options::new().verify_none_async()`; see
/// [`Options::verify_none_async`].
///
/// ```
/// #[tokio::test]
/// async fn worker_stops() {
///     leakcheck::spawn(async {}).await.unwrap();
///     leakcheck::verify_none_async().await;
/// }
/// ```
#[track_caller]
pub fn verify_none_async() -> impl std::future::Future<Output = ()> {
    let at = std::panic::Location::caller();
    async move { Options::new().verify_none_async_at(at).await }
}

/// Like [`verify_none`] but returns the report instead of panicking.
///
/// # Errors
///
/// The [`Report`] of the survivors, when something outlived the settle period.
///
/// ```
/// assert!(leakcheck::find().is_ok());
/// ```
#[track_caller]
pub fn find() -> Result<(), Report> {
    Options::new().find()
}

/// The async form of [`find`].
///
/// # Errors
///
/// The [`Report`] of the survivors, when something outlived the settle period.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert!(leakcheck::find_async().await.is_ok());
/// # }
/// ```
pub async fn find_async() -> Result<(), Report> {
    Options::new().find_async().await
}

// The README's examples are compiled as doctests, so they can't rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
