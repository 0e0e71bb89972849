//! `Watch`: a background thread that takes a [`profile`](crate::profile())
//! every interval and calls you when a spawn site keeps growing, the way a
//! Go service alerts on `runtime.NumGoroutine()` and then reads the
//! goroutine profile, but per site.
//!
//! # The rule
//!
//! A group (kind, spawn site and name) is flagged when its count went up in
//! each of the last `growing_for` intervals and it holds at least
//! `at_least` live tasks now. The defaults are an interval of 10 s, 6
//! intervals (a minute of growth without a pause) and 100 tasks:
//!
//! - a slow leak of one task a second holds 100 tasks after 100 s and has
//!   grown in every interval by then: flagged within two minutes, and
//!   again at every sample while it grows;
//! - a pool, a cache or a set of connections that fills up and stays full
//!   stops growing: an interval without growth clears it, so it is not
//!   flagged once full. A pool that fills slower than one task per
//!   interval for a whole minute and ends above 100 is flagged while it
//!   fills: no rule can tell that from a leak from counts alone, and the
//!   conditions in the profile (a pool's idle tasks *wait*; leaked ones
//!   often *can never finish*) are there to tell;
//! - a burst that ends (a request spike) rises and falls: not flagged.
//!
//! # Cost
//!
//! The watch runs on its own OS thread (named `leakcheck-watch`), so it
//! still reports when every runtime worker is stuck, and the spawn path
//! never sees it: it only reads the registry, shard by shard, once per
//! interval. It keeps one count per group for each of the last
//! `growing_for` samples.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::profile::{Growth, Profile, SiteKey};
use crate::registry::loom_shim::Arc;

type OnGrowth = Box<dyn FnMut(&[Growth], &Profile) + Send>;
type OnSample = Box<dyn FnMut(&Profile) + Send>;

/// A running watch; it stops (and its thread ends) when dropped.
///
/// ```
/// use std::time::Duration;
///
/// let watch = leakcheck::Watch::builder()
///     .every(Duration::from_secs(10))
///     .start(|grown, profile| {
///         for site in grown {
///             eprintln!("leakcheck: still growing: {site}");
///         }
///         eprintln!("{profile}");
///     })
///     .unwrap();
/// // ... the service runs ...
/// drop(watch); // stops it
/// ```
#[must_use = "the watch stops when this handle is dropped"]
pub struct Watch {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// Configures a [`Watch`]: see the [module docs](mod@crate::watch) for the
/// rule and its defaults.
#[must_use = "a WatchBuilder does nothing until `start`"]
pub struct WatchBuilder {
    every: Duration,
    growing_for: usize,
    at_least: usize,
    on_sample: Option<OnSample>,
}

impl Watch {
    /// A watch with the default rule: every 10 s, 6 intervals of growth,
    /// at least 100 tasks.
    ///
    /// ```
    /// let _watch = leakcheck::Watch::builder().start(|_, _| {}).unwrap();
    /// ```
    pub fn builder() -> WatchBuilder {
        WatchBuilder {
            every: Duration::from_secs(10),
            growing_for: 6,
            at_least: 100,
            on_sample: None,
        }
    }
}

impl WatchBuilder {
    /// How often to take a profile (at least 1 ms).
    ///
    /// ```
    /// let _watch = leakcheck::Watch::builder()
    ///     .every(std::time::Duration::from_secs(30))
    ///     .start(|_, _| {})
    ///     .unwrap();
    /// ```
    pub fn every(mut self, interval: Duration) -> WatchBuilder {
        self.every = interval.max(Duration::from_millis(1));
        self
    }

    /// In how many intervals in a row a group must grow (at least 1).
    ///
    /// ```
    /// let _watch = leakcheck::Watch::builder().growing_for(3).start(|_, _| {}).unwrap();
    /// ```
    pub fn growing_for(mut self, intervals: usize) -> WatchBuilder {
        self.growing_for = intervals.max(1);
        self
    }

    /// How many live tasks a group must hold to be flagged.
    ///
    /// ```
    /// let _watch = leakcheck::Watch::builder().at_least(1_000).start(|_, _| {}).unwrap();
    /// ```
    pub fn at_least(mut self, tasks: usize) -> WatchBuilder {
        self.at_least = tasks;
        self
    }

    /// Also calls `on_sample` with every profile taken, flagged or not: to
    /// feed a gauge per spawn site to `metrics` or `prometheus`, say.
    ///
    /// ```
    /// let _watch = leakcheck::Watch::builder()
    ///     .on_sample(|profile| {
    ///         for group in profile.groups() {
    ///             let _ = (group.spawned_at().to_string(), group.count());
    ///         }
    ///     })
    ///     .start(|_, _| {})
    ///     .unwrap();
    /// ```
    pub fn on_sample(mut self, on_sample: impl FnMut(&Profile) + Send + 'static) -> WatchBuilder {
        self.on_sample = Some(Box::new(on_sample));
        self
    }

