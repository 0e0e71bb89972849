//! The example service's tests, using all three entry points: the
//! whole-binary check, `#[leak_check]`, and a check by hand. One test is
//! the leaky version of the handler and asserts the report it gets.

// The helpers of leakcheck's own integration tests.
#[path = "../../../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use leakcheck::leak_check;

leakcheck::verify_test_main!();

const APP_SOURCE: &str = include_str!("../app.rs");

fn config(abort_on_timeout: bool) -> app::Config {
    app::Config {
        work_timeout: Duration::from_millis(20),
        work_takes: Duration::from_millis(60),
        abort_on_timeout,
    }
}

/// Two requests whose work times out; returns the service, still running.
async fn two_slow_reports(abort_on_timeout: bool) -> (app::Service, leakcheck::Options) {
    let service = app::Service::start(config(abort_on_timeout)).await.unwrap();
    let check = leakcheck::Options::new()
        .settle(Duration::from_millis(300))
        .ignore_current(); // the service's own background tasks
    for _ in 0..2 {
        assert_eq!(
            app::get(service.addr, "/report").await.unwrap(),
            "report timed out"
        );
    }
    (service, check)
}

#[leak_check]
async fn the_leaky_handler_leaves_its_work_behind() {
    let (service, check) = two_slow_reports(false).await;
    let report = check.find_async().await.unwrap_err();
    common::assert_sites(
        &report,
        "examples/service/app.rs",
        APP_SOURCE,
        &[("report-work", 1)],
    );
    assert_eq!(report.leaks()[0].name(), Some("report-work"));
    let text = report.to_string();
    assert!(text.contains("spawned by task \"connection\""), "{text}");
    assert!(text.contains("spawned by task \"accept-loop\""), "{text}");
    // Draining /stats lets the stuck work deliver and end: it was waiting,
    // not doomed, exactly as the report said.
    assert_eq!(app::get(service.addr, "/stats").await.unwrap(), "1 results");
    check.verify_none_async().await;
    service.shutdown().await;
}

#[leak_check(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixed_handler_aborts_its_work() {
    let (service, check) = two_slow_reports(true).await;
    check.verify_none_async().await;
    service.shutdown().await;
}

#[tokio::test]
async fn a_shut_down_service_leaves_nothing_running() {
    let service = app::Service::start(config(true)).await.unwrap();
    assert_eq!(app::get(service.addr, "/health").await.unwrap(), "ok");
    service.shutdown().await;
    leakcheck::verify_none_async().await;
}
