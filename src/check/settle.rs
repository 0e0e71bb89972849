//! The settle period: how long a check waits for survivors to end, and the
//! `LEAKCHECK_SETTLE` environment variable that overrides the default.

use std::time::{Duration, Instant};

/// Used when neither `Options::settle` nor `LEAKCHECK_SETTLE` says otherwise.
/// Passing checks return as soon as their tasks end, so only failing tests
/// pay for it.
pub(crate) const DEFAULT: Duration = Duration::from_secs(1);

/// The name of the environment variable that overrides [`DEFAULT`].
pub(crate) const ENV: &str = "LEAKCHECK_SETTLE";

/// The settle period from the environment, or the default.
///
/// # Panics
///
/// When the variable is set to something that is not a duration: a typo in
/// CI configuration should fail loudly, not fall back silently.
pub(crate) fn from_env() -> Duration {
    match std::env::var(ENV) {
        Err(std::env::VarError::NotPresent) => DEFAULT,
        Err(std::env::VarError::NotUnicode(raw)) => {
            panic!("leakcheck: {ENV}={raw:?} is not valid UTF-8; {ACCEPTED}")
        }
        Ok(text) => parse(&text).unwrap_or_else(|why| panic!("leakcheck: {ENV}={text:?} {why}")),
    }
}

/// Re-reads a state that gives no event when it changes (tokio's task
/// count on stable, the kernel's thread list) until `settled` holds or
/// `deadline` passes, with a growing pause (1 ms up to 25 ms), and at least
/// three reads even when the deadline has already passed: a single read can
/// lag (tokio's count on the multi-thread runtime) or catch a thread while
/// it exits. Returns the last read.
pub(crate) fn reread<T>(
    deadline: Option<Instant>,
    mut read: impl FnMut() -> T,
    settled: impl Fn(&T) -> bool,
) -> T {
    const MIN_READS: u32 = 3;
    let mut pause = Duration::from_millis(1);
    let mut reads = 0;
    loop {
        let value = read();
        reads += 1;
        if settled(&value) {
            return value;
        }
        let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() && reads >= MIN_READS {
            return value;
        }
        std::thread::sleep(if left.is_zero() {
            pause
        } else {
            pause.min(left)
        });
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

const ACCEPTED: &str =
    "use a whole number of milliseconds or seconds, such as \"250ms\" or \"2s\" (\"0s\" checks without waiting)";

/// Parses `"250ms"` or `"2s"` (surrounding spaces allowed).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = if let Some(d) = text.strip_suffix("ms") {
        (d, "ms")
    } else if let Some(d) = text.strip_suffix('s') {
        (d, "s")
    } else if text.is_empty() {
        return Err(format!("is empty; {ACCEPTED}"));
    } else {
        return Err(format!("has no unit; {ACCEPTED}"));
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("is not a duration; {ACCEPTED}"));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("is too large; {ACCEPTED}"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(value),
        _ => Duration::from_secs(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_milliseconds_and_seconds() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse(" 0s "), Ok(Duration::ZERO));
        assert_eq!(
            parse("99999999999s"),
            Ok(Duration::from_secs(99_999_999_999))
        );
    }

    #[test]
    fn rejects_everything_else_with_the_accepted_forms() {
        for bad in ["", "abc", "-5s", "1.5s", "10", "ms", "s", "5 m", "1e3ms"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("\"250ms\""), "{bad:?}: {err}");
        }
        let too_large = parse("99999999999999999999999s").unwrap_err();
        assert!(too_large.starts_with("is too large"), "{too_large}");
    }
}
