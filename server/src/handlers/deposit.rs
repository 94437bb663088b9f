//! Deposit: store an envelope, anonymously, and answer "stored" only once it is on disk.

use super::{blocking, durable, encode, now_unix, Refusal, Shared};
use std::sync::atomic::Ordering;
use vigil_core::ids::{DepositId, MailboxId};
use vigil_core::wire::{ErrorCode, Response};

/// `buf[offset..]` is the envelope. Taking the request buffer by value lets a deposit reach the
/// store without another copy of up to `MAX_ENVELOPE_LEN` bytes.
pub(super) async fn apply(
    shared: &Shared,
    mailbox: MailboxId,
    deposit_id: DepositId,
    buf: Vec<u8>,
    offset: usize,
) -> Result<Vec<u8>, Refusal> {
    if buf.len().saturating_sub(offset) > shared.max_envelope {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            "report is larger than this relay accepts",
        ));
    }
    shared.check_space()?;
    let now = now_unix();
    let (_, duplicate) = blocking(shared, move |s| {
        let envelope = buf.get(offset..).unwrap_or_default();
        s.deposit(&mailbox, &deposit_id, envelope, now)
    })
    .await?;
    // Also for a duplicate: the first copy may still be waiting for its flush.
    durable(shared).await?;
    let counter = if duplicate {
        &shared.counters.deposits_duplicate
    } else {
        &shared.counters.deposits_stored
    };
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(duplicate, "deposit stored");
    Ok(encode(&Response::Stored { duplicate }))
}
