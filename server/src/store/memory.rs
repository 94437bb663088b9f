//! The in-memory store: every mailbox in one map behind one mutex, gone when the process ends.
//!
//! It exists for tests, examples and as a reference for new backends: the whole [`Store`]
//! contract without a database or files in the way, held to the same conformance suite
//! (`store/conformance.rs`) as the sled store. It is **not durable**: it keeps nothing across a
//! restart, so "durable on return" holds only while the process runs. Never use it in
//! production; the relay program does not offer it.
//!
//! How it keeps the contract:
//!
//! * **Checks before reading.** Under the lock, a deposit checks the mailbox, a repeat, an
//!   upload of the same deposit in progress and the quota (against `head.envelope_len`), and
//!   marks itself as being received; only then, with the lock released (it is never held across
//!   an `.await`), does it read the envelope, which it holds whole, whatever its size.
//! * **Idempotence.** Each mailbox keeps every deposit id until expiry: with its envelope until
//!   acknowledged, then as a tombstone. The mark answers a concurrent copy with
//!   [`StoreError::InProgress`], so it is never stored twice; a deposit that fails or is dropped
//!   mid-way takes its mark, and the quota it held, off again (`Reservation`).
//! * **Fetch order.** Deposits are ordered by place, small envelopes (up to the store contract's
//!   [`LARGE_ENVELOPE_MIN`]) before large ones, then by deposit id: a stable order.
//! * **Alerts.** Armed alerts sit in their own map, locked before the mailboxes whenever both
//!   are needed (one lock order, no deadlock); their envelopes count in their mailboxes'
//!   `sealed` totals, which the quota sees and `usage` does not. A release moves them into the
//!   mailboxes under both locks at once, so nobody sees half a release.
//! * **Blobs.** The rules are the shared [`BlobIndex`]'s; the bytes are a `Vec` per blob
//!   behind their own lock (taken after the mailboxes'). An item keeps its blobs' ids and
//!   lengths, and its mailbox counts their bytes against the quota.
//! * **Lifetimes.** A mailbox registered with an expiry keeps it (a whole day, the later of
//!   two registrations, none beating any); [`Store::expire`] drops such a mailbox once it is
//!   due, with everything it holds, in one pass under the lock.

use super::blobs::{BlobIndex, UploadPlan};
use super::LARGE_ENVELOPE_MIN;
use super::{
    alert_deposit_id, flip, slice_from, Alert, AlertKeys, AlertTimes, Armed, Deposited, FlushStats,
    ItemMeta, MailboxUsage, Quota, Store, StoreError, StoreFuture, StoreStats,
};
use crate::body::{read_all, BodySource};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use vigil_core::ids::{AlertId, BlobId, DepositId, ItemId, MailboxId};
use vigil_core::wire::deposit::Deposit;
use vigil_core::wire::fetch::BlobRef;
use vigil_core::wire::policy::{coarse_expiry, coarse_time, expiry_cutoff, merged_expiry};
use vigil_core::wire::upload::Upload;
use vigil_core::wire::{ReleaseNote, ReleaseReason};

/// [`ItemMeta::place`] of an envelope up to [`LARGE_ENVELOPE_MIN`] bytes.
const SMALL: u8 = 0;
/// [`ItemMeta::place`] of a larger envelope: listed after every small one.
const LARGE: u8 = 1;

/// Where an envelope of `len` bytes sorts: the split every backend lists by.
fn place_for(len: usize) -> u8 {
    if len > LARGE_ENVELOPE_MIN {
        LARGE
    } else {
        SMALL
    }
}

/// A remembered deposit.
struct Entry {
    /// The coarse receive time, for expiry.
    time: u64,
    /// The envelope while it waits to be fetched; `None` once acknowledged, when the entry is
    /// the tombstone that keeps the deposit id remembered until it expires.
    envelope: Option<Bytes>,
    /// The release note of an envelope released from an alert.
    note: Option<ReleaseNote>,
    /// The blobs the item refers to (until acknowledged).
    blobs: Vec<BlobRef>,
}

/// The bytes of a list of blobs.
fn blob_sum(blobs: &[BlobRef]) -> u64 {
    blobs.iter().fold(0u64, |n, b| n.saturating_add(b.len))
}

