//! The PostgreSQL store: several relays on one (replicated) database.
//!
//! `vigil-relay serve --store postgres://USER@HOST:PORT/DB` keeps everything the sled store
//! keeps in the tables of [`schema`], so that any relay sharing the database can fetch and
//! acknowledge what another one took. Nothing is kept in a relay's memory that another relay
//! must see: every rule of the [`Store`] contract is a transaction and a constraint.
//!
//! * [`schema`]: the tables and their versioned migrations, applied at start.
//! * [`chunks`]: envelopes and blobs stream into rows of at most [`CHUNK`] bytes and are read
//!   back a range at a time, so no whole envelope is ever in a relay's memory.
//! * [`deposits`]: deposits, listings, reads, acknowledgements and expiry.
//! * [`alerts`]: check-in alerts.
//! * [`blobs`]: attachment blobs.
//!
//! **Durable on return**: each change is one transaction, and a method returns only after its
//! `COMMIT` did, with `synchronous_commit = on` set on every connection (so a primary with a
//! synchronous standby has the change on both before the relay answers "stored").
//!
//! **Racing relays**: a deposit (or an upload of a blob) takes a transaction-scoped advisory
//! lock named by its ids, so a second copy on any relay is answered
//! [`StoreError::InProgress`] at once, and the lock goes with the transaction, whether it
//! commits, fails or its connection dies. Quota is taken by a conditional `UPDATE` of the
//! mailbox row just before `COMMIT`, which checks and counts in one step; a check before the
//! envelope is read answers the common refusal early. Rows are always locked in the order
//! alerts, deposits, blobs, mailboxes (several of one kind in id order), so two relays cannot
//! deadlock. Expiry takes its rows with `FOR UPDATE SKIP LOCKED`, so relays expiring at the
//! same time share the work rather than repeat it, and an alert's release is one `DELETE ...
//! RETURNING`: whichever relay gets there first releases it, the others see it gone.
//!
//! **What the database holds** is what the sled store holds (the same coarse receive times and
//! to-the-minute alert times, the same encodings of alerts and blob lists); see
//! docs/threat-model.md.

mod alerts;
mod blobs;
mod chunks;
mod deposits;
mod notify;
mod schema;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use super::{
    Alert, AlertKeys, AlertTimes, Armed, DepositHook, Deposited, FlushStats, ItemMeta,
    MailboxUsage, Quota, Store, StoreError, StoreFuture, StoreStats, DEFAULT_BLOB_EXPIRY_SECS,
};
use crate::body::BodySource;
use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio_postgres::NoTls;
use vigil_core::ids::{AlertId, BlobId, ItemId, MailboxId};
use vigil_core::wire::deposit::Deposit;
use vigil_core::wire::fetch::BlobRef;
use vigil_core::wire::policy::coarse_expiry;
use vigil_core::wire::upload::Upload;
use vigil_core::wire::{ReleaseNote, ReleaseReason};

/// Largest row of envelope or blob bytes. A deposit holds at most one chunk in memory while it
/// streams into the database (and a read at most one more than it returns): the same order as
/// the sled store's large-deposit buffers, and small enough that PostgreSQL moves each row
/// through its TOAST storage without fuss.
pub const CHUNK: usize = 256 * 1024;

/// Default number of database connections a relay keeps: every request that touches the store
/// holds one for the length of its transaction (a large deposit for as long as its envelope
/// takes to arrive).
pub const DEFAULT_POOL_SIZE: usize = 32;

/// First key of the relay's two-part advisory locks (migrations, periodic jobs); one-part locks
/// (a `bigint`) name deposits and blobs being received. PostgreSQL keeps the two kinds apart.
const LOCK_CLASS: i32 = 0x5649_4731; // "VIG1"

/// A commit waiting longer than this is reported (log, `health`).
const SLOW_COMMIT: Duration = Duration::from_secs(5);

/// How often a relay re-reads the totals it reports (other relays change them too).
const TOTALS_REFRESH: Duration = Duration::from_secs(10);

