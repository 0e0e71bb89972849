//! Load: 1,000 tests in one binary, run in parallel by `cargo test` (and one
//! process each by `cargo nextest run`), a third of them leaky in five
//! different ways. Every leaky test's check must return a report holding
//! exactly its own survivors; every clean test's check must pass, while the
//! leaky ones around it are still leaking. And one test leaks 100,000 tasks:
//! the check completes and its report stays short.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leakcheck::{Builder, Options, Report};
use tokio::runtime::Runtime;

/// Short, so that 334 failing checks cost seconds, not minutes.
const LEAKY_SETTLE: Duration = Duration::from_millis(50);
const CLEAN_SETTLE: Duration = Duration::from_secs(30);

fn own_name() -> String {
    std::thread::current().name().unwrap().to_owned()
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every survivor is named after its test: a report holding another test's
/// task, or one task too many or too few, fails here.
fn assert_exactly_own(report: &Report, expected: usize) {
    let me = own_name();
    assert_eq!(report.leaks().len(), expected, "{report}");
    for leak in report.leaks() {
        assert_eq!(leak.name(), Some(me.as_str()), "{report}");
        assert_eq!(leak.test(), Some(me.as_str()), "{report}");
    }
}

/// Case `n`: every third one leaks, in one of five ways; the others end
/// their work in one of five ways and must pass.
fn case(n: usize) {
    let tasks = 1 + n % 4;
    let variant = (n / 3) % 5;
    if n % 3 == 0 {
        leaky(variant, tasks);
    } else {
        clean(variant, tasks);
    }
}

fn leaky(variant: usize, tasks: usize) {
    let me = own_name();
    let options = Options::new().settle(LEAKY_SETTLE);
    match variant {
        // Pending forever, on a current-thread runtime.
        0 => current_thread().block_on(async {
            for _ in 0..tasks {
                Builder::new().name(&me).spawn(std::future::pending::<()>());
            }
            assert_exactly_own(&options.find_async().await.unwrap_err(), tasks);
        }),
        // A parent that ends, leaving children waiting on a sender it gave
        // away, on a multi-thread runtime.
        1 => multi_thread().block_on(async {
            let (tx, rx) = tokio::sync::watch::channel(());
            let name = me.clone();
            Builder::new()
                .spawn(async move {
                    for _ in 0..tasks {
                        let mut rx = rx.clone();
                        Builder::new()
                            .name(&name)
                            .spawn(async move { while rx.changed().await.is_ok() {} });
                    }
                })
                .await
                .unwrap();
            assert_exactly_own(&options.find_async().await.unwrap_err(), tasks);
            drop(tx);
        }),
        // Threads blocked on a channel whose sender the test holds.
        2 => {
            let (release, parked) = mpsc::channel::<()>();
            let parked = Arc::new(Mutex::new(parked));
            let threads: Vec<_> = (0..tasks)
                .map(|_| {
                    let parked = parked.clone();
                    leakcheck::thread::Builder::new()
                        .name(me.clone())
                        .spawn(move || {
                            let _ = parked.lock().unwrap().recv();
                        })
                        .unwrap()
                })
                .collect();
            assert_exactly_own(&options.find().unwrap_err(), tasks);
            drop(release);
            threads.into_iter().for_each(|t| t.join().unwrap());
        }
        // Blocking tasks waiting for a flag; released before the runtime
        // shuts down (which waits for them).
        3 => current_thread().block_on(async {
            let (release, parked) = mpsc::channel::<()>();
            let parked = Arc::new(Mutex::new(parked));
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let parked = parked.clone();
                    Builder::new().name(&me).spawn_blocking(move || {
                        let _ = parked.lock().unwrap().recv();
                    })
                })
                .collect();
            assert_exactly_own(&options.find_async().await.unwrap_err(), tasks);
            drop(release);
            for handle in handles {
                handle.await.unwrap();
            }
        }),
        // Interval loops nobody stops, in a JoinSet that is kept.
        _ => multi_thread().block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..tasks {
                set.spawn(leakcheck::track(async {
                    let mut tick = tokio::time::interval(Duration::from_millis(5));
                    loop {
                        tick.tick().await;
                    }
                }));
            }
            let report = options.find_async().await.unwrap_err();
            // `track` takes no name: check the count and the owner.
            assert_eq!(report.leaks().len(), tasks, "{report}");
            for leak in report.leaks() {
                assert_eq!(leak.test(), Some(me.as_str()), "{report}");
            }
            set.shutdown().await;
            options.verify_none_async().await;
        }),
    }
}

