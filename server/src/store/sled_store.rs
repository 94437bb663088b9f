//! The embedded store: one sled database in the relay's data directory.
//!
//! Trees (all integers big-endian):
//!
//! | tree        | key                                         | value                           |
//! |-------------|---------------------------------------------|---------------------------------|
//! | `mailboxes` | mailbox id (32)                             | Ed25519 public key (32)         |
//! | `items`     | mailbox id (32) ‖ item id (16)              | coarse time u64 ‖ envelope      |
//! | `deposits`  | mailbox id (32) ‖ deposit id (16)           | item id (16) ‖ coarse time u64  |
//! | `by_time`   | coarse time u64 ‖ kind u8 ‖ mailbox ‖ id16  | empty                           |
//! | `usage`     | mailbox id (32)                             | items u64 ‖ bytes u64           |
//!
//! `by_time` indexes items (kind 0) and remembered deposit ids (kind 1) for expiry. Deposit ids
//! outlive the ack of their item until expiry, so a retry that arrives after the NGO fetched the
//! report is still recognised and not stored twice.

use super::{Quota, Store, StoreError, StoreStats, StoredItem};
use rand::RngCore;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use std::path::Path;
use std::time::Duration;
use vigil_core::ids::{DepositId, ItemId, MailboxId};
use vigil_core::wire::policy::{coarse_time, expiry_cutoff};

const KIND_ITEM: u8 = 0;
const KIND_DEPOSIT: u8 = 1;

/// Page cache of [`SledStore::open`]; the relay's `store_cache_bytes` default.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// sled-backed [`Store`].
pub struct SledStore {
    db: sled::Db,
    durability: Durability,
    mailboxes: sled::Tree,
    items: sled::Tree,
    deposits: sled::Tree,
    by_time: sled::Tree,
    usage: sled::Tree,
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

fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    }
}

fn key48(mailbox: &MailboxId, id: &[u8; 16]) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(mailbox.as_bytes());
    k[32..].copy_from_slice(id);
    k
}

fn time_key(time: u64, kind: u8, mailbox: &MailboxId, id: &[u8; 16]) -> [u8; 57] {
    let mut k = [0u8; 57];
    k[..8].copy_from_slice(&time.to_be_bytes());
    k[8] = kind;
    k[9..41].copy_from_slice(mailbox.as_bytes());
    k[41..].copy_from_slice(id);
    k
}

fn parse_usage(v: Option<&[u8]>) -> Result<(u64, u64), StoreError> {
    match v {
        None => Ok((0, 0)),
        Some(v) => {
            let a: [u8; 16] = v
                .try_into()
                .map_err(|_| StoreError::Corrupt("usage record"))?;
            let (n, b) = a.split_at(8);
            Ok((
                u64::from_be_bytes(n.try_into().unwrap_or_default()),
                u64::from_be_bytes(b.try_into().unwrap_or_default()),
            ))
        }
    }
}

fn usage_value(items: u64, bytes: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&items.to_be_bytes());
    v[8..].copy_from_slice(&bytes.to_be_bytes());
    v
}

