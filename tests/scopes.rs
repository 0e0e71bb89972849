//! The scope rules and the check's behaviour at the edges of a task's life.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    assert_sites, assert_snapshot, expect_clean, expect_report, redact, CLEAN_SETTLE, LEAKY_SETTLE,
};
use leakcheck::{Kind, Options};

const SOURCE: &str = include_str!("scopes.rs");
const FILE: &str = "tests/scopes.rs";

fn pending_forever() -> impl std::future::Future<Output = ()> {
    std::future::pending()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_follows_spawns_across_kinds() {
    let runtime = tokio::runtime::Handle::current();
    leakcheck::spawn(async move {
        // site:chain-task
        leakcheck::spawn_blocking(move || {
            // site:chain-blocking
            leakcheck::thread::spawn(move || {
                // site:chain-thread
                let _entered = runtime.enter();
                leakcheck::Builder::new()
                    .name("leaf")
                    .spawn(pending_forever()); // site:chain-leaf
            });
        });
    });
    let report = expect_report().await;
    assert_sites(&report, FILE, SOURCE, &[("chain-leaf", 1)]);
    let leaf = &report.leaks()[0];
    assert_eq!(leaf.test(), Some("ownership_follows_spawns_across_kinds"));
    let text = report.to_string();
    let line = |m| common::site_line(SOURCE, m);
    for (kind, marker) in [
        ("thread", "chain-thread"),
        ("blocking task", "chain-blocking"),
        ("task", "chain-task"),
    ] {
        let link = format!("spawned by {kind} at {FILE}:{}:", line(marker));
        assert!(text.contains(&link), "missing {link:?} in\n{text}");
    }
    assert_snapshot("chain_across_kinds", &redact(&report.to_string()), false);
}

#[tokio::test]
async fn spawns_from_untracked_tasks_belong_to_no_test() {
    let stray = tokio::spawn(async {
        leakcheck::Builder::new()
            .name("stray")
            .spawn(pending_forever());
        // A check inside this untracked task looks at the process-wide scope.
        Options::new().settle(LEAKY_SETTLE).find_async().await
    });
    // The test's own scope holds nothing: the stray task is not blamed on it.
    expect_clean().await;
    let report = stray.await.unwrap().unwrap_err();
    let stray: Vec<_> = report
        .leaks()
        .iter()
        .filter(|l| l.name() == Some("stray"))
        .collect();
    assert_eq!(stray.len(), 1, "{report}");
    assert_eq!(stray[0].test(), None);
    assert!(
        report.to_string().contains("spawned outside any test"),
        "{report}"
    );
}

#[tokio::test]
async fn a_check_skips_its_caller_and_the_callers_spawners() {
    let outer = leakcheck::spawn(async {
        let inner = leakcheck::spawn(async {
            leakcheck::Builder::new()
                .name("sibling")
                .spawn(pending_forever());
            Options::new().settle(LEAKY_SETTLE).find_async().await
        });
        inner.await.unwrap()
    });
    let report = outer.await.unwrap().unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(names, [Some("sibling")], "{report}");
}

#[tokio::test]
#[should_panic(expected = "Use `leakcheck::verify_none_async().await` instead")]
async fn blocking_check_on_a_current_thread_runtime_panics_at_once() {
    leakcheck::verify_none();
}

#[tokio::test]
#[should_panic(expected = "Use `leakcheck::find_async().await` instead")]
async fn blocking_find_on_a_current_thread_runtime_names_find_async() {
    let _ = leakcheck::find();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_check_in_a_multi_thread_test_waits_for_tasks() {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    leakcheck::spawn(async move {
        let _ = done_rx.await;
    });
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        done_tx.send(()).unwrap();
    });
    Options::new().settle(CLEAN_SETTLE).verify_none();
    releaser.join().unwrap();
}

#[tokio::test]
async fn blocking_check_from_a_tracked_blocking_task_is_allowed() {
    let outcome = leakcheck::spawn_blocking(|| Options::new().settle(CLEAN_SETTLE).find());
    assert!(outcome.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn waiting_does_not_advance_a_paused_clock() {
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = ticks.clone();
    leakcheck::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(1));
        loop {
            every.tick().await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let report = expect_report().await;
    assert_eq!(report.leaks().len(), 1);
    // The deadline is wall-clock time...
    assert!(started.elapsed() >= LEAKY_SETTLE);
    // ...and the paused clock stood still while we waited: had the runtime
    // auto-advanced it, the 1ms interval would have ticked without limit.
    assert!(ticks.load(Ordering::Relaxed) <= 2, "ticked {ticks:?} times");
}

#[tokio::test]
async fn tasks_that_panicked_were_aborted_or_were_in_a_dropped_join_set_have_ended() {
    let panicked = leakcheck::spawn(async { panic!("boom") });
    assert!(panicked.await.unwrap_err().is_panic());

    let aborted = leakcheck::spawn(pending_forever());
    aborted.abort();

    let mut set = tokio::task::JoinSet::new();
    set.spawn(leakcheck::track(pending_forever()));
    set.spawn(leakcheck::track(pending_forever()));
    drop(set);

    let blocking_panicked = leakcheck::spawn_blocking(|| panic!("boom"));
    assert!(blocking_panicked.await.unwrap_err().is_panic());

    expect_clean().await;
}

#[tokio::test]
async fn leaks_of_every_kind_are_caught_and_their_fixes_pass() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = leakcheck::spawn_local(async move {
                // site:local
                let _ = rx.await;
            });
            let report = expect_report().await;
            assert_sites(&report, FILE, SOURCE, &[("local", 1)]);
            assert_eq!(report.leaks()[0].kind(), Kind::Local);
            tx.send(()).unwrap();
            task.await.unwrap();
            expect_clean().await;
        })
        .await;

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tracked = tokio::spawn(leakcheck::track(async move {
        // site:tracked
        let _ = rx.await;
    }));
    let report = expect_report().await;
    assert_sites(&report, FILE, SOURCE, &[("tracked", 1)]);
    assert_eq!(report.leaks()[0].kind(), Kind::Task);
    tx.send(()).unwrap();
    tracked.await.unwrap();
    expect_clean().await;
}

