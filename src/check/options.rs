//! `Options`: how long a check waits and which survivors it forgives.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::registry::kind::Kind;
use crate::registry::record::TaskRecord;
use crate::registry::Registry;
use crate::report::Leak;

type Predicate = Arc<dyn Fn(&Leak) -> bool + Send + Sync>;

/// Configures a check; the terminal methods run it.
///
/// The terminal methods take `&self`, so one `Options` can check several
/// times (before and after a phase of a test, say).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// let options = leakcheck::Options::new()
///     .settle(Duration::from_millis(250))
///     .ignore_name("metrics-exporter")
///     .ignore_spawned_at("src/pool.rs");
///
/// let _exporter = leakcheck::Builder::new()
///     .name("metrics-exporter")
///     .spawn(std::future::pending::<()>());
/// options.verify_none_async().await; // the exporter is forgiven
/// # }
/// ```
#[derive(Clone, Default)]
#[must_use = "Options does nothing until a terminal method such as `verify_none` is called"]
pub struct Options {
    settle: Option<Duration>,
    names: Vec<Box<str>>,
    sites: Vec<Box<str>>,
    thread_names: Vec<Box<str>>,
    predicates: Vec<Predicate>,
    /// Ids of records alive at `ignore_current`, sorted.
    current: Arc<[u64]>,
}

impl Options {
    /// Default options: the default [settle period](crate#the-settle-period), nothing
    /// ignored.
    ///
    /// ```
    /// leakcheck::Options::new().verify_none();
    /// ```
    pub fn new() -> Options {
        Options::default()
    }

    /// How long a check waits for survivors to end before it reports them.
    ///
    /// A passing check returns the moment the last task ends, so this only
    /// costs failing tests. `Duration::MAX` waits forever; `Duration::ZERO`
    /// checks once without waiting. Overrides `LEAKCHECK_SETTLE`.
    ///
    /// ```
    /// use std::time::Duration;
    /// leakcheck::Options::new().settle(Duration::from_millis(100)).verify_none();
    /// ```
    pub fn settle(mut self, period: Duration) -> Options {
        self.settle = Some(period);
        self
    }

    /// Forgives survivors with exactly this name (see
    /// [`Builder::name`](crate::Builder::name)). An empty name matches only
    /// tasks named `""`, never unnamed ones.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let _gc = leakcheck::Builder::new().name("gc").spawn(std::future::pending::<()>());
    /// leakcheck::Options::new().ignore_name("gc").verify_none_async().await;
    /// # }
    /// ```
    pub fn ignore_name(mut self, name: &str) -> Options {
        self.names.push(name.into());
        self
    }

    /// Forgives survivors spawned at a matching site: a source path suffix
    /// that ends on a path boundary (`"src/pool.rs"`, `"pool.rs"`, but not
    /// `"ool.rs"`), optionally followed by `:line` or `:line:column`.
    /// Backslashes match forward slashes. An empty pattern matches nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let _bg = leakcheck::spawn(std::future::pending::<()>());
    /// // Doctests live in a generated file, so forgive this whole file:
    /// let here = std::panic::Location::caller().file();
    /// leakcheck::Options::new().ignore_spawned_at(here).verify_none_async().await;
    /// # }
    /// ```
    pub fn ignore_spawned_at(mut self, pattern: &str) -> Options {
        self.sites.push(pattern.replace('\\', "/").into());
        self
    }

    /// Forgives threads whose name starts with `prefix`: tracked threads
    /// ([`thread::Builder::name`](crate::thread::Builder::name)) by their
    /// name, and threads started outside leakcheck (which a check lists from
    /// the kernel on Linux, see [`Report::stray_threads`](crate::Report::stray_threads)) by their kernel
    /// name, which holds only the first 15 bytes of a name: a longer prefix
    /// is cut the same way before it is compared. A kernel name that a thread
    /// inherited from its creator is not its own, and no rule matches it.
    /// An empty prefix matches every named thread.
    ///
    /// For process-lifetime threads: a `static` runtime's workers given a
    /// `thread_name`, a library's exporter thread.
    ///
    /// ```
    /// let (stop, parked) = std::sync::mpsc::channel::<()>();
    /// let _exporter = leakcheck::thread::Builder::new()
    ///     .name("exporter-metrics".into())
    ///     .spawn(move || parked.recv())
    ///     .unwrap();
    /// leakcheck::Options::new().ignore_thread_name("exporter").verify_none();
    /// # drop(stop);
    /// ```
    pub fn ignore_thread_name(mut self, prefix: &str) -> Options {
        self.thread_names.push(prefix.into());
        self
    }

