//! `Tracked<F>`: the future wrapper that keeps a task registered while it
//! lives and makes it the owner of whatever it spawns while it is polled.

use std::fmt;
use std::future::Future;
#[cfg(feature = "track")]
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

#[cfg(feature = "track")]
use crate::registry::kind::Kind;
#[cfg(feature = "track")]
use crate::registry::loom_shim::Arc;
#[cfg(feature = "track")]
use crate::registry::owner;
#[cfg(feature = "track")]
use crate::registry::record::Registration;

pin_project! {
    /// A future registered with leakcheck, returned by [`track`](crate::track).
    ///
    /// It behaves exactly like the future it wraps. While it is alive (not
    /// yet completed or dropped) it counts as a live task of the scope that
    /// created it, so hand it to any spawner (`tokio::spawn`,
    /// `JoinSet::spawn`, tokio-util's `TaskTracker::spawn`) and the task is
    /// checked like one spawned by [`spawn`](crate::spawn).
    ///
    /// The wrapper adds one pointer to the future's size, so wrapping a small
    /// future does not move tokio's task allocation into a larger size class.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut set = tokio::task::JoinSet::new();
    /// set.spawn(leakcheck::track(async { 1 + 1 }));
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 2);
    /// leakcheck::verify_none_async().await;
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled or spawned"]
    pub struct Tracked<F> {
        #[pin]
        future: F,
        registration: RegistrationSlot,
    }
}

/// What the wrapper keeps besides the future: the registration, or nothing
/// at all when tracking is compiled out (the wrapper is then exactly the
/// size of the future).
#[cfg(feature = "track")]
type RegistrationSlot = Registration;
#[cfg(not(feature = "track"))]
type RegistrationSlot = ();

impl<F> Tracked<F> {
    #[cfg(feature = "track")]
    pub(crate) fn new(
        future: F,
        kind: Kind,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> Self {
        Tracked {
            future,
            registration: owner::register(kind, name, spawned_at),
        }
    }
}

impl<F> Tracked<F> {
    /// A pass-through wrapper, for builds without the `track` feature.
    #[cfg(not(feature = "track"))]
    pub(crate) fn untracked(future: F) -> Self {
        Tracked {
            future,
            registration: (),
        }
    }

    #[cfg(all(tokio_unstable, feature = "track"))]
    pub(crate) fn registration(&self) -> &Registration {
        &self.registration
    }
}

#[cfg(all(test, feature = "track"))]
impl<F> Tracked<F> {
    pub(crate) fn record(
        &self,
    ) -> Option<&crate::registry::loom_shim::Arc<crate::registry::record::TaskRecord>> {
        self.registration.get()
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    #[allow(unsafe_code)] // the counting waker and the runtime's; see the SAFETY comments
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        #[cfg(not(feature = "track"))]
        {
            // Tracking compiled out: a plain pass-through.
            this.future.poll(cx)
        }
        #[cfg(feature = "track")]
        {
            let Some(record) = this.registration.get() else {
                // Polled after completion: nothing left to track.
                return this.future.poll(cx);
            };
            // SAFETY: this wrapper owns the registration, and `poll` takes
            // it by `Pin<&mut Self>`: no other poll of this record runs now.
            unsafe { record.poll_begin(cx.waker()) };
            let record_ptr = Arc::as_ptr(record);
            let output = {
                // The record is the current owner for the length of this poll and
                // is handed back even if the future panics.
                let _lend = crate::registry::owner::Lend::new(this.registration);
                // SAFETY: `Lend` moved the record's `Arc` into the thread-local
                // context, where it stays (only `Lend` and `Restore` guards swap
                // that slot, and each puts back what it took) until `_lend`
                // drops at the end of this block. The waker and every reference
                // to it live only inside this block; clones take their own count.
                let waker = unsafe { crate::registry::waker::borrowed(record_ptr) };
                let mut counted = Context::from_waker(&waker);
                this.future.poll(&mut counted)
            };
            if let Some(record) = this.registration.get() {
                record.poll_end(output.is_ready());
            }
            if output.is_ready() {
                // Ended now, not when the runtime gets round to dropping us.
                this.registration.end();
            }
            output
        }
    }
}

impl<F> fmt::Debug for Tracked<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Tracked;
    use std::mem::size_of;

    #[test]
    #[cfg(not(feature = "track"))]
    fn without_tracking_the_wrapper_is_the_future() {
        assert_eq!(size_of::<Tracked<[u64; 2]>>(), 16);
    }

    #[test]
    #[cfg(feature = "track")]
    fn the_wrapper_adds_one_pointer_to_the_future() {
        // tokio sizes task cells in 128-byte steps; a wrapper that grew a
        // small future by more than a pointer would push trivial tasks into
        // the next step.
        assert_eq!(size_of::<Tracked<()>>(), size_of::<usize>());
        assert_eq!(size_of::<Tracked<[u64; 2]>>(), 16 + size_of::<usize>());
    }
}
