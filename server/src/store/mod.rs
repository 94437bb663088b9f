//! Storage behind one small trait, [`Store`], so the relay runs on any backend that passes the
//! conformance suite (`store/conformance.rs`): today the embedded sled store
//! ([`SledStore`]), later a distributed one. [`MemoryStore`] passes the same suite; it keeps
//! everything in memory, nothing across a restart, and is for tests, examples and as a reference
//! for new backends, never for production (the relay program does not offer it).
//!
//! What a store may hold: mailbox ids, mailbox public keys, ciphertext envelopes, the deposit ids
//! senders chose (for idempotent retries) and a coarse receive time (rounded to
//! `RECEIVE_TIME_GRANULARITY_SECS`) for expiry. Never IP addresses, never plaintext, never
//! anything about who deposited.
//!
//! For check-in alerts (`docs/protocol.md`, "Check-in alerts") a store also holds each armed
//! alert: its id, `every` and `grace`, its two public keys, its wall-clock deadline, when it was
//! armed and last checked in to (to the minute), and its sealed envelopes per mailbox; and, beside
//! each item released from an alert, its release note. Never anything about who armed it.
//!
//! The contract every backend keeps:
//!
//! * **Durable on return.** A method that changes something ([`Store::register`],
//!   [`Store::deposit`], [`Store::ack`], [`Store::expire`]) returns `Ok` only once the change is
//!   on stable storage; the relay answers "stored" right after `deposit` returns. How (group
//!   commit, a transaction) is the backend's business.
//! * **The payload is the store's business.** `deposit` gets the envelope as a
//!   [`BodySource`](crate::body::BodySource), whatever its size, and decides where it goes (a
//!   small one into the database, a large one into a file of its own...) and whether the work
//!   runs inline or on a blocking thread. It reads nothing it does not need: a repeat or a
//!   refusal is answered before the envelope is read.
//! * **Idempotent deposits** per (mailbox, deposit id), remembered until the item expires, even
//!   after it was acknowledged.
//! * **Fetch order**: small envelopes (the urgent text) before large ones; within each, a stable
//!   order. A listing stops at the first item that does not fit, so items are never skipped.
//! * **Alerts**: [`Store::arm`], [`Store::check_in`], [`Store::release`] and [`Store::disarm`]
//!   are durable on return too. An armed alert's envelopes count against their mailboxes' quotas
//!   from arming on (without showing in [`Store::usage`], which is what waits to be fetched). A
//!   release is one atomic change: the alert is either still armed or gone with every envelope
//!   an item of its mailbox, with its note; releasing twice is releasing once.
//! * **Blobs** (attachments, `docs/protocol.md`, "Attachments"): [`Store::upload`] appends a
//!   chunk only at the blob's durable length and returns once it is durable;
//!   [`Store::deposit_blobs`] stores a deposit only if every blob it names is complete, and the
//!   item then refers to them, their bytes counted against its mailbox's quota. One copy per
//!   store however many items refer to it; the last reference gone (acknowledged, expired)
//!   deletes it; a blob nobody refers to is deleted once unwritten for the blob expiry. A
//!   backend holds a blob's bytes without ever holding a whole blob in memory (the memory
//!   store excepted, which holds everything there).
//! * **Mailbox lifetimes** (reply mailboxes, issue 15): a registration may carry an expiry,
//!   which the store keeps to the day ([`coarse_expiry`](vigil_core::wire::policy::coarse_expiry):
//!   rounded up to the start of a UTC day) and merges with what it held
//!   ([`merged_expiry`](vigil_core::wire::policy::merged_expiry): the later wins, a
//!   registration without an expiry makes the mailbox permanent). [`Store::expire`] forgets a
//!   mailbox once its expiry is reached: the registration (so deposits to it are refused as to
//!   any unknown mailbox), its items, tombstones and notes, and its references to blobs
//!   (deleting those nothing else refers to), durably, as one would by acknowledging
//!   everything. A mailbox registered without an expiry (an NGO's) is never forgotten.

pub(crate) mod blobs;
pub mod memory;
pub mod pg;
pub mod sled_store;
pub mod space;

#[cfg(test)]
pub(crate) mod conformance;

