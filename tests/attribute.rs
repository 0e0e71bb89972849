//! `#[leak_check]` on sync and async tests, with tokio::test, `Result`,
//! panics and paused time (with rstest: `macros/tests/rstest.rs`).
//!
//! Leaky cases are `#[ignore]`d helpers that the real tests call inside
//! `catch_unwind`, so the report's spawn site can be checked line by line.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakcheck::leak_check;

const SOURCE: &str = include_str!("attribute.rs");

/// Runs `case` and returns its panic message.
fn panic_message(case: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(case)).expect_err("the case should panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Asserts the report names the marked spawn line and the test function
/// (a helper called from another test is its own scope, named after it).
fn assert_reports_site(message: &str, marker: &str, test: &str) {
    let line = common::site_line(SOURCE, marker);
    assert!(
        message.contains(&format!("tests/attribute.rs:{line}:")),
        "expected a report naming line {line}:\n{message}"
    );
    assert!(
        message.contains(&format!("outlived test `{test}`")),
        "{message}"
    );
}

/// Threads that the leaky cases park, released when the guard drops.
struct Parked(Arc<Mutex<Vec<std::sync::mpsc::Sender<()>>>>);

impl Parked {
    fn new() -> Parked {
        Parked(Arc::default())
    }

    /// A tracked thread that waits until this guard drops.
    fn spawn_thread(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        self.0.lock().unwrap().push(tx);
        leakcheck::thread::spawn(move || rx.recv().ok()); // site:parked-thread
    }
}

// Sync tests ------------------------------------------------------------------

static SYNC_PARKED: Mutex<Vec<std::sync::mpsc::Sender<()>>> = Mutex::new(Vec::new());

#[leak_check(settle = "100ms")]
#[test]
#[ignore = "helper: run by sync_leak_is_reported_with_its_spawn_site"]
fn sync_leaky_case() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    SYNC_PARKED.lock().unwrap().push(tx);
    leakcheck::thread::spawn(move || rx.recv().ok()); // site:sync-leak
}

#[test]
fn sync_leak_is_reported_with_its_spawn_site() {
    let message = panic_message(sync_leaky_case);
    SYNC_PARKED.lock().unwrap().clear(); // releases the thread
    assert_reports_site(&message, "sync-leak", "sync_leaky_case");
}

#[leak_check]
#[test]
fn sync_clean_test_passes() {
    leakcheck::thread::spawn(|| std::thread::sleep(Duration::from_millis(5)));
}

#[leak_check(settle = "100ms")]
fn leak_then_return_early() {
    let parked = Parked::new();
    parked.spawn_thread();
    std::mem::forget(parked); // keep the thread waiting
    if std::hint::black_box(true) {
        return;
    }
    unreachable!("returned above");
}

#[test]
fn an_early_return_is_still_checked() {
    let message = panic_message(leak_then_return_early);
    assert_reports_site(&message, "parked-thread", "leak_then_return_early");
}

#[leak_check(settle = "100ms")]
fn panics_while_leaking() {
    Parked::new().spawn_thread();
    panic!("the test's own assertion failed");
}

#[test]
fn a_panicking_body_keeps_its_own_panic() {
    let message = panic_message(panics_while_leaking);
    assert_eq!(message, "the test's own assertion failed");
}

#[leak_check]
#[test]
#[should_panic(expected = "expected failure")]
fn composes_with_should_panic() {
    panic!("expected failure");
}

fn leak_a_thread() {
    let parked = Parked::new();
    parked.spawn_thread();
    std::mem::forget(parked);
}

#[leak_check(settle = "100ms")]
fn leaky_ok() -> Result<(), String> {
    leak_a_thread();
    Ok(())
}

#[leak_check(settle = "100ms")]
fn leaky_err() -> Result<(), String> {
    leak_a_thread();
    Err("failed".into())
}

#[test]
fn results_are_checked_after_ok_and_keep_their_err() {
    let message = panic_message(|| drop(leaky_ok()));
    assert!(message.contains("1 thread outlived"), "{message}");
    assert_eq!(leaky_err(), Err("failed".to_owned()));
}

#[leak_check]
#[test]
fn a_clean_result_test_passes() -> Result<(), String> {
    leakcheck::thread::spawn(|| ())
        .join()
        .map_err(|_| "join failed")?;
    Ok(())
}

// Async tests -------------------------------------------------------------------

#[leak_check(settle = "100ms")]
#[ignore = "helper: run by async_leak_is_reported_before_the_runtime_shuts_down"]
async fn async_leaky_case() {
    leakcheck::spawn(std::future::pending::<()>()); // site:async-leak
}

#[test]
fn async_leak_is_reported_before_the_runtime_shuts_down() {
    let message = panic_message(async_leaky_case);
    assert_reports_site(&message, "async-leak", "async_leaky_case");
}

#[leak_check]
async fn async_clean_test_passes() {
    let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
    let worker = leakcheck::spawn(async move { rx.await.unwrap() });
    tx.send(1).unwrap();
    assert_eq!(worker.await.unwrap(), 1);
}

#[leak_check(settle = "100ms")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run by leak_check_takes_over_tokio_test"]
async fn multi_thread_leaky_case() {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::MultiThread);
    assert_eq!(tokio::runtime::Handle::current().metrics().num_workers(), 2);
    leakcheck::spawn(std::future::pending::<()>()); // site:multi-leak
}

#[test]
fn leak_check_takes_over_tokio_test() {
    let message = panic_message(multi_thread_leaky_case);
    assert_reports_site(&message, "multi-leak", "multi_thread_leaky_case");
}

#[leak_check(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_clean_test_passes() {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::MultiThread);
    leakcheck::spawn(tokio::time::sleep(Duration::from_millis(5)));
}

