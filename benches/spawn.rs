//! Tracking cost: each leakcheck spawner against the plain tokio/std call
//! in the same run. `cargo bench -p leakcheck-benches --bench spawn`;
//! figures in `benches/README.md`.
//!
//! The sub-microsecond benchmarks take 1,000 samples: on a shared VM, wall
//! clock drifts by tens of percent between runs of 100.

use divan::Bencher;

fn main() {
    divan::main();
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a multi-thread runtime")
}

/// Benchmark 1: Spawn and await one trivial task at a time, current-thread runtime.
mod spawn_await_one {
    use super::*;

    #[divan::bench(sample_count = 1000)]
    fn tokio(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| runtime.block_on(async { tokio::spawn(async {}).await.unwrap() }));
    }

    #[divan::bench(sample_count = 1000)]
    fn leakcheck(bencher: Bencher) {
        let runtime = current_thread();
        bencher
            .bench_local(|| runtime.block_on(async { leakcheck::spawn(async {}).await.unwrap() }));
    }
}

/// Spawns `n` trivial tasks with `spawn`, then joins them all.
async fn spawn_then_join<H>(n: usize, spawn: impl Fn() -> H)
where
    H: std::future::Future<Output = Result<(), tokio::task::JoinError>>,
{
    let handles: Vec<H> = (0..n).map(|_| spawn()).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

const MANY: usize = 100_000;

/// Benchmark 2: Spawn 100k trivial tasks, then join them all.
mod spawn_100k_then_join {
    use super::*;

    #[divan::bench(sample_count = 20)]
    fn tokio_current_thread(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| runtime.block_on(spawn_then_join(MANY, || tokio::spawn(async {}))));
    }

    #[divan::bench(sample_count = 20)]
    fn leakcheck_current_thread(bencher: Bencher) {
        let runtime = current_thread();
        bencher
            .bench_local(|| runtime.block_on(spawn_then_join(MANY, || leakcheck::spawn(async {}))));
    }

    /// Spawned from inside a worker, as a service's tasks are.
    #[divan::bench(sample_count = 20)]
    fn tokio_multi_thread(bencher: Bencher) {
        let runtime = multi_thread();
        bencher.bench_local(|| {
            runtime.block_on(async {
                tokio::spawn(spawn_then_join(MANY, || tokio::spawn(async {})))
                    .await
                    .unwrap()
            })
        });
    }

    #[divan::bench(sample_count = 20)]
    fn leakcheck_multi_thread(bencher: Bencher) {
        let runtime = multi_thread();
        bencher.bench_local(|| {
            runtime.block_on(async {
                leakcheck::spawn(spawn_then_join(MANY, || leakcheck::spawn(async {})))
                    .await
                    .unwrap()
            })
        });
    }
}

/// Benchmark 3: Fan-out from two workers at once (2 × 50k), multi-thread runtime.
mod fan_out_2x50k {
    use super::*;

    #[divan::bench(sample_count = 20)]
    fn tokio(bencher: Bencher) {
        let runtime = multi_thread();
        bencher.bench_local(|| {
            runtime.block_on(async {
                let a = tokio::spawn(spawn_then_join(MANY / 2, || tokio::spawn(async {})));
                let b = tokio::spawn(spawn_then_join(MANY / 2, || tokio::spawn(async {})));
                a.await.unwrap();
                b.await.unwrap();
            })
        });
    }

    #[divan::bench(sample_count = 20)]
    fn leakcheck(bencher: Bencher) {
        let runtime = multi_thread();
        bencher.bench_local(|| {
            runtime.block_on(async {
                let a = leakcheck::spawn(spawn_then_join(MANY / 2, || leakcheck::spawn(async {})));
                let b = leakcheck::spawn(spawn_then_join(MANY / 2, || leakcheck::spawn(async {})));
                a.await.unwrap();
                b.await.unwrap();
            })
        });
    }
}

/// Benchmark 4: Blocking work: `spawn_blocking` + await, and `thread::spawn` + join.
mod blocking_and_threads {
    use super::*;

    #[divan::bench(sample_count = 1000)]
    fn tokio_spawn_blocking(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| {
            runtime.block_on(async { tokio::task::spawn_blocking(|| ()).await.unwrap() })
        });
    }

    #[divan::bench(sample_count = 1000)]
    fn leakcheck_spawn_blocking(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| {
            runtime.block_on(async { leakcheck::spawn_blocking(|| ()).await.unwrap() })
        });
    }

    #[divan::bench(sample_count = 1000)]
    fn std_thread_spawn(bencher: Bencher) {
        bencher.bench_local(|| std::thread::spawn(|| ()).join().unwrap());
    }

    #[divan::bench(sample_count = 1000)]
    fn leakcheck_thread_spawn(bencher: Bencher) {
        bencher.bench_local(|| leakcheck::thread::spawn(|| ()).join().unwrap());
    }
}

/// A task that yields 1,000 times: the cost of tracking each poll (state
/// updates and the counting waker).
mod poll_1000_yields {
    use super::*;

    async fn yield_1000() {
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
    }

    #[divan::bench(sample_count = 1000)]
    fn tokio(bencher: Bencher) {
        let runtime = current_thread();
        bencher
            .bench_local(|| runtime.block_on(async { tokio::spawn(yield_1000()).await.unwrap() }));
    }

    #[divan::bench(sample_count = 1000)]
    fn leakcheck(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| {
            runtime.block_on(async { leakcheck::spawn(yield_1000()).await.unwrap() })
        });
    }
}
