//! The embedded store: one sled database in the relay's data directory.
//!
//! Trees (all integers big-endian):
//!
//! | tree        | key                                   | value                      |
//! |-------------|---------------------------------------|----------------------------|
//! | `mailboxes` | mailbox id (32)                       | Ed25519 public key (32)    |
//! | `reports`   | mailbox id (32) ‖ deposit id (16)     | envelope, exactly as sent  |
//! | `expiry`    | coarse time u64 ‖ mailbox ‖ deposit id | envelope length u64        |
//! | `acked`     | mailbox id (32) ‖ deposit id (16)     | empty (tombstone)          |
//! | `large`     | mailbox id (32) ‖ deposit id (16)     | envelope length u64        |
//!
//! Envelopes longer than [`LARGE_ENVELOPE_MIN`] are not in sled at all: they are streamed into
//! files of their own ([`super::envelope_files`]) and `large` indexes them; everything below
//! about `reports` holds for `large` too, with the file written, synced and named before the
//! `large` entry (the commit point) is written.
//!
//! A deposit is two plain single-key writes, no transaction (sled 0.34.7 serialises every
//! transaction and batch through one global lock): first the `expiry` entry, then the report
//! with `compare_and_swap(None -> envelope)`, which is the commit point and makes idempotency a
//! property of the key. The item id a fetcher sees is derived from the key: the deposit id XOR
//! the first 16 bytes of the mailbox id (so equal deposit ids in two mailboxes give two item
//! ids, and an ack maps an id back to its key within the acking mailbox only).
//!
//! An ack writes the tombstone first and then removes the report, so a retry of an acked
//! deposit is recognised until expiry; the expiry entry removes report, tombstone and itself.
//!
//! Crashes between the writes are harmless: sled recovers a prefix of its log, so an `expiry`
//! entry may exist without its report (expiry then finds nothing to delete; the usage rebuild
//! counts it until expiry, erring towards refusing), and a tombstone may exist with its report
//! still present (the report is fetched again: at-least-once, never lost, never stored twice).
//!
//! Per-mailbox usage (items, bytes) for quotas and stats is kept in memory and rebuilt at open
//! from the small `expiry` values; quota is a soft abuse limit.

use super::envelope_files::{EnvelopeFiles, TempEnvelope};
use super::{
    LargeDeposit, Quota, StagedEnvelope, Store, StoreError, StoreStats, StoredItem,
    LARGE_ENVELOPE_MIN,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigil_core::ids::{DepositId, ItemId, MailboxId};
use vigil_core::wire::limits::MAX_ENVELOPE_LEN;
use vigil_core::wire::policy::{coarse_time, expiry_cutoff};

/// Page cache of [`SledStore::open`]; the relay's `store_cache_bytes` default.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Per mailbox id: items and envelope bytes held.
type Usage = HashMap<[u8; 32], (u64, u64)>;

/// sled-backed [`Store`].
pub struct SledStore {
    db: sled::Db,
    durability: Durability,
    mailboxes: sled::Tree,
    reports: sled::Tree,
    expiry_index: sled::Tree,
    acked: sled::Tree,
    /// Index of the envelopes kept in files.
    large: sled::Tree,
    /// The files of large envelopes.
    files: Arc<EnvelopeFiles>,
    /// Keys of large deposits being received right now: a second upload of the same deposit
    /// waits until the first has finished or failed.
    receiving: Arc<Mutex<HashSet<[u8; 48]>>>,
    /// Per mailbox: items and envelope bytes held.
    usage: Arc<Mutex<Usage>>,
    expiry: Duration,
    quota: Quota,
}

fn backend(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => StoreError::from_io(&io),
        other => StoreError::Backend(other.to_string()),
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::from_io(&e)
}

/// What `Store::flush` must fsync itself, because sled 0.34.7 does not before `flush` returns.
///
/// * The log file `db`: sled writes it with `sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER)`
///   (`src/pagecache/iobuf.rs`), which starts and waits for writeback of the data pages but
///   flushes neither the file's metadata nor the disk's volatile write cache, so it does not
///   survive power loss. One `fdatasync` on a handle opened once fixes that.
/// * Blob files `blobs/<lsn>`: values (and tree pages) larger than about a quarter of a 512 KiB
///   segment are written to their own file with plain `write_all` and never synced
///   (`src/pagecache/blob_io.rs`). Most reports with an attachment are blobs. Each new blob is
///   synced once, and the `blobs` directory after new entries appear.
struct Durability {
    /// sled's log file, opened once at start.
    log: std::fs::File,
    /// sled's blob directory.
    blobs_dir: std::path::PathBuf,
    /// Blob files already synced. Pruned to the files that still exist at every flush.
    synced_blobs: std::sync::Mutex<std::collections::HashSet<std::ffi::OsString>>,
}

impl Durability {
    fn open(path: &Path) -> Result<Self, StoreError> {
        let log = std::fs::File::open(path.join("db")).map_err(io_err)?;
        let blobs_dir = path.join("blobs");
        // Everything present at start was written by an earlier run: sync it once, and the
        // directories, so entries created just before a crash are durable too.
        let d = Self {
            log,
            blobs_dir,
            synced_blobs: std::sync::Mutex::new(Default::default()),
        };
        d.sync()?;
        sync_dir(path)?;
        Ok(d)
    }

    /// fdatasync the new blobs, their directory, and the log.
    fn sync(&self) -> Result<(), StoreError> {
        let mut synced = self
            .synced_blobs
            .lock()
            .map_err(|_| StoreError::Backend("blob sync state poisoned".into()))?;
        let mut present = std::collections::HashSet::with_capacity(synced.len());
        let mut new_entries = false;
        match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io_err)?;
                    let name = entry.file_name();
                    if !synced.contains(&name) {
                        match std::fs::File::open(entry.path()) {
                            Ok(f) => f.sync_data().map_err(io_err)?,
                            // Removed by sled since the listing (its item was deleted).
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(io_err(e)),
                        }
                        new_entries = true;
                    }
                    present.insert(name);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        if new_entries {
            sync_dir(&self.blobs_dir)?;
        }
        *synced = present;
        drop(synced);
        self.log.sync_data().map_err(io_err)
    }
}

