//! OS threads that nobody tracked: alive at the end of a test binary, not
//! started through `leakcheck::thread`, and not the harness's or a tokio
//! runtime's. Read from `/proc/self/task` (each thread's `comm` and `stat`),
//! so Linux only; elsewhere the list is always empty.
//!
//! Only the whole-binary check looks, and only when it runs on the main
//! thread: in `verify_test_main!`'s at-exit hook, after libtest's per-test
//! threads have ended, or in a `harness = false` runner. Called from a
//! libtest test (another thread), other tests' threads would be running.
//!
//! Under cargo-nextest, which runs one test per process, the per-test check
//! looks too (see [`runs_alone`]).
//!
//! Left out, so they are never reported:
//! - the main thread (its id is the process id), the calling thread, the
//!   thread of the scope being checked, and, under nextest, libtest's thread
//!   for the test;
//! - threads that run a live leakcheck record (tracked threads and blocking
//!   tasks are reported as such, if they leak);
//! - tokio's worker and blocking-pool threads, by tokio's default thread
//!   names (`tokio-rt-worker`, and `tokio-runtime-worker` before tokio 1.50,
//!   which the kernel shortens to `tokio-runtime-w`): a runtime that is
//!   still alive is not a thread leak (its tasks are checked instead), and
//!   leakcheck can't tell a live runtime's thread from another one by any
//!   other means. A runtime given its own `thread_name` is not recognized;
//!   its threads are reported if it is still alive at the end;
//! - leakcheck's own helper threads (named `leakcheck-...`);
//! - zombie and dead threads, which are exiting; and any thread that exits
//!   while the check waits (libtest's per-test threads end right after
//!   their test): the list is re-read until it is empty or the deadline
//!   passes.

use std::time::Instant;

/// Whether this platform can list threads.
pub(crate) const ENABLED: bool = cfg!(target_os = "linux");

/// One thread that nobody tracked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StrayThread {
    pub(crate) tid: u32,
    /// The kernel's name for it (`comm`: at most 15 bytes of the name).
    pub(crate) name: String,
    /// The scheduler state letter.
    pub(crate) state: char,
}

/// Names that mark a thread as one a check must not report.
const NOT_LEAKS: [&str; 3] = ["tokio-rt-worker", "tokio-runtime-w", "leakcheck-"];

/// The stray threads once there are none, or those left at `deadline`
/// (after at least three reads, so a thread that is exiting is not one).
/// `owners` are the threads on whose behalf the check runs (the caller and
/// its test's own thread), which are never stray: an async check waits on
/// another thread, and a check from a blocking task runs beside its test.
pub(crate) fn settle(deadline: Option<Instant>, owners: &[u32]) -> Vec<StrayThread> {
    if !ENABLED {
        return Vec::new();
    }
    crate::settle::reread(deadline, || scan_skipping(owners), Vec::is_empty)
}

/// One read of `/proc/self/task`.
#[cfg(test)]
fn scan() -> Vec<StrayThread> {
    scan_skipping(&[])
}

/// Whether this process runs a single test: cargo-nextest's
/// process-per-test mode, which it announces in the environment. Then every
/// thread but the harness's belongs to that one test.
pub(crate) fn runs_alone() -> bool {
    std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|mode| mode == "process-per-test")
}

/// The kernel's name (`comm`, 15 bytes at most) of the thread libtest runs
/// the test on, when this process runs a single test: libtest names it
/// after the test, which nextest passes in `NEXTEST_ATTEMPT_ID` after `$`.
fn test_thread_comm() -> Option<String> {
    if !runs_alone() {
        return None;
    }
    let attempt = std::env::var("NEXTEST_ATTEMPT_ID").ok()?;
    let (_, test) = attempt.rsplit_once('$')?;
    let mut end = test.len().min(15);
    while !test.is_char_boundary(end) {
        end -= 1;
    }
    Some(test[..end].to_owned())
}

/// One read of `/proc/self/task`, leaving out `owners` too.
fn scan_skipping(owners: &[u32]) -> Vec<StrayThread> {
    let test_thread = test_thread_comm();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let main = std::process::id();
    let me = crate::os_thread::current_tid();
    let tracked: Vec<u32> = crate::registry::Registry::global()
        .all_records()
        .iter()
        .map(|r| r.state.tid())
        .filter(|&tid| tid != 0)
        .collect();
    let mut stray: Vec<StrayThread> = tasks
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&tid| {
            tid != main && tid != me && !owners.contains(&tid) && !tracked.contains(&tid)
        })
        .filter_map(|tid| {
            let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            let name = name.trim_end_matches('\n').to_owned();
            let state = crate::os_thread::kernel_state(tid)?;
            Some(StrayThread { tid, name, state })
        })
        .filter(|t| !matches!(t.state, 'Z' | 'X'))
        .filter(|t| test_thread.as_deref() != Some(t.name.as_str()))
        .filter(|t| !NOT_LEAKS.iter().any(|prefix| t.name.starts_with(prefix)))
        .collect();
    stray.sort_by_key(|t| t.tid);
    stray
}

#[cfg(all(test, target_os = "linux"))]
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
