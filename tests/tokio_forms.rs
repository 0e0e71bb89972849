//! `#[leak_check]` over every form of tokio's test attributes that tokio
//! 1.5x accepts: each argument does what it does with tokio alone, and each
//! form is checked. Leaky cases are `#[ignore]`d helpers that the real tests
//! run inside `catch_unwind`, so the report's spawn site and the panic's
//! location can be checked; each has a clean twin that passes.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use leakcheck::leak_check;
use tokio::runtime::{Handle, RuntimeFlavor};

const SOURCE: &str = include_str!("tokio_forms.rs");

/// Runs `case`, which must fail its check, and returns the report.
fn failure(case: fn()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(case)).expect_err("the case should fail its check");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(message.contains("outlived test"), "{message}");
    message
}

fn assert_site(message: &str, marker: &str) {
    let line = common::site_line(SOURCE, marker);
    assert!(
        message.contains(&format!("tests/tokio_forms.rs:{line}:")),
        "expected the report to name line {line}:\n{message}"
    );
}

// flavor = "local": tokio's LocalRuntime, where spawn_local needs no LocalSet.

#[leak_check(settle = "50ms")]
#[tokio::test(flavor = "local")]
#[ignore = "helper: run by local_flavor"]
async fn local_leaky() {
    leakcheck::spawn_local(std::future::pending::<()>()); // site:local
}

#[leak_check]
#[tokio::test(flavor = "local")]
async fn local_clean() {
    let not_send = std::rc::Rc::new(1);
    let task = tokio::task::spawn_local(async move { *not_send + 1 });
    assert_eq!(task.await.unwrap(), 2);
}

#[test]
fn local_flavor() {
    assert_site(&failure(local_leaky), "local");
}

// name = "...": the runtime's name, as tokio sets it.

#[leak_check]
#[tokio::test(name = "forms-runtime", flavor = "multi_thread", worker_threads = 1)]
async fn named_runtime() {
    assert_eq!(Handle::current().name(), Some("forms-runtime"));
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
    leakcheck::spawn(async {}).await.unwrap();
}

// crate = "...": tokio's string form of the path to tokio.

mod renamed {
    pub use ::tokio as runtime_crate;
}

#[leak_check]
#[tokio::test(crate = "renamed::runtime_crate")]
async fn tokio_crate_path() {
    leakcheck::spawn(async {}).await.unwrap();
}

// unhandled_panic: a builder method only under tokio_unstable, like tokio.

#[cfg(tokio_unstable)]
#[leak_check]
#[tokio::test(unhandled_panic = "shutdown_runtime")]
#[should_panic]
async fn unhandled_panic_shuts_the_runtime_down() {
    let _ = tokio::spawn(async { panic!("boom") }).await;
}

// #[tokio::main] with #[test], in either order, under #[leak_check].

#[leak_check(settle = "50ms")]
#[tokio::main]
#[test]
#[ignore = "helper: run by tokio_main_forms"]
async fn main_then_test_leaky() {
    leakcheck::spawn(std::future::pending::<()>()); // site:main-test
}

#[leak_check(settle = "50ms")]
#[test]
#[tokio::main(flavor = "current_thread")]
#[ignore = "helper: run by tokio_main_forms"]
async fn test_then_main_leaky() {
    leakcheck::spawn(std::future::pending::<()>()); // site:test-main
}

#[leak_check]
#[tokio::main]
#[test]
async fn main_then_test_clean() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
    leakcheck::spawn(async {}).await.unwrap();
}

#[test]
fn tokio_main_forms() {
    assert_site(&failure(main_then_test_leaky), "main-test");
    assert_site(&failure(test_then_main_leaky), "test-main");
}

// Plain tokio::spawn on the runtime leakcheck builds: counted on stable,
// listed with its site under tokio_unstable.

#[leak_check(settle = "50ms")]
#[tokio::test(flavor = "local")]
#[ignore = "helper: run by plain_spawns_are_checked_in_every_form"]
async fn local_plain_leaky() {
    tokio::spawn(std::future::pending::<()>()); // site:local-plain
}

#[leak_check(settle = "50ms")]
#[tokio::main]
#[test]
#[ignore = "helper: run by plain_spawns_are_checked_in_every_form"]
async fn main_plain_leaky() {
    tokio::spawn(std::future::pending::<()>()); // site:main-plain
}

#[test]
fn plain_spawns_are_checked_in_every_form() {
    for (case, marker) in [
        (local_plain_leaky as fn(), "local-plain"),
        (main_plain_leaky, "main-plain"),
    ] {
        let message = failure(case);
        if cfg!(tokio_unstable) {
            assert_site(&message, marker);
        } else {
            assert!(
                message.contains("1 task spawned outside leakcheck"),
                "{message}"
            );
        }
    }
}

// A failing check panics at the test, not inside leakcheck.

#[leak_check(settle = "50ms")]
#[tokio::test]
#[ignore = "helper: run by the panic-location child-process test"]
async fn panic_location_async() {
    leakcheck::spawn(std::future::pending::<()>());
}

#[tokio::test]
#[ignore = "helper: run by the panic-location child-process test"]
async fn panic_location_by_hand() {
    leakcheck::spawn(std::future::pending::<()>());
    leakcheck::Options::new()
        .settle(std::time::Duration::from_millis(50))
        .verify_none_async() // site:by-hand-check
        .await;
}

/// Runs one ignored helper of this binary in a child process, the way
/// cargo test (`nextest = false`) or cargo-nextest runs it, and returns
/// what it printed.
fn run_child(test: &str, nextest: bool) -> String {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test, "--ignored", "--nocapture"]);
    command.env_remove("NEXTEST_EXECUTION_MODE");
    if nextest {
        command
            .env("NEXTEST_EXECUTION_MODE", "process-per-test")
            .env("NEXTEST_TEST_NAME", test)
            .env("NEXTEST_ATTEMPT_ID", format!("run:tokio_forms${test}"));
    }
    let out = command.output().unwrap();
    assert!(!out.status.success(), "{test} should fail");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn a_failing_check_panics_at_the_test() {
    let fn_line = |name: &str| {
        SOURCE
            .lines()
            .position(|l| l.starts_with(&format!("async fn {name}()")))
            .unwrap()
            + 1
    };
    let cases = [
        ("panic_location_async", fn_line("panic_location_async")),
        (
            "panic_location_by_hand",
            common::site_line(SOURCE, "by-hand-check") as usize,
        ),
    ];
    for nextest in [false, true] {
        for (test, line) in cases {
            let out = run_child(test, nextest);
            assert!(
                out.contains(&format!("panicked at tests/tokio_forms.rs:{line}:")),
                "{test} (nextest: {nextest}) should fail at line {line}:\n{out}"
            );
            assert!(!out.contains("src/check/"), "{out}");
        }
    }
}
