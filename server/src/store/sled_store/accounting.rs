//! What the sled store keeps in memory instead of writing per deposit: each mailbox's usage (for
//! its quota and the totals) and which mailboxes received something in which hour (for expiry).
//!
//! Both are rebuilt from the `items` tree when the store opens (`rebuild`, below), so a deposit
//! costs one write to sled and nothing else. Usage is a soft abuse limit: it errs towards
//! refusing, never towards losing data.

use super::backend;
use super::layout::{entry, mailbox_of, mailbox_record, split_item_key};
use crate::store::{Quota, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use vigil_core::ids::MailboxId;

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    m.lock()
        .map_err(|_| StoreError::Backend("store accounting poisoned".into()))
}

/// Items and envelope bytes per mailbox, against the quota.
#[derive(Default)]
pub(super) struct Usage {
    by_mailbox: Mutex<HashMap<MailboxId, (u64, u64)>>,
    /// Envelopes of armed alerts per mailbox, and their bytes: held against the quota, but not
    /// items (not fetchable, not in `of` or `totals`). Locked after `by_mailbox`.
    sealed: Mutex<HashMap<MailboxId, (u64, u64)>>,
    /// Bytes of the blobs each mailbox's items refer to: held against the quota, and shown in
    /// `of` (its owner's status). Locked after `sealed`.
    blobs: Mutex<HashMap<MailboxId, u64>>,
}

impl Usage {
    /// Count one item of `len` bytes against `mailbox`, or refuse if that would exceed `quota`.
    pub(super) fn reserve(
        &self,
        quota: &Quota,
        mailbox: MailboxId,
        len: u64,
    ) -> Result<(), StoreError> {
        let mut u = lock(&self.by_mailbox)?;
        let (si, sb) = lock(&self.sealed)?
            .get(&mailbox)
            .copied()
            .unwrap_or_default();
        let bb = self.blob_bytes(mailbox)?;
        let e = u.entry(mailbox).or_default();
        if !quota.allows(
            e.0.saturating_add(si),
            e.1.saturating_add(sb).saturating_add(bb),
            len,
        ) {
            if e.0 == 0 {
                u.remove(&mailbox);
            }
            return Err(StoreError::QuotaExceeded);
        }
        e.0 += 1;
        e.1 += len;
        Ok(())
    }

    /// Hold an alert envelope of `len` bytes against `mailbox`'s quota, or refuse if that would
    /// exceed it.
    pub(super) fn seal(
        &self,
        quota: &Quota,
        mailbox: MailboxId,
        len: u64,
    ) -> Result<(), StoreError> {
        let u = lock(&self.by_mailbox)?;
        let (i, b) = u.get(&mailbox).copied().unwrap_or_default();
        let mut s = lock(&self.sealed)?;
        let bb = self.blob_bytes(mailbox)?;
        let e = s.entry(mailbox).or_default();
        if !quota.allows(
            i.saturating_add(e.0),
            b.saturating_add(e.1).saturating_add(bb),
            len,
        ) {
            if e.0 == 0 {
                s.remove(&mailbox);
            }
            return Err(StoreError::QuotaExceeded);
        }
        e.0 += 1;
        e.1 += len;
        Ok(())
    }

    /// Count a sealed envelope found at open, without a quota check.
    pub(super) fn add_sealed(&self, mailbox: MailboxId, len: u64) -> Result<(), StoreError> {
        let mut s = lock(&self.sealed)?;
        let e = s.entry(mailbox).or_default();
        e.0 += 1;
        e.1 += len;
        Ok(())
    }

    /// Give back a sealed envelope of `len` bytes (released or disarmed).
    pub(super) fn unseal(&self, mailbox: MailboxId, len: u64) {
        let Ok(mut s) = lock(&self.sealed) else {
            return;
        };
        if let Some(e) = s.get_mut(&mailbox) {
            e.0 = e.0.saturating_sub(1);
            e.1 = e.1.saturating_sub(len);
            if e.0 == 0 {
                s.remove(&mailbox);
            }
        }
    }

    /// Count an item found at open, without a quota check.
    pub(super) fn add(&self, mailbox: MailboxId, len: u64) -> Result<(), StoreError> {
        let mut u = lock(&self.by_mailbox)?;
        let e = u.entry(mailbox).or_default();
        e.0 += 1;
        e.1 += len;
        Ok(())
    }

