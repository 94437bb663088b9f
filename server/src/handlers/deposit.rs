//! Deposit: store an envelope, anonymously, and answer "stored" only once it is on disk.
//!
//! One path whatever the envelope's size: the disk space it needs is promised first, then the
//! store gets the head and the payload and does the rest (a repeat or a refusal is decided
//! before the envelope is read; where the bytes go is the store's business). The envelope's
//! length was checked once, against the relay's limit, when the listener admitted the header.

use super::{Admission, BodySource, Ctx, Failure, Rate, ReplySink, refusal, send};
use crate::clock::now_unix;
use crate::store::{Deposited, StoreError};
use std::sync::atomic::Ordering;
use vigil_core::wire::deposit::{Deposit, Stored};

/// The one request with a payload: its size against this relay's limit, the disk-space gate and
/// the per-address deposit rate, all before a byte of the envelope is read.
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Deposit),
    needs_space: true,
    carries_envelope: true,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Deposit,
    body: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    // Room on disk is promised before a byte is written, so uploads admitted together cannot
    // fill the disk between two probes.
    let reservation = shared
        .space
        .try_reserve(req.envelope_len as u64)
        .ok_or_else(refusal::storage_full)?;
    let mailbox = req.mailbox;
    let done = match shared.store.deposit(req, now_unix(), body).await {
        Ok(done) => done,
        Err(e) => {
            if e == StoreError::QuotaExceeded {
                // The mailbox's owner sees this count in its status.
                shared.full_refusals.note(mailbox);
            }
            return Err(shared.store_failed(e));
        }
    };
    let (counter, duplicate) = match done {
        Deposited::New => {
            reservation.consumed();
            // Durable now: a watcher woken here finds it.
            shared.waiters.wake(&mailbox);
            (&shared.counters.deposits_stored, false)
        }
        Deposited::Repeat => (&shared.counters.deposits_duplicate, true),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(duplicate, "deposit stored");
    send(reply, &Stored { duplicate }).await
}
