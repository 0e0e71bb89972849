//! Tasks spawned outside leakcheck (plain `tokio::spawn`) on a runtime that
//! belongs to one test: counted on stable Rust, listed with their spawn
//! sites under `--cfg tokio_unstable`. Every leak has its fixed twin.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{expect_clean, expect_report, site_line};
use leakcheck::{Kind, Report};
use tokio::sync::oneshot;

const SOURCE: &str = include_str!("untracked.rs");

/// A runtime built the way `#[leak_check]` builds one.
fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    leakcheck::runtime::build(builder.enable_all()).unwrap()
}

/// Asserts that the report holds exactly `n` untracked tasks spawned at
/// `site:<marker>` and nothing else untracked: counted on stable, listed
/// with their site under tokio_unstable.
fn assert_untracked(report: &Report, n: usize, marker: &str) {
    let listed: Vec<_> = report
        .leaks()
        .iter()
        .filter(|l| l.kind() == Kind::Untracked)
        .collect();
    if cfg!(tokio_unstable) {
        assert_eq!(report.untracked_tasks(), 0, "{report}");
        assert_eq!(listed.len(), n, "{report}");
        let line = site_line(SOURCE, marker);
        for leak in listed {
            assert!(
                leak.spawned_at().file().ends_with("untracked.rs"),
                "{report}"
            );
            assert_eq!(leak.spawned_at().line(), line, "{report}");
        }
        assert!(report.to_string().contains("untracked task"), "{report}");
    } else {
        assert!(listed.is_empty(), "{report}");
        assert_eq!(report.untracked_tasks(), n, "{report}");
        assert!(
            report.to_string().contains("spawned outside leakcheck"),
            "{report}"
        );
        assert!(
            report.to_string().contains("--cfg tokio_unstable"),
            "{report}"
        );
    }
}

fn plain_leak_is_caught(multi_thread: bool) {
    runtime(multi_thread).block_on(async {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // site:plain
            let _ = stopped.await;
        });
        tokio::task::yield_now().await;
        let report = expect_report().await;
        assert!(report.to_string().contains("1 task outlived"), "{report}");
        assert_untracked(&report, 1, "plain");
        assert_eq!(
            report
                .leaks()
                .iter()
                .filter(|l| l.kind() != Kind::Untracked)
                .count(),
            0
        );

        // The fix: tell it to stop.
        stop.send(()).unwrap();
        task.await.unwrap();
        expect_clean().await;
    });
}

#[test]
fn a_plain_spawn_that_outlives_the_check_is_caught_current_thread() {
    plain_leak_is_caught(false);
}

#[test]
fn a_plain_spawn_that_outlives_the_check_is_caught_multi_thread() {
    plain_leak_is_caught(true);
}

#[test]
fn leakcheck_spawns_are_counted_once() {
    for multi_thread in [false, true] {
        runtime(multi_thread).block_on(async {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let (polled, mut first_polls) = tokio::sync::mpsc::channel::<()>(2);
            let (mut waiting, started) = (stopped.clone(), polled.clone());
            let spawned = leakcheck::spawn(async move {
                started.send(()).await.unwrap();
                let _ = waiting.wait_for(|s| *s).await;
            });
            let mut waiting = stopped.clone();
            let wrapped = tokio::spawn(leakcheck::track(async move {
                polled.send(()).await.unwrap();
                let _ = waiting.wait_for(|s| *s).await;
            }));
            // Both polled, so the wrapped one knows its task id.
            first_polls.recv().await.unwrap();
            first_polls.recv().await.unwrap();
            let report = expect_report().await;
            assert_eq!(report.leaks().len(), 2, "{report}");
            assert!(
                report.leaks().iter().all(|l| l.kind() == Kind::Task),
                "{report}"
            );
            assert_eq!(report.untracked_tasks(), 0, "{report}");
            assert!(report.to_string().contains("2 tasks outlived"), "{report}");

            stop.send(true).unwrap();
            spawned.await.unwrap();
            wrapped.await.unwrap();
            expect_clean().await;
        });
    }
}

#[test]
fn a_check_inside_a_plain_task_does_not_count_that_task() {
    runtime(true).block_on(async {
        tokio::spawn(expect_clean()).await.unwrap();
    });
}

#[test]
fn a_blocking_task_is_not_an_alive_task() {
    // The check itself runs on the blocking pool while it reads the count:
    // tokio must not count blocking tasks, or every check would see one.
    let rt = runtime(false);
    rt.block_on(async {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let blocked = tokio::task::spawn_blocking(move || wait.recv().ok());
        let metrics = tokio::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_alive_tasks(), 0);
        let plain = tokio::spawn(std::future::pending::<()>());
        assert_eq!(metrics.num_alive_tasks(), 1);
        plain.abort();
        let _ = plain.await;
        release.send(()).unwrap();
        blocked.await.unwrap();
    });
}

#[leakcheck::leak_check(settle = "100ms")]
#[ignore = "helper: run by the attribute counts untracked tasks"]
async fn leaky_attribute_case() {
    tokio::spawn(std::future::pending::<()>()); // site:attribute
    tokio::task::yield_now().await;
}

#[leakcheck::leak_check(settle = "100ms")]
#[ignore = "helper: run by the attribute counts untracked tasks"]
async fn clean_attribute_case() {
    let task = tokio::spawn(std::future::pending::<()>());
    tokio::task::yield_now().await;
    task.abort();
    let _ = task.await;
}

#[test]
fn the_attribute_counts_untracked_tasks() {
    let payload = catch_unwind(AssertUnwindSafe(leaky_attribute_case)).unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("outlived test `leaky_attribute_case`"),
        "{message}"
    );
    if cfg!(tokio_unstable) {
        let line = site_line(SOURCE, "attribute");
        assert!(
            message.contains(&format!(
                "untracked task spawned at tests/untracked.rs:{line}:"
            )),
            "{message}"
        );
    } else {
        assert!(
            message.contains("1 task spawned outside leakcheck"),
            "{message}"
        );
        // The command that shows where, for this very test.
        assert!(
            message.contains(
                "cargo leakcheck -p leakcheck --test untracked -- leaky_attribute_case --exact"
            ),
            "{message}"
        );
    }
    clean_attribute_case();
}
