//! The embedded store: one sled database in the relay's data directory, envelopes over 64 KiB in
//! files beside it.
//!
//! * [`layout`]: the trees, their keys and values, and item ids.
//! * [`commit`]: group commit (and the small deposits' writes), and what durability takes
//!   beyond sled's own flush.
//! * [`accounting`]: per-mailbox usage and expiry buckets, kept in memory and rebuilt at open;
//!   [`expiry`]: the sweep that uses them.
//! * [`large`] and [`envelope_files`]: large envelopes streamed into files of their own.
//! * [`migrate`]: stores written by earlier relays.
//! * [`alerts`]: check-in alerts (armed in `alerts`, released into `items` with `notes`).
//!
//! A small deposit is one `compare_and_swap` into `items`, made by the commit thread just
//! before the group commit that answers it (never on an async worker, see [`commit`]);
//! the same swap recognises a repeat, stored or acknowledged (an ack turns the item into its
//! tombstone in place). Nothing else is written per deposit: quota usage and expiry bookkeeping
//! live in memory and are rebuilt from `items` when the store opens.
//!
//! Every change of one deposit is one single-key swap, so a crash cannot leave a deposit half
//! changed; a large envelope's file is written and synced before its index entry, and a file
//! without one is deleted at the next open.

mod accounting;
mod alerts;
pub mod blob_files;
pub mod commit;
pub mod envelope_files;
mod expiry;
mod large;
pub mod layout;
mod migrate;
#[cfg(test)]
mod tests;

use crate::body::{read_all, BodySource};
use crate::store::blobs::{BlobIndex, UploadPlan};
use crate::store::{
    slice_from, Alert, AlertKeys, AlertTimes, Armed, Deposited, ItemMeta, MailboxUsage, Quota,
    Store, StoreError, StoreFuture, StoreStats,
};
use accounting::{ExpiryBuckets, Usage};
use blob_files::BlobFiles;
use commit::{Committer, Durability};
use envelope_files::EnvelopeFiles;
use layout::{blobs_of, blobs_value, mailbox_record, mailbox_value};
use layout::{
    deposit_key, entry, inline_envelope, inline_value, item_id, item_key, key_of_item, mailbox_of,
    split_item_key, tombstone, DepositKey, Entry, Kind, Place,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use vigil_core::ids::{AlertId, BlobId, ItemId, MailboxId};
use vigil_core::wire::deposit::Deposit;
use vigil_core::wire::fetch::BlobRef;
use vigil_core::wire::limits::MAX_ENVELOPE_LEN;
use vigil_core::wire::policy::{coarse_expiry, coarse_time, merged_expiry};
use vigil_core::wire::upload::Upload;
use vigil_core::wire::{ReleaseNote, ReleaseReason};

pub use commit::{FlushCounters, FlushStats};
pub use large::LARGE_DEPOSIT_MEMORY;
pub use layout::LARGE_ENVELOPE_MIN;

/// Page cache of [`SledStore::open`]; the relay's `store_cache_bytes` default. Deposits land on
/// random keys (deposit ids are random), so once the small envelopes stored exceed the cache,
/// most deposits page a leaf in and out: with 400 MB stored, store CPU per 4 KiB deposit was
/// 136 µs at 64 MiB, 78 µs at 256 MiB, 60 µs at 512 MiB (docs/benchmarks.md). 256 MiB keeps a
/// busy relay fast and its memory modest; large envelopes are in files and never cached.
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Name of the blob directory.
pub const BLOB_DIR: &str = "blobs";

pub(crate) fn backend(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => StoreError::from_io(&io),
        other => StoreError::Backend(other.to_string()),
    }
}

/// sled-backed [`Store`].
pub struct SledStore {
    inner: Arc<Inner>,
}

