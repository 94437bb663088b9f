//! Check-in alerts in the sled store: arming, check-ins, release and disarming, each one change
//! to the `alerts` tree (a release one transaction over `alerts`, `items` and `notes`), made
//! durable by the group commit before the caller answers. The quota an alert holds is kept in
//! memory (`accounting::Usage`'s sealed totals) and rebuilt from `alerts` at open.

use super::layout::{alert_of, alert_value, deposit_key, inline_value, item_key, Place};
use super::{backend, Inner};
use crate::store::{alert_deposit_id, Alert, AlertKeys, AlertTimes, Armed, StoreError};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use vigil_core::ids::{AlertId, MailboxId};
use vigil_core::wire::alert::NOTE_LEN;
use vigil_core::wire::policy::{coarse_minute, coarse_time};
use vigil_core::wire::{ReleaseNote, ReleaseReason};

impl Inner {
    pub(super) fn arm(&self, alert: Alert) -> Result<Armed, StoreError> {
        let id = alert.arm.alert;
        let repeat = |v: &[u8]| match alert_of(v)?.arm == alert.arm {
            true => Ok(Armed::Repeat),
            false => Err(StoreError::AlertConflict),
        };
        if let Some(v) = self.alerts.get(id.as_bytes()).map_err(backend)? {
            return repeat(&v);
        }
        for e in &alert.arm.envelopes {
            if !self.known(&e.mailbox)? {
                return Err(StoreError::UnknownMailbox);
            }
        }
        // Hold each envelope's quota; give back what was held if one does not fit.
        let mut held: Vec<(MailboxId, u64)> = Vec::new();
        for e in &alert.arm.envelopes {
            let len = e.envelope.len() as u64;
            if let Err(err) = self.usage.seal(&self.quota, e.mailbox, len) {
                self.unseal(&held);
                return Err(err);
            }
            held.push((e.mailbox, len));
        }
        let swapped = self
            .alerts
            .compare_and_swap(id.as_bytes(), None::<&[u8]>, Some(alert_value(&alert)))
            .map_err(backend);
        match swapped {
            Ok(Ok(())) => Ok(Armed::New),
            // Armed meanwhile by another connection: that one holds the quota.
            Ok(Err(current)) => {
                self.unseal(&held);
                repeat(current.current.as_deref().unwrap_or_default())
            }
            Err(e) => {
                self.unseal(&held);
                Err(e)
            }
        }
    }

    fn unseal(&self, held: &[(MailboxId, u64)]) {
        for (m, len) in held {
            self.usage.unseal(*m, *len);
        }
    }

    pub(super) fn alert_keys(&self, id: AlertId) -> Result<Option<AlertKeys>, StoreError> {
        let Some(v) = self.alerts.get(id.as_bytes()).map_err(backend)? else {
            return Ok(None);
        };
        let a = alert_of(&v)?;
        Ok(Some(AlertKeys {
            checkin: a.arm.checkin_key,
            duress: a.arm.duress_key,
            every: a.arm.every,
            grace: a.arm.grace,
        }))
    }

    pub(super) fn check_in(
        &self,
        id: AlertId,
        deadline: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        loop {
            let Some(v) = self.alerts.get(id.as_bytes()).map_err(backend)? else {
                return Ok(false);
            };
            let mut a = alert_of(&v)?;
            a.deadline = deadline;
            a.last_checkin_at = coarse_minute(now);
            let swapped = self
                .alerts
                .compare_and_swap(id.as_bytes(), Some(v), Some(alert_value(&a)))
                .map_err(backend)?;
            // Changed meanwhile (released, disarmed, another check-in): look again.
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    pub(super) fn release(
        &self,
        id: AlertId,
        reason: ReleaseReason,
        now: u64,
    ) -> Result<bool, StoreError> {
        let time = coarse_time(now);
        let deposit_id = alert_deposit_id(&id);
        let done =
            (&self.alerts, &self.items, &self.notes).transaction(|(alerts, items, notes)| {
                let abort = ConflictableTransactionError::Abort;
                let Some(v) = alerts.get(id.as_bytes())? else {
                    return Ok(None);
                };
                let alert = alert_of(&v).map_err(abort)?;
                let note = ReleaseNote::encode_opt(Some(&alert.note(reason, now)));
                let mut placed = Vec::with_capacity(alert.arm.envelopes.len());
                for e in &alert.arm.envelopes {
                    // Alert envelopes are at most MAX_ALERT_ENVELOPE_LEN = LARGE_ENVELOPE_MIN:
                    // always inline.
                    let ikey = item_key(&deposit_key(&e.mailbox, &deposit_id), Place::Inline);
                    // A deposit under the same id (never in practice) keeps its place.
                    let free = items.get(ikey)?.is_none();
                    if free {
                        items.insert(&ikey[..], inline_value(time, &e.envelope))?;
                        notes.insert(&ikey[..], &note[..])?;
                    }
                    placed.push((e.mailbox, e.envelope.len() as u64, free));
                }
                alerts.remove(id.as_bytes())?;
                Ok(Some(placed))
            });
        let placed = match done {
            Ok(Some(placed)) => placed,
            Ok(None) => return Ok(false),
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(backend(e)),
        };
        for (mailbox, len, item) in placed {
            self.usage.unseal(mailbox, len);
            if item {
                self.usage.add(mailbox, len)?;
                self.buckets.note(time, mailbox)?;
            }
        }
        Ok(true)
    }

    pub(super) fn disarm(&self, id: AlertId) -> Result<bool, StoreError> {
        let Some(v) = self.alerts.remove(id.as_bytes()).map_err(backend)? else {
            return Ok(false);
        };
        if let Ok(a) = alert_of(&v) {
            for e in &a.arm.envelopes {
                self.usage.unseal(e.mailbox, e.envelope.len() as u64);
            }
        }
        Ok(true)
    }

    pub(super) fn alert_times(&self) -> Result<Vec<AlertTimes>, StoreError> {
        let mut out = Vec::new();
        for kv in self.alerts.iter() {
            let (_, v) = kv.map_err(backend)?;
            let a = alert_of(&v)?;
            out.push(AlertTimes {
                id: a.arm.alert,
                grace: a.arm.grace,
                deadline: a.deadline,
            });
        }
        Ok(out)
    }

    /// The note stored beside the item under `ikey`, if any.
    pub(super) fn note(&self, ikey: &[u8]) -> Result<Option<ReleaseNote>, StoreError> {
        let Some(v) = self.notes.get(ikey).map_err(backend)? else {
            return Ok(None);
        };
        if v.len() != NOTE_LEN {
            return Err(StoreError::Corrupt("release note"));
        }
        ReleaseNote::decode_opt(&v).map_err(|_| StoreError::Corrupt("release note"))
    }

    /// Count the sealed envelopes of every armed alert against their mailboxes (at open).
    pub(super) fn rebuild_alerts(&self) -> Result<(), StoreError> {
        for kv in self.alerts.iter() {
            let (_, v) = kv.map_err(backend)?;
            for e in alert_of(&v)?.arm.envelopes {
                self.usage.add_sealed(e.mailbox, e.envelope.len() as u64)?;
            }
        }
        Ok(())
    }

    /// Armed alerts (a count of the tree, for stats).
    pub(super) fn alert_count(&self) -> u64 {
        self.alerts.len() as u64
    }
}

const _: () =
    assert!(vigil_core::wire::limits::MAX_ALERT_ENVELOPE_LEN <= super::layout::LARGE_ENVELOPE_MIN);