    /// Take one item of `len` bytes off `mailbox`.
    pub(super) fn release(&self, mailbox: MailboxId, len: u64) {
        let Ok(mut u) = lock(&self.by_mailbox) else {
            return;
        };
        if let Some(e) = u.get_mut(&mailbox) {
            e.0 = e.0.saturating_sub(1);
            e.1 = e.1.saturating_sub(len);
            if e.0 == 0 {
                u.remove(&mailbox);
            }
        }
    }

    /// Items and bytes `mailbox` holds (its items' blobs included).
    pub(super) fn of(&self, mailbox: MailboxId) -> Result<(u64, u64), StoreError> {
        let (items, bytes) = lock(&self.by_mailbox)?
            .get(&mailbox)
            .copied()
            .unwrap_or_default();
        Ok((items, bytes.saturating_add(self.blob_bytes(mailbox)?)))
    }

    fn blob_bytes(&self, mailbox: MailboxId) -> Result<u64, StoreError> {
        Ok(lock(&self.blobs)?
            .get(&mailbox)
            .copied()
            .unwrap_or_default())
    }

    /// Hold `len` bytes of blobs against `mailbox`'s quota, or refuse if that (with one more
    /// item) would exceed it.
    pub(super) fn hold_blobs(
        &self,
        quota: &Quota,
        mailbox: MailboxId,
        len: u64,
    ) -> Result<(), StoreError> {
        let u = lock(&self.by_mailbox)?;
        let (i, b) = u.get(&mailbox).copied().unwrap_or_default();
        let (si, sb) = lock(&self.sealed)?
            .get(&mailbox)
            .copied()
            .unwrap_or_default();
        let mut blobs = lock(&self.blobs)?;
        let held = blobs.entry(mailbox).or_default();
        let used = b.saturating_add(sb).saturating_add(*held);
        if !quota.allows(i.saturating_add(si), used, len) {
            if *held == 0 {
                blobs.remove(&mailbox);
            }
            return Err(StoreError::QuotaExceeded);
        }
        *held += len;
        Ok(())
    }

    /// Count blob bytes found at open, without a quota check.
    pub(super) fn add_blobs(&self, mailbox: MailboxId, len: u64) -> Result<(), StoreError> {
        *lock(&self.blobs)?.entry(mailbox).or_default() += len;
        Ok(())
    }

    /// Give back `len` bytes of blobs held for `mailbox`.
    pub(super) fn release_blobs(&self, mailbox: MailboxId, len: u64) {
        let Ok(mut blobs) = lock(&self.blobs) else {
            return;
        };
        if let Some(held) = blobs.get_mut(&mailbox) {
            *held = held.saturating_sub(len);
            if *held == 0 {
                blobs.remove(&mailbox);
            }
        }
    }

    /// Bytes `mailbox` may still take under `quota`.
    pub(super) fn room(&self, quota: &Quota, mailbox: MailboxId) -> Result<u64, StoreError> {
        let (_, b) = lock(&self.by_mailbox)?
            .get(&mailbox)
            .copied()
            .unwrap_or_default();
        let (_, sb) = lock(&self.sealed)?
            .get(&mailbox)
            .copied()
            .unwrap_or_default();
        let used = b
            .saturating_add(sb)
            .saturating_add(self.blob_bytes(mailbox)?);
        Ok(quota.max_bytes.saturating_sub(used))
    }

    /// Items and bytes over all mailboxes.
    pub(super) fn totals(&self) -> (u64, u64) {
        lock(&self.by_mailbox)
            .map(|u| u.values().fold((0, 0), |(n, b), (n1, b1)| (n + n1, b + b1)))
            .unwrap_or_default()
    }
}

/// For each coarse time (hour), the mailboxes that hold something (an item or a tombstone) from
/// that hour. Expiry visits only those mailboxes, and only once their hour has expired.
///
/// The same structure, keyed by day, holds the mailboxes registered with a lifetime by the day
/// they are due (`Inner::lifetimes`); a mailbox whose lifetime was extended is in the bucket of
/// each expiry it had, and the sweep checks the stored one.
#[derive(Default)]
pub(super) struct ExpiryBuckets {
    by_time: Mutex<BTreeMap<u64, HashSet<MailboxId>>>,
}

