//! The whole-binary check, goleak's `VerifyTestMain`: once a test binary's
//! tests have run, every scope in the process must be empty.
//!
//! libtest has no hook around its `main`, so there are two entry points over
//! the one check in `verify`: [`verify_test_main!`](crate::verify_test_main!)
//! registers an at-exit hook for libtest targets, and [`verify_test_main`]
//! wraps the runner of a `harness = false` target.
//!
//! The at-exit hook is a `dtor` function expanded in the user's test crate
//! (through `__private`). It runs after the standard library's teardown,
//! so it catches panics itself, writes its report with `write(2)` and ends
//! the process with `_exit(101)` (`exit_time`, one of the crate's unsafe
//! places). It can't see libtest's exit code, so it checks after a failing
//! run too. The `harness = false` form can: the sealed [`ExitCodeLike`]
//! takes an `ExitCode` or an `i32`, skips the check after a failed run, and
//! returns 101 after a passing run that leaked.

use std::process::ExitCode;

use crate::check::options::Options;
use crate::check::verify::check_test_binary;

/// The exit code of a run that passed but leaked: libtest's code for a
/// failed run, so a leak reads like any other failure.
const LEAKED: u8 = 101;

/// Runs the tests of a `harness = false` target, then fails the run if any
/// task or thread outlived them.
///
/// `run` runs the tests and returns the code the process should exit with:
/// a [`std::process::ExitCode`] or an `i32` (what `libtest_mimic`'s
/// `Arguments`/`run`, a hand-written runner or `std::process::exit` use).
/// What comes back is the code to exit with:
///
/// - the runner's own code when the run failed, without a check: the
///   failures already fail the run, and their leftovers would only add
///   noise (as in goleak);
/// - the runner's code when the run passed and nothing is left;
/// - 101, with the report printed to stderr, when the run passed but some
///   task or thread is still running after the [settle period](crate#the-settle-period).
///
/// The check covers every scope in the process: each test's, each thread's
/// (the main thread's included, which is where such runners usually run
/// their tests) and the process-wide scope of spawns that belong to no test.
///
/// For libtest targets (plain `#[test]` functions) use
/// [`verify_test_main!`](crate::verify_test_main!) instead; don't use both
/// in one target. To forgive process-lifetime tasks and threads, use
/// [`Options::verify_test_main`].
///
/// ```
/// // tests/integration.rs, with `harness = false` in Cargo.toml's [[test]]
/// use std::process::ExitCode;
///
/// fn main() -> ExitCode {
///     leakcheck::verify_test_main(|| {
///         let worker = leakcheck::thread::spawn(|| 2 + 2);
///         if worker.join().unwrap() == 4 {
///             ExitCode::SUCCESS
///         } else {
///             ExitCode::FAILURE
///         }
///     })
/// }
/// ```
///
/// With an `i32` code:
///
/// ```
/// fn run_tests() -> i32 {
///     0 // every test passed
/// }
///
/// let code = leakcheck::verify_test_main(run_tests);
/// assert_eq!(code, 0);
/// // In a real runner: std::process::exit(code)
/// ```
pub fn verify_test_main<C: ExitCodeLike>(run: impl FnOnce() -> C) -> C {
    run_and_check(&Options::new(), run)
}

/// The whole-binary check as a method, with these options.
impl Options {
    /// Runs the tests of a `harness = false` target with `run`, then checks
    /// the whole binary with these options: [`verify_test_main`](crate::verify_test_main())
    /// with what these options forgive (goleak's `VerifyTestMain(m, opts...)`).
    ///
    /// ```
    /// let (stop, parked) = std::sync::mpsc::channel::<()>();
    /// let code = leakcheck::Options::new().ignore_thread_name("exporter").verify_test_main(|| {
    ///     // A process-lifetime thread, started by the tests and never stopped:
    ///     leakcheck::thread::Builder::new()
    ///         .name("exporter".into())
    ///         .spawn(move || parked.recv())
    ///         .unwrap();
    ///     0
    /// });
    /// assert_eq!(code, 0);
    /// # drop(stop);
    /// ```
    pub fn verify_test_main<C: ExitCodeLike>(&self, run: impl FnOnce() -> C) -> C {
        run_and_check(self, run)
    }
}

/// [`verify_test_main`] and [`Options::verify_test_main`]: runs, then checks
/// with `options` unless the run failed.
pub(crate) fn run_and_check<C: ExitCodeLike>(options: &Options, run: impl FnOnce() -> C) -> C {
    let code = run();
    if !code.is_success() {
        return code;
    }
    match check_test_binary(options) {
        Ok(()) => code,
        Err(report) => {
            eprintln!("\n{}", report.failure_message_here());
            C::leaked()
        }
    }
}

/// The exit codes [`verify_test_main`] accepts from a test runner:
/// [`std::process::ExitCode`] and `i32`.
///
/// The trait is sealed: it exists to name those two types.
///
/// ```
/// fn exit_with<C: leakcheck::ExitCodeLike>(run: impl FnOnce() -> C) -> C {
///     leakcheck::verify_test_main(run)
/// }
///
/// assert_eq!(exit_with(|| 0), 0);
/// assert_eq!(
///     exit_with(|| std::process::ExitCode::SUCCESS),
///     std::process::ExitCode::SUCCESS
/// );
/// ```
pub trait ExitCodeLike: sealed::Sealed {}

impl ExitCodeLike for ExitCode {}
impl ExitCodeLike for i32 {}

mod sealed {
    use std::process::ExitCode;

