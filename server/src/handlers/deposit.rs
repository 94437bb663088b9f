//! Deposit: store an envelope, anonymously, and answer "stored" only once it is on disk.

use super::{blocking, durable, encode, now_unix, Refusal, Shared};
use vigil_core::ids::{DepositId, MailboxId};
use vigil_core::wire::Response;

pub(super) async fn apply(
    shared: &Shared,
    mailbox: MailboxId,
    deposit_id: DepositId,
    envelope: &[u8],
) -> Result<Vec<u8>, Refusal> {
    let envelope = envelope.to_vec();
    let now = now_unix();
    let (_, duplicate) = blocking(shared, move |s| {
        s.deposit(&mailbox, &deposit_id, &envelope, now)
    })
    .await?;
    // Also for a duplicate: the first copy may still be waiting for its flush.
    durable(shared).await?;
    tracing::debug!(duplicate, "deposit stored");
    Ok(encode(&Response::Stored { duplicate }))
}