#[tokio::test]
async fn a_passing_check_returns_when_the_last_task_ends_not_at_the_deadline() {
    leakcheck::spawn(tokio::time::sleep(Duration::from_millis(30)));
    let started = Instant::now();
    Options::new()
        .settle(Duration::from_secs(60))
        .verify_none_async()
        .await;
    // A check that slept out its settle period would take 60s.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn one_options_checks_several_times_and_checks_nest() {
    let options = Options::new().settle(LEAKY_SETTLE);
    options.verify_none_async().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = leakcheck::spawn(async move {
        let _ = rx.await;
    });
    assert_eq!(options.find_async().await.unwrap_err().leaks().len(), 1);
    tx.send(()).unwrap();
    task.await.unwrap();
    options.verify_none_async().await;
    options.verify_none_async().await;
}

// Ignoring: each option both forgives its match and still reports the rest.

fn spawn_named(name: &str) {
    leakcheck::Builder::new()
        .name(name)
        .spawn(pending_forever()); // site:named
}

#[tokio::test]
async fn ignore_name_forgives_only_that_name() {
    spawn_named("metrics");
    spawn_named("worker");
    let report = Options::new()
        .settle(LEAKY_SETTLE)
        .ignore_name("metrics")
        .ignore_name("")
        .find_async()
        .await
        .unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(names, [Some("worker")]);
    Options::new()
        .settle(CLEAN_SETTLE)
        .ignore_name("metrics")
        .ignore_name("worker")
        .verify_none_async()
        .await;
}

#[tokio::test]
async fn ignore_spawned_at_matches_path_suffixes_and_lines() {
    spawn_named("a");
    let line = common::site_line(SOURCE, "named");
    for forgiving in ["scopes.rs".to_owned(), format!("tests/scopes.rs:{line}")] {
        Options::new()
            .settle(CLEAN_SETTLE)
            .ignore_spawned_at(&forgiving)
            .verify_none_async()
            .await;
    }
    for strict in [
        String::new(),
        "copes.rs".to_owned(),
        format!("scopes.rs:{}", line + 1),
    ] {
        let report = Options::new()
            .settle(Duration::ZERO)
            .ignore_spawned_at(&strict)
            .find_async()
            .await;
        assert!(report.is_err(), "{strict:?} should not forgive the leak");
    }
}

#[tokio::test]
async fn ignore_predicate_sees_each_leak() {
    spawn_named("keep");
    spawn_named("drop-me");
    let report = Options::new()
        .settle(LEAKY_SETTLE)
        .ignore(|leak| leak.name().is_some_and(|n| n.starts_with("drop")))
        .find_async()
        .await
        .unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(names, [Some("keep")]);
}

#[tokio::test]
async fn ignore_current_forgives_only_what_was_alive_then() {
    spawn_named("before");
    let options = Options::new().settle(LEAKY_SETTLE).ignore_current();
    options.verify_none_async().await;
    spawn_named("after");
    let report = options.find_async().await.unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(names, [Some("after")]);
}

#[test]
fn settle_duration_max_does_not_overflow() {
    let thread = leakcheck::thread::spawn(|| ());
    thread.join().unwrap();
    Options::new().settle(Duration::MAX).verify_none();
    Options::new().settle(Duration::ZERO).verify_none();
}

#[test]
fn a_leaky_thread_report_names_the_test_and_counts_threads() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let _guard = tx; // dropped at the end of the test, unwinding or not
    let waiter = leakcheck::thread::spawn(move || rx.recv());
    let report = Options::new().settle(LEAKY_SETTLE).find().unwrap_err();
    assert_eq!(
        report.leaks()[0].test(),
        Some("a_leaky_thread_report_names_the_test_and_counts_threads")
    );
    assert!(report.to_string().starts_with("leakcheck: 1 thread outlived test `a_leaky_thread_report_names_the_test_and_counts_threads`"), "{report}");
    drop(_guard);
    assert!(waiter.join().unwrap().is_err());
}

#[tokio::test]
async fn spawned_by_lists_the_chain_for_ignore_created_by() {
    leakcheck::spawn(async {
        leakcheck::spawn(pending_forever()); // site:created-by-child
    }); // the parent ends; its child lives on
    let report = expect_report().await;
    assert_sites(&report, FILE, SOURCE, &[("created-by-child", 1)]);
    let child = &report.leaks()[0];
    let chain: Vec<_> = child.spawned_by().collect();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].0, Kind::Task);
    assert_eq!(chain[0].1.file(), FILE);
    // goleak's IgnoreCreatedBy, in leakcheck: forgive by a spawner's site.
    let parent_line = chain[0].1.line();
    Options::new()
        .settle(CLEAN_SETTLE)
        .ignore(move |leak| {
            leak.spawned_by()
                .any(|(_, site)| site.line() == parent_line)
        })
        .verify_none_async()
        .await;
}
