//! Each condition a report can give a survivor, proven on both sides: the
//! survivor that is in that condition is reported so, and one that looks
//! alike but isn't (it can be woken, it yields) is not.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{assert_snapshot, expect_clean, expect_report, redact};
use leakcheck::Options;

/// A hand-written future that returns `Pending` and, unless told to store
/// it, forgets the waker: the classic bug that leaves a task unwakeable.
struct Parked {
    store: Option<Arc<Mutex<Option<Waker>>>>,
    done: Arc<AtomicBool>,
}

impl Future for Parked {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if let Some(store) = &self.store {
            *store.lock().unwrap() = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[tokio::test]
async fn a_future_that_forgot_its_waker_can_never_finish() {
    let done = Arc::new(AtomicBool::new(false));
    leakcheck::spawn(Parked {
        store: None,
        done: done.clone(),
    });
    let report = expect_report().await;
    assert!(report.to_string().contains("can never finish"), "{report}");
    assert_snapshot(
        "state_can_never_finish",
        &redact(&report.to_string()),
        false,
    );
}

#[tokio::test]
async fn the_same_future_storing_its_waker_is_waiting_and_can_be_woken() {
    let done = Arc::new(AtomicBool::new(false));
    let store = Arc::new(Mutex::new(None));
    leakcheck::spawn(Parked {
        store: Some(store.clone()),
        done: done.clone(),
    });
    let report = expect_report().await;
    let text = report.to_string();
    assert!(text.contains("waiting: pending, 1 waker held"), "{text}");
    assert!(!text.contains("can never finish"), "{text}");
    // And indeed it can be woken: the check passes once it is.
    done.store(true, Ordering::SeqCst);
    store.lock().unwrap().take().unwrap().wake();
    expect_clean().await;
}

#[tokio::test]
async fn a_select_over_futures_that_dropped_their_wakers_can_never_finish() {
    leakcheck::spawn(async {
        tokio::select! {
            () = std::future::pending::<()>() => {}
            () = std::future::pending::<()>() => {}
        }
    });
    let report = expect_report().await;
    assert!(report.to_string().contains("can never finish"), "{report}");
}

#[tokio::test]
async fn a_task_parked_on_notify_is_waiting_not_doomed() {
    let ready = Arc::new(tokio::sync::Notify::new());
    let waiter = ready.clone();
    leakcheck::spawn(async move { waiter.notified().await });
    let report = expect_report().await;
    assert!(
        report
            .to_string()
            .contains("waiting: pending, 1 waker held"),
        "{report}"
    );
    ready.notify_one();
    expect_clean().await;
}

/// A current-thread runtime on a tracked thread, blocked by a task that
/// never yields; a second task is woken but can't be polled.
#[test]
fn a_task_that_never_yields_is_busy_and_one_behind_it_runnable() {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spinning = stop.clone();
    let runtime_thread = leakcheck::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let notify = Arc::new(tokio::sync::Notify::new());
            let waiter = notify.clone();
            let queued = leakcheck::Builder::new()
                .name("queued")
                .spawn(async move { waiter.notified().await });
            tokio::task::yield_now().await; // lets `queued` register its waker
            let busy = leakcheck::Builder::new().name("busy").spawn(async move {
                while !spinning.load(Ordering::SeqCst) {
                    std::hint::spin_loop(); // blocking code: never yields
                }
            });
            notify.notify_one(); // wakes `queued`, which can't run now
            ready_tx.send(()).unwrap();
            busy.await.unwrap();
            queued.await.unwrap();
        });
    });
    ready_rx.recv().unwrap();
    let report = Options::new()
        .settle(Duration::from_millis(100))
        .ignore(|leak| leak.kind() == leakcheck::Kind::Thread)
        .find()
        .unwrap_err();
    stop.store(true, Ordering::SeqCst);
    runtime_thread.join().unwrap();
    let text = report.to_string();
    let line_of = |name: &str| {
        let mut lines = text.lines().skip_while(|l| !l.contains(name));
        lines.nth(1).unwrap_or_default().to_owned()
    };
    assert!(
        line_of("\"busy\"")
            .trim_start()
            .starts_with("busy: inside poll for"),
        "{text}"
    );
    assert!(
        line_of("\"queued\"")
            .trim_start()
            .starts_with("runnable: woken"),
        "{text}"
    );
    // Both end once the spinner stops: nothing is left.
    Options::new().settle(common::CLEAN_SETTLE).verify_none();
}

#[tokio::test]
async fn a_task_that_yields_is_not_busy() {
    let stop = tokio_util::sync::CancellationToken::new();
    let running = stop.clone();
    leakcheck::spawn(async move {
        // Work in rounds far apart, so the check always finds it between
        // rounds: yielding, never inside a long poll.
        while !running.is_cancelled() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(10)) => {}
                () = running.cancelled() => {}
            }
        }
    });
    let report = expect_report().await;
    let text = report.to_string();
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("waiting:")),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("busy:")),
        "{text}"
    );
    stop.cancel();
    expect_clean().await;
}

#[tokio::test]
async fn blocking_tasks_and_threads_report_how_long_they_ran_and_kernel_state() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = Arc::new(Mutex::new(rx));
    let blocking_rx = rx.clone();
    let blocking = leakcheck::spawn_blocking(move || blocking_rx.lock().unwrap().recv().ok());
    let report = expect_report().await;
    let text = report.to_string();
    assert!(text.contains("running for "), "{text}");
    if cfg!(target_os = "linux") {
        assert!(text.contains("kernel: sleeping (S)"), "{text}");
    }
    drop(tx);
    blocking.await.unwrap();
}
