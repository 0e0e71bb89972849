//! Under cargo-nextest each test runs in its own process, so a per-test
//! check can also list OS threads nobody tracked (Linux). Under
//! `cargo test`, where other tests' threads run alongside, it must not.
//! `.ci/run` runs this file both ways.
//!
//! The `child_*` tests are ignored in a normal run: the tests above them
//! run this same binary on one of them, with the environment nextest gives
//! a test's process (see `run_child`), and judge its exit status and
//! stderr. A child's thread that it never names keeps the kernel name it
//! inherited from the test's thread, which is what used to hide it; each
//! verdict is also taken with every core busy (`CpuHog`), where a named
//! thread may not have run (and named itself) by the time the check reads.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use common::{assert_snapshot, redact, replace_numbers, CLEAN_SETTLE, LEAKY_SETTLE};

#[test]
fn a_plain_thread_is_listed_only_when_the_test_runs_alone() {
    let (stop, parked) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel::<()>();
    let plain = std::thread::Builder::new()
        .name("untracked-poll".into())
        .spawn(move || {
            started.send(()).unwrap();
            parked.recv().ok()
        })
        .unwrap();
    is_started.recv().unwrap();
    let outcome = leakcheck::Options::new()
        .settle(Duration::from_millis(100))
        .find();
    stop.send(()).unwrap();
    plain.join().unwrap();
    let alone = std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test");
    if alone && cfg!(target_os = "linux") {
        let report = outcome.expect_err("the plain thread should be listed");
        assert_eq!(report.stray_threads(), ["untracked-poll"], "{report}");
        assert!(report.leaks().is_empty());
    } else {
        assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

/// How a child run ended.
struct Verdict {
    passed: bool,
    stderr: String,
}

/// Runs the ignored test `test` of this binary alone, in a process with
/// the environment cargo-nextest sets for it (see docs: FACTS, "cargo-nextest
/// sets"); fails if it does not end within two minutes.
fn run_child(test: &str) -> Verdict {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command.args([
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NEXTEST") {
            command.env_remove(name);
        }
    }
    let binary = "leakcheck::nextest_threads";
    command
        .env("NEXTEST_EXECUTION_MODE", "process-per-test")
        .env("NEXTEST_RUN_ID", "00000000-0000-0000-0000-000000000000")
        .env("NEXTEST_BINARY_ID", binary)
        .env("NEXTEST_TEST_NAME", test)
        .env("NEXTEST_ATTEMPT", "1")
        .env("NEXTEST_TOTAL_ATTEMPTS", "1")
        .env(
            "NEXTEST_ATTEMPT_ID",
            format!("00000000-0000-0000-0000-000000000000:{binary}${test}"),
        )
        .env("RUST_BACKTRACE", "0")
        .env_remove("LEAKCHECK_SETTLE");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(command.output().expect("running the child")));
    let output = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("child `{test}` did not end"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("running 1 test"),
        "child `{test}` did not run:\n{stdout}"
    );
    Verdict {
        passed: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Busy threads, two per core, spinning until dropped: a child started
/// meanwhile competes for the CPU with them.
struct CpuHog {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuHog {
    fn start() -> CpuHog {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..2 * cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        CpuHog { stop, threads }
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
    }
}

/// Runs `test` once on an idle machine and `hogged` times with every core
/// busy; every run must end the same way. Returns the first run's stderr.
fn same_verdict(test: &str, passes: bool, hogged: usize) -> String {
    let first = run_child(test);
    let check = |verdict: &Verdict, when: &str| {
        assert_eq!(
            verdict.passed,
            passes,
            "child `{test}` {when}: expected it to {}:\n{}",
            if passes { "pass" } else { "fail" },
            verdict.stderr
        );
    };
    check(&first, "idle");
    let hog = CpuHog::start();
    for run in 0..hogged {
        check(&run_child(test), &format!("under a CPU hog, run {run}"));
    }
    drop(hog);
    first.stderr
}

/// The report a failing child printed: its panic message, from the first
/// `leakcheck:` line up to the blank line libtest's hint follows.
fn child_report(stderr: &str) -> String {
    let start = stderr
        .find("leakcheck: ")
        .unwrap_or_else(|| panic!("no report:\n{stderr}"));
    let report = &stderr[start..];
    let end = report
        .find("\nnote: run with `RUST_BACKTRACE")
        .unwrap_or(report.len());
    report[..end].trim_end().to_owned()
}

/// Redacts what changes between runs, thread ids too.
fn thread_redactions(report: &str) -> String {
    replace_numbers(&redact(report), "(tid ", "(tid [tid]")
}

/// Parks the calling thread's new plain thread on a channel that is never
/// closed: the thread outlives the test.
fn leak_plain_thread(builder: std::thread::Builder) {
    let (keep, parked) = mpsc::channel::<()>();
    builder
        .spawn(move || parked.recv().ok())
        .expect("spawning a plain thread");
    std::mem::forget(keep);
}

/// Starts a plain unnamed thread, waits until it is parked, and hands back
/// what stops it.
fn start_unnamed_thread() -> impl FnOnce() {
    let (stop, parked) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        started.send(()).unwrap();
        parked.recv().ok()
    });
    is_started.recv().unwrap();
    move || {
        drop(stop);
        thread.join().unwrap();
    }
}

// ---- An unnamed std thread: the per-test check, `verify_none` ----

#[test]
#[ignore = "a child: run by `an_unnamed_thread_is_caught_by_verify_none`"]
fn child_leaks_an_unnamed_thread() {
    let stop = start_unnamed_thread();
    leakcheck::Options::new().settle(LEAKY_SETTLE).verify_none();
    stop();
}

#[test]
#[ignore = "a child: run by `an_unnamed_thread_is_caught_by_verify_none`"]
fn child_stops_its_unnamed_thread() {
    let stop = start_unnamed_thread();
    stop();
    leakcheck::Options::new().settle(CLEAN_SETTLE).verify_none();
}

#[test]
fn an_unnamed_thread_is_caught_by_verify_none() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let stderr = same_verdict("child_leaks_an_unnamed_thread", false, 3);
    let report = thread_redactions(&child_report(&stderr));
    assert_snapshot("nextest_unnamed_thread", &report, false);
    same_verdict("child_stops_its_unnamed_thread", true, 3);
}

// ---- The same through `#[leak_check]`, sync and on a multi-thread runtime ----

#[leakcheck::leak_check(settle = "200ms")]
#[test]
#[ignore = "a child: run by `an_unnamed_thread_is_caught_by_the_attribute`"]
fn child_attribute_leaks_an_unnamed_thread() {
    leak_plain_thread(std::thread::Builder::new());
}

#[leakcheck::leak_check(settle = "200ms", flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child: run by `an_unnamed_thread_is_caught_by_the_attribute`"]
async fn child_async_attribute_leaks_an_unnamed_thread() {
    leakcheck::spawn(async {}).await.unwrap();
    leak_plain_thread(std::thread::Builder::new());
}

/// Its runtime's default-named workers are alive at the check, and are not
/// reported.
#[leakcheck::leak_check(settle = "20s", flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child: run by `an_unnamed_thread_is_caught_by_the_attribute`"]
async fn child_async_attribute_stops_its_unnamed_thread() {
    leakcheck::spawn(async {}).await.unwrap();
    let stop = start_unnamed_thread();
    stop();
}

#[test]
fn an_unnamed_thread_is_caught_by_the_attribute() {
    if !cfg!(target_os = "linux") {
        return;
    }
    for leaky in [
        "child_attribute_leaks_an_unnamed_thread",
        "child_async_attribute_leaks_an_unnamed_thread",
    ] {
        let stderr = same_verdict(leaky, false, 2);
        let report = child_report(&stderr);
        assert!(report.contains("1 thread outlived test `"), "{report}");
        assert!(
            report.contains("thread (unnamed; kernel name \"child_attribute\" inherited")
                || report.contains("thread (unnamed; kernel name \"child_async_att\" inherited"),
            "{report}"
        );
        assert!(!report.contains("tokio-rt-worker"), "{report}");
    }
    same_verdict("child_async_attribute_stops_its_unnamed_thread", true, 2);
}

// ---- Named threads, checked at once: some may not have run yet ----

const NAMED: usize = 8;

#[test]
#[ignore = "a child: run by `named_threads_are_caught_whether_or_not_they_have_run`"]
fn child_leaks_named_threads_at_once() {
    for i in 0..NAMED {
        leak_plain_thread(std::thread::Builder::new().name(format!("named-leak-{i}")));
    }
    // No waiting for them to start: a thread that has not run yet still
    // carries this test's kernel name.
    leakcheck::Options::new().settle(LEAKY_SETTLE).verify_none();
}

#[test]
fn named_threads_are_caught_whether_or_not_they_have_run() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let stderr = same_verdict("child_leaks_named_threads_at_once", false, 5);
    let report = child_report(&stderr);
    assert!(
        report.contains(&format!("{NAMED} threads outlived test `")),
        "{report}"
    );
}

