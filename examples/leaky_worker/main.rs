//! A worker that ignores cancellation, caught by leakcheck.
//!
//! Run it with `cargo run --example leaky_worker`: it starts a real worker
//! loop that never watches its shutdown signal, runs the check and prints the
//! report, then runs the fixed worker and shows the check passing.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Starts a worker that processes jobs until `shutdown` fires... or so its
/// author thought: the `select!` has no arm for `shutdown`.
fn start_leaky_worker(mut jobs: mpsc::Receiver<u64>, _shutdown: CancellationToken) {
    leakcheck::Builder::new()
        .name("job-worker")
        .spawn(async move {
            loop {
                tokio::select! {
                    Some(job) = jobs.recv() => process(job).await,
                    else => break, // the queue closed
                }
            }
        });
}

/// The fix: a shutdown arm that ends the loop.
fn start_worker(mut jobs: mpsc::Receiver<u64>, shutdown: CancellationToken) {
    leakcheck::Builder::new()
        .name("job-worker")
        .spawn(async move {
            loop {
                tokio::select! {
                    Some(job) = jobs.recv() => process(job).await,
                    () = shutdown.cancelled() => break,
                    else => break, // the queue closed
                }
            }
        });
}

async fn process(job: u64) {
    tokio::time::sleep(Duration::from_millis(job)).await;
}

#[tokio::main]
async fn main() {
    let check = leakcheck::Options::new().settle(Duration::from_millis(300));

    println!("== a worker that ignores its shutdown signal ==\n");
    let (jobs, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    start_leaky_worker(rx, shutdown.clone());
    jobs.send(1).await.unwrap();
    shutdown.cancel(); // the service shuts down... the worker doesn't
    match check.find_async().await {
        Err(report) => println!("{report}"),
        Ok(()) => unreachable!("the leaky worker is still running"),
    }
    let leaked = check.clone().ignore_current();

    println!("== the same worker with a shutdown arm ==\n");
    let (jobs, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    start_worker(rx, shutdown.clone());
    jobs.send(1).await.unwrap();
    shutdown.cancel();
    leaked.verify_none_async().await;
    println!("leakcheck: no leaks; the worker ended when the service shut down");
    drop(jobs);
}