/// One registered mailbox.
#[derive(Default)]
struct Mailbox {
    public_key: [u8; 32],
    /// When the mailbox is forgotten (the start of a UTC day), if it was registered with a
    /// lifetime.
    expires: Option<u64>,
    /// Every remembered deposit, keyed by (place, deposit id): iteration is fetch order.
    deposits: BTreeMap<(u8, DepositId), Entry>,
    /// Deposits whose envelope is being read right now, with their announced length: counted
    /// against the quota too, so that concurrent deposits cannot overfill the mailbox together.
    receiving: HashMap<DepositId, u64>,
    /// Items stored (not acknowledged), and their envelope bytes.
    items: u64,
    bytes: u64,
    /// Envelopes of armed alerts for this mailbox, and their bytes: held against the quota.
    sealed_items: u64,
    sealed_bytes: u64,
    /// Bytes of the blobs its items refer to: held against the quota.
    blob_bytes: u64,
    /// The NGO's current prekey bundle, as published.
    prekey: Option<Vec<u8>>,
}

impl Mailbox {
    /// Whether `id` is remembered, stored or acknowledged. Both places are looked at, so a retry
    /// that announced another length is still a repeat.
    fn remembers(&self, id: DepositId) -> bool {
        [SMALL, LARGE]
            .iter()
            .any(|p| self.deposits.contains_key(&(*p, id)))
    }

    /// Whether one more envelope of `len` bytes fits the quota, counting what is stored, what is
    /// being received and what is sealed in alerts.
    fn has_room(&self, quota: &Quota, len: u64) -> bool {
        let items = (self.items)
            .saturating_add(self.receiving.len() as u64)
            .saturating_add(self.sealed_items);
        let bytes = (self.receiving.values())
            .fold(self.bytes, |b, l| b.saturating_add(*l))
            .saturating_add(self.sealed_bytes)
            .saturating_add(self.blob_bytes);
        quota.allows(items, bytes, len)
    }

    /// Bytes it may still take under `quota`.
    fn room(&self, quota: &Quota) -> u64 {
        let used = (self.receiving.values())
            .fold(self.bytes, |b, l| b.saturating_add(*l))
            .saturating_add(self.sealed_bytes)
            .saturating_add(self.blob_bytes);
        quota.max_bytes.saturating_sub(used)
    }

    /// An alert's envelope of `len` bytes is no longer sealed (released or disarmed).
    fn unseal(&mut self, len: u64) {
        self.sealed_items = self.sealed_items.saturating_sub(1);
        self.sealed_bytes = self.sealed_bytes.saturating_sub(len);
    }

    /// An item of `len` bytes, referring to `blobs`, left (acknowledged or expired).
    fn released(&mut self, len: u64, blobs: &[BlobRef]) {
        self.items = self.items.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(len);
        self.blob_bytes = self.blob_bytes.saturating_sub(blob_sum(blobs));
    }
}

/// In-memory [`Store`], for tests and examples; see the module docs. Not durable.
pub struct MemoryStore {
    mailboxes: Mutex<HashMap<MailboxId, Mailbox>>,
    /// Armed alerts. Locked before `mailboxes` when both are needed.
    alerts: Mutex<HashMap<AlertId, Alert>>,
    expiry: Duration,
    quota: Quota,
    /// What the store knows of each blob.
    blob_index: BlobIndex,
    /// Each blob's bytes. Locked after `mailboxes`.
    blob_bytes: Mutex<HashMap<BlobId, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store. Items older than `expiry` are removed by [`Store::expire`]; each mailbox
    /// holds at most `quota`. (The arguments are in [`SledStore::open`](super::SledStore::open)'s
    /// order.)
    pub fn new(expiry: Duration, quota: Quota) -> Self {
        Self {
            mailboxes: Mutex::default(),
            alerts: Mutex::default(),
            expiry,
            quota,
            blob_index: BlobIndex::default(),
            blob_bytes: Mutex::default(),
        }
    }

    fn blob_bytes(&self) -> MutexGuard<'_, HashMap<BlobId, Vec<u8>>> {
        self.blob_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Items referring to these blobs left: drop their references, delete the blobs left
    /// without any.
    fn drop_blob_refs(&self, blobs: Vec<BlobRef>) {
        let gone = self.blob_index.drop_refs(blobs.into_iter().map(|b| b.id));
        let mut bytes = self.blob_bytes();
        for (id, _) in gone {
            bytes.remove(&id);
        }
    }

