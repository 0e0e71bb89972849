//! The tracking spawners for tokio: drop-in replacements for
//! `tokio::spawn`, `tokio::task::spawn_blocking` and
//! `tokio::task::spawn_local`, plus the [`Builder`] that names tasks.

pub mod thread;
pub(crate) mod tracked;

use std::future::Future;
#[cfg(feature = "track")]
use std::panic::Location;

use tokio::task::JoinHandle;

#[cfg(feature = "track")]
use crate::registry::kind::Kind;
#[cfg(feature = "track")]
use crate::registry::owner;
use crate::spawn::tracked::Tracked;

/// Spawns a tracked task on the current tokio runtime, like [`tokio::spawn`].
///
/// The task belongs to the scope of the caller (see the
/// [crate docs](crate#who-owns-a-task)) and records where it was spawned.
///
/// # Panics
///
/// Like `tokio::spawn`, when called outside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = leakcheck::spawn(async { 6 * 7 });
/// assert_eq!(handle.await.unwrap(), 42);
/// leakcheck::verify_none_async().await;
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new().spawn(future)
}

/// Runs a tracked closure on tokio's blocking pool, like
/// [`tokio::task::spawn_blocking`].
///
/// # Panics
///
/// Like `tokio::task::spawn_blocking`, when called outside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sum = leakcheck::spawn_blocking(|| (1..=10).sum::<u32>());
/// assert_eq!(sum.await.unwrap(), 55);
/// leakcheck::verify_none_async().await;
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Builder::new().spawn_blocking(f)
}

/// Spawns a tracked `!Send` task on the current [`LocalSet`](tokio::task::LocalSet),
/// like [`tokio::task::spawn_local`].
///
/// # Panics
///
/// Like `tokio::task::spawn_local`, when called outside a `LocalSet`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::rc::Rc;
///
/// let local = tokio::task::LocalSet::new();
/// local
///     .run_until(async {
///         let shared = Rc::new(5);
///         let task = leakcheck::spawn_local(async move { *shared + 1 });
///         assert_eq!(task.await.unwrap(), 6);
///     })
///     .await;
/// leakcheck::verify_none_async().await;
/// # }
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().spawn_local(future)
}

/// Wraps a future so that whichever spawner runs it, it is tracked.
///
/// The spawn site is where `track` is called. Use it with spawners
/// leakcheck doesn't wrap: `JoinSet::spawn`, tokio-util's
/// `TaskTracker::spawn`, or a plain `tokio::spawn` in code you own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = tokio::spawn(leakcheck::track(async { "done" }));
/// assert_eq!(handle.await.unwrap(), "done");
/// leakcheck::verify_none_async().await;
/// # }
/// ```
#[track_caller]
pub fn track<F: Future>(future: F) -> Tracked<F> {
    #[cfg(feature = "track")]
    {
        Tracked::new(future, Kind::Task, None, Location::caller())
    }
    #[cfg(not(feature = "track"))]
    {
        Tracked::untracked(future)
    }
}

/// Spawns tracked tasks with a name, which reports show.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let worker = leakcheck::Builder::new()
///     .name("worker")
///     .spawn(async { "finished" });
/// assert_eq!(worker.await.unwrap(), "finished");
/// leakcheck::verify_none_async().await;
/// # }
/// ```
#[derive(Debug, Default, Clone)]
#[must_use = "a Builder does nothing until one of its spawn methods is called"]
pub struct Builder {
    name: Option<Box<str>>,
}

impl Builder {
    /// A builder for an unnamed task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// leakcheck::Builder::new().spawn(async {}).await.unwrap();
    /// # }
    /// ```
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the task; the name appears in reports and can be ignored with
    /// [`Options::ignore_name`](crate::Options::ignore_name).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// leakcheck::Builder::new().name("reaper").spawn(async {}).await.unwrap();
    /// # }
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        if cfg!(feature = "track") {
            self.name = Some(name.into());
        }
        self
    }

    /// Spawns the task like [`tokio::spawn`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let h = leakcheck::Builder::new().name("answer").spawn(async { 42 });
    /// assert_eq!(h.await.unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        #[cfg(feature = "track")]
        {
            let tracked = Tracked::new(future, Kind::Task, self.name, Location::caller());
            #[cfg(tokio_unstable)]
            {
                let record = tracked.registration().get().cloned();
                crate::runtime::hooks::spawning_tracked(record.as_ref(), || tokio::spawn(tracked))
            }
            #[cfg(not(tokio_unstable))]
            tokio::spawn(tracked)
        }
        #[cfg(not(feature = "track"))]
        {
            tokio::spawn(future)
        }
    }

    /// Runs the closure on tokio's blocking pool like
    /// [`tokio::task::spawn_blocking`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let h = leakcheck::Builder::new().name("hash").spawn_blocking(|| 7);
    /// assert_eq!(h.await.unwrap(), 7);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        #[cfg(feature = "track")]
        {
            let registration = owner::register(Kind::Blocking, self.name, Location::caller());
            tokio::task::spawn_blocking(move || owner::run_registered(registration, f))
        }
        #[cfg(not(feature = "track"))]
        {
            tokio::task::spawn_blocking(f)
        }
    }

    /// Spawns a `!Send` task on the current `LocalSet` like
    /// [`tokio::task::spawn_local`].
    ///
    /// # Panics
    ///
    /// Outside a `LocalSet`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let local = tokio::task::LocalSet::new();
    /// let out = local
    ///     .run_until(async { leakcheck::Builder::new().name("ui").spawn_local(async { 1 }).await })
    ///     .await;
    /// assert_eq!(out.unwrap(), 1);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        #[cfg(feature = "track")]
        {
            tokio::task::spawn_local(Tracked::new(
                future,
                Kind::Local,
                self.name,
                Location::caller(),
            ))
        }
        #[cfg(not(feature = "track"))]
        {
            tokio::task::spawn_local(future)
        }
    }
}
