//! Expiry: remove items and tombstones whose coarse time is past the store's expiry.
//!
//! The in-memory buckets (`accounting::ExpiryBuckets`) say which mailboxes hold something from
//! which hour, so a sweep visits only the mailboxes of the hours that expired, and each of those
//! once. A sweep that fails puts back what it did not finish, for the next one.

use super::layout::{entry, split_item_key};
use super::{backend, Inner};
use crate::store::StoreError;
use std::collections::HashSet;
use vigil_core::ids::MailboxId;
use vigil_core::wire::policy::expiry_cutoff;

impl Inner {
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
