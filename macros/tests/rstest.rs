//! `#[leak_check]` with rstest: every case is checked on its own, whichever
//! side of `#[rstest]` the attribute is written. Here rather than in
//! leakcheck's tests so that rstest is built only with the macros' tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakcheck::leak_check;
use rstest::rstest;

/// Keeps the threads it spawns waiting until it drops; a leaky case
/// forgets it.
struct Parked(Arc<Mutex<Vec<std::sync::mpsc::Sender<()>>>>);

impl Parked {
    fn new() -> Parked {
        Parked(Arc::default())
    }

    /// A tracked thread that waits until this guard drops.
    fn spawn_thread(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        self.0.lock().unwrap().push(tx);
        leakcheck::thread::spawn(move || rx.recv().ok());
    }
}

#[rstest]
#[case(1)]
#[case(3)]
#[leak_check]
fn rstest_cases_below(#[case] threads: usize) {
    for _ in 0..threads {
        leakcheck::thread::spawn(|| ()).join().unwrap();
    }
}

#[rstest]
#[case(1)]
#[case(2)]
#[leak_check(settle = "50ms")]
#[should_panic(expected = "outlived test")]
fn rstest_each_leaky_case_is_caught(#[case] threads: usize) {
    let parked = Parked::new();
    for _ in 0..threads {
        parked.spawn_thread();
    }
    std::mem::forget(parked);
}

#[leak_check(settle = "50ms")]
#[rstest]
#[case(1)]
#[case(2)]
#[should_panic(expected = "outlived test")]
fn rstest_leak_check_above_moves_below(#[case] threads: usize) {
    let parked = Parked::new();
    for _ in 0..threads {
        parked.spawn_thread();
    }
    std::mem::forget(parked);
}

#[rstest]
#[case(1)]
#[case(2)]
#[leak_check]
#[tokio::test]
async fn rstest_async_cases(#[case] tasks: u64) {
    for i in 0..tasks {
        leakcheck::spawn(tokio::time::sleep(Duration::from_millis(i)));
    }
}

#[rstest]
#[case(1)]
#[case(2)]
#[leak_check(settle = "50ms")]
#[tokio::test]
#[should_panic(expected = "outlived test")]
async fn rstest_async_leaky_cases_are_caught(#[case] tasks: u64) {
    for _ in 0..tasks {
        leakcheck::spawn(std::future::pending::<()>());
    }
}
