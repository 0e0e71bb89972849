//! Options at their edges: empty ignore patterns, patterns that match
//! everything, and settle periods too long to add to a clock.

mod common;

use std::time::{Duration, Instant};

use common::{expect_report, CLEAN_SETTLE, LEAKY_SETTLE};
use leakcheck::Options;

fn named(name: &str) {
    leakcheck::Builder::new()
        .name(name)
        .spawn(std::future::pending::<()>());
}

#[tokio::test]
async fn an_empty_ignore_name_forgives_only_tasks_named_empty() {
    named("");
    leakcheck::spawn(std::future::pending::<()>());
    let report = Options::new()
        .settle(LEAKY_SETTLE)
        .ignore_name("")
        .find_async()
        .await
        .unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        [None],
        "the unnamed task is still reported\n{report}"
    );
    // Without the rule both are reported.
    assert_eq!(expect_report().await.leaks().len(), 2);
}

#[tokio::test]
async fn an_empty_site_pattern_forgives_nothing() {
    named("a");
    let report = Options::new()
        .settle(LEAKY_SETTLE)
        .ignore_spawned_at("")
        .find_async()
        .await
        .unwrap_err();
    assert_eq!(report.leaks().len(), 1, "{report}");
}

#[tokio::test]
async fn a_predicate_that_matches_everything_forgives_everything_at_once() {
    for name in ["a", "b", ""] {
        named(name);
    }
    let started = Instant::now();
    Options::new()
        .settle(CLEAN_SETTLE)
        .ignore(|_| true)
        .verify_none_async()
        .await;
    // Nothing is left to wait for: not a settle period, which is 20 s.
    assert!(started.elapsed() < CLEAN_SETTLE / 2);
    // The same survivors without the predicate: reported.
    assert_eq!(expect_report().await.leaks().len(), 3);
}

#[test]
fn a_settle_of_duration_max_waits_without_overflow_until_the_task_ends() {
    let (release, parked) = std::sync::mpsc::channel::<()>();
    let thread = leakcheck::thread::spawn(move || parked.recv());
    // Released from the predicate, which runs while the check lists the
    // survivors: the check then waits, with no deadline, for it to end.
    let release = std::sync::Mutex::new(Some(release));
    Options::new()
        .settle(Duration::MAX)
        .ignore(move |_| {
            release.lock().unwrap().take();
            false
        })
        .verify_none();
    thread.join().unwrap().unwrap_err();
}