fn item_time(v: &[u8]) -> Result<(u64, &[u8]), StoreError> {
    let (t, env) = v
        .split_first_chunk::<8>()
        .ok_or(StoreError::Corrupt("item record"))?;
    Ok((u64::from_be_bytes(*t), env))
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Remove one item inside a transaction; returns whether it existed.
fn remove_item(
    items: &TransactionalTree,
    by_time: &TransactionalTree,
    usage: &TransactionalTree,
    mailbox: &MailboxId,
    id: &ItemId,
) -> TxResult<bool> {
    let key = key48(mailbox, id.as_bytes());
    let Some(v) = items.remove(&key[..])? else {
        return Ok(false);
    };
    let (time, env) = item_time(&v).map_err(ConflictableTransactionError::Abort)?;
    by_time.remove(&time_key(time, KIND_ITEM, mailbox, id.as_bytes())[..])?;
    let (n, b) = parse_usage(usage.get(mailbox.as_bytes())?.as_deref())
        .map_err(ConflictableTransactionError::Abort)?;
    let (n, b) = (n.saturating_sub(1), b.saturating_sub(env.len() as u64));
    if n == 0 {
        usage.remove(&mailbox.as_bytes()[..])?;
    } else {
        usage.insert(&mailbox.as_bytes()[..], &usage_value(n, b)[..])?;
    }
    Ok(true)
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
        Ok(Self {
            durability,
            mailboxes: t("mailboxes")?,
            items: t("items")?,
            deposits: t("deposits")?,
            by_time: t("by_time")?,
            usage: t("usage")?,
            db,
            expiry,
            quota,
        })
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
        if self.mailbox_key(mailbox)?.is_none() {
            return Err(StoreError::UnknownMailbox);
        }
        let time = coarse_time(now);
        let mut fresh = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let fresh = ItemId(fresh);
        let dkey = key48(mailbox, deposit_id.as_bytes());
        let len = envelope.len() as u64;
        // Built once: a transaction may run its closure several times, and cloning an IVec is
        // cheap where copying a 16 MiB envelope is not.
        let mut v = Vec::with_capacity(8 + envelope.len());
        v.extend_from_slice(&time.to_be_bytes());
        v.extend_from_slice(envelope);
        let value = sled::IVec::from(v);
        (&self.items, &self.deposits, &self.by_time, &self.usage)
            .transaction(|(items, deposits, by_time, usage)| {
                if let Some(v) = deposits.get(&dkey[..])? {
                    let id = v.get(..16).and_then(ItemId::from_slice);
                    let id = id.ok_or(ConflictableTransactionError::Abort(StoreError::Corrupt(
                        "deposit record",
                    )))?;
                    return Ok((id, true));
                }
                let (n, b) = parse_usage(usage.get(mailbox.as_bytes())?.as_deref())
                    .map_err(ConflictableTransactionError::Abort)?;
                if !self.quota.allows(n, b, len) {
                    return Err(ConflictableTransactionError::Abort(
                        StoreError::QuotaExceeded,
                    ));
                }
                items.insert(&key48(mailbox, fresh.as_bytes())[..], value.clone())?;
                let mut dval = [0u8; 24];
                dval[..16].copy_from_slice(fresh.as_bytes());
                dval[16..].copy_from_slice(&time.to_be_bytes());
                deposits.insert(&dkey[..], &dval[..])?;
                by_time.insert(
                    &time_key(time, KIND_ITEM, mailbox, fresh.as_bytes())[..],
                    &[][..],
                )?;
                by_time.insert(
                    &time_key(time, KIND_DEPOSIT, mailbox, deposit_id.as_bytes())[..],
                    &[][..],
                )?;
                usage.insert(&mailbox.as_bytes()[..], &usage_value(n + 1, b + len)[..])?;
                Ok((fresh, false))
            })
            .map_err(tx_err)
    }

    fn fetch(
        &self,
        mailbox: &MailboxId,
        max_items: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredItem>, StoreError> {
        let mut out = Vec::new();
        let mut total = 0usize;
        for kv in self.items.scan_prefix(mailbox.as_bytes()) {
            if out.len() >= max_items as usize {
                break;
            }
            let (k, v) = kv.map_err(backend)?;
            let id = k
                .get(32..)
                .and_then(ItemId::from_slice)
                .ok_or(StoreError::Corrupt("item key"))?;
            let (_, env) = item_time(&v)?;
            if !out.is_empty() && total + env.len() > max_bytes {
                break;
            }
            total += env.len();
            out.push(StoredItem {
                id,
                envelope: env.to_vec(),
            });
        }
        Ok(out)
    }

    fn ack(&self, mailbox: &MailboxId, ids: &[ItemId]) -> Result<u64, StoreError> {
        (&self.items, &self.by_time, &self.usage)
            .transaction(|(items, by_time, usage)| {
                let mut n = 0u64;
                for id in ids {
                    if remove_item(items, by_time, usage, mailbox, id)? {
                        n += 1;
                    }
                }
                Ok(n)
            })
            .map_err(tx_err)
    }

    fn expire(&self, now: u64) -> Result<u64, StoreError> {
        let Some(cutoff) = expiry_cutoff(now, self.expiry.as_secs()) else {
            return Ok(0);
        };
        // Every key whose time is <= cutoff sorts before (cutoff + 1) ‖ ...
        let end = cutoff.saturating_add(1).to_be_bytes();
        let mut removed = 0u64;
        for kv in self.by_time.range(..&end[..]) {
            let (k, _) = kv.map_err(backend)?;
            if k.len() != 57 {
                return Err(StoreError::Corrupt("expiry index key"));
            }
            let kind = k[8];
            let mailbox =
                MailboxId::from_slice(&k[9..41]).ok_or(StoreError::Corrupt("expiry index key"))?;
            let id: [u8; 16] = k[41..57]
                .try_into()
                .map_err(|_| StoreError::Corrupt("expiry index key"))?;
            if kind == KIND_ITEM {
                let existed = (&self.items, &self.by_time, &self.usage)
                    .transaction(|(items, by_time, usage)| {
                        remove_item(items, by_time, usage, &mailbox, &ItemId(id))
                    })
                    .map_err(tx_err)?;
                if existed {
                    removed += 1;
                } else {
                    self.by_time.remove(&k).map_err(backend)?;
                }
            } else {
                self.deposits
                    .remove(&key48(&mailbox, &id)[..])
                    .map_err(backend)?;
                self.by_time.remove(&k).map_err(backend)?;
            }
        }
        Ok(removed)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut s = StoreStats {
            mailboxes: self.mailboxes.len() as u64,
            ..Default::default()
        };
        for kv in self.usage.iter() {
            let (_, v) = kv.map_err(backend)?;
            let (n, b) = parse_usage(Some(&v))?;
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

    fn open(dir: &Path) -> SledStore {
        SledStore::open(
            &dir.join("db"),
            Duration::from_secs(30 * DAY),
            Quota::default(),
        )
        .unwrap()
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
        // 1 MiB is far above sled's blob threshold, so it goes to its own file.
        s.deposit(&m, &DepositId([1; 16]), &vec![7u8; 1 << 20], 0)
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
}
