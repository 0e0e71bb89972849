//! The whole-binary check: `verify_test_main!` in libtest targets and
//! `verify_test_main` in `harness = false` targets.
//!
//! The at-exit hook only shows itself in a process that exits, so the real
//! proof is end to end: the fixture crate under `process-tests/fixture` has a leaky
//! and a clean target of each form, and these tests run them with
//! `cargo test` (and `cargo nextest run`) and read the exit status and
//! stderr. The spawn sites the reports must name are marked with `// site:`
//! in `process-tests/fixture/src/lib.rs`.

// The helpers of leakcheck's own integration tests.
#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::sync::OnceLock;

use common::site_line;

const FIXTURE_LIB: &str = include_str!("../fixture/src/lib.rs");

fn fixture_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture/Cargo.toml")
}

/// One target dir for every fixture run, inside this workspace's own, so
/// the fixture builds once and `cargo clean` removes it.
fn fixture_target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixture")
}

/// A cargo command on the fixture, with a short settle period and without
/// the variables of the test runner that started us.
fn cargo(args: &[&str]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(args)
        .arg("--manifest-path")
        .arg(fixture_manifest())
        .arg("--target-dir")
        .arg(fixture_target_dir())
        .env("LEAKCHECK_SETTLE", "100ms")
        .env("CARGO_TERM_COLOR", "never");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NEXTEST") {
            command.env_remove(name);
        }
    }
    command
}

/// Builds every fixture target once per process; the runs after it only
/// check that the build is fresh.
fn build_fixture() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = cargo(&["test", "--no-run"])
            .output()
            .expect("running cargo");
        assert!(
            output.status.success(),
            "building the fixture failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// Runs `cargo <args>` on the built fixture; returns its output and stderr.
fn run(args: &[&str]) -> (Output, String) {
    build_fixture();
    let output = cargo(args).output().expect("running cargo");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// The report line for the leak spawned at `site:<marker>`.
fn report_line<'a>(stderr: &'a str, marker: &str) -> &'a str {
    let site = format!("src/lib.rs:{}:", site_line(FIXTURE_LIB, marker));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&site)).collect();
    assert_eq!(
        lines.len(),
        1,
        "one report line should name {site}:\n{stderr}"
    );
    lines[0]
}

/// Runs a leaky target with `cargo test`: it must fail, and its report must
/// name both leaks, the thread as `thread_owner`'s and the task as no test's.
fn assert_fails_with_report(target: &str, thread_owner: &str) {
    let (output, stderr) = run(&["test", "--test", target]);
    assert!(!output.status.success(), "passed despite leaks:\n{stderr}");
    assert!(
        stderr.contains("leakcheck: 1 task and 1 thread outlived the test binary"),
        "{stderr}"
    );
    let thread = report_line(&stderr, "listener");
    assert!(thread.contains("thread \"listener\""), "{thread}");
    assert!(thread.ends_with(&format!("({thread_owner})")), "{thread}");
    let task = report_line(&stderr, "flusher");
    assert!(task.trim_start().starts_with("task "), "{task}");
    assert!(task.ends_with("(no test)"), "{task}");
}

/// Runs a clean target with `cargo test`: it must pass without a report.
fn assert_passes(target: &str) {
    let (output, stderr) = run(&["test", "--test", target]);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("outlived"), "{stderr}");
}

#[test]
fn a_libtest_target_that_leaks_fails_cargo_test_with_the_report() {
    assert_fails_with_report("libtest_leaky", "test `leaves_the_listener_running`");
}

#[test]
fn a_libtest_target_that_cleans_up_passes() {
    assert_passes("libtest_clean");
}

/// A thread started with plain `std::thread` is invisible to the tracking
/// spawners; on Linux the at-exit check finds it in `/proc` and names it.
/// (The clean side is `libtest_clean`, which stops such a thread.)
#[test]
fn a_plain_std_thread_left_running_fails_the_binary_on_linux() {
    let (output, stderr) = run(&["test", "--test", "libtest_plain_thread"]);
    if cfg!(target_os = "linux") {
        assert!(!output.status.success(), "passed despite a leak:\n{stderr}");
        assert!(
            stderr.contains("leakcheck: 1 thread outlived the test binary"),
            "{stderr}"
        );
        assert!(stderr.contains("thread \"plain-poller\" (tid "), "{stderr}");
        assert!(
            stderr.contains("not started through leakcheck::thread"),
            "{stderr}"
        );
    } else {
        assert!(output.status.success(), "{stderr}");
    }
}

#[test]
fn a_harness_false_target_that_leaks_fails_cargo_test_with_the_report() {
    // The runner's "tests" run on the main thread.
    assert_fails_with_report("custom_leaky", "thread `main`");
}

#[test]
fn a_harness_false_target_that_cleans_up_passes() {
    assert_passes("custom_clean");
}