use crate::body::{BodyError, BodySource, BoxFuture};
use bytes::Bytes;
use vigil_core::ids::{AlertId, BlobId, ItemId, MailboxId};
use vigil_core::wire::arm::Arm;
use vigil_core::wire::deposit::Deposit;
use vigil_core::wire::fetch::BlobRef;
use vigil_core::wire::upload::Upload;

pub use blobs::DEFAULT_BLOB_EXPIRY_SECS;
use vigil_core::wire::policy::coarse_minute;
use vigil_core::wire::{ReleaseNote, ReleaseReason};

pub use memory::MemoryStore;
pub use pg::{PgError, PgStore};
pub use sled_store::{FlushCounters, FlushStats, SledStore};
pub use vigil_core::wire::policy::Quota;

/// Envelopes longer than this are "large": every backend lists them after all small ones (the
/// urgent text first), and the sled store keeps them in files of their own.
pub const LARGE_ENVELOPE_MIN: usize = 64 * 1024;

/// A store operation's future.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Told of deposits committed through any relay sharing a store: `Some(mailbox)` for a
/// deposit into it, `None` when any mailbox may have gained items (an alert's release, or
/// notifications that may have been missed). The relay wakes its live-inbox waiters with it.
pub type DepositHook = std::sync::Arc<dyn Fn(Option<MailboxId>) + Send + Sync>;

/// What a deposit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deposited {
    /// The envelope was stored now.
    New,
    /// The deposit id was already remembered (stored, or acknowledged and not yet expired):
    /// nothing was written, and the envelope need not have been sent.
    Repeat,
}

/// One item of a mailbox, as [`Store::list`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemMeta {
    /// The relay's id for the item, used to acknowledge it.
    pub id: ItemId,
    /// The envelope's length.
    pub len: u64,
    /// Where the backend keeps it (backend-specific).
    pub(crate) place: u8,
}

/// Totals, for the operator. Contains no ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreStats {
    /// Registered mailboxes.
    pub mailboxes: u64,
    /// Items waiting to be fetched.
    pub items: u64,
    /// Envelope bytes waiting to be fetched.
    pub bytes: u64,
    /// Check-in alerts armed and not yet released or disarmed.
    #[serde(default)]
    pub alerts: u64,
    /// Attachment blobs held, complete or partial.
    #[serde(default)]
    pub blobs: u64,
    /// Their bytes on disk.
    #[serde(default)]
    pub blob_bytes: u64,
}

/// A check-in alert as a store keeps it: the Arm request as it came (its id, schedule, keys and
/// envelopes) and the times the relay keeps for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// What was armed.
    pub arm: Arm,
    /// When it is released unless checked in to: Unix seconds by the relay's wall clock (the
    /// relay measures time to it on its monotonic clock while it runs; see `alerts.rs`).
    pub deadline: u64,
    /// When it was armed, to the minute.
    pub armed_at: u64,
    /// When the last check-in by the check-in key came, to the minute; 0 for none yet.
    pub last_checkin_at: u64,
}

impl Alert {
    /// A new alert armed at `now` (Unix seconds) with its first deadline.
    pub fn armed(arm: Arm, now: u64, deadline: u64) -> Self {
        Self {
            arm,
            deadline,
            armed_at: coarse_minute(now),
            last_checkin_at: 0,
        }
    }

    /// The note on its envelopes if it is released for `reason` at `now`.
    pub fn note(&self, reason: ReleaseReason, now: u64) -> ReleaseNote {
        ReleaseNote {
            reason,
            armed_at: self.armed_at,
            last_checkin_at: self.last_checkin_at,
            released_at: coarse_minute(now),
        }
    }
}

/// What the release task needs of an armed alert when the relay starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertTimes {
    /// The alert.
    pub id: AlertId,
    /// Its grace, in seconds: how long a restarted relay waits before releasing it if it is
    /// overdue.
    pub grace: u32,
    /// Its stored wall-clock deadline.
    pub deadline: u64,
}