/// Why the PostgreSQL store could not be opened: each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The `--store` value is not a PostgreSQL URL the relay can use.
    #[error("--store is not a usable postgres:// URL ({0}); give postgres://USER@HOST:PORT/DB")]
    Url(String),
    /// The database could not be reached or refused the connection.
    #[error(
        "cannot connect to the PostgreSQL database ({0}); check that it runs, that the URL's \
         host, port, user and database are right, and that this user may connect"
    )]
    Connect(String),
    /// Creating or migrating the tables failed.
    #[error(
        "cannot create or migrate the relay's tables ({0}); the user needs CREATE on the \
         database (or run the relay once as its owner)"
    )]
    Migrate(String),
    /// The database was migrated by a newer relay.
    #[error(
        "the database holds schema version {found}, newer than this vigil-relay knows \
         ({known}); run the newer vigil-relay (or restore a backup made for this one)"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i32,
        /// The newest version this relay knows.
        known: i32,
    },
}

/// A database error in one line, without its detail (PostgreSQL puts key values, such as
/// mailbox ids, in the detail of a constraint violation).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        // "error connecting to server" says nothing without its cause ("Connection refused").
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// A database error as a store error: a full disk is [`StoreError::NoSpace`] (deposits are
/// refused until space returns), everything else [`StoreError::Backend`].
pub(crate) fn backend(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::OUT_OF_MEMORY => {
            StoreError::NoSpace(describe(&e))
        }
        _ => StoreError::Backend(describe(&e)),
    }
}

/// A pool error as a store error.
fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => backend(e),
        other => StoreError::Backend(format!("database connection: {other}")),
    }
}

/// A count, length or time for a `bigint` column.
pub(crate) fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend("a value too large for the database".into()))
}

/// A `bigint` read back: never negative in a sound database.
pub(crate) fn uint(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative count"))
}

/// A fixed-size id read back from a `bytea` column.
pub(crate) fn id_of<const N: usize>(v: &[u8]) -> Result<[u8; N], StoreError> {
    v.try_into().map_err(|_| StoreError::Corrupt("id length"))
}

