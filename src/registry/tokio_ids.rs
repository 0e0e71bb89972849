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
/// multiplication (Fibonacci hashing), and other keys (test names) a word
/// at a time the same way: the keys are numbers handed out by leakcheck
/// or tokio and the names of the binary's own tests, not input an
/// attacker picks, so SipHash's protection buys nothing, and it cost every
/// task of an instrumented runtime a few hundred instructions.
pub(crate) type IdHash = BuildHasherDefault<IdHasher>;

/// See [`IdHash`].
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Other keys (the registry's test names): eight bytes at a time.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.write_u64(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let mut last = [0; 8];
        let rest = words.remainder();
        if !rest.is_empty() {
            last[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(last));
        }
    }

    fn write_u64(&mut self, word: u64) {
        // One id: just the multiplication (the state starts at 0).
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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

#[cfg(test)]
mod tests {
    use super::IdHash;
    use std::collections::HashMap;
    use std::hash::{BuildHasher, Hasher};

    #[test]
    fn ids_and_names_hash_apart_and_look_up() {
        let hash = |key: &dyn Fn(&mut dyn std::hash::Hasher)| {
            let mut hasher = IdHash::default().build_hasher();
            key(&mut hasher);
            hasher.finish()
        };
        // Consecutive ids differ in the top bits, which hashbrown tags with.
        let tops: std::collections::HashSet<u64> = (1..=128u64)
            .map(|id| hash(&|h| h.write_u64(id)) >> 57)
            .collect();
        assert!(tops.len() > 64, "only {} distinct tags", tops.len());
        // Names that differ in one byte, at either end or past a word.
        let names = [
            "a::b",
            "a::c",
            "b::b",
            "tests::one_long_name_x",
            "tests::one_long_name_y",
        ];
        let mut map: HashMap<&str, usize, IdHash> = HashMap::default();
        for (i, name) in names.iter().enumerate() {
            map.insert(name, i);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(map.get(name), Some(&i));
        }
        assert_eq!(map.get("a::d"), None);
    }
}