/// The two public keys a check-in or disarm may be signed with, and the schedule a check-in
/// renews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertKeys {
    /// The check-in key.
    pub checkin: [u8; 32],
    /// The duress key.
    pub duress: [u8; 32],
    /// Seconds between check-ins.
    pub every: u32,
    /// Seconds of grace after a missed one.
    pub grace: u32,
}

/// What arming did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Armed {
    /// The alert is armed now.
    New,
    /// The same alert was armed before (a retry after a lost answer); nothing was written.
    Repeat,
}

pub(crate) use vigil_core::wire::alert::released_deposit_id as alert_deposit_id;

/// One mailbox's usage, for its owner's `status` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxUsage {
    /// Items waiting to be fetched (acknowledged ones are not counted).
    pub items: u64,
    /// Their envelope bytes.
    pub bytes: u64,
    /// The quota the mailbox is held to.
    pub quota: Quota,
    /// How long an unacknowledged item is kept, in seconds.
    pub expiry_secs: u64,
}

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Deposit into a mailbox nobody registered.
    #[error("mailbox is not registered at this relay")]
    UnknownMailbox,
    /// The mailbox is full.
    #[error("mailbox is full")]
    QuotaExceeded,
    /// A stored record could not be parsed: the database is damaged.
    #[error("stored record is damaged: {0}")]
    Corrupt(&'static str),
    /// The disk is full (or over quota) or the data directory is read-only. New deposits and
    /// registrations are refused until space returns; fetches and acks keep working.
    #[error("relay disk is full or read-only: {0}")]
    NoSpace(String),
    /// An alert with this id is armed with other content.
    #[error("an alert with this id is armed with other content")]
    AlertConflict,
    /// Another connection is uploading the same deposit (or blob) right now; retry shortly.
    #[error("the same deposit is being received on another connection")]
    InProgress,
    /// An upload names another total length than the blob's first upload did.
    #[error("the blob was started with a total of {total} bytes")]
    BlobConflict {
        /// The total the store holds.
        total: u64,
    },
    /// A deposit refers to a blob that is not (yet) complete at this relay.
    #[error("a blob the deposit refers to is not complete")]
    BlobIncomplete,
    /// The payload could not be read to its end (the client went away, was too slow, or sent
    /// too few or too many bytes): nothing was stored.
    #[error("{0}")]
    Body(BodyError),
    /// The storage backend failed (I/O error, ...).
    #[error("storage backend failed: {0}")]
    Backend(String),
}

impl From<BodyError> for StoreError {
    fn from(e: BodyError) -> Self {
        StoreError::Body(e)
    }
}