/// The one-part advisory lock key of something identified by `a` and `b`, with `salt` telling
/// kinds apart: FNV-1a, fixed forever, so that relays of different builds sharing a database
/// compute the same key. (A collision only makes an unrelated upload wait for a retry.)
pub(crate) fn lock_key(a: &[u8], b: &[u8], salt: u64) -> i64 {
    let mut k: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for byte in a.iter().chain(b) {
        k ^= u64::from(*byte);
        k = k.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(k.to_ne_bytes())
}

/// What the relay reports as totals: read from the database at open and every
/// [`TOTALS_REFRESH`], and moved by this relay's own changes in between, so that `stats` stays
/// a cheap read (the trait asks for no scan).
#[derive(Default)]
struct Totals(Mutex<StoreStats>);

impl Totals {
    fn get(&self) -> StoreStats {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn set(&self, s: StoreStats) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = s;
    }
    /// Apply a change this relay committed.
    fn change(&self, f: impl FnOnce(&mut StoreStats)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// A registered mailbox's public key and expiry (`None`: never), by mailbox.
type KeyCache = HashMap<MailboxId, ([u8; 32], Option<u64>)>;

/// Everything the store's methods and background task share.
pub(crate) struct Inner {
    pool: Pool,
    /// How to open a connection outside the pool (the one that listens for notifications).
    config: tokio_postgres::Config,
    quota: Quota,
    expiry: Duration,
    blob_expiry: AtomicU64,
    /// Registered mailboxes' keys and expiries, once looked up. A key never changes (the id is
    /// its hash), and a mailbox is forgotten only once its expiry is reached, which a
    /// registration can only move later: so an entry is good until its expiry, on any relay.
    keys: RwLock<KeyCache>,
    totals: Totals,
    /// The second of the last write of each blob this relay wrote (the database keeps the
    /// hour): blob expiry counts from it while this relay runs, as the sled store's memory does.
    /// Entries go with their blob, or once past any expiry's reach.
    touched: Mutex<HashMap<BlobId, u64>>,
    /// Transactions that stream a large payload from the network (large deposits, upload
    /// chunks) hold their connection for as long as the client takes to send it; at most half
    /// the pool may do so at once, so that slow uploads cannot take every connection from
    /// small deposits, fetches and acknowledgements.
    streaming: tokio::sync::Semaphore,
    /// Transactions committed and failed, for the operator (`flush_stats`).
    commits: AtomicU64,
    failures: AtomicU64,
    last_ok: AtomicBool,
    /// A commit took longer than [`SLOW_COMMIT`] and none has been quick since.
    slow: AtomicBool,
    /// Time spent in commits, and the longest one, microseconds.
    commit_micros: AtomicU64,
    max_commit_micros: AtomicU64,
}

impl Inner {
    /// A connection from the pool. Not getting one counts as a failed commit: nothing can be
    /// stored, and `health` should say so.
    pub(crate) async fn conn(&self) -> Result<Object, StoreError> {
        match self.pool.get().await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.last_ok.store(false, Ordering::Relaxed);
                Err(pool_error(e))
            }
        }
    }

    /// Commit `tx`, durably. A commit still waiting after [`SLOW_COMMIT`] (typically: the
    /// primary waits for a synchronous standby that is gone) is logged once and makes `health`
    /// fail until a commit is quick again; it goes on waiting, as the database decides.
    pub(crate) async fn commit(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
    ) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let commit = tx.commit();
        tokio::pin!(commit);
        let done = match tokio::time::timeout(SLOW_COMMIT, &mut commit).await {
            Ok(done) => done,
            Err(_) => {
                self.last_ok.store(false, Ordering::Relaxed);
                if !self.slow.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "a commit has waited {} s for the database: if the primary has a \
                         synchronous standby configured, check that one is connected \
                         (docs/operations.md, \"Failover\")",
                        SLOW_COMMIT.as_secs()
                    );
                }
                commit.await
            }
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_commit_micros.fetch_max(micros, Ordering::Relaxed);
        if micros < SLOW_COMMIT.as_micros() as u64 && done.is_ok() {
            self.slow.store(false, Ordering::Relaxed);
        }
        self.committed(done)
    }

    /// Remember that this relay wrote blob `blob` at `now`.
    pub(crate) fn touched_now(&self, blob: BlobId, now: u64) {
        let mut t = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        t.insert(blob, now);
    }

    /// When this relay last wrote `blob`, if it did.
    pub(crate) fn touched_of(&self, blob: &BlobId) -> Option<u64> {
        let t = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        t.get(blob).copied()
    }

    /// Forget the write times of deleted blobs.
    pub(crate) fn forget_touched(&self, blobs: &[BlobId]) {
        let mut t = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        for b in blobs {
            t.remove(b);
        }
    }

    /// Forget write times before `before`: their blobs are decided by the stored hour.
    pub(crate) fn forget_touched_before(&self, before: u64) {
        let mut t = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        t.retain(|_, at| *at >= before);
    }

    /// A place among the transactions streaming a payload of `len` bytes, if it is large
    /// (see `streaming`); small payloads are in memory already or arrive at once.
    pub(crate) async fn streaming_slot(
        &self,
        len: usize,
    ) -> Result<Option<tokio::sync::SemaphorePermit<'_>>, StoreError> {
        if len <= super::LARGE_ENVELOPE_MIN {
            return Ok(None);
        }
        self.streaming
            .acquire()
            .await
            .map(Some)
            .map_err(|_| StoreError::Backend("the store is closing".into()))
    }

    /// Note how a commit went.
    pub(crate) fn committed<T>(
        &self,
        r: Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        match r {
            Ok(v) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                if !self.slow.load(Ordering::Relaxed) {
                    self.last_ok.store(true, Ordering::Relaxed);
                }
                Ok(v)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.last_ok.store(false, Ordering::Relaxed);
                Err(backend(e))
            }
        }
    }

    /// Re-read the totals from the database.
    async fn refresh_totals(&self) -> Result<(), StoreError> {
        let c = self.conn().await?;
        let row = c
            .query_one(
                "SELECT (SELECT count(*) FROM mailboxes),
                        (SELECT coalesce(sum(items), 0)::bigint FROM mailboxes),
                        (SELECT coalesce(sum(bytes), 0)::bigint FROM mailboxes),
                        (SELECT count(*) FROM alerts),
                        (SELECT count(*) FROM blobs),
                        (SELECT coalesce(sum(have), 0)::bigint FROM blobs)",
                &[],
            )
            .await
            .map_err(backend)?;
        let n = |i: usize| -> Result<u64, StoreError> { uint(row.try_get(i).map_err(backend)?) };
        self.totals.set(StoreStats {
            mailboxes: n(0)?,
            items: n(1)?,
            bytes: n(2)?,
            alerts: n(3)?,
            blobs: n(4)?,
            blob_bytes: n(5)?,
        });
        Ok(())
    }

    /// `mailbox`'s public key if it is registered (cached while its expiry is ahead).
    pub(crate) async fn key_of(&self, mailbox: MailboxId) -> Result<Option<[u8; 32]>, StoreError> {
        let now = crate::clock::now_unix();
        if let Some((k, expires)) = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&mailbox)
        {
            if expires.is_none_or(|e| now < e) {
                return Ok(Some(*k));
            }
        }
        let c = self.conn().await?;
        let row = c
            .query_opt(
                "SELECT public_key, expires FROM mailboxes WHERE id = $1",
                &[&mailbox.as_bytes().as_slice()],
            )
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            self.forget_keys(&[mailbox]);
            return Ok(None);
        };
        let key: [u8; 32] = id_of(row.try_get::<_, &[u8]>(0).map_err(backend)?)?;
        let expires = (row.try_get::<_, Option<i64>>(1).map_err(backend)?)
            .map(uint)
            .transpose()?;
        self.remember_key(mailbox, key, expires);
        Ok(Some(key))
    }

    fn remember_key(&self, mailbox: MailboxId, key: [u8; 32], expires: Option<u64>) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(mailbox, (key, expires));
    }

    /// Drop cached keys of mailboxes that were forgotten.
    pub(crate) fn forget_keys(&self, mailboxes: &[MailboxId]) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        for m in mailboxes {
            keys.remove(m);
        }
    }
}

