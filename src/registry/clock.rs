//! `Stamp`: the cheap clock that task timestamps are read from.
//!
//! Every spawn and every poll stamps its task, so reading the clock sits on
//! leakcheck's two hottest paths. `std::time::Instant::now` reads the
//! precise monotonic clock, tens of nanoseconds on a VM; the kernel's coarse
//! monotonic clock (`CLOCK_MONOTONIC_COARSE` on Linux, read through rustix,
//! which the crate already uses there: a vDSO read, no system call) costs a
//! few, and ticks every few milliseconds. A report that says a task was
//! "alive 200ms" or "last polled 3s ago" needs no better, so stamps come
//! from the coarse clock, and so does the "now" they are compared with.
//! Elsewhere stamps come from `Instant`, counted from the first stamp the
//! process takes.

use std::time::Duration;

/// A point in time on the coarse clock, in nanoseconds. Stamps only mean
/// something compared with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// The coarse clock's reading now.
    #[inline]
    pub(crate) fn now() -> Stamp {
        // 0 is kept for "never" in `Stamp::encode`'s slots.
        Stamp(nanos().max(1))
    }

    /// How long after `earlier` this is (zero if it isn't after it).
    pub(crate) fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The stamp as a word for an atomic slot; never 0.
    pub(super) fn encode(self) -> u64 {
        self.0
    }

    /// A slot's word back as a stamp: `None` for 0, "never".
    pub(super) fn decode(word: u64) -> Option<Stamp> {
        (word != 0).then_some(Stamp(word))
    }
}

/// The kernel's coarse monotonic clock, in nanoseconds.
#[cfg(target_os = "linux")]
#[inline]
fn nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    // Never negative: the monotonic clock counts from boot.
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}

/// `Instant`, counted from the process's first reading.
#[cfg(not(target_os = "linux"))]
#[inline]
fn nanos() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::Stamp;
    use std::time::Duration;

    #[test]
    fn the_clock_moves_forward_and_measures_in_real_units() {
        // Bracket each coarse reading with precise ones, so that a
        // preemption anywhere only widens the bounds.
        let before_start = std::time::Instant::now();
        let start = Stamp::now();
        let after_start = std::time::Instant::now();
        // Long enough for several coarse ticks (they are 1-10 ms apart).
        std::thread::sleep(Duration::from_millis(60));
        let before_end = std::time::Instant::now();
        let end = Stamp::now();
        let after_end = std::time::Instant::now();

        let measured = end.since(start);
        // A coarse reading lags the real time by less than one tick.
        let tick = Duration::from_millis(10);
        let shortest = before_end - after_start;
        let longest = after_end - before_start;
        assert!(
            measured + tick >= shortest && measured <= longest + tick,
            "coarse {measured:?}, real between {shortest:?} and {longest:?}"
        );
        assert_eq!(start.since(end), Duration::ZERO, "never negative");
    }

    #[test]
    fn zero_is_never() {
        assert_eq!(Stamp::decode(0), None);
        let now = Stamp::now();
        assert_eq!(Stamp::decode(now.encode()), Some(now));
    }
}
