//! `cargo run -p leakcheck-example-service`: starts the example HTTP
//! service, calls its slow endpoint, and shows leakcheck catching the task
//! the handler left behind; then the same with the one-line fix; then the
//! leaky version under load, as production sees it: the growth watch's
//! alert and the live-task profile at `/debug/tasks`.

use std::time::Duration;

async fn run(abort_on_timeout: bool) -> Result<(), leakcheck::Report> {
    let config = app::Config {
        work_timeout: Duration::from_millis(20),
        work_takes: Duration::from_millis(60),
        abort_on_timeout,
    };
    let service = app::Service::start(config).await.expect("bind 127.0.0.1:0");
    // The service's own background tasks are meant to run: forgive them.
    let check = leakcheck::Options::new()
        .settle(Duration::from_millis(300))
        .ignore_current();
    // Two slow reports: both time out. The first result fills the stats
    // queue; the second has nowhere to go until someone asks for /stats.
    for _ in 0..2 {
        let body = app::get(service.addr, "/report").await.expect("request");
        println!("GET /report -> {body}");
    }
    let outcome = check.find_async().await;
    service.shutdown().await;
    outcome
}

/// The leaky service under a bounded load, with the growth watch running:
/// prints the watch's alert and the `/debug/tasks` profile.
async fn in_production() {
    let watched = app::watch(Duration::from_millis(50), 3, 20).expect("a thread");
    let config = app::Config {
        work_timeout: Duration::from_millis(5),
        work_takes: Duration::from_millis(30),
        abort_on_timeout: false,
    };
    let service = app::Service::start(config).await.expect("bind 127.0.0.1:0");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let addr = service.addr;
            tokio::spawn(async move {
                for _ in 0..25 {
                    let _ = app::get(addr, "/report").await;
                }
            })
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
    // The load is over; the leaked work is not. Give the watch a few samples.
    while watched.alerts.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = app::get(service.addr, "/debug/tasks")
        .await
        .expect("request");
    println!("\nGET /debug/tasks ->\n{profile}");
    drop(watched);
    service.shutdown().await;
}

#[tokio::main]
async fn main() {
    println!("== the handler forgets its work when it times out ==\n");
    match run(false).await {
        Err(report) => println!("\n{report}"),
        Ok(()) => println!("no leak?"),
    }
    println!("== with the fix: `work.abort()` on timeout ==\n");
    match run(true).await {
        Ok(()) => println!("\nleakcheck: no leaks"),
        Err(report) => println!("\n{report}"),
    }
    println!("\n== in production: the growth watch and /debug/tasks, under load ==");
    in_production().await;
}
