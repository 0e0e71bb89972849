//! Memory per live task (benchmark 8): bytes allocated for 100k pending
//! tasks, plain tokio against leakcheck, for a trivial future and a
//! 256-byte one. A counting global allocator measures every byte the run
//! allocates.
//! `cargo bench -p leakcheck-benches --bench memory` prints the table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts the bytes currently allocated, then defers to the system.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` unchanged; the counter is a
// side effect that never touches the memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TASKS: usize = 100_000;

/// Bytes per task while `TASKS` tasks made by `spawn` are alive.
fn bytes_per_task(spawn: impl Fn(&tokio::runtime::Runtime)) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Warm up: let the runtime and the registry allocate their fixed parts.
    spawn(&runtime);
    runtime.block_on(tokio::task::yield_now());
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for _ in 0..TASKS {
        spawn(&runtime);
    }
    runtime.block_on(tokio::task::yield_now()); // every task polled once
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    drop(runtime);
    (after - before) as f64 / TASKS as f64
}

fn main() {
    let trivial_tokio = bytes_per_task(|rt| {
        rt.spawn(std::future::pending::<()>());
    });
    let trivial_leakcheck = bytes_per_task(|rt| {
        let _entered = rt.enter();
        leakcheck::spawn(std::future::pending::<()>());
    });
    let big_tokio = bytes_per_task(|rt| {
        let payload = [1u8; 256];
        rt.spawn(async move {
            std::future::pending::<()>().await;
            std::hint::black_box(payload);
        });
    });
    let big_leakcheck = bytes_per_task(|rt| {
        let _entered = rt.enter();
        let payload = [1u8; 256];
        leakcheck::spawn(async move {
            std::future::pending::<()>().await;
            std::hint::black_box(payload);
        });
    });
    println!("bytes per live task at {TASKS} live tasks");
    println!("| future | tokio | leakcheck | extra |");
    println!("|---|---|---|---|");
    for (name, plain, tracked) in [
        ("trivial (`pending()`)", trivial_tokio, trivial_leakcheck),
        ("256-byte", big_tokio, big_leakcheck),
    ] {
        println!(
            "| {name} | {plain:.0} | {tracked:.0} | {:.0} |",
            tracked - plain
        );
    }
}
