//! The service in production: under a bounded load from a client on
//! loopback, the leaky handler's work piles up at its spawn site, the
//! growth watch names that site, and `/debug/tasks` shows it; with the
//! fix, the same load leaves nothing for the watch to flag. One test, so
//! that nothing else in this process spawns at the handler's site.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const APP_SOURCE: &str = include_str!("../app.rs");

/// Concurrent clients: at most this many reports are in flight at once,
/// well under the watch's threshold, so only a leak can reach it.
const CLIENTS: usize = 8;
const REQUESTS_EACH: usize = 40;
const AT_LEAST: usize = 50;

async fn load(service: &app::Service) {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = service.addr;
            tokio::spawn(async move {
                for _ in 0..REQUESTS_EACH {
                    let body = app::get(addr, "/report").await.unwrap();
                    assert_eq!(body, "report timed out");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
}

fn config(abort_on_timeout: bool) -> app::Config {
    app::Config {
        work_timeout: Duration::from_millis(5),
        work_takes: Duration::from_millis(30),
        abort_on_timeout,
    }
}

fn report_work(growth: &leakcheck::Growth) -> bool {
    growth
        .spawned_at()
        .file()
        .ends_with("examples/service/app.rs")
        && growth.spawned_at().line() == common::site_line(APP_SOURCE, "report-work")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_names_the_leaky_handler_and_not_the_fixed_one() {
    let site = format!(
        "examples/service/app.rs:{}:",
        common::site_line(APP_SOURCE, "report-work")
    );

    // The leaky handler: every timed-out report leaves its work behind.
    let leaky = app::watch(Duration::from_millis(20), 3, AT_LEAST).unwrap();
    let service = app::Service::start(config(false)).await.unwrap();
    load(&service).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let flagged = loop {
        let seen = leaky.alerts.lock().unwrap().clone();
        if let Some(growth) = seen.into_iter().find(report_work) {
            break growth;
        }
        assert!(
            Instant::now() < deadline,
            "the watch never flagged the handler's work"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(flagged.name(), Some("report-work"));
    assert!(flagged.now() >= AT_LEAST, "{flagged}");
    let profile = app::get(service.addr, "/debug/tasks").await.unwrap();
    assert!(
        profile.contains(&format!("task \"report-work\" spawned at {site}")),
        "{profile}"
    );
    assert!(
        profile.contains("spawned by task \"connection\""),
        "{profile}"
    );
    drop(leaky);
    service.shutdown().await;

    // Once the service is gone its stuck work ends too (the queue it waited
    // on closes): wait for that before the fixed run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = leakcheck::profile().to_string();
        if !left.contains(&site) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the leaked work never ended:\n{left}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The fixed handler, the same load: nothing at that site to flag.
    let fixed = app::watch(Duration::from_millis(20), 3, AT_LEAST).unwrap();
    let service = app::Service::start(config(true)).await.unwrap();
    load(&service).await;
    // More samples after the load than the rule needs to flag a site.
    let after_load = fixed.samples.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fixed.samples.load(Ordering::Relaxed) < after_load + 5 {
        assert!(Instant::now() < deadline, "the watch stopped sampling");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let alerts = fixed.alerts.lock().unwrap().clone();
    drop(fixed);
    assert!(
        !alerts.iter().any(report_work),
        "the fixed handler was flagged: {alerts:?}"
    );
    service.shutdown().await;
}