/// Everything the store's tasks and blocking threads share.
pub(crate) struct Inner {
    mailboxes: sled::Tree,
    items: sled::Tree,
    /// Armed check-in alerts.
    alerts: sled::Tree,
    /// Release notes of items released from alerts, under their `items` keys.
    notes: sled::Tree,
    /// The blobs each item deposited with blobs refers to, under its deposit key.
    item_blobs: sled::Tree,
    /// Each mailbox's current prekey bundle (issue 16), under its id.
    prekeys: sled::Tree,
    /// The blob files.
    blob_files: BlobFiles,
    /// What is known of each blob (lengths, references).
    blob_index: BlobIndex,
    /// Blobs whose last reference went with an ack or expiry not yet durable: their files are
    /// deleted only after the commit that makes the removal durable, so a crash cannot leave an
    /// item whose blob is gone.
    doomed: Mutex<Vec<(BlobId, u64)>>,
    /// Every registered mailbox's key: deposits and proofs look keys up here, not in sled.
    keys: RwLock<HashMap<MailboxId, [u8; 32]>>,
    files: EnvelopeFiles,
    /// Keys of large deposits being received right now: a second upload of the same deposit
    /// waits until the first has finished or failed.
    receiving: Mutex<HashSet<DepositKey>>,
    usage: Usage,
    buckets: ExpiryBuckets,
    /// The mailboxes registered with a lifetime, by the day they are due.
    lifetimes: ExpiryBuckets,
    /// Held while a registration (or a mailbox's removal at the end of its lifetime) changes
    /// `mailboxes` and the key cache, so the two always agree.
    registering: Mutex<()>,
    committer: Committer,
    /// Also held by the commit thread; here for the tests' look at it.
    #[cfg_attr(not(test), allow(dead_code))]
    durability: Arc<Durability>,
    /// Kept for the tests' look at the trees.
    #[cfg_attr(not(test), allow(dead_code))]
    db: sled::Db,
    expiry: Duration,
    quota: Quota,
}

impl Inner {
    fn known(&self, mailbox: &MailboxId) -> Result<bool, StoreError> {
        Ok(self
            .keys
            .read()
            .map_err(|_| StoreError::Backend("mailbox keys poisoned".into()))?
            .contains_key(mailbox))
    }

    /// Store a small envelope in its `items` value, or recognise a repeat; durable on return.
    /// The swap is made by the commit thread, not on the request's task (see `commit`).
    async fn put_inline(
        &self,
        key: &DepositKey,
        time: u64,
        envelope: &[u8],
    ) -> Result<Deposited, StoreError> {
        let mailbox = mailbox_of(key);
        let ikey = item_key(key, Place::Inline);
        let len = envelope.len() as u64;
        if let Err(e) = self.usage.reserve(&self.quota, mailbox, len) {
            // A full mailbox still recognises a repeat of what it holds.
            return match self.items.contains_key(ikey).map_err(backend)? {
                true => {
                    self.committer.wait().await?;
                    Ok(Deposited::Repeat)
                }
                false => Err(e),
            };
        }
        let (items, value) = (self.items.clone(), inline_value(time, envelope));
        let stored = self.committer.write(move || {
            Ok(items
                .compare_and_swap(ikey, None::<&[u8]>, Some(value))
                .map_err(backend)?
                .is_ok())
        });
        match stored.await {
            Ok(true) => {
                self.buckets.note(time, mailbox)?;
                Ok(Deposited::New)
            }
            // Stored or acknowledged before: nothing written.
            Ok(false) => {
                self.usage.release(mailbox, len);
                Ok(Deposited::Repeat)
            }
            Err(e) => {
                self.usage.release(mailbox, len);
                Err(e)
            }
        }
    }

    /// Remove the item or tombstone `value` under `key` at `place`, if it is still there, and
    /// give back what an item held (its usage, its file); whether it was an item.
    fn remove(&self, key: &DepositKey, place: Place, value: &[u8]) -> Result<bool, StoreError> {
        let e = entry(value)?;
        let ikey = item_key(key, place);
        let removed = self
            .items
            .compare_and_swap(ikey, Some(value), None::<&[u8]>)
            .map_err(backend)?
            .is_ok();
        if removed {
            self.notes.remove(ikey).map_err(backend)?;
        }
        Ok(removed && self.released(key, e)?)
    }

    /// An item left the store (acknowledged or expired): give back its usage and delete its
    /// file. A crash before the file is deleted leaves a file the next open collects. Whether
    /// `e` was an item.
    fn released(&self, key: &DepositKey, e: Entry) -> Result<bool, StoreError> {
        match e.kind {
            Kind::Acked => return Ok(false),
            Kind::Inline => {}
            Kind::File => self.files.remove(key)?,
        }
        self.usage.release(mailbox_of(key), e.len);
        self.drop_item_blobs(key)?;
        Ok(true)
    }

