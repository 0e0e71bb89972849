//! Tracked OS threads: drop-in replacements for [`std::thread::spawn`] and
//! [`std::thread::Builder`].
//!
//! A tracked thread is live until its closure returns (or unwinds). Tasks and
//! threads it spawns belong to the same scope as the thread itself.

use std::io;
#[cfg(feature = "track")]
use std::panic::Location;
use std::thread::JoinHandle;

#[cfg(feature = "track")]
use crate::registry::kind::Kind;
#[cfg(feature = "track")]
use crate::registry::owner;

/// Spawns a tracked thread, like [`std::thread::spawn`].
///
/// # Panics
///
/// Like `std::thread::spawn`, if the OS fails to create a thread.
///
/// ```
/// let handle = leakcheck::thread::spawn(|| 2 + 2);
/// assert_eq!(handle.join().unwrap(), 4);
/// leakcheck::verify_none();
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .expect("leakcheck::thread::spawn: failed to spawn thread")
}

/// Configures a tracked thread, like [`std::thread::Builder`].
///
/// ```
/// let handle = leakcheck::thread::Builder::new()
///     .name("indexer".to_string())
///     .stack_size(256 * 1024)
///     .spawn(|| "indexed")
///     .unwrap();
/// assert_eq!(handle.join().unwrap(), "indexed");
/// leakcheck::verify_none();
/// ```
#[derive(Debug)]
#[must_use = "a Builder does nothing until `spawn` is called"]
pub struct Builder {
    inner: std::thread::Builder,
    name: Option<Box<str>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the platform's defaults.
    ///
    /// ```
    /// let h = leakcheck::thread::Builder::new().spawn(|| ()).unwrap();
    /// h.join().unwrap();
    /// ```
    pub fn new() -> Self {
        Builder {
            inner: std::thread::Builder::new(),
            name: None,
        }
    }

    /// Names the thread (for the OS, panics and leakcheck's reports).
    ///
    /// ```
    /// let h = leakcheck::thread::Builder::new()
    ///     .name("poller".into())
    ///     .spawn(|| std::thread::current().name().map(str::to_owned))
    ///     .unwrap();
    /// assert_eq!(h.join().unwrap().as_deref(), Some("poller"));
    /// ```
    pub fn name(self, name: String) -> Self {
        Builder {
            name: cfg!(feature = "track").then(|| name.as_str().into()),
            inner: self.inner.name(name),
        }
    }

    /// Sets the new thread's stack size in bytes.
    ///
    /// ```
    /// let h = leakcheck::thread::Builder::new().stack_size(64 * 1024).spawn(|| ()).unwrap();
    /// h.join().unwrap();
    /// ```
    pub fn stack_size(self, size: usize) -> Self {
        Builder {
            inner: self.inner.stack_size(size),
            ..self
        }
    }

    /// Spawns the thread, like [`std::thread::Builder::spawn`].
    ///
    /// # Errors
    ///
    /// When the OS fails to create the thread; nothing is registered then.
    ///
    /// ```
    /// let h = leakcheck::thread::Builder::new().spawn(|| 1).unwrap();
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        #[cfg(feature = "track")]
        {
            let registration = owner::register(Kind::Thread, self.name, Location::caller());
            // If the OS refuses the thread, the closure (and the registration
            // in it) is dropped, which ends the record again.
            self.inner
                .spawn(move || owner::run_registered(registration, f))
        }
        #[cfg(not(feature = "track"))]
        {
            let _ = self.name;
            self.inner.spawn(f)
        }
    }
}
