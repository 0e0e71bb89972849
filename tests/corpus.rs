//! The leak pattern corpus: every goroutine-leak pattern from the design
//! notes, translated to tokio and std. Each pattern is a pair of tests: the
//! leaky version is caught and the report names the right spawn site (by
//! file and line, through `Report::leaks`), and the fixed version passes.
//!
//! Each pattern's "library code" is written the way it would be in a
//! service; the `// site:` comments mark the spawn lines the reports must
//! name.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_sites, assert_snapshot, expect_clean, expect_report, redact};
use tokio::sync::{mpsc, Barrier, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SOURCE: &str = include_str!("corpus.rs");
const FILE: &str = "tests/corpus.rs";

fn assert_sites_here(report: &leakcheck::Report, expected: &[(&str, usize)]) {
    assert_sites(report, FILE, SOURCE, expected);
}

/// Pins the whole report of a pattern, with run-to-run details redacted.
fn assert_report_snapshot(name: &str, report: &leakcheck::Report) {
    assert_snapshot(name, &redact(&report.to_string()), false);
}

// 1. A worker loop that ignores cancellation -------------------------------

fn start_worker(mut jobs: mpsc::Receiver<u32>, shutdown: CancellationToken, obey: bool) {
    leakcheck::Builder::new().name("worker").spawn(async move {
        // site:worker
        loop {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => process(job).await,
                    None => break,
                },
                () = shutdown.cancelled(), if obey => break,
            }
        }
    });
}

async fn process(job: u32) {
    tokio::time::sleep(Duration::from_millis(u64::from(job))).await;
}