    /// The item under `key` left: drop its blob references (its `item_blobs` entry, the bytes
    /// held against its mailbox) and delete the blobs nothing refers to any more. A crash
    /// before a file is deleted leaves a blob without references, deleted by the blob expiry.
    fn drop_item_blobs(&self, key: &DepositKey) -> Result<(), StoreError> {
        let Some(v) = self.item_blobs.remove(key).map_err(backend)? else {
            return Ok(());
        };
        let blobs = blobs_of(&v)?;
        let sum = blobs.iter().fold(0u64, |n, b| n.saturating_add(b.len));
        self.usage.release_blobs(mailbox_of(key), sum);
        let gone = self.blob_index.drop_refs(blobs.iter().map(|b| b.id));
        self.doomed
            .lock()
            .map_err(|_| StoreError::Backend("doomed blobs poisoned".into()))?
            .extend(gone);
        Ok(())
    }

    /// Delete the files of the blobs whose last reference is now durably gone (call after the
    /// commit that followed their removal). A failure leaves files nothing refers to, which the
    /// blob expiry deletes after a restart.
    fn delete_doomed(&self) -> Result<(), StoreError> {
        let doomed = std::mem::take(
            &mut *self
                .doomed
                .lock()
                .map_err(|_| StoreError::Backend("doomed blobs poisoned".into()))?,
        );
        for (id, total) in doomed {
            self.blob_files.remove(&id, total)?;
        }
        Ok(())
    }

    /// Delete the blobs nothing refers to that were not written for the blob expiry.
    fn expire_blobs(&self, now: u64) -> Result<(), StoreError> {
        for (id, total) in self.blob_index.take_expired(now) {
            self.blob_files.remove(&id, total)?;
        }
        Ok(())
    }

    /// The blob index from the blob files and `item_blobs`, at open.
    fn rebuild_blobs(&self) -> Result<(), StoreError> {
        for b in self.blob_files.scan()? {
            self.blob_index.found(b.id, b.total, b.have, b.touched);
        }
        for kv in self.item_blobs.iter() {
            let (k, v) = kv.map_err(backend)?;
            let key =
                DepositKey::try_from(&k[..]).map_err(|_| StoreError::Corrupt("item blobs key"))?;
            let mut alive = false;
            for place in Place::ALL {
                if let Some(v) = self.items.get(item_key(&key, place)).map_err(backend)? {
                    alive |= entry(&v)?.is_item();
                }
            }
            if !alive {
                // Written before an item a crash then kept from being stored.
                self.item_blobs.remove(&k).map_err(backend)?;
                continue;
            }
            let blobs = blobs_of(&v)?;
            for b in &blobs {
                if !self.blob_index.found_ref(&b.id) {
                    tracing::error!("an item refers to a blob whose file is missing");
                }
            }
            let sum = blobs.iter().fold(0u64, |n, b| n.saturating_add(b.len));
            self.usage.add_blobs(mailbox_of(&key), sum)?;
        }
        Ok(())
    }

    fn list(
        &self,
        mailbox: MailboxId,
        max_items: u32,
        max_bytes: u64,
    ) -> Result<Vec<ItemMeta>, StoreError> {
        let mut out = Vec::new();
        let mut total = 0u64;
        for kv in self.items.scan_prefix(mailbox.as_bytes()) {
            let (k, v) = kv.map_err(backend)?;
            let (key, place) = split_item_key(&k)?;
            let e = entry(&v)?;
            let len = e.len;
            let whole = match e.kind {
                Kind::Acked => continue,
                Kind::Inline => true,
                Kind::File => self.files.len(&key)? == Some(len),
            };
            if !whole || len == 0 || len > MAX_ENVELOPE_LEN as u64 {
                // Lost with its disk, or damaged: skip it rather than block the mailbox; it is
                // removed at expiry. Logged without ids.
                tracing::error!("a stored envelope is missing or damaged; skipping it");
                continue;
            }
            if out.len() >= max_items as usize || (!out.is_empty() && total + len > max_bytes) {
                break;
            }
            total += len;
            out.push(ItemMeta {
                id: item_id(&key),
                len,
                place: place as u8,
            });
        }
        Ok(out)
    }