/// fsync a directory, so entries created in it survive power loss.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    match std::fs::File::open(dir) {
        Ok(d) => d.sync_all().map_err(io_err),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

/// Outcome of a deposit's writes.
enum Written {
    /// The report is stored and counted.
    Stored,
    /// The id was already remembered; our usage reservation must be given back.
    Repeat,
    /// Ours was stored and already acked (and uncounted by that ack).
    Gone,
}

fn key48(mailbox: &MailboxId, id: &[u8; 16]) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(mailbox.as_bytes());
    k[32..].copy_from_slice(id);
    k
}

/// Item id of (mailbox, deposit id), and the deposit id of (mailbox, item id): one XOR.
fn flip(mailbox: &MailboxId, id: &[u8; 16]) -> [u8; 16] {
    let mut out = *id;
    for (o, m) in out.iter_mut().zip(mailbox.as_bytes()) {
        *o ^= m;
    }
    out
}

fn expiry_key(time: u64, key: &[u8; 48]) -> [u8; 56] {
    let mut k = [0u8; 56];
    k[..8].copy_from_slice(&time.to_be_bytes());
    k[8..].copy_from_slice(key);
    k
}

/// The report key (mailbox ‖ deposit id) inside an `expiry` key.
fn report_key_of(k: &[u8]) -> Result<[u8; 48], StoreError> {
    k.get(8..)
        .and_then(|r| <[u8; 48]>::try_from(r).ok())
        .ok_or(StoreError::Corrupt("expiry index key"))
}

fn mailbox_of(key: &[u8; 48]) -> [u8; 32] {
    let mut m = [0u8; 32];
    m.copy_from_slice(&key[..32]);
    m
}

/// The item id of a store key: the deposit id XOR the start of the mailbox id.
fn item_id_of(key: &[u8; 48]) -> ItemId {
    let mailbox = MailboxId(mailbox_of(key));
    let mut did = [0u8; 16];
    did.copy_from_slice(&key[32..]);
    ItemId(flip(&mailbox, &did))
}

/// A length stored as a `large` or `expiry` value.
fn stored_len(v: &[u8], what: &'static str) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(what))
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    m.lock()
        .map_err(|_| StoreError::Backend("store state poisoned".into()))
}

