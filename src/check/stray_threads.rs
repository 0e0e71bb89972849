//! OS threads that nobody tracked: alive at the end of a test binary, not
//! started through `leakcheck::thread`, and not the harness's or a tokio
//! runtime's. Read from `/proc/self/task` (each thread's `comm` and `stat`),
//! so Linux only; elsewhere the list is always empty.
//!
//! The whole-binary check looks only when it runs on the main thread: in
//! `verify_test_main!`'s at-exit hook, after libtest's per-test threads have
//! ended, or in a `harness = false` runner. Called from a libtest test
//! (another thread), other tests' threads would be running. Under
//! cargo-nextest, which runs one test per process, the per-test check looks
//! too (see [`runs_alone`]).
//!
//! Left out, so they are never reported:
//! - the main thread (its id is the process id), and the threads the check
//!   runs for, by thread id: the caller, the home thread of the scope being
//!   checked, and, under nextest, the thread of every scope named after the
//!   test (libtest's thread for it, whichever thread asks); when no such
//!   scope exists (the test's check runs inside a task, say), the oldest
//!   thread with the test's kernel name, since any other one was started
//!   after it, by it. Otherwise never by name:
//!   on Linux a new thread starts with its creator's kernel name, and std
//!   sets a named thread's own name only once it runs, so a thread the test
//!   started, named or not, can carry the test thread's name;
//! - threads that run a live leakcheck record (tracked threads and blocking
//!   tasks are reported as such, if they leak);
//! - tokio's worker and blocking-pool threads, by tokio's default thread
//!   names (`tokio-rt-worker`, and `tokio-runtime-worker` before tokio 1.50,
//!   which the kernel shortens to `tokio-runtime-w`): a runtime that is
//!   still alive is not a thread leak (its tasks are checked instead).
//!   Nothing on stable tokio lists a runtime's threads from outside it (the
//!   builder's `on_thread_start` belongs to whoever builds the runtime), so
//!   a runtime given its own `thread_name` is not recognized: forgive its
//!   threads with `Options::ignore_thread_name`;
//! - threads whose kernel name `Options::ignore_thread_name` forgives (a
//!   name the thread inherited is not its own, so no rule matches it);
//! - leakcheck's own helper threads (named `leakcheck-...`);
//! - zombie and dead threads, which are exiting; and any thread that exits
//!   or takes its own name while the check waits (libtest's per-test threads
//!   end right after their test): the list is re-read until it is empty or
//!   the deadline passes.
//!
//! A report shows a thread's kernel name as inherited, not as its name, when
//! it equals (15 bytes of) the name of a thread that could have created it:
//! the main thread (`main`, or its kernel name, the executable's), the test
//! nextest runs (`NEXTEST_TEST_NAME`), the test thread of a scope that is
//! not running any more, or the one the check runs for. It names the test
//! that started a stray thread only under nextest, where the process runs
//! that one test.

use std::sync::Arc;
use std::time::Instant;

use crate::check::options::Options;
use crate::registry::os_thread::kernel_name;
use crate::registry::Registry;
use crate::report::StrayThread;

/// Whether this platform can list threads.
pub(crate) const ENABLED: bool = cfg!(target_os = "linux");

/// Names that mark a thread as one a check must not report.
const NOT_LEAKS: [&str; 3] = ["tokio-rt-worker", "tokio-runtime-w", "leakcheck-"];

/// The stray threads once there are none, or those left at `deadline`
/// (after at least three reads, so a thread that is exiting is not one).
/// `owners` are the threads on whose behalf the check runs (the caller and
/// its test's own thread), which are never stray: an async check waits on
/// another thread, and a check from a blocking task runs beside its test.
pub(crate) fn settle(
    deadline: Option<Instant>,
    owners: &[u32],
    options: &Options,
) -> Vec<StrayThread> {
    if !ENABLED {
        return Vec::new();
    }
    crate::check::settle::reread(deadline, || scan(owners, options), Vec::is_empty)
}

/// Whether this process runs a single test: cargo-nextest's
/// process-per-test mode, which it announces in the environment. Then every
/// thread but the harness's belongs to that one test.
///
/// Read once: nextest sets it before the process starts, and every passing
/// check asks (twice), where reading the environment costs more than the
/// rest of the check.
pub(crate) fn runs_alone() -> bool {
    static ALONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALONE.get_or_init(|| {
        std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|mode| mode == "process-per-test")
    })
}

/// The test this process runs, when it runs one (nextest's
/// `NEXTEST_TEST_NAME`, the name libtest gives the test's thread).
fn only_test() -> Option<String> {
    if !runs_alone() {
        return None;
    }
    std::env::var("NEXTEST_TEST_NAME").ok()
}