    /// Forgives survivors for which `predicate` returns `true`.
    ///
    /// It is called with each survivor, outside leakcheck's locks, so it may
    /// spawn or end tasks itself; a predicate that returns `true` for
    /// everything forgives every survivor, and the check passes at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use leakcheck::Kind;
    ///
    /// let _t = leakcheck::spawn(std::future::pending::<()>());
    /// leakcheck::Options::new()
    ///     .ignore(|leak| leak.kind() == Kind::Task)
    ///     .verify_none_async()
    ///     .await;
    /// # }
    /// ```
    pub fn ignore(mut self, predicate: impl Fn(&Leak) -> bool + Send + Sync + 'static) -> Options {
        self.predicates.push(Arc::new(predicate));
        self
    }

    /// Forgives everything alive right now, in every scope: those tasks and
    /// threads are never reported by this `Options` (nor its clones).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let _preexisting = leakcheck::spawn(std::future::pending::<()>());
    /// let options = leakcheck::Options::new().ignore_current();
    /// options.verify_none_async().await;
    /// # }
    /// ```
    pub fn ignore_current(mut self) -> Options {
        let mut ids: Vec<u64> = Registry::global()
            .all_records()
            .iter()
            .map(|r| r.id())
            .chain(self.current.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        self.current = ids.into();
        self
    }

    /// The settle period in force.
    pub(crate) fn settle_period(&self) -> Duration {
        self.settle.unwrap_or_else(crate::check::settle::from_env)
    }

    /// Whether a thread outside leakcheck with this kernel name is forgiven.
    pub(crate) fn forgives_thread_name(&self, kernel_name: &str) -> bool {
        self.thread_names
            .iter()
            .any(|prefix| kernel_name.starts_with(&crate::registry::os_thread::kernel_name(prefix)))
    }

    /// Whether this record is forgiven.
    pub(crate) fn forgives(&self, record: &Arc<TaskRecord>, leak: impl FnOnce() -> Leak) -> bool {
        if self.current.binary_search(&record.id()).is_ok() {
            return true;
        }
        if let Some(name) = record.name() {
            if self.names.iter().any(|n| **n == *name) {
                return true;
            }
            if record.kind() == Kind::Thread
                && self.thread_names.iter().any(|p| name.starts_with(&**p))
            {
                return true;
            }
        }
        if self
            .sites
            .iter()
            .any(|p| site_matches(p, record.spawned_at()))
        {
            return true;
        }
        if self.predicates.is_empty() {
            return false;
        }
        let leak = leak();
        self.predicates.iter().any(|p| p(&leak))
    }
}

/// Whether `pattern` names `site`: a path suffix on a component boundary,
/// optionally with `:line` or `:line:column`.
fn site_matches(pattern: &str, site: &Location<'_>) -> bool {
    if pattern.is_empty() {
        return false;
    }
    let file = site.file().replace('\\', "/");
    let with_line = format!("{file}:{}", site.line());
    let with_column = format!("{with_line}:{}", site.column());
    [file.as_str(), &with_line, &with_column]
        .iter()
        .any(|full| {
            full.strip_suffix(pattern)
                .is_some_and(|before| before.is_empty() || before.ends_with('/'))
        })
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("settle", &self.settle)
            .field("ignore_names", &self.names)
            .field("ignore_spawned_at", &self.sites)
            .field("ignore_thread_names", &self.thread_names)
            .field("ignore_predicates", &self.predicates.len())
            .field("ignore_current", &self.current.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::site_matches;
    use std::panic::Location;

    #[test]
    fn site_patterns_match_path_suffixes_on_boundaries() {
        let here = Location::caller();
        let line = here.line();
        let column = here.column();
        let yes = [
            "src/check/options.rs".to_owned(),
            "options.rs".to_owned(),
            format!("options.rs:{line}"),
            format!("src/check/options.rs:{line}:{column}"),
            here.file().to_owned(),
        ];
        for pattern in &yes {
            assert!(site_matches(pattern, here), "{pattern} should match {here}");
        }
        let no = [
            String::new(),
            "ptions.rs".to_owned(),
            "src/other.rs".to_owned(),
            format!("options.rs:{}", line + 1),
            format!("options.rs:{line}:{}", column + 1),
            "src/".to_owned(),
        ];
        for pattern in &no {
            assert!(
                !site_matches(pattern, here),
                "{pattern:?} should not match {here}"
            );
        }
    }
}