/// PostgreSQL-backed [`Store`]; see the module docs.
pub struct PgStore {
    inner: Arc<Inner>,
    /// Stops the background tasks (totals, notifications).
    cancel: tokio_util::sync::CancellationToken,
    /// Cancels `cancel` when the store is dropped.
    _stop: tokio_util::sync::DropGuard,
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://USER@HOST:PORT/DB`), create or migrate the
    /// tables, and keep at most `pool_size` connections. Items older than `expiry` are removed
    /// by [`Store::expire`]; each mailbox holds at most `quota`.
    pub async fn open(
        url: &str,
        expiry: Duration,
        quota: Quota,
        pool_size: usize,
    ) -> Result<Self, PgError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| PgError::Url(e.to_string()))?;
        if config.get_hosts().is_empty() {
            return Err(PgError::Url("no host".into()));
        }
        // Durable means on disk (and on a synchronous standby, where one is configured)
        // before COMMIT returns, whatever the server's default.
        config.options("-c synchronous_commit=on");
        // Only a primary takes writes: with several hosts in the URL (a primary and its
        // standbys), connections go to whichever is the primary now, also after a failover.
        config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
        config.application_name("vigil-relay");
        config.connect_timeout(Duration::from_secs(10));
        config.keepalives_idle(Duration::from_secs(60));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| PgError::Connect(e.to_string()))?;
        let mut first = pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => PgError::Connect(describe(&e)),
            other => PgError::Connect(other.to_string()),
        })?;
        schema::migrate(&mut first).await?;
        drop(first);
        let inner = Arc::new(Inner {
            streaming: tokio::sync::Semaphore::new((pool_size / 2).max(1)),
            touched: Mutex::default(),
            pool,
            config,
            quota,
            expiry,
            blob_expiry: AtomicU64::new(DEFAULT_BLOB_EXPIRY_SECS),
            keys: RwLock::default(),
            totals: Totals::default(),
            commits: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_ok: AtomicBool::new(true),
            slow: AtomicBool::new(false),
            commit_micros: AtomicU64::new(0),
            max_commit_micros: AtomicU64::new(0),
        });
        inner
            .refresh_totals()
            .await
            .map_err(|e| PgError::Connect(e.to_string()))?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let (weak, stop) = (Arc::downgrade(&inner), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(TOTALS_REFRESH) => {}
                }
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = inner.refresh_totals().await {
                    tracing::warn!("cannot read the store's totals: {e}");
                }
            }
        });
        Ok(Self {
            inner,
            cancel: cancel.clone(),
            _stop: cancel.drop_guard(),
        })
    }
}

