//! The check side: which survivors a check waits for, how long, what it
//! lets pass, and when it gives up.
//!
//! - [`verify`]: the check itself, blocking and async over one path: the
//!   scope a check looks at (the same one a spawn made there would join),
//!   the wait on it ([`Scope::settle`](crate::registry::scope::Scope::settle)),
//!   failing fast once every survivor can never finish, the runtime's
//!   untracked count, and the [`Report`](crate::Report); also
//!   [`Options`]' terminal methods and the whole-binary check;
//! - [`options`]: what a check forgives and its settle period;
//! - [`settle`]: the settle period's default, `LEAKCHECK_SETTLE`, and the
//!   bounded re-reading of counts that have no end event;
//! - [`stray_threads`]: OS threads nobody tracked (Linux);
//! - [`test_scope`]: what `#[leak_check]` expands to;
//! - [`test_main`]: `verify_test_main!` and [`Options::verify_test_main`].
//!
//! It reads the registry through the core's read API and hands survivors to
//! the report side; neither of those calls back into it.

#[cfg(doc)]
use crate::check::options::Options;

pub(crate) mod options;
pub(crate) mod settle;
pub(crate) mod stray_threads;
pub(crate) mod test_main;
pub(crate) mod test_scope;
pub(crate) mod verify;
