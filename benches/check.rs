//! What a check costs: passing with other scopes' tasks alive, the settle
//! latency, and failing with its own survivors.
//! `cargo bench -p leakcheck-benches --bench check`.

use std::time::Duration;

use divan::Bencher;
use leakcheck::Options;

fn main() {
    divan::main();
}

/// A runtime on its own thread holding `n` pending tracked tasks, which
/// belong to that thread's scope, not the benchmark's.
struct Foreign {
    _runtime: tokio::runtime::Runtime,
}

fn foreign_tasks(n: usize) -> Foreign {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    std::thread::spawn(move || {
        let _entered = handle.enter();
        for _ in 0..n {
            leakcheck::spawn(std::future::pending::<()>());
        }
    })
    .join()
    .unwrap();
    Foreign { _runtime: runtime }
}

/// Benchmark 5: A passing `find()` while other scopes hold 0, 10k or 100k live tasks.
#[divan::bench(args = [0, 10_000, 100_000], sample_count = 50)]
fn passing_find_with_foreign_tasks(bencher: Bencher, foreign: usize) {
    let _others = foreign_tasks(foreign);
    let options = Options::new();
    bencher.bench_local(|| options.find().unwrap());
}

/// Benchmark 6: Settle latency: the last task of the scope ends (a oneshot fires),
/// then `find_async` returns. Compare with awaiting the task's JoinHandle.
mod settle_latency {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
    }

    #[divan::bench(sample_count = 100)]
    fn join_handle(bencher: Bencher) {
        let runtime = runtime();
        bencher
            .with_inputs(|| {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let task = runtime.spawn(async move { rx.await.ok() });
                (tx, task)
            })
            .bench_local_values(|(tx, task)| {
                runtime.block_on(async move {
                    tx.send(()).unwrap();
                    task.await.unwrap();
                })
            });
    }

    #[divan::bench(sample_count = 100)]
    fn find_async(bencher: Bencher) {
        let runtime = runtime();
        let options = Options::new().settle(Duration::from_secs(10));
        bencher
            .with_inputs(|| {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                runtime.block_on(async {
                    leakcheck::spawn(async move { rx.await.ok() });
                });
                tx
            })
            .bench_local_values(|tx| {
                runtime.block_on(async {
                    tx.send(()).unwrap();
                    options.find_async().await.unwrap();
                })
            });
    }
}

/// Benchmark 7: A failing `find()` with 1, 100 or 10k survivors of its own, the
/// report built and rendered.
#[divan::bench(args = [1, 100, 10_000], sample_count = 20)]
fn failing_find_and_render(bencher: Bencher, survivors: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..survivors {
            leakcheck::spawn(std::future::pending::<()>());
        }
    });
    let options = Options::new().settle(Duration::ZERO);
    bencher.bench_local(|| options.find().unwrap_err().to_string());
}

/// A whole passing test, as `#[tokio::test]` and as `#[leak_check]` run
/// it: build the runtime, spawn and await one trivial task, check (for
/// leakcheck), drop the runtime. The per-test CPU a suite pays.
mod passing_test {
    use super::*;

    #[divan::bench(sample_count = 200)]
    fn tokio_test(bencher: Bencher) {
        bencher.bench_local(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async { tokio::spawn(async {}).await.unwrap() });
        });
    }

    #[divan::bench(sample_count = 200)]
    fn leak_check(bencher: Bencher) {
        bencher.bench_local(|| {
            // What `#[leak_check] async fn` expands to.
            let scope = leakcheck::__private::TestScope::enter("passing_test", Options::new());
            let runtime = leakcheck::runtime::build(
                tokio::runtime::Builder::new_current_thread().enable_all(),
            )
            .unwrap();
            runtime.block_on(async move {
                leakcheck::spawn(async {}).await.unwrap();
                scope.finish_async(()).await
            });
        });
    }
}
