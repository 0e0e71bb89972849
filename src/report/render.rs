//! How a report reads: the text a failing check prints (survivors grouped
//! by kind and spawn site, each with its condition, spawner chain and await
//! trace), its GitHub Actions annotations, and the durations and plurals
//! the profile's text shares.
//!
//! Survivors are grouped by kind and spawn site, sorted by site so the
//! output is stable. A group shows its count, name, oldest age and the
//! spawner chain of its deepest member, a recursive chain folded into one
//! line. A whole-binary report also groups by owner and ends each group's
//! line with it (``(test `name`)``, `(no test)`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::registry::kind::Kind;
use crate::registry::record::TaskRecord;
use crate::registry::scope::ScopeName;
use crate::registry::task_state::Condition;

use super::{Checked, Leak, Report, TraceStatus};

/// How many chain links an entry shows before it elides the rest.
const MAX_CHAIN: usize = 6;

/// How many trace lines an entry shows before it elides the rest.
const MAX_TRACE: usize = 6;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Checked::TrackingOff = self.checked {
            return writeln!(
                f,
                "leakcheck: nothing was checked: tracking is off. leakcheck was built without \
                 its `track` feature, so its spawners are the plain tokio/std calls and no task \
                 is registered. Keep the default features in `[dev-dependencies]` (a service may \
                 use `default-features = false` in `[dependencies]`; cargo turns tracking back \
                 on for its tests)."
            );
        }
        let listed_tasks = self.leaks.iter().filter(|l| l.kind().is_task()).count();
        let threads = self.leaks.len() - listed_tasks + self.stray.len();
        let tasks = listed_tasks + self.untracked;
        let what = match (tasks, threads) {
            (t, 0) => plural(t, "task"),
            (0, th) => plural(th, "thread"),
            (t, th) => format!("{} and {}", plural(t, "task"), plural(th, "thread")),
        };
        let owner = self.owner();
        let by_owner = matches!(self.checked, Checked::TestBinary);
        let them = if self.leaks.len() + self.untracked + self.stray.len() == 1 {
            "it"
        } else {
            "them"
        };
        if self.final_at_once {
            let none = if them == "it" {
                "it can never finish"
            } else {
                "none of them can ever finish"
            };
            writeln!(
                f,
                "leakcheck: {what} outlived {owner}: {none}, so the check stopped waiting after {}",
                HumanDuration(self.waited)
            )?;
        } else {
            writeln!(
                f,
                "leakcheck: {what} outlived {owner}: still running after waiting {} for {them} to end",
                HumanDuration(self.waited)
            )?;
        }
        for group in groups(&self.leaks, by_owner) {
            writeln!(f)?;
            write!(f, "{group}")?;
        }
        if self.untracked > 0 {
            let (n, are, it_was) = if self.untracked == 1 {
                ("1 task".to_owned(), "is", "it was")
            } else {
                (format!("{} tasks", self.untracked), "are", "they were")
            };
            writeln!(
                f,
                "\n  {n} spawned outside leakcheck (a plain `tokio::spawn`, maybe inside a \
                 library) {are} still alive on the test's runtime\n      to see where {it_was} \
                 spawned, run the command in the note below: under `--cfg tokio_unstable` the \
                 runtime records every task's spawn site"
            )?;
            if self.adopted_runtime {
                writeln!(
                    f,
                    "      (the runtime counts as the test's because the check ran in its `block_on`; \
                     if tests share it, call `leakcheck::runtime::mark_shared` where it is built)"
                )?;
            }
        }
        for thread in &self.stray {
            write!(f, "\n  thread ")?;
            if thread.inherited {
                write!(
                    f,
                    "(unnamed; kernel name {:?} inherited from its creator)",
                    thread.name
                )?;
            } else {
                write!(f, "{:?}", thread.name)?;
            }
            write!(
                f,
                " (tid {}), {} ({}): not started through leakcheck::thread",
                thread.tid,
                crate::registry::os_thread::describe(thread.state),
                thread.state
            )?;
            if by_owner {
                match &thread.test {
                    Some(test) => write!(f, " (test `{test}`)")?,
                    None => write!(f, " (test unknown: started outside leakcheck)")?,
                }
            }
            writeln!(f)?;
        }
        let has_async = self.leaks.iter().any(|l| l.kind().is_async());
        // What rerunning under `cargo leakcheck` would add: spawn sites of
        // the counted tasks (only counted without tokio_unstable), and await
        // traces where this build can't take them but the platform can.
        let sites = self.untracked > 0;
        let traces = self.traces == TraceStatus::Unavailable
            && has_async
            && !crate::report::taskdump::ENABLED
            && crate::report::rerun::DUMPS_SUPPORTED;
        let gain = match (sites, traces) {
            (true, true) => {
                "where each task spawned outside leakcheck was spawned, and the \
                             await point each task is stuck on"
            }
            (true, false) => "where each task spawned outside leakcheck was spawned",
            (false, true) => "the await point each task is stuck on",
            (false, false) => "",
        };
        if !gain.is_empty() {
            let test = match &self.checked {
                Checked::Scope(ScopeName::Test(name)) => Some(&**name),
                _ => None,
            };
            return writeln!(
                f,
                "\nnote: to see {gain}, rerun the test under `--cfg tokio_unstable`{with}:\n      \
                 {}\n      (`cargo leakcheck` is a cargo alias, set up once as leakcheck's README \
                 says in \"See where a plain tokio::spawn came from\")",
                crate::report::rerun::command(test),
                with = if crate::report::rerun::DUMPS_SUPPORTED {
                    " with leakcheck's `taskdump` feature"
                } else {
                    ""
                },
            );
        }
        match self.traces {
            TraceStatus::Failed if has_async => writeln!(
                f,
                "\nnote: no await traces: the task dump did not finish within {} \
                 (a blocked worker?) or the tasks' runtime was out of reach",
                HumanDuration(crate::report::taskdump::LIMIT)
            ),
            _ => Ok(()),
        }
    }
}

