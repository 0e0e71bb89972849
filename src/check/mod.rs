//! The check side: what a check waits for, how long, and what it lets pass.

pub(crate) mod options;
pub(crate) mod settle;
pub(crate) mod stray_threads;
pub(crate) mod test_main;
pub(crate) mod test_scope;
pub(crate) mod verify;