/// nextest runs each test in a process of its own, so the hook checks after
/// every test and each failing test shows its own leak.
#[test]
fn under_nextest_each_leaky_test_fails_with_its_own_report() {
    if !cargo(&["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("cargo-nextest is not installed: skipping the nextest run");
        return;
    }
    let (output, stderr) = run(&[
        "nextest",
        "run",
        "--no-fail-fast",
        "--test",
        "libtest_leaky",
    ]);
    let out = String::from_utf8_lossy(&output.stdout);
    let both = format!("{out}{stderr}");
    assert!(!output.status.success(), "passed despite leaks:\n{both}");
    assert!(both.contains("1 thread outlived the test binary"), "{both}");
    assert!(both.contains("1 task outlived the test binary"), "{both}");
    let thread = report_line(&both, "listener");
    assert!(
        thread.ends_with("(test `leaves_the_listener_running`)"),
        "{thread}"
    );
    assert!(report_line(&both, "flusher").ends_with("(no test)"));
}

/// Serializes the tests that run the whole-binary check in this process:
/// each one's threads would be the other's leak.
static IN_PROCESS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The function form in this process: a failed run's code passes through
/// unchecked, a passing run that leaked gets 101, a clean one keeps its code.
#[test]
fn verify_test_main_turns_a_leaky_pass_into_101_and_keeps_other_codes() {
    let _alone = IN_PROCESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let listener = leakcheck::thread::spawn(move || rx.recv());

    assert_eq!(leakcheck::verify_test_main(|| 3), 3);
    assert_eq!(
        leakcheck::verify_test_main(|| ExitCode::FAILURE),
        ExitCode::FAILURE
    );
    assert_eq!(leakcheck::verify_test_main(|| 0), 101);
    assert_eq!(
        leakcheck::verify_test_main(|| ExitCode::SUCCESS),
        ExitCode::from(101)
    );

    drop(tx);
    listener.join().unwrap().unwrap_err();
    assert_eq!(leakcheck::verify_test_main(|| 0), 0);
    assert_eq!(
        leakcheck::verify_test_main(|| ExitCode::SUCCESS),
        ExitCode::SUCCESS
    );
}

/// Runs one test of the fixture's `edges` target; fails if the run does not
/// end within two minutes (a hang at exit would otherwise hang this test).
fn run_edge(test: &str) -> (bool, String) {
    run_one("edges", test, Runner::CargoTest)
}

/// Who runs a single fixture test.
#[derive(Clone, Copy, Debug)]
enum Runner {
    /// `cargo test`, as is.
    CargoTest,
    /// `cargo test` with the environment cargo-nextest gives a test's own
    /// process (see docs: FACTS, "cargo-nextest sets").
    NextestLike,
}

/// Runs test `test` of fixture target `target` alone; returns whether it
/// passed and its stdout and stderr. Fails if the run does not end within
/// two minutes, if something besides the test panicked, or if leakcheck did.
fn run_one(target: &str, test: &str, runner: Runner) -> (bool, String) {
    build_fixture();
    let mut command = cargo(&["test", "--test", target]);
    command.args(["--", "--exact", test]);
    if let Runner::NextestLike = runner {
        let binary = format!("leakcheck-fixture::{target}");
        let run = "00000000-0000-0000-0000-000000000000";
        command
            .env("NEXTEST_EXECUTION_MODE", "process-per-test")
            .env("NEXTEST_RUN_ID", run)
            .env("NEXTEST_BINARY_ID", &binary)
            .env("NEXTEST_TEST_NAME", test)
            .env("NEXTEST_ATTEMPT", "1")
            .env("NEXTEST_TOTAL_ATTEMPTS", "1")
            .env("NEXTEST_ATTEMPT_ID", format!("{run}:{binary}${test}"));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(command.output().expect("running cargo")));
    let output = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("`{test}` did not end: the at-exit check hung"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("running 1 test"),
        "`{test}` did not run ({runner:?}):\n{text}"
    );
    assert!(
        !text.contains("panicked at") || text.contains("the test itself failed"),
        "a panic besides the test's own:\n{text}"
    );
    assert!(
        !text.contains("leakcheck/src"),
        "a panic in leakcheck:\n{text}"
    );
    (output.status.success(), text)
}

/// A plain unnamed thread keeps the kernel name it inherited from the
/// test's thread; the at-exit check catches it under either runner, shows
/// the name as inherited when it knows the test's thread, and names the
/// test only when the process ran that one test.
#[test]
fn an_unnamed_plain_thread_fails_the_binary_at_exit_on_linux() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let inherited = |name: &str| {
        format!("thread (unnamed; kernel name \"{name}\" inherited from its creator) (tid ")
    };
    let (passed, text) = run_one(
        "libtest_threads",
        "checks_then_leaves_an_unnamed_thread",
        Runner::CargoTest,
    );
    assert!(!passed, "passed despite a leak:\n{text}");
    assert!(text.contains("1 thread outlived the test binary"), "{text}");
    assert!(text.contains(&inherited("checks_then_lea")), "{text}");
    assert!(
        text.contains("(test unknown: started outside leakcheck)"),
        "{text}"
    );

    let (passed, text) = run_one(
        "libtest_threads",
        "leaves_an_unnamed_thread",
        Runner::CargoTest,
    );
    assert!(!passed, "passed despite a leak:\n{text}");
    assert!(text.contains("1 thread outlived the test binary"), "{text}");

    let (passed, text) = run_one(
        "libtest_threads",
        "leaves_an_unnamed_thread",
        Runner::NextestLike,
    );
    assert!(!passed, "passed despite a leak:\n{text}");
    assert!(text.contains("1 thread outlived the test binary"), "{text}");
    assert!(text.contains(&inherited("leaves_an_unnam")), "{text}");
    assert!(text.contains("(test `leaves_an_unnamed_thread`)"), "{text}");

    for runner in [Runner::CargoTest, Runner::NextestLike] {
        let (passed, text) = run_one("libtest_threads", "stops_its_unnamed_thread", runner);
        assert!(passed, "{runner:?}:\n{text}");
        assert!(!text.contains("outlived"), "{runner:?}:\n{text}");
    }
}