impl Report {
    /// Who the report's first line says its survivors outlived.
    fn owner(&self) -> String {
        match &self.checked {
            Checked::Scope(ScopeName::Process) => {
                "every test (spawned outside any test)".to_owned()
            }
            Checked::Scope(name) => owner_of(name),
            Checked::TestBinary => "the test binary".to_owned(),
            Checked::TrackingOff => "nothing (tracking is off)".to_owned(),
        }
    }

    /// The report as GitHub Actions workflow commands, so that a pull
    /// request shows each leak at the line that spawned it: one `::error`
    /// line per entry of the report (survivors grouped by spawn site), with
    /// the file as [`Location::file`](std::panic::Location::file) gives it (relative to the workspace
    /// root for the workspace's own code), the line and column, a title
    /// that says what outlived which test, and the entry's text as the
    /// message. Tasks that were only counted
    /// ([`untracked_tasks`](Report::untracked_tasks)) have no spawn site
    /// and get one line without a file. Every line ends with a newline;
    /// a report with nothing to annotate gives an empty string.
    ///
    /// A failing [`verify_none`](crate::verify_none) (and
    /// [`verify_none_async`](crate::verify_none_async), `#[leak_check]`)
    /// appends these lines to its panic message when the environment
    /// variable `GITHUB_ACTIONS` is `true`, as it is on GitHub's runners.
    /// libtest prints a failing test's panic message at the start of a line
    /// (on stdout, among the test's captured output, or on stderr with
    /// `--nocapture`), which is where GitHub's log parser looks for them.
    /// Call this yourself to annotate a report that [`find`](crate::find)
    /// returned.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// #     leakcheck::Builder::new().name("example").spawn(std::future::pending::<()>());
    /// # });
    /// # let options = leakcheck::Options::new().settle(std::time::Duration::ZERO);
    /// # let report = options.find().unwrap_err();
    /// let annotations = report.github_annotations();
    /// assert!(annotations.starts_with("::error file="));
    /// assert_eq!(annotations.lines().count(), 1);
    /// ```
    pub fn github_annotations(&self) -> String {
        use fmt::Write as _;
        let mut out = String::new();
        if matches!(self.checked, Checked::TrackingOff) {
            return out;
        }
        let by_owner = matches!(self.checked, Checked::TestBinary);
        for group in groups(&self.leaks, by_owner) {
            let site = group.first.spawned_at();
            let owner = group.owner.clone().unwrap_or_else(|| self.owner());
            let what = plural(group.count, &group.first.kind().to_string());
            let text = group.to_string();
            let message: Vec<&str> = text.lines().map(str::trim).collect();
            let _ = writeln!(
                out,
                "::error file={},line={},col={},title={}::{}",
                annotation_property(&site.file().replace('\\', "/")),
                site.line(),
                site.column(),
                annotation_property(&format!("leakcheck: {what} outlived {owner}")),
                annotation_data(&message.join("\n")),
            );
        }
        if self.untracked > 0 {
            let what = plural(self.untracked, "task");
            let _ = writeln!(
                out,
                "::error title={}::{}",
                annotation_property(&format!("leakcheck: {what} outlived {}", self.owner())),
                annotation_data(&format!(
                    "{what} spawned outside leakcheck (a plain `tokio::spawn`, maybe inside a \
                     library) still alive on the test's runtime; the test's output says how to \
                     see where"
                )),
            );
        }
        out
    }