    /// What [`verify_test_main`](super::verify_test_main) needs of a code;
    /// private, so that nothing outside this crate implements it.
    pub trait Sealed: Sized {
        /// Whether the runner reported a passing run.
        fn is_success(&self) -> bool;
        /// The code of a run that passed but leaked.
        fn leaked() -> Self;
    }

    impl Sealed for ExitCode {
        fn is_success(&self) -> bool {
            *self == ExitCode::SUCCESS
        }

        fn leaked() -> Self {
            ExitCode::from(super::LEAKED)
        }
    }

    impl Sealed for i32 {
        fn is_success(&self) -> bool {
            *self == 0
        }

        fn leaked() -> Self {
            i32::from(super::LEAKED)
        }
    }
}

/// Checks the whole test binary when the process exits, and fails the run
/// if any task or thread outlived the tests.
///
/// Put it once at the top of a libtest test crate: a file under `tests/`,
/// or, behind `#[cfg(test)]`, the root of a crate's unit tests. `leakcheck`
/// as a dev-dependency is all it needs:
///
/// ```
/// // tests/api.rs
/// leakcheck::verify_test_main!();
///
/// // Then the crate's #[test] functions, as before:
/// fn worker_stops() {
///     leakcheck::thread::spawn(|| ()).join().unwrap();
/// }
/// # fn main() { worker_stops() }
/// ```
///
/// It takes an [`Options`] expression too, like goleak's
/// `VerifyTestMain(m, opts...)`, to forgive what lives as long as the
/// process (a library's exporter, a `static` runtime's named workers):
///
/// ```
/// // tests/api.rs
/// leakcheck::verify_test_main!(
///     leakcheck::Options::new()
///         .ignore_name("exporter")
///         .ignore_thread_name("db-pool")
/// );
/// # fn main() {}
/// ```
///
/// The expression is evaluated once, when the process exits.
///
/// When the process exits after libtest printed its summary, the hook
/// waits up to the [settle period](crate#the-settle-period) for every
/// scope in the process to empty: each test's, each thread's, and the
/// process-wide scope of spawns that belong to no test (tasks spawned from
/// inside tokio tasks that leakcheck did not spawn, which no per-test check
/// looks at). If something is still running, it writes the report to
/// stderr and ends the process with exit code 101, so `cargo test` fails.
/// Each entry of that report names the test (or thread) its task belongs
/// to, or says `no test`.
///
/// The hook can't see libtest's exit code, so it checks after a failing
/// run too: a failing run stays failing, and its report may then list
/// tasks that the failed tests left behind. A passing run that leaked
/// fails. Under cargo-nextest, which runs each test in a process of its
/// own, the check runs after every test.
///
/// The hook is an at-exit function registered by the `dtor` crate, run
/// after `main` returns or `std::process::exit` is called; a process that
/// aborts or is killed never runs it. It only exists on Unix targets (it
/// writes with `write(2)` and ends with `_exit(2)` to stay clear of the
/// standard library's exit-time teardown); elsewhere the macro expands to
/// nothing. For `harness = false` targets use the function
/// [`verify_test_main`] instead.
#[macro_export]
macro_rules! verify_test_main {
    () => {
        $crate::verify_test_main!($crate::Options::new());
    };
    ($options:expr $(,)?) => {
        #[cfg(unix)]
        $crate::__private::dtor::declarative::dtor! {
            #[dtor(unsafe, anonymous)]
            fn __leakcheck_verify_test_main() {
                $crate::__private::verify_at_exit_with(|| -> $crate::Options { $options });
            }
        }
    };
}

/// [`verify_at_exit_with`] with default options. Not for direct use.
#[cfg(unix)]
pub fn verify_at_exit() {
    verify_at_exit_with(Options::new);
}

/// What the [`verify_test_main!`](crate::verify_test_main!) hook runs when
/// the process exits, with the options `options` builds. Not for direct use.
///
/// Never panics and never returns after a failed check: a panic would have
/// to unwind out of an `extern "C"` hook, which aborts the process.
#[cfg(unix)]
pub fn verify_at_exit_with(options: impl FnOnce() -> Options) {
    use std::sync::atomic::{AtomicBool, Ordering};

    // The macro expanded twice (in two modules, say) registers two hooks:
    // check once.
    static CHECKED: AtomicBool = AtomicBool::new(false);
    if CHECKED.swap(true, Ordering::SeqCst) {
        return;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_test_binary(&options())
    }));
    let message = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(report)) => format!("\n{}", report.failure_message_here()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic");
            format!("\nleakcheck: the check at the end of the test binary failed: {why}\n")
        }
    };
    exit_time::write_stderr(message.as_bytes());
    exit_time::exit_now(i32::from(LEAKED));
}

/// Output and exit that are safe while the process is exiting: straight
/// to the file descriptor and the system call, past the standard library's
/// stdio locks and its already-run teardown.
#[cfg(unix)]
#[allow(unsafe_code)] // libc calls at process exit (lib.rs lists every unsafe place)
mod exit_time {
    /// Writes all of `bytes` to stderr (fd 2), giving up on an error.
    pub(super) fn write_stderr(mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: the pointer and length come from a live slice that
            // outlives the call; write(2) only reads that many bytes.
            let written = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
            match usize::try_from(written) {
                Ok(0) => return,
                Ok(n) => bytes = &bytes[n..],
                Err(_)
                    if std::io::Error::last_os_error().kind()
                        == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Ends the process with `code` at once, running no further exit hooks.
    pub(super) fn exit_now(code: i32) -> ! {
        // SAFETY: _exit(2) ends the process without returning; no Rust
        // code runs after it, so no invariant can be observed broken.
        unsafe { libc::_exit(code) }
    }
}
