//! `Slot`: where a record sits among its scope's shards, and which shard a
//! thread's spawns go to.

use std::cell::Cell;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicUsize as StaticCounter;
use std::sync::OnceLock;

use crate::registry::loom_shim::Ordering;

/// Where a record sits in its scope's storage: shard and shelf key.
///
/// The shard is picked before the record is built; the key is only known
/// under the shard's lock, and is written and read under it.
///
/// One word, the shard in its top bits and the key below, since every live
/// record holds one.
#[derive(Debug)]
pub(super) struct Slot(AtomicU32);

/// The key bits of a slot's word; all set: no key yet.
const KEY: u32 = (1 << 28) - 1;
/// Where a slot's word keeps its shard (there are at most 16).
const SHARD_SHIFT: u32 = 28;

impl Slot {
    /// A slot in this thread's shard, its key still to be picked.
    pub(super) fn in_home_shard() -> Slot {
        Slot::in_shard(home_shard())
    }

    /// A slot in `shard`, its key still to be picked.
    pub(super) fn in_shard(shard: usize) -> Slot {
        debug_assert!(shard < 1 << (32 - SHARD_SHIFT));
        Slot(AtomicU32::new(((shard as u32) << SHARD_SHIFT) | KEY))
    }

    pub(super) fn shard(&self) -> usize {
        // The shard's bits never change; any read of the word has them.
        (self.0.load(Ordering::Relaxed) >> SHARD_SHIFT) as usize
    }

    /// Only under the shard's lock, which orders it after `insert`'s write.
    pub(super) fn key(&self) -> u32 {
        self.0.load(Ordering::Relaxed) & KEY
    }

    /// Only under the shard's lock.
    pub(super) fn set_key(&self, key: u32) {
        assert!(key < KEY, "more than 268 million live tasks in one shard");
        let shard = self.0.load(Ordering::Relaxed) & !KEY;
        self.0.store(shard | key, Ordering::Relaxed);
    }
}

/// How many shards a scope has: one per core, between 2 and 16, a power of two.
pub(super) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        cores.clamp(2, 16).next_power_of_two()
    })
}

/// The shard this thread inserts into: threads are dealt out round-robin.
fn home_shard() -> usize {
    // A process-wide counter: std's even under loom (see `loom_shim`).
    static NEXT: StaticCounter = StaticCounter::new(0);
    thread_local! {
        static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    let pick = || NEXT.fetch_add(1, Ordering::Relaxed);
    let index = HOME
        .try_with(|home| {
            if home.get() == usize::MAX {
                home.set(pick());
            }
            home.get()
        })
        .unwrap_or_else(|_| pick());
    index & (shard_count() - 1)
}