    /// What a failing check panics with in this process: see
    /// [`Report::failure_message`].
    pub(crate) fn failure_message_here(&self) -> String {
        self.failure_message(on_github_actions())
    }

    /// What a failing check panics with: the report and, on GitHub
    /// Actions (`github_actions`), its annotations after a blank line.
    pub(crate) fn failure_message(&self, github_actions: bool) -> String {
        let report = self.to_string();
        let annotations = if github_actions {
            self.github_annotations()
        } else {
            String::new()
        };
        if annotations.is_empty() {
            report
        } else {
            format!("{report}\n{annotations}")
        }
    }
}

/// Whether this process runs on GitHub Actions, which sets
/// `GITHUB_ACTIONS=true` for every step.
pub(crate) fn on_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// A workflow command's message, escaped as GitHub's runner unescapes it.
fn annotation_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value (file, title): also `:` and `,`.
fn annotation_property(text: &str) -> String {
    annotation_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// Who a scope stands for, as a report says it: "test `name`".
fn owner_of(scope: &ScopeName) -> String {
    match scope {
        ScopeName::Test(name) => format!("test `{name}`"),
        ScopeName::Thread(Some(name)) => format!("thread `{name}`"),
        ScopeName::Thread(None) => "an unnamed thread".to_owned(),
        ScopeName::Process => "no test".to_owned(),
    }
}

fn plural(n: usize, noun: &str) -> String {
    plural_as(n, noun, &format!("{noun}s"))
}

/// `n` of something, in `one`'s words or `many`'s.
pub(crate) fn plural_as(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Survivors that share a kind and a spawn site (and, in a whole-binary
/// report, an owner).
struct Group<'a> {
    first: &'a Leak,
    count: usize,
    oldest: Duration,
    same_name: bool,
    conditions: BTreeMap<&'static str, usize>,
    /// The owner to name on the group's line, when the report's first line
    /// doesn't name one for all of them.
    owner: Option<String>,
}

/// Groups survivors by spawn site; with `by_owner`, survivors of different
/// scopes never share a group, and each group names its scope's owner.
fn groups(leaks: &[Leak], by_owner: bool) -> impl Iterator<Item = Group<'_>> {
    type Key = (&'static str, u32, u32, Kind, Option<String>);
    let mut by_site: BTreeMap<Key, (Group<'_>, usize)> = BTreeMap::new();
    for leak in leaks {
        let site = leak.spawned_at();
        let owner = by_owner.then(|| owner_of(leak.record.scope().name()));
        let key = (
            site.file(),
            site.line(),
            site.column(),
            leak.kind(),
            owner.clone(),
        );
        let depth = leak.record.lineage().count();
        by_site
            .entry(key)
            .and_modify(|(g, deepest)| {
                g.count += 1;
                g.same_name &= g.first.name() == leak.name();
                g.oldest = g.oldest.max(leak.age);
                *g.conditions.entry(leak.condition.label()).or_default() += 1;
                // The member with the longest chain of spawners shows the
                // most of how the group came to be.
                if depth > *deepest {
                    *deepest = depth;
                    g.first = leak;
                }
            })
            .or_insert((
                Group {
                    first: leak,
                    count: 1,
                    oldest: leak.age,
                    same_name: true,
                    conditions: BTreeMap::from([(leak.condition.label(), 1)]),
                    owner,
                },
                depth,
            ));
    }
    by_site.into_values().map(|(group, _)| group)
}

impl fmt::Display for Group<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = self.first.record();
        write!(f, "  ")?;
        if self.count > 1 {
            write!(f, "{} × ", self.count)?;
        }
        write!(f, "{}", record.kind())?;
        match (record.name(), self.same_name) {
            (Some(name), true) => write!(f, " \"{name}\"")?,
            (_, false) => write!(f, " (various names)")?,
            (None, true) => {}
        }
        let age = if self.count > 1 {
            "oldest alive"
        } else {
            "alive"
        };
        write!(
            f,
            " spawned at {}, {age} {}",
            record.spawned_at(),
            HumanDuration(self.oldest)
        )?;
        match &self.owner {
            Some(owner) => writeln!(f, " ({owner})")?,
            None => writeln!(f)?,
        }
        writeln!(f, "      {}", ConditionLine(&self.first.condition))?;
        let frames = self
            .first
            .trace
            .as_deref()
            .map(|trace| crate::report::taskdump::trim(trace, MAX_TRACE))
            .unwrap_or_default();
        if !frames.is_empty() {
            writeln!(f, "      stuck at:")?;
            for frame in frames {
                writeln!(f, "        {frame}")?;
            }
        }
        if self.conditions.len() > 1 {
            let mixed: Vec<String> = self
                .conditions
                .iter()
                .map(|(label, n)| format!("{n} {label}"))
                .collect();
            writeln!(f, "      (of these: {})", mixed.join(", "))?;
        }
        write_chain(f, record)
    }
}

/// One line on what a survivor is doing, and what that means.
struct ConditionLine<'a>(&'a Condition);

