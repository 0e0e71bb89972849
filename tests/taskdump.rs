//! Await traces (feature `taskdump`, `--cfg tokio_unstable`): a dump that
//! can't finish degrades to the state lines instead of hanging the check.
//! `.ci/run` runs this in its `tokio_unstable` step; other builds compile it
//! to nothing (the corpus snapshots cover both report forms).
#![cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_dump_blocked_by_a_busy_worker_times_out_into_state_lines() {
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = stop.clone();
    leakcheck::spawn(async move {
        while !spinning.load(Ordering::SeqCst) {
            std::hint::spin_loop(); // holds the only worker: no dump can finish
        }
    });
    let started = Instant::now();
    let report = leakcheck::Options::new()
        .settle(Duration::from_millis(100))
        .find_async()
        .await
        .unwrap_err();
    stop.store(true, Ordering::SeqCst);
    let text = report.to_string();
    assert!(text.contains("busy: inside poll"), "{text}");
    assert!(text.contains("note: no await traces"), "{text}");
    assert!(!text.contains("stuck at:"), "{text}");
    // Bounded by the dump's 2s limit, not hung.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_dump_names_the_await_point() {
    let ready = Arc::new(tokio::sync::Notify::new());
    let waiter = ready.clone();
    leakcheck::spawn(async move { waiter.notified().await });
    let report = leakcheck::Options::new()
        .settle(Duration::from_millis(100))
        .find_async()
        .await
        .unwrap_err();
    let text = report.to_string();
    assert!(text.contains("stuck at:"), "{text}");
    assert!(text.contains("a_dump_names_the_await_point"), "{text}");
    assert!(text.contains("Notified"), "{text}");
    assert!(!text.contains("note:"), "{text}");
    ready.notify_one();
}