static PAUSED_TICKS: AtomicU64 = AtomicU64::new(0);

#[leak_check(start_paused = true, settle = "200ms")]
#[ignore = "helper: run by paused_time_is_not_advanced_by_the_check"]
async fn paused_leaky_interval() {
    leakcheck::spawn(async {
        let mut every = tokio::time::interval(Duration::from_millis(1));
        loop {
            every.tick().await;
            PAUSED_TICKS.fetch_add(1, Ordering::Relaxed);
        }
    });
}

#[test]
fn paused_time_is_not_advanced_by_the_check() {
    let message = panic_message(paused_leaky_interval);
    assert!(message.contains("1 task outlived"), "{message}");
    let ticks = PAUSED_TICKS.load(Ordering::Relaxed);
    assert!(
        ticks <= 2,
        "the paused clock ran {ticks} ticks during the check"
    );
}

#[leak_check]
#[tokio::test(start_paused = true)]
async fn paused_clean_test_passes() {
    let started = tokio::time::Instant::now();
    let sleeper = leakcheck::spawn(tokio::time::sleep(Duration::from_secs(3600)));
    sleeper.await.unwrap(); // auto-advanced: no real hour passes
    assert!(started.elapsed() >= Duration::from_secs(3600));
}

#[leak_check]
async fn an_async_result_test_passes() -> Result<(), std::io::Error> {
    leakcheck::spawn(async {}).await?;
    Ok(())
}

// Expansion hygiene -----------------------------------------------------------------

mod reexport {
    pub use ::leakcheck as checker;
}

#[leakcheck::leak_check(crate = crate::reexport::checker)]
#[test]
fn crate_argument_finds_a_reexport() {
    leakcheck::thread::spawn(|| ()).join().unwrap();
}

#[allow(dead_code, non_camel_case_types)]
mod shadowed {
    // Common names shadowed: the expansion must use absolute paths.
    struct Ok;
    struct Err;
    struct Some;
    struct None;
    struct Result;
    struct Option;
    struct Duration;
    struct test;
    mod tokio {}
    mod leakcheck {}
    mod core {}

    #[::leakcheck::leak_check(settle = "1s")]
    async fn async_test_with_shadowed_names() {}

    #[::leakcheck::leak_check(settle = "1s")]
    #[::core::prelude::v1::test]
    fn sync_test_with_shadowed_names() {}
}

mod no_prelude {
    #![no_implicit_prelude]

    #[::leakcheck::leak_check]
    async fn async_test_without_prelude() {}

    #[::leakcheck::leak_check]
    #[::core::prelude::v1::test]
    fn sync_test_without_prelude() {}
}

// A zero settle period checks once without waiting, as everywhere else.

#[leak_check(settle = "0s")]
#[test]
fn a_zero_settle_period_checks_once() {
    leakcheck::thread::spawn(|| ()).join().unwrap();
}

#[leak_check(settle = "0ms")]
#[test]
#[ignore = "helper: run by a_zero_settle_period_still_reports_a_survivor"]
fn zero_settle_leaky_case() {
    let parked = Parked::new();
    parked.spawn_thread();
    std::mem::forget(parked);
}

#[test]
fn a_zero_settle_period_still_reports_a_survivor() {
    let message = panic_message(zero_settle_leaky_case);
    assert!(
        message.contains("outlived test `zero_settle_leaky_case`"),
        "{message}"
    );
}

// Tests that a `macro_rules!` macro writes (a matrix of cases, say): their
// names carry the macro's hygiene, which the expansion's own names must not
// take on. Two forms: the name passed in, and the name written in the macro.

static MACRO_PARKED: Mutex<Vec<std::sync::mpsc::Sender<()>>> = Mutex::new(Vec::new());

macro_rules! checked_tests {
    ($async_leaky:ident, $sync_leaky:ident, $async_clean:ident, $sync_clean:ident) => {
        #[leak_check(settle = "100ms")]
        #[tokio::test]
        #[ignore = "helper: run by tests_a_macro_writes_are_checked"]
        async fn $async_leaky() {
            leakcheck::spawn(std::future::pending::<()>());
        }

        #[leak_check(settle = "100ms")]
        #[test]
        #[ignore = "helper: run by tests_a_macro_writes_are_checked"]
        fn $sync_leaky() {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            MACRO_PARKED.lock().unwrap().push(tx);
            leakcheck::thread::spawn(move || rx.recv().ok());
        }

        #[leak_check]
        #[tokio::test]
        async fn $async_clean() {
            leakcheck::spawn(async {}).await.unwrap();
        }

        #[leak_check]
        #[test]
        fn $sync_clean() {
            leakcheck::thread::spawn(|| ()).join().unwrap();
        }
    };
}

// Rust places code a macro writes at the macro's call: so do spawn sites.
checked_tests!(
    // site:macro-call
    macro_async_leaky_case,
    macro_sync_leaky_case,
    a_clean_async_test_a_macro_writes_passes,
    a_clean_sync_test_a_macro_writes_passes
);

macro_rules! named_in_the_macro {
    () => {
        #[leak_check]
        #[tokio::test]
        async fn a_clean_test_named_in_a_macro_passes() {
            leakcheck::spawn(async {}).await.unwrap();
        }
    };
}

named_in_the_macro!();

#[test]
fn tests_a_macro_writes_are_checked() {
    let message = panic_message(macro_async_leaky_case);
    assert_reports_site(&message, "macro-call", "macro_async_leaky_case");
    let message = panic_message(macro_sync_leaky_case);
    MACRO_PARKED.lock().unwrap().clear(); // releases the thread
    assert_reports_site(&message, "macro-call", "macro_sync_leaky_case");
}