#[tokio::test]
async fn p01_worker_ignoring_cancellation_is_caught() {
    let (jobs, rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    start_worker(rx, shutdown.clone(), false);
    jobs.send(1).await.unwrap();
    shutdown.cancel();
    let report = expect_report().await;
    assert_sites_here(&report, &[("worker", 1)]);
    assert_eq!(report.leaks()[0].name(), Some("worker"));
    println!("{report}"); // shown with --nocapture
    assert_report_snapshot("p01_worker_ignoring_cancellation", &report);
}

#[tokio::test]
async fn p01_worker_watching_cancellation_ends() {
    let (jobs, rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    start_worker(rx, shutdown.clone(), true);
    jobs.send(1).await.unwrap();
    shutdown.cancel();
    expect_clean().await;
}

// 2. A send that never completes: the receiver lives but is never read ----

fn start_producer(tx: mpsc::Sender<u32>) -> JoinHandle<()> {
    leakcheck::spawn(async move {
        // site:producer
        for i in 0.. {
            if tx.send(i).await.is_err() {
                break; // the receiver is gone
            }
        }
    })
}

#[tokio::test]
async fn p02_send_on_full_channel_is_caught() {
    let (tx, rx) = mpsc::channel(1);
    start_producer(tx);
    let report = expect_report().await;
    assert_sites_here(&report, &[("producer", 1)]);
    assert_report_snapshot("p02_send_on_full_channel", &report);
    drop(rx);
}

#[tokio::test]
async fn p02_send_ends_once_receiver_is_dropped() {
    let (tx, mut rx) = mpsc::channel(1);
    start_producer(tx);
    assert_eq!(rx.recv().await, Some(0));
    drop(rx); // done consuming: say so
    expect_clean().await;
}

// 3. A receive loop on a channel whose sender is never dropped -------------

fn start_consumer(mut rx: mpsc::Receiver<String>) {
    leakcheck::spawn(async move {
        // site:consumer
        while let Some(line) = rx.recv().await {
            assert!(!line.is_empty());
        }
    });
}

#[tokio::test]
async fn p03_receive_loop_with_live_sender_is_caught() {
    let (tx, rx) = mpsc::channel(8);
    start_consumer(rx);
    tx.send("hello".to_owned()).await.unwrap();
    let report = expect_report().await;
    assert_sites_here(&report, &[("consumer", 1)]);
    assert_report_snapshot("p03_receive_loop_with_live_sender", &report);
    drop(tx);
}

#[tokio::test]
async fn p03_receive_loop_ends_when_sender_drops() {
    let (tx, rx) = mpsc::channel(8);
    start_consumer(rx);
    tx.send("hello".to_owned()).await.unwrap();
    drop(tx);
    expect_clean().await;
}

// 4. An interval loop that nobody stops -------------------------------------

fn start_heartbeat(stop: Option<CancellationToken>) {
    leakcheck::spawn(async move {
        // site:heartbeat
        // Ticks far apart, so that whenever the check looks the task is
        // waiting for its next tick (the snapshot pins it as "waiting").
        let mut every = tokio::time::interval(Duration::from_secs(10));
        loop {
            match &stop {
                Some(stop) => tokio::select! {
                    _ = every.tick() => {}
                    () = stop.cancelled() => return,
                },
                None => {
                    every.tick().await;
                }
            }
        }
    });
}

#[tokio::test]
async fn p04_unstopped_interval_is_caught() {
    start_heartbeat(None);
    let report = expect_report().await;
    assert_sites_here(&report, &[("heartbeat", 1)]);
    assert_report_snapshot("p04_unstopped_interval", &report);
}

#[tokio::test]
async fn p04_interval_with_stop_ends() {
    let stop = CancellationToken::new();
    start_heartbeat(Some(stop.clone()));
    tokio::task::yield_now().await; // let it tick once
    stop.cancel();
    expect_clean().await;
}

// 5. Recursive spawning without depth control (a crawler) ------------------

/// Page `n` links to pages `2n` and `2n + 1`; the site has `PAGES` pages.
const PAGES: u32 = 1023;

fn crawl(page: u32, depth: u32, max_depth: Option<u32>, found: mpsc::Sender<u32>) {
    leakcheck::spawn(async move {
        // site:crawl
        if max_depth.is_none_or(|max| depth < max) {
            for link in [2 * page, 2 * page + 1] {
                if link <= PAGES {
                    crawl(link, depth + 1, max_depth, found.clone());
                }
            }
        }
        let _ = found.send(page).await;
    });
}

fn start_crawl(max_depth: Option<u32>) -> mpsc::Receiver<u32> {
    let (found, rx) = mpsc::channel(16);
    leakcheck::spawn(async move {
        // site:crawl-root
        crawl(1, 0, max_depth, found);
    });
    rx
}

#[tokio::test]
async fn p05_unbounded_crawler_is_caught_and_grouped() {
    let mut found = start_crawl(None);
    for _ in 0..10 {
        found.recv().await.unwrap(); // we only wanted ten pages...
    }
    // ...but keep the receiver: every other page's task blocks on `send`.
    let report = expect_report().await;
    assert_sites_here(&report, &[("crawl", PAGES as usize - 10 - 16)]);
    let text = report.to_string();
    assert!(text.contains(&format!("{} × task", PAGES - 26)), "{text}");
    assert!(
        text.lines().count() <= 12,
        "the report stays short:\n{text}"
    );
    println!("{report}"); // shown with --nocapture
    assert_report_snapshot("p05_unbounded_crawler", &report);
    drop(found);
}

#[tokio::test]
async fn p05_depth_limited_crawler_ends() {
    let mut found = start_crawl(Some(3));
    let mut pages = 0;
    while found.recv().await.is_some() {
        pages += 1;
    }
    assert_eq!(pages, 15);
    expect_clean().await;
}

// 6. An orphaned task after a timeout ---------------------------------------

/// The service's result queue: already full with an unread result.
struct Service {
    results: mpsc::Sender<u32>,
    _unread: mpsc::Receiver<u32>,
}

impl Service {
    fn new() -> Service {
        let (results, unread) = mpsc::channel(1);
        results.try_send(0).unwrap();
        Service {
            results,
            _unread: unread,
        }
    }

    /// Gives up after 10ms; `abort_on_timeout` is the fix.
    async fn handle(&self, abort_on_timeout: bool) -> Option<u32> {
        let results = self.results.clone();
        let mut work = leakcheck::spawn(async move {
            // site:slow-work
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = results.send(42).await; // blocks: the queue is full
            42
        });
        match tokio::time::timeout(Duration::from_millis(10), &mut work).await {
            Ok(done) => done.ok(),
            Err(_elapsed) => {
                if abort_on_timeout {
                    work.abort();
                }
                None
            }
        }
    }
}

#[tokio::test]
async fn p06_orphan_after_timeout_is_caught() {
    let service = Service::new();
    assert_eq!(service.handle(false).await, None);
    let report = expect_report().await;
    assert_sites_here(&report, &[("slow-work", 1)]);
    assert_report_snapshot("p06_orphan_after_timeout", &report);
}

#[tokio::test]
async fn p06_work_aborted_on_timeout_ends() {
    let service = Service::new();
    assert_eq!(service.handle(true).await, None);
    expect_clean().await;
}

// 7. An infinite loop without an exit ---------------------------------------

fn start_poller(stop: Option<CancellationToken>) {
    leakcheck::spawn(async move {
        // site:poller
        loop {
            tokio::task::yield_now().await; // "work"
            if stop.as_ref().is_some_and(CancellationToken::is_cancelled) {
                break;
            }
            // Long enough that whenever the check looks the task is asleep
            // (the snapshot pins it as "waiting").
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p07_loop_without_exit_is_caught() {
    start_poller(None);
    let report = expect_report().await;
    assert_sites_here(&report, &[("poller", 1)]);
    assert_report_snapshot("p07_loop_without_exit", &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p07_loop_with_exit_ends() {
    let stop = CancellationToken::new();
    start_poller(Some(stop.clone()));
    stop.cancel();
    expect_clean().await;
}

// 8. Count mismatch: a barrier waiting for a party that never comes ----------

fn start_parties(barrier: &Arc<Barrier>, parties: usize) {
    for _ in 0..parties {
        let barrier = barrier.clone();
        leakcheck::spawn(async move {
            // site:party
            barrier.wait().await;
        });
    }
}

#[tokio::test]
async fn p08_barrier_waiting_for_missing_party_is_caught() {
    let barrier = Arc::new(Barrier::new(3));
    start_parties(&barrier, 2);
    let report = expect_report().await;
    assert_sites_here(&report, &[("party", 2)]);
    assert_report_snapshot("p08_barrier_missing_party", &report);
}

#[tokio::test]
async fn p08_barrier_sized_to_its_parties_ends() {
    let barrier = Arc::new(Barrier::new(2));
    start_parties(&barrier, 2);
    expect_clean().await;
}

// 9. `select!` on two channels that never fire, and no cancel arm ----------

fn start_multiplexer(
    mut a: mpsc::Receiver<u8>,
    mut b: mpsc::Receiver<u8>,
    cancel: Option<CancellationToken>,
) {
    leakcheck::spawn(async move {
        // site:multiplexer
        let watch = cancel.is_some();
        let cancel = cancel.unwrap_or_default();
        tokio::select! {
            _ = a.recv() => {}
            _ = b.recv() => {}
            () = cancel.cancelled(), if watch => {}
        }
    });
}

#[tokio::test]
async fn p09_select_without_cancel_arm_is_caught() {
    let (_a_tx, a) = mpsc::channel(1);
    let (_b_tx, b) = mpsc::channel(1);
    start_multiplexer(a, b, None);
    let report = expect_report().await;
    assert_sites_here(&report, &[("multiplexer", 1)]);
    assert_report_snapshot("p09_select_without_cancel_arm", &report);
}

#[tokio::test]
async fn p09_select_with_cancel_arm_ends() {
    let (_a_tx, a) = mpsc::channel(1);
    let (_b_tx, b) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    start_multiplexer(a, b, Some(cancel.clone()));
    cancel.cancel();
    expect_clean().await;
}

// 10. Cancellation not inherited ---------------------------------------------

fn start_job(parent: &CancellationToken, inherit: bool) {
    let token = if inherit {
        parent.child_token()
    } else {
        CancellationToken::new() // meant: parent.child_token()
    };
    leakcheck::spawn(async move {
        // site:job
        token.cancelled().await;
    });
}

#[tokio::test]
async fn p10_fresh_token_instead_of_child_is_caught() {
    let parent = CancellationToken::new();
    start_job(&parent, false);
    parent.cancel();
    let report = expect_report().await;
    assert_sites_here(&report, &[("job", 1)]);
    assert_report_snapshot("p10_fresh_token_instead_of_child", &report);
}

#[tokio::test]
async fn p10_child_token_ends_with_parent() {
    let parent = CancellationToken::new();
    start_job(&parent, true);
    parent.cancel();
    expect_clean().await;
}

// 11. A pipeline stage whose producer never drops its sender ---------------

fn stage(mut input: mpsc::Receiver<u32>, output: mpsc::Sender<u32>) {
    leakcheck::spawn(async move {
        // site:stage
        while let Some(x) = input.recv().await {
            if output.send(x * 2).await.is_err() {
                break;
            }
        }
    });
}

fn pipeline() -> (mpsc::Sender<u32>, mpsc::Receiver<u32>) {
    let (source, a) = mpsc::channel(4);
    let (b_tx, b) = mpsc::channel(4);
    let (sink_tx, sink) = mpsc::channel(4);
    stage(a, b_tx);
    stage(b, sink_tx);
    (source, sink)
}

#[tokio::test]
async fn p11_stage_waiting_on_undropped_sender_is_caught() {
    let (source, mut sink) = pipeline();
    source.send(1).await.unwrap();
    assert_eq!(sink.recv().await, Some(4));
    // The producer is done but keeps `source`: both stages wait forever.
    let report = expect_report().await;
    assert_sites_here(&report, &[("stage", 2)]);
    assert_report_snapshot("p11_stage_waiting_on_undropped_sender", &report);
    drop(source);
}

#[tokio::test]
async fn p11_pipeline_drains_when_producer_drops_sender() {
    let (source, mut sink) = pipeline();
    source.send(1).await.unwrap();
    drop(source);
    assert_eq!(sink.recv().await, Some(4));
    assert_eq!(sink.recv().await, None);
    expect_clean().await;
}

// 12. A fan-in merger waiting on a worker that never finishes --------------

fn fan_in(stuck: Arc<Notify>, worker_timeout: Option<Duration>) -> JoinHandle<Vec<u32>> {
    let workers: Vec<JoinHandle<u32>> = (0..3)
        .map(|i| {
            let stuck = stuck.clone();
            leakcheck::spawn(async move {
                // site:fan-worker
                if i == 2 {
                    let wait = stuck.notified();
                    match worker_timeout {
                        Some(limit) => {
                            let _ = tokio::time::timeout(limit, wait).await;
                        }
                        None => wait.await,
                    }
                }
                i
            })
        })
        .collect();
    leakcheck::spawn(async move {
        // site:merger
        let mut all = Vec::new();
        for worker in workers {
            all.push(worker.await.unwrap());
        }
        all
    })
}

#[tokio::test]
async fn p12_merger_waiting_on_stuck_worker_is_caught() {
    let _merged = fan_in(Arc::new(Notify::new()), None);
    let report = expect_report().await;
    assert_sites_here(&report, &[("fan-worker", 1), ("merger", 1)]);
    assert_report_snapshot("p12_merger_waiting_on_stuck_worker", &report);
}

#[tokio::test]
async fn p12_merger_with_worker_timeout_ends() {
    let merged = fan_in(Arc::new(Notify::new()), Some(Duration::from_millis(10)));
    assert_eq!(merged.await.unwrap(), vec![0, 1, 2]);
    expect_clean().await;
}

// 13. A worker pool with no shutdown -----------------------------------------

struct Pool {
    jobs: mpsc::Sender<u32>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(size: usize) -> Pool {
        let (jobs, rx) = mpsc::channel::<u32>(16);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let workers = (0..size)
            .map(|_| {
                let rx = rx.clone();
                leakcheck::spawn(async move {
                    // site:pool-worker
                    while let Some(job) = rx.lock().await.recv().await {
                        assert!(job < 100);
                    }
                })
            })
            .collect();
        Pool { jobs, workers }
    }

    /// The fix: close the queue and wait for the workers.
    async fn shutdown(self) {
        drop(self.jobs);
        for worker in self.workers {
            worker.await.unwrap();
        }
    }
}

#[tokio::test]
async fn p13_pool_without_shutdown_is_caught() {
    let pool = Pool::new(4);
    pool.jobs.send(7).await.unwrap();
    let report = expect_report().await;
    assert_sites_here(&report, &[("pool-worker", 4)]);
    assert_report_snapshot("p13_pool_without_shutdown", &report);
}

#[tokio::test]
async fn p13_pool_with_shutdown_ends() {
    let pool = Pool::new(4);
    pool.jobs.send(7).await.unwrap();
    pool.shutdown().await;
    expect_clean().await;
}

// 14. A semaphore permit acquired outside the task and kept -----------------

struct Limiter {
    permits: Arc<Semaphore>,
    warm_up: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Limiter {
    /// Takes a permit "to warm up" and (in the leaky version) keeps it.
    async fn new(keep_warm_up_permit: bool) -> Limiter {
        let permits = Arc::new(Semaphore::new(1));
        let permit = permits.clone().acquire_owned().await.unwrap();
        let warm_up = keep_warm_up_permit.then_some(permit);
        Limiter { permits, warm_up }
    }

    fn run(&self, jobs: u32) {
        for _ in 0..jobs {
            let permits = self.permits.clone();
            leakcheck::spawn(async move {
                // site:limited-job
                let _permit = permits.acquire().await.unwrap();
            });
        }
    }
}

#[tokio::test]
async fn p14_permit_held_outside_parks_tasks_and_is_caught() {
    let limiter = Limiter::new(true).await;
    limiter.run(3);
    let report = expect_report().await;
    assert_sites_here(&report, &[("limited-job", 3)]);
    assert_report_snapshot("p14_permit_held_outside", &report);
    assert!(limiter.warm_up.is_some());
}

#[tokio::test]
async fn p14_permit_released_lets_tasks_run() {
    let limiter = Limiter::new(false).await;
    limiter.run(3);
    expect_clean().await;
}

// 15. A task parked on a Notify that nobody notifies ------------------------

fn start_waiter(ready: Arc<Notify>) {
    leakcheck::spawn(async move {
        // site:notify-waiter
        ready.notified().await;
    });
}

#[tokio::test]
async fn p15_unnotified_waiter_is_caught() {
    let ready = Arc::new(Notify::new());
    start_waiter(ready.clone());
    let report = expect_report().await;
    assert_sites_here(&report, &[("notify-waiter", 1)]);
    assert_report_snapshot("p15_unnotified_waiter", &report);
}

#[tokio::test]
async fn p15_notified_waiter_ends() {
    let ready = Arc::new(Notify::new());
    start_waiter(ready.clone());
    ready.notify_one(); // stores a permit if the waiter isn't waiting yet
    expect_clean().await;
}

// 16. errgroup analogue: one task fails, the others keep running ------------

struct Group {
    set: tokio::task::JoinSet<Result<(), String>>,
}

impl Group {
    fn start() -> Group {
        let mut set = tokio::task::JoinSet::new();
        set.spawn(leakcheck::track(async { Err("shard 0 failed".to_owned()) })); // site:group-fail
        for _ in 1..3 {
            set.spawn(leakcheck::track(async {
                // site:group-member
                std::future::pending::<()>().await;
                Ok(())
            }));
        }
        Group { set }
    }

    /// Returns the first error; `abort_rest` is the fix.
    async fn wait(&mut self, abort_rest: bool) -> Result<(), String> {
        while let Some(joined) = self.set.join_next().await {
            if let Err(error) = joined.unwrap() {
                if abort_rest {
                    self.set.abort_all();
                }
                return Err(error);
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn p16_group_that_keeps_running_after_failure_is_caught() {
    let mut group = Group::start();
    assert!(group.wait(false).await.is_err());
    let report = expect_report().await;
    assert_sites_here(&report, &[("group-member", 2)]);
    assert_report_snapshot("p16_group_keeps_running_after_failure", &report);
}

#[tokio::test]
async fn p16_group_that_aborts_the_rest_ends() {
    let mut group = Group::start();
    assert!(group.wait(true).await.is_err());
    expect_clean().await;
}

// 17. A std thread looping on `recv` whose sender is held -------------------

fn start_logger(rx: std::sync::mpsc::Receiver<String>) -> std::thread::JoinHandle<usize> {
    leakcheck::thread::Builder::new()
        .name("logger".into())
        .spawn(move || rx.iter().count()) // site:logger
        .unwrap()
}

#[test]
fn p17_thread_on_held_channel_is_caught() {
    let (tx, rx) = std::sync::mpsc::channel();
    let logger = start_logger(rx);
    tx.send("line".to_owned()).unwrap();
    let report = leakcheck::Options::new()
        .settle(common::LEAKY_SETTLE)
        .find()
        .unwrap_err();
    assert_sites_here(&report, &[("logger", 1)]);
    assert_report_snapshot("p17_thread_on_held_channel", &report);
    assert_eq!(report.leaks()[0].kind(), leakcheck::Kind::Thread);
    drop(tx); // let the thread end before the test does
    assert_eq!(logger.join().unwrap(), 1);
}

#[test]
fn p17_thread_ends_when_sender_drops() {
    let (tx, rx) = std::sync::mpsc::channel();
    let logger = start_logger(rx);
    tx.send("line".to_owned()).unwrap();
    drop(tx);
    leakcheck::Options::new()
        .settle(common::CLEAN_SETTLE)
        .verify_none();
    assert_eq!(logger.join().unwrap(), 1);
}

// 18. A blocking closure waiting on a Condvar nobody notifies --------------

type Flag = Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>;

fn start_blocking_waiter(flag: Flag) -> JoinHandle<()> {
    leakcheck::spawn_blocking(move || {
        // site:condvar-waiter
        let (ready, changed) = &*flag;
        let mut ready = ready.lock().unwrap();
        while !*ready {
            ready = changed.wait(ready).unwrap();
        }
    })
}

fn set_flag(flag: &Flag) {
    *flag.0.lock().unwrap() = true;
    flag.1.notify_all();
}

/// Sets the flag when dropped, even if an assertion failed first: the
/// runtime's shutdown waits for blocking tasks, so a waiter left behind would
/// hang the test instead of failing it.
struct SetOnDrop(Flag);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        set_flag(&self.0);
    }
}

#[tokio::test]
async fn p18_blocking_wait_on_unnotified_condvar_is_caught() {
    let flag = Flag::default();
    let release = SetOnDrop(flag.clone());
    let waiter = start_blocking_waiter(flag);
    let report = expect_report().await;
    assert_sites_here(&report, &[("condvar-waiter", 1)]);
    assert_report_snapshot("p18_blocking_wait_on_unnotified_condvar", &report);
    assert_eq!(report.leaks()[0].kind(), leakcheck::Kind::Blocking);
    drop(release);
    waiter.await.unwrap();
}

#[tokio::test]
async fn p18_notified_condvar_lets_blocking_task_end() {
    let flag = Flag::default();
    let waiter = start_blocking_waiter(flag.clone());
    set_flag(&flag);
    expect_clean().await;
    waiter.await.unwrap();
}
