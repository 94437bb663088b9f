//! Expiry: remove items and tombstones whose coarse time is past the store's expiry.
//!
//! The in-memory buckets (`accounting::ExpiryBuckets`) say which mailboxes hold something from
//! which hour, so a sweep visits only the mailboxes of the hours that expired, and each of those
//! once. A sweep that fails puts back what it did not finish, for the next one.
//!
//! Mailboxes registered with a lifetime go first: the day buckets (`Inner::lifetimes`) say
//! which are due; each is checked against its stored expiry (a later registration may have
//! extended it), its registration removed, then everything it holds.

use super::layout::{entry, mailbox_record, split_item_key};
use super::{backend, Inner};
use crate::store::StoreError;
use std::collections::HashSet;
use vigil_core::ids::MailboxId;
use vigil_core::wire::policy::expiry_cutoff;

impl Inner {
    /// Forget the mailboxes whose lifetime ends at or before `now`, with everything they hold:
    /// how many mailboxes and how many items.
    pub(super) fn expire_mailboxes(&self, now: u64) -> Result<(u64, u64), StoreError> {
        let mut due = self.lifetimes.take_through(now)?;
        let (mut gone, mut removed) = (0u64, 0u64);
        while let Some((time, mailboxes)) = due.pop() {
            let mut left: HashSet<MailboxId> = mailboxes.clone();
            for m in &mailboxes {
                match self.forget(m, now) {
                    Ok(Some(n)) => {
                        gone += 1;
                        removed += n;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        due.push((time, left));
                        self.lifetimes.restore(due);
                        return Err(e);
                    }
                }
                left.remove(m);
            }
        }
        Ok((gone, removed))
    }

    /// Remove `mailbox`'s registration if its stored expiry is due at `now`, then everything it
    /// holds; how many items, or `None` if it was not due (extended, made permanent, or gone).
    fn forget(&self, mailbox: &MailboxId, now: u64) -> Result<Option<u64>, StoreError> {
        {
            // One registration or removal at a time: a registration racing this one either
            // comes first (and the mailbox is not due any more) or finds it gone and makes it
            // anew, with its key back in the cache.
            let _one = self
                .registering
                .lock()
                .map_err(|_| StoreError::Backend("registrations poisoned".into()))?;
            let Some(v) = self.mailboxes.get(mailbox.as_bytes()).map_err(backend)? else {
                return Ok(None);
            };
            if !matches!(mailbox_record(&v)?.1, Some(t) if t <= now) {
                return Ok(None);
            }
            self.mailboxes.remove(mailbox.as_bytes()).map_err(backend)?;
            self.prekeys.remove(mailbox.as_bytes()).map_err(backend)?;
            self.keys
                .write()
                .map_err(|_| StoreError::Backend("mailbox keys poisoned".into()))?
                .remove(mailbox);
        }
        // Unknown from here on, so no new deposit lands; one already past its check may still
        // be stored, and is then removed by the ordinary expiry of its hour.
        self.sweep(mailbox, u64::MAX).map(Some)
    }

    pub(super) fn expire(&self, now: u64) -> Result<u64, StoreError> {
        let Some(cutoff) = expiry_cutoff(now, self.expiry.as_secs()) else {
            return Ok(0);
        };
        let mut due = self.buckets.take_through(cutoff)?;
        let mut removed = 0u64;
        while let Some((time, mailboxes)) = due.pop() {
            let mut left: HashSet<MailboxId> = mailboxes.clone();
            for m in &mailboxes {
                match self.sweep(m, cutoff) {
                    Ok(n) => removed += n,
                    Err(e) => {
                        // Try again at the next sweep.
                        due.push((time, left));
                        self.buckets.restore(due);
                        return Err(e);
                    }
                }
                left.remove(m);
            }
        }
        Ok(removed)
    }

    /// Remove `mailbox`'s items and tombstones of a time at or before `cutoff`; how many items.
    fn sweep(&self, mailbox: &MailboxId, cutoff: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for kv in self.items.scan_prefix(mailbox.as_bytes()) {
            let (k, v) = kv.map_err(backend)?;
            if entry(&v)?.time <= cutoff {
                let (key, place) = split_item_key(&k)?;
                if self.remove(&key, place, &v)? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