    /// The mailboxes, locked. A panic while the lock was held (a bug: nothing under it unwraps
    /// or overflows) poisons the mutex, but leaves the maps well-formed; carry on rather than
    /// turn every later request, and the drop of every [`Reservation`], into a panic.
    fn mailboxes(&self) -> MutexGuard<'_, HashMap<MailboxId, Mailbox>> {
        self.mailboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The armed alerts, locked (see [`MemoryStore::mailboxes`] on poisoning). Lock before the
    /// mailboxes.
    fn alerts(&self) -> MutexGuard<'_, HashMap<AlertId, Alert>> {
        self.alerts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arm_now(&self, alert: Alert) -> Result<Armed, StoreError> {
        let mut alerts = self.alerts();
        let id = alert.arm.alert;
        if let Some(armed) = alerts.get(&id) {
            return match armed.arm == alert.arm {
                true => Ok(Armed::Repeat),
                false => Err(StoreError::AlertConflict),
            };
        }
        let mut mailboxes = self.mailboxes();
        // Every envelope is checked before any is counted: all or nothing. (Distinct mailboxes,
        // checked by the wire decoder, so one check per mailbox is enough.)
        for e in &alert.arm.envelopes {
            let mb = mailboxes
                .get(&e.mailbox)
                .ok_or(StoreError::UnknownMailbox)?;
            if !mb.has_room(&self.quota, e.envelope.len() as u64) {
                return Err(StoreError::QuotaExceeded);
            }
        }
        for e in &alert.arm.envelopes {
            if let Some(mb) = mailboxes.get_mut(&e.mailbox) {
                mb.sealed_items += 1;
                mb.sealed_bytes += e.envelope.len() as u64;
            }
        }
        alerts.insert(id, alert);
        Ok(Armed::New)
    }

    fn release_now(&self, id: AlertId, reason: ReleaseReason, now: u64) -> bool {
        let mut alerts = self.alerts();
        let Some(alert) = alerts.remove(&id) else {
            return false;
        };
        let note = alert.note(reason, now);
        let deposit_id = alert_deposit_id(&id);
        let mut mailboxes = self.mailboxes();
        for e in alert.arm.envelopes {
            let Some(mb) = mailboxes.get_mut(&e.mailbox) else {
                continue;
            };
            let len = e.envelope.len();
            mb.unseal(len as u64);
            // A deposit under the same id (never in practice) keeps its place.
            if mb.remembers(deposit_id) {
                continue;
            }
            mb.items = mb.items.saturating_add(1);
            mb.bytes = mb.bytes.saturating_add(len as u64);
            let entry = Entry {
                time: coarse_time(now),
                envelope: Some(Bytes::from(e.envelope)),
                note: Some(note),
                blobs: Vec::new(),
            };
            mb.deposits.insert((place_for(len), deposit_id), entry);
        }
        true
    }

    fn disarm_now(&self, id: AlertId) -> bool {
        let mut alerts = self.alerts();
        let Some(alert) = alerts.remove(&id) else {
            return false;
        };
        let mut mailboxes = self.mailboxes();
        for e in &alert.arm.envelopes {
            if let Some(mb) = mailboxes.get_mut(&e.mailbox) {
                mb.unseal(e.envelope.len() as u64);
            }
        }
        true
    }

    /// The checks a deposit makes before it reads a byte: the mailbox, a repeat, the same
    /// deposit in progress, the quota. `Ok(None)`: a repeat. `Ok(Some(_))`: the deposit is
    /// marked as being received (holding its quota) until the reservation is committed or
    /// dropped.
    fn begin(
        &self,
        head: &Deposit,
        blob_bytes: u64,
    ) -> Result<Option<Reservation<'_>>, StoreError> {
        let mut mailboxes = self.mailboxes();
        let Some(mb) = mailboxes.get_mut(&head.mailbox) else {
            return Err(StoreError::UnknownMailbox);
        };
        let id = head.deposit_id;
        // A full mailbox still recognises a repeat of what it holds.
        if mb.remembers(id) {
            return Ok(None);
        }
        if mb.receiving.contains_key(&id) {
            return Err(StoreError::InProgress);
        }
        let len = (head.envelope_len as u64).saturating_add(blob_bytes);
        if !mb.has_room(&self.quota, len) {
            return Err(StoreError::QuotaExceeded);
        }
        mb.receiving.insert(id, len);
        Ok(Some(Reservation {
            store: self,
            mailbox: head.mailbox,
            id,
            open: true,
        }))
    }
}

