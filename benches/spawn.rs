//! Spawn cost: leakcheck's tracking spawner against plain tokio, in the same
//! run. Run with `cargo bench --bench spawn`; see `benches/README.md`.

use divan::Bencher;

fn main() {
    divan::main();
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// Spawn and await one trivial task at a time on a current-thread runtime.
mod spawn_await_one {
    use super::*;

    #[divan::bench]
    fn tokio_spawn(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| runtime.block_on(async { tokio::spawn(async {}).await.unwrap() }));
    }

    #[divan::bench]
    fn leakcheck_spawn(bencher: Bencher) {
        let runtime = current_thread();
        bencher
            .bench_local(|| runtime.block_on(async { leakcheck::spawn(async {}).await.unwrap() }));
    }
}

/// Spawn 1,000 trivial tasks from inside a task, then join them all.
mod spawn_1000_then_join {
    use super::*;

    const TASKS: usize = 1_000;

    async fn fan_out<H: std::future::Future<Output = Result<(), tokio::task::JoinError>>>(
        spawn: impl Fn() -> H,
    ) {
        let handles: Vec<H> = (0..TASKS).map(|_| spawn()).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }

    #[divan::bench]
    fn tokio_spawn(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| runtime.block_on(fan_out(|| tokio::spawn(async {}))));
    }

    #[divan::bench]
    fn leakcheck_spawn(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| runtime.block_on(fan_out(|| leakcheck::spawn(async {}))));
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

    #[divan::bench]
    fn tokio_spawn(bencher: Bencher) {
        let runtime = current_thread();
        bencher
            .bench_local(|| runtime.block_on(async { tokio::spawn(yield_1000()).await.unwrap() }));
    }

    #[divan::bench]
    fn leakcheck_spawn(bencher: Bencher) {
        let runtime = current_thread();
        bencher.bench_local(|| {
            runtime.block_on(async { leakcheck::spawn(yield_1000()).await.unwrap() })
        });
    }
}