/// Take `len` bytes and one item off `mailbox`'s usage.
fn release(usage: &Mutex<Usage>, mailbox: [u8; 32], len: u64) -> Result<(), StoreError> {
    let mut u = lock(usage)?;
    if let Some(e) = u.get_mut(&mailbox) {
        e.0 = e.0.saturating_sub(1);
        e.1 = e.1.saturating_sub(len);
        if e.0 == 0 {
            u.remove(&mailbox);
        }
    }
    Ok(())
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
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(backend)?;
        let t = |name: &str| db.open_tree(name).map_err(backend);
        let durability = Durability::open(path)?;
        let files = Arc::new(EnvelopeFiles::open(path)?);
        let large = t("large")?;
        // Nothing is being received yet: every temporary file, and every envelope file without
        // an index entry, is left over from a crash and was never acknowledged.
        let removed = files.collect_garbage(|k| large.contains_key(k).map_err(backend))?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed unacknowledged envelope files left by a crash"
            );
        }
        let s = Self {
            durability,
            mailboxes: t("mailboxes")?,
            reports: t("reports")?,
            expiry_index: t("expiry")?,
            acked: t("acked")?,
            large,
            files,
            receiving: Arc::default(),
            usage: Arc::default(),
            db,
            expiry,
            quota,
        };
        s.rebuild_usage()?;
        Ok(s)
    }

    /// Usage from the `expiry` entries of reports not acked (each report counted once).
    fn rebuild_usage(&self) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let mut usage: Usage = HashMap::new();
        for kv in self.expiry_index.iter() {
            let (k, v) = kv.map_err(backend)?;
            let key = report_key_of(&k)?;
            let len = <[u8; 8]>::try_from(&v[..])
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("expiry index value"))?;
            if !seen.insert(key) || self.acked.contains_key(key).map_err(backend)? {
                continue;
            }
            let u = usage.entry(mailbox_of(&key)).or_default();
            u.0 += 1;
            u.1 += len;
        }
        *self.usage_lock()? = usage;
        Ok(())
    }

    fn usage_lock(&self) -> Result<std::sync::MutexGuard<'_, Usage>, StoreError> {
        lock(&self.usage)
    }

    /// Take `len` bytes and one item off `mailbox`'s usage.
    fn release(&self, mailbox: [u8; 32], len: u64) -> Result<(), StoreError> {
        release(&self.usage, mailbox, len)
    }

    /// Count one item of `len` bytes against `mailbox`, or refuse if that would exceed its quota.
    fn reserve(&self, mailbox: [u8; 32], len: u64) -> Result<(), StoreError> {
        let mut u = self.usage_lock()?;
        let e = u.entry(mailbox).or_default();
        if !self.quota.allows(e.0, e.1, len) {
            if e.0 == 0 {
                u.remove(&mailbox);
            }
            return Err(StoreError::QuotaExceeded);
        }
        e.0 += 1;
        e.1 += len;
        Ok(())
    }

    /// Whether (mailbox, deposit id) is remembered: stored in either form, or acked and not
    /// yet expired.
    fn remembered(&self, key: &[u8; 48]) -> Result<bool, StoreError> {
        Ok(self.acked.contains_key(key).map_err(backend)?
            || self.reports.contains_key(key).map_err(backend)?
            || self.large.contains_key(key).map_err(backend)?)
    }

    /// Delete the stored item of `key` (small or in a file) and uncount it; whether it existed.
    fn remove_item(&self, key: &[u8; 48]) -> Result<bool, StoreError> {
        if let Some(v) = self.reports.remove(key).map_err(backend)? {
            self.release(mailbox_of(key), v.len() as u64)?;
            return Ok(true);
        }
        if let Some(v) = self.large.remove(key).map_err(backend)? {
            self.release(mailbox_of(key), stored_len(&v, "large envelope length")?)?;
            // The index entry is gone; a crash before this leaves a file that the next start
            // collects.
            self.files.remove(key)?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// A large envelope being received into a temporary file ([`Store::begin_large_deposit`]).
struct StagedFile {
    key: [u8; 48],
    len: u64,
    now: u64,
    /// `None` once the file was given its final name (or never existed).
    temp: Option<TempEnvelope>,
    /// Whether the mailbox usage reserved for this envelope must be given back on drop.
    reserved: bool,
    reports: sled::Tree,
    large: sled::Tree,
    expiry_index: sled::Tree,
    acked: sled::Tree,
    files: Arc<EnvelopeFiles>,
    receiving: Arc<Mutex<HashSet<[u8; 48]>>>,
    usage: Arc<Mutex<Usage>>,
}

impl StagedFile {
    /// Index the published file: the expiry entry, then the `large` entry (the commit point),
    /// then the same ack race check as [`Store::deposit`].
    fn index(&mut self) -> Result<Written, StoreError> {
        let key = self.key;
        self.expiry_index
            .insert(
                expiry_key(coarse_time(self.now), &key),
                &self.len.to_be_bytes()[..],
            )
            .map_err(backend)?;
        let value = self.len.to_be_bytes();
        let stored = self
            .large
            .compare_and_swap(key, None::<&[u8]>, Some(&value[..]))
            .map_err(backend)?
            .is_ok();
        if !stored {
            // Cannot happen while `receiving` serialises uploads of one key; if it did, the
            // file now holds this retry's copy of the same deposit, which stays indexed.
            return Ok(Written::Repeat);
        }
        if self.acked.contains_key(key).map_err(backend)? {
            let undone = self
                .large
                .compare_and_swap(key, Some(&value[..]), None::<&[u8]>)
                .map_err(backend)?
                .is_ok();
            if undone {
                self.files.remove(&key)?;
                return Ok(Written::Repeat);
            }
            return Ok(Written::Gone);
        }
        Ok(Written::Stored)
    }
}

impl StagedEnvelope for StagedFile {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_parts(&[bytes])
    }

    fn write_parts(&mut self, parts: &[&[u8]]) -> Result<(), StoreError> {
        let temp = self
            .temp
            .as_mut()
            .ok_or(StoreError::Backend("envelope file already closed".into()))?;
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if temp.written() + total > self.len {
            return Err(StoreError::Backend(
                "envelope is longer than announced".into(),
            ));
        }
        temp.write_parts(parts)
    }

    fn commit(mut self: Box<Self>) -> Result<(ItemId, bool), StoreError> {
        let id = item_id_of(&self.key);
        let key = self.key;
        let temp = self
            .temp
            .as_mut()
            .ok_or(StoreError::Backend("envelope file already closed".into()))?;
        if temp.written() != self.len {
            return Err(StoreError::Backend(
                "envelope is shorter than announced".into(),
            ));
        }
        temp.sync()?;
        // A small deposit of the same id may have been stored meanwhile.
        if self.reports.contains_key(key).map_err(backend)?
            || self.acked.contains_key(key).map_err(backend)?
        {
            return Ok((id, true));
        }
        let path = temp.path().to_path_buf();
        self.files.publish(&path, &key)?;
        self.temp = None;
        match self.index() {
            Ok(Written::Stored) => {
                self.reserved = false;
                Ok((id, false))
            }
            Ok(Written::Gone) => {
                // The ack that removed it also gave its usage back.
                self.reserved = false;
                Ok((id, true))
            }
            Ok(Written::Repeat) => Ok((id, true)),
            Err(e) => {
                // Not indexed: the published file must not outlive this failure (if removing
                // it fails too, the next start collects it).
                let _ = self.files.remove(&key);
                Err(e)
            }
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let path = temp.path().to_path_buf();
            drop(temp);
            if let Err(e) = std::fs::remove_file(&path) {
                // Collected at the next start.
                tracing::warn!(error = %e, "cannot remove an abandoned upload's temporary file");
            }
        }
        if self.reserved {
            let _ = release(&self.usage, mailbox_of(&self.key), self.len);
        }
        if let Ok(mut r) = self.receiving.lock() {
            r.remove(&self.key);
        }
    }
}

impl Store for SledStore {
    fn register_mailbox(
        &self,
        mailbox: &MailboxId,
        public_key: &[u8; 32],
    ) -> Result<(), StoreError> {
        // The id is a hash of the key, so an existing entry necessarily holds the same key.
        self.mailboxes
            .insert(mailbox.as_bytes(), &public_key[..])
            .map_err(backend)?;
        Ok(())
    }

    fn mailbox_key(&self, mailbox: &MailboxId) -> Result<Option<[u8; 32]>, StoreError> {
        match self.mailboxes.get(mailbox.as_bytes()).map_err(backend)? {
            None => Ok(None),
            Some(v) => <[u8; 32]>::try_from(&v[..])
                .map(Some)
                .map_err(|_| StoreError::Corrupt("mailbox key")),
        }
    }

    fn deposit(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        envelope: &[u8],
        now: u64,
    ) -> Result<(ItemId, bool), StoreError> {
        if envelope.len() > LARGE_ENVELOPE_MIN {
            // The same file-backed path as a streamed upload, so every large envelope lives in
            // a file whichever way it arrived.
            let len = envelope.len() as u64;
            return match self.begin_large_deposit(mailbox, deposit_id, len, now)? {
                LargeDeposit::Repeat(id) => Ok((id, true)),
                LargeDeposit::Write(mut staged) => {
                    staged.write(envelope)?;
                    staged.commit()
                }
            };
        }
        if self.mailbox_key(mailbox)?.is_none() {
            return Err(StoreError::UnknownMailbox);
        }
        let id = ItemId(flip(mailbox, deposit_id.as_bytes()));
        let key = key48(mailbox, deposit_id.as_bytes());
        // Remembered (stored, or acked and not yet expired): nothing to write.
        if self.remembered(&key)? {
            return Ok((id, true));
        }
        let len = envelope.len() as u64;
        let mb = *mailbox.as_bytes();
        self.reserve(mb, len)?;
        let written = (|| {
            // The expiry entry first: if only it survives a crash, expiry deletes nothing.
            self.expiry_index
                .insert(expiry_key(coarse_time(now), &key), &len.to_be_bytes()[..])
                .map_err(backend)?;
            let stored = self
                .reports
                .compare_and_swap(key, None::<&[u8]>, Some(envelope))
                .map_err(backend)?
                .is_ok();
            // An ack of a concurrent first deposit of this id slipped in between our checks
            // and the swap: the id is remembered as acked, so ours is a repeat. (If the swap
            // back fails, the report was ours and an ack already removed and uncounted it.)
            if stored && self.acked.contains_key(key).map_err(backend)? {
                let undone = self
                    .reports
                    .compare_and_swap(key, Some(envelope), None::<&[u8]>)
                    .map_err(backend)?
                    .is_ok();
                return Ok(if undone {
                    Written::Repeat
                } else {
                    Written::Gone
                });
            }
            Ok(if stored {
                Written::Stored
            } else {
                Written::Repeat
            })
        })();
        match written {
            Ok(Written::Stored) => Ok((id, false)),
            Ok(Written::Gone) => Ok((id, true)),
            Ok(Written::Repeat) => {
                self.release(mb, len)?;
                Ok((id, true))
            }
            Err(e) => {
                self.release(mb, len)?;
                Err(e)
            }
        }
    }

    fn begin_large_deposit(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        len: u64,
        now: u64,
    ) -> Result<LargeDeposit, StoreError> {
        if self.mailbox_key(mailbox)?.is_none() {
            return Err(StoreError::UnknownMailbox);
        }
        let id = ItemId(flip(mailbox, deposit_id.as_bytes()));
        let key = key48(mailbox, deposit_id.as_bytes());
        if self.remembered(&key)? {
            return Ok(LargeDeposit::Repeat(id));
        }
        if !lock(&self.receiving)?.insert(key) {
            return Err(StoreError::InProgress);
        }
        // From here on the StagedFile's drop undoes what was taken.
        let mut staged = Box::new(StagedFile {
            key,
            len,
            now,
            temp: None,
            reserved: false,
            reports: self.reports.clone(),
            large: self.large.clone(),
            expiry_index: self.expiry_index.clone(),
            acked: self.acked.clone(),
            files: self.files.clone(),
            receiving: self.receiving.clone(),
            usage: self.usage.clone(),
        });
        self.reserve(*mailbox.as_bytes(), len)?;
        staged.reserved = true;
        let (file, path) = self.files.create_temp()?;
        staged.temp = Some(TempEnvelope::new(file, path));
        Ok(LargeDeposit::Write(staged))
    }

    fn fetch(
        &self,
        mailbox: &MailboxId,
        max_items: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredItem>, StoreError> {
        // Small reports first (they are the urgent text), then envelopes kept in files. Stop
        // at the first item that would not fit, so items are never skipped over.
        let mut out = Vec::new();
        let mut total = 0usize;
        let fits = |out: &Vec<StoredItem>, total: usize, len: usize| {
            out.len() < max_items as usize && (out.is_empty() || total + len <= max_bytes)
        };
        for kv in self.reports.scan_prefix(mailbox.as_bytes()) {
            let (k, v) = kv.map_err(backend)?;
            if !fits(&out, total, v.len()) {
                return Ok(out);
            }
            let key = <[u8; 48]>::try_from(&k[..]).map_err(|_| StoreError::Corrupt("item key"))?;
            total += v.len();
            out.push(StoredItem {
                id: item_id_of(&key),
                envelope: v.to_vec(),
            });
        }
        for kv in self.large.scan_prefix(mailbox.as_bytes()) {
            let (k, v) = kv.map_err(backend)?;
            let key = <[u8; 48]>::try_from(&k[..]).map_err(|_| StoreError::Corrupt("item key"))?;
            let len = stored_len(&v, "large envelope length")?;
            if !fits(&out, total, usize::try_from(len).unwrap_or(usize::MAX)) {
                break;
            }
            match self.files.read(&key, len, MAX_ENVELOPE_LEN)? {
                Some(envelope) => {
                    total += envelope.len();
                    out.push(StoredItem {
                        id: item_id_of(&key),
                        envelope,
                    });
                }
                // Lost with its disk, or damaged: skip it rather than block the mailbox; it is
                // removed at expiry. Logged without ids.
                None => tracing::error!("an envelope file is missing or damaged; skipping it"),
            }
        }
        Ok(out)
    }

    fn ack(&self, mailbox: &MailboxId, ids: &[ItemId]) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for id in ids {
            let key = key48(mailbox, &flip(mailbox, id.as_bytes()));
            let small = self.reports.contains_key(key).map_err(backend)?;
            if !small && !self.large.contains_key(key).map_err(backend)? {
                continue;
            }
            // Tombstone first: a crash in between leaves the report fetchable, never a
            // forgotten deposit id. The `expiry` entry removes the tombstone later.
            self.acked.insert(key, &[][..]).map_err(backend)?;
            if self.remove_item(&key)? {
                n += 1;
            }
        }
        Ok(n)
    }

    fn expire(&self, now: u64) -> Result<u64, StoreError> {
        let Some(cutoff) = expiry_cutoff(now, self.expiry.as_secs()) else {
            return Ok(0);
        };
        // Every key whose time is <= cutoff sorts before (cutoff + 1) ‖ ...
        let end = cutoff.saturating_add(1).to_be_bytes();
        let mut removed = 0u64;
        for kv in self.expiry_index.range(..&end[..]) {
            let (k, _) = kv.map_err(backend)?;
            let key = report_key_of(&k)?;
            if self.remove_item(&key)? {
                removed += 1;
            }
            self.acked.remove(key).map_err(backend)?;
            self.expiry_index.remove(&k).map_err(backend)?;
        }
        Ok(removed)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut s = StoreStats {
            mailboxes: self.mailboxes.len() as u64,
            ..Default::default()
        };
        for (n, b) in self.usage_lock()?.values() {
            s.items += n;
            s.bytes += b;
        }
        Ok(s)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend)?;
        // sled's flush is not durable across power loss on Linux; see `Durability`.
        self.durability.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    /// Open, waiting out the file lock a just-dropped store's background flusher thread may
    /// still hold for a moment (tests reopen the same directory right after a drop).
    fn open(dir: &Path) -> SledStore {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match SledStore::open(
                &dir.join("db"),
                Duration::from_secs(30 * DAY),
                Quota::default(),
            ) {
                Ok(s) => return s,
                Err(StoreError::Backend(e))
                    if e.contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot open the test store: {e}"),
            }
        }
    }

    fn registered(s: &SledStore, n: u8) -> MailboxId {
        let m = MailboxId::for_key(&[n; 32]);
        s.register_mailbox(&m, &[n; 32]).unwrap();
        m
    }

    #[test]
    fn deposit_is_idempotent_per_mailbox_and_deposit_id() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m = registered(&s, 1);
        let (a, dup_a) = s.deposit(&m, &DepositId([1; 16]), b"one", 1000).unwrap();
        let (b, dup_b) = s.deposit(&m, &DepositId([1; 16]), b"one", 2000).unwrap();
        assert!(!dup_a && dup_b);
        assert_eq!(a, b);
        let (c, _) = s.deposit(&m, &DepositId([2; 16]), b"two", 1000).unwrap();
        assert_ne!(a, c);
        assert_eq!(s.fetch(&m, 10, usize::MAX).unwrap().len(), 2);
        assert_eq!(
            s.stats().unwrap(),
            StoreStats {
                mailboxes: 1,
                items: 2,
                bytes: 6
            }
        );
    }

    #[test]
    fn deposit_to_unregistered_mailbox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let err = s
            .deposit(&MailboxId([9; 32]), &DepositId([1; 16]), b"x", 0)
            .unwrap_err();
        assert_eq!(err, StoreError::UnknownMailbox);
    }

    #[test]
    fn ack_deletes_only_own_items_and_retry_stays_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m1 = registered(&s, 1);
        let m2 = registered(&s, 2);
        let (a, _) = s.deposit(&m1, &DepositId([1; 16]), b"one", 0).unwrap();
        let (b, _) = s.deposit(&m2, &DepositId([1; 16]), b"two", 0).unwrap();
        assert_eq!(s.ack(&m1, &[b]).unwrap(), 0, "another mailbox's item");
        assert_eq!(s.ack(&m1, &[a, a]).unwrap(), 1);
        assert!(s.fetch(&m1, 10, usize::MAX).unwrap().is_empty());
        assert_eq!(s.fetch(&m2, 10, usize::MAX).unwrap().len(), 1);
        // A late retry of the acked deposit is recognised, not stored again.
        let (_, dup) = s.deposit(&m1, &DepositId([1; 16]), b"one", 0).unwrap();
        assert!(dup);
        assert!(s.fetch(&m1, 10, usize::MAX).unwrap().is_empty());
        assert_eq!(s.stats().unwrap().items, 1);
    }

    #[test]
    fn fetch_respects_item_and_byte_limits() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m = registered(&s, 1);
        for i in 0..5u8 {
            s.deposit(&m, &DepositId([i; 16]), &[i; 10], 0).unwrap();
        }
        assert_eq!(s.fetch(&m, 3, usize::MAX).unwrap().len(), 3);
        assert_eq!(s.fetch(&m, 10, 25).unwrap().len(), 2);
        assert_eq!(s.fetch(&m, 10, 1).unwrap().len(), 1, "always at least one");
    }

    #[test]
    fn expiry_removes_old_items_and_deposit_ids() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m = registered(&s, 1);
        let t0 = 100 * DAY;
        s.deposit(&m, &DepositId([1; 16]), b"old", t0).unwrap();
        s.deposit(&m, &DepositId([2; 16]), b"new", t0 + 20 * DAY)
            .unwrap();
        assert_eq!(s.expire(t0 + 29 * DAY).unwrap(), 0);
        assert_eq!(s.expire(t0 + 31 * DAY).unwrap(), 1);
        let left = s.fetch(&m, 10, usize::MAX).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].envelope, b"new");
        // The old deposit id is forgotten with its item.
        let (_, dup) = s
            .deposit(&m, &DepositId([1; 16]), b"old", t0 + 31 * DAY)
            .unwrap();
        assert!(!dup);
        assert_eq!(s.stats().unwrap().items, 2);
    }

    #[test]
    fn quota_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(
            &dir.path().join("db"),
            Duration::from_secs(DAY),
            Quota {
                max_items: 2,
                max_bytes: 100,
            },
        )
        .unwrap();
        let m = registered(&s, 1);
        s.deposit(&m, &DepositId([1; 16]), b"a", 0).unwrap();
        s.deposit(&m, &DepositId([2; 16]), b"b", 0).unwrap();
        assert_eq!(
            s.deposit(&m, &DepositId([3; 16]), b"c", 0).unwrap_err(),
            StoreError::QuotaExceeded
        );
        let big = vec![0; 101];
        let m2 = registered(&s, 2);
        assert_eq!(
            s.deposit(&m2, &DepositId([3; 16]), &big, 0).unwrap_err(),
            StoreError::QuotaExceeded
        );
    }

    #[test]
    fn flush_syncs_new_blob_files_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m = registered(&s, 1);
        // Large envelopes no longer go into sled, but a store written by an older relay holds
        // them there: 1 MiB is far above sled's blob threshold, so it is its own blob file.
        let k = key48(&m, &[1; 16]);
        s.reports.insert(k, vec![7u8; 1 << 20]).unwrap();
        s.expiry_index
            .insert(expiry_key(0, &k), &(1u64 << 20).to_be_bytes()[..])
            .unwrap();
        s.flush().unwrap();
        let synced = s.durability.synced_blobs.lock().unwrap().len();
        assert!(synced >= 1, "the blob file was seen and synced");
        s.flush().unwrap();
        assert_eq!(s.durability.synced_blobs.lock().unwrap().len(), synced);
        let (id, _) = s.deposit(&m, &DepositId([1; 16]), b"", 0).unwrap();
        s.ack(&m, &[id]).unwrap();
        s.flush().unwrap();
        drop(s);
        let s = open(dir.path());
        assert!(s.fetch(&m, 10, usize::MAX).unwrap().is_empty());
    }

    #[test]
    fn io_errors_for_a_full_or_read_only_disk_are_no_space() {
        for kind in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::ReadOnlyFilesystem,
            std::io::ErrorKind::QuotaExceeded,
        ] {
            let e = backend(sled::Error::Io(std::io::Error::from(kind)));
            assert!(matches!(e, StoreError::NoSpace(_)), "{kind:?}");
        }
        let e = backend(sled::Error::Io(std::io::Error::other("x")));
        assert!(matches!(e, StoreError::Backend(_)));
    }

    #[test]
    fn items_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m;
        {
            let s = open(dir.path());
            m = registered(&s, 1);
            s.deposit(&m, &DepositId([1; 16]), b"kept", 0).unwrap();
            s.flush().unwrap();
        }
        let s = open(dir.path());
        assert_eq!(s.mailbox_key(&m).unwrap(), Some([1; 32]));
        assert_eq!(s.fetch(&m, 10, usize::MAX).unwrap()[0].envelope, b"kept");
    }

    #[test]
    fn usage_and_remembered_ids_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Quota {
            max_items: 3,
            max_bytes: 100,
        };
        let reopen = || SledStore::open(&dir.path().join("db"), Duration::from_secs(DAY), quota);
        let m;
        let a;
        {
            let s = reopen().unwrap();
            m = registered(&s, 1);
            (a, _) = s.deposit(&m, &DepositId([1; 16]), b"aaaa", 0).unwrap();
            s.deposit(&m, &DepositId([2; 16]), b"bb", 0).unwrap();
            s.deposit(&m, &DepositId([3; 16]), b"c", 0).unwrap();
            assert_eq!(s.ack(&m, &[a]).unwrap(), 1);
            s.flush().unwrap();
        }
        let s = reopen().unwrap();
        let st = s.stats().unwrap();
        assert_eq!(
            (st.items, st.bytes),
            (2, 3),
            "the acked item is not counted"
        );
        // The acked id is still remembered after a restart.
        assert!(s.deposit(&m, &DepositId([1; 16]), b"aaaa", 0).unwrap().1);
        s.deposit(&m, &DepositId([4; 16]), b"d", 0).unwrap();
        assert_eq!(
            s.deposit(&m, &DepositId([5; 16]), b"e", 0).unwrap_err(),
            StoreError::QuotaExceeded,
            "quota counted from the rebuilt usage"
        );
        // A refused or repeated deposit leaves usage unchanged.
        assert_eq!(s.stats().unwrap().items, 3);
        assert_eq!(s.expire(2 * DAY).unwrap(), 3);
        assert_eq!(
            s.stats().unwrap(),
            StoreStats {
                mailboxes: 1,
                items: 0,
                bytes: 0
            }
        );
        assert!(
            !s.deposit(&m, &DepositId([1; 16]), b"aaaa", 3 * DAY)
                .unwrap()
                .1
        );
    }

    #[test]
    fn crash_leftovers_between_the_writes_are_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = 100 * DAY;
        let m;
        {
            let s = open(dir.path());
            m = registered(&s, 1);
            // Deposit 1 crashed after its expiry entry, before the report (the commit point).
            let k1 = key48(&m, &[1; 16]);
            s.expiry_index
                .insert(expiry_key(coarse_time(t0), &k1), &4u64.to_be_bytes()[..])
                .unwrap();
            // Deposit 2 was acked and crashed after the tombstone, before the removal.
            let (b, _) = s.deposit(&m, &DepositId([2; 16]), b"two", t0).unwrap();
            s.acked.insert(key48(&m, &[2; 16]), &[][..]).unwrap();
            assert_eq!(b, ItemId(flip(&m, &[2; 16])));
            s.flush().unwrap();
        }
        let s = open(dir.path());
        // 1 was never acknowledged to its client: a retry stores it.
        let (id1, dup) = s.deposit(&m, &DepositId([1; 16]), b"one!", t0).unwrap();
        assert!(!dup);
        assert_eq!(id1, ItemId(flip(&m, &[1; 16])), "derived from the key");
        // 2 is still delivered (at least once) and its id stays remembered.
        let got = s.fetch(&m, 10, usize::MAX).unwrap();
        assert_eq!(got.len(), 2);
        assert!(s.deposit(&m, &DepositId([2; 16]), b"two", t0).unwrap().1);
        assert_eq!(s.ack(&m, &[ItemId(flip(&m, &[2; 16]))]).unwrap(), 1);
        assert!(s.deposit(&m, &DepositId([2; 16]), b"two", t0).unwrap().1);
        // Expiry removes everything, including the orphan index entry and the tombstone.
        assert_eq!(s.expire(t0 + 31 * DAY).unwrap(), 1);
        assert!(s.fetch(&m, 10, usize::MAX).unwrap().is_empty());
        assert!(s.expiry_index.is_empty() && s.acked.is_empty());
        assert_eq!(s.stats().unwrap().items, 0);
    }

    #[test]
    fn concurrent_repeats_store_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(open(dir.path()));
        let m = registered(&s, 1);
        let fresh: usize = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let s = s.clone();
                    sc.spawn(move || {
                        (0..50u8)
                            .filter(|i| !s.deposit(&m, &DepositId([*i; 16]), b"x", 0).unwrap().1)
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(fresh, 50);
        assert_eq!(s.stats().unwrap().items, 50);
        assert_eq!(s.fetch(&m, 100, usize::MAX).unwrap().len(), 50);
    }

    /// Files in the envelope directory, temporary ones included.
    fn envelope_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join("db").join("envelopes"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn big(n: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31) ^ n).collect()
    }

    #[test]
    fn large_envelopes_live_in_files_and_leave_with_ack_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m = registered(&s, 1);
        let t0 = 100 * DAY;
        let (a, b) = (big(1, LARGE_ENVELOPE_MIN + 1), big(2, 3 << 20));
        let (ia, dup) = s.deposit(&m, &DepositId([1; 16]), &a, t0).unwrap();
        assert!(!dup);
        // Streamed in uneven pieces, as the listener does.
        let LargeDeposit::Write(mut w) = s
            .begin_large_deposit(&m, &DepositId([2; 16]), b.len() as u64, t0 + 20 * DAY)
            .unwrap()
        else {
            panic!("a new deposit must be written")
        };
        for piece in b.chunks(777_777) {
            w.write(piece).unwrap();
        }
        let (ib, dup) = w.commit().unwrap();
        assert!(!dup);
        assert_eq!(ib, ItemId(flip(&m, &[2; 16])));
        s.deposit(&m, &DepositId([3; 16]), b"small", t0).unwrap();
        s.flush().unwrap();
        // Not in sled's tree, each in its own file, nothing temporary left.
        assert!(s.reports.get(key48(&m, &[1; 16])).unwrap().is_none());
        assert_eq!(envelope_files(dir.path()).len(), 2);
        assert_eq!(
            s.stats().unwrap(),
            StoreStats {
                mailboxes: 1,
                items: 3,
                bytes: (a.len() + b.len() + 5) as u64
            }
        );
        // Small reports come first; all three round-trip.
        let got = s.fetch(&m, 10, usize::MAX).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].envelope, b"small");
        let by_id: HashMap<ItemId, Vec<u8>> = got.into_iter().map(|i| (i.id, i.envelope)).collect();
        assert_eq!(by_id[&ia], a);
        assert_eq!(by_id[&ib], b);
        // The byte limit counts file envelopes too.
        assert_eq!(s.fetch(&m, 10, 5 + a.len()).unwrap().len(), 2);
        // Repeats are recognised before any byte is sent.
        assert!(matches!(
            s.begin_large_deposit(&m, &DepositId([1; 16]), a.len() as u64, t0)
                .unwrap(),
            LargeDeposit::Repeat(id) if id == ia
        ));
        assert!(s.deposit(&m, &DepositId([2; 16]), &b, t0).unwrap().1);
        // Ack removes the file, and the id stays remembered.
        assert_eq!(s.ack(&m, &[ia]).unwrap(), 1);
        assert_eq!(envelope_files(dir.path()).len(), 1);
        assert!(s.deposit(&m, &DepositId([1; 16]), &a, t0).unwrap().1);
        // Expiry removes the other file.
        assert_eq!(s.expire(t0 + 51 * DAY).unwrap(), 2);
        assert!(envelope_files(dir.path()).is_empty());
        assert_eq!(s.stats().unwrap().items, 0);
        assert!(s.large.is_empty() && s.expiry_index.is_empty());
    }

    #[test]
    fn abandoned_or_wrong_length_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m = registered(&s, 1);
        let len = 200_000u64;
        let begin = |d: u8| match s
            .begin_large_deposit(&m, &DepositId([d; 16]), len, 0)
            .unwrap()
        {
            LargeDeposit::Write(w) => w,
            LargeDeposit::Repeat(_) => panic!("not stored yet"),
        };
        // A second upload of the same deposit while the first is still arriving waits.
        let mut w = begin(1);
        w.write(&[1; 1000]).unwrap();
        assert_eq!(
            s.begin_large_deposit(&m, &DepositId([1; 16]), len, 0).err(),
            Some(StoreError::InProgress)
        );
        assert_eq!(envelope_files(dir.path()).len(), 1, "the temporary file");
        assert_eq!(
            s.stats().unwrap().items,
            1,
            "quota is reserved while it arrives"
        );
        // The client went away.
        drop(w);
        assert!(envelope_files(dir.path()).is_empty());
        assert_eq!(s.stats().unwrap().items, 0);
        // Too short, and too long.
        let mut w = begin(1);
        w.write(&[1; 1000]).unwrap();
        assert!(w.commit().is_err());
        let mut w = begin(1);
        assert!(w.write(&vec![1; len as usize + 1]).is_err());
        drop(w);
        assert!(envelope_files(dir.path()).is_empty());
        assert_eq!(s.stats().unwrap().items, 0);
        assert!(s.fetch(&m, 10, usize::MAX).unwrap().is_empty());
        // After all that, the same deposit still goes through.
        let mut w = begin(1);
        w.write(&vec![1; len as usize]).unwrap();
        assert!(!w.commit().unwrap().1);
        assert_eq!(s.fetch(&m, 10, usize::MAX).unwrap().len(), 1);
    }

    #[test]
    fn large_deposits_respect_quota_and_registration() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(
            &dir.path().join("db"),
            Duration::from_secs(DAY),
            Quota {
                max_items: 10,
                max_bytes: 300_000,
            },
        )
        .unwrap();
        let m = registered(&s, 1);
        assert_eq!(
            s.begin_large_deposit(&MailboxId([9; 32]), &DepositId([1; 16]), 100_000, 0)
                .err(),
            Some(StoreError::UnknownMailbox)
        );
        s.deposit(&m, &DepositId([1; 16]), &big(1, 200_000), 0)
            .unwrap();
        assert_eq!(
            s.begin_large_deposit(&m, &DepositId([2; 16]), 200_000, 0)
                .err(),
            Some(StoreError::QuotaExceeded),
            "refused before a byte arrives"
        );
        assert_eq!(envelope_files(dir.path()).len(), 1);
    }

    #[test]
    fn crash_leftovers_in_the_envelope_directory_are_collected_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let m;
        let kept = big(3, 100_000);
        {
            let s = open(dir.path());
            m = registered(&s, 1);
            s.deposit(&m, &DepositId([3; 16]), &kept, 0).unwrap();
            // An upload cut off by the crash (its drop never ran)...
            let (f, p) = s.files.create_temp().unwrap();
            let mut t = TempEnvelope::new(f, p);
            t.write(&[4; 5000]).unwrap();
            // ...and one that was published but not yet indexed when the power went.
            std::fs::write(
                dir.path()
                    .join("db")
                    .join("envelopes")
                    .join(hex::encode(key48(&m, &[5; 16]))),
                b"unindexed",
            )
            .unwrap();
            s.flush().unwrap();
            assert_eq!(envelope_files(dir.path()).len(), 3);
        }
        let s = open(dir.path());
        assert_eq!(
            envelope_files(dir.path()),
            vec![hex::encode(key48(&m, &[3; 16]))]
        );
        let got = s.fetch(&m, 10, usize::MAX).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].envelope, kept);
        assert_eq!(s.stats().unwrap().items, 1);
        // Neither leftover was ever acknowledged: both deposits can be made again.
        assert!(
            !s.deposit(&m, &DepositId([4; 16]), &big(4, 100_000), 0)
                .unwrap()
                .1
        );
        assert!(
            !s.deposit(&m, &DepositId([5; 16]), &big(5, 100_000), 0)
                .unwrap()
                .1
        );
    }

    #[test]
    fn a_lost_envelope_file_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let m = registered(&s, 1);
        s.deposit(&m, &DepositId([1; 16]), &big(1, 100_000), 0)
            .unwrap();
        s.deposit(&m, &DepositId([2; 16]), &big(2, 100_000), 0)
            .unwrap();
        std::fs::remove_file(
            dir.path()
                .join("db")
                .join("envelopes")
                .join(hex::encode(key48(&m, &[1; 16]))),
        )
        .unwrap();
        let got = s.fetch(&m, 10, usize::MAX).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].envelope, big(2, 100_000));
    }
}
