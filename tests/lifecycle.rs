//! The edges of a task's life, each proven on both sides: the way it ends
//! that counts as ended, and the near miss that is still a leak.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{assert_sites, expect_clean, expect_report, Parked, CLEAN_SETTLE, LEAKY_SETTLE};
use leakcheck::Options;

const SOURCE: &str = include_str!("lifecycle.rs");
const FILE: &str = "tests/lifecycle.rs";

// Panics ---------------------------------------------------------------------

#[tokio::test]
async fn a_task_that_panics_has_ended() {
    let task = leakcheck::spawn(async { panic!("boom") });
    assert!(task.await.unwrap_err().is_panic());
    expect_clean().await;
}

#[tokio::test]
async fn a_task_that_catches_a_panic_and_stays_pending_is_reported() {
    let _task = leakcheck::spawn(async {
        // site:caught
        let _ = std::panic::catch_unwind(|| panic!("caught"));
        std::future::pending::<()>().await;
    });
    let report = expect_report().await;
    assert_sites(&report, FILE, SOURCE, &[("caught", 1)]);
}

// Abort ----------------------------------------------------------------------

#[tokio::test]
async fn an_aborted_task_has_ended() {
    let task = leakcheck::spawn(std::future::pending::<()>());
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    expect_clean().await;
}

#[tokio::test]
async fn a_task_whose_abort_handle_is_never_used_is_reported() {
    let task = leakcheck::spawn(std::future::pending::<()>()); // site:unaborted
    let _abort = task.abort_handle();
    drop(task);
    let report = expect_report().await;
    assert_sites(&report, FILE, SOURCE, &[("unaborted", 1)]);
}

// JoinSet --------------------------------------------------------------------

#[tokio::test]
async fn the_tasks_of_a_dropped_join_set_have_ended() {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..3 {
        set.spawn(leakcheck::track(std::future::pending::<()>()));
    }
    drop(set);
    expect_clean().await;
}

#[tokio::test]
async fn the_tasks_of_a_kept_join_set_are_reported() {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..3 {
        set.spawn(leakcheck::track(std::future::pending::<()>())); // site:kept
    }
    let report = expect_report().await;
    assert_sites(&report, FILE, SOURCE, &[("kept", 3)]);
    set.shutdown().await;
    expect_clean().await;
}

// Detached JoinHandle ---------------------------------------------------------

#[tokio::test]
async fn a_detached_task_that_finished_is_clean() {
    let (done, finished) = tokio::sync::oneshot::channel();
    drop(leakcheck::spawn(async move {
        let _ = done.send(());
    }));
    finished.await.unwrap();
    expect_clean().await;
}

#[tokio::test]
async fn a_detached_task_still_pending_is_reported() {
    drop(leakcheck::spawn(std::future::pending::<()>())); // site:detached
    let report = expect_report().await;
    assert_sites(&report, FILE, SOURCE, &[("detached", 1)]);
}

// The settle deadline ----------------------------------------------------------

/// Runs a check with `settle` on a thread that is parked until released.
/// With `release_at`, the check's ignore predicate (which runs while the
/// check lists the survivors) waits for that instant, then releases the
/// thread and joins it; without, the thread outlives the check.
fn check_with_parked_thread(
    settle: Duration,
    release_at: Option<Instant>,
) -> Result<(), leakcheck::Report> {
    let parked = Parked::start("parked"); // site:parked
    Options::new()
        .settle(settle)
        .ignore(move |_| {
            if let Some(at) = release_at {
                while Instant::now() < at {
                    std::thread::yield_now();
                }
                parked.end();
            }
            false
        })
        .find()
}

#[test]
fn a_task_that_ends_just_before_the_deadline_passes() {
    let settle = Duration::from_millis(200);
    // The check starts after this instant, so its deadline is later than
    // `just_before`: the thread has ended before the check gives up.
    let just_before = Instant::now() + settle - Duration::from_millis(1);
    check_with_parked_thread(settle, Some(just_before)).unwrap();
}

