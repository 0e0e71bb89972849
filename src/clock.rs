//! `Stamp`: the cheap clock that task timestamps are read from.
//!
//! Every spawn and every poll stamps its task, so reading the clock sits on
//! leakcheck's two hottest paths. `std::time::Instant::now` reads the
//! precise monotonic clock, tens of nanoseconds on a VM; the kernel's coarse
//! monotonic clock (`CLOCK_MONOTONIC_COARSE` on Linux, read through
//! `coarsetime`) costs a few, and ticks every few milliseconds. A report
//! that says a task was "alive 200ms" or "last polled 3s ago" needs no
//! better, so stamps come from the coarse clock, and so does the "now"
//! they are compared with.

use std::time::Duration;

/// A point in time on the coarse clock. Stamps only mean something
/// compared with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// The coarse clock's reading now.
    #[inline]
    pub(crate) fn now() -> Stamp {
        // Not `coarsetime::Instant::now`, which also stores the reading in
        // a process-wide cache: a shared line every core would write to.
        let ticks = coarsetime::Instant::now_without_cache_update().as_ticks();
        // 0 is kept for "never" in `Stamp::encode`'s slots.
        Stamp(ticks.max(1))
    }

    /// How long after `earlier` this is (zero if it isn't after it).
    pub(crate) fn since(self, earlier: Stamp) -> Duration {
        coarsetime::Duration::from_ticks(self.0.saturating_sub(earlier.0)).into()
    }

    /// The stamp as a word for an atomic slot; never 0.
    pub(crate) fn encode(self) -> u64 {
        self.0
    }

    /// A slot's word back as a stamp: `None` for 0, "never".
    pub(crate) fn decode(word: u64) -> Option<Stamp> {
        (word != 0).then_some(Stamp(word))
    }
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
