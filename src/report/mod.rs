//! The report side: what a failing check found, and how it reads.
//!
//! - this module: the data, [`Report`] and [`Leak`], each survivor holding
//!   its record and the [`Condition`] it was in when the check gave up
//!   (worked out once, by `TaskRecord::condition`, and labelled by
//!   `Condition::label`);
//! - [`render`]: the text (groups by kind and spawn site, conditions,
//!   spawner chains, traces), the GitHub Actions annotations and the
//!   message a failing check panics with;
//! - [`taskdump`]: await traces from tokio's task dumps, when the build
//!   takes them;
//! - [`rerun`]: the `cargo leakcheck` command a report prints when a rerun
//!   would show more.
//!
//! The check side builds reports; nothing here waits or looks at the
//! registry beyond the records it is handed.

pub(crate) mod render;
pub(crate) mod rerun;
pub(crate) mod taskdump;

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::registry::clock::Stamp;

use crate::registry::kind::Kind;
use crate::registry::loom_shim::Arc;
use crate::registry::record::TaskRecord;
use crate::registry::scope::ScopeName;
use crate::registry::task_state::Condition;

/// One thread that nobody tracked, as a check found it
/// (`check::stray_threads` lists them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StrayThread {
    pub(crate) tid: u32,
    /// The kernel's name for it (`comm`: at most 15 bytes of the name).
    pub(crate) name: String,
    /// The kernel name is its creator's, not a name of its own: it is
    /// unnamed, or named but not yet running.
    pub(crate) inherited: bool,
    /// The scheduler state letter.
    pub(crate) state: char,
    /// The test that started it, when the process runs one test (nextest).
    pub(crate) test: Option<std::sync::Arc<str>>,
}

/// One task or thread that outlived the check.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// let _ticker = leakcheck::Builder::new()
///     .name("ticker")
///     .spawn(std::future::pending::<()>());
/// let report = leakcheck::Options::new()
///     .settle(Duration::from_millis(10))
///     .find_async()
///     .await
///     .unwrap_err();
/// let leak = &report.leaks()[0];
/// assert_eq!(leak.name(), Some("ticker"));
/// assert_eq!(leak.kind(), leakcheck::Kind::Task);
/// assert!(leak.spawned_at().file().ends_with(".rs"));
/// assert!(leak.age() < Duration::from_secs(60));
/// # }
/// ```
#[derive(Clone)]
pub struct Leak {
    record: Arc<TaskRecord>,
    age: Duration,
    condition: Condition,
    /// Where it is stuck, from a task dump (feature `taskdump`).
    trace: Option<Arc<str>>,
}

impl Leak {
    pub(crate) fn new(record: Arc<TaskRecord>, now: Stamp) -> Leak {
        let age = now.since(record.born());
        let condition = record.condition(now);
        Leak {
            record,
            age,
            condition,
            trace: None,
        }
    }

    pub(crate) fn record(&self) -> &TaskRecord {
        &self.record
    }

    /// What sort of task or thread this is.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// let kind: leakcheck::Kind = report.leaks()[0].kind();
    /// ```
    pub fn kind(&self) -> Kind {
        self.record.kind()
    }

    /// The name given with [`Builder::name`](crate::Builder::name) or
    /// [`thread::Builder::name`](crate::thread::Builder::name).
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// let name: Option<&str> = report.leaks()[0].name();
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.record.name()
    }

    /// Where it was spawned: the caller of the spawning function.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// let site = report.leaks()[0].spawned_at();
    /// println!("{}:{}", site.file(), site.line());
    /// ```
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.record.spawned_at()
    }

    /// Where its spawners were spawned, nearest first: the chain a report
    /// shows as "spawned by task at ...". Empty when the test itself (or a
    /// plain thread) spawned it.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// // Forgive everything a connection pool spawned, at any depth:
    /// let from_pool = |leak: &leakcheck::Leak| {
    ///     leak.spawned_by().any(|(_, site)| site.file().ends_with("src/pool.rs"))
    /// };
    /// assert!(!from_pool(&report.leaks()[0]));
    /// ```
    pub fn spawned_by(&self) -> impl Iterator<Item = (Kind, &'static Location<'static>)> + '_ {
        self.record
            .lineage()
            .skip(1)
            .map(|parent| (parent.kind(), parent.spawned_at()))
    }

    /// How long it had been alive when the check gave up waiting.
    ///
    /// Task times (this one, and how long ago a task was last polled) are
    /// read from the kernel's coarse monotonic clock, which is cheap enough
    /// to read on every poll: they are good to a few milliseconds (4 ms on
    /// a typical Linux), so a task that waited out a 200 ms settle period
    /// may show as alive 197 ms.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// let age: std::time::Duration = report.leaks()[0].age();
    /// ```
    pub fn age(&self) -> Duration {
        self.age
    }

    /// The name of the scope it belongs to: the test's name when known, a
    /// thread's name for spawns on a non-test thread, `None` for spawns
    /// that belong to no test.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// let test: Option<&str> = report.leaks()[0].test();
    /// ```
    pub fn test(&self) -> Option<&str> {
        match self.record.scope().name() {
            ScopeName::Test(name) => Some(name),
            ScopeName::Thread(name) => name.as_deref(),
            ScopeName::Process => None,
        }
    }
}

impl fmt::Debug for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leak")
            .field("kind", &self.kind())
            .field("name", &self.name())
            .field("spawned_at", &self.spawned_at())
            .field("age", &self.age)
            .field("test", &self.test())
            .field("condition", &self.condition.label())
            .finish()
    }
}