impl fmt::Display for ConditionLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let polled = |f: &mut fmt::Formatter<'_>, polls: u64, last: Duration| {
            let times = if polls == 1 { "time" } else { "times" };
            write!(
                f,
                "; polled {polls} {times}, last {} ago",
                HumanDuration(last)
            )
        };
        match self.0 {
            Condition::CanNeverFinish { polls, last } => {
                write!(
                    f,
                    "can never finish: pending, not woken, and no clone of its waker exists, \
                     so nothing can wake it (a proof, not a guess)"
                )?;
                polled(f, *polls, *last)
            }
            Condition::Waiting {
                wakers,
                polls,
                last,
            } => {
                let held = plural(*wakers, "waker");
                write!(
                    f,
                    "waiting: pending, {held} held by what it waits on (a channel, timer, Notify, lock or socket)"
                )?;
                polled(f, *polls, *last)
            }
            Condition::Runnable { polls, last } => {
                write!(f, "runnable: woken, waiting for a worker to poll it")?;
                polled(f, *polls, *last)
            }
            Condition::Pending { polls, last } => {
                write!(
                    f,
                    "pending: spawned outside leakcheck, so what it waits on is not known"
                )?;
                polled(f, *polls, *last)
            }
            Condition::Busy { for_ } => write!(
                f,
                "busy: inside poll for {} (blocking code in an async task never yields)",
                HumanDuration(*for_)
            ),
            Condition::NotYetPolled => write!(f, "not yet polled: spawned, never run"),
            Condition::Running { for_, kernel } => {
                write!(f, "running for {}", HumanDuration(*for_))?;
                match kernel {
                    Some(state) => write!(
                        f,
                        "; kernel: {} ({state})",
                        crate::registry::os_thread::describe(*state)
                    ),
                    None => Ok(()),
                }
            }
            Condition::NotStarted => write!(f, "not started: queued for a blocking-pool thread"),
        }
    }
}

