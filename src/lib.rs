//! Make leaked tokio tasks and threads fail your tests.
//!
//! Spawn through leakcheck ([`spawn`], [`spawn_blocking`], [`spawn_local`],
//! [`track`], [`Builder`], [`thread::spawn`]) and every task and thread is
//! registered, attributed to the test that spawned it. At the end of a test,
//! [`verify_none`] (or [`verify_none_async`] in async tests) waits for that
//! test's tasks to end and panics with a report of the ones that don't:
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

#![deny(missing_docs)]
// Denied, not forbidden: the exit-time hook of `verify_test_main!` needs two
// libc calls, allowed in that one module (`test_main::exit_time`).
#![deny(unsafe_code)]

mod context;
mod kind;
mod options;
mod record;
mod registry;
mod report;
mod scope;
mod settle;
mod spawn;
mod sync;
mod test_main;
pub mod thread;
mod tracked;
mod verify;

pub use kind::Kind;
pub use options::Options;
pub use report::{Leak, Report};
pub use spawn::{spawn, spawn_blocking, spawn_local, track, Builder};
pub use test_main::{verify_test_main, ExitCodeLike};
pub use tracked::Tracked;

/// What [`verify_test_main!`] expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(unix)]
    pub use crate::test_main::verify_at_exit;
    #[cfg(unix)]
    pub use dtor;
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
pub async fn verify_none_async() {
    Options::new().verify_none_async().await;
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