impl StoreError {
    /// Classify an I/O error: out of space, over quota and read-only file system become
    /// [`StoreError::NoSpace`], everything else [`StoreError::Backend`].
    pub fn from_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::StorageFull | ErrorKind::ReadOnlyFilesystem | ErrorKind::QuotaExceeded => {
                StoreError::NoSpace(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<vigil_fs::FsError> for StoreError {
    fn from(e: vigil_fs::FsError) -> Self {
        match e.io_error() {
            Some(io) => StoreError::from_io(io),
            None => StoreError::Backend(e.to_string()),
        }
    }
}

/// What the relay needs from storage. Every method is safe to call from many requests at once.
pub trait Store: Send + Sync + 'static {
    /// Register `mailbox` for `public_key` (idempotent), durably. The caller has checked that
    /// `mailbox == MailboxId::for_key(public_key)` and that the registrant holds the key.
    ///
    /// `expires` (Unix seconds; the store keeps it rounded up to a whole UTC day): forget the
    /// mailbox at the first [`Store::expire`] at or after it; `None`: keep it. Merged with an
    /// earlier registration of the same mailbox as
    /// [`merged_expiry`](vigil_core::wire::policy::merged_expiry) says, so a registration
    /// never shortens a mailbox's life. Returns the mailbox's expiry after this registration.
    fn register(
        &self,
        mailbox: MailboxId,
        public_key: [u8; 32],
        expires: Option<u64>,
    ) -> StoreFuture<'_, Option<u64>>;

    /// The public key registered for `mailbox`, if any.
    fn mailbox_key(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<[u8; 32]>>;

    /// Keep `bundle` as `mailbox`'s prekey bundle (issue 16), replacing any earlier one,
    /// durably; `false` (and nothing kept) when the mailbox is not registered. The bundle is
    /// opaque here (reporters check it against their card) and at most
    /// [`MAX_BUNDLE_LEN`](vigil_core::wire::publish_prekey::MAX_BUNDLE_LEN) bytes; it goes
    /// when the mailbox goes.
    fn set_prekey<'a>(&'a self, mailbox: MailboxId, bundle: &'a [u8]) -> StoreFuture<'a, bool>;

    /// The prekey bundle kept for `mailbox`, if any.
    fn prekey(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<Vec<u8>>>;

    /// Store the envelope read from `body` (`head.envelope_len` bytes) in `head.mailbox`,
    /// durably; idempotent per (mailbox, deposit id). Checks the mailbox, a repeat and the quota
    /// before it reads the envelope. `now` is Unix seconds.
    fn deposit<'a>(
        &'a self,
        head: Deposit,
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited>;

    /// Up to `max_items` items of `mailbox`, in fetch order, stopping before their envelopes
    /// would sum to more than `max_bytes` (but at least one if the mailbox is not empty). An
    /// item whose envelope is lost or damaged is left out (and logged without ids).
    fn list(
        &self,
        mailbox: MailboxId,
        max_items: u32,
        max_bytes: u64,
    ) -> StoreFuture<'_, Vec<ItemMeta>>;

    /// Up to `max` bytes of `item`'s envelope from `offset`, or `None` if the item is gone
    /// (acknowledged or expired since it was listed).
    fn read(
        &self,
        mailbox: MailboxId,
        item: ItemMeta,
        offset: u64,
        max: usize,
    ) -> StoreFuture<'_, Option<Bytes>>;

    /// How much `mailbox` holds against its quota (cheap: no scan). A mailbox that holds
    /// nothing (or is not registered) has zero items.
    fn usage(&self, mailbox: MailboxId) -> StoreFuture<'_, MailboxUsage>;

    /// Delete `ids` from `mailbox`, durably; returns how many existed. Ids of other mailboxes
    /// are not touched; the deposit ids stay remembered until expiry.
    fn ack<'a>(&'a self, mailbox: MailboxId, ids: &'a [ItemId]) -> StoreFuture<'a, u64>;

    /// Delete items (and remembered deposit ids) older than the store's expiry at `now`, and
    /// mailboxes whose registered expiry is at or before `now` with everything they hold,
    /// durably; returns how many items were deleted.
    fn expire(&self, now: u64) -> StoreFuture<'_, u64>;

    /// Arm `alert`, durably: every envelope's mailbox must be registered
    /// ([`StoreError::UnknownMailbox`]) and have room for it ([`StoreError::QuotaExceeded`]),
    /// or nothing is armed. Idempotent per alert id: the same alert again is
    /// [`Armed::Repeat`], another one under the same id [`StoreError::AlertConflict`].
    fn arm(&self, alert: Alert) -> StoreFuture<'_, Armed>;

    /// The keys of an armed alert, if it is armed.
    fn alert_keys(&self, id: AlertId) -> StoreFuture<'_, Option<AlertKeys>>;

    /// A check-in by the check-in key at `now` (Unix seconds): store `deadline` as the alert's
    /// new deadline and `now`, to the minute, as its last check-in, durably. False if the alert
    /// is not armed (any more).
    fn check_in(&self, id: AlertId, deadline: u64, now: u64) -> StoreFuture<'_, bool>;

    /// Release the alert for `reason` at `now`, durably and atomically: each envelope becomes an
    /// item of its mailbox (fetched, acknowledged and expired like any other, its receive time
    /// `now`) with the alert's [`ReleaseNote`] beside it, and the alert is gone. Its envelopes'
    /// quota, held since arming, passes to the items. False if the alert is not armed (already
    /// released, or disarmed): nothing changes.
    fn release(&self, id: AlertId, reason: ReleaseReason, now: u64) -> StoreFuture<'_, bool>;

    /// Delete the alert and its envelopes, durably, giving back their quota. False if it was not
    /// armed.
    fn disarm(&self, id: AlertId) -> StoreFuture<'_, bool>;

    /// Every armed alert's id, grace and stored deadline (when the relay starts).
    fn alerts(&self) -> StoreFuture<'_, Vec<AlertTimes>>;

    /// The release note of `item` of `mailbox`, if it was released from an alert.
    fn note(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Option<ReleaseNote>>;

    /// Append the chunk read from `body` (`head.chunk_len` bytes) to blob `head.blob` if
    /// `head.offset` is where the blob ends, durably; returns the blob's durable length. Writes
    /// nothing (and reads nothing) when the offset is elsewhere or the chunk is empty: that
    /// length is the answer. [`StoreError::BlobConflict`] if the blob has another total,
    /// [`StoreError::InProgress`] if it is being uploaded on another request. `now` is Unix
    /// seconds.
    fn upload<'a>(
        &'a self,
        head: Upload,
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, u64>;

    /// [`Store::deposit`] of an envelope that refers to `blobs`: refused with
    /// [`StoreError::BlobIncomplete`] unless every one is complete, and with
    /// [`StoreError::QuotaExceeded`] unless the mailbox has room for the envelope and the
    /// blobs' bytes. A new item holds a reference to each blob; a repeat changes nothing.
    fn deposit_blobs<'a>(
        &'a self,
        head: Deposit,
        blobs: &'a [BlobId],
        now: u64,
        body: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited>;

    /// The blobs `item` of `mailbox` refers to (none for an item deposited without).
    fn item_blobs(&self, mailbox: MailboxId, item: ItemMeta) -> StoreFuture<'_, Vec<BlobRef>>;

    /// The length of blob `blob` if it is complete here.
    fn blob_len(&self, blob: BlobId) -> StoreFuture<'_, Option<u64>>;

    /// Up to `max` bytes of complete blob `blob` from `offset`, or `None` if it is gone (or not
    /// complete).
    fn read_blob(&self, blob: BlobId, offset: u64, max: usize) -> StoreFuture<'_, Option<Bytes>>;

    /// Bytes `mailbox` may still hold under its quota, or `None` if it is not registered.
    fn room(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<u64>>;

    /// Keep blobs no item refers to for `secs` after their last write (default
    /// [`DEFAULT_BLOB_EXPIRY_SECS`]); [`Store::expire`] deletes them after that.
    fn set_blob_expiry(&self, secs: u64);

    /// Totals (cheap: no scan).
    fn stats(&self) -> StoreStats;

    /// How the store's durable writes went (group commits), for the operator.
    fn flush_stats(&self) -> FlushStats;

    /// Whether the last durable write succeeded.
    fn last_flush_ok(&self) -> bool;

    /// Wait until everything written so far is durable (at shutdown).
    fn flush(&self) -> StoreFuture<'_, ()>;

    /// Whether other relays may share this store (a database several relays use): the relay
    /// then also schedules alerts other relays armed, re-reading them now and then. A store
    /// in the relay's own data directory is never shared.
    fn shared(&self) -> bool {
        false
    }

    /// Tell `hook` of deposits committed through other relays sharing this store, as they
    /// commit (and possibly of this relay's own too: a wake too many is harmless). A store no
    /// other relay shares has nothing to tell.
    fn on_deposits(&self, hook: DepositHook) {
        let _ = hook;
    }
}

/// The item id a fetcher sees for (mailbox, deposit id), and back: the deposit id XOR the first
/// 16 bytes of the mailbox id. Every backend uses it, so an item id names its deposit without
/// another index, and equal deposit ids in two mailboxes give two item ids. (It hides nothing:
/// the relay knows both ids.)
pub(crate) fn flip(mailbox: &MailboxId, id: &[u8; 16]) -> [u8; 16] {
    let mut out = *id;
    for (o, m) in out.iter_mut().zip(mailbox.as_bytes()) {
        *o ^= m;
    }
    out
}

/// Up to `max` bytes of `data` from `offset`, as a store's [`Store::read`] of an item held in
/// memory returns them.
pub(crate) fn slice_from(data: &[u8], offset: u64, max: usize) -> Bytes {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = start.saturating_add(max).min(data.len());
    Bytes::copy_from_slice(&data[start..end])
}