    fn ack(&self, mailbox: MailboxId, ids: &[ItemId]) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for id in ids {
            let key = key_of_item(&mailbox, id);
            for place in Place::ALL {
                let ikey = item_key(&key, place);
                let Some(v) = self.items.get(ikey).map_err(backend)? else {
                    continue;
                };
                let e = entry(&v)?;
                if !e.is_item() {
                    continue;
                }
                // The item becomes its tombstone: the deposit id stays remembered (with the
                // deposit's time, for expiry) in the same single-key swap that deletes it.
                let acked = self
                    .items
                    .compare_and_swap(ikey, Some(v), Some(tombstone(e.time)))
                    .map_err(backend)?
                    .is_ok();
                if acked {
                    self.notes.remove(ikey).map_err(backend)?;
                }
                if acked && self.released(&key, e)? {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Write the registration of `mailbox` with its expiry merged with what is stored, and put
    /// its key in the cache; the expiry it now has.
    fn register(
        &self,
        mailbox: MailboxId,
        public_key: [u8; 32],
        asked: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        let _one = self
            .registering
            .lock()
            .map_err(|_| StoreError::Backend("registrations poisoned".into()))?;
        let old = self.mailboxes.get(mailbox.as_bytes()).map_err(backend)?;
        let held = old.as_deref().map(mailbox_record).transpose()?;
        // The id is a hash of the key, so an existing entry necessarily holds the same key.
        let expires = merged_expiry(held.map(|(_, e)| e), asked);
        let value = mailbox_value(&public_key, expires);
        if old.as_deref() != Some(&value[..]) {
            self.mailboxes
                .insert(mailbox.as_bytes(), value)
                .map_err(backend)?;
        }
        self.keys
            .write()
            .map_err(|_| StoreError::Backend("mailbox keys poisoned".into()))?
            .insert(mailbox, public_key);
        if let Some(t) = expires {
            self.lifetimes.note(t, mailbox)?;
        }
        Ok(expires)
    }

    #[cfg(test)]
    fn db_tree_names(&self) -> Vec<Vec<u8>> {
        self.db.tree_names().iter().map(|n| n.to_vec()).collect()
    }
}

/// Run blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let inner = inner.clone();
    tokio::task::spawn_blocking(move || f(&inner))
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}

impl SledStore {
    /// Open (or create) the database at `path`. Items older than `expiry` are removed by
    /// [`Store::expire`].
    pub fn open(path: &Path, expiry: Duration, quota: Quota) -> Result<Self, StoreError> {
        Self::open_with_cache(path, expiry, quota, DEFAULT_CACHE_BYTES)
    }

    /// [`SledStore::open`] with sled's page cache bounded to `cache_bytes` (sled's own default
    /// is 1 GiB, which would keep that much recently stored evidence resident).
    pub fn open_with_cache(
        path: &Path,
        expiry: Duration,
        quota: Quota,
        cache_bytes: u64,
    ) -> Result<Self, StoreError> {
        Self::open_with_blobs(path, expiry, quota, cache_bytes, &path.join(BLOB_DIR))
    }

    /// [`SledStore::open_with_cache`] with attachment blobs in `blob_dir` (the relay keeps them
    /// in `blobs/` of its data directory; by default they are in `blobs/` inside `path`).
    pub fn open_with_blobs(
        path: &Path,
        expiry: Duration,
        quota: Quota,
        cache_bytes: u64,
        blob_dir: &Path,
    ) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(backend)?;
        let durability = Arc::new(Durability::open(path)?);
        migrate::from_earlier_layouts(&db, &durability, coarse_time(crate::clock::now_unix()))?;
        let t = |name: &str| db.open_tree(name).map_err(backend);
        let items = t("items")?;
        let files = EnvelopeFiles::open(path)?;
        // Nothing is being received yet: every temporary file, and every envelope file without
        // an index entry, is left over from a crash and was never acknowledged.
        let removed = files.collect_garbage(|k| {
            items
                .contains_key(item_key(k, Place::File))
                .map_err(backend)
        })?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed unacknowledged envelope files left by a crash"
            );
        }
        let (db2, d2) = (db.clone(), durability.clone());
        let committer = Committer::start(move || {
            db2.flush().map_err(backend)?;
            // sled's flush is not durable across power loss on Linux; see `commit`.
            d2.sync()
        })?;
        let inner = Arc::new(Inner {
            mailboxes: t("mailboxes")?,
            items,
            alerts: t("alerts")?,
            notes: t("notes")?,
            item_blobs: t("item_blobs")?,
            prekeys: t("prekeys")?,
            blob_files: BlobFiles::open(blob_dir)?,
            blob_index: BlobIndex::default(),
            doomed: Mutex::default(),
            keys: RwLock::default(),
            files,
            receiving: Mutex::default(),
            usage: Usage::default(),
            buckets: ExpiryBuckets::default(),
            lifetimes: ExpiryBuckets::default(),
            registering: Mutex::default(),
            committer,
            durability,
            db,
            expiry,
            quota,
        });
        inner.rebuild()?;
        inner.rebuild_blobs()?;
        Ok(Self { inner })
    }
}

