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

pub mod memory;
pub mod sled_store;
pub mod space;

#[cfg(test)]
pub(crate) mod conformance;

use crate::body::{BodyError, BodySource, BoxFuture};
use bytes::Bytes;
use vigil_core::ids::{ItemId, MailboxId};
use vigil_core::wire::deposit::Deposit;

pub use memory::MemoryStore;
pub use sled_store::{FlushCounters, FlushStats, SledStore};
pub use vigil_core::wire::policy::Quota;

/// Envelopes longer than this are "large": every backend lists them after all small ones (the
/// urgent text first), and the sled store keeps them in files of their own.
pub const LARGE_ENVELOPE_MIN: usize = 64 * 1024;

/// A store operation's future.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

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
}

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
    /// Another connection is uploading the same deposit right now; retry shortly.
    #[error("the same deposit is being received on another connection")]
    InProgress,
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
    fn register(&self, mailbox: MailboxId, public_key: [u8; 32]) -> StoreFuture<'_, ()>;

    /// The public key registered for `mailbox`, if any.
    fn mailbox_key(&self, mailbox: MailboxId) -> StoreFuture<'_, Option<[u8; 32]>>;

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

    /// Delete items (and remembered deposit ids) older than the store's expiry at `now`,
    /// durably; returns how many items were deleted.
    fn expire(&self, now: u64) -> StoreFuture<'_, u64>;

    /// Totals (cheap: no scan).
    fn stats(&self) -> StoreStats;

    /// How the store's durable writes went (group commits), for the operator.
    fn flush_stats(&self) -> FlushStats;

    /// Whether the last durable write succeeded.
    fn last_flush_ok(&self) -> bool;

    /// Wait until everything written so far is durable (at shutdown).
    fn flush(&self) -> StoreFuture<'_, ()>;
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
