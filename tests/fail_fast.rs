//! A failing check returns at once when waiting can't change its verdict
//! (every task that could act provably can never finish), and still waits
//! whenever something could end a survivor: a waker that may fire, a
//! parent or a forgiven task that may abort it, a plain task, a thread.
//!
//! Each test gives the check a settle period far longer than the test may
//! take (`LONG`), and says which side it is on by whether it must return
//! before half of it or must see the survivor end inside it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use leakcheck::Options;

/// Long enough that returning before half of it can only mean the check
/// did not wait.
const LONG: Duration = Duration::from_secs(30);

/// Pending forever, and keeps no waker: nothing can ever wake it.
struct Forgotten;

impl Future for Forgotten {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// Runs a check with a long settle period, which must fail well before it
/// ends, and returns its report.
async fn fails_at_once() -> leakcheck::Report {
    let started = Instant::now();
    let report = Options::new().settle(LONG).find_async().await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited < LONG / 2, "waited {waited:?}:\n{report}");
    assert!(
        report.to_string().contains("so the check stopped waiting"),
        "{report}"
    );
    report
}

/// Lets the runtime poll what was just spawned.
async fn let_it_run() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_scope_whose_tasks_can_never_finish_fails_at_once() {
    let stuck = [leakcheck::spawn(Forgotten), leakcheck::spawn(Forgotten)];
    let_it_run().await;
    let report = fails_at_once().await;
    assert_eq!(report.leaks().len(), 2, "{report}");
    assert!(report.to_string().contains("can never finish"), "{report}");
    for task in stuck {
        task.abort();
    }
}

#[test]
fn a_sync_check_on_a_stuck_scope_fails_at_once() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let stuck = runtime.enter();
    let task = leakcheck::spawn(Forgotten);
    drop(stuck);
    runtime.block_on(let_it_run());
    let started = Instant::now();
    let report = Options::new().settle(LONG).find().unwrap_err();
    assert!(
        started.elapsed() < LONG / 2,
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(report.leaks().len(), 1, "{report}");
    task.abort();
    runtime.block_on(let_it_run());
}

#[tokio::test]
async fn a_task_that_holds_a_waker_is_waited_for() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let waiting = leakcheck::spawn(async move {
        let _ = rx.await;
    });
    let_it_run().await;
    // Its sender ends it later, from a thread the check doesn't know.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(tx);
    });
    Options::new().settle(LONG).verify_none_async().await;
    waiting.await.unwrap();
}

#[tokio::test]
async fn a_child_that_a_running_parent_will_abort_is_no_leak() {
    let parent = leakcheck::spawn(async {
        let child = leakcheck::spawn(Forgotten);
        tokio::time::sleep(Duration::from_millis(100)).await;
        child.abort();
    });
    let_it_run().await;
    Options::new().settle(LONG).verify_none_async().await;
    parent.await.unwrap();
}

#[tokio::test]
async fn a_forgiven_task_may_still_abort_a_stuck_one() {
    let stuck = leakcheck::spawn(Forgotten);
    let aborter = leakcheck::Builder::new().name("reaper").spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stuck.abort();
        std::future::pending::<()>().await;
    });
    let_it_run().await;
    let options = Options::new().settle(LONG).ignore_name("reaper");
    options.verify_none_async().await;
    aborter.abort();
}

#[tokio::test]
async fn a_plain_task_on_the_test_runtime_may_still_abort_a_stuck_one() {
    let stuck = leakcheck::spawn(Forgotten);
    let plain = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stuck.abort();
    });
    let_it_run().await;
    Options::new().settle(LONG).verify_none_async().await;
    plain.await.unwrap();
}

/// Pending forever; leaves its waker in the slot, for someone else to drop.
struct Parks(std::sync::Arc<std::sync::Mutex<Option<std::task::Waker>>>);

impl Future for Parks {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.0.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[tokio::test]
async fn a_task_that_loses_its_last_waker_while_the_check_waits_ends_the_wait() {
    let slot = std::sync::Arc::default();
    let task = leakcheck::spawn(Parks(std::sync::Arc::clone(&slot)));
    let_it_run().await;
    // The resource it waited on goes away without waking it.
    let dropper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(slot.lock().unwrap().take());
    });
    let report = fails_at_once().await;
    assert!(report.to_string().contains("can never finish"), "{report}");
    dropper.join().unwrap();
    task.abort();
}

#[tokio::test]
async fn a_task_not_yet_polled_is_waited_for_until_its_poll_leaves_it_stuck() {
    // Checked before its first poll: it could still do anything, so the
    // check waits; its poll then ends with no waker, and the check returns.
    let task = leakcheck::spawn(Forgotten);
    let report = fails_at_once().await;
    assert_eq!(report.leaks().len(), 1, "{report}");
    task.abort();
}

#[tokio::test]
async fn a_stuck_task_aborted_just_before_the_check_is_no_leak() {
    // The usual fix, without awaiting the handle: the abort is on its way
    // when the check starts, and the task is stuck for good until then.
    let stuck = leakcheck::spawn(Forgotten);
    let_it_run().await;
    stuck.abort();
    Options::new().settle(LONG).verify_none_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_thread_runtime_a_parent_that_aborts_its_child_is_no_leak() {
    let parent = leakcheck::spawn(async {
        let child = leakcheck::spawn(Forgotten);
        tokio::task::yield_now().await;
        child.abort();
    });
    Options::new().settle(LONG).verify_none_async().await;
    parent.await.unwrap();
}