impl SledStore {
    /// A deposit, with or without blobs (whose references the caller wrote first).
    async fn deposit_now(
        &self,
        head: Deposit,
        now: u64,
        body: &mut dyn BodySource,
    ) -> Result<Deposited, StoreError> {
        {
            let inner = &self.inner;
            if !inner.known(&head.mailbox)? {
                return Err(StoreError::UnknownMailbox);
            }
            let key = deposit_key(&head.mailbox, &head.deposit_id);
            let len = head.envelope_len as u64;
            let time = coarse_time(now);
            let place = Place::for_len(head.envelope_len);
            let buffered = match place {
                Place::Inline => body.take_buffered(),
                Place::File => None,
            };
            match (place, buffered) {
                // Already in memory: the swap itself tells a repeat.
                (Place::Inline, Some(envelope)) => inner.put_inline(&key, time, &envelope).await,
                // Still to come: a repeat is answered before a byte of it is read (once the
                // first copy is durable).
                _ if inner
                    .items
                    .contains_key(item_key(&key, place))
                    .map_err(backend)? =>
                {
                    inner.committer.wait().await?;
                    Ok(Deposited::Repeat)
                }
                (Place::Inline, None) => {
                    let envelope = read_all(body).await?;
                    inner.put_inline(&key, time, &envelope).await
                }
                (Place::File, _) => {
                    let done = large::deposit(inner, key, len, time, body).await?;
                    inner.committer.wait().await?;
                    Ok(done)
                }
            }
        }
    }
}

