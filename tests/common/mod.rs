//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test target uses its own subset

use std::time::Duration;

use leakcheck::{Options, Report};

/// Long enough for a slow CI machine, short enough to keep leaky tests quick.
pub const LEAKY_SETTLE: Duration = Duration::from_millis(200);

/// Clean checks get a long settle period: they must return the moment their
/// tasks end, so a passing test never waits it out.
pub const CLEAN_SETTLE: Duration = Duration::from_secs(20);

/// The line of the spawn that `// site:<marker>` marks in `source`.
///
/// A trailing `// site:<marker>` marks its own line; one alone on a line
/// marks the line above (where rustfmt moves a comment that followed an
/// opening brace). Marking spawns this way keeps assertions on
/// `Leak::spawned_at` true through reformatting.
pub fn site_line(source: &str, marker: &str) -> u32 {
    let tag = format!("// site:{marker}");
    let lines: Vec<usize> = source
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_end().ends_with(&tag))
        .map(|(i, l)| if l.trim_start() == tag { i } else { i + 1 })
        .collect();
    assert_eq!(lines.len(), 1, "marker {tag:?} must tag exactly one line");
    lines[0] as u32
}

/// Asserts that the report holds exactly `expected` (marker, count) pairs,
/// every leak spawned in `file` on a marked line.
pub fn assert_sites(report: &Report, file: &str, source: &str, expected: &[(&str, usize)]) {
    for leak in report.leaks() {
        assert!(
            leak.spawned_at().file().replace('\\', "/").ends_with(file),
            "leak spawned outside {file}: {leak:?}\n{report}"
        );
    }
    let mut total = 0;
    for (marker, count) in expected {
        let line = site_line(source, marker);
        let found = report
            .leaks()
            .iter()
            .filter(|l| l.spawned_at().line() == line)
            .count();
        assert_eq!(
            found, *count,
            "leaks at site:{marker} (line {line})\n{report}"
        );
        total += count;
    }
    assert_eq!(report.leaks().len(), total, "unexpected leaks\n{report}");
}

/// A check that must fail: returns the report.
pub async fn expect_report() -> Report {
    Options::new()
        .settle(LEAKY_SETTLE)
        .find_async()
        .await
        .expect_err("the leak should have been caught")
}

/// A check that must pass, without waiting out the settle period.
pub async fn expect_clean() {
    Options::new()
        .settle(CLEAN_SETTLE)
        .verify_none_async()
        .await;
}

/// Snapshot settings that redact what changes from run to run or with edits.
pub fn redactions() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b\d+(\.\d+)?(ms|s)\b", "[duration]");
    settings.add_filter(r"\b\d+m \d+s\b", "[duration]");
    settings.add_filter(r"\.rs:\d+:\d+", ".rs:[line]:[col]");
    settings.add_filter(r"polled \d+ times?", "polled [n] times");
    settings.set_prepend_module_to_snapshot(false);
    if cfg!(all(tokio_unstable, feature = "taskdump")) {
        // Reports of this build carry await traces: pinned separately.
        settings.set_snapshot_suffix("taskdump");
        // Traces name files by absolute path: keep the part inside the
        // repository or the dependency.
        settings.add_filter(r"at /\S*/registry/src/[^/]+/", "at [registry]/");
        settings.add_filter(r"at /\S*?/(tests|src|examples)/", "at $1/");
    }
    settings
}

/// A tracked thread named `name`, parked until [`Parked::end`] (or until
/// the `Parked` is dropped, without waiting for it then). `Parked` can be
/// moved into an ignore predicate, which runs while a check lists its
/// survivors, to end the thread at exactly that moment.
pub struct Parked(
    std::sync::Mutex<Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
);

impl Parked {
    #[track_caller]
    pub fn start(name: &str) -> Parked {
        let (release, parked) = std::sync::mpsc::channel::<()>();
        let thread = leakcheck::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _ = parked.recv();
            })
            .unwrap();
        Parked(std::sync::Mutex::new(Some((release, thread))))
    }

    /// Releases the thread and waits for it to end; later calls do nothing.
    pub fn end(&self) {
        if let Some((release, thread)) = self.0.lock().unwrap().take() {
            drop(release);
            thread.join().unwrap();
        }
    }
}