/// What a failing check found: every task and thread of the checked scope
/// that outlived the settle period.
///
/// Its `Display` is the readable report that [`verify_none`](crate::verify_none)
/// panics with: one line that says what outlived which test, then one entry
/// per spawn site (identical survivors are counted, not repeated) with the
/// chain of spawn sites that led to it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// let _stuck = leakcheck::spawn(std::future::pending::<()>());
/// let report = leakcheck::Options::new()
///     .settle(Duration::from_millis(10))
///     .find_async()
///     .await
///     .unwrap_err();
/// assert_eq!(report.leaks().len(), 1);
/// assert!(report.to_string().contains("1 task outlived"));
/// # }
/// ```
#[derive(Clone)]
pub struct Report {
    checked: Checked,
    waited: Duration,
    leaks: Vec<Leak>,
    traces: TraceStatus,
    /// Tasks alive on the checked runtime that leakcheck knows nothing
    /// about (counted, on stable Rust; see `crate::runtime`).
    untracked: usize,
    /// Whether that runtime was taken to be the test's because the check ran
    /// in its `block_on` (`crate::runtime`'s rule), not because leakcheck
    /// built it.
    adopted_runtime: bool,
    /// The check gave its verdict without waiting out the settle period:
    /// nothing that could end a survivor could ever run again.
    final_at_once: bool,
    /// OS threads nobody tracked (whole-binary check, Linux).
    stray: Vec<StrayThread>,
}

/// Whether the report could show where its tasks are stuck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TraceStatus {
    /// This build can't take task dumps (no `taskdump` feature or no
    /// `--cfg tokio_unstable`, or an unsupported platform).
    Unavailable,
    /// A dump was tried and failed: it timed out, or no runtime was reachable.
    Failed,
    /// A dump was taken; survivors found in it carry their traces.
    Taken,
}

/// What a check looked at, which decides how its report names the owners.
#[derive(Clone, Debug)]
pub(crate) enum Checked {
    /// One scope: every survivor belongs to it, so the first line names it.
    Scope(ScopeName),
    /// Every scope of the process, at the end of a test binary: each group
    /// names its own owner.
    TestBinary,
    /// Nothing: leakcheck was built without its `track` feature.
    TrackingOff,
}

impl Report {
    pub(crate) fn new(checked: Checked, waited: Duration, leaks: Vec<Leak>) -> Report {
        Report {
            checked,
            waited,
            leaks,
            traces: TraceStatus::Unavailable,
            untracked: 0,
            adopted_runtime: false,
            final_at_once: false,
            stray: Vec::new(),
        }
    }

    /// The report of a check in a build without the `track` feature: it
    /// fails rather than pass without having looked at anything.
    pub(crate) fn tracking_off() -> Report {
        Report::new(Checked::TrackingOff, Duration::ZERO, Vec::new())
    }

    pub(crate) fn with_stray_threads(mut self, stray: Vec<StrayThread>) -> Report {
        self.stray = stray;
        self
    }

    /// The verdict came at once: every survivor can never finish.
    pub(crate) fn final_at_once(mut self, yes: bool) -> Report {
        self.final_at_once = yes;
        self
    }

    pub(crate) fn with_untracked(mut self, untracked: usize, adopted_runtime: bool) -> Report {
        self.untracked = untracked;
        self.adopted_runtime = adopted_runtime && untracked > 0;
        self
    }

    /// Attaches await traces from a task dump (`None`: the dump failed).
    pub(crate) fn attach_traces(&mut self, traces: Option<crate::report::taskdump::Traces>) {
        let Some(traces) = traces else {
            self.traces = TraceStatus::Failed;
            return;
        };
        self.traces = TraceStatus::Taken;
        for leak in &mut self.leaks {
            let id = leak.record.tokio_id();
            leak.trace = id
                .and_then(|id| traces.get(&id))
                .map(|t| Arc::from(t.as_str()));
        }
    }

    /// Every survivor, one entry per task or thread (ungrouped).
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// for leak in report.leaks() {
    ///     println!("{} at {}", leak.kind(), leak.spawned_at());
    /// }
    /// ```
    pub fn leaks(&self) -> &[Leak] {
        &self.leaks
    }

    /// How many untracked tasks (spawned outside leakcheck: plain
    /// `tokio::spawn`, often inside a library; see [`Kind::Untracked`] for
    /// the word) were still alive on the checked runtime, for
    /// a check on a runtime built by [`runtime::build`](crate::runtime::build)
    /// (as `#[leak_check]` builds it) in a build without
    /// `--cfg tokio_unstable`. They are counted, not listed: nothing on
    /// stable tokio says where a task was spawned. With `tokio_unstable`
    /// they are listed in [`Report::leaks`] instead, as
    /// [`Kind::Untracked`], and this is 0.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// let hidden: usize = report.untracked_tasks();
    /// assert_eq!(hidden, 0);
    /// ```
    pub fn untracked_tasks(&self) -> usize {
        self.untracked
    }

    /// The names of the OS threads that were alive at the end of a
    /// whole-binary check ([`verify_test_main!`](crate::verify_test_main!), [`verify_test_main()`](crate::verify_test_main()))
    /// or of a per-test check under cargo-nextest, without having been
    /// started through [`thread`](crate::thread), as the kernel shows them
    /// (at most 15 bytes). A thread that has no name of its own yet shows
    /// its creator's, which the report's text says. Linux only; empty
    /// elsewhere and for per-test checks under `cargo test`.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// assert!(report.stray_threads().is_empty());
    /// ```
    pub fn stray_threads(&self) -> Vec<&str> {
        self.stray.iter().map(|t| t.name.as_str()).collect()
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("checked", &self.checked)
            .field("waited", &self.waited)
            .field("leaks", &self.leaks)
            .field("untracked", &self.untracked)
            .field("stray_threads", &self.stray)
            .finish()
    }
}

impl std::error::Error for Report {}