impl ExpiryBuckets {
    /// Note that `mailbox` holds something from coarse time `time`.
    pub(super) fn note(&self, time: u64, mailbox: MailboxId) -> Result<(), StoreError> {
        let mut b = lock(&self.by_time)?;
        // Most deposits land in the newest hour, for a mailbox already noted there: one lookup.
        match b.get_mut(&time) {
            Some(set) => {
                if !set.contains(&mailbox) {
                    set.insert(mailbox);
                }
            }
            None => {
                b.insert(time, HashSet::from([mailbox]));
            }
        }
        Ok(())
    }

    /// Take every bucket of a time at or before `cutoff`: the mailboxes to sweep.
    pub(super) fn take_through(
        &self,
        cutoff: u64,
    ) -> Result<Vec<(u64, HashSet<MailboxId>)>, StoreError> {
        let mut b = lock(&self.by_time)?;
        let later = b.split_off(&cutoff.saturating_add(1));
        let due = std::mem::replace(&mut *b, later);
        Ok(due.into_iter().collect())
    }

    /// Put back buckets a failed sweep did not finish.
    pub(super) fn restore(&self, buckets: Vec<(u64, HashSet<MailboxId>)>) {
        if let Ok(mut b) = lock(&self.by_time) {
            for (t, set) in buckets {
                b.entry(t).or_default().extend(set);
            }
        }
    }
}

/// What is kept in memory is rebuilt from what is on disk when the store opens.
impl super::Inner {
    /// Usage, expiry buckets and the key cache from what is on disk.
    pub(super) fn rebuild(&self) -> Result<(), StoreError> {
        for kv in self.items.iter() {
            let (k, v) = kv.map_err(backend)?;
            let (key, _) = split_item_key(&k)?;
            let mailbox = mailbox_of(&key);
            let e = entry(&v)?;
            if e.is_item() {
                self.usage.add(mailbox, e.len)?;
            }
            self.buckets.note(e.time, mailbox)?;
        }
        let mut keys = self
            .keys
            .write()
            .map_err(|_| StoreError::Backend("mailbox keys poisoned".into()))?;
        for kv in self.mailboxes.iter() {
            let (k, v) = kv.map_err(backend)?;
            let m = <[u8; 32]>::try_from(&k[..]).map_err(|_| StoreError::Corrupt("mailbox id"))?;
            let (pk, expires) = mailbox_record(&v)?;
            keys.insert(MailboxId(m), pk);
            if let Some(t) = expires {
                self.lifetimes.note(t, MailboxId(m))?;
            }
        }
        drop(keys);
        self.rebuild_alerts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_items_and_bytes_against_the_quota() {
        let u = Usage::default();
        let q = Quota {
            max_items: 2,
            max_bytes: 10,
        };
        let m = MailboxId([1; 32]);
        u.reserve(&q, m, 6).unwrap();
        assert_eq!(u.reserve(&q, m, 5), Err(StoreError::QuotaExceeded));
        u.reserve(&q, m, 4).unwrap();
        assert_eq!(u.reserve(&q, m, 0), Err(StoreError::QuotaExceeded));
        assert_eq!(u.totals(), (2, 10));
        u.release(m, 6);
        u.release(m, 4);
        assert_eq!(u.totals(), (0, 0));
        u.release(m, 4);
        assert_eq!(u.totals(), (0, 0), "never below zero");
    }

    #[test]
    fn buckets_hand_out_what_is_due_once() {
        let b = ExpiryBuckets::default();
        let (m1, m2) = (MailboxId([1; 32]), MailboxId([2; 32]));
        b.note(3600, m1).unwrap();
        b.note(3600, m1).unwrap();
        b.note(7200, m2).unwrap();
        let due = b.take_through(3600).unwrap();
        assert_eq!(due, vec![(3600, HashSet::from([m1]))]);
        assert!(b.take_through(3600).unwrap().is_empty());
        b.restore(due);
        assert_eq!(b.take_through(u64::MAX).unwrap().len(), 2);
    }
}
