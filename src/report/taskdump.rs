//! Await traces: where each surviving task is stuck, from tokio's task
//! dumps.
//!
//! Only with the `taskdump` feature, `--cfg tokio_unstable`, on Linux
//! x86/x86_64/aarch64 (what tokio's dumps support). A dump pauses the
//! runtime's workers and can hang if one is blocked, so it is taken at most
//! once per failing check and bounded by a wall-clock limit; when it fails,
//! the report keeps its state lines and says so.

use std::collections::HashMap;
use std::time::Duration;

/// Whether this build can take task dumps.
pub(crate) const ENABLED: bool = crate::registry::tokio_ids::TASK_DUMPS;

/// How long a dump may take before the report goes without traces.
pub(crate) const LIMIT: Duration = Duration::from_secs(2);

/// Rendered traces of a runtime's tasks, by task id.
pub(crate) type Traces = HashMap<tokio::task::Id, String>;

cfg_task_dumps!({
    /// With task dumps: one bounded dump of the runtime's tasks.
    mod capture {
        use std::future::Future;
        use std::pin::pin;
        use std::sync::{Arc, Mutex};
        use std::task::{Poll, Waker};
        use std::time::Duration;

        use tokio::runtime::{Handle, RuntimeFlavor};

        use super::Traces;

        /// One dump of `handle`'s tasks, or `None` if it takes longer than
        /// `limit`. Call it from a task or `block_on` of that runtime.
        async fn traces(handle: &Handle, limit: Duration) -> Option<Traces> {
            let dump = handle.dump();
            let deadline = WallDeadline::after(limit);
            let mut dump = pin!(dump);
            let mut deadline = pin!(deadline);
            let dump = std::future::poll_fn(|cx| {
                if let Poll::Ready(dump) = dump.as_mut().poll(cx) {
                    return Poll::Ready(Some(dump));
                }
                deadline.as_mut().poll(cx).map(|()| None)
            })
            .await?;
            Some(
                dump.tasks()
                    .iter()
                    .map(|task| (task.id(), task.trace().to_string()))
                    .collect(),
            )
        }

        /// The blocking form's dump: only possible on a multi-thread runtime,
        /// from a helper thread that drives the dump with `block_on`.
        fn traces_blocking(handle: &Handle, limit: Duration) -> Option<Traces> {
            if handle.runtime_flavor() == RuntimeFlavor::CurrentThread {
                return None;
            }
            std::thread::scope(|scope| {
                scope
                    .spawn(|| handle.block_on(traces(handle, limit)))
                    .join()
                    .ok()
                    .flatten()
            })
        }

        /// One dump of the current runtime's tasks (async form).
        pub(crate) async fn capture() -> Option<Traces> {
            let handle = Handle::try_current().ok()?;
            traces(&handle, super::LIMIT).await
        }

        /// One dump of the current runtime's tasks (blocking form).
        pub(crate) fn capture_blocking() -> Option<Traces> {
            let handle = Handle::try_current().ok()?;
            traces_blocking(&handle, super::LIMIT)
        }

        /// A future that completes after a wall-clock delay, so a paused tokio
        /// clock can't stretch or skip the limit.
        struct WallDeadline {
            shared: Arc<Mutex<(bool, Option<Waker>)>>,
            started: bool,
            limit: Duration,
        }

        impl WallDeadline {
            fn after(limit: Duration) -> Self {
                WallDeadline {
                    shared: Arc::default(),
                    started: false,
                    limit,
                }
            }
        }

        impl Future for WallDeadline {
            type Output = ();
            fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
                let mut state = self.shared.lock().unwrap_or_else(|p| p.into_inner());
                if state.0 {
                    return Poll::Ready(());
                }
                state.1 = Some(cx.waker().clone());
                drop(state);
                if !self.started {
                    self.started = true;
                    let shared = self.shared.clone();
                    let limit = self.limit;
                    // Named so the whole-binary check knows it as leakcheck's own.
                    let timer = std::thread::Builder::new().name("leakcheck-dump-deadline".into());
                    let _ = timer.spawn(move || {
                        std::thread::sleep(limit);
                        let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
                        state.0 = true;
                        if let Some(waker) = state.1.take() {
                            waker.wake();
                        }
                    });
                }
                Poll::Pending
            }
        }
    }

} else {
    /// Without task dumps: no traces, ever.
    mod capture {
        use super::Traces;

        pub(crate) async fn capture() -> Option<Traces> {
            None
        }

        pub(crate) fn capture_blocking() -> Option<Traces> {
            None
        }
    }
});