#[test]
fn a_task_that_ends_just_after_the_deadline_is_reported() {
    // Released only when the check has returned, so after its deadline.
    let report = check_with_parked_thread(Duration::from_millis(200), None).unwrap_err();
    assert_sites(&report, FILE, SOURCE, &[("parked", 1)]);
    // Dropping the check's options released it.
    Options::new().settle(CLEAN_SETTLE).verify_none();
}

// Runtime shutdown (see "Check before the runtime shuts down" in the docs) -----

#[test]
fn tasks_dropped_with_their_runtime_are_reported_by_a_check_before_the_drop() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    runtime.block_on(async {
        leakcheck::spawn(std::future::pending::<()>()); // site:shutdown
        let report = expect_report().await;
        assert_sites(&report, FILE, SOURCE, &[("shutdown", 1)]);
    });
    drop(runtime);
    // The documented limit: after the drop they count as ended.
    Options::new().settle(Duration::ZERO).verify_none();
}

// Spawns from destructors -------------------------------------------------------

/// Spawns a thread when dropped: parked until `release` goes, or finishing
/// at once when there is none.
struct SpawnsOnDrop(Option<mpsc::Receiver<()>>);

impl Drop for SpawnsOnDrop {
    fn drop(&mut self) {
        let parked = self.0.take();
        leakcheck::thread::spawn(move || {
            // site:on_drop
            if let Some(parked) = parked {
                let _ = parked.recv();
            }
        });
    }
}

#[test]
fn a_thread_spawned_from_drop_belongs_to_the_test_and_is_reported() {
    let (release, parked) = mpsc::channel::<()>();
    drop(SpawnsOnDrop(Some(parked)));
    let report = Options::new().settle(LEAKY_SETTLE).find().unwrap_err();
    assert_sites(&report, FILE, SOURCE, &[("on_drop", 1)]);
    let me = std::thread::current().name().unwrap().to_owned();
    assert_eq!(report.leaks()[0].test(), Some(me.as_str()));
    drop(release);
    Options::new().settle(CLEAN_SETTLE).verify_none();
}

#[test]
fn a_thread_spawned_from_drop_that_finishes_is_clean() {
    drop(SpawnsOnDrop(None));
    Options::new().settle(CLEAN_SETTLE).verify_none();
}

// Nested checks -------------------------------------------------------------------

#[tokio::test]
async fn a_check_inside_a_tracked_task_sees_its_siblings_not_itself() {
    let (release, parked) = tokio::sync::oneshot::channel::<()>();
    let _sibling = leakcheck::spawn(async move {
        // site:sibling
        let _ = parked.await;
    });
    let checker = leakcheck::spawn(async {
        let report = expect_report().await;
        assert_sites(&report, FILE, SOURCE, &[("sibling", 1)]);
        report
    });
    checker.await.unwrap();
    drop(release);
    let clean_checker = leakcheck::spawn(expect_clean());
    clean_checker.await.unwrap();
    expect_clean().await;
}

#[tokio::test]
async fn two_checks_in_one_test_each_see_what_is_left_then() {
    let (release, parked) = tokio::sync::oneshot::channel::<()>();
    let task = leakcheck::spawn(async move {
        // site:first
        let _ = parked.await;
    });
    let first = expect_report().await;
    assert_sites(&first, FILE, SOURCE, &[("first", 1)]);
    drop(release);
    task.await.unwrap();
    expect_clean().await;
    expect_clean().await;
}

#[tokio::test]
async fn a_blocking_check_on_a_tracked_blocking_thread_sees_the_test() {
    let (release, parked) = tokio::sync::oneshot::channel::<()>();
    let _waiter = leakcheck::spawn(async move {
        // site:from_blocking
        let _ = parked.await;
    });
    let report = leakcheck::spawn_blocking(|| Options::new().settle(LEAKY_SETTLE).find())
        .await
        .unwrap()
        .unwrap_err();
    assert_sites(&report, FILE, SOURCE, &[("from_blocking", 1)]);
    drop(release);
    leakcheck::spawn_blocking(|| Options::new().settle(CLEAN_SETTLE).verify_none())
        .await
        .unwrap();
}
