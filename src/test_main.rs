//! The whole-binary check, goleak's `VerifyTestMain`: once a test binary's
//! tests have run, every scope in the process must be empty.
//!
//! [`verify_test_main`] wraps the runner of a `harness = false` target and
//! runs the one whole-binary check of `verify.rs` after it.

use std::process::ExitCode;

use crate::options::Options;
use crate::verify::check_test_binary;

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
///   task or thread is still running after the settle period (1 s, or
///   `LEAKCHECK_SETTLE`).
///
/// The check covers every scope in the process: each test's, each thread's
/// (the main thread's included, which is where such runners usually run
/// their tests) and the process-wide scope of spawns that belong to no test.
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
    let code = run();
    if !code.is_success() {
        return code;
    }
    match check_test_binary(&Options::new()) {
        Ok(()) => code,
        Err(report) => {
            eprintln!("\n{report}");
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