pub(crate) use capture::{capture, capture_blocking};

/// The frames of a rendered trace worth reading: the user's own frames,
/// then the first library frame they called into (which names what the
/// task waits on, such as `tokio::sync::notify::Notified`), with the
/// wrapper frames before them and the internals after them folded.
pub(crate) fn trim(trace: &str, max_lines: usize) -> Vec<String> {
    let here = std::env::current_dir().ok();
    let here = here
        .as_ref()
        .and_then(|p| p.to_str())
        .map(|p| format!("{p}/"));
    let frames: Vec<String> = trace
        .lines()
        .map(|line| line.trim_start_matches(|c: char| !c.is_alphanumeric() && c != '<' && c != '_'))
        .filter(|frame| !frame.is_empty())
        .map(|frame| shorten_paths(frame, here.as_deref()))
        .collect();
    let Some(first_own) = frames.iter().position(|f| !is_internal(f)) else {
        return frames.last().map(|f| vec![f.clone()]).unwrap_or_default();
    };
    let last_own = frames
        .iter()
        .rposition(|f| !is_internal(f))
        .unwrap_or(first_own);
    let mut out: Vec<String> = frames[first_own..=last_own].to_vec();
    let below = &frames[last_own + 1..];
    if let Some(called) = below.first() {
        out.push(called.clone());
        if below.len() > 1 {
            out.push(format!("… {} internal frame(s) below", below.len() - 1));
        }
    }
    if out.len() > max_lines {
        let more = out.len() - max_lines;
        out.truncate(max_lines);
        out.push(format!("… {more} more"));
    }
    out
}

/// `at /home/me/project/src/x.rs` becomes `at src/x.rs` (relative to the
/// working directory, which cargo sets to the package), and a dependency's
/// `at ~/.cargo/registry/src/<index>/tokio-1.x/src/...` becomes
/// `at tokio-1.x/src/...`.
fn shorten_paths(frame: &str, here: Option<&str>) -> String {
    let Some((name, path)) = frame.rsplit_once(" at ") else {
        return frame.to_owned();
    };
    let mut path = path;
    if let Some(rest) = here.and_then(|here| path.strip_prefix(here)) {
        path = rest;
    } else if let Some((_, rest)) = path.split_once("/registry/src/") {
        path = rest
            .split_once('/')
            .map_or(rest, |(_index, crate_path)| crate_path);
    }
    format!("{name} at {path}")
}

fn is_internal(frame: &str) -> bool {
    [
        "tokio::",
        "<tokio::",
        "leakcheck::spawn::tracked",
        "<leakcheck::spawn::tracked",
        "core::",
        "<core::",
        "std::",
        "<std::",
    ]
    .iter()
    .any(|prefix| frame.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::trim;

    #[test]
    fn own_frames_stay_and_internal_frames_fold() {
        let trace = "\
╼ <leakcheck::spawn::tracked::Tracked<F> as core::future::future::Future>::poll at src/spawn/tracked.rs:80:13
  └╼ my_service::worker::{{closure}} at src/worker.rs:40:9
     └╼ tokio::sync::notify::Notified::poll_notified at tokio/src/sync/notify.rs:1:1
        └╼ tokio::runtime::task::trace::trace_leaf at tokio/src/runtime/task/trace/mod.rs:1:1";
        assert_eq!(
            trim(trace, 6),
            [
                "my_service::worker::{{closure}} at src/worker.rs:40:9",
                "tokio::sync::notify::Notified::poll_notified at tokio/src/sync/notify.rs:1:1",
                "… 1 internal frame(s) below",
            ]
        );
        let absolute = format!(
            "╼ app::run at {}/src/main.rs:3:4\n└╼ tokio::x at /home/u/.cargo/registry/src/index-abc/tokio-1.54.1/src/x.rs:1:1",
            std::env::current_dir().unwrap().display()
        );
        assert_eq!(
            trim(&absolute, 6),
            [
                "app::run at src/main.rs:3:4",
                "tokio::x at tokio-1.54.1/src/x.rs:1:1"
            ]
        );
        let only_internal = "╼ tokio::a at x.rs:1:1\n└╼ tokio::b at y.rs:2:2";
        assert_eq!(trim(only_internal, 6), ["tokio::b at y.rs:2:2"]);
        let long: String = (0..10)
            .map(|i| format!("╼ app::f{i} at a.rs:{i}:1\n"))
            .collect();
        let trimmed = trim(&long, 3);
        assert_eq!(trimmed.len(), 4);
        assert_eq!(trimmed[3], "… 7 more");
    }
}