/// A thread's kernel name, or `None` once it is gone.
fn comm(tid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/self/task/{tid}/comm")).ok()?;
    let raw = raw.strip_suffix(b"\n").unwrap_or(&raw);
    Some(String::from_utf8_lossy(raw).into_owned())
}

/// One read of `/proc/self/task`, leaving out `owners` and what `options`
/// forgives.
fn scan(owners: &[u32], options: &Options) -> Vec<StrayThread> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let tids: Vec<u32> = tasks
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .collect();
    let main = std::process::id();
    let me = crate::registry::os_thread::current_tid();
    let test = only_test();
    let tests = Registry::global().tests();
    // libtest's thread for the test, found by the scopes named after it.
    let mut test_threads: Vec<u32> = tests
        .iter()
        .filter(|(name, _)| test.as_deref() == Some(&**name))
        .map(|&(_, home)| home)
        .filter(|home| tids.contains(home))
        .collect();
    // During the test (not at exit, where the check runs on the main
    // thread), libtest's thread for it is alive. If it never made a scope
    // (the test's check runs inside a task, say), it is the oldest of the
    // threads with its kernel name: any other was started after it, by it.
    if test_threads.is_empty() && me != main {
        let named_like_test = |tid: &u32| {
            test.as_deref()
                .is_some_and(|test| comm(*tid).as_deref() == Some(&*kernel_name(test)))
        };
        test_threads.extend(
            tids.iter()
                .copied()
                .filter(named_like_test)
                .min_by_key(|&tid| (crate::registry::os_thread::start_time(tid), tid)),
        );
    }
    let skip =
        |tid: u32| tid == main || tid == me || owners.contains(&tid) || test_threads.contains(&tid);
    // Kernel names a thread may have from its creator.
    let mut creators: Vec<String> = ["main".to_owned()].into_iter().chain(comm(main)).collect();
    creators.extend(test.as_deref().map(kernel_name));
    creators.extend(
        tests
            .iter()
            .filter(|(_, home)| !tids.contains(home) || skip(*home))
            .map(|(name, _)| kernel_name(name)),
    );
    let tracked: Vec<u32> = Registry::global()
        .all_records()
        .iter()
        .map(|r| r.tid())
        .filter(|&tid| tid != 0)
        .collect();
    let test: Option<Arc<str>> = test.map(Arc::from);
    let mut stray: Vec<StrayThread> = tids
        .into_iter()
        .filter(|&tid| !skip(tid) && !tracked.contains(&tid))
        .filter_map(|tid| {
            let name = comm(tid)?;
            let state = crate::registry::os_thread::kernel_state(tid)?;
            let inherited = creators.contains(&name);
            Some(StrayThread {
                tid,
                name,
                inherited,
                state,
                test: test.clone(),
            })
        })
        .filter(|t| !matches!(t.state, 'Z' | 'X'))
        .filter(|t| !NOT_LEAKS.iter().any(|prefix| t.name.starts_with(prefix)))
        .filter(|t| t.inherited || !options.forgives_thread_name(&t.name))
        .collect();
    stray.sort_by_key(|t| t.tid);
    stray
}

// The tracked half of the test needs tracking.
#[cfg(all(test, target_os = "linux", feature = "track"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_plain_thread_is_stray_until_it_ends_and_a_tracked_one_never_is() {
        // A new thread names itself once it runs: wait for both to start.
        let (started, is_started) = std::sync::mpsc::channel::<()>();
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let plain_started = started.clone();
        let plain = std::thread::Builder::new()
            .name("plain-stray".into())
            .spawn(move || {
                plain_started.send(()).unwrap();
                wait.recv().ok()
            })
            .unwrap();
        let (stop_tracked, wait_tracked) = std::sync::mpsc::channel::<()>();
        let tracked = crate::thread::Builder::new()
            .name("tracked-thread".into())
            .spawn(move || {
                started.send(()).unwrap();
                wait_tracked.recv().ok()
            })
            .unwrap();
        is_started.recv().unwrap();
        is_started.recv().unwrap();
        // Other unit tests run in parallel: look only at these two names.
        let names = |threads: Vec<StrayThread>| -> Vec<String> {
            threads
                .into_iter()
                .map(|t| t.name)
                .filter(|n| n == "plain-stray" || n == "tracked-thread")
                .collect()
        };
        let scan = || scan(&[], &Options::new());
        assert_eq!(names(scan()), ["plain-stray"]);
        stop.send(()).unwrap();
        plain.join().unwrap();
        stop_tracked.send(()).unwrap();
        tracked.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !names(scan()).is_empty() {
            assert!(Instant::now() < deadline, "joined threads never left /proc");
            std::thread::yield_now();
        }
    }
}