impl Store for SledStore {
    fn register(
        &self,
        mailbox: MailboxId,
        public_key: [u8; 32],
        expires: Option<u64>,
    ) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async move {
            let inner = &self.inner;
            let expires = inner.register(mailbox, public_key, expires.map(coarse_expiry))?;
            // Known (in the cache) before durable: a deposit accepted meanwhile is answered only
            // after a group commit, which makes this registration durable too.
            inner.committer.wait().await?;
            Ok(expires)
        })
    }

    fn mailbox_key(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<[u8; 32]>> {
        let found = self
            .inner
            .keys
            .read()
            .map_err(|_| StoreError::Backend("mailbox keys poisoned".into()))
            .map(|k| k.get(&mailbox).copied());
        Box::pin(std::future::ready(found))
    }

    fn set_prekey<'a>(&'a self, mailbox: MailboxId, bundle: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let inner = &self.inner;
            {
                // Under the registration lock, so a mailbox removed at the end of its lifetime
                // cannot get a bundle back after its removal took the old one.
                let _one = inner
                    .registering
                    .lock()
                    .map_err(|_| StoreError::Backend("registrations poisoned".into()))?;
                let known = inner
                    .keys
                    .read()
                    .map_err(|_| StoreError::Backend("mailbox keys poisoned".into()))?
                    .contains_key(&mailbox);
                if !known {
                    return Ok(false);
                }
                inner
                    .prekeys
                    .insert(mailbox.as_bytes(), bundle)
                    .map_err(backend)?;
            }
            inner.committer.wait().await?;
            Ok(true)
        })
    }

    fn prekey(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<Vec<u8>>> {
        let found = self
            .inner
            .prekeys
            .get(mailbox.as_bytes())
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(backend);
        Box::pin(std::future::ready(found))
    }

    fn deposit<'a>(
        &'a self,
        head: Deposit,
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        Box::pin(self.deposit_now(head, now, body))
    }

    fn deposit_blobs<'a>(
        &'a self,
        head: Deposit,
        blobs: &'a [BlobId],
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        Box::pin(async move {
            let inner = &self.inner;
            if !inner.known(&head.mailbox)? {
                return Err(StoreError::UnknownMailbox);
            }
            let key = deposit_key(&head.mailbox, &head.deposit_id);
            let place = Place::for_len(head.envelope_len);
            // A repeat is answered before the blobs are looked at (they may be gone since).
            if inner
                .items
                .contains_key(item_key(&key, place))
                .map_err(backend)?
            {
                inner.committer.wait().await?;
                return Ok(Deposited::Repeat);
            }
            let refs = inner.blob_index.lengths(blobs)?;
            let sum = refs.iter().fold(0u64, |n, b| n.saturating_add(b.len));
            inner.usage.hold_blobs(&inner.quota, head.mailbox, sum)?;
            // Referenced from here on: checked again, as a blob may have expired meanwhile.
            let refs = match inner.blob_index.take_refs(blobs) {
                Ok(r) => r,
                Err(e) => {
                    inner.usage.release_blobs(head.mailbox, sum);
                    return Err(e);
                }
            };
            // The references go first; the item's group commit makes both durable.
            let claimed = inner
                .item_blobs
                .compare_and_swap(key, None::<&[u8]>, Some(blobs_value(&refs)))
                .map_err(backend);
            let undo = || {
                inner.usage.release_blobs(head.mailbox, sum);
                inner.blob_index.untake_refs(blobs);
            };
            match claimed {
                Ok(Ok(())) => {}
                // Another request is depositing the same (mailbox, deposit id) right now.
                Ok(Err(_)) => {
                    undo();
                    return Err(StoreError::InProgress);
                }
                Err(e) => {
                    undo();
                    return Err(e);
                }
            }
            let done = self.deposit_now(head, now, body).await;
            if !matches!(done, Ok(Deposited::New)) {
                undo();
                inner.item_blobs.remove(key).map_err(backend)?;
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
            let inner = &self.inner;
            match inner.blob_index.begin_upload(&head)? {
                UploadPlan::Answer(have) => Ok(have),
                UploadPlan::Write { at, fresh, mark } => {
                    let have = (inner.blob_files)
                        .append(head.blob, head.total, at, fresh, body)
                        .await?;
                    mark.done(head.total, have, now);
                    Ok(have)
                }
            }
        })
    }

    fn item_blobs(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Vec<BlobRef>> {
        let key = key_of_item(&mailbox, &item.id);
        let found = (self.inner.item_blobs.get(key).map_err(backend))
            .and_then(|v| v.map_or(Ok(Vec::new()), |v| blobs_of(&v)));
        Box::pin(std::future::ready(found))
    }

    fn blob_len(&self, blob: BlobId) -> StoreFuture<'_, Option<u64>> {
        Box::pin(std::future::ready(Ok(self
            .inner
            .blob_index
            .complete_len(&blob))))
    }

    fn read_blob(
        &self,
        blob: BlobId,
        offset: u64,
        max: usize,
    ) -> StoreFuture<'_, Option<bytes::Bytes>> {
        Box::pin(async move {
            let Some(total) = self.inner.blob_index.complete_len(&blob) else {
                return Ok(None);
            };
            blocking(&self.inner, move |s| {
                Ok(s.blob_files
                    .read_at(&blob, total, offset, max)?
                    .map(bytes::Bytes::from))
            })
            .await
        })
    }

    fn room(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<u64>> {
        let inner = &self.inner;
        let room = inner.known(&mailbox).and_then(|known| {
            known
                .then(|| inner.usage.room(&inner.quota, mailbox))
                .transpose()
        });
        Box::pin(std::future::ready(room))
    }

    fn set_blob_expiry(&self, secs: u64) {
        self.inner.blob_index.set_expiry(secs);
    }

    fn list(
        &self,
        mailbox: MailboxId,
        max_items: u32,
        max_bytes: u64,
    ) -> StoreFuture<'_, Vec<ItemMeta>> {
        Box::pin(blocking(&self.inner, move |s| {
            s.list(mailbox, max_items, max_bytes)
        }))
    }

    fn read(
        &self,
        mailbox: MailboxId,
        item: ItemMeta,
        offset: u64,
        max: usize,
    ) -> StoreFuture<'_, Option<bytes::Bytes>> {
        Box::pin(async move {
            let key = key_of_item(&mailbox, &item.id);
            match Place::from_byte(item.place)? {
                // One small value, most likely in sled's cache: read inline.
                Place::Inline => Ok(self
                    .inner
                    .items
                    .get(item_key(&key, Place::Inline))
                    .map_err(backend)?
                    .and_then(|v| inline_envelope(&v).map(|e| slice_from(e, offset, max)))),
                Place::File => {
                    blocking(&self.inner, move |s| {
                        Ok(s.files.read_at(&key, offset, max)?.map(bytes::Bytes::from))
                    })
                    .await
                }
            }
        })
    }

    fn ack<'a>(&'a self, mailbox: MailboxId, ids: &'a [ItemId]) -> StoreFuture<'a, u64> {
        let ids = ids.to_vec();
        Box::pin(async move {
            let n = blocking(&self.inner, move |s| s.ack(mailbox, &ids)).await?;
            self.inner.committer.wait().await?;
            blocking(&self.inner, |s| s.delete_doomed()).await?;
            Ok(n)
        })
    }

    fn expire(&self, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let (gone, n) = blocking(&self.inner, move |s| {
                s.expire_blobs(now)?;
                let (gone, in_them) = s.expire_mailboxes(now)?;
                Ok((gone, in_them + s.expire(now)?))
            })
            .await?;
            if n > 0 || gone > 0 {
                self.inner.committer.wait().await?;
                blocking(&self.inner, |s| s.delete_doomed()).await?;
            }
            Ok(n)
        })
    }

    fn usage(&self, mailbox: MailboxId) -> StoreFuture<'_, MailboxUsage> {
        let inner = &self.inner;
        Box::pin(async move {
            let (items, bytes) = inner.usage.of(mailbox)?;
            Ok(MailboxUsage {
                items,
                bytes,
                quota: inner.quota,
                expiry_secs: inner.expiry.as_secs(),
            })
        })
    }

    fn stats(&self) -> StoreStats {
        let (items, bytes) = self.inner.usage.totals();
        let (blobs, blob_bytes) = self.inner.blob_index.totals();
        StoreStats {
            mailboxes: self.inner.keys.read().map_or(0, |k| k.len() as u64),
            items,
            bytes,
            alerts: self.inner.alert_count(),
            blobs,
            blob_bytes,
        }
    }

    fn arm(&self, alert: Alert) -> StoreFuture<'_, Armed> {
        Box::pin(async move {
            let done = blocking(&self.inner, move |s| s.arm(alert)).await?;
            self.inner.committer.wait().await?;
            Ok(done)
        })
    }

    fn alert_keys(&self, id: AlertId) -> StoreFuture<'_, Option<AlertKeys>> {
        Box::pin(blocking(&self.inner, move |s| s.alert_keys(id)))
    }

    fn check_in(&self, id: AlertId, deadline: u64, now: u64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let done = blocking(&self.inner, move |s| s.check_in(id, deadline, now)).await?;
            self.inner.committer.wait().await?;
            Ok(done)
        })
    }

    fn release(&self, id: AlertId, reason: ReleaseReason, now: u64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let done = blocking(&self.inner, move |s| s.release(id, reason, now)).await?;
            self.inner.committer.wait().await?;
            Ok(done)
        })
    }

    fn disarm(&self, id: AlertId) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let done = blocking(&self.inner, move |s| s.disarm(id)).await?;
            self.inner.committer.wait().await?;
            Ok(done)
        })
    }

    fn alerts(&self) -> StoreFuture<'_, Vec<AlertTimes>> {
        Box::pin(blocking(&self.inner, |s| s.alert_times()))
    }

    fn note(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Option<ReleaseNote>> {
        Box::pin(async move {
            let place = Place::from_byte(item.place)?;
            let ikey = item_key(&key_of_item(&mailbox, &item.id), place);
            self.inner.note(&ikey)
        })
    }

    fn flush_stats(&self) -> FlushStats {
        self.inner.committer.counters().snapshot()
    }

    fn last_flush_ok(&self) -> bool {
        self.inner.committer.counters().last_ok()
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.inner.committer.wait())
    }
}
