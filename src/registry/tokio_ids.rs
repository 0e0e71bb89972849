//! `TokioIds`: what tokio calls a tracked task and its runtime, kept beside
//! the records rather than in them.
//!
//! Only task dumps (to match an await trace to its survivor) and
//! instrumented runtimes (to tell their untracked tasks from tracked ones)
//! ask for these ids. Sixteen bytes in every record would cost every user;
//! a table keyed by record id costs only those who need it. A record says
//! whether it has an entry, and removes it when it is dropped or reused.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

cfg_task_dumps!({
    /// This build can take task dumps (see `cfg_task_dumps!` in `lib.rs`).
    pub(crate) const TASK_DUMPS: bool = true;
} else {
    /// This build can't take task dumps.
    pub(crate) const TASK_DUMPS: bool = false;
});

/// Set once a runtime that counts its untracked tasks by id exists (see
/// `runtime::build`): from then on, a tracked task's first poll notes its
/// runtime too.
static RUNTIMES_WANT_IDS: AtomicBool = AtomicBool::new(false);

/// Called when a runtime starts counting its untracked tasks by id.
pub(crate) fn runtimes_want_ids() {
    RUNTIMES_WANT_IDS.store(true, Ordering::SeqCst);
}

/// Whether some runtime counts its untracked tasks by id.
pub(crate) fn runtime_wants_ids() -> bool {
    RUNTIMES_WANT_IDS.load(Ordering::Relaxed)
}

/// Whether anything reads the ids: task dumps, or a runtime of the above.
pub(super) fn wanted() -> bool {
    TASK_DUMPS || runtime_wants_ids()
}

/// What tokio calls a task and its runtime, each set at most once.
#[derive(Clone, Copy, Default)]
pub(super) struct TokioIds {
    /// The tokio task that runs the record's future.
    pub(crate) task: Option<tokio::task::Id>,
    /// The runtime of that task, once known.
    pub(crate) runtime: Option<tokio::runtime::Id>,
}

type Table = Mutex<Ids>;
type Ids = HashMap<u64, TokioIds, IdHash>;

/// Hashes an id (a record's, or tokio's of a task or runtime) with one
/// multiplication (Fibonacci hashing): the keys are distinct numbers
/// handed out by leakcheck or tokio, not input an attacker picks, so
/// SipHash's protection buys nothing, and it cost every task of an
/// instrumented runtime a few hundred instructions.
pub(crate) type IdHash = BuildHasherDefault<IdHasher>;

/// See [`IdHash`].
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; this keeps any other input correct.
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The table's shard for `record`.
fn table(record: u64) -> std::sync::MutexGuard<'static, Ids> {
    const SHARDS: usize = 16;
    static TABLES: OnceLock<[Table; SHARDS]> = OnceLock::new();
    let tables = TABLES.get_or_init(|| std::array::from_fn(|_| Table::default()));
    // Ids come in per-thread blocks of consecutive numbers: the low bits
    // spread one thread's records over every shard.
    tables[record as usize % SHARDS]
        .lock()
        // Nothing panics while a shard is locked.
        .unwrap_or_else(PoisonError::into_inner)
}

/// Records `record`'s task (and runtime, if given) unless already known:
/// the first value of each wins.
pub(super) fn note(record: u64, task: tokio::task::Id, runtime: Option<tokio::runtime::Id>) {
    let mut table = table(record);
    let ids = table.entry(record).or_default();
    ids.task.get_or_insert(task);
    if let Some(runtime) = runtime {
        ids.runtime.get_or_insert(runtime);
    }
}

/// `record`'s ids, as far as known.
pub(super) fn get(record: u64) -> TokioIds {
    table(record).get(&record).copied().unwrap_or_default()
}

/// Drops `record`'s entry.
pub(super) fn forget(record: u64) {
    table(record).remove(&record);
}