impl Store for PgStore {
    fn register(
        &self,
        mailbox: MailboxId,
        public_key: [u8; 32],
        expires: Option<u64>,
    ) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async move {
            let inner = &self.inner;
            let asked = expires.map(coarse_expiry).map(int).transpose()?;
            let c = inner.conn().await?;
            // The id is a hash of the key, so an existing row necessarily holds the same key.
            // The expiry is merged as `merged_expiry` says: none beats any, else the later.
            let row = c
                .query_one(
                    "INSERT INTO mailboxes (id, public_key, expires) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET expires =
                        CASE WHEN mailboxes.expires IS NULL OR EXCLUDED.expires IS NULL THEN NULL
                             ELSE greatest(mailboxes.expires, EXCLUDED.expires) END
                     RETURNING expires, xmax = 0",
                    &[
                        &mailbox.as_bytes().as_slice(),
                        &public_key.as_slice(),
                        &asked,
                    ],
                )
                .await;
            let row = inner.committed(row)?;
            let expires = (row.try_get::<_, Option<i64>>(0).map_err(backend)?)
                .map(uint)
                .transpose()?;
            let inserted: bool = row.try_get(1).map_err(backend)?;
            inner.remember_key(mailbox, public_key, expires);
            if inserted {
                inner.totals.change(|t| t.mailboxes += 1);
            }
            Ok(expires)
        })
    }

    fn set_prekey<'a>(&'a self, mailbox: MailboxId, bundle: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let c = self.inner.conn().await?;
            let n = c
                .execute(
                    "UPDATE mailboxes SET prekey = $2 WHERE id = $1",
                    &[&mailbox.as_bytes().as_slice(), &bundle],
                )
                .await;
            Ok(self.inner.committed(n)? > 0)
        })
    }

    fn prekey(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let c = self.inner.conn().await?;
            let row = c
                .query_opt(
                    "SELECT prekey FROM mailboxes WHERE id = $1",
                    &[&mailbox.as_bytes().as_slice()],
                )
                .await
                .map_err(backend)?;
            Ok(row
                .map(|r| r.try_get::<_, Option<Vec<u8>>>(0))
                .transpose()
                .map_err(backend)?
                .flatten())
        })
    }

    fn mailbox_key(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<[u8; 32]>> {
        Box::pin(self.inner.key_of(mailbox))
    }

    fn deposit<'a>(
        &'a self,
        head: Deposit,
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        Box::pin(deposits::deposit(&self.inner, head, &[], now, body))
    }

    fn deposit_blobs<'a>(
        &'a self,
        head: Deposit,
        blobs: &'a [BlobId],
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        Box::pin(deposits::deposit(&self.inner, head, blobs, now, body))
    }

    fn list(
        &self,
        mailbox: MailboxId,
        max_items: u32,
        max_bytes: u64,
    ) -> StoreFuture<'_, Vec<ItemMeta>> {
        Box::pin(deposits::list(&self.inner, mailbox, max_items, max_bytes))
    }

    fn read(
        &self,
        mailbox: MailboxId,
        item: ItemMeta,
        offset: u64,
        max: usize,
    ) -> StoreFuture<'_, Option<Bytes>> {
        Box::pin(deposits::read(&self.inner, mailbox, item, offset, max))
    }

    fn usage(&self, mailbox: MailboxId) -> StoreFuture<'_, MailboxUsage> {
        Box::pin(deposits::usage(&self.inner, mailbox))
    }

    fn ack<'a>(&'a self, mailbox: MailboxId, ids: &'a [ItemId]) -> StoreFuture<'a, u64> {
        Box::pin(deposits::ack(&self.inner, mailbox, ids))
    }

    fn expire(&self, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            blobs::expire(&self.inner, now).await?;
            let forgotten = deposits::forget_mailboxes(&self.inner, now).await?;
            Ok(forgotten + deposits::expire(&self.inner, now).await?)
        })
    }

    fn arm(&self, alert: Alert) -> StoreFuture<'_, Armed> {
        Box::pin(alerts::arm(&self.inner, alert))
    }

    fn alert_keys(&self, id: AlertId) -> StoreFuture<'_, Option<AlertKeys>> {
        Box::pin(alerts::keys(&self.inner, id))
    }

    fn check_in(&self, id: AlertId, deadline: u64, now: u64) -> StoreFuture<'_, bool> {
        Box::pin(alerts::check_in(&self.inner, id, deadline, now))
    }

    fn release(&self, id: AlertId, reason: ReleaseReason, now: u64) -> StoreFuture<'_, bool> {
        Box::pin(alerts::release(&self.inner, id, reason, now))
    }

    fn disarm(&self, id: AlertId) -> StoreFuture<'_, bool> {
        Box::pin(alerts::disarm(&self.inner, id))
    }

    fn alerts(&self) -> StoreFuture<'_, Vec<AlertTimes>> {
        Box::pin(alerts::times(&self.inner))
    }

    fn note(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Option<ReleaseNote>> {
        Box::pin(deposits::note(&self.inner, mailbox, item))
    }

    fn upload<'a>(
        &'a self,
        head: Upload,
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, u64> {
        Box::pin(blobs::upload(&self.inner, head, now, body))
    }

    fn item_blobs(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Vec<BlobRef>> {
        Box::pin(deposits::item_blobs(&self.inner, mailbox, item))
    }

    fn blob_len(&self, blob: BlobId) -> StoreFuture<'_, Option<u64>> {
        Box::pin(blobs::complete_len(&self.inner, blob))
    }

    fn read_blob(&self, blob: BlobId, offset: u64, max: usize) -> StoreFuture<'_, Option<Bytes>> {
        Box::pin(blobs::read(&self.inner, blob, offset, max))
    }

    fn room(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<u64>> {
        Box::pin(deposits::room(&self.inner, mailbox))
    }

    fn set_blob_expiry(&self, secs: u64) {
        self.inner.blob_expiry.store(secs, Ordering::Relaxed);
    }

    fn stats(&self) -> StoreStats {
        self.inner.totals.get()
    }

    /// Each commit is one "flush" (the database groups them itself), timed from `COMMIT` sent
    /// to its answer.
    fn flush_stats(&self) -> FlushStats {
        let commits = self.inner.commits.load(Ordering::Relaxed);
        FlushStats {
            flushes: commits,
            waiters: commits,
            max_batch: u64::from(commits > 0),
            flush_micros: self.inner.commit_micros.load(Ordering::Relaxed),
            max_flush_micros: self.inner.max_commit_micros.load(Ordering::Relaxed),
            failures: self.inner.failures.load(Ordering::Relaxed),
        }
    }

    fn last_flush_ok(&self) -> bool {
        self.inner.last_ok.load(Ordering::Relaxed)
    }

    /// Every change was committed before its method returned: nothing to wait for.
    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn shared(&self) -> bool {
        true
    }

    /// Listen for deposits on a connection of its own (`notify`), until the store is dropped.
    fn on_deposits(&self, hook: DepositHook) {
        let (config, cancel) = (self.inner.config.clone(), self.cancel.clone());
        tokio::spawn(notify::listen(config, hook, cancel));
    }
}
