//! `LEAKCHECK_SETTLE`: each case re-runs this test binary with the variable
//! set, because the environment is shared by every test in a process.

use std::process::Command;

/// Runs the ignored test `helper` in a child process with the variable set.
fn run_helper(helper: &str, value: &str) -> (bool, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            helper,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LEAKCHECK_SETTLE", value)
        .output()
        .expect("re-running the test binary");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
#[ignore = "run by the other tests with LEAKCHECK_SETTLE set"]
fn helper_leaky_check() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let waiter = leakcheck::thread::spawn(move || rx.recv());
    let started = std::time::Instant::now();
    let outcome = leakcheck::find();
    println!("waited_ms={}", started.elapsed().as_millis());
    assert!(outcome.is_err(), "the thread was still waiting");
    drop(tx);
    waiter.join().unwrap().unwrap_err();
}

#[test]
#[ignore = "run by the other tests with LEAKCHECK_SETTLE set"]
fn helper_clean_check() {
    leakcheck::thread::spawn(|| ()).join().unwrap();
    leakcheck::verify_none();
}

#[test]
fn invalid_values_fail_with_the_variable_and_the_accepted_forms() {
    for bad in [
        "",
        "   ",
        "abc",
        "-5s",
        "-1ms",
        "+5s",
        "1.5s",
        "250",
        "5 s",
        "\u{ff11}s",
        "99999999999999999999999s",
        "18446744073709551616ms",
    ] {
        let (passed, output) = run_helper("helper_leaky_check", bad);
        assert!(!passed, "LEAKCHECK_SETTLE={bad:?} should fail:\n{output}");
        assert!(
            output.contains(&format!("leakcheck: LEAKCHECK_SETTLE={bad:?}")),
            "{bad:?}:\n{output}"
        );
        assert!(output.contains("\"250ms\" or \"2s\""), "{bad:?}:\n{output}");
    }
}

#[test]
fn a_valid_value_sets_the_default_settle_period() {
    let (passed, output) = run_helper("helper_leaky_check", "0ms");
    assert!(passed, "{output}");
    let waited: u64 = output
        .split("waited_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no waited_ms in\n{output}"));
    // The default is 1s; "0ms" checks once without waiting.
    assert!(waited < 900, "waited {waited}ms with LEAKCHECK_SETTLE=0ms");
}

#[test]
fn huge_values_are_accepted_without_overflow() {
    // Far beyond any Instant: the deadline can't be computed, so the check
    // waits without one, and a clean check still returns at once.
    for huge in [
        "99999999999s",
        "18446744073709551615s",
        "18446744073709551615ms",
    ] {
        let (passed, output) = run_helper("helper_clean_check", huge);
        assert!(passed, "LEAKCHECK_SETTLE={huge:?}:\n{output}");
    }
}