// ---- A `static` runtime with its own thread names ----

/// A process-lifetime runtime, as a library keeps one, with named workers.
static DB_POOL: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("db-pool")
        .build()
        .expect("a runtime")
});

/// Uses the static runtime, so its workers are alive at the check.
fn use_db_pool() {
    DB_POOL
        .block_on(DB_POOL.spawn(async { 2 + 2 }))
        .expect("the query");
}

#[test]
#[ignore = "a child: run by `a_static_runtime_s_named_workers_are_forgiven_by_name`"]
fn child_static_runtime_forgiven() {
    use_db_pool();
    leakcheck::Options::new()
        .settle(CLEAN_SETTLE)
        .ignore_thread_name("db-pool")
        .verify_none();
}

#[test]
#[ignore = "a child: run by `a_static_runtime_s_named_workers_are_forgiven_by_name`"]
fn child_static_runtime_unforgiven() {
    use_db_pool();
    leakcheck::Options::new().settle(LEAKY_SETTLE).verify_none();
}

#[test]
fn a_static_runtime_s_named_workers_are_forgiven_by_name() {
    if !cfg!(target_os = "linux") {
        return;
    }
    same_verdict("child_static_runtime_forgiven", true, 2);
    let stderr = same_verdict("child_static_runtime_unforgiven", false, 2);
    let report = child_report(&stderr);
    assert!(report.contains("2 threads outlived test `"), "{report}");
    assert_eq!(
        report.matches("thread \"db-pool\" (tid ").count(),
        2,
        "{report}"
    );
}

