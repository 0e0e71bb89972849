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

/// Redacts what changes from run to run or with edits: durations, line and
/// column numbers, poll counts, and (in builds with await traces) the
/// machine's part of absolute paths.
pub fn redact(text: &str) -> String {
    let text = redact_durations(text);
    let text = replace_numbers(&text, ".rs:", ".rs:[line]");
    let text = replace_numbers(&text, ".rs:[line]:", ".rs:[line]:[col]");
    let text = replace_numbers(&text, "polled ", "polled [n]");
    let text = text
        .replace("polled [n] times", "polled [n] time")
        .replace("polled [n] time", "polled [n] times");
    if leakcheck::__private::TASK_DUMPS {
        redact_paths(&text)
    } else {
        text
    }
}

/// Replaces each `before` followed by digits with `replacement`.
pub fn replace_numbers(text: &str, before: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(before) {
        let after = &rest[at + before.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        out.push_str(&rest[..at]);
        if digits == 0 {
            out.push_str(before);
        } else {
            out.push_str(replacement);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// `12ms`, `1.5s`, `2m 3s` → `[duration]`, where the number starts a word
/// and the unit ends it.
fn redact_durations(text: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let before = text[..i].chars().next_back();
        let n = digits(rest);
        if n > 0 && !word(before) {
            // `\d+m \d+s`, then `\d+(\.\d+)?(ms|s)`, each ending a word.
            let mut end = None;
            if let Some(tail) = rest[n..].strip_prefix("m ") {
                let m = digits(tail);
                if m > 0 && tail[m..].starts_with('s') && !word(tail[m + 1..].chars().next()) {
                    end = Some(n + 2 + m + 1);
                }
            }
            if end.is_none() {
                let mut len = n;
                if let Some(fraction) = rest[n..].strip_prefix('.') {
                    if digits(fraction) > 0 {
                        len += 1 + digits(fraction);
                    }
                }
                for unit in ["ms", "s"] {
                    if rest[len..].starts_with(unit)
                        && !word(rest[len + unit.len()..].chars().next())
                    {
                        end = Some(len + unit.len());
                        break;
                    }
                }
            }
            if let Some(end) = end {
                out.push_str("[duration]");
                i += end;
                continue;
            }
            out.push_str(&rest[..n]);
            i += n;
            continue;
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Await traces name files by absolute path: keeps the part inside the
/// dependency (`at [registry]/tokio-1.54.1/...`) or the repository
/// (`at tests/...`).
fn redact_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("at /") {
        out.push_str(&rest[..at]);
        let path = &rest[at + 3..];
        let token = &path[..path.find(char::is_whitespace).unwrap_or(path.len())];
        let registry = token.rfind("/registry/src/").and_then(|r| {
            let index = &token[r + "/registry/src/".len()..];
            index
                .find('/')
                .map(|slash| (r + "/registry/src/".len() + slash + 1, "at [registry]/"))
        });
        let repository = || {
            ["/tests/", "/src/", "/examples/"]
                .iter()
                .filter_map(|dir| token.find(dir))
                .min()
                .map(|d| (d + 1, "at "))
        };
        match registry.or_else(repository) {
            Some((keep_from, prefix)) => {
                out.push_str(prefix);
                rest = &path[keep_from..];
            }
            None => {
                out.push_str("at /");
                rest = &path[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Pins `value` (redacted by the caller) with insta as
/// `tests/snapshots/<name>.snap`; builds with await traces use
/// `<name>@taskdump.snap` unless `every_build` is set. insta runs without
/// its `filters` feature (which needs regex, a dozen crates more for every
/// first build): `redact` does that part.
pub fn assert_snapshot(name: &str, value: &str, every_build: bool) {
    let suffix = if !every_build && leakcheck::__private::TASK_DUMPS {
        "taskdump"
    } else {
        ""
    };
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    if !suffix.is_empty() {
        settings.set_snapshot_suffix(suffix);
    }
    settings.bind(|| insta::assert_snapshot!(name, value));
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
