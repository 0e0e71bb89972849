//! What sort of thing a tracked record stands for.

use std::fmt;

/// The kind of a tracked task or thread.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// let _worker = leakcheck::spawn(std::future::pending::<()>());
/// let report = leakcheck::Options::new()
///     .settle(Duration::from_millis(10))
///     .find_async()
///     .await
///     .unwrap_err();
/// assert_eq!(report.leaks()[0].kind(), leakcheck::Kind::Task);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// An async task: [`spawn`](fn@crate::spawn), [`Builder::spawn`](crate::Builder::spawn)
    /// or a future wrapped by [`track`](crate::track).
    Task,
    /// A closure on tokio's blocking pool: [`spawn_blocking`](crate::spawn_blocking).
    Blocking,
    /// A `!Send` task on a `LocalSet`: [`spawn_local`](crate::spawn_local).
    Local,
    /// An OS thread: [`thread::spawn`](crate::thread::spawn).
    Thread,
    /// A task spawned outside leakcheck (a plain `tokio::spawn`, often in a
    /// library) on a runtime built by [`runtime::build`](crate::runtime::build),
    /// seen through tokio's task hooks: only with `--cfg tokio_unstable`.
    ///
    /// "Untracked" means one thing throughout leakcheck: not spawned through
    /// its spawners. Such a task is *listed*, as this kind, when tokio's
    /// hooks let leakcheck see it (it then has a record, a spawn site and an
    /// owner, though its wakers are not counted); without `tokio_unstable`
    /// it is only *counted*, in [`Report::untracked_tasks`](crate::Report::untracked_tasks).
    Untracked,
}

impl Kind {
    /// The kind as a small number, for a record's packed word.
    pub(crate) fn bits(self) -> u8 {
        self as u8
    }

    /// [`Kind::bits`] back.
    pub(crate) fn from_bits(bits: u8) -> Kind {
        match bits {
            0 => Kind::Task,
            1 => Kind::Blocking,
            2 => Kind::Local,
            3 => Kind::Thread,
            _ => Kind::Untracked,
        }
    }

    /// Whether this kind counts as a task (rather than a thread) in reports.
    pub(crate) fn is_task(self) -> bool {
        !matches!(self, Kind::Thread)
    }

    /// Whether this kind is a polled future (rather than a closure running
    /// on an OS thread).
    pub(crate) fn is_async(self) -> bool {
        matches!(self, Kind::Task | Kind::Local | Kind::Untracked)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Task => "task",
            Kind::Blocking => "blocking task",
            Kind::Local => "local task",
            Kind::Thread => "thread",
            Kind::Untracked => "untracked task",
        })
    }
}
