//! DepositBlobs: a deposit whose envelope refers to uploaded blobs. Stored exactly as a deposit
//! (`deposit.rs`), after the store has checked that every blob is complete and that the mailbox
//! has room for the envelope and the blobs; answered once the item and its references are
//! durable.

use super::{refusal, send, Admission, BodySource, Ctx, Failure, Rate, ReplySink};
use crate::clock::now_unix;
use crate::store::{Deposited, StoreError};
use std::sync::atomic::Ordering;
use vigil_core::wire::deposit_blobs::{BlobsStored, DepositBlobs};

/// A deposit's: its envelope against this relay's limit, the disk-space gate and the
/// per-address deposit rate.
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Deposit),
    needs_space: true,
    carries_envelope: true,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: DepositBlobs,
    body: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    let head = req.deposit;
    let reservation = shared
        .space
        .try_reserve(head.envelope_len as u64)
        .ok_or_else(refusal::storage_full)?;
    let done = match (shared.store.deposit_blobs(head, &req.blobs, now_unix(), body)).await {
        Ok(done) => done,
        Err(e) => {
            if e == StoreError::QuotaExceeded {
                shared.full_refusals.note(head.mailbox);
            }
            return Err(shared.store_failed(e));
        }
    };
    let (counter, duplicate) = match done {
        Deposited::New => {
            reservation.consumed();
            // Durable now: a watcher woken here finds it.
            shared.waiters.wake(&head.mailbox);
            (&shared.counters.deposits_stored, false)
        }
        Deposited::Repeat => (&shared.counters.deposits_duplicate, true),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(duplicate, blobs = req.blobs.len(), "deposit with blobs stored");
    send(reply, &BlobsStored { duplicate }).await
}