    /// Starts the watch's thread; `on_growth` gets the flagged groups
    /// (biggest increase first) and the profile they come from. A panic in
    /// either callback is caught, and the watch goes on.
    ///
    /// # Errors
    ///
    /// When the OS can't start a thread.
    ///
    /// ```
    /// let watch = leakcheck::Watch::builder()
    ///     .start(|grown, _| eprintln!("{} sites keep growing", grown.len()))
    ///     .unwrap();
    /// drop(watch);
    /// ```
    pub fn start(
        self,
        on_growth: impl FnMut(&[Growth], &Profile) + Send + 'static,
    ) -> std::io::Result<Watch> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = stop.clone();
        let WatchBuilder {
            every,
            growing_for,
            at_least,
            on_sample,
        } = self;
        let mut on_growth: OnGrowth = Box::new(on_growth);
        let mut on_sample = on_sample;
        let mut rule = Rule::new(growing_for, at_least);
        let thread = std::thread::Builder::new()
            .name("leakcheck-watch".into())
            .spawn(move || {
                while !wait(&stopped, every) {
                    let profile = crate::profile();
                    let grown = rule.sample(&profile);
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        if let Some(f) = on_sample.as_mut() {
                            f(&profile);
                        }
                        if !grown.is_empty() {
                            on_growth(&grown, &profile);
                        }
                    }));
                }
            })?;
        Ok(Watch {
            stop,
            thread: Some(thread),
        })
    }
}

/// Waits `every`, or until told to stop: true when it should stop.
fn wait(stop: &(Mutex<bool>, Condvar), every: Duration) -> bool {
    let (stopped, changed) = stop;
    let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
    let (guard, _) = changed
        .wait_timeout_while(guard, every, |stopped| !*stopped)
        .unwrap_or_else(|p| p.into_inner());
    *guard
}

impl Drop for Watch {
    fn drop(&mut self) {
        let (stopped, changed) = &*self.stop;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        changed.notify_all();
        if let Some(thread) = self.thread.take() {
            // Never from the watch's own thread (a callback that drops the
            // watch): joining itself would deadlock.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// The growth rule over the last samples: counts per group, newest last.
pub(crate) struct Rule {
    growing_for: usize,
    at_least: usize,
    history: VecDeque<HashMap<SiteKey, usize>>,
}

impl Rule {
    pub(crate) fn new(growing_for: usize, at_least: usize) -> Rule {
        Rule {
            growing_for: growing_for.max(1),
            at_least,
            history: VecDeque::new(),
        }
    }

    /// Adds a sample; returns the groups that grew in each of the last
    /// `growing_for` intervals and hold at least `at_least` tasks now,
    /// biggest increase first, `before` being the count `growing_for`
    /// samples ago.
    pub(crate) fn sample(&mut self, profile: &Profile) -> Vec<Growth> {
        let counts: HashMap<SiteKey, usize> = profile
            .groups()
            .iter()
            .map(|g| (g.site_key(), g.count()))
            .collect();
        self.history.push_back(counts);
        if self.history.len() > self.growing_for + 1 {
            self.history.pop_front();
        }
        if self.history.len() <= self.growing_for {
            return Vec::new();
        }
        let mut grown: Vec<Growth> = profile
            .groups()
            .iter()
            .filter(|g| g.count() >= self.at_least)
            .filter_map(|g| {
                let site = g.site_key();
                let counts: Vec<usize> = self
                    .history
                    .iter()
                    .map(|sample| sample.get(&site).copied().unwrap_or(0))
                    .collect();
                counts
                    .windows(2)
                    .all(|pair| pair[1] > pair[0])
                    .then(|| Growth::of(g, counts[0]))
            })
            .collect();
        grown.sort_by_key(|g| std::cmp::Reverse(g.now() - g.before()));
        grown
    }
}

#[cfg(all(test, feature = "track", not(loom)))]
mod tests {
    use super::Rule;

    /// A profile taken after this test's thread holds `n` tasks spawned
    /// at one site: the caller's line, so that each test has a site of its
    /// own (the profile is the whole process's, other tests' tasks too).
    #[track_caller]
    fn counts_of(
        rule: &mut Rule,
        site_tasks: &mut Vec<tokio::task::JoinHandle<()>>,
        n: usize,
    ) -> Option<(usize, usize)> {
        let site = std::panic::Location::caller();
        while site_tasks.len() < n {
            site_tasks.push(crate::spawn(std::future::pending::<()>())); // at `site`
        }
        while site_tasks.len() > n {
            site_tasks.pop().unwrap().abort();
        }
        rule.sample(&crate::profile())
            .into_iter()
            .find(|g| g.spawned_at() == site && g.kind() == crate::Kind::Task)
            .map(|g| (g.before(), g.now()))
    }

    #[tokio::test]
    async fn a_site_growing_in_every_interval_is_flagged_and_one_that_stops_is_not() {
        let mut rule = Rule::new(3, 4);
        let mut tasks = Vec::new();
        let mut seen = Vec::new();
        for n in [1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10] {
            seen.push(counts_of(&mut rule, &mut tasks, n));
            tokio::task::yield_now().await;
        }
        assert_eq!(
            seen,
            [
                None,
                None,
                None,         // fewer than 3 intervals seen
                Some((1, 4)), // 1 → 2 → 3 → 4, and 4 ≥ at_least
                Some((2, 5)),
                Some((3, 6)),
                None, // 6 → 6: no growth this interval
                None,
                None,         // the window still holds the pause
                Some((6, 9)), // 6 → 7 → 8 → 9 again
                Some((7, 10)),
            ]
        );
        for task in tasks {
            task.abort();
        }
    }

    #[tokio::test]
    async fn a_site_below_at_least_or_that_falls_is_not_flagged() {
        let mut rule = Rule::new(2, 100);
        let mut tasks = Vec::new();
        for n in [1, 2, 3, 4] {
            assert_eq!(counts_of(&mut rule, &mut tasks, n), None, "{n} < 100");
        }
        let mut rule = Rule::new(2, 1);
        for n in [10, 20, 15, 25] {
            // 20 → 15 breaks the growth; 15 → 25 alone is one interval.
            assert_eq!(counts_of(&mut rule, &mut tasks, n), None, "{n}");
        }
        for task in tasks {
            task.abort();
        }
    }
}
