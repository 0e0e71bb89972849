//! `Shelf`: where one shard of a scope keeps its live records.
//!
//! A slot per record, reused once vacant. It stands in for a slab: a slab's
//! entry is an enum of "occupied" and "next vacant", 16 bytes for an `Arc`,
//! while a shelf's slot is an `Option<Arc>`, 8 bytes, and its vacant slots
//! are listed on the side (4 bytes each, only for slots nobody occupies).
//! Every live task pays for its slot, so the slot is kept small.

use crate::registry::loom_shim::Arc;
use crate::registry::record::TaskRecord;

#[derive(Default)]
pub(super) struct Shelf {
    slots: Vec<Option<Arc<TaskRecord>>>,
    vacant: Vec<u32>,
    len: usize,
}

impl Shelf {
    /// Puts `record` in a free slot and returns the slot's key.
    ///
    /// # Panics
    ///
    /// With more than 4 billion live records in one shard.
    pub(super) fn insert(&mut self, record: Arc<TaskRecord>) -> u32 {
        self.len += 1;
        if let Some(key) = self.vacant.pop() {
            self.slots[key as usize] = Some(record);
            return key;
        }
        let key =
            u32::try_from(self.slots.len()).expect("more than 4 billion live tasks in one shard");
        self.slots.push(Some(record));
        key
    }

    /// Takes the record out of slot `key`, if it holds one.
    pub(super) fn remove(&mut self, key: u32) -> Option<Arc<TaskRecord>> {
        let record = self.slots.get_mut(key as usize)?.take()?;
        self.vacant.push(key);
        self.len -= 1;
        Some(record)
    }

    /// The record in slot `key`, if any.
    pub(super) fn get(&self, key: u32) -> Option<&Arc<TaskRecord>> {
        self.slots.get(key as usize)?.as_ref()
    }

    /// Empties a shelf that holds no record for another scope, keeping its
    /// room unless that grew large (a burst's worth is not kept idle).
    /// False if it still holds records.
    #[cfg(not(loom))]
    pub(crate) fn reset(&mut self) -> bool {
        /// Slots a kept shelf may have room for: 2 KiB and 1 KiB.
        const KEEP: usize = 256;
        if self.len != 0 {
            return false;
        }
        if self.slots.capacity() > KEEP {
            *self = Shelf::default();
        } else {
            self.slots.clear();
            self.vacant.clear();
        }
        true
    }

    /// How many records it holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every record it holds. Walks the vacant slots too: as many as the
    /// shard ever held at once.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<TaskRecord>> {
        self.slots.iter().flatten()
    }

    /// Copies up to `max` records from the slots at `from` on into `out`;
    /// returns the slot to go on from, or `None` past the last one. Records
    /// never change slots, so a walk in steps visits each record that stays
    /// alive once, whatever comes and goes between the steps.
    pub(super) fn copy_from(
        &self,
        from: usize,
        max: usize,
        out: &mut Vec<Arc<TaskRecord>>,
    ) -> Option<usize> {
        let mut end = from;
        let mut found = 0;
        while end < self.slots.len() && found < max {
            found += usize::from(self.slots[end].is_some());
            end += 1;
        }
        let batch = &self.slots[from.min(end)..end];
        // A read of each record first: these loads don't depend on each
        // other, so their cache misses overlap, where the reference counts
        // taken below would miss one after another.
        let touched = batch.iter().flatten().fold(0u64, |sum, record| {
            sum ^ record.id() ^ u64::from(record.state.activity.read().wakers)
        });
        std::hint::black_box(touched);
        out.extend(batch.iter().flatten().cloned());
        (end < self.slots.len()).then_some(end)
    }
}

#[cfg(all(test, feature = "track", not(loom)))]
mod tests {
    use super::Shelf;
    use crate::registry::kind::Kind;
    use crate::registry::loom_shim::Arc;
    use crate::registry::record::{Owner, Registration};
    use crate::registry::scope::{Scope, ScopeName};
    use std::panic::Location;

    fn record() -> Arc<crate::registry::record::TaskRecord> {
        // A registered record's allocation; the shelf under test is ours.
        let owner = Owner::Scope(Scope::new(ScopeName::Thread(None)));
        Registration::new(owner, Kind::Task, None, Location::caller())
            .record()
            .clone()
    }

    #[test]
    fn slots_are_reused_and_counted() {
        let mut shelf = Shelf::default();
        let (a, b, c) = (record(), record(), record());
        let ka = shelf.insert(a.clone());
        let kb = shelf.insert(b.clone());
        assert_eq!((ka, kb, shelf.len()), (0, 1, 2));
        assert!(Arc::ptr_eq(shelf.get(kb).unwrap(), &b));

        assert!(Arc::ptr_eq(&shelf.remove(ka).unwrap(), &a));
        assert!(shelf.remove(ka).is_none(), "removed once only");
        assert!(shelf.get(ka).is_none());
        assert_eq!(shelf.len(), 1);

        assert_eq!(shelf.insert(c.clone()), ka, "the vacant slot is reused");
        let held: Vec<_> = shelf.iter().map(|r| r.id()).collect();
        assert_eq!(held, vec![c.id(), b.id()]);
        assert!(shelf.remove(7).is_none(), "a key never handed out");

        shelf.remove(ka);
        shelf.remove(kb);
        assert!(shelf.is_empty());
        assert_eq!(shelf.iter().count(), 0);
    }

    #[test]
    fn a_slot_costs_a_pointer() {
        assert_eq!(
            std::mem::size_of::<Option<Arc<crate::registry::record::TaskRecord>>>(),
            std::mem::size_of::<usize>()
        );
    }
}
