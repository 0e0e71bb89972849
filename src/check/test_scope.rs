//! `TestScope`: what `#[leak_check]` expands to. A test body runs inside a
//! fresh scope named after the test, and is checked when it returns.
//!
//! Hidden from the docs: only the attribute's expansion uses it.

use std::future::Future;
use std::panic::Location;
use std::process::ExitCode;

use crate::check::options::Options;
use crate::registry::loom_shim::Arc;
use crate::registry::owner::{self, ExplicitScope};
use crate::registry::scope::ScopeName;

/// A test's own scope and the options its check runs with.
#[doc(hidden)]
#[must_use]
pub struct TestScope {
    options: Options,
    _entered: ExplicitScope,
}

impl TestScope {
    /// Enters a fresh scope for the test function `function`. It is named
    /// after libtest's thread (`module::test`) when that thread runs it.
    pub fn enter(function: &str, options: Options) -> TestScope {
        let thread = std::thread::current();
        let name = match thread.name() {
            // `full` is `function` or ends in `::function` (no `format!`:
            // this runs for every test).
            Some(full)
                if full
                    .strip_suffix(function)
                    .is_some_and(|rest| rest.is_empty() || rest.ends_with("::")) =>
            {
                full
            }
            _ => function,
        };
        TestScope {
            options,
            _entered: owner::enter_scope(ScopeName::Test(Arc::from(name))),
        }
    }

    /// Checks the scope if the test passed, then hands back its outcome.
    /// A failed test keeps its own failure: no leak report hides it.
    #[track_caller]
    pub fn finish<T: TestOutcome>(self, outcome: T) -> T {
        if outcome.passed() {
            self.options.verify_none();
        }
        outcome
    }

    /// [`TestScope::finish`] for async tests, run before the runtime shuts
    /// down. A failing check panics at the caller's location, as `finish`
    /// does (see [`Options::verify_none_async`]).
    #[track_caller]
    pub fn finish_async<T: TestOutcome>(self, outcome: T) -> impl Future<Output = T> {
        let at = Location::caller();
        async move {
            // The whole scope moves in (not only `options`, as a disjoint
            // capture would): it must stay entered until the check is done.
            let scope = self;
            if outcome.passed() {
                scope.options.verify_none_async_at(at).await;
            }
            outcome
        }
    }
}

/// What a test function returns, and whether that means it passed.
#[doc(hidden)]
pub trait TestOutcome {
    /// Whether the test passed (so its leaks should be checked).
    fn passed(&self) -> bool;
}

impl TestOutcome for () {
    fn passed(&self) -> bool {
        true
    }
}

impl<T, E> TestOutcome for Result<T, E> {
    fn passed(&self) -> bool {
        self.is_ok()
    }
}

impl TestOutcome for ExitCode {
    fn passed(&self) -> bool {
        *self == ExitCode::SUCCESS
    }
}
