//! Which runtime belongs to a test (`leakcheck::runtime`'s module docs):
//! the one a plain `#[tokio::test]` builds is, so its plain `tokio::spawn`
//! survivors fail the by-hand check; a runtime that several tests check on,
//! or one marked shared, is not, so it never blames one test for another's
//! tasks. Each leak has its fixed twin.

use std::sync::LazyLock;
use std::time::Duration;

use leakcheck::Options;

fn options() -> Options {
    Options::new().settle(Duration::from_millis(100))
}

/// A plain `tokio::spawn` that never ends, and its handle.
fn stuck() -> tokio::task::JoinHandle<()> {
    tokio::spawn(std::future::pending::<()>())
}

async fn stop(task: tokio::task::JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

#[tokio::test]
async fn a_plain_tokio_test_counts_its_plain_spawns() {
    let task = stuck();
    tokio::task::yield_now().await;
    let report = options().find_async().await.unwrap_err();
    assert_eq!(report.untracked_tasks(), 1, "{report}");
    let text = report.to_string();
    assert!(text.contains("still alive on the test's runtime"), "{text}");
    assert!(text.contains("leakcheck::runtime::mark_shared"), "{text}");
    stop(task).await;
    options().verify_none_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_multi_thread_tokio_test_counts_its_plain_spawns() {
    let task = stuck();
    let report = options().find_async().await.unwrap_err();
    assert_eq!(report.untracked_tasks(), 1, "{report}");
    stop(task).await;
    options().verify_none_async().await;
}

#[tokio::test]
async fn tracked_tasks_on_a_plain_runtime_are_not_counted_twice() {
    let tracked = leakcheck::spawn(std::future::pending::<()>());
    let plain = stuck();
    tokio::task::yield_now().await;
    let report = options().find_async().await.unwrap_err();
    assert_eq!(report.leaks().len(), 1, "{report}");
    assert_eq!(report.untracked_tasks(), 1, "{report}");
    tracked.abort();
    let _ = tracked.await;
    stop(plain).await;
    options().verify_none_async().await;
}

#[test]
fn a_sync_test_checks_its_own_runtime_inside_block_on() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let task = stuck();
        assert_eq!(
            options().find_async().await.unwrap_err().untracked_tasks(),
            1
        );
        stop(task).await;
        options().verify_none_async().await;
    });
}

#[tokio::test]
async fn a_check_inside_a_task_counts_no_runtime() {
    // On a worker, nothing says which test is running.
    let plain = stuck();
    let checked = tokio::spawn(async { options().find_async().await });
    checked.await.unwrap().unwrap();
    stop(plain).await;
}

/// Runs `body` on `runtime` from a thread named like a libtest test, so the
/// check inside belongs to that test.
fn as_test<T: Send>(
    name: &str,
    runtime: &tokio::runtime::Runtime,
    body: impl AsyncFnOnce() -> T + Send,
) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn_scoped(s, || runtime.block_on(body()))
            .unwrap()
            .join()
            .unwrap()
    })
}

#[test]
fn a_runtime_checked_on_by_two_tests_is_no_longer_counted() {
    static SHARED: LazyLock<tokio::runtime::Runtime> =
        LazyLock::new(|| tokio::runtime::Runtime::new().unwrap());
    // The first test to check on it adopts it: its plain spawns count.
    as_test("suite::first", &SHARED, async || {
        let task = stuck();
        assert_eq!(
            options().find_async().await.unwrap_err().untracked_tasks(),
            1
        );
        stop(task).await;
    });
    // A second test checks on it: from now on it is shared, and neither
    // test is blamed for what the other (or the process) keeps on it.
    let kept = as_test("suite::second", &SHARED, async || {
        let kept = stuck();
        options().find_async().await.map(|()| kept)
    })
    .expect("a shared runtime's tasks are not the second test's");
    as_test("suite::first", &SHARED, async || {
        options().find_async().await.expect("nor the first test's");
    });
    SHARED.block_on(stop(kept));
}

#[test]
fn a_runtime_marked_shared_is_never_counted() {
    static MARKED: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        leakcheck::runtime::mark_shared(runtime.handle());
        runtime
    });
    let process_long = MARKED.spawn(std::future::pending::<()>());
    as_test("suite::only_user", &MARKED, async || {
        options()
            .find_async()
            .await
            .expect("marked shared: not counted");
    });
    // The same shape without the mark is counted: the mark is what passes.
    let unmarked = tokio::runtime::Runtime::new().unwrap();
    let leftover = unmarked.spawn(std::future::pending::<()>());
    as_test("suite::unmarked_user", &unmarked, async || {
        let report = options().find_async().await.unwrap_err();
        assert_eq!(report.untracked_tasks(), 1, "{report}");
    });
    process_long.abort();
    leftover.abort();
}