/// A deposit between its checks and its commit, marked as being received. Dropping it (the
/// envelope could not be read, or the request's future was dropped mid-read) takes the mark
/// off, and with it the quota it held: nothing of a failed deposit stays.
struct Reservation<'a> {
    store: &'a MemoryStore,
    mailbox: MailboxId,
    id: DepositId,
    /// The mark is still on.
    open: bool,
}

impl Reservation<'_> {
    /// Store `envelope`, received at coarse time `time`, in place of the mark.
    fn commit(
        mut self,
        time: u64,
        envelope: Bytes,
        blobs: Vec<BlobRef>,
    ) -> Result<Deposited, StoreError> {
        let mut mailboxes = self.store.mailboxes();
        // Gone if its lifetime ended while the envelope arrived: the deposit is refused.
        let Some(mb) = mailboxes.get_mut(&self.mailbox) else {
            return Err(StoreError::UnknownMailbox);
        };
        mb.receiving.remove(&self.id);
        self.open = false;
        // The mark kept other copies out, so this cannot happen; if it did, keep the first.
        if mb.remembers(self.id) {
            return Ok(Deposited::Repeat);
        }
        let len = envelope.len();
        mb.items = mb.items.saturating_add(1);
        mb.bytes = mb.bytes.saturating_add(len as u64);
        mb.blob_bytes = mb.blob_bytes.saturating_add(blob_sum(&blobs));
        let envelope = Some(envelope);
        let entry = Entry {
            time,
            envelope,
            note: None,
            blobs,
        };
        mb.deposits.insert((place_for(len), self.id), entry);
        Ok(Deposited::New)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        // Not after a commit, which took the mark off (and may still hold the lock).
        if self.open {
            if let Some(mb) = self.store.mailboxes().get_mut(&self.mailbox) {
                mb.receiving.remove(&self.id);
            }
        }
    }
}

/// A finished future: no method of this store waits for anything but the envelope.
fn ready<'a, T: Send + 'a>(r: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(r))
}