// ---- The rule itself, in this process ----

#[test]
fn ignore_thread_name_forgives_tracked_threads_by_prefix_only() {
    let exporter = common::Parked::start("exporter-metrics");
    let options = leakcheck::Options::new().settle(Duration::ZERO);
    let report = options
        .clone()
        .ignore_thread_name("metrics")
        .find()
        .expect_err("only a prefix matches");
    assert_eq!(report.leaks().len(), 1, "{report}");
    assert_eq!(report.leaks()[0].name(), Some("exporter-metrics"));
    options.ignore_thread_name("exporter").verify_none();
    exporter.end();
}

// ---- A check from inside a plain task: libtest's thread never made a scope ----

/// Runs a check inside a plain tokio task (the process scope), from a test
/// whose own thread never calls leakcheck: libtest's thread must still not
/// be taken for a stray one, and a thread it started must be.
fn check_from_a_plain_task(settle: Duration) -> Result<(), leakcheck::Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    runtime.block_on(async move {
        tokio::spawn(async move { leakcheck::Options::new().settle(settle).find_async().await })
            .await
            .unwrap()
    })
}

#[test]
#[ignore = "a child: run by `a_check_inside_a_task_tells_the_test_thread_from_its_children`"]
fn child_task_check_leaks_an_unnamed_thread() {
    let stop = start_unnamed_thread();
    let outcome = check_from_a_plain_task(LEAKY_SETTLE);
    stop();
    if let Err(report) = outcome {
        panic!("{report}");
    }
}

#[test]
#[ignore = "a child: run by `a_check_inside_a_task_tells_the_test_thread_from_its_children`"]
fn child_task_check_clean() {
    if let Err(report) = check_from_a_plain_task(CLEAN_SETTLE) {
        panic!("{report}");
    }
}

#[test]
fn a_check_inside_a_task_tells_the_test_thread_from_its_children() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let stderr = same_verdict("child_task_check_leaks_an_unnamed_thread", false, 2);
    let report = child_report(&stderr);
    assert_eq!(report.matches("\n  thread ").count(), 1, "{report}");
    assert!(report.contains("inherited from its creator"), "{report}");
    same_verdict("child_task_check_clean", true, 2);
}
