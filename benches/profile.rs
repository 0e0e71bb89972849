//! What a live-task profile costs, and whether a watch slows spawns:
//! `cargo bench -p leakcheck-benches --bench profile`.
//!
//! - `profile_of_live_tasks`: `leakcheck::profile()` with 1k, 10k and 100k
//!   live tasks in 100 groups (target: 100k in ≤ 20 ms).
//! - `spawn_while_profiling`: spawn + await while another thread takes
//!   profiles of 100k live tasks in a loop, against `spawn_alone`: a spawn
//!   waits only while a profile visits its shard.
//! - `spawn_with_watch`: spawn + await with a watch sampling every 1 ms,
//!   against no watch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;

fn main() {
    divan::main();
}

/// `n` pending tracked tasks spread over 100 spawn sites (by name), on a
/// runtime that lives as long as the returned value.
fn live_tasks(n: usize) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let _entered = runtime.enter();
    for i in 0..n {
        let name = format!("group-{}", i % 100);
        drop(
            leakcheck::Builder::new()
                .name(&name)
                .spawn(std::future::pending::<()>()),
        );
    }
    runtime
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 20)]
fn profile_of_live_tasks(bencher: Bencher, n: usize) {
    let _runtime = live_tasks(n);
    bencher.bench_local(leakcheck::profile);
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Spawn + await one trivial tracked task while nothing else runs.
#[divan::bench(sample_count = 200)]
fn spawn_alone(bencher: Bencher) {
    let runtime = current_thread();
    bencher.bench_local(|| runtime.block_on(async { leakcheck::spawn(async {}).await }));
}

/// The same while another thread takes profiles of 100k live tasks in a
/// loop: spawns wait only while a profile visits their shard.
#[divan::bench(sample_count = 200)]
fn spawn_while_profiling(bencher: Bencher) {
    let _tasks = live_tasks(100_000);
    let stop = Arc::new(AtomicBool::new(false));
    let profiler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                divan::black_box(leakcheck::profile());
            }
        })
    };
    let runtime = current_thread();
    bencher.bench_local(|| runtime.block_on(async { leakcheck::spawn(async {}).await }));
    stop.store(true, Ordering::Relaxed);
    profiler.join().unwrap();
}

/// Spawn + await with a watch sampling every millisecond.
#[divan::bench(sample_count = 200)]
fn spawn_with_watch(bencher: Bencher) {
    let watch = leakcheck::Watch::builder()
        .every(Duration::from_millis(1))
        .start(|_, _| {})
        .unwrap();
    let runtime = current_thread();
    bencher.bench_local(|| runtime.block_on(async { leakcheck::spawn(async {}).await }));
    drop(watch);
}