fn clean(variant: usize, tasks: usize) {
    let me = own_name();
    let options = Options::new().settle(CLEAN_SETTLE);
    match variant {
        // Tasks that finish on their own, not awaited.
        0 => current_thread().block_on(async {
            for i in 0..tasks {
                Builder::new()
                    .name(&me)
                    .spawn(tokio::time::sleep(Duration::from_millis(i as u64)));
            }
            options.verify_none_async().await;
        }),
        // Children that end when their parent's sender drops.
        1 => multi_thread().block_on(async {
            let (tx, rx) = tokio::sync::watch::channel(());
            for _ in 0..tasks {
                let mut rx = rx.clone();
                leakcheck::spawn(async move { while rx.changed().await.is_ok() {} });
            }
            drop(tx);
            options.verify_none_async().await;
        }),
        // Threads that are joined.
        2 => {
            for i in 0..tasks {
                leakcheck::thread::spawn(move || i * 2).join().unwrap();
            }
            options.verify_none();
        }
        // Aborted tasks and a dropped JoinSet.
        3 => current_thread().block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..tasks {
                leakcheck::spawn(std::future::pending::<()>()).abort();
                set.spawn(leakcheck::track(std::future::pending::<()>()));
            }
            drop(set);
            options.verify_none_async().await;
        }),
        // Blocking tasks that finish, not awaited.
        _ => multi_thread().block_on(async {
            for _ in 0..tasks {
                leakcheck::spawn_blocking(std::thread::yield_now);
            }
            options.verify_none_async().await;
        }),
    }
}

macro_rules! ten {
    ($base:expr) => {
        #[test]
        fn c0() {
            super::super::case($base);
        }
        #[test]
        fn c1() {
            super::super::case($base + 1);
        }
        #[test]
        fn c2() {
            super::super::case($base + 2);
        }
        #[test]
        fn c3() {
            super::super::case($base + 3);
        }
        #[test]
        fn c4() {
            super::super::case($base + 4);
        }
        #[test]
        fn c5() {
            super::super::case($base + 5);
        }
        #[test]
        fn c6() {
            super::super::case($base + 6);
        }
        #[test]
        fn c7() {
            super::super::case($base + 7);
        }
        #[test]
        fn c8() {
            super::super::case($base + 8);
        }
        #[test]
        fn c9() {
            super::super::case($base + 9);
        }
    };
}

macro_rules! hundred {
    ($base:expr) => {
        mod t0 {
            ten!($base);
        }
        mod t1 {
            ten!($base + 10);
        }
        mod t2 {
            ten!($base + 20);
        }
        mod t3 {
            ten!($base + 30);
        }
        mod t4 {
            ten!($base + 40);
        }
        mod t5 {
            ten!($base + 50);
        }
        mod t6 {
            ten!($base + 60);
        }
        mod t7 {
            ten!($base + 70);
        }
        mod t8 {
            ten!($base + 80);
        }
        mod t9 {
            ten!($base + 90);
        }
    };
}

mod h0 {
    hundred!(0);
}
mod h1 {
    hundred!(100);
}
mod h2 {
    hundred!(200);
}
mod h3 {
    hundred!(300);
}
mod h4 {
    hundred!(400);
}
mod h5 {
    hundred!(500);
}
mod h6 {
    hundred!(600);
}
mod h7 {
    hundred!(700);
}
mod h8 {
    hundred!(800);
}
mod h9 {
    hundred!(900);
}

#[test]
fn one_hundred_thousand_leaks_make_a_short_grouped_report() {
    const LEAKS: usize = 100_000;
    current_thread().block_on(async {
        for _ in 0..LEAKS {
            leakcheck::spawn(std::future::pending::<()>());
        }
        let report = Options::new()
            .settle(LEAKY_SETTLE)
            .find_async()
            .await
            .unwrap_err();
        assert_eq!(report.leaks().len(), LEAKS);
        let started = Instant::now();
        let text = report.to_string();
        let took = started.elapsed();
        // Printed, not asserted: a timing bound would flake on a busy CI
        // machine. One spawn site makes one group, so the report is short.
        println!("to_string of {LEAKS} leaks: {took:?}, {} bytes", text.len());
        assert!(text.lines().count() <= 12, "{text}");
        assert!(text.contains("100000"), "the group is counted:\n{text}");
    });
}