/// `verify_test_main!(options)` forgives the `exporter` task and the
/// `db-pool` runtime's named workers, under either runner, and still
/// reports what it was not told to forgive.
#[test]
fn options_given_to_verify_test_main_forgive_what_they_say_and_no_more() {
    for runner in [Runner::CargoTest, Runner::NextestLike] {
        let (passed, text) = run_one(
            "libtest_options",
            "leaves_only_forgiven_things_running",
            runner,
        );
        assert!(passed, "{runner:?}:\n{text}");
        assert!(!text.contains("outlived"), "{runner:?}:\n{text}");

        let (passed, text) = run_one("libtest_options", "leaves_an_unforgiven_thread_too", runner);
        assert!(!passed, "{runner:?}: passed despite a leak:\n{text}");
        assert!(
            text.contains("leakcheck: 1 thread outlived the test binary"),
            "{runner:?}:\n{text}"
        );
        report_line(&text, "listener");
        assert!(!text.contains("exporter"), "{runner:?}:\n{text}");
        assert!(!text.contains("db-pool"), "{runner:?}:\n{text}");
    }
}

/// `Options::verify_test_main` checks with what its options forgive.
#[test]
fn options_verify_test_main_forgives_what_its_options_say() {
    let _alone = IN_PROCESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let listener = leakcheck::thread::Builder::new()
        .name("listener-options".into())
        .spawn(move || rx.recv())
        .unwrap();
    let forgiving = leakcheck::Options::new().ignore_thread_name("listener-options");
    assert_eq!(forgiving.verify_test_main(|| 0), 0);
    assert_eq!(
        forgiving.verify_test_main(|| ExitCode::SUCCESS),
        ExitCode::SUCCESS
    );
    let strict = leakcheck::Options::new().settle(std::time::Duration::from_millis(50));
    assert_eq!(strict.verify_test_main(|| 0), 101);
    drop(tx);
    listener.join().unwrap().unwrap_err();
}

#[test]
fn process_exit_inside_a_test_still_runs_the_check() {
    let (passed, text) = run_edge("exits_while_a_thread_leaks");
    assert!(!passed, "exit(0) hid the leak:\n{text}");
    assert!(text.contains("1 thread outlived the test binary"), "{text}");
    report_line(&text, "listener");

    let (passed, text) = run_edge("exits_after_cleaning_up");
    assert!(passed, "{text}");
    assert!(!text.contains("outlived"), "{text}");
}

#[test]
fn a_failing_test_binary_is_checked_without_hanging_or_panicking() {
    let (passed, text) = run_edge("panics_while_a_thread_leaks");
    assert!(!passed, "{text}");
    assert!(text.contains("the test itself failed"), "{text}");
    assert!(text.contains("1 thread outlived the test binary"), "{text}");

    let (passed, text) = run_edge("panics_after_cleaning_up");
    assert!(!passed, "the test's own failure must stay:\n{text}");
    assert!(text.contains("the test itself failed"), "{text}");
    assert!(!text.contains("outlived"), "{text}");
}

#[test]
fn a_spawn_from_a_thread_local_destructor_belongs_to_no_test() {
    // The test's own check passes (asserted inside); the whole-binary check
    // reports the thread without blaming the test.
    let (passed, text) = run_edge("a_thread_local_destructor_leaks");
    assert!(!passed, "{text}");
    let line = report_line(&text, "tls");
    assert!(!line.contains("a_thread_local_destructor_leaks"), "{line}");

    let (passed, text) = run_edge("a_thread_local_destructor_spawns_a_thread_that_ends");
    assert!(passed, "{text}");
    assert!(!text.contains("outlived"), "{text}");
}