impl Store for MemoryStore {
    fn register(
        &self,
        mailbox: MailboxId,
        public_key: [u8; 32],
        expires: Option<u64>,
    ) -> StoreFuture<'_, Option<u64>> {
        let asked = expires.map(coarse_expiry);
        let mut mailboxes = self.mailboxes();
        // The id is a hash of the key, so an existing entry necessarily holds the same key.
        let held = mailboxes.get(&mailbox).map(|m| m.expires);
        let expires = merged_expiry(held, asked);
        mailboxes
            .entry(mailbox)
            .or_insert_with(|| Mailbox {
                public_key,
                ..Mailbox::default()
            })
            .expires = expires;
        ready(Ok(expires))
    }

    fn mailbox_key(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<[u8; 32]>> {
        ready(Ok(self.mailboxes().get(&mailbox).map(|m| m.public_key)))
    }

    fn set_prekey<'a>(&'a self, mailbox: MailboxId, bundle: &'a [u8]) -> StoreFuture<'a, bool> {
        let mut mailboxes = self.mailboxes();
        let Some(mb) = mailboxes.get_mut(&mailbox) else {
            return ready(Ok(false));
        };
        mb.prekey = Some(bundle.to_vec());
        ready(Ok(true))
    }

    fn prekey(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<Vec<u8>>> {
        ready(Ok(self
            .mailboxes()
            .get(&mailbox)
            .and_then(|m| m.prekey.clone())))
    }

    fn deposit<'a>(
        &'a self,
        head: Deposit,
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        Box::pin(async move {
            let Some(reservation) = self.begin(&head, 0)? else {
                return Ok(Deposited::Repeat);
            };
            // The lock is not held here: other requests go on while the envelope arrives.
            let envelope = read_all(body).await?;
            // A body source delivers exactly the announced length (a buffered one was built with
            // it); anything else is a bug, and the quota was checked against that length.
            if envelope.len() != head.envelope_len {
                let e = "envelope length differs from its head";
                return Err(StoreError::Backend(e.into()));
            }
            reservation.commit(coarse_time(now), envelope, Vec::new())
        })
    }

    fn deposit_blobs<'a>(
        &'a self,
        head: Deposit,
        blobs: &'a [BlobId],
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        Box::pin(async move {
            // A repeat is recognised before the blobs are looked at: they may be gone since.
            if self
                .mailboxes()
                .get(&head.mailbox)
                .is_some_and(|mb| mb.remembers(head.deposit_id))
            {
                return Ok(Deposited::Repeat);
            }
            let refs = self.blob_index.lengths(blobs)?;
            let Some(reservation) = self.begin(&head, blob_sum(&refs))? else {
                return Ok(Deposited::Repeat);
            };
            let envelope = read_all(body).await?;
            if envelope.len() != head.envelope_len {
                let e = "envelope length differs from its head";
                return Err(StoreError::Backend(e.into()));
            }
            // Checked again and referenced at once: a blob may have expired meanwhile.
            let refs = self.blob_index.take_refs(blobs)?;
            let done = reservation.commit(coarse_time(now), envelope, refs);
            if !matches!(done, Ok(Deposited::New)) {
                self.blob_index.untake_refs(blobs);
            }
            done
        })
    }

    fn upload<'a>(
        &'a self,
        head: Upload,
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let (at, mark) = match self.blob_index.begin_upload(&head)? {
                UploadPlan::Answer(have) => return Ok(have),
                UploadPlan::Write { at, mark, .. } => (at, mark),
            };
            let chunk = read_all(body).await?;
            if chunk.len() != head.chunk_len {
                let e = "chunk length differs from its head";
                return Err(StoreError::Backend(e.into()));
            }
            let have = {
                let mut bytes = self.blob_bytes();
                let data = bytes.entry(head.blob).or_default();
                // A write that failed half-way left nothing the index counts: drop it.
                data.truncate(usize::try_from(at).unwrap_or(usize::MAX));
                data.extend_from_slice(&chunk);
                data.len() as u64
            };
            mark.done(head.total, have, now);
            Ok(have)
        })
    }

    fn item_blobs(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Vec<BlobRef>> {
        let key = (item.place, DepositId(flip(&mailbox, &item.id.0)));
        let blobs = (self.mailboxes().get(&mailbox))
            .and_then(|mb| mb.deposits.get(&key).map(|e| e.blobs.clone()));
        ready(Ok(blobs.unwrap_or_default()))
    }

    fn blob_len(&self, blob: BlobId) -> StoreFuture<'_, Option<u64>> {
        ready(Ok(self.blob_index.complete_len(&blob)))
    }

    fn read_blob(&self, blob: BlobId, offset: u64, max: usize) -> StoreFuture<'_, Option<Bytes>> {
        if self.blob_index.complete_len(&blob).is_none() {
            return ready(Ok(None));
        }
        let bytes = self.blob_bytes();
        ready(Ok(bytes.get(&blob).map(|d| slice_from(d, offset, max))))
    }

    fn room(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<u64>> {
        ready(Ok(self
            .mailboxes()
            .get(&mailbox)
            .map(|mb| mb.room(&self.quota))))
    }

    fn set_blob_expiry(&self, secs: u64) {
        self.blob_index.set_expiry(secs);
    }

    fn list(
        &self,
        mailbox: MailboxId,
        max_items: u32,
        max_bytes: u64,
    ) -> StoreFuture<'_, Vec<ItemMeta>> {
        let mailboxes = self.mailboxes();
        let (mut out, mut total) = (Vec::new(), 0u64);
        let deposits = mailboxes.get(&mailbox).map(|m| &m.deposits);
        for ((place, id), entry) in deposits.into_iter().flatten() {
            let Some(envelope) = &entry.envelope else {
                continue;
            };
            let len = envelope.len() as u64;
            // Stop at the first item that does not fit (never skip one), but list at least one.
            if out.len() >= max_items as usize
                || (!out.is_empty() && total.saturating_add(len) > max_bytes)
            {
                break;
            }
            total = total.saturating_add(len);
            out.push(ItemMeta {
                id: ItemId(flip(&mailbox, &id.0)),
                len,
                place: *place,
            });
        }
        ready(Ok(out))
    }

    fn read(
        &self,
        mailbox: MailboxId,
        item: ItemMeta,
        offset: u64,
        max: usize,
    ) -> StoreFuture<'_, Option<Bytes>> {
        let key = (item.place, DepositId(flip(&mailbox, &item.id.0)));
        // A cheap clone of the envelope's handle under the lock; the copy is made after it.
        let envelope =
            (self.mailboxes().get(&mailbox)).and_then(|mb| mb.deposits.get(&key)?.envelope.clone());
        ready(Ok(envelope.map(|e| slice_from(&e, offset, max))))
    }

    /// What is stored; deposits still being received are not counted (though they count
    /// against the quota).
    fn usage(&self, mailbox: MailboxId) -> StoreFuture<'_, MailboxUsage> {
        let held = (self.mailboxes().get(&mailbox))
            .map(|m| (m.items, m.bytes.saturating_add(m.blob_bytes)));
        let (items, bytes) = held.unwrap_or_default();
        ready(Ok(MailboxUsage {
            items,
            bytes,
            quota: self.quota,
            expiry_secs: self.expiry.as_secs(),
        }))
    }

    fn ack<'a>(&'a self, mailbox: MailboxId, ids: &'a [ItemId]) -> StoreFuture<'a, u64> {
        let mut mailboxes = self.mailboxes();
        let Some(mb) = mailboxes.get_mut(&mailbox) else {
            return ready(Ok(0));
        };
        let mut n = 0u64;
        let mut unreferenced = Vec::new();
        for item in ids {
            let id = DepositId(flip(&mailbox, &item.0));
            for place in [SMALL, LARGE] {
                // The entry stays, as the tombstone: the deposit id remains remembered.
                let Some(entry) = mb.deposits.get_mut(&(place, id)) else {
                    continue;
                };
                entry.note = None;
                let blobs = std::mem::take(&mut entry.blobs);
                if let Some(envelope) = entry.envelope.take() {
                    mb.released(envelope.len() as u64, &blobs);
                    n += 1;
                }
                unreferenced.extend(blobs);
            }
        }
        drop(mailboxes);
        self.drop_blob_refs(unreferenced);
        ready(Ok(n))
    }

    fn expire(&self, now: u64) -> StoreFuture<'_, u64> {
        let expired = self.blob_index.take_expired(now);
        {
            let mut bytes = self.blob_bytes();
            for (id, _) in expired {
                bytes.remove(&id);
            }
        }
        let mut removed = 0u64;
        let mut unreferenced = Vec::new();
        // Mailboxes whose lifetime ended go first, with everything they hold.
        self.mailboxes().retain(|_, mb| {
            let due = mb.expires.is_some_and(|t| t <= now);
            if due {
                for e in std::mem::take(&mut mb.deposits).into_values() {
                    removed += u64::from(e.envelope.is_some());
                    unreferenced.extend(e.blobs);
                }
            }
            !due
        });
        self.drop_blob_refs(std::mem::take(&mut unreferenced));
        let Some(cutoff) = expiry_cutoff(now, self.expiry.as_secs()) else {
            return ready(Ok(removed));
        };
        // One pass over everything, under the lock: fine at this backend's sizes (a backend
        // for real volumes keeps an index by time, as the sled store's expiry buckets are).
        for mb in self.mailboxes().values_mut() {
            let mut freed = Vec::new();
            mb.deposits.retain(|_, e| {
                let keep = e.time > cutoff;
                if !keep {
                    if let Some(envelope) = &e.envelope {
                        freed.push((envelope.len() as u64, std::mem::take(&mut e.blobs)));
                    }
                }
                keep
            });
            for (len, blobs) in freed {
                mb.released(len, &blobs);
                unreferenced.extend(blobs);
                removed += 1;
            }
        }
        self.drop_blob_refs(unreferenced);
        ready(Ok(removed))
    }

    /// Totals over the mailboxes' counts (no scan of their items).
    fn stats(&self) -> StoreStats {
        // Alerts first: the lock order.
        let alerts = self.alerts().len() as u64;
        let mailboxes = self.mailboxes();
        let (items, bytes) = (mailboxes.values()).fold((0u64, 0u64), |(n, b), m| {
            (n.saturating_add(m.items), b.saturating_add(m.bytes))
        });
        let (blobs, blob_bytes) = self.blob_index.totals();
        StoreStats {
            mailboxes: mailboxes.len() as u64,
            items,
            bytes,
            alerts,
            blobs,
            blob_bytes,
        }
    }

    fn arm(&self, alert: Alert) -> StoreFuture<'_, Armed> {
        ready(self.arm_now(alert))
    }

    fn alert_keys(&self, id: AlertId) -> StoreFuture<'_, Option<AlertKeys>> {
        ready(Ok(self.alerts().get(&id).map(|a| AlertKeys {
            checkin: a.arm.checkin_key,
            duress: a.arm.duress_key,
            every: a.arm.every,
            grace: a.arm.grace,
        })))
    }

    fn check_in(&self, id: AlertId, deadline: u64, now: u64) -> StoreFuture<'_, bool> {
        let mut alerts = self.alerts();
        let Some(a) = alerts.get_mut(&id) else {
            return ready(Ok(false));
        };
        a.deadline = deadline;
        a.last_checkin_at = vigil_core::wire::policy::coarse_minute(now);
        ready(Ok(true))
    }

    fn release(&self, id: AlertId, reason: ReleaseReason, now: u64) -> StoreFuture<'_, bool> {
        ready(Ok(self.release_now(id, reason, now)))
    }

    fn disarm(&self, id: AlertId) -> StoreFuture<'_, bool> {
        ready(Ok(self.disarm_now(id)))
    }

    fn alerts(&self) -> StoreFuture<'_, Vec<AlertTimes>> {
        let times = (self.alerts().values())
            .map(|a| AlertTimes {
                id: a.arm.alert,
                grace: a.arm.grace,
                deadline: a.deadline,
            })
            .collect();
        ready(Ok(times))
    }

    fn note(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Option<ReleaseNote>> {
        let key = (item.place, DepositId(flip(&mailbox, &item.id.0)));
        let note = (self.mailboxes().get(&mailbox)).and_then(|mb| mb.deposits.get(&key)?.note);
        ready(Ok(note))
    }

    /// Nothing is ever flushed: all zero.
    fn flush_stats(&self) -> FlushStats {
        FlushStats::default()
    }

    /// No durable write can fail, as none is made.
    fn last_flush_ok(&self) -> bool {
        true
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::testing::Pieces;
    use crate::body::{BodyError, BoxFuture};
    use crate::store::conformance::{self, Backend, DAY};
    use std::path::Path;
    use std::sync::Arc;

    struct Memory;

    impl Backend for Memory {
        /// `dir` is not used: every store starts empty.
        fn open(&self, _dir: &Path, quota: Quota, expiry: Duration) -> Arc<dyn Store> {
            Arc::new(MemoryStore::new(expiry, quota))
        }

        /// Nothing survives dropping the store, so the suite skips its reopen case.
        fn durable(&self) -> bool {
            false
        }
    }

    conformance::conformance_tests!(Memory);

    /// A body whose bytes never arrive: the deposit waits in its read until it is dropped.
    struct Stalled(usize);

    impl BodySource for Stalled {
        fn remaining(&self) -> usize {
            self.0
        }
        fn next_chunk(&mut self, _: usize) -> BoxFuture<'_, Result<Option<Bytes>, BodyError>> {
            Box::pin(std::future::pending())
        }
        fn finished(&self) -> bool {
            false
        }
    }

    /// The mark that keeps a concurrent copy out, and the quota a deposit in progress holds,
    /// are given back when the deposit is dropped mid-read (its client went away).
    #[tokio::test]
    async fn a_deposit_in_progress_holds_its_id_and_quota_until_dropped() {
        let quota = Quota {
            max_items: 1,
            max_bytes: 1 << 20,
        };
        let s = MemoryStore::new(Duration::from_secs(30 * DAY), quota);
        let m = conformance::mailbox(&s, 1).await;
        let head = |d: u8| Deposit {
            mailbox: m,
            deposit_id: DepositId([d; 16]),
            envelope_len: 10,
        };
        let mut stalled = Stalled(10);
        let mut first = s.deposit(head(1), DAY, &mut stalled);
        let waited = tokio::time::timeout(Duration::from_millis(20), &mut first).await;
        assert!(waited.is_err(), "still reading the envelope");
        // Meanwhile the same deposit is in progress, and another one does not fit; neither is
        // read.
        for (d, refused) in [(1, StoreError::InProgress), (2, StoreError::QuotaExceeded)] {
            let mut body = Pieces::exact(&[d; 10], 4);
            assert_eq!(s.deposit(head(d), DAY, &mut body).await, Err(refused));
            assert_eq!(body.read, 0);
        }
        assert_eq!(s.stats().items, 0, "nothing stored yet");
        drop(first);
        let mut body = Pieces::exact(&[1; 10], 4);
        assert_eq!(s.deposit(head(1), DAY, &mut body).await, Ok(Deposited::New));
        assert_eq!(conformance::fetch_all(&s, m).await[0].1, vec![1; 10]);
    }
}
