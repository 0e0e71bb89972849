//! The kernel's view of OS threads: their ids and scheduler states.
//!
//! Linux only (`/proc`); elsewhere the id is unknown and reports say
//! nothing about the kernel state.

/// The kernel id of the calling thread, or 0 when unknown. Cached per
/// thread: tokio's blocking pool reuses its threads.
///
/// Read with the `gettid` system call: every thread that
/// `leakcheck::thread` starts asks once, before its closure runs, and
/// reading `/proc/thread-self` instead cost a fresh thread a path lookup
/// and an allocation.
pub(crate) fn current_tid() -> u32 {
    #[cfg(target_os = "linux")]
    {
        use std::cell::Cell;
        thread_local! {
            static TID: Cell<u32> = const { Cell::new(0) };
        }
        let read = || {
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            u32::try_from(tid).unwrap_or(0)
        };
        TID.try_with(|tid| {
            if tid.get() == 0 {
                tid.set(read());
            }
            tid.get()
        })
        .unwrap_or_else(|_| read())
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The scheduler state letter (`R`, `S`, `D`, ...) of thread `tid` of this
/// process, from `/proc/self/task/<tid>/stat`.
pub(crate) fn kernel_state(tid: u32) -> Option<char> {
    if tid == 0 || !cfg!(target_os = "linux") {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (name) S ...": the name may hold spaces and parentheses, so read
    // after the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// When thread `tid` of this process started, in clock ticks since boot
/// (`/proc/self/task/<tid>/stat`'s 22nd field), or `u64::MAX` if unknown.
/// Ticks are coarse (10 ms): equal values say nothing about order.
pub(crate) fn start_time(tid: u32) -> u64 {
    let read = || -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
        // After the name: field 3 (the state) is the first; 22 the 20th.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(19)?
            .parse()
            .ok()
    };
    read().unwrap_or(u64::MAX)
}

/// What a state letter means, as `ps` documents it.
pub(crate) fn describe(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "in uninterruptible sleep",
        'T' | 't' => "stopped",
        'Z' => "zombie",
        'X' => "dead",
        'I' => "idle",
        _ => "unknown",
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_parked_thread_reads_as_sleeping_and_this_one_as_running() {
        assert_eq!(kernel_state(current_tid()), Some('R'));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            stop_rx.recv().ok();
        });
        let tid = tid_rx.recv().unwrap();
        assert_ne!(tid, current_tid());
        // It blocks in recv() right after sending; wait until the kernel agrees.
        let mut state = kernel_state(tid);
        for _ in 0..1000 {
            if state == Some('S') {
                break;
            }
            std::thread::yield_now();
            state = kernel_state(tid);
        }
        assert_eq!(state, Some('S'));
        assert_eq!(describe('S'), "sleeping");
        stop_tx.send(()).unwrap();
        sleeper.join().unwrap();
        assert_eq!(kernel_state(0), None);
    }

    #[test]
    fn the_thread_id_is_the_kernels_and_differs_per_thread() {
        let here = current_tid();
        assert_ne!(here, 0);
        assert!(std::path::Path::new(&format!("/proc/self/task/{here}")).exists());
        let (other, listed) = std::thread::spawn(|| {
            let tid = current_tid();
            (
                tid,
                std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(),
            )
        })
        .join()
        .unwrap();
        assert!(listed);
        assert_ne!(other, here);
        assert_eq!(current_tid(), here, "cached, and still right");
    }
}

/// The kernel keeps this many bytes of a thread's name.
const COMM_LEN: usize = 15;

/// The kernel's name for a thread named `name`: its first 15 bytes (the
/// kernel cuts inside a character too; read back, that shows as U+FFFD).
pub(crate) fn kernel_name(name: &str) -> String {
    let bytes = name.as_bytes();
    String::from_utf8_lossy(&bytes[..bytes.len().min(COMM_LEN)]).into_owned()
}
