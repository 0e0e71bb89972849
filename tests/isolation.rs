//! Isolation: 60 tests in one binary, run in parallel by `cargo test`, some
//! leaky and some clean. Every report must hold exactly its own test's
//! tasks, every clean test must pass while the leaky ones are still leaking.

mod common;

use std::time::Duration;

use leakcheck::Options;

/// Long enough that the leaky tests overlap with each other and with the
/// clean ones.
const SETTLE: Duration = Duration::from_millis(250);

fn own_name() -> String {
    std::thread::current().name().unwrap().to_owned()
}

fn assert_only_own(report: &leakcheck::Report, expected: usize) {
    let me = own_name();
    assert_eq!(report.leaks().len(), expected, "{report}");
    for leak in report.leaks() {
        assert_eq!(
            leak.name(),
            Some(me.as_str()),
            "another test's task:\n{report}"
        );
        assert_eq!(leak.test(), Some(me.as_str()), "{report}");
    }
    assert!(
        report
            .to_string()
            .contains(&format!("outlived test `{me}`")),
        "{report}"
    );
}

async fn leaky_async(tasks: usize) {
    let me = own_name();
    for _ in 0..tasks {
        leakcheck::Builder::new()
            .name(&me)
            .spawn(std::future::pending::<()>());
    }
    let report = Options::new()
        .settle(SETTLE)
        .find_async()
        .await
        .unwrap_err();
    assert_only_own(&report, tasks);
}

async fn clean_async(tasks: usize) {
    let me = own_name();
    for i in 0..tasks {
        leakcheck::Builder::new()
            .name(&me)
            .spawn(tokio::time::sleep(Duration::from_millis(10 * i as u64)));
    }
    Options::new()
        .settle(common::CLEAN_SETTLE)
        .verify_none_async()
        .await;
}

fn leaky_sync(threads: usize) {
    let me = own_name();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    for _ in 0..threads {
        let rx = rx.clone();
        leakcheck::thread::Builder::new()
            .name(me.clone())
            .spawn(move || rx.lock().unwrap().recv())
            .unwrap();
    }
    let report = Options::new().settle(SETTLE).find().unwrap_err();
    drop(tx);
    assert_only_own(&report, threads);
    // The threads end now that `tx` is gone.
    Options::new().settle(common::CLEAN_SETTLE).verify_none();
}

fn clean_sync(threads: usize) {
    let me = own_name();
    for i in 0..threads {
        leakcheck::thread::Builder::new()
            .name(me.clone())
            .spawn(move || std::thread::sleep(Duration::from_millis(5 * i as u64)))
            .unwrap();
    }
    Options::new().settle(common::CLEAN_SETTLE).verify_none();
}

macro_rules! case {
    (leaky_async, $name:ident, $n:expr) => {
        #[tokio::test]
        async fn $name() {
            leaky_async($n).await;
        }
    };
    (leaky_multi, $name:ident, $n:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            leaky_async($n).await;
        }
    };
    (clean_async, $name:ident, $n:expr) => {
        #[tokio::test]
        async fn $name() {
            clean_async($n).await;
        }
    };
    (leaky_sync, $name:ident, $n:expr) => {
        #[test]
        fn $name() {
            leaky_sync($n);
        }
    };
    (clean_sync, $name:ident, $n:expr) => {
        #[test]
        fn $name() {
            clean_sync($n);
        }
    };
}

case!(leaky_async, case_00, 1);
case!(clean_async, case_01, 2);
case!(leaky_sync, case_02, 3);
case!(clean_sync, case_03, 4);
case!(leaky_multi, case_04, 1);
case!(clean_async, case_05, 2);
case!(leaky_async, case_06, 3);
case!(clean_async, case_07, 4);
case!(leaky_sync, case_08, 1);
case!(clean_sync, case_09, 2);
case!(leaky_multi, case_10, 3);
case!(clean_async, case_11, 4);
case!(leaky_async, case_12, 1);
case!(clean_async, case_13, 2);
case!(leaky_sync, case_14, 3);
case!(clean_sync, case_15, 4);
case!(leaky_multi, case_16, 1);
case!(clean_async, case_17, 2);
case!(leaky_async, case_18, 3);
case!(clean_async, case_19, 4);
case!(leaky_sync, case_20, 1);
case!(clean_sync, case_21, 2);
case!(leaky_multi, case_22, 3);
case!(clean_async, case_23, 4);
case!(leaky_async, case_24, 1);
case!(clean_async, case_25, 2);
case!(leaky_sync, case_26, 3);
case!(clean_sync, case_27, 4);
case!(leaky_multi, case_28, 1);
case!(clean_async, case_29, 2);
case!(leaky_async, case_30, 3);
case!(clean_async, case_31, 4);
case!(leaky_sync, case_32, 1);
case!(clean_sync, case_33, 2);
case!(leaky_multi, case_34, 3);
case!(clean_async, case_35, 4);
case!(leaky_async, case_36, 1);
case!(clean_async, case_37, 2);
case!(leaky_sync, case_38, 3);
case!(clean_sync, case_39, 4);
case!(leaky_multi, case_40, 1);
case!(clean_async, case_41, 2);
case!(leaky_async, case_42, 3);
case!(clean_async, case_43, 4);
case!(leaky_sync, case_44, 1);
case!(clean_sync, case_45, 2);
case!(leaky_multi, case_46, 3);
case!(clean_async, case_47, 4);
case!(leaky_async, case_48, 1);
case!(clean_async, case_49, 2);
case!(leaky_sync, case_50, 3);
case!(clean_sync, case_51, 4);
case!(leaky_multi, case_52, 1);
case!(clean_async, case_53, 2);
case!(leaky_async, case_54, 3);
case!(clean_async, case_55, 4);
case!(leaky_sync, case_56, 1);
case!(clean_sync, case_57, 2);
case!(leaky_multi, case_58, 3);
case!(clean_async, case_59, 4);
