//! Under cargo-nextest each test runs in its own process, so a per-test
//! check can also list OS threads nobody tracked (Linux). Under
//! `cargo test`, where other tests' threads run alongside, it must not.
//! `.ci/run` runs this file both ways.

use std::time::Duration;

#[test]
fn a_plain_thread_is_listed_only_when_the_test_runs_alone() {
    let (stop, parked) = std::sync::mpsc::channel::<()>();
    let (started, is_started) = std::sync::mpsc::channel::<()>();
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