/// "spawned by task at ..." lines, repeated links folded into one.
pub(crate) fn write_chain(f: &mut fmt::Formatter<'_>, record: &TaskRecord) -> fmt::Result {
    let mut links = record.lineage().skip(1).peekable();
    let mut shown = 0;
    while let Some(link) = links.next() {
        let mut repeats = 1;
        while links.peek().is_some_and(|next| {
            next.kind() == link.kind() && next.spawned_at() == link.spawned_at()
        }) {
            links.next();
            repeats += 1;
        }
        if shown == MAX_CHAIN {
            let rest = 1 + links.count();
            return writeln!(f, "      … {} more", plural(rest, "spawner"));
        }
        write!(f, "      spawned by {}", link.kind())?;
        if let Some(name) = link.name() {
            write!(f, " \"{name}\"")?;
        }
        write!(f, " at {}", link.spawned_at())?;
        if repeats > 1 {
            write!(f, " (×{repeats}, recursively)")?;
        }
        writeln!(f)?;
        shown += 1;
    }
    Ok(())
}

/// A duration as a person writes it: `250ms`, `1.5s`, `3m 20s`.
pub(crate) struct HumanDuration(pub(crate) Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            // To the nearest millisecond: a coarse-clock difference of
            // 299.99 ms is the 300 ms a settle period waited.
            let millis = (d.as_micros() + 500) / 1000;
            write!(f, "{millis}ms")
        } else if d < Duration::from_secs(60) {
            let tenths = d.as_millis() / 100;
            write!(f, "{}.{}s", tenths / 10, tenths % 10)
        } else if d < Duration::from_secs(3600) {
            write!(f, "{}m {}s", d.as_secs() / 60, d.as_secs() % 60)
        } else {
            write!(f, "{}h {}m", d.as_secs() / 3600, d.as_secs() / 60 % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_the_runner_unescapes() {
        assert_eq!(
            annotation_data("100% done\r\nnext"),
            "100%25 done%0D%0Anext"
        );
        assert_eq!(
            annotation_property("leakcheck: a, b\n"),
            "leakcheck%3A a%2C b%0A"
        );
    }

    /// A report with one leaked task.
    fn example() -> Report {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        runtime.block_on(async {
            crate::Builder::new()
                .name("example")
                .spawn(std::future::pending::<()>());
        });
        // The runtime is idle and not entered here, so a blocking check is fine.
        crate::Options::new()
            .settle(Duration::ZERO)
            .find()
            .expect_err("the example task is pending")
    }

    #[test]
    #[cfg(feature = "track")] // needs a tracked survivor
    fn annotations_are_added_on_github_actions_only() {
        let report = example();
        let plain = report.failure_message(false);
        assert_eq!(plain, report.to_string());
        assert!(!plain.contains("::error"), "{plain}");
        let github = report.failure_message(true);
        let annotations: Vec<&str> = github
            .lines()
            .filter(|l| l.starts_with("::error "))
            .collect();
        assert_eq!(annotations.len(), 1, "{github}");
        let file = report.leaks()[0].spawned_at().file();
        assert!(
            annotations[0].starts_with(&format!("::error file={file},line=")),
            "{github}"
        );
        assert!(github.starts_with(&plain), "{github}");
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        let cases = [
            (Duration::from_micros(300), "0ms"),
            (Duration::from_nanos(299_999_990), "300ms"),
            (Duration::from_micros(999_600), "1000ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1_549), "1.5s"),
            (Duration::from_secs(200), "3m 20s"),
            (Duration::from_secs(7_300), "2h 1m"),
            (Duration::MAX, "5124095576030431h 0m"),
        ];
        for (d, want) in cases {
            assert_eq!(HumanDuration(d).to_string(), want);
        }
    }
}
