//! Storage behind a small trait, so the embedded sled store can later be replaced by a
//! distributed one without touching the handlers.
//!
//! What a store may hold: mailbox ids, mailbox public keys, ciphertext envelopes, the deposit ids
//! senders chose (for idempotent retries) and a coarse receive time (rounded to
//! `RECEIVE_TIME_GRANULARITY_SECS`) for expiry. Never IP addresses, never plaintext, never
//! anything about who deposited.
//!
//! Methods are synchronous and may block on disk; async callers run them in `spawn_blocking`,
//! except the write of a small deposit, which is an in-memory append in sled and runs on the
//! request's task (see `handlers::INLINE_STORE_MAX_BODY`).
//! Writes are not durable until [`Store::flush`] returns — the relay calls it through the single
//! [`flusher::Flusher`] task before it tells a client "stored".

pub mod envelope_files;
pub mod flusher;
pub mod sled_store;
pub mod space;

use vigil_core::ids::{DepositId, ItemId, MailboxId};

pub use sled_store::SledStore;

/// One stored item returned by [`Store::fetch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredItem {
    /// The relay's id for the item.
    pub id: ItemId,
    /// The envelope exactly as deposited.
    pub envelope: Vec<u8>,
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

pub use vigil_core::wire::policy::Quota;

/// Envelopes longer than this are streamed into a file of their own as they arrive
/// ([`Store::begin_large_deposit`]); shorter ones are read whole and stored in one write.
pub const LARGE_ENVELOPE_MIN: usize = 64 * 1024;

/// What [`Store::begin_large_deposit`] found.
pub enum LargeDeposit {
    /// The deposit id is already remembered (stored, or acked and not yet expired): nothing
    /// needs to be written, and the client need not send the envelope.
    Repeat(ItemId),
    /// Write the envelope into this, then commit it.
    Write(Box<dyn StagedEnvelope>),
}

/// An envelope on its way into the store. Dropping it without [`StagedEnvelope::commit`]
/// discards what was written and gives back the mailbox quota it reserved.
pub trait StagedEnvelope: Send {
    /// Append the next bytes of the envelope.
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;

    /// Append `parts`, in order. Stores that can write them in one vectored call override
    /// this; the network hands a large envelope over in many small pieces.
    fn write_parts(&mut self, parts: &[&[u8]]) -> Result<(), StoreError> {
        parts.iter().try_for_each(|p| self.write(p))
    }

    /// Store the envelope, which must be exactly as long as announced. Returns the item id and
    /// whether the deposit id turned out to be a repeat. Like [`Store::deposit`], the write is
    /// durable only after the next [`Store::flush`].
    fn commit(self: Box<Self>) -> Result<(ItemId, bool), StoreError>;
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
    /// The storage backend failed (I/O error, ...).
    #[error("storage backend failed: {0}")]
    Backend(String),
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

/// What the relay needs from storage.
pub trait Store: Send + Sync + 'static {
    /// Register `mailbox` for `public_key` (idempotent). The caller has checked that
    /// `mailbox == MailboxId::for_key(public_key)` and that the registrant holds the key.
    fn register_mailbox(
        &self,
        mailbox: &MailboxId,
        public_key: &[u8; 32],
    ) -> Result<(), StoreError>;

    /// The public key registered for `mailbox`, if any.
    fn mailbox_key(&self, mailbox: &MailboxId) -> Result<Option<[u8; 32]>, StoreError>;

    /// Store `envelope` in `mailbox`. Idempotent per (mailbox, deposit id): a repeat returns the
    /// first item's id and `true` and writes nothing. `now` is Unix seconds.
    fn deposit(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        envelope: &[u8],
        now: u64,
    ) -> Result<(ItemId, bool), StoreError>;

    /// Start a deposit of an envelope of `len` bytes that arrives in pieces. Checks everything
    /// [`Store::deposit`] checks (registered mailbox, repeat, quota) before a byte is written, so
    /// a refused or repeated upload costs the client no transfer.
    fn begin_large_deposit(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        len: u64,
        now: u64,
    ) -> Result<LargeDeposit, StoreError>;

    /// Up to `max_items` items from `mailbox`, stopping before the envelopes would sum to more
    /// than `max_bytes` (but always at least one item if the mailbox is not empty).
    fn fetch(
        &self,
        mailbox: &MailboxId,
        max_items: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredItem>, StoreError>;

    /// Delete the given items from `mailbox`; returns how many existed. Ids of other mailboxes
    /// are not touched.
    fn ack(&self, mailbox: &MailboxId, ids: &[ItemId]) -> Result<u64, StoreError>;

    /// Delete items (and remembered deposit ids) older than the store's expiry; returns how many
    /// items were deleted.
    fn expire(&self, now: u64) -> Result<u64, StoreError>;

    /// Totals.
    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Make every completed write durable. Called from one place only (the flusher).
    fn flush(&self) -> Result<(), StoreError>;
}
